/* Helpers shared by the general allocator's tests: checks that stay on in Release builds (assert()
 * is compiled out there by -DNDEBUG), a small seeded PRNG, power-law sizes, and a fill pattern that
 * depends on a block's address and size so that a block overwritten by another block, handed out
 * twice, or moved without its contents is caught when it is verified. */
#ifndef HK_TEST_MALLOC_UTIL_H
#define HK_TEST_MALLOC_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* After a moving realloc the old address is still used, as a number: it seeds the pattern the
 * block was filled with. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wuse-after-free"

static const char *tu_test_name = "test";

/* Fails loudly with the location and the failed expression; abort() so a core/backtrace is possible. */
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s: %s:%d: check failed: %s\n", tu_test_name, __FILE__, __LINE__, #cond);  \
      fflush(stdout); fflush(stderr);                                                              \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

#define CHECKF(cond, ...)                                                                          \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s: %s:%d: check failed: %s: ", tu_test_name, __FILE__, __LINE__, #cond);   \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      fflush(stdout); fflush(stderr);                                                              \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* Like CHECKF but goes on: for properties whose failure leaves the process in a sane state, so
 * one run lists every broken property. main() must return tu_failures != 0. */
static int tu_failures __attribute__((unused));
#define EXPECTF(cond, ...)                                                                         \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s: %s:%d: expectation failed: %s: ", tu_test_name, __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      fflush(stdout); fflush(stderr);                                                              \
      tu_failures++;                                                                               \
    }                                                                                              \
  } while (0)
#define EXPECT(cond) EXPECTF(cond, "%s", "")

/* xorshift64*: deterministic per seed, cheap, good enough to pick operations and sizes. */
typedef struct tu_rng { uint64_t s; } tu_rng;
static inline void tu_seed(tu_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull; if (!r->s) r->s = 1; }
static inline uint64_t tu_next(tu_rng *r) {
  uint64_t x = r->s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}
/* Uniform in [0, n). */
static inline uint64_t tu_below(tu_rng *r, uint64_t n) { return n ? tu_next(r) % n : 0; }

/* Sizes with a power-law tail: mostly small, a few up to max. The exponent is uniform, so each
 * doubling of size is about equally likely, which is how real size mixes look on a log scale. */
static inline size_t tu_powerlaw_size(tu_rng *r, size_t max) {
  int bits = 0;
  while (((size_t)1 << (bits + 1)) <= max) bits++;
  /* square the uniform draw to bias toward small exponents */
  uint64_t u = tu_below(r, 1000);
  int e = (int)((u * u * (uint64_t)(bits + 1)) / 1000000);
  size_t lo = e ? (size_t)1 << (e - 1) : 0;
  size_t hi = (size_t)1 << e;
  size_t n = lo + (size_t)tu_below(r, hi - lo + 1);
  return n > max ? max : n;
}

/* The pattern word for 8-byte word i of a block at p of size n. */
static inline uint64_t tu_word(const void *p, size_t n, size_t i) {
  uint64_t x = (uint64_t)(uintptr_t)p ^ ((uint64_t)n << 17) ^ (i * 0x9E3779B97F4A7C15ull);
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

/* Runs fn(arg) on a new thread and waits for it to end (and its thread-exit work with it). */
static inline void tu_run_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    abort();
  }
  pthread_join(t, NULL);
}

/* Fill [p, p+n) with the pattern of (p, n). For big blocks only the first and last 64 KiB and one
 * word per 4 KiB page in between are written: enough to catch overlap and lost contents without
 * making multi-MiB blocks dominate the run time. */
#define TU_FULL_LIMIT ((size_t)256 << 10)
static inline int tu_word_selected(size_t n, size_t i) {
  if (n <= TU_FULL_LIMIT) return 1;
  size_t off = i * 8;
  return off < (64u << 10) || off + (64u << 10) >= n || (off & 4095) == 0;
}
static inline void tu_fill(void *p, size_t n) {
  uint64_t *w = (uint64_t *)p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++)
    if (tu_word_selected(n, i)) memcpy(&w[i], &(uint64_t){tu_word(p, n, i)}, 8);
  unsigned char *b = (unsigned char *)p;
  for (size_t j = words * 8; j < n; j++) b[j] = (unsigned char)(tu_word(p, n, words) >> (8 * (j & 7)));
}
/* Returns the offset of the first wrong byte, or (size_t)-1 if the block is intact. The pattern is
 * checked as written for (expect_p, n): after a realloc that moved the block, pass the old address. */
static inline size_t tu_verify_as(const void *p, const void *expect_p, size_t n, size_t fill_n) {
  const unsigned char *b = (const unsigned char *)p;
  size_t words = fill_n / 8;
  for (size_t i = 0; i < words && (i + 1) * 8 <= n; i++) {
    if (!tu_word_selected(fill_n, i)) continue;
    uint64_t v, e = tu_word(expect_p, fill_n, i);
    memcpy(&v, b + i * 8, 8);
    if (v != e) return i * 8;
  }
  for (size_t j = words * 8; j < fill_n && j < n; j++)
    if (b[j] != (unsigned char)(tu_word(expect_p, fill_n, words) >> (8 * (j & 7)))) return j;
  return (size_t)-1;
}
static inline size_t tu_verify(const void *p, size_t n) { return tu_verify_as(p, p, n, n); }

static inline double tu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The process's address space in bytes (/proc/self/statm's first field): what RLIMIT_AS counts. */
static inline size_t tu_vm_size(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  CHECK(f && fscanf(f, "%lu", &pages) == 1);
  fclose(f);
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Integer parameter from argv[i] or the environment, else the default. */
static inline long tu_arg(int argc, char **argv, int i, const char *env, long def) {
  if (i < argc) return strtol(argv[i], NULL, 0);
  const char *e = env ? getenv(env) : NULL;
  return e && *e ? strtol(e, NULL, 0) : def;
}

static inline int tu_all_zero(const void *p, size_t n) {
  const unsigned char *b = (const unsigned char *)p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

#endif
