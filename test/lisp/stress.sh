#!/usr/bin/env bash
# Longer soaks of the Lisp interpreter than `make test` runs (for `make stress`): every test
# program under HEAPKIT_GC_STRESS=1 and 2 (a collection at every allocation, every fourth one full)
# with the heap verified after every form, then the GC-heavy program repeated at several stress
# periods. Uses $BUILD/examples/lisp/lisp (BUILD as set by test/stress.sh, default build), or
# $LISP. Exit status 0 when everything matched.
set -u
cd "$(dirname "$0")"
b=${BUILD:-build}
case $b in /*) ;; *) b=../../$b ;; esac
lisp=${LISP:-$b/examples/lisp/lisp}
[ -x "$lisp" ] || { echo "lisp stress: $lisp not built (run make first)"; exit 2; }
fail=0
check() { # name expected-file status env... -- args...
  local name=$1 exp=$2 want=$3; shift 3
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  local out; out=$(mktemp)
  env "${envs[@]}" "$lisp" "$@" >"$out" 2>&1
  local st=$?
  if [ $st -ne "$want" ] || ! diff -q "$exp" "$out" >/dev/null; then
    echo "FAIL $name (status $st, expected $want)"; diff "$exp" "$out" | head -20; fail=1
  else
    echo "ok   $name"
  fi
  rm -f "$out"
}
for n in 1 2; do
  check "basics stress=$n" basics.out 0 HEAPKIT_GC_STRESS=$n -- --verify basics.lisp
  check "errors stress=$n" errors.out 1 HEAPKIT_GC_STRESS=$n -- --verify errors.lisp
  check "reader stress=$n" reader.out 1 HEAPKIT_GC_STRESS=$n -- --verify reader.lisp
  check "gc_heavy stress=$n" gc_heavy.out 0 HEAPKIT_GC_STRESS=$n -- --verify gc_heavy.lisp
done
# The heap-limit program fills 32 MiB of live data: collect less often there.
check "oom stress=500" oom.out 1 HEAPKIT_GC_STRESS=500 -- --max-heap=32 oom.lisp
for n in 3 5 11 17 31 64 127 1000; do
  check "gc_heavy stress=$n" gc_heavy.out 0 HEAPKIT_GC_STRESS=$n -- --verify gc_heavy.lisp
  check "gc_heavy stress=$n nursery=64K" gc_heavy.out 0 HEAPKIT_GC_STRESS=$n -- --nursery=64 --verify gc_heavy.lisp
done
[ $fail = 0 ] && echo "lisp stress: all passed" || echo "lisp stress: FAILURES"
exit $fail
