/* Shared helpers for the malloc workloads.
 *
 * Every workload is a standalone program that calls only the plain libc allocation functions, so any
 * allocator can be swapped in with LD_PRELOAD. A workload prints exactly one line on stdout:
 *   OK checksum=<hex> [key=value ...]
 * where the checksum depends only on the arguments (never on addresses or thread interleaving), so the
 * runner can compare it across allocators; or `FAIL <reason>` with exit status 2 when a block's
 * contents were not what was written into it (a broken allocator must never be timed as a fast one).
 * The first argument is a scale factor (default 1.0) that multiplies the amount of work. */
#ifndef WL_H
#define WL_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* xorshift64*: fast, good enough for picking sizes and slots, and deterministic per seed. */
typedef struct wl_rng { uint64_t s; } wl_rng;

static inline wl_rng wl_rng_make(uint64_t seed) {
  /* splitmix the seed so that seeds 1, 2, 3 give unrelated streams */
  uint64_t z = seed + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  wl_rng r = { z ? z : 1 };
  return r;
}
static inline uint64_t wl_next(wl_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  r->s = x;
  return x * 0x2545f4914f6cdd1dull;
}
/* uniform in [lo, hi] */
static inline size_t wl_range(wl_rng *r, size_t lo, size_t hi) {
  return lo + (size_t)(wl_next(r) % (uint64_t)(hi - lo + 1));
}
/* roughly log-uniform in [lo, hi]: many small, few large, as real size spectra are */
static inline size_t wl_logrange(wl_rng *r, size_t lo, size_t hi) {
  int blo = 63 - __builtin_clzll(lo), bhi = 63 - __builtin_clzll(hi);
  int b = blo + (int)(wl_next(r) % (uint64_t)(bhi - blo + 1));
  size_t base = (size_t)1 << b;
  size_t s = base + (size_t)(wl_next(r) % base);
  return s < lo ? lo : s > hi ? hi : s;
}
static inline uint64_t wl_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static inline double wl_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size in KiB, from /proc/self/statm (with open/read, not stdio, so that sampling does not
 * itself allocate). */
static inline long wl_rss_kb(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = buf;
  while (*p && *p != ' ') p++;          /* skip total size */
  long pages = strtol(p, NULL, 10);     /* resident */
  return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline double wl_scale(int argc, char **argv) {
  double s = argc > 1 ? atof(argv[1]) : 1.0;
  return s > 0 ? s : 1.0;
}
static inline long wl_scaled(double scale, long n) {
  long v = (long)(scale * (double)n);
  return v < 1 ? 1 : v;
}

__attribute__((noreturn, format(printf, 1, 2)))
static inline void wl_fail(const char *fmt, ...) {
  char msg[256];
  __builtin_va_list ap;
  __builtin_va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  __builtin_va_end(ap);
  printf("FAIL %s\n", msg);
  fflush(stdout);
  _exit(2);
}

static inline void *wl_check_alloc(void *p, size_t n) {
  if (!p) wl_fail("allocation of %zu bytes returned NULL", n);
  return p;
}

/* A block is stamped with a tag in its first and last word and the rest filled, the way programs
 * initialise what they allocate. Blocks under 16 bytes are filled with
 * the tag's low byte. Checking the two ends
 * before every free catches an allocator that hands out overlapping blocks or corrupts live ones. */
static inline void wl_fill(void *p, size_t n, uint64_t tag) {
  unsigned char *b = p;
  if (n < 16) { memset(b, (int)(tag & 0xff), n); return; }
  if (n > 16) memset(b + 8, (int)(tag & 0xff), n - 16);
  memcpy(b, &tag, 8);
  memcpy(b + n - 8, &tag, 8);
}
static inline void wl_verify(const void *p, size_t n, uint64_t tag) {
  const unsigned char *b = p;
  if (n < 16) {
    for (size_t i = 0; i < n; i++)
      if (b[i] != (unsigned char)(tag & 0xff)) wl_fail("block %p (%zu bytes) corrupted", p, n);
    return;
  }
  uint64_t h, t;
  memcpy(&h, b, 8);
  memcpy(&t, b + n - 8, 8);
  if (h != tag || t != tag) wl_fail("block %p (%zu bytes) corrupted", p, n);
  if (n > 16 && b[n / 2] != (unsigned char)(tag & 0xff)) wl_fail("block %p (%zu bytes) corrupted", p, n);
}

/* Large blocks: touch one byte per page so the memory is really committed, as a program writing its
 * buffer would, without letting memset dominate the measurement. */
static inline void wl_touch(void *p, size_t n, uint64_t tag) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i += 4096) b[i] = (unsigned char)(tag >> 8);
  if (n >= 16) { memcpy(b, &tag, 8); memcpy(b + n - 8, &tag, 8); }
}
static inline void wl_verify_touch(const void *p, size_t n, uint64_t tag) {
  const unsigned char *b = p;
  uint64_t h, t;
  memcpy(&h, b, 8);
  memcpy(&t, b + n - 8, 8);
  if (h != tag || t != tag) wl_fail("large block %p (%zu bytes) corrupted", p, n);
  for (size_t i = 4096; i + 8 < n; i += 4096)
    if (b[i] != (unsigned char)(tag >> 8)) wl_fail("large block %p (%zu bytes) corrupted at %zu", p, n, i);
}

#endif
