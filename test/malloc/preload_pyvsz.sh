#!/usr/bin/env bash
# python3 under `ulimit -v` (RLIMIT_AS set before exec): the lowest limit at which building a list
# of 100 000 strings runs under glibc's malloc is found by bisection (256 KiB steps), and the same
# script must run with heapkit preloaded under that limit plus 16 MiB, and print the same.
# Measured 2026-12-07: glibc 20.3 MB; heapkit needed 45.8 MB before (an 8 MiB segment map in .bss,
# whole 4 MiB segments for small, medium blocks and the thread records, 4 MiB more for a moment to
# align each), 31.0 MB now (docs/architecture.md, *Under an address-space limit*).
source "$(dirname "$0")/preload_common.sh"
PY=${HK_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || skip "$PY is not installed"
SCRIPT='l = [str(i) for i in range(100000)]; print(len(l), l[-1])'
run() { # run LIMIT-KB [preload]: the script's output, or nothing when it failed
  ( ulimit -v "$1" || exit 99; if [ -n "${2:-}" ]; then export LD_PRELOAD=$2; fi; exec "$PY" -c "$SCRIPT" ) 2>/dev/null
}
want=$(run unlimited)
[ "$want" = "100000 99999" ] || fail "python3 without a limit printed '$want'"
lo=1024 hi=1048576
[ "$(run $hi)" = "$want" ] || skip "python3 does not run under a limit of $hi KiB even with glibc"
while [ $((hi - lo)) -gt 256 ]; do
  mid=$(((lo + hi) / 2))
  if [ "$(run $mid)" = "$want" ]; then hi=$mid; else lo=$mid; fi
done
limit=$((hi + 16384))
got=$(run $limit "$LIB")
echo "$name: glibc runs it under ulimit -v $hi KiB; heapkit under $limit: '$got'"
[ "$got" = "$want" ] || fail "python3 with heapkit under ulimit -v $limit KiB (glibc's lowest + 16 MiB) printed '$got', expected '$want'"
echo "$name: ok"
