#!/usr/bin/env bash
# ctest valgrind.memcheck: run each command (one string, split on spaces) under memcheck; a
# command that fails, or any memcheck error, fails the test.
# Usage: memcheck.sh VALGRIND "CMD ARGS..." ...
set -u
vg=$1; shift
fail=0
for cmd in "$@"; do
  # shellcheck disable=SC2086
  out=$("$vg" -q --error-exitcode=99 --track-origins=yes $cmd 2>&1 >/dev/null); rc=$?
  errors=$(printf '%s\n' "$out" | grep -c '^==[0-9]*== [A-Z]')
  printf "memcheck: %-60s exit %d, %d error lines\n" "$cmd" "$rc" "$errors"
  if [ "$rc" -ne 0 ] || [ "$errors" -ne 0 ]; then
    printf '%s\n' "$out" | head -40
    fail=1
  fi
done
[ $fail -eq 0 ] && echo "valgrind.memcheck: every program ran clean"
exit $fail
