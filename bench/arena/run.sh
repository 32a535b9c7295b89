#!/usr/bin/env bash
# Arena and pool benchmark: heapkit arenas, scratch scopes and pools side by side with glibc
# malloc/free, mimalloc, obstack (glibc), talloc and regions built from them, in one process
# (bench/arena/bench_arena.c). Prints the table and writes bench/results/arena.md and
# bench/results/arena.png.
#   bash bench/arena/run.sh            full run (HK_BENCH_REPS repetitions, default 9; ~1-2 minutes)
#   bash bench/arena/run.sh --quick    3 repetitions, results under build-arena-bench/ only
# heapkit is built in build-arena-bench/ with -DHK_OVERRIDE=OFF: the program compares against glibc
# malloc in the same process, which heapkit's exported malloc names would otherwise replace.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
bdir=$root/build-arena-bench
reps=${HK_BENCH_REPS:-9}
out=$root/bench/results
if [ "${1:-}" = "--quick" ]; then reps=3; out=$bdir/quick; fi
mkdir -p "$out"
if ! { cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DHK_OVERRIDE=OFF -DHK_BUILD_TESTS=OFF >/dev/null &&
       cmake --build "$bdir" -j "$(nproc)" --target bench_arena >"$bdir.buildlog" 2>&1; }; then
  tail -30 "$bdir.buildlog"; echo "arena bench: build failed"; exit 2
fi
raw=$bdir/arena_raw.tsv
cmd="bash bench/arena/run.sh   (build-arena-bench/bench/arena/bench_arena --reps $reps)"
"$bdir/bench/arena/bench_arena" --reps "$reps" | tee "$raw" || { echo "arena bench: run failed"; exit 1; }

python3 - "$raw" "$out" "$cmd" "$reps" <<'PY'
import sys, collections
raw, out, cmd, reps = sys.argv[1:5]
rows = collections.OrderedDict()
for line in open(raw).read().splitlines()[1:]:
    w, name, med, lo, hi = line.split('\t')
    rows.setdefault(w, []).append((name, float(med), float(lo), float(hi)))
title = {"ast": "AST build-and-drop (50,000 nodes of 16-64 B per tree, dropped whole)",
         "request": "Per-request scratch (30 objects of 16-256 B, nested save/restore)",
         "pool": "Fixed-size churn (48 B objects, 1,024 live, random free order)",
         "pool2t": "Two threads churn one shared pool (each as the pool workload; CPU of both threads per pair)",
         "xthread": "Cross-thread: one thread allocates 48 B objects, another frees them (CPU of both per pair)"}
lines = ["## Arenas, scratch and pools", "",
         "CPU nanoseconds per allocation (its free or its share of the drop included; thread CPU time, so "
         "time the shared machine gave to other processes is not counted), median of %s runs, all in one process; **x heapkit** is the peer's time over heapkit's (higher = heapkit faster). "
         "The reference is the first heapkit row of each table." % reps, ""]
goals = []
for w, rs in rows.items():
    ref = rs[0][1]
    lines += ["### " + title.get(w, w), "", "| allocator | ns/alloc (median) | min | max | x heapkit |",
              "|---|---:|---:|---:|---:|"]
    for name, med, lo, hi in rs:
        lines.append("| %s | %.2f | %.2f | %.2f | %.2f |" % (name, med, lo, hi, med / ref))
    lines.append("")
    d = {n: m for n, m, _, _ in rs}
    if w == "ast":
        if "glibc malloc/free" in d: goals.append("arena vs glibc malloc+free: %.1fx (goal >= 8x)" % (d["glibc malloc/free"] / ref))
        if "obstack" in d: goals.append("arena vs obstack: %.1fx (goal >= 4x)" % (d["obstack"] / ref))
        cur = d.get("heapkit arena (cursor)")
        if cur and "obstack" in d: goals.append("arena through a cursor vs obstack: %.1fx" % (d["obstack"] / cur))
        fl = d.get("no allocator (floor)")
        if fl and "obstack" in d:
            goals.append("the workload with no allocator at all (floor) vs obstack: %.1fx, the most any allocator could reach" % (d["obstack"] / fl))
            if ref > fl and d["obstack"] > fl:
                goals.append("allocator's own cost above the floor, obstack vs arena: %.1fx (cursor: %s)" % (
                    (d["obstack"] - fl) / (ref - fl),
                    "%.1fx" % ((d["obstack"] - fl) / (cur - fl)) if cur and cur > fl else "at the floor"))
        if cur and "glibc 64K blocks (region)" in d:
            goals.append("arena through a cursor vs the hand-written 64K-block region: %.2fx" % (d["glibc 64K blocks (region)"] / cur))
    if w == "pool" and "glibc malloc/free" in d:
        goals.append("pool alloc+free vs glibc: %.1fx (goal >= 5x)" % (d["glibc malloc/free"] / ref))
        pc = d.get("heapkit pool (cursor)")
        if pc: goals.append("pool through a cursor vs glibc: %.1fx" % (d["glibc malloc/free"] / pc))
        fl = d.get("no allocator (floor)")
        if fl:
            goals.append("the pool workload with no allocator at all (floor) vs glibc: %.1fx, the most any allocator could reach" % (d["glibc malloc/free"] / fl))
            if ref > fl:
                goals.append("pool's own cost above the floor: %.2f ns per alloc+free (glibc's: %.2f)" % (ref - fl, d["glibc malloc/free"] - fl))
    if w in ("pool2t", "xthread") and "glibc malloc/free" in d:
        goals.append("%s: shared pool vs glibc %.1fx%s" % (w, d["glibc malloc/free"] / ref,
                     ", vs mimalloc %.1fx" % (d["mimalloc malloc/free"] / ref) if "mimalloc malloc/free" in d else ""))
lines += ["Goals (reported, not asserted): " + "; ".join(goals) + ".", "",
          "Command: `%s`. The machine is shared and noisy: compare ratios, and min/max show the spread." % cmd, "",
          "![arena benchmark](arena.png)", ""]
open(out + "/arena.md", "w").write("\n".join(lines))
print("\n".join(lines))
with open(out + "/arena.dat", "w") as f:
    for i, (w, rs) in enumerate(rows.items()):
        f.write("# %s\n" % w)
        for name, med, lo, hi in rs:
            f.write('"%s" %.3f\n' % (name, med))
        f.write("\n\n")
n = len(rows)
gp = ['set terminal pngcairo size 1200,%d font ",9"' % (330 * n), 'set output "%s/arena.png"' % out,
      'set multiplot layout %d,1' % n, 'set style fill solid 0.8', 'set boxwidth 0.6', 'set grid ytics',
      'set logscale y', 'set ylabel "ns per allocation (log)"', 'set xtics rotate by -20 noenhance', 'unset key']
for i, w in enumerate(rows):
    gp += ['set title "%s"' % title.get(w, w).replace('"', "'"),
           'plot "%s/arena.dat" index %d using 0:2:xtic(1) with boxes lc rgb "#4477aa", '
           '"" index %d using 0:2:(sprintf("%%.1f",$2)) with labels offset 0,0.7' % (out, i, i)]
gp.append('unset multiplot')
open(out + "/arena.gp", "w").write("\n".join(gp) + "\n")
PY
if command -v gnuplot >/dev/null; then gnuplot "$out/arena.gp" && echo "chart: $out/arena.png"; else echo "gnuplot not found: no chart"; fi
