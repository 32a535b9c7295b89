#!/usr/bin/env bash
# python3 (Debian's) with PYTHONMALLOC=malloc, so every Python object goes through the preloaded
# malloc, running a slice of CPython's own regression suite (package libpython3.11-testsuite):
# containers, strings, regex, json, threads, the cyclic GC.
# HK_PY_TESTS overrides the list (test/stress.sh passes a longer one).
source "$(dirname "$0")/preload_common.sh"
PY=${HK_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || skip "$PY is not installed"
"$PY" -c 'import test.libregrtest' 2>/dev/null || skip "CPython's test suite is missing (apt-get install libpython3.11-testsuite)"
TESTS=${HK_PY_TESTS:-"test_list test_dict test_set test_unicode test_json test_re test_bytes test_collections test_itertools
  test_functools test_sort test_deque test_threading test_gc test_struct"}
# regrtest prints elapsed times and load averages: strip them before comparing.
NORMALIZE='s/^[0-9]+:[0-9]+:[0-9]+ load avg: [0-9.]+ //; /^Total duration/d; s/ in [0-9.]+ (sec|ms|min)[^)]*//; s/\([0-9.]+ (sec|ms)\)//g'
# CPython's thread tests can print timing-dependent warnings: one rerun is allowed after a difference.
RETRIES=${RETRIES:-1}
export PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
# shellcheck disable=SC2086
run_compare regrtest py "$PY" -m test --timeout 300 $TESTS
echo "$name: ok"
