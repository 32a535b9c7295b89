#!/usr/bin/env bash
# The GC benchmark suite: builds the workloads (bench/gc/*.c, each for heapkit and for the Boehm
# collector) in the project's build/ directory, runs them side by side at heap budgets of 1.5x,
# 2x and 3x their live size (bench/gc/runner.py), prints the table and writes
# bench/results/gc.md, gc_cpu.png, gc_pause.png and gc_raw.json.
#
#   bash bench/gc/run.sh           full run (about 5 minutes on 2 cores)
#   bash bench/gc/run.sh --quick   smoke check: 1 repetition, small sizes; results go to
#                                  <build>/gcb-quick/ so they never replace the real ones
# Environment: HK_BENCH_REPS (default 3), HK_GCB_DEPTH (binary-trees depth, default 18),
# HK_GCB_MT_DEPTH (2-thread variant, default 18), HK_GCB_WORKLOADS (comma-separated subset of
# gcbench,bintrees,finalizers,quadtree,mtbintrees), JOBS (build parallelism, default 2),
# HK_GCB_BUILD (the CMake build directory to use, default build).
# Exit status: 0 when every run passed its checks (an out-of-memory at a tight budget is a
# result, not a failure), 1 otherwise, 2 when the workloads cannot be built.
set -u
cd "$(dirname "$0")/../.."
quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    *) echo "usage: bash bench/gc/run.sh [--quick]" >&2; exit 64 ;;
  esac
done
b=${HK_GCB_BUILD:-build}
mkdir -p "$b"
# Only the benchmark targets (and the library they link), so a half-written test elsewhere cannot
# keep us from measuring. A failed build is reported, never replaced by stale binaries.
if ! { cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release >"$b/gcb-configure.log" 2>&1 &&
       cmake --build "$b" -j "${JOBS:-2}" --target gcb_all >"$b/gcb-build.log" 2>&1; }; then
  tail -30 "$b/gcb-build.log" "$b/gcb-configure.log" 2>/dev/null
  echo "gc bench: cannot build the workloads (see $b/gcb-build.log)" >&2
  exit 2
fi
[ -x "$b/bench/gc/gcb_gcbench_boehm" ] || echo "gc bench: libgc-dev not found: Boehm columns are empty" >&2
py=/usr/bin/python3
[ -x $py ] || py=python3
if [ $quick = 1 ]; then
  exec $py bench/gc/runner.py --bindir "$b/bench/gc" --outdir "$b/gcb-quick" --reps 1 --depth 14 --mt-depth 12 \
    --workloads "${HK_GCB_WORKLOADS:-}" --command "bash bench/gc/run.sh --quick"
fi
cmd="bash bench/gc/run.sh"
for v in HK_BENCH_REPS HK_GCB_DEPTH HK_GCB_MT_DEPTH HK_GCB_WORKLOADS; do
  [ -n "${!v:-}" ] && cmd="$v=${!v} $cmd"
done
exec $py bench/gc/runner.py --bindir "$b/bench/gc" --outdir bench/results --reps "${HK_BENCH_REPS:-3}" \
  --depth "${HK_GCB_DEPTH:-18}" --mt-depth "${HK_GCB_MT_DEPTH:-18}" --workloads "${HK_GCB_WORKLOADS:-}" --command "$cmd"
