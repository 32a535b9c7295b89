#!/usr/bin/env bash
# `make stress` for the collector: long random-graph runs over many seeds (normal and with
# HEAPKIT_GC_STRESS at several periods), many-thread runs, and the fragmentation soak, all against
# the Release build in $BUILD (default build/). Exits non-zero on the first failure.
set -u
cd "$(dirname "$0")/../.."
B=${BUILD:-build}/test/gc
for exe in test_gc_graph test_gc_threads test_gc_features test_gc_fork gc_frag; do
  [ -x "$B/$exe" ] || { echo "missing $B/$exe: build first (make all)"; exit 1; }
done
run() { echo "+ $*"; "$@" >/tmp/hk_gc_stress.$$ 2>&1 || { cat /tmp/hk_gc_stress.$$; rm -f /tmp/hk_gc_stress.$$; echo "FAILED: $*"; exit 1; }; tail -1 /tmp/hk_gc_stress.$$; }
for seed in 11 12 13 14 15 16; do run "$B/test_gc_graph" 2000000 "$seed"; done
for n in 1 3 17 101; do run env HEAPKIT_GC_STRESS=$n "$B/test_gc_graph" 150000 "$n"; done
for t in weak final pin oom cards misuse; do run env HEAPKIT_GC_STRESS=5 "$B/test_gc_features" "$t"; done
run "$B/test_gc_threads" 8 300
run "$B/test_gc_threads" 2 1000
run env HEAPKIT_GC_STRESS=50 "$B/test_gc_threads" 4 40
# the parallel in-place walk with threads coming and going: many runs for many interleavings
for i in $(seq 30); do run "$B/test_gc_threads" inplace; done
# forks falling at every point of the other threads' work (allocating, in a barrier, collecting)
for t in mutator blocking outsider pool exiting callback; do run "$B/test_gc_fork" "$t" 300; done
run env HEAPKIT_GC_STRESS=20 "$B/test_gc_fork" mutator 100
run "$B/gc_frag" 10000000 300000 0
run "$B/gc_frag" 3000000 300000 1
rm -f /tmp/hk_gc_stress.$$
echo "gc stress: all passed"
