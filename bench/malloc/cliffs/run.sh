#!/bin/sh
# Usage: run.sh MODE [scale]: user, system seconds and max RSS (KB) per allocator.
B=${CLIFFS_BIN:-/tmp/cliffs}; HK=${HK:-$(dirname "$0")/../../../build/libheapkit.so}
MI=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
for a in glibc heapkit mimalloc; do
  case $a in glibc) P=;; heapkit) P=$HK;; mimalloc) P=$MI;; esac
  printf '%-9s %-12s ' "$a" "$1"
  LD_PRELOAD=$P /usr/bin/time -f '%U %S %M' "$B" "$@" 2>&1 >/dev/null | tail -1
done
