/* Arenas: allocation, alignment, growth with chaining (pointers never move), statistics, and the
 * errors bad arguments produce. */
#include <heapkit.h>
#include "check.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void test_small(void) {
  hk_arena *a = hk_arena_new(NULL);
  CHECK(a != NULL);
  char *prev = NULL;
  for (size_t i = 0; i < 1000; i++) {
    size_t n = 16 + i % 49;
    char *p = hk_arena_alloc(a, n);
    CHECK_QUIET(p != NULL && (uintptr_t)p % 16 == 0);
    CHECK_QUIET(prev == NULL || p >= prev + 16); /* bump order, no overlap */
    CHECK_QUIET(hk_arena_contains(a, p) && hk_arena_contains(a, p + n - 1));
    memset(p, (int)i, n);
    prev = p;
  }
  hk_arena_stats st;
  hk_arena_stats_get(a, &st);
  CHECK(st.allocated >= 1000 * 16 && st.allocated <= 1000 * 80);
  CHECK(st.allocated_peak == st.allocated);
  CHECK(st.committed >= st.allocated);
  CHECK(st.chunks == 1 && st.reserved >= ((size_t)4 << 20));
  int x;
  CHECK(!hk_arena_contains(a, &x));
  hk_arena_destroy(a);
}

/* 40 MiB in 1 KiB pieces: several chunks; the first bytes keep their contents. */
static void test_growth(void) {
  hk_arena *a = hk_arena_new(NULL);
  unsigned char *first = hk_arena_alloc(a, 4096);
  memset(first, 0xA5, 4096);
  unsigned char *last = NULL;
  for (int i = 0; i < 40 * 1024; i++) {
    last = hk_arena_alloc(a, 1024);
    CHECK_QUIET(last != NULL);
    last[0] = last[1023] = (unsigned char)i;
  }
  int intact = 1;
  for (int i = 0; i < 4096; i++) intact &= first[i] == 0xA5;
  CHECK(intact);
  hk_arena_stats st;
  hk_arena_stats_get(a, &st);
  CHECK(st.chunks >= 3);
  CHECK(st.allocated >= (size_t)40 << 20);
  CHECK(st.committed >= st.allocated && st.committed < st.allocated + ((size_t)8 << 20));
  CHECK(hk_arena_contains(a, first) && hk_arena_contains(a, last));
  /* One allocation larger than any chunk gets a reservation of its own. */
  char *big = hk_arena_alloc(a, (size_t)300 << 20);
  CHECK(big != NULL);
  big[0] = 1;
  big[((size_t)300 << 20) - 1] = 2;
  hk_arena_destroy(a);
}

static void test_aligned_and_helpers(void) {
  hk_arena *a = hk_arena_new(&(hk_arena_options){.reserve = 1 << 20, .commit_step = 4096});
  CHECK(a != NULL);
  for (size_t al = 1; al <= (1u << 16); al <<= 1) {
    char *p = hk_arena_alloc_aligned(a, 24, al);
    CHECK_QUIET(p && (uintptr_t)p % al == 0 && (uintptr_t)p % 16 == 0);
  }
  errno = 0;
  CHECK(hk_arena_alloc_aligned(a, 8, 24) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(hk_arena_alloc_aligned(a, 8, 0) == NULL && errno == EINVAL);
  int *z = hk_arena_calloc(a, 100, sizeof(int));
  int zero = 1;
  for (int i = 0; i < 100; i++) zero &= z[i] == 0;
  CHECK(z && zero);
  errno = 0;
  CHECK(hk_arena_calloc(a, SIZE_MAX / 2, 4) == NULL && errno == ENOMEM);
  char *s = hk_arena_strdup(a, "heapkit");
  CHECK(s && strcmp(s, "heapkit") == 0);
  struct node { long v; struct node *kids[4]; } *nd = HK_ARENA_NEW(a, struct node);
  CHECK(nd && nd->v == 0 && nd->kids[3] == NULL);
  double *arr = HK_ARENA_NEW_ARRAY(a, double, 10);
  CHECK(arr && arr[9] == 0.0 && (uintptr_t)arr % _Alignof(double) == 0);
  typedef struct { _Alignas(64) char c[64]; } line;
  line *ln = HK_ARENA_NEW(a, line);
  CHECK(ln && (uintptr_t)ln % 64 == 0);
  /* A huge request fails cleanly. */
  errno = 0;
  CHECK(hk_arena_alloc(a, SIZE_MAX - 8) == NULL && errno == ENOMEM);
  CHECK(hk_arena_alloc(a, 0) != NULL);
  hk_arena_destroy(a);
  /* The inline path must hand size 0 and exact fits to the slow path where it cannot serve them:
   * a concurrent arena keeps its head at {NULL, NULL}, and a request that ends exactly at the
   * commit end is the slow path's. */
  hk_arena *c = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT});
  void *z0 = hk_arena_alloc(c, 0), *o = hk_arena_alloc(c, 1);
  CHECK(z0 != NULL && o != NULL && hk_arena_contains(c, o));
  hk_arena_destroy(c);
  hk_arena *e = hk_arena_new(NULL);
  hk_arena_head *h = (hk_arena_head *)e;
  if (h->cur) { /* not under ASan/valgrind, which keep the head empty too */
    size_t left = (size_t)(h->end - h->cur);
    char *fill = hk_arena_alloc(e, left), *next = hk_arena_alloc(e, 16);
    CHECK(fill != NULL && next != NULL && next != fill && (next < fill || next >= fill + left));
  }
  hk_arena_destroy(e);
}

static void test_bad_handles(void) {
  errno = 0;
  CHECK(hk_arena_alloc(NULL, 16) == NULL && errno == EINVAL);
  CHECK(hk_arena_defer(NULL, NULL, NULL) == HK_EINVAL);
  hk_arena_destroy(NULL);
  errno = 0;
  CHECK(hk_arena_new(&(hk_arena_options){.flags = 1u << 30}) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_TRACE, .replay_path = "x.csv"}) == NULL && errno == EINVAL);
  hk_arena_stats st;
  hk_arena_stats_get(NULL, &st);
  CHECK(st.allocated == 0 && st.committed == 0);
  /* Double destroy is reported, not a crash (the segment is cached, so the magic is gone). */
  /* So is an allocation through a destroyed arena, inline or by cursor: it bumped on in the freed
   * chunk (returning memory the page layer may hand to another client). */
  hk_arena *d = hk_arena_new(NULL);
  CHECK(d != NULL && hk_arena_alloc(d, 16) != NULL);
  hk_arena_destroy(d);
  errno = 0;
  CHECK(hk_arena_alloc(d, 16) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(hk_arena_alloc_aligned(d, 16, 64) == NULL && errno == EINVAL);
  hk_arena_cursor c = hk_arena_cursor_open(d);
  errno = 0;
  CHECK(hk_arena_cursor_alloc(&c, 16) == NULL && errno == EINVAL);
  hk_arena_cursor_close(&c);
  /* NULL for the statistics' destination is ignored (it was written through) */
  hk_arena_stats_get(NULL, NULL);
  hk_arena *e = hk_arena_new(NULL);
  hk_arena_stats_get(e, NULL);
  hk_arena_global_stats(NULL);
  hk_arena_destroy(e);
}

/* Absurd growth steps and retention are taken: a commit step near SIZE_MAX wrapped around to 0
 * when rounded up to the commit unit, and the first allocation past the first unit looped for ever
 * (alarm turns that into a failure). */
static void test_absurd_options(void) {
  const size_t steps[] = {SIZE_MAX, SIZE_MAX - 5000, SIZE_MAX / 2 + 1, (size_t)1 << 40, 1};
  alarm(30);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    hk_arena *a = hk_arena_new(&(hk_arena_options){.commit_step = steps[i], .retain = SIZE_MAX});
    CHECK(a != NULL);
    if (!a) continue;
    for (int k = 0; k < 10000; k++) { /* 10 MB: more than the first chunk */
      char *b = hk_arena_alloc(a, 1000);
      CHECK(b != NULL);
      if (!b) break;
      memset(b, 0x5a, 1000);
    }
    hk_arena_stats st;
    hk_arena_stats_get(a, &st);
    CHECK(st.allocated >= 10000 * 1000 && st.committed <= st.reserved);
    hk_arena_reset(a);
    hk_arena_destroy(a);
  }
  alarm(0);
}

static void test_global_stats(void) {
  hk_arena_stats g0, g1, g2;
  hk_arena_global_stats(&g0);
  hk_arena *a = hk_arena_new(NULL), *b = hk_arena_new(NULL);
  for (int i = 0; i < 100000; i++) hk_arena_alloc(a, 32);
  hk_arena_mark m = hk_arena_save(b); /* a save point syncs nothing, a restore does */
  hk_arena_alloc(b, 1 << 20);
  hk_arena_restore(b, m);
  hk_arena_stats sa;
  hk_arena_stats_get(a, &sa);
  hk_arena_global_stats(&g1);
  CHECK(g1.arenas == g0.arenas + 2);
  CHECK(g1.committed >= g0.committed + sa.committed);
  CHECK(g1.committed_peak >= g1.committed);
  CHECK(g1.allocated + 65536 >= g0.allocated + 3200000); /* lags by less than one commit step */
  hk_arena_destroy(a);
  hk_arena_destroy(b);
  hk_arena_global_stats(&g2);
  CHECK(g2.arenas == g0.arenas && g2.committed == g0.committed && g2.allocated == g0.allocated);
}

/* An allocation larger than the machine could ever back fails at once with ENOMEM, as malloc's
 * does (malloc.api.beyond_memory), under the kernel's default overcommit heuristic. Its chunk was
 * reserved as address space only: hk_arena_alloc of twice RAM + swap succeeded, and
 * hk_arena_calloc's memset of it brought the OOM killer. */
static void test_beyond_memory(void) {
  size_t mem = check_memory_to_exceed("beyond_memory", (size_t)1 << 44);
  if (!mem) return;
  hk_arena *a = hk_arena_new(NULL);
  CHECK(a != NULL);
  errno = 0;
  void *p = hk_arena_alloc(a, mem * 2);
  CHECK(p == NULL && errno == ENOMEM);
  errno = 0;
  p = hk_arena_alloc_aligned(a, mem * 2, 4096);
  CHECK(p == NULL && errno == ENOMEM);
  /* (not hk_arena_calloc: on the old code it touches every page) */
  char *q = hk_arena_alloc(a, 64 << 20); /* an oversized chunk the machine can back is still fine */
  CHECK(q != NULL);
  if (q) memset(q, 1, 64 << 20);
  hk_arena_destroy(a);
}

int main(void) {
  test_small();
  test_growth();
  test_aligned_and_helpers();
  test_bad_handles();
  test_absurd_options();
  test_global_stats();
  test_beyond_memory();
  return check_report("arena.basic");
}
