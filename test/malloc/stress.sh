#!/usr/bin/env bash
# Soaks of the general allocator for `make stress` (15-20 minutes on 2 cores): the programs of
# `make test` with bigger parameters. Uses the Release build in $BUILD (default build/).
# HK_STRESS_SECONDS scales the time-based soaks (default 60).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${HEAPKIT_ROOT:-$(cd "$here/../.." && pwd)}
build=$root/${BUILD:-build}
bin=$build/test/malloc
lib=$build/libheapkit.so
secs=${HK_STRESS_SECONDS:-60}
[ -x "$bin/malloc_stress" ] || { echo "malloc stress: $bin/malloc_stress missing: run make first"; exit 1; }
pass=0; fail=0; failed=()
run() { # name command...
  local name=$1; shift
  local t0 rc
  t0=$(date +%s)
  echo "--- $name: $*"
  "$@"; rc=$?
  if [ "$rc" = 0 ]; then pass=$((pass + 1)); echo "--- $name: ok ($(( $(date +%s) - t0 )) s)"
  elif [ "$rc" = 77 ]; then echo "--- $name: skipped"
  else fail=$((fail + 1)); failed+=("$name"); echo "--- $name: FAILED (exit $rc, $(( $(date +%s) - t0 )) s)"; fi
}
run stress-32x8MiB "$bin/malloc_stress" 32 "$secs" $((8 << 20)) 7
run stress-64x64KiB "$bin/malloc_stress" 64 $((secs / 2)) 65536 8
for seed in 11 12 13 14; do run "random-seed$seed" "$bin/malloc_random" 3000000 "$seed" $((1 << (14 + seed % 4 * 2))); done
run churn-20000 "$bin/malloc_churn" 20000 16 300
run fork-40 "$bin/malloc_fork" 40 8
run fcache-threads-2000 "$bin/malloc_fcache_threads" 2000
run dlopen-32 "$bin/malloc_dlopen" "$lib" hk_malloc hk_free 32
if [ -x "$bin/malloc_libc" ]; then
  HK_PY_TESTS="test_list test_dict test_set test_unicode test_json test_re test_bytes test_collections test_itertools
    test_functools test_sort test_deque test_decimal test_fractions test_pickle test_codecs test_threading test_thread
    test_queue test_gc test_weakref test_struct test_array test_long test_mmap test_ctypes test_statistics test_heapq
    test_bisect test_string test_textwrap test_difflib test_csv test_zlib test_hashlib test_tarfile test_zipfile" \
    run preload-python "$here/preload_python.sh" "$lib"
  HK_SQLITE_ROWS=1000000 run preload-sqlite "$here/preload_sqlite.sh" "$lib"
  HK_GIT_FILES=10000 run preload-git "$here/preload_git.sh" "$lib"
  HK_SORT_LINES=4000000 run preload-sortawk "$here/preload_sortawk.sh" "$lib"
  run preload-gcc "$here/preload_gcc.sh" "$lib"
  HK_REDIS_COMMANDS=300000 run preload-redis "$here/preload_redis.sh" "$lib"
  HK_PERL_KEYS=1000000 run preload-perl "$here/preload_perl.sh" "$lib"
  HK_CXX_N=2000000 run preload-cmake "$here/preload_cmake.sh" "$lib"
  HK_SHELL_N=6000 run preload-shell "$here/preload_shell.sh" "$lib"
  HK_OPENSSL_LINES=1000000 run preload-openssl "$here/preload_openssl.sh" "$lib"
  HK_LUA_N=3000000 run preload-lua "$here/preload_lua.sh" "$lib"
  HK_RUBY_N=1000000 run preload-ruby "$here/preload_ruby.sh" "$lib"
  HK_TCL_N=1000000 run preload-tcl "$here/preload_tcl.sh" "$lib"
  # the forking and interpreter programs again with the runtime options that unmap at once
  HEAPKIT_SEGMENT_CACHE=0 HEAPKIT_PURGE_DELAY=0 HEAPKIT_PURGE_FREE=1 HK_SHELL_N=3000 \
    run preload-shell-nocache "$here/preload_shell.sh" "$lib"
  HEAPKIT_SEGMENT_CACHE=0 HEAPKIT_PURGE_DELAY=0 HEAPKIT_PURGE_FREE=1 run preload-ruby-nocache "$here/preload_ruby.sh" "$lib"
  HEAPKIT_HARDENED=1 run preload-lua-hardened "$here/preload_lua.sh" "$lib"
fi
[ ${#failed[@]} -gt 0 ] && printf 'malloc stress FAILED: %s\n' "${failed[@]}"
echo "malloc stress: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
