# Shared by the preload_*.sh tests: run a real program without and with the preload library and
# demand the same (normalised) output and the same exit status.
#
# Environment:
#   HK_PRELOAD_LIB  library to preload (default: the first argument of the script, else
#                   $HEAPKIT_ROOT/build/libheapkit.so, else build/libheapkit.so under the repo)
#   HK_KEEP_TMP=1   keep the scratch directory for inspection
# Exit codes: 0 same behaviour, 1 a difference (diff shown), 77 skipped (program missing).
set -u
SKIP=77
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${HEAPKIT_ROOT:-$(cd "$here/../.." && pwd)}
LIB=${HK_PRELOAD_LIB:-${1:-$root/build/libheapkit.so}}
name=$(basename "$0" .sh)

skip() { echo "$name: SKIPPED: $*"; exit $SKIP; }
fail() { echo "$name: FAILED: $*"; exit 1; }
need() { for p in "$@"; do command -v "$p" >/dev/null 2>&1 || skip "program '$p' is not installed"; done; }

[ -f "$LIB" ] || fail "preload library $LIB does not exist (build it first: make)"
LIB=$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")
# ld.so only warns and goes on when a preload fails; make sure it really is loaded.
LD_PRELOAD=$LIB cat /proc/self/maps 2>/dev/null | grep -qF "$LIB" || fail "$LIB is not mapped into a preloaded process (LD_PRELOAD rejected it?)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hk_$name.XXXXXX")
cleanup() { if [ "${HK_KEEP_TMP:-0}" = 1 ]; then echo "$name: scratch kept in $TMP"; else rm -rf "$TMP"; fi; }
trap cleanup EXIT

# normalise: a sed script (default none) that removes timing-dependent text from outputs
NORMALIZE=${NORMALIZE:-}

# RETRIES: reruns allowed after a difference (default 0). Only for programs whose own output is
# timing-dependent (CPython's thread tests): the first difference is still shown.
RETRIES=${RETRIES:-0}

# compare_once LABEL WORKDIR-NAME COMMAND...: runs COMMAND in $TMP/plain/WORKDIR and
# $TMP/preload/WORKDIR; returns 0 when exit status and normalised output agree.
compare_once() {
  local label=$1 wd=$2; shift 2
  local t0 t1 t2 rc_plain rc_pre
  rm -rf "$TMP/plain/$wd" "$TMP/preload/$wd"
  mkdir -p "$TMP/plain/$wd" "$TMP/preload/$wd"
  t0=$(date +%s.%N)
  (cd "$TMP/plain/$wd" && "$@") >"$TMP/plain.$label.out" 2>&1; rc_plain=$?
  t1=$(date +%s.%N)
  (cd "$TMP/preload/$wd" && LD_PRELOAD=$LIB "$@") >"$TMP/preload.$label.out" 2>&1; rc_pre=$?
  t2=$(date +%s.%N)
  if [ -n "$NORMALIZE" ]; then
    sed -E -i "$NORMALIZE" "$TMP/plain.$label.out" "$TMP/preload.$label.out"
  fi
  # the scratch path differs between the two runs
  sed -i "s#$TMP/plain#SCRATCH#g" "$TMP/plain.$label.out"
  sed -i "s#$TMP/preload#SCRATCH#g" "$TMP/preload.$label.out"
  printf '%s: %-12s exit %d / %d with preload, %.1f s / %.1f s, %d output lines\n' "$name" "$label" "$rc_plain" "$rc_pre" \
    "$(awk "BEGIN{print $t1 - $t0}")" "$(awk "BEGIN{print $t2 - $t1}")" "$(wc -l <"$TMP/preload.$label.out")"
  if [ "$rc_plain" != "$rc_pre" ]; then
    tail -20 "$TMP/preload.$label.out"
    echo "$name: $label: exit status $rc_plain without the preload, $rc_pre with $LIB"
    return 1
  fi
  if ! cmp -s "$TMP/plain.$label.out" "$TMP/preload.$label.out"; then
    diff "$TMP/plain.$label.out" "$TMP/preload.$label.out" | head -40
    echo "$name: $label: output differs with $LIB preloaded"
    return 1
  fi
  return 0
}

run_compare() {
  local try=0
  until compare_once "$@"; do
    try=$((try + 1))
    [ "$try" -gt "$RETRIES" ] && fail "$1: differs (see above)"
    echo "$name: $1: retrying ($try of $RETRIES)"
  done
}
