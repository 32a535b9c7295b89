/* The foreign-block cache (src/malloc/rfree.c) under threads that come and go: a thread keeps
 * blocks of 1-16 KiB that it frees into other threads' pages and allocates them again itself.
 *   - generations of threads pass such blocks to each other (some through realloc), each block
 *     filled with its (address, size) pattern and checked whole before every free and realloc,
 *     its usable size checked; each generation exits holding cached blocks of the others' pages,
 *     and blocks it handed on outlive it in the mailboxes for the next generation;
 *   - a thread frees (and keeps) blocks of an owner that is alive, the owner exits (its segment
 *     abandoned, still in use), a third thread adopts the segment and exits (abandoning it again),
 *     then the holder's mallocs return the blocks it kept; it writes, checks and frees them.
 * At the end everything is freed: the statistics are back where they started.
 *
 * Usage: malloc_fcache_threads [generations]   (env HK_TEST_GENERATIONS) */
#define _GNU_SOURCE
#include <heapkit.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "testutil.h"

#define T 4
#define MB 64
#define LIVE 32
static _Atomic(unsigned char *) mbox[T][MB];
static atomic_int bad;

/* [0, 8) the size, then the pattern of (block, size) */
static unsigned char *make(size_t n) {
  unsigned char *p = hk_malloc(n);
  CHECK(p != NULL);
  memcpy(p, &n, sizeof n);
  tu_fill(p + 8, n - 8);
  return p;
}
static size_t size_of(const unsigned char *p) {
  size_t n;
  memcpy(&n, p, sizeof n);
  return n;
}
static void verify(const unsigned char *p) {
  size_t n = size_of(p);
  if (n < 1100 || n > 16384 || hk_malloc_usable_size(p) < n || tu_verify(p + 8, n - 8) != (size_t)-1) atomic_fetch_add(&bad, 1);
}

static void *gen_thread(void *arg) {
  int id = (int)(uintptr_t)arg % T;
  tu_rng r;
  tu_seed(&r, (uint64_t)(uintptr_t)arg + 1);
  unsigned char *live[LIVE] = {0};
  for (int i = 0; i < 3000; i++) {
    int s = (int)tu_below(&r, LIVE);
    size_t n = 1100 + tu_below(&r, 16384 - 1100 + 1);
    if (!live[s]) {
      live[s] = make(n);
    } else {
      verify(live[s]);
      switch (tu_below(&r, 3)) {
      case 0: { /* to another thread, which frees it */
        int to = (id + 1 + (int)tu_below(&r, T - 1)) % T;
        unsigned char *old = atomic_exchange(&mbox[to][tu_below(&r, MB)], live[s]);
        if (old) {
          verify(old);
          hk_free(old);
        }
        break;
      }
      case 1: { /* realloc: the contents up to the smaller size move with it */
        size_t oldn = size_of(live[s]);
        unsigned char *q = hk_realloc(live[s], n);
        CHECK(q != NULL);
        size_t keep = oldn < n ? oldn : n;
        if (tu_verify_as(q + 8, live[s] + 8, keep - 8, oldn - 8) != (size_t)-1 || hk_malloc_usable_size(q) < n)
          atomic_fetch_add(&bad, 1);
        memcpy(q, &n, sizeof n);
        tu_fill(q + 8, n - 8);
        live[s] = q;
        continue;
      }
      default:
        hk_free(live[s]);
      }
      live[s] = NULL;
    }
    unsigned char *in = atomic_exchange(&mbox[id][i % MB], NULL);
    if (in) {
      verify(in);
      hk_free(in);
    }
  }
  for (int s = 0; s < LIVE; s++)
    if (live[s]) {
      verify(live[s]);
      hk_free(live[s]);
    }
  return NULL;
}

enum { NO = 8, SZO = 5000 };
static unsigned char *owned[NO];
static atomic_int step, not_cached;
static void wait_step(int v) {
  while (atomic_load(&step) < v) sched_yield();
}
static void *owner(void *arg) {
  for (int i = 0; i < NO; i++) owned[i] = make(SZO);
  atomic_store(&step, 1);
  wait_step(2);
  return arg; /* exits while the holder keeps its blocks: its segment is abandoned, still in use */
}
static void *adopter(void *arg) {
  hk_collect(true); /* adopts the abandoned segment (a new thread: no cache of its own to hand over) */
  return arg;       /* and abandons it again */
}
static void *holder(void *arg) {
  wait_step(1);
  void *own = hk_malloc(SZO);
  verify(owned[0]);
  hk_free(owned[0]);           /* its first foreign free: the thread gets a cache */
  void *miss = hk_malloc(SZO); /* asks the cache for the class */
  for (int i = 1; i < NO; i++) {
    verify(owned[i]);
    hk_free(owned[i]);         /* kept */
  }
  atomic_store(&step, 2);
  wait_step(3);                /* the owner has exited, another thread adopted and abandoned its segment */
  unsigned char *g[NO];
  for (int i = 1; i < NO; i++) g[i] = make(SZO);
  int from_cache = 0;
  for (int i = 1; i < NO; i++) from_cache += g[i] == owned[NO - i];
  if (from_cache != NO - 1) atomic_fetch_add(&not_cached, 1);
  for (int i = 1; i < NO; i++) {
    verify(g[i]);
    hk_free(g[i]);
  }
  hk_free(miss);
  hk_free(own);
  return arg;
}
static void owner_exit_round(void) {
  atomic_store(&step, 0);
  pthread_t o, h;
  CHECK(pthread_create(&o, NULL, owner, NULL) == 0);
  CHECK(pthread_create(&h, NULL, holder, NULL) == 0);
  CHECK(pthread_join(o, NULL) == 0);
  tu_run_thread(adopter, NULL);
  atomic_store(&step, 3);
  CHECK(pthread_join(h, NULL) == 0);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_fcache_threads";
  int gens = (int)tu_arg(argc, argv, 1, "HK_TEST_GENERATIONS", 4);
  hk_stats s0, s1;
  hk_collect(true);
  hk_stats_get(&s0);
  for (int g = 0; g < gens; g++) {
    pthread_t t[T];
    for (int i = 0; i < T; i++) CHECK(pthread_create(&t[i], NULL, gen_thread, (void *)(uintptr_t)(g * T + i)) == 0);
    for (int i = 0; i < T; i++) CHECK(pthread_join(t[i], NULL) == 0);
  }
  for (int i = 0; i < T; i++)
    for (int k = 0; k < MB; k++) {
      unsigned char *p = atomic_exchange(&mbox[i][k], NULL);
      if (p) {
        verify(p);
        hk_free(p);
      }
    }
  EXPECTF(bad == 0, "%d blocks with a wrong pattern or usable size after thread generations", bad);
  for (int round = 0; round < 3; round++) {
    owner_exit_round();
  }
  EXPECTF(bad == 0, "%d blocks with a wrong pattern or usable size around an owner's exit", bad);
  /* (else this would not test the cache) */
  EXPECTF(not_cached == 0, "in %d of 3 rounds the holder's mallocs did not return the blocks it kept", not_cached);
  hk_collect(true);
  hk_stats_get(&s1);
  /* (a few blocks the C library's thread code keeps stay counted) */
  if (s1.counters)
    EXPECTF(s1.in_use <= s0.in_use + (64u << 10), "in_use %zu -> %zu after every block was freed", s0.in_use, s1.in_use);
  printf("malloc_fcache_threads: %d generations of %d threads: %s\n", gens, T, tu_failures ? "FAILED" : "ok");
  return tu_failures != 0;
}
