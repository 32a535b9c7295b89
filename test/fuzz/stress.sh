#!/usr/bin/env bash
# Fuzzing soak for `make stress`: test/fuzz/fuzz.py on every target for HK_FUZZ_SECONDS per target
# (default 60) with a seed from HK_FUZZ_SEED (default: the date), against the Release build in
# $BUILD. Failing inputs are kept in $HK_FUZZ_KEEP (default build/fuzz-failures). For sanitizer
# coverage, point BUILD at a sanitizer build (make asan builds the tool, the Lisp example and the
# drivers too).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" >/dev/null && cmake --build "$BUILD" -j2 --target heapkit_tool hk_lisp fuzz_replay fuzz_options >/dev/null || {
  echo "fuzz stress: build failed"; exit 1; }
seed=${HK_FUZZ_SEED:-$(date +%s)}
traces=()  # the planner benchmark's model traces (issue 5), when present, as more plan seeds
[ -d ../shared/planner-traces ] && traces=(--traces ../shared/planner-traces)
echo "fuzz stress: seed $seed"
exec python3 test/fuzz/fuzz.py --build "$BUILD" --seed "$seed" --iterations 1000000 \
  --seconds "${HK_FUZZ_SECONDS:-60}" --keep "${HK_FUZZ_KEEP:-$BUILD/fuzz-failures}" ${traces[@]+"${traces[@]}"}
