#!/usr/bin/env bash
# The general allocator's benchmark suite: builds the workloads (bench/malloc/w_*.c, plain gcc, into
# build-mbench/) and build/libheapkit.so, then runs every workload under glibc, heapkit, mimalloc,
# jemalloc and tcmalloc side by side (bench/malloc/runner.py), prints the tables and writes
# bench/results/malloc.md, malloc_time.png, malloc_rss.png and malloc_raw.json.
#
#   bash bench/malloc/run.sh            full run (about 10-15 minutes on 2 cores)
#   bash bench/malloc/run.sh --quick    smoke check: 1 repetition at small sizes; results go to
#                                       build-mbench/quick/ so they never replace the real ones
#   bash bench/malloc/run.sh --build-only   compile the workloads only
# Environment: HK_BENCH_REPS (default 5), HK_BENCH_THREADED_REPS (default HK_BENCH_REPS + 4, for
# xthread-pc and xthread-ring), HK_BENCH_SCALE (default 1), HK_BENCH_WORKLOADS and
# HK_BENCH_ALLOCS (comma-separated subsets), HK_BENCH_EXTRA (more allocators to compare, as
# name=/path/lib.so,...), HK_BENCH_BUILD (heapkit's build directory, default build), CC (default gcc). bench/malloc/selftest.sh checks that a broken allocator
# is reported as FAIL.
# Exit status: 0 when every allocator passed every workload, 1 if any run FAILed, 2 if the
# workloads could not be built. A heapkit that is missing or does not export malloc is reported as
# "not built" and the peers still run.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
bindir=$root/build-mbench/bin
mkdir -p "$bindir"

quick=0 build_only=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --build-only) build_only=1 ;;
    *) echo "usage: bash bench/malloc/run.sh [--quick] [--build-only]" >&2; exit 64 ;;
  esac
done

# Workloads (and their launcher): standalone programs that must not link heapkit, so that
# LD_PRELOAD decides.
cc=${CC:-gcc}
for src in bench/malloc/w_*.c bench/malloc/spawn.c; do
  exe=$bindir/$(basename "$src" .c)
  if [ ! -x "$exe" ] || [ "$src" -nt "$exe" ] || [ bench/malloc/wl.h -nt "$exe" ]; then
    if ! $cc -O2 -g -pthread -Wall -Wextra -o "$exe" "$src"; then
      echo "malloc bench: cannot build $src" >&2; exit 2
    fi
  fi
done

[ $build_only = 1 ] && exit 0

# heapkit: only the library target, so a half-written test elsewhere cannot keep us from measuring.
# A failed build is reported, never replaced by a stale library.
# HK_BENCH_BUILD names another build directory (default build/, the one `make` uses).
hkbuild=${HK_BENCH_BUILD:-build}
case $hkbuild in /*) hklib=$hkbuild/libheapkit.so ;; *) hklib=$root/$hkbuild/libheapkit.so ;; esac
hk_status=""
if ! { cmake -S . -B "$hkbuild" >"$root/build-mbench/heapkit-configure.log" 2>&1 &&
       cmake --build "$hkbuild" -j "${JOBS:-2}" --target heapkit >"$root/build-mbench/heapkit-build.log" 2>&1; }; then
  hk_status="not built (the build of $hkbuild/libheapkit.so failed; see build-mbench/heapkit-build.log)"
  echo "malloc bench: $hk_status" >&2
fi

py=/usr/bin/python3
[ -x $py ] || py=python3
if [ $quick = 1 ]; then
  exec $py bench/malloc/runner.py --bindir "$bindir" --heapkit-status "$hk_status" \
    --heapkit "$hklib" --reps "${HK_BENCH_REPS:-1}" --scale "${HK_BENCH_SCALE:-0.1}" --outdir "$root/build-mbench/quick" \
    --command "bash bench/malloc/run.sh --quick"
fi
cmd="bash bench/malloc/run.sh"
for v in HK_BENCH_REPS HK_BENCH_THREADED_REPS HK_BENCH_SCALE HK_BENCH_WORKLOADS HK_BENCH_ALLOCS HK_BENCH_EXTRA HK_BENCH_BUILD; do
  [ -n "${!v:-}" ] && cmd="$v=${!v} $cmd"
done
exec $py bench/malloc/runner.py --bindir "$bindir" --heapkit-status "$hk_status" \
  --heapkit "$hklib" --command "$cmd"
