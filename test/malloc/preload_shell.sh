#!/usr/bin/env bash
# Processes that fork: bash (Debian's bash calls the libc malloc) running a script of thousands of
# subshells, command substitutions, pipelines and background jobs, each child going on with the
# parent's heap; xargs -P2 starting shells; python3 (PYTHONMALLOC=malloc) forking children while
# two of its threads allocate and free (the allocator's state must be consistent in the child
# whatever the threads were doing at the fork); pigz with two compression threads. Output and exit
# status compared with a run without the preload.
source "$(dirname "$0")/preload_common.sh"
need bash xargs md5sum
PY=${HK_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || skip "$PY is not installed"
N=${HK_SHELL_N:-1500}
cat > "$TMP/forks.sh" <<'EOS'
set -u
n=$1
declare -A seen
sum=0 text=
for ((i = 0; i < n; i++)); do
  # a command substitution and a subshell: forked children that allocate and print
  v=$(k=$((i * 7919 % 1000)); s=; for ((j = 0; j < i % 20; j++)); do s+="x$j"; done; echo "$k${s:0:30}")
  seen[$v]=$(( ${seen[$v]:-0} + 1 ))
  (w="${v//x/yy}"; echo "${#w}") >> lens.txt
  sum=$((sum + ${#v}))
  text+="$v;"
  [ ${#text} -gt 20000 ] && text=${text:10000}
  if ((i % 50 == 0)); then
    for k in 1 2 3; do { x=$(printf '%s' "$text" | wc -c); echo "job $i $k $x"; } > "job.$k" & done
    wait
    cat job.1 job.2 job.3 >> jobs.txt
    echo "$text" | tr ';' '\n' | sort | uniq -c | sort -k1,1nr -k2 | head -3 >> top.txt
  fi
done
echo "forks: sum $sum keys ${#seen[@]} text ${#text}"
md5sum < lens.txt; md5sum < jobs.txt; md5sum < top.txt
for k in "${!seen[@]}"; do echo "$k ${seen[$k]}"; done | sort | md5sum
EOS
cat > "$TMP/forker.py" <<'EOS'
# zlib and bz2 release the GIL while they compress and allocate their state through
# PyMem_RawMalloc (malloc here): the threads are inside malloc/free when the main thread forks.
import bz2, os, sys, threading, hashlib, zlib
n = int(sys.argv[1])
sys.setswitchinterval(0.0005)
stop = False
def churn(seed):
    d = {}
    i = 0
    data = bytes(range(256)) * 64
    while not stop:
        d[i % 5000] = [str(i) * (i % 50), {i: bytes(i % 300)}]
        if i % 7 == 0:
            d.pop((i * 31) % 5000, None)
        zlib.compress(data[: 1000 + i % 15000], 1 + i % 9)
        if i % 16 == seed:
            bz2.compress(data[: 4000], 1)
        i += 1
threads = [threading.Thread(target=churn, args=(s,)) for s in range(2)]
for t in threads: t.start()
codes = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        # the child allocates and frees on the heap it inherited, then reports what it computed
        x = [str(k) * (k % 40) for k in range(2000 + i)]
        m = {s: len(s) for s in x}
        h = hashlib.md5(zlib.compress("".join(x[::97]).encode())).digest()[0]
        os._exit((sum(m.values()) + h) % 251)
    _, status = os.waitpid(pid, 0)
    codes.append(os.waitstatus_to_exitcode(status))
stop = True
for t in threads: t.join()
print("forker:", n, "children, exit codes sum", sum(codes), "killed by a signal", sum(c < 0 for c in codes))
EOS
awk 'BEGIN { srand(99); for (i = 0; i < 150000; i++) printf "%d %s %.4f\n", i, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26, 1 + i % 13), rand() }' > "$TMP/input.txt"
cat > "$TMP/work.sh" <<EOS
bash "$TMP/forks.sh" $N
seq 1 $((N / 2)) | xargs -P2 -n 25 sh -c 'for a; do echo \$((a * a % 977)); done' sh | sort -n | md5sum
PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$PY" "$TMP/forker.py" $((N / 15))
if command -v pigz >/dev/null; then
  pigz -p2 -b 128 -6 -c "$TMP/input.txt" > in.gz && md5sum < in.gz && pigz -p2 -dc in.gz | md5sum
fi
md5sum < "$TMP/input.txt"
EOS
command -v pigz >/dev/null || echo "$name: pigz is not installed: its part is left out"
run_compare shell sh bash "$TMP/work.sh"
echo "$name: ok"
