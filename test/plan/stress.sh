#!/usr/bin/env bash
# Planner soak for `make stress`: builds test_plan_stress in build/ and runs it for
# HK_PLAN_STRESS_SECONDS (default 120) with a seed from HK_PLAN_STRESS_SEED (default: the date).
set -u
cd "$(dirname "$0")/../.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target test_plan_stress >/dev/null || {
  echo "plan stress: build failed"; exit 1; }
seed=${HK_PLAN_STRESS_SEED:-$(date +%s)}
echo "plan stress: seed $seed"
exec build/test/plan/test_plan_stress "${HK_PLAN_STRESS_SECONDS:-120}" "$seed"
