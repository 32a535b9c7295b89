#!/usr/bin/env bash
# `make bench`: install the peers if missing, run every benchmark suite side by side with its peers,
# print the tables, write charts under bench/results/ and collect the tables into docs/benchmarks.md.
# Each suite is bench/<area>/run.sh; it writes bench/results/<area>.md (a section with its table and
# the command that made it) and bench/results/<area>*.png.
set -u
cd "$(dirname "$0")/.."
bash bench/install-peers.sh
mkdir -p bench/results
only=${HK_BENCH_ONLY:-}
for suite in bench/*/run.sh; do
  area=$(basename "$(dirname "$suite")")
  if [ -n "$only" ] && [[ " $only " != *" $area "* ]]; then continue; fi
  echo "===================== $area ====================="
  bash "$suite" || echo "benchmark suite $area failed (exit $?)"
done
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`make bench\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))."
  echo "Each suite runs heapkit and its peers side by side in one invocation; figures are medians of"
  echo "repeated runs, and ratios are what to compare (the machine is shared and noisy)."
  echo "A suite can be run alone with \`HK_BENCH_ONLY=<area> make bench\`. The charts are written to"
  echo "bench/results/ (not kept in git: run \`make bench\` to see them)."
  echo
  # the sections link their charts by bare file name (they live next to them in bench/results/)
  for f in bench/results/*.md; do [ -f "$f" ] && { sed -E 's#\]\(([a-z_]+\.png)\)#](../bench/results/\1)#g' "$f"; echo; }; done
} > docs/benchmarks.md
echo "tables collected in docs/benchmarks.md"
