/* Pool cursors (pool.h): the same blocks, in the same order, as hk_pool_alloc/hk_pool_free on an
 * identical pool, across out-of-line calls (carving, stack growth, window changes), closes and
 * reopens, the pool's own functions between a close and the next open, and closed cursors; the
 * pool's invariants after every close; NULL and dead pools; shared pools (one cursor per thread,
 * also under TSan); listed pools in debug and ASan builds. Bad frees through a cursor:
 * test_pool_misuse.c (cursor_*). */
#include <heapkit.h>
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

bool hk__pool_is_valid(hk_pool *p); /* the pool's invariant check (static library) */

#if (defined(HK_TEST_DEBUG) && HK_TEST_DEBUG >= 1) || defined(__SANITIZE_ADDRESS__)
#define ALL_LISTED 1
#else
#define ALL_LISTED 0
#endif

/* Two identical pools, one through hk_pool_alloc/hk_pool_free, the other through a cursor that is
 * closed and reopened now and then (with a few calls of the pool's own functions in between): every
 * block must be the same (as an offset from the pool's first block) and keep its contents. */
static void same_as_pool(size_t size, size_t align, int ops, bool unchecked) {
  enum { LIVE = 3000 };
  static unsigned char *la[LIVE], *lb[LIVE];
  hk_pool_options o = {.block_size = size, .align = align, .commit_step = 4096, .unchecked = unchecked};
  hk_pool *pa = hk_pool_new_ex(&o), *pb = hk_pool_new_ex(&o);
  CHECK(pa && pb);
  memset(la, 0, sizeof la);
  memset(lb, 0, sizeof lb);
  unsigned char *a0 = hk_pool_alloc(pa), *b0 = hk_pool_alloc(pb); /* the origins of the offsets */
  hk_pool_cursor c = hk_pool_cursor_open(pb);
  uint32_t x = (uint32_t)size * 2654435761u + (unchecked ? 7u : 0u);
  int same = 1, kept = 1, valid = 1, reopened = 0;
  for (int i = 0; i < ops; i++) {
    x = x * 1103515245u + 12345u;
    int slot = (int)((x >> 8) % LIVE);
    if (la[slot]) {
      for (size_t k = 0; k < size; k += 7) kept &= lb[slot][k] == (unsigned char)slot;
      hk_pool_free(pa, la[slot]);
      hk_pool_cursor_free(&c, lb[slot]);
      la[slot] = lb[slot] = NULL;
    } else {
      unsigned char *a = hk_pool_alloc(pa), *b = hk_pool_cursor_alloc(&c);
      same &= a && b && a - a0 == b - b0;
      if (!b) break;
      memset(b, (unsigned char)slot, size);
      la[slot] = a;
      lb[slot] = b;
    }
    if (x % 997 == 0) { /* close, use the pool directly, reopen */
      hk_pool_cursor_close(&c);
      valid &= hk__pool_is_valid(pb);
      void *ta = hk_pool_alloc(pa), *tb = hk_pool_alloc(pb);
      same &= (char *)ta - (char *)a0 == (char *)tb - (char *)b0;
      hk_pool_free(pa, ta);
      hk_pool_free(pb, tb);
      c = hk_pool_cursor_open(pb);
      reopened++;
    }
  }
  hk_pool_cursor_close(&c);
  CHECK(same && kept && valid && reopened > 0);
  CHECK(hk__pool_is_valid(pb));
  hk_pool_stats sa, sb;
  hk_pool_stats_get(pa, &sa);
  hk_pool_stats_get(pb, &sb);
  CHECK(sa.in_use == sb.in_use && sa.free_blocks == sb.free_blocks && sa.carved == sb.carved && sa.in_use_peak == sb.in_use_peak);
  hk_pool_destroy(pa);
  hk_pool_destroy(pb);
}

/* LIFO through a cursor, a fresh pool's first frees (no stack yet: out of line), and more frees at
 * once than a page of the stack holds (the unchecked push's page boundary). */
static void test_lifo(bool unchecked) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 32, .unchecked = unchecked});
  hk_pool_cursor c = hk_pool_cursor_open(p);
  char *a = hk_pool_cursor_alloc(&c), *b = hk_pool_cursor_alloc(&c);
  CHECK(a && b && a != b);
  hk_pool_cursor_free(&c, a);
  hk_pool_cursor_free(&c, b);
  CHECK(hk_pool_cursor_alloc(&c) == b);
  CHECK(hk_pool_cursor_alloc(&c) == a);
  enum { N = 5000 };
  static void *v[N];
  for (int i = 0; i < N; i++) v[i] = hk_pool_cursor_alloc(&c);
  for (int i = 0; i < N; i++) hk_pool_cursor_free(&c, v[i]);
  int lifo = 1;
  for (int i = N - 1; i >= 0; i--) lifo &= hk_pool_cursor_alloc(&c) == v[i];
  CHECK(lifo);
  for (int i = 0; i < N; i++) hk_pool_cursor_free(&c, v[i]);
  hk_pool_cursor_free(&c, NULL); /* ignored, as hk_pool_free(p, NULL) */
  hk_pool_cursor_close(&c);
  CHECK(hk__pool_is_valid(p));
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.in_use == 2 && st.free_blocks == N && st.carved == N + 2);
  CHECK(hk_pool_alloc(p) == v[N - 1]); /* the pool goes on from the cursor's top */
  /* a closed cursor still works: every call out of line, through the pool's own functions */
  void *d = hk_pool_cursor_alloc(&c);
  CHECK(d == v[N - 2]);
  hk_pool_cursor_free(&c, d);
  CHECK(hk_pool_alloc(p) == d);
  hk_pool_cursor_close(&c); /* closing twice changes nothing */
  CHECK(hk__pool_is_valid(p));
  hk_pool_destroy(p);
}

/* A cursor of NULL (or of something that is not a pool) behaves as hk_pool_alloc(NULL) and
 * hk_pool_free(NULL, x): NULL with EINVAL, a warning and nothing done. */
static void test_null(void) {
  hk_pool_cursor c = hk_pool_cursor_open(NULL);
  errno = 0;
  CHECK(hk_pool_cursor_alloc(&c) == NULL && errno == EINVAL);
  int x;
  hk_option_set(HK_OPT_VERBOSE, 0);
  hk_pool_cursor_free(&c, &x);
  hk_option_set(HK_OPT_VERBOSE, 1);
  hk_pool_cursor_close(&c);
  errno = 0;
  CHECK(hk_pool_cursor_alloc(&c) == NULL && errno == EINVAL);
}

/* Shared pools: every cursor call goes out of line, so threads may each hold a cursor of one pool
 * (the cursor never writes the shared head: TSan checks that in its build). */
static hk_pool *shared_pool;
static void *shared_churn(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  enum { LIVE = 256 };
  unsigned char *live[LIVE] = {0};
  hk_pool_cursor c = hk_pool_cursor_open(shared_pool);
  uint32_t x = (uint32_t)id * 2654435761u + 1;
  int ok = 1;
  for (int i = 0; i < 100000; i++) {
    x = x * 1103515245u + 12345u;
    int s = (int)((x >> 8) % LIVE);
    if (live[s]) {
      ok &= live[s][0] == (unsigned char)id && live[s][63] == (unsigned char)s;
      hk_pool_cursor_free(&c, live[s]);
      live[s] = NULL;
    } else {
      live[s] = hk_pool_cursor_alloc(&c);
      if (!live[s]) { ok = 0; break; }
      live[s][0] = (unsigned char)id;
      live[s][63] = (unsigned char)s;
    }
  }
  for (int s = 0; s < LIVE; s++) hk_pool_cursor_free(&c, live[s]);
  hk_pool_cursor_close(&c);
  return ok ? (void *)1 : NULL;
}
static void test_shared(void) {
  shared_pool = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .shared = true});
  pthread_t t[2];
  for (uintptr_t i = 0; i < 2; i++) pthread_create(&t[i], NULL, shared_churn, (void *)(i + 1));
  void *r0, *r1;
  pthread_join(t[0], &r0);
  pthread_join(t[1], &r1);
  CHECK(r0 && r1);
  hk_pool_stats st;
  hk_pool_stats_get(shared_pool, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved);
  CHECK(hk__pool_is_valid(shared_pool));
  hk_pool_destroy(shared_pool);
}

int main(void) {
  for (int unchecked = 0; unchecked < 2; unchecked++) {
    same_as_pool(48, 0, 300000, unchecked);
    same_as_pool(24, 8, 200000, unchecked);
    same_as_pool(1000, 64, 50000, unchecked);
    test_lifo(unchecked);
  }
  test_null();
  test_shared();
  printf("pool.cursor: pools %s\n", ALL_LISTED ? "listed (every call out of line)" : "inline");
  return check_report("pool.cursor");
}
