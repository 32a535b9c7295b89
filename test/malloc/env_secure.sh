#!/usr/bin/env bash
# A set-user-ID program linked with heapkit ignores the HEAPKIT_* variables (glibc ignores MALLOC_*
# there): HEAPKIT_VERBOSE=2 traced every mapping, with its address, of a privileged process (an
# ASLR leak), HEAPKIT_SHOW_STATS printed its statistics. Needs root (to make the copy set-user-ID
# root) and setpriv (to run it as nobody); otherwise skipped (exit 77).
# Usage: env_secure.sh path/to/malloc_env_secure
set -u
bin=$1
if [ "$(id -u)" -ne 0 ] || ! command -v setpriv >/dev/null; then echo "env_secure: needs root and setpriv; skipped"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
cp "$bin" "$tmp/prog" && chown 0:0 "$tmp/prog" && chmod 4755 "$tmp/prog" || exit 1
vars=(HEAPKIT_VERBOSE=2 HEAPKIT_PURGE_DELAY=77 HEAPKIT_SHOW_STATS=1 HEAPKIT_HARDENED=1 HEAPKIT_SEGMENT_CACHE=3 HEAPKIT_GC_STRESS=5)
defaults="verbose=1 purge_delay=100 show_stats=0 hardened=0 segment_cache=32 gc_stress=0"
# the variables reach an ordinary program (so the test can tell)
out=$(env "${vars[@]}" "$tmp/prog" 2>/dev/null)
case "$out" in *"secure=0 verbose=2 purge_delay=77 show_stats=1 hardened=1 segment_cache=3 gc_stress=5"*) ;;
  *) echo "FAIL: an ordinary program did not read the variables: $out"; exit 1;; esac
out=$(env "${vars[@]}" setpriv --reuid=65534 --regid=65534 --clear-groups "$tmp/prog" 2>"$tmp/err"); rc=$?
case "$out" in *"secure=1 "*) ;; *) echo "env_secure: the copy did not run set-user-ID ($out, status $rc; a nosuid file system?); skipped"; exit 77;; esac
fails=0
[ "$rc" -eq 0 ] || { echo "FAIL: the set-user-ID run exited $rc"; fails=1; }
[ "$out" = "secure=1 $defaults" ] || { echo "FAIL: a set-user-ID program read HEAPKIT_* variables: $out (expected secure=1 $defaults)"; fails=1; }
[ -s "$tmp/err" ] && { echo "FAIL: the set-user-ID run wrote to stderr (trace or statistics):"; head -5 "$tmp/err"; fails=1; }
[ "$fails" -eq 0 ] && echo "env_secure: ok ($out)"
exit "$fails"
