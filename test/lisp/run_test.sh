#!/usr/bin/env bash
# Runs the interpreter on one test program and compares what it prints (stdout and stderr
# together, in order) and its exit status with the expected ones.
#   run_test.sh LISP EXPECTED_OUTPUT EXPECTED_STATUS STDIN_FILE|- ARGS...
# With STDIN_FILE the program is fed on standard input (the REPL path); "-" means no redirection.
set -u
lisp=$1 expected=$2 want_status=$3 stdin=$4
shift 4
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ "$stdin" = - ]; then
  "$lisp" "$@" >"$out" 2>&1
else
  "$lisp" "$@" <"$stdin" >"$out" 2>&1
fi
status=$?
fail=0
if [ "$status" -ne "$want_status" ]; then
  echo "exit status $status, expected $want_status"
  fail=1
fi
if ! diff -u "$expected" "$out"; then
  echo "output differs from $expected (diff above: - expected, + got)"
  fail=1
fi
exit $fail
