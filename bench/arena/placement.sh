#!/usr/bin/env bash
# A/B of the pool's inline paths over code placements (bench/arena/pool_placement.c).
#   bash bench/arena/placement.sh SRC_A BUILD_A SRC_B BUILD_B [ROUNDS]
# SRC_* are source trees (their include/ has the pool.h to test), BUILD_* build directories of
# them holding libheapkit.a (e.g. cmake -DCMAKE_BUILD_TYPE=Release -DHK_OVERRIDE=OFF, target
# heapkit_static). Builds the program at 8 placements against each, runs A and B alternately
# (ROUNDS rounds, default 5; checked and unchecked pools; setarch -R when present) and prints, per
# pool mode and library, the median at each placement and their mean.
set -eu
[ $# -ge 4 ] || { sed -n 2,8p "$0"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
srcA=$1 libA=$2/libheapkit.a srcB=$3 libB=$4/libheapkit.a rounds=${5:-5}
out=$(mktemp -d)
CC=${CC:-gcc}
pads="0 8 16 24 32 40 48 56"
for pad in $pads; do
  $CC -O2 -DPAD=$pad -I"$srcA/include" "$here/pool_placement.c" "$libA" -lpthread -lm -o "$out/A_$pad"
  $CC -O2 -DPAD=$pad -I"$srcB/include" "$here/pool_placement.c" "$libB" -lpthread -lm -o "$out/B_$pad"
done
run=""
command -v setarch >/dev/null && run="setarch -R"
for r in $(seq "$rounds"); do
  for pad in $pads; do
    for v in A B; do
      for m in c u; do echo "$v $pad $m $($run "$out/${v}_$pad" $m)"; done
    done
  done
done > "$out/raw.txt"
python3 - "$out/raw.txt" <<'PY'
import collections, statistics as st, sys
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    v, pad, m, t = line.split()
    d[(v, m, int(pad))].append(float(t))
pads = sorted({k[2] for k in d})
for m, name in (("c", "checked"), ("u", "unchecked")):
    for v in "AB":
        meds = [st.median(d[(v, m, p)]) for p in pads]
        print("%-9s %s  %s  mean %.3f" % (name, v, " ".join("%.3f" % x for x in meds), sum(meds) / len(meds)))
PY
rm -rf "$out"
