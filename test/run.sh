#!/usr/bin/env bash
# `make test`: every test, in every build that matters.
#   build/        Release: all tests (unit, stress, misuse, fork/dlopen, real programs under LD_PRELOAD)
#   build-debug/  HK_DEBUG=3: invariant checkers on every operation      (label: unit)
#   build-asan/   AddressSanitizer over the hk_ API                       (label: san)
#   build-ubsan/  UndefinedBehaviorSanitizer over the hk_ API             (label: san)
#   build-nostats/ -DHK_STATS=OFF: the allocator's API tests               (malloc.api.*)
#   build-tsan/   ThreadSanitizer over the threaded tests                 (label: tsan)
# Prints one closing line "N passed, N failed, N skipped" and exits non-zero if anything failed.
# (A test skips, with ctest's SKIP_RETURN_CODE, only when a program it drives is missing.)
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
total_pass=0; total_fail=0; total_skip=0; failed_names=()

run_ctest() { # dir label-regex [name-regex]
  local dir=$1 label=$2 log args=()
  log=$(mktemp)
  if [ -n "$label" ]; then args+=(-L "$label"); fi
  if [ -n "${3:-}" ]; then args+=(-R "$3"); fi
  ctest --test-dir "$dir" -j "$JOBS" --output-on-failure --timeout 600 "${args[@]}" >"$log" 2>&1
  cat "$log"
  local p f s line='^ *[0-9]+/[0-9]+ Test +#[0-9]+: '
  p=$(grep -cE "$line.* Passed" "$log")
  s=$(grep -cE "$line.*\*\*\*(Skipped|Not Run)" "$log")
  f=$(grep -cE "$line.*\*\*\*(Failed|Exception|Timeout)" "$log")
  while IFS= read -r n; do failed_names+=("$dir: $n"); done < <(grep -E "$line.*\*\*\*(Failed|Exception|Timeout)" "$log" | sed -E 's/.*Test +#[0-9]+: ([^ ]+).*/\1/')
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
  rm -f "$log"
}

build() { # dir cmake-args...   (HK_BUILD_TARGET=name builds that target only)
  local dir=$1 target=(); shift
  if [ -n "${HK_BUILD_TARGET:-}" ]; then target=(--target "$HK_BUILD_TARGET"); fi
  echo "== configure+build $dir ($*${HK_BUILD_TARGET:+, target $HK_BUILD_TARGET})"
  if ! { cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j "$JOBS" "${target[@]}" >"$dir.buildlog" 2>&1; }; then
    cat "$dir.buildlog" 2>/dev/null | tail -50
    echo "build of $dir failed"; total_fail=$((total_fail + 1)); failed_names+=("build $dir"); return 1
  fi
}

start=$(date +%s)
if build build -DCMAKE_BUILD_TYPE=Release; then run_ctest build ""; fi
if [ "${HK_TEST_QUICK:-0}" != 1 ]; then
  if build build-debug -DCMAKE_BUILD_TYPE=Debug -DHK_DEBUG=3 -DHK_BUILD_BENCH=OFF; then run_ctest build-debug "^unit$"; fi
  if build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHK_OVERRIDE=OFF -DHK_BUILD_BENCH=OFF -DHK_SANITIZE=address; then run_ctest build-asan "^san$"; fi
  if build build-ubsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHK_OVERRIDE=OFF -DHK_BUILD_BENCH=OFF -DHK_SANITIZE=undefined; then run_ctest build-ubsan "^san$"; fi
  # The statistics switch: the allocator's API tests in a library built without its counters.
  if HK_BUILD_TARGET=malloc_api build build-nostats -DCMAKE_BUILD_TYPE=Release -DHK_STATS=OFF -DHK_BUILD_BENCH=OFF; then
    run_ctest build-nostats "^unit$" '^malloc\.api\.'
  fi
  if build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHK_OVERRIDE=OFF -DHK_BUILD_BENCH=OFF -DHK_SANITIZE=thread; then run_ctest build-tsan "^tsan$"; fi
fi
end=$(date +%s)
echo
if [ ${#failed_names[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${failed_names[@]}"; fi
echo "test time: $((end - start)) s"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ "$total_fail" -eq 0 ] && [ "$total_pass" -gt 0 ]
