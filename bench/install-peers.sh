#!/usr/bin/env bash
# Install the peer allocators and collectors that the benchmarks compare against, if missing.
set -u
pkgs=(libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 libgc-dev libtalloc-dev gnuplot-nox)
need=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then echo "bench: missing peers (${need[*]}) and not root; those peers are skipped"; exit 0; fi
echo "bench: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || echo "bench: could not install some of: ${need[*]}"
