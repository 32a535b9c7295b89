#!/usr/bin/env bash
# The heapkit CLI: exit codes (0 placed, 1 no placement within the capacity, 2 malformed input or
# usage) and the messages that go with them. Usage: test_plan_cli.sh path/to/heapkit
set -u
HK=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# run CMD...: sets $rc, $out, $err
run() { "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err"); }
expect() { # rc pattern-in-stderr description
  [ "$rc" -eq "$1" ] || fail "$3: exit $rc, expected $1 (stderr: $err)"
  if [ -n "$2" ]; then grep -qF -- "$2" "$tmp/err" || fail "$3: stderr lacks '$2': $err"; fi
}

run "$HK" --help;             expect 0 "" "--help";  grep -q "plan" "$tmp/out" || fail "--help lists no plan"
run "$HK" help plan;          expect 0 "" "help plan"; grep -q -- "--capacity" "$tmp/out" || fail "help plan"
run "$HK" plan --help;        expect 0 "" "plan --help"; grep -q "exit status" "$tmp/out" || fail "plan --help"
run "$HK" --version;          expect 0 "" "--version"
run "$HK";                    expect 2 "usage" "no command"
run "$HK" frobnicate;         expect 2 "unknown command 'frobnicate'" "unknown command"
run "$HK" plan;               expect 2 "missing input file" "no input"
run "$HK" plan --bogus x.csv; expect 2 "unknown option '--bogus'" "unknown option"
run "$HK" plan --align 3 x.csv;            expect 2 "--align: '3' is not a power of two" "bad align"
# (an alignment hk_plan refuses was reported as 'sizes too large')
printf 'id,lower,upper,size\na,0,1,8\n' > "$tmp/one.csv"
run "$HK" plan --align 9223372036854775808 "$tmp/one.csv"; expect 2 "--align: '9223372036854775808' is too large" "align 2^63"
run "$HK" plan --align 4611686018427387904 "$tmp/one.csv"; expect 2 "--align: '4611686018427387904' is too large" "align 2^62"
run "$HK" plan --align 2305843009213693952 "$tmp/one.csv"; expect 0 "" "align 2^61"
printf 'id,lower,upper,size,align\na,0,1,8,4611686018427387904\n' > "$tmp/rowal.csv"
run "$HK" plan "$tmp/rowal.csv"; expect 2 "alignment too large (at most 2^61)" "align column 2^62"
run "$HK" plan --capacity abc x.csv;       expect 2 "--capacity: 'abc'" "bad capacity"
run "$HK" plan --time-limit -1 x.csv;      expect 2 "--time-limit" "bad time limit"
run "$HK" plan --time-limit 2e6 x.csv;     expect 2 "from 0 to 1000000" "time limit over the maximum (said 'not a number >= 0')"
run "$HK" plan "$tmp/missing.csv";         expect 2 "cannot open" "missing file"
# strtod also reads hex floats, "infinity", leading blanks: 0x10 was taken as 16 s
run "$HK" plan --time-limit 0x10 "$tmp/one.csv";  expect 2 "--time-limit: '0x10'" "hex time limit"
run "$HK" plan --time-limit ' 1' "$tmp/one.csv";  expect 2 "--time-limit: ' 1'" "time limit with a leading blank"
run "$HK" plan --time-limit 1e-3 "$tmp/one.csv";  expect 0 "" "time limit with an exponent"
run "$HK" plan --time-limit .5 "$tmp/one.csv";    expect 0 "" "time limit .5"
# an empty output name is bad usage (it was 'cannot write : No such file or directory', exit 3)
run "$HK" plan -o '' "$tmp/one.csv";             expect 2 "-o: empty file name" "-o ''"
run "$HK" plan --output= "$tmp/one.csv";         expect 2 "empty file name" "--output="
# the time limit bounds --method auto only; the other methods always finish their runs, so a
# limit given with one of them is refused rather than silently ignored
run "$HK" plan --method heuristics --time-limit 0.5 "$tmp/one.csv"; expect 2 "--time-limit applies only to --method auto" "heuristics + time limit"
run "$HK" plan --time-limit 0.5 --method greedy-size "$tmp/one.csv"; expect 2 "--time-limit applies only to --method auto" "greedy + time limit"
run "$HK" plan --method heuristics "$tmp/one.csv"; expect 0 "" "heuristics alone"
run "$HK" plan --method auto --time-limit 0.5 "$tmp/one.csv"; expect 0 "" "auto + time limit"

# a small trace: two overlapping 16-byte buffers, one later, one of size 0
printf 'id,lower,upper,size\nA,0,4,16\nB,2,6,16\nC,6,9,32\nZ,0,9,0\n' >"$tmp/t.csv"
run "$HK" plan "$tmp/t.csv"; expect 0 "lower bound 32, peak 32" "plan to stdout"
[ "$(head -1 "$tmp/out")" = "id,lower,upper,size,offset" ] || fail "output header: $(head -1 "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 5 ] || fail "output rows: $out"
grep -q "optimal" "$tmp/err" || fail "no optimality report: $err"
grep -qE '^C,6,9,32,0$' "$tmp/out" || fail "C should be at 0: $out"
run "$HK" plan --verify -o "$tmp/o.csv" "$tmp/t.csv"; expect 0 "peak 32" "-o"
[ -z "$out" ] || fail "-o still wrote to stdout"
# -o - is stdout, as the input '-' is stdin (it wrote a file named '-')
pushd "$tmp" >/dev/null
run "$HK" plan -o - "$tmp/t.csv"; expect 0 "peak 32" "-o -"
printf '%s\n' "$out" | grep -q '^A,0,4,16,' || fail "-o -: placement not on stdout: $out"
[ ! -e "$tmp/-" ] || fail "-o - wrote a file named '-'"
popd >/dev/null
grep -q '^A,0,4,16,' "$tmp/o.csv" || fail "-o file content"
run "$HK" plan -q - <"$tmp/t.csv"; expect 0 "" "stdin"; [ -z "$err" ] || fail "-q printed: $err"
# the output is itself a valid input (the offset column is accepted)
run "$HK" plan "$tmp/o.csv"; expect 0 "peak 32" "re-plan output"
# capacity: at the bound fits; below the bound is refused with exit 1 and nothing written
run "$HK" plan --capacity 32 "$tmp/t.csv"; expect 0 "peak 32" "capacity = bound"
run "$HK" plan --capacity 31 -o "$tmp/none.csv" "$tmp/t.csv"; expect 1 "no placement within capacity 31" "capacity < bound"
[ ! -e "$tmp/none.csv" ] || fail "output written despite exit 1"
# a capacity below the lower bound is answered at once, whatever the time limit: nothing is
# written on exit 1, so a placement is not worth computing (it ran the heuristics for the whole
# limit: a squeaky wheel over 5000 buffers that never reach the bound, as here, until the limit)
awk 'BEGIN { srand(7); print "id,lower,upper,size"; for (i = 0; i < 5000; i++) { l = int(rand() * 1000);
  printf "b%d,%d,%d,%d\n", i, l, l + 1 + int(rand() * rand() * 1000), int(exp(rand() * 12)) } }' >"$tmp/big.csv"
run timeout 60 "$HK" plan --capacity 1 --time-limit 1000000 "$tmp/big.csv"
expect 1 "no placement within capacity 1: the lower bound is" "capacity < bound, long time limit"
# one buffer: the report says "1 buffer"
run "$HK" plan "$tmp/one.csv"; expect 0 "heapkit plan: 1 buffer, lower bound 8, peak 8" "one buffer"
# above the bound but impossible because of alignment: proven by the search
printf 'id,lower,upper,size\nA,0,4,3\nB,0,4,3\n' >"$tmp/al.csv"
run "$HK" plan --align 8 --capacity 8 "$tmp/al.csv"; expect 1 "no placement within capacity 8 exists (proven" "capacity refuted"
run "$HK" plan --align 8 "$tmp/al.csv"; expect 0 "lower bound 6, peak 11" "alignment above the bound"
grep -q "optimal" "$tmp/err" || fail "alignment case not proven optimal: $err"
run "$HK" plan --capacity=1K --time-limit=0.5 --align=8 "$tmp/t.csv"; expect 0 "" "= forms and suffixes"
# alignment: the 16-byte buffers stay 64-aligned
run "$HK" plan --align 64 "$tmp/t.csv"; expect 0 "" "align"
awk -F, 'NR > 1 && $5 % 64 != 0 { bad = 1 } END { exit bad }' "$tmp/out" || fail "offsets not 64-aligned: $out"

# malformed inputs: exit 2, file:line: message
printf 'id,lower,upper\nA,0,4\n' >"$tmp/m1.csv"
run "$HK" plan "$tmp/m1.csv"; expect 2 "m1.csv:1: header lacks column 'size'" "missing column"
printf 'id,lower,upper,size\nA,0,4,16\nB,0,4,-3\n' >"$tmp/m2.csv"
run "$HK" plan "$tmp/m2.csv"; expect 2 "m2.csv:3: column 'size': negative value '-3'" "negative"
printf 'id,lower,upper,size\nA,0,four,16\n' >"$tmp/m3.csv"
run "$HK" plan "$tmp/m3.csv"; expect 2 "m3.csv:2: column 'upper': 'four' is not a non-negative integer" "non-numeric"
printf 'id,lower,upper,size\nA,0,4,16\n\nB,4,4,16\n' >"$tmp/m4.csv"
run "$HK" plan "$tmp/m4.csv"; expect 2 "m4.csv:4: empty interval [4, 4)" "empty interval"
printf 'id,lower,upper,size\nA,0,4,16\nA,5,6,1\n' >"$tmp/m5.csv"
run "$HK" plan "$tmp/m5.csv"; expect 2 "m5.csv:3: duplicate id 'A' (first on line 2)" "duplicate id"
printf 'id,lower,upper,size\nA,0,4\n' >"$tmp/m6.csv"
run "$HK" plan "$tmp/m6.csv"; expect 2 "m6.csv:2: expected 4 fields, found 3" "missing field"
[ -z "$out" ] || fail "malformed input produced output"

# a perfect packing (bound = 1000) cut by hand: placed at the bound
printf 'id,lower,upper,size\na,0,10,600\nb,0,5,400\nc,5,10,150\nd,5,8,250\ne,8,10,250\n' >"$tmp/p.csv"
run "$HK" plan --verify "$tmp/p.csv"; expect 0 "lower bound 1000, peak 1000" "perfect packing"
run "$HK" plan --cpu-time --time-limit 0.5 --verify "$tmp/p.csv"; expect 0 "lower bound 1000, peak 1000" "--cpu-time"
run "$HK" plan --help; grep -q -- "--cpu-time" "$tmp/out" || fail "plan --help lacks --cpu-time"

# files and paths that do not work: each a clear message and the documented status (review)
run "$HK" help frobnicate;                 expect 2 "unknown command 'frobnicate'" "help of an unknown command"
run "$HK" plan "$tmp/t.csv" --align;       expect 2 "option --align needs a value" "option value missing"
run "$HK" plan --method fastest "$tmp/t.csv"; expect 2 "--method: unknown method 'fastest'" "unknown method"
run "$HK" plan a.csv b.csv;                expect 2 "more than one input file ('b.csv')" "two inputs"
run "$HK" plan "$tmp";                     expect 2 "Is a directory" "a directory as input"
# a file without line ends: refused past 1 MiB, at once (getline grew /dev/zero's one line until
# memory ran out before 2026-12-07)
if [ -r /dev/zero ]; then
  run timeout 20 "$HK" plan /dev/zero;     expect 2 "/dev/zero:1: line longer than 1048576 bytes" "/dev/zero as input"
fi
if [ "$(id -u)" -ne 0 ]; then
  cp "$tmp/t.csv" "$tmp/locked.csv"; chmod 000 "$tmp/locked.csv"
  run "$HK" plan "$tmp/locked.csv";        expect 2 "cannot open: Permission denied" "unreadable input"
fi
run "$HK" plan -o "$tmp/no/such/dir/o.csv" "$tmp/t.csv"; expect 3 "cannot write $tmp/no/such/dir/o.csv: No such file or directory" "output in a missing directory"
run "$HK" plan -o "$tmp" "$tmp/t.csv";     expect 3 "cannot write $tmp: Is a directory" "output path is a directory"
if [ -w /dev/full ]; then
  run "$HK" plan "$tmp/t.csv" -o /dev/full; expect 3 "write error on /dev/full" "full device"
  "$HK" plan "$tmp/t.csv" >/dev/full 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err"); expect 3 "write error on stdout" "stdout on a full device"
  # the help texts and the version too (they exited 0 with nothing written before 2026-12-07)
  for args in "--help" "--version" "help" "help plan" "plan --help"; do
    "$HK" $args >/dev/full 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err")
    expect 3 "heapkit: write error on stdout: No space left on device" "$args to a full device"
  done
fi
"$HK" --version >&- 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err"); expect 3 "heapkit: write error on stdout: Bad file descriptor" "--version with stdout closed"

if [ "$fails" -ne 0 ]; then echo "test_plan_cli: $fails failures"; exit 1; fi
echo "test_plan_cli: all checks passed"
