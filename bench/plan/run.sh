#!/usr/bin/env bash
# Static planner benchmark (issue 5), run by `make bench` (or alone: bash bench/plan/run.sh).
#  1. model traces from ../shared/planner-traces (skipped if absent): peak over the lower bound
#     and wall time, heapkit's planner beside a plain greedy-by-size baseline (bench_plan.c);
#  2. generated perfect packings of 100-500 buffers (lower bound == optimum): how many each
#     planner places at the bound, and heapkit's time per instance;
#  3. greedy-by-size speed on 100k model-like buffers.
# Knobs: HK_BENCH_REPS (default 3), HK_PLAN_TRACE_TL (heapkit time limit on traces, default 0.9 s),
# HK_PLAN_TIGHT_TL (default 1 s), HK_PLAN_SEEDS (instances per size, default 10),
# HK_PLAN_SEED_FIRST (first generator seed, default 1: another range checks that the planner is
# not tuned to the benchmark's instances), HK_PLAN_SIZES (default "100 200 300 400 500"),
# HK_PLAN_PARTS (default "traces tight speed": a quick run can pick, e.g. HK_PLAN_PARTS=tight).
# A run with non-default knobs writes bench/results/plan-custom.md instead of plan.md.
set -u
cd "$(dirname "$0")/../.."
REPS=${HK_BENCH_REPS:-3}
TTL=${HK_PLAN_TRACE_TL:-0.9}
GTL=${HK_PLAN_TIGHT_TL:-1}
SEEDS=${HK_PLAN_SEEDS:-10}
FIRST=${HK_PLAN_SEED_FIRST:-1}
SIZES=${HK_PLAN_SIZES:-100 200 300 400 500}
PARTS=${HK_PLAN_PARTS:-traces tight speed}
REPORT=plan.md
if [ "$FIRST" != 1 ] || [ "$SIZES" != "100 200 300 400 500" ] || [ "$PARTS" != "traces tight speed" ] || [ "$SEEDS" != 10 ]; then
  REPORT=plan-custom.md
fi
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
TRACES=../shared/planner-traces
OUT=bench/results
mkdir -p "$OUT"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target bench_plan >/dev/null || {
  echo "bench/plan: build failed"; exit 1; }
BIN=build/bench/plan/bench_plan
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# ---- 1. model traces -------------------------------------------------------------------------
: >"$tmp/traces"; : >"$tmp/tight"; echo "speed 0 0 -" >"$tmp/speed"
if ! want traces; then
  :
elif ls "$TRACES"/*.csv >/dev/null 2>&1; then
  "$BIN" traces "$REPS" "$TTL" "$TRACES"/*.csv >"$tmp/traces" || status=1
else
  echo "bench/plan: $TRACES not found; skipping the model traces"
fi
# ---- 2. tight instances ----------------------------------------------------------------------
if want tight; then
  for n in $SIZES; do
    "$BIN" tight 1 "$GTL" "$n" "$SEEDS" "$FIRST" >>"$tmp/tight" || status=1
  done
fi
# ---- 3. speed --------------------------------------------------------------------------------
if want speed; then "$BIN" speed "$REPS" 100000 >"$tmp/speed" || status=1; fi

# ---- tables ----------------------------------------------------------------------------------
# traces line: name n lb base_peak base_s hk_peak hk_s method optimal hk_cpu_s
awk '{ bo = 100 * ($4 - $3) / $3; ho = 100 * ($6 - $3) / $3;
       printf "| %s | %d | %.3f%% | %.3f | %.3f%% | %.3f | %s%s |\n", $1, $2, bo, $5, ho, $7, $8, ($9 ? ", optimal" : "") }' \
  "$tmp/traces" >"$tmp/traces.md"
awk '{ printf "%s %.4f %.4f\n", $1, 100 * ($4 - $3) / $3, 100 * ($6 - $3) / $3 }' "$tmp/traces" >"$tmp/traces.dat"
# tight line: tight-N-seed n lb base_peak base_s hk_peak hk_s method optimal hk_cpu_s
awk '{ n = $2; if (!(n in cnt)) sz[++ns] = n; cnt[n]++; if ($6 == $3) hk[n]++; if ($4 == $3) bl[n]++; bo[n] += 100 * ($4 - $3) / $3;
       ho[n] += 100 * ($6 - $3) / $3; t[n, cnt[n]] = $7; if ($7 > mx[n]) mx[n] = $7 }
     END { for (k = 1; k <= ns; k++) { n = sz[k];
             m = cnt[n]; for (i = 1; i <= m; i++) v[i] = t[n, i];
             for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
             printf "%d %d %d %d %.3f %.3f %.4f %.4f\n", n, m, bl[n] + 0, hk[n] + 0, bo[n] / m, ho[n] / m, v[int((m + 1) / 2)], mx[n] } }' \
  "$tmp/tight" >"$tmp/tight.dat"
awk '{ printf "| %d | %d/%d (mean +%.2f%%) | %d/%d (mean +%.2f%%) | %.3f | %.3f |\n", $1, $3, $2, $5, $4, $2, $6, $7, $8 }' \
  "$tmp/tight.dat" >"$tmp/tight.md"
read -r _ sn speak st <"$tmp/speed"

{
  echo "## Static planner (issue 5)"
  echo
  echo "Command: \`bash bench/plan/run.sh\` (HK_BENCH_REPS=$REPS; heapkit time limit $TTL s on traces, $GTL s on tight instances)."
  echo "Measured: the peak a planner reaches relative to the lower bound (largest total size live at"
  echo "one moment; no placement can beat it), and the wall time per instance (median of $REPS runs on"
  echo "traces, one run per generated instance). The baseline is a plain greedy-by-size best-fit planner"
  echo "written for this benchmark (TFLite's algorithm, O(n^2)); heapkit is \`hk_plan\` in its default mode"
  echo "(all heuristics, then the exact search until the time limit). Every placement is checked by"
  echo "\`hk_plan_validate\`."
  echo
  if [ -s "$tmp/traces.md" ]; then
    echo "Model traces (\`../shared/planner-traces\`):"
    echo
    echo "| trace | buffers | baseline over bound | baseline s | heapkit over bound | heapkit s | heapkit method |"
    echo "|---|---|---|---|---|---|---|"
    cat "$tmp/traces.md"
    echo
  fi
  if [ -s "$tmp/tight.md" ]; then
    echo "Tightly packed instances (perfect packings cut from a rectangle, \`hkgen_perfect\` seeds $FIRST to"
    echo "$((FIRST + SEEDS - 1)) for each size, lower bound == capacity == optimum), instances placed exactly at the"
    echo "bound within the time limit:"
    echo
    echo "| buffers | baseline at bound | heapkit at bound | heapkit median s | heapkit max s |"
    echo "|---|---|---|---|---|"
    cat "$tmp/tight.md"
    echo
  fi
  if [ "$sn" != 0 ]; then
    echo "Greedy by size on $sn model-like buffers (\`hkgen_model\`): $st s (median of $REPS)."
    echo
  fi
  if [ "$REPORT" = plan.md ]; then
    echo "![peak over the lower bound on model traces](plan_traces.png) ![tight instances placed at the bound](plan_tight.png)"
  else
    echo "(Custom run: HK_PLAN_PARTS='$PARTS' HK_PLAN_SIZES='$SIZES' HK_PLAN_SEEDS=$SEEDS HK_PLAN_SEED_FIRST=$FIRST.)"
  fi
} >"$OUT/$REPORT"
cat "$OUT/$REPORT"

# ---- charts (full runs only) -------------------------------------------------------------------
if [ "$REPORT" = plan.md ] && command -v gnuplot >/dev/null 2>&1; then
  if [ -s "$tmp/traces.dat" ]; then
    gnuplot <<GP || echo "bench/plan: gnuplot failed (traces chart)"
set terminal png size 800,450
set output "$OUT/plan_traces.png"
set title "Peak above the lower bound on model traces (lower is better)"
set ylabel "% above lower bound"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set key top left
plot "$tmp/traces.dat" using 2:xtic(1) title "greedy-by-size baseline", "" using 3 title "heapkit"
GP
  fi
  gnuplot <<GP || echo "bench/plan: gnuplot failed (tight chart)"
set terminal png size 800,450
set output "$OUT/plan_tight.png"
set title "Perfect packings placed at the lower bound ($SEEDS instances per size)"
set xlabel "buffers"
set ylabel "instances at the bound"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:$SEEDS]
set key top right
plot "$tmp/tight.dat" using 3:xtic(1) title "greedy-by-size baseline", "" using 4 title "heapkit (1 s limit)"
GP
fi
exit $status
