/* Threaded stress: many threads allocate power-law sizes and swap blocks through shared slots, so
 * most frees happen on a thread other than the allocating one (the atomic thread-free path).
 *
 * Usage: malloc_stress [threads] [seconds] [max_size] [seed]
 *        (env HK_TEST_THREADS, HK_TEST_SECONDS, HK_TEST_MAXSIZE, HK_TEST_SEED)
 *
 * Every block carries a header {size, ~size ^ address} and the address/size pattern after it; the
 * thread that frees a block (usually not the one that allocated it) verifies both first, so a block
 * handed out twice, written by another thread, or returned to the wrong free list is caught. */
#define _GNU_SOURCE
#include <heapkit.h>
#include <pthread.h>
#include <stdatomic.h>

#include "block.h"

#define NSLOTS 8192

static _Atomic(uint64_t *) shared[NSLOTS];
static size_t max_size;
static double deadline;
static unsigned long long seed;
static _Atomic long total_ops, total_xfree;

static uint64_t *make_block(size_t n) { return tu_block_new(n < 16 ? 16 : n); }

static void check_block(const uint64_t *b, const char *why) {
  tu_block_check(b, why);
  CHECKF(b[0] <= max_size + 16 && hk_malloc_usable_size(b) >= b[0], "block %p: size %zu, usable %zu", (void *)b,
         (size_t)b[0], hk_malloc_usable_size(b));
}

static void *worker(void *arg) {
  tu_rng r;
  tu_seed(&r, seed * 1000003u + (uintptr_t)arg);
  uint64_t *local[32] = {0};
  long ops = 0, xfree = 0;
  while (1) {
    if ((ops & 255) == 0 && tu_now() > deadline) break;
    ops++;
    size_t n = tu_powerlaw_size(&r, max_size);
    uint64_t k = tu_below(&r, 100);
    if (k < 60) { /* swap through a shared slot: the old block was (probably) allocated elsewhere */
      uint64_t *b = make_block(n);
      uint64_t *old = atomic_exchange_explicit(&shared[tu_below(&r, NSLOTS)], b, memory_order_acq_rel);
      if (old) {
        check_block(old, "cross-thread free");
        hk_free(old);
        xfree++;
      }
    } else if (k < 85) { /* thread-local churn */
      int i = (int)tu_below(&r, 32);
      if (local[i]) {
        check_block(local[i], "local free");
        hk_free(local[i]);
      }
      local[i] = make_block(n < 4096 ? n : n / 64);
    } else if (k < 95) { /* take a shared block and realloc it here */
      uint64_t *old = atomic_exchange_explicit(&shared[tu_below(&r, NSLOTS)], NULL, memory_order_acq_rel);
      if (old) {
        check_block(old, "realloc");
        size_t on = old[0];
        size_t nn = n < 16 ? 16 : n;
        char *q = hk_realloc(old, nn);
        CHECK(q != NULL);
        size_t keep = (nn < on ? nn : on) - 16;
        size_t bad = tu_verify_as(q + 16, (char *)old + 16, keep, on - 16);
        CHECKF(bad == (size_t)-1, "realloc %zu -> %zu lost contents at %zu", on, nn, bad);
        hk_free(q);
      }
    } else { /* calloc / aligned, freed right away */
      if (k & 1) {
        char *p = hk_calloc(1, n);
        CHECK(p != NULL && tu_all_zero(p, n));
        hk_free(p);
      } else {
        size_t a = (size_t)16 << tu_below(&r, 12);
        void *p = hk_aligned_alloc(a, n);
        CHECK(p != NULL && (uintptr_t)p % a == 0);
        memset(p, 0x77, n);
        hk_free(p);
      }
    }
  }
  for (int i = 0; i < 32; i++)
    if (local[i]) {
      check_block(local[i], "thread exit");
      hk_free(local[i]);
    }
  atomic_fetch_add(&total_ops, ops);
  atomic_fetch_add(&total_xfree, xfree);
  return NULL;
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_stress";
  int threads = (int)tu_arg(argc, argv, 1, "HK_TEST_THREADS", 16);
  double seconds = (double)tu_arg(argc, argv, 2, "HK_TEST_SECONDS", 3);
  max_size = (size_t)tu_arg(argc, argv, 3, "HK_TEST_MAXSIZE", 4 << 20);
  seed = (unsigned long long)tu_arg(argc, argv, 4, "HK_TEST_SEED", 1);
  hk_stats s0, s1;
  hk_stats_get(&s0);
  double t0 = tu_now();
  int rounds = seconds >= 2 ? 2 : 1;
  /* Two rounds of fresh threads: the second reuses (adopts) pages left behind by the first, whose
   * blocks are still sitting in the shared slots. */
  for (int round = 0; round < rounds; round++) {
    deadline = tu_now() + seconds / rounds;
    pthread_t *t = malloc(sizeof(pthread_t) * threads);
    for (int i = 0; i < threads; i++) CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(round * 1000 + i)) == 0);
    for (int i = 0; i < threads; i++) CHECK(pthread_join(t[i], NULL) == 0);
    free(t);
  }
  for (int i = 0; i < NSLOTS; i++) {
    uint64_t *b = atomic_exchange(&shared[i], NULL);
    if (b) {
      check_block(b, "final drain");
      hk_free(b);
    }
  }
  hk_collect(true);
  hk_stats_get(&s1);
  CHECKF(s1.committed >= s1.in_use, "committed %zu < in_use %zu", s1.committed, s1.in_use);
  /* Everything was freed: what is still counted in use must be small (thread caches, metadata). */
  CHECKF(s1.in_use <= s0.in_use + (16u << 20), "in_use %zu after all blocks were freed (start %zu)", s1.in_use, s0.in_use);
  printf("malloc_stress: %d threads x %d rounds, %.1f s, max %zu: %ld ops, %ld cross-thread frees: ok (%.2f s)\n", threads,
         rounds, seconds, max_size, (long)total_ops, (long)total_xfree, tu_now() - t0);
  return 0;
}
