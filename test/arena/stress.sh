#!/usr/bin/env bash
# Longer soaks for arenas and pools (for `make stress`): the threaded tests run many times in a
# row, in every build directory that has them (release, and the sanitizer builds if present), to
# shake out rare interleavings. HK_STRESS_ITERS (default 50) sets the repetitions, HK_STRESS_DIRS
# the build directories (default: $BUILD or build, then build-tsan, build-asan, build-debug).
set -u
cd "$(dirname "$0")/../.."
iters=${HK_STRESS_ITERS:-50}
fail=0 ran=0
for dir in ${HK_STRESS_DIRS:-${BUILD:-build} build-tsan build-asan build-debug}; do
  [ -x "$dir/test/arena/test_arena_concurrent" ] || continue
  for t in test_arena_concurrent test_pool_shared test_arena_region test_pool; do
    exe=$dir/test/arena/$t
    [ -x "$exe" ] || continue
    for ((i = 1; i <= iters; i++)); do
      if ! "$exe" >/dev/null 2>"$dir/arena_stress.err"; then
        echo "arena stress: $exe failed on iteration $i"; tail -20 "$dir/arena_stress.err"; fail=1; break
      fi
    done
    ran=$((ran + 1))
  done
done
[ "$ran" -gt 0 ] || { echo "arena stress: no built tests found (run make first)"; exit 1; }
[ "$fail" -eq 0 ] && echo "arena stress: $ran test programs x $iters iterations passed"
exit "$fail"
