#!/usr/bin/env bash
# Self-test of the malloc benchmark suite: under a deliberately broken allocator (selftest/badalloc.c,
# which hands out overlapping blocks) every workload must be reported as FAIL and never timed, while
# glibc passes; the runner must then exit with status 1. Also checks the columns the runner adds from
# wait4 (CPU time, context switches) and that the threaded workloads get --threaded-reps runs.
# Takes about 10 s.
set -u
cd "$(dirname "$0")/../.."
out=build-mbench/selftest
mkdir -p "$out"
gcc -O2 -shared -fPIC -o "$out/badalloc.so" bench/malloc/selftest/badalloc.c || exit 2
bash bench/malloc/run.sh --build-only || exit 2
HK_BENCH_EXTRA="broken=$PWD/$out/badalloc.so" /usr/bin/python3 bench/malloc/runner.py \
  --bindir build-mbench/bin --allocs glibc,broken --reps 1 --threaded-reps 3 --scale 0.1 \
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
# glibc's runs carry CPU time and context switches, the table shows them, a FAIL has none, and
# xthread-pc (a threaded workload) ran 3 times while churn ran once
/usr/bin/python3 - "$out" <<'PY' || fail=1
import json, sys
out = sys.argv[1]
raw = json.load(open(out + "/malloc_raw.json"))
md = open(out + "/malloc.md").read()
errs = []
for w, n in (("churn", 1), ("xthread-pc", 3)):
    r = raw["results"][w + "/glibc"]
    if len(r["runs"]) != n:
        errs.append("%s under glibc ran %d times, expected %d" % (w, len(r["runs"]), n))
    for x in r["runs"]:
        if not (x.get("cpu") and abs(x["cpu"] - x["user"] - x["sys"]) < 1e-6
                and x.get("nvcsw") is not None and x.get("nivcsw") is not None):
            errs.append("%s under glibc: run without CPU time or context switches: %r" % (w, x))
    if not r.get("cpu") or r.get("cpu_spread") is None or not r["cpu_spread"][0] <= r["cpu"] <= r["cpu_spread"][2]:
        errs.append("%s under glibc: median CPU %r outside its spread %r" % (w, r.get("cpu"), r.get("cpu_spread")))
    if raw["results"][w + "/broken"].get("cpu") is not None:
        errs.append("%s under broken was given a CPU time" % w)
if raw.get("threaded_reps") != 3:
    errs.append("threaded_reps %r, expected 3" % raw.get("threaded_reps"))
if " glibc cpu s |" not in md:
    errs.append("malloc.md has no 'glibc cpu s' column")
if "glibc wall min/med/max" not in md:
    errs.append("malloc.md has no spread table for the threaded workloads")
for e in errs:
    print("selftest: " + e)
sys.exit(1 if errs else 0)
PY
if [ $fail = 0 ]; then echo "selftest: OK (broken allocator reported as FAIL on every workload)"; else cat "$out/log"; fi
exit $fail
