#!/usr/bin/env bash
# ctest arena.valgrind: the stale accesses of test_arena_valgrind must be three valgrind errors;
# the clean run must have none. Usage: arena_valgrind.sh VALGRIND EXE
set -u
vg=$1 exe=$2
out=$("$vg" -q --error-exitcode=99 "$exe" clean 2>&1); rc=$?
if [ $rc -ne 0 ]; then echo "clean run reported errors (rc $rc):"; echo "$out"; exit 1; fi
out=$("$vg" -q --error-exitcode=99 "$exe" stale 2>&1); rc=$?
n=$(printf '%s\n' "$out" | grep -c "Invalid read")
if [ $rc -ne 99 ] || [ "$n" -ne 3 ]; then echo "stale run: rc $rc, $n invalid reads (want 99, 3):"; echo "$out"; exit 1; fi
echo "arena.valgrind: clean run silent, 3 stale reads reported"
