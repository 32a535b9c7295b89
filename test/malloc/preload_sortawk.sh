#!/usr/bin/env bash
# sort and awk on tens of MB of generated text: multi-key and numeric sorts (with sort's own
# threads and big buffers), uniq -c, and awk aggregations over big associative arrays.
source "$(dirname "$0")/preload_common.sh"
need sort awk uniq md5sum
LINES=${HK_SORT_LINES:-600000}
awk -v n="$LINES" 'BEGIN { srand(12345); for (i = 0; i < n; i++) {
  k = int(rand() * 50000); printf "%08d key%d %.4f %s\n", int(rand() * 100000000), k, rand() * 1000, substr("abcdefghijklmnopqrstuvwxyz", 1 + k % 26, 1 + i % 20) } }' > "$TMP/input.txt"
echo "$name: input $(du -m "$TMP/input.txt" | cut -f1) MiB, $LINES lines"
export LC_ALL=C
cat > "$TMP/work.sh" <<EOS
in=$TMP/input.txt
sort -S 64M --parallel=2 -k2,2 -k3,3n "\$in" | md5sum
sort -n -r "\$in" | md5sum
sort -u -k4,4 "\$in" | wc -l
cut -d' ' -f2 "\$in" | sort | uniq -c | sort -k1,1nr -k2 | head -20
awk '{ s[\$2] += \$3; c[\$2]++; t[\$4] = t[\$4] \$1 } END { for (k in s) printf "%s %.3f %d\n", k, s[k], c[k]; n = 0; for (k in t) n += length(t[k]); print "t", n }' "\$in" | sort | md5sum
awk '{ a[NR % 1000] = a[NR % 1000] \$2 } END { for (i = 0; i < 1000; i++) x += length(a[i]); print x }' "\$in"
EOS
run_compare sortawk s bash "$TMP/work.sh"
echo "$name: ok"
