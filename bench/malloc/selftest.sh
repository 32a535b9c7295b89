#!/usr/bin/env bash
# Self-test of the malloc benchmark suite: under a deliberately broken allocator (selftest/badalloc.c,
# which hands out overlapping blocks) every workload must be reported as FAIL and never timed, while
# glibc passes; the runner must then exit with status 1. Takes about 10 s.
set -u
cd "$(dirname "$0")/../.."
out=build-mbench/selftest
mkdir -p "$out"
gcc -O2 -shared -fPIC -o "$out/badalloc.so" bench/malloc/selftest/badalloc.c || exit 2
bash bench/malloc/run.sh --build-only || exit 2
HK_BENCH_EXTRA="broken=$PWD/$out/badalloc.so" /usr/bin/python3 bench/malloc/runner.py \
  --bindir build-mbench/bin --allocs glibc,broken --reps 1 --scale 0.1 \
  --only churn,tiny,xthread-pc,server,large,peakfree --outdir "$out" >"$out/log" 2>&1
status=$?
fail=0
[ $status = 1 ] || { echo "selftest: runner exit status $status, expected 1"; fail=1; }
for w in churn tiny xthread-pc server large peakfree; do
  grep -q "^FAIL: $w under broken:" "$out/log" || { echo "selftest: $w under broken not reported as FAIL"; fail=1; }
  if grep -q "^FAIL: $w under glibc" "$out/log"; then echo "selftest: $w failed under glibc"; fail=1; fi
done
grep -E '^(churn|tiny|xthread-pc|server|large|peakfree) ' "$out/log" | grep -qv FAIL && {
  echo "selftest: a broken run was given a time:"; grep -E '^(churn|tiny) ' "$out/log"; fail=1; }
if [ $fail = 0 ]; then echo "selftest: OK (broken allocator reported as FAIL on every workload)"; else cat "$out/log"; fi
exit $fail
