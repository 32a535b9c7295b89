#!/usr/bin/env bash
# `make stress`: longer soaks than `make test`. Runs every test/<area>/stress.sh against the Release
# build in build/ (the Makefile builds it first) and prints one closing line "N passed, N failed".
# HK_STRESS_ONLY="malloc gc" limits the areas; BUILD overrides the build directory.
set -u
cd "$(dirname "$0")/.."
export HEAPKIT_ROOT=$PWD
export BUILD=${BUILD:-build}
only=${HK_STRESS_ONLY:-}
pass=0; fail=0; failed=()
start=$(date +%s)
for s in test/*/stress.sh; do
  [ -f "$s" ] || continue
  area=$(basename "$(dirname "$s")")
  if [ -n "$only" ] && [[ " $only " != *" $area "* ]]; then continue; fi
  echo "===================== stress: $area ====================="
  t0=$(date +%s)
  if bash "$s"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$area"); fi
  echo "stress $area: $(( $(date +%s) - t0 )) s"
done
echo
[ ${#failed[@]} -gt 0 ] && printf 'FAILED: %s\n' "${failed[@]}"
echo "stress time: $(( $(date +%s) - start )) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
