#!/usr/bin/env bash
# xz and zstd, each with two worker threads (blocks allocated by one thread, freed by another),
# compressing generated text of 2 MiB and decompressing it again: the compressed streams and the
# round trip must be the same with and without the preload. xz's -T2 cuts the input into blocks of
# --block-size, zstd's into jobs of -B bytes: small ones, so that both threads work on this input.
source "$(dirname "$0")/preload_common.sh"
need xz zstd md5sum awk
LINES=${HK_COMPRESS_LINES:-60000}
awk -v n="$LINES" 'BEGIN { srand(4242); for (i = 0; i < n; i++) {
  k = int(rand() * 30000); printf "%d,item%d,%.3f,%s\n", i, k, rand() * 100, substr("lorem ipsum dolor sit amet consectetur", 1 + k % 20, 3 + i % 17) } }' > "$TMP/input.txt"
echo "$name: input $(du -m "$TMP/input.txt" | cut -f1) MiB, $LINES lines"
cat > "$TMP/work.sh" <<EOS
in=$TMP/input.txt
xz -T2 --block-size=256KiB -6 -c "\$in" > x.xz && md5sum < x.xz && xz -T2 -dc x.xz | md5sum
xz -2 -c "\$in" | xz -dc | md5sum
zstd -q -T2 -B262144 -9 -c "\$in" > z.zst && md5sum < z.zst && zstd -q -T2 -dc z.zst | md5sum
zstd -q --long=24 -3 -c "\$in" | zstd -q --long=24 -dc | md5sum
md5sum < "\$in"
EOS
run_compare compress c bash "$TMP/work.sh"
echo "$name: ok"
