#!/usr/bin/env bash
# gcc (cc1, as, ld: allocation-heavy programs with their own obstacks and GC) compiling the test
# sources of this folder at -O2 -g, with and without the preload: same objects, same executable.
source "$(dirname "$0")/preload_common.sh"
need gcc md5sum
src=$here
cat > "$TMP/work.sh" <<EOS
set -e
for f in api random stress churn misuse fork oom; do
  gcc -O2 -g -I$root/include -c $src/\$f.c -o \$f.o
done
gcc -O2 -g -I$root/include $src/libc.c -o libc_prog -ldl -Wl,--build-id=none
# debug info holds the compile directory, which differs between the two runs: compare code only
for f in *.o libc_prog; do objcopy --strip-debug \$f \$f.stripped; md5sum \$f.stripped; done
EOS
run_compare gcc cc bash "$TMP/work.sh"
echo "$name: ok"
