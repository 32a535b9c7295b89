#!/usr/bin/env bash
# redis-server (Debian's, linked against jemalloc: preloading heapkit takes malloc, free, realloc,
# calloc and malloc_usable_size from it) with two I/O threads and lazy freeing in its background
# thread, so blocks are freed by threads that did not allocate them. The session:
#   - redis-benchmark against it (random keys, pipelined; its output is not compared, its exit
#     status is), then FLUSHALL ASYNC;
#   - a generated command stream through `redis-cli --pipe`: strings of 1 B to 256 KiB, APPEND
#     growth, lists, hashes, sets, sorted sets, deletes and overwrites;
#   - queries, DEBUG DIGEST (a hash of the whole data set), DEBUG RELOAD (dump and reload it all),
#     the queries and the digest again, FLUSHALL ASYNC, a smaller stream, a last digest.
# Output and exit status are compared with a run without the preload.
source "$(dirname "$0")/preload_common.sh"
need redis-server redis-cli redis-benchmark awk
N=${HK_REDIS_COMMANDS:-100000}
# The streams are in Redis's protocol (RESP): inline commands are limited to 64 KiB.
cat > "$TMP/resp.awk" <<'EOA'
function bulk(s) { return "$" length(s) "\r\n" s "\r\n" }
function cmd3(a, b, c) { printf "*3\r\n%s%s%s", bulk(a), bulk(b), bulk(c) }
function cmd2(a, b) { printf "*2\r\n%s%s", bulk(a), bulk(b) }
function cmd4(a, b, c, d) { printf "*4\r\n%s%s%s%s", bulk(a), bulk(b), bulk(c), bulk(d) }
function val(i, len,   s) { s = "v" i "-"; while (length(s) < len) s = s s; return substr(s, 1, len) }
BEGIN {
  for (i = 0; i < n; i++) {
    k = i % 5000; r = (i * 7919) % 1000;
    len = r < 600 ? 1 + r % 64 : r < 900 ? 65 + (i * 13) % 2000 : r < 995 ? 2049 + (i * 31) % 30000 : 65536 + (i * 97) % 196608;
    op = part == 2 ? 0 : i % 11;
    if (part == 2) cmd3("SET", "t:" (i % 3000), val(i, 1 + (i * 37) % 5000));
    else if (op <= 2) cmd3("SET", "s:" k, val(i, len));
    else if (op == 3) cmd3("APPEND", "a:" (k % 300), val(i, 1 + len % 700));
    else if (op == 4) cmd3("RPUSH", "l:" (k % 200), val(i, 1 + len % 300));
    else if (op == 5) cmd2("LPOP", "l:" ((k * 3) % 200));
    else if (op == 6) cmd4("HSET", "h:" (k % 400), "f" (i % 97), val(i, 1 + len % 500));
    else if (op == 7) cmd3("SADD", "z:" (k % 150), "m" (i % 1009));
    else if (op == 8) cmd4("ZADD", "q:" (k % 150), r, "m" (i % 499));
    else if (op == 9) cmd2("DEL", "s:" ((k * 7) % 5000));
    else cmd3("SREM", "z:" ((k * 5) % 150), "m" ((i * 3) % 1009));
  }
}
EOA
awk -v n="$N" -v part=1 -f "$TMP/resp.awk" > "$TMP/stream1.txt"
awk -v n="$((N / 10))" -v part=2 -f "$TMP/resp.awk" > "$TMP/stream2.txt"
cat > "$TMP/queries.txt" <<'EOQ'
DBSIZE
STRLEN a:17
GETRANGE s:42 0 40
LLEN l:5
LRANGE l:7 0 5
HLEN h:11
HGET h:12 f5
SCARD z:3
SINTERCARD 2 z:4 z:5
ZRANGE q:9 0 10 WITHSCORES
ZCOUNT q:10 100 700
SORT z:6 ALPHA LIMIT 0 10
EOQ
cat > "$TMP/session.sh" <<'EOS'
set -u
sock=$PWD/r.sock
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --daemonize no \
  --io-threads 2 --io-threads-do-reads yes --lazyfree-lazy-user-flush yes --lazyfree-lazy-user-del yes \
  --enable-debug-command local --dir "$PWD" --logfile "$PWD/server.log" &
pid=$!
cli() { redis-cli -s "$sock" "$@"; }
for i in $(seq 100); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
cli ping
redis-benchmark -s "$sock" -q -n 40000 -r 20000 -d 300 -P 16 -t set,get,lpush,lpop,hset,sadd,zadd,mset >/dev/null 2>&1
echo "benchmark exit $?"
cli flushall async
cli --pipe < stream1.txt | grep -E 'errors|replies'
query() { while read -r q; do echo "> $q"; cli $q; done < queries.txt; cli debug digest; }
query
cli debug reload
query
cli flushall async
cli --pipe < stream2.txt | grep -E 'errors|replies'
cli dbsize
cli debug digest
cli shutdown nosave >/dev/null 2>&1
wait $pid
echo "server exit $?"
EOS
# The session runs in the scratch work directory of each run; give it its inputs there.
prep() { cp "$TMP"/stream1.txt "$TMP"/stream2.txt "$TMP"/queries.txt "$TMP"/session.sh . && bash session.sh; }
export -f prep
export TMP
echo "$name: $N commands in the first stream"
run_compare redis redis bash -c prep
echo "$name: ok"
