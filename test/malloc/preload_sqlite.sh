#!/usr/bin/env bash
# sqlite3 on a generated SQL script: tables, 200k inserts, indexes, joins, GROUP BY, ORDER BY,
# a recursive CTE, string building, an update, a delete, vacuum. Output and exit status compared.
source "$(dirname "$0")/preload_common.sh"
need sqlite3 awk
ROWS=${HK_SQLITE_ROWS:-200000}
awk -v rows="$ROWS" 'BEGIN {
  print "PRAGMA journal_mode=WAL;";
  print "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, city TEXT, score REAL);";
  print "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL, note TEXT);";
  print "BEGIN;";
  for (i = 1; i <= rows / 10; i++)
    printf "INSERT INTO customer VALUES(%d, %cname%d%c, %ccity%d%c, %.2f);\n", i, 39, i, 39, 39, i % 97, 39, (i * 7919) % 1000 / 10.0;
  for (i = 1; i <= rows; i++) {
    note = ""; for (k = 0; k < i % 13; k++) note = note "x" k;
    printf "INSERT INTO orders VALUES(%d, %d, %citem%d%c, %d, %.2f, %c%s%c);\n", i, (i * 31) % (rows / 10) + 1, 39, i % 503, 39, i % 17 + 1, (i * 13) % 9973 / 100.0, 39, note, 39;
  }
  print "COMMIT;";
  print "CREATE INDEX orders_customer ON orders(customer);";
  print "CREATE INDEX orders_item ON orders(item, qty);";
  print "CREATE INDEX customer_city ON customer(city);";
  print "SELECT count(*), sum(qty), round(sum(qty * price), 2) FROM orders;";
  print "SELECT c.city, count(*), round(sum(o.qty * o.price), 2) AS total FROM orders o JOIN customer c ON c.id = o.customer GROUP BY c.city ORDER BY total DESC, c.city LIMIT 25;";
  print "SELECT item, count(DISTINCT customer), max(qty), group_concat(DISTINCT qty) FROM orders GROUP BY item HAVING count(*) > 300 ORDER BY item LIMIT 40;";
  print "SELECT c.name, o.item, o.qty FROM customer c JOIN orders o ON o.customer = c.id WHERE c.score > 99 ORDER BY o.id LIMIT 30;";
  print "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 50000) SELECT count(*), sum(x), length(group_concat(x)) FROM n;";
  print "SELECT length(group_concat(note, \",\")) FROM orders;";
  print "UPDATE orders SET note = note || note WHERE qty > 10;";
  print "DELETE FROM orders WHERE id % 3 = 0;";
  print "SELECT count(*), sum(length(note)) FROM orders;";
  print "CREATE TABLE agg AS SELECT customer, count(*) AS n, group_concat(item) AS items FROM orders GROUP BY customer;";
  print "SELECT count(*), max(n), sum(length(items)) FROM agg;";
  print "VACUUM;";
  print "PRAGMA integrity_check;";
}' > "$TMP/script.sql"
echo "$name: script of $(wc -l < "$TMP/script.sql") statements, $(du -m "$TMP/script.sql" | cut -f1) MiB"
run_compare sqlite db sh -c "sqlite3 test.db < '$TMP/script.sql'"
echo "$name: ok"
