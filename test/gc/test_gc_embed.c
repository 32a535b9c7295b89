/* An embedder's view (review of 2026-12-06, reviewer-B): programs written from docs/gc.md and
 * gc.h alone, each checking a documented promise on a path the other tests do not take.
 *   resurrect  a finalizer resurrects its object (and re-registers itself); the weak reference
 *              was cleared first; the object's child, finalizable too, waits for a later batch
 *   pinmany    pinned objects keep their address and contents through 40 full (evacuating)
 *              collections among churn that empties their neighbours
 *   oomretry   an OOM callback that releases one cached object per call and asks for a retry
 *              each time: the allocation succeeds after several calls
 *   barrier    a store of a young pointer into an old object without the barrier:
 *              hk_gc_verify reports it (as docs/gc.md, Errors, says)
 *   twoheaps   two threads each registered with two heaps, working in one at a time with the
 *              other in a blocking region (the rule for threads on several heaps), collecting
 *              both while the other thread works
 * Usage: test_gc_embed <case>|all */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "gc_test.h"

/* ---- resurrect ---------------------------------------------------------------------------------- */

static void *resurrected;   /* a global root */
static int fin_a_runs, fin_b_runs;
static void fin_b(hk_gc_mutator *m, void *obj, void *data) {
  (void)m, (void)data;
  CHECK_QUIET(((node *)obj)->id == 2);
  fin_b_runs++;
}
static void fin_a(hk_gc_mutator *m, void *obj, void *data) {
  (void)data;
  fin_a_runs++;
  CHECK_QUIET(((node *)obj)->id == 1);
  CHECK_QUIET(((node *)obj)->kids[0] && ((node *)obj)->kids[0]->id == 2);
  resurrected = obj; /* back from the dead, with its child */
  if (fin_a_runs == 1) CHECK_QUIET(hk_gc_set_finalizer(m, obj, fin_a, NULL) == HK_OK);
}

static void test_resurrect(void) {
  hk_gc_heap *h;
  hk_gc_mutator *m;
  CHECK(hk_gc_heap_create(NULL, &h, &m) == HK_OK);
  register_test_types(h);
  CHECK(hk_gc_root_add(h, &resurrected) == HK_OK);
  for (int old = 0; old < 2; old++) { /* young (minor collections) and old (full ones) */
    fin_a_runs = fin_b_runs = 0;
    hk_gc_weak *w = NULL;
    {
      node *a = new_node(m, 1, 1, false), *b = NULL;
      HK_GC_ROOTS(m, a, b);
      b = new_node(m, 2, 0, false);
      a->kids[0] = b;
      CHECK(hk_gc_set_finalizer(m, a, fin_a, NULL) == HK_OK);
      CHECK(hk_gc_set_finalizer(m, b, fin_b, NULL) == HK_OK);
      w = hk_gc_weak_new(m, a);
      CHECK(w != NULL);
      if (old) hk_gc_collect(m, HK_GC_FULL);
    }
    hk_gc_collect(m, old ? HK_GC_FULL : HK_GC_MINOR);
    CHECK(fin_a_runs == 1);
    CHECK(fin_b_runs == 0);
    CHECK(hk_gc_weak_get(w) == NULL); /* cleared before the finalizer ran */
    CHECK(resurrected && ((node *)resurrected)->id == 1);
    for (int i = 0; i < 3; i++) hk_gc_collect(m, i == 1 ? HK_GC_MINOR : HK_GC_FULL);
    CHECK(hk_gc_verify(m) == HK_OK);
    CHECK(fin_a_runs == 1 && fin_b_runs == 0); /* reachable again: nothing more runs */
    node *r = resurrected;
    CHECK(r->id == 1 && r->kids[0] && r->kids[0]->id == 2);
    hk_gc_weak *w2 = hk_gc_weak_new(m, r); /* a new weak reference to the resurrected object */
    CHECK(hk_gc_weak_get(w2) == r);
    resurrected = NULL; /* dead again: its re-registered finalizer runs, then the child's */
    hk_gc_collect(m, HK_GC_FULL);
    CHECK(hk_gc_weak_get(w2) == NULL);
    CHECK(fin_a_runs == 2);
    CHECK(resurrected != NULL); /* resurrected a second time, no finalizer now */
    resurrected = NULL;
    for (int i = 0; i < 3; i++) hk_gc_collect(m, HK_GC_FULL);
    CHECK(fin_a_runs == 2);
    CHECK(fin_b_runs == 1);
    CHECK(hk_gc_verify(m) == HK_OK);
    hk_gc_weak_free(m, w);
    hk_gc_weak_free(m, w2);
  }
  CHECK(hk_gc_root_remove(h, &resurrected) == HK_OK);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
}

/* ---- pinmany ------------------------------------------------------------------------------------ */

enum { NPIN = 64 };

static void test_pinmany(void) {
  hk_gc_heap *h;
  hk_gc_mutator *m;
  CHECK(hk_gc_heap_create(NULL, &h, &m) == HK_OK);
  register_test_types(h);
  {
  node *table = NULL, *pinned = NULL, *tmp = NULL;
  HK_GC_ROOTS(m, table, pinned, tmp);
  table = new_node(m, 0, 4096, false); /* a large array: never moves */
  pinned = new_node(m, 0, NPIN, false);
  void *addr[NPIN];
  for (int i = 0; i < NPIN; i++) {
    tmp = new_node(m, 1000 + (uint64_t)i, 3, i & 1);
    hk_gc_pin(m, tmp);
    hk_gc_write_barrier_slot(m, pinned, &pinned->kids[i]); /* (the object, not ->kids) */
    pinned->kids[i] = tmp;
    addr[i] = tmp;
    /* a neighbour in the same block that dies: its block becomes sparse */
    for (int j = 0; j < 40; j++) (void)new_blob(m, 7, 200);
  }
  uint64_t seed = 1;
  for (int round = 0; round < 40; round++) {
    for (int k = 0; k < 20000; k++) {
      seed = seed * 6364136223846793005u + 1442695040888963407u;
      tmp = new_node(m, seed >> 40, 2, false);
      hk_gc_write_barrier_slot(m, table, &table->kids[(seed >> 20) % 4096]);
      table->kids[(seed >> 20) % 4096] = tmp;
    }
    hk_gc_collect(m, HK_GC_FULL);
    for (int i = 0; i < NPIN; i++) {
      node *p = pinned->kids[i];
      CHECK_QUIET((void *)p == addr[i]);
      CHECK_QUIET(p->id == 1000 + (uint64_t)i && p->nkids == 3 && hk_gc_is_pinned(p));
      /* stores into a pinned old object go through the barrier like any other */
      hk_gc_write_barrier_slot(m, p, &p->kids[round % 3]);
      p->kids[round % 3] = table->kids[round];
    }
    CHECK_QUIET(hk_gc_verify(m) == HK_OK);
  }
  hk_gc_stats st;
  hk_gc_stats_get(h, &st);
  CHECK(st.bytes_evacuated > 0); /* the collections did move objects around the pinned ones */
  for (int i = 0; i < NPIN; i++) hk_gc_unpin(m, pinned->kids[i]);
  hk_gc_collect(m, HK_GC_FULL);
  CHECK(hk_gc_verify(m) == HK_OK);
  }
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
}

/* ---- oomretry ----------------------------------------------------------------------------------- */

static node *cache; /* a global root: a list of cached blobs the OOM callback drops one at a time */
static int oom_calls;
static int oom_release_one(hk_gc_heap *heap, size_t request, void *data) {
  (void)heap, (void)request, (void)data;
  oom_calls++;
  if (!cache) return 0;
  cache = cache->kids[0]; /* drop the head: no allocation, no barrier needed for a root */
  return 1;
}

static void test_oomretry(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = 8u << 20;
  hk_gc_heap *h;
  hk_gc_mutator *m;
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_OK);
  register_test_types(h);
  CHECK(hk_gc_root_add(h, (void **)&cache) == HK_OK);
  /* Fill the heap with a chain of 256 KiB entries (large objects), no callback yet. */
  int n = 0;
  for (;;) {
    node *e = new_node(m, (uint64_t)n, 32 * 1024, false);
    if (!e) break;
    e->kids[0] = cache;
    cache = e;
    n++;
    if (n > 100) break;
  }
  CHECK(n > 8 && n < 100); /* the limit stopped the chain */
  hk_gc_set_oom_handler(h, oom_release_one, NULL);
  int calls_before = oom_calls;
  /* Now ask for 1 MiB: the callback must drop about four entries, one per call. */
  void *big = hk_gc_alloc_data(m, T_BLOB, 1u << 20);
  CHECK(big != NULL);
  CHECK(oom_calls - calls_before >= 3);
  int left = 0;
  for (node *e = cache; e; e = e->kids[0]) left++;
  CHECK(left > 0 && left < n);
  /* With the cache empty, the callback gives up and the allocation returns NULL. */
  cache = NULL;
  void *huge = hk_gc_alloc_data(m, T_BLOB, 64u << 20);
  CHECK(huge == NULL);
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_root_remove(h, (void **)&cache) == HK_OK);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
}

/* ---- barrier ------------------------------------------------------------------------------------ */

static void test_barrier(void) {
  hk_gc_heap *h;
  hk_gc_mutator *m;
  CHECK(hk_gc_heap_create(NULL, &h, &m) == HK_OK);
  register_test_types(h);
  {
  node *old = new_node(m, 1, 1, false), *young = NULL;
  HK_GC_ROOTS(m, old, young);
  hk_gc_collect(m, HK_GC_FULL); /* old is mature now */
  young = new_node(m, 2, 0, false);
  old->kids[0] = young; /* the barrier forgotten */
  fprintf(stderr, "(a verification failure is expected next)\n");
  CHECK(hk_gc_verify(m) == HK_EINVAL);
  hk_gc_write_barrier(m, old); /* the same store with the barrier */
  old->kids[0] = young;
  CHECK(hk_gc_verify(m) == HK_OK);
  hk_gc_collect(m, HK_GC_MINOR);
  CHECK(old->kids[0] == young && young->id == 2);
  }
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
}

/* ---- twoheaps ----------------------------------------------------------------------------------- */

typedef struct {
  hk_gc_heap *h[2];
  int id;
} two_arg;

static void *two_worker(void *p) {
  two_arg *a = p;
  hk_gc_mutator *m[2];
  for (int k = 0; k < 2; k++) m[k] = hk_gc_thread_register(a->h[k]);
  CHECK_QUIET(m[0] && m[1]);
  hk_gc_blocking_begin(m[1]); /* start in heap 0 */
  int cur = 0;
  for (int round = 0; round < 200; round++) {
    {
      node *list = NULL, *n = NULL;
      HK_GC_ROOTS(m[cur], list, n);
      for (int i = 0; i < 2000; i++) {
        n = new_node(m[cur], (uint64_t)i, 1, i & 1);
        n->kids[0] = list;
        list = n;
      }
      if (round % 10 == a->id) hk_gc_collect(m[cur], round % 20 == a->id ? HK_GC_FULL : HK_GC_MINOR);
      uint64_t want = 1999;
      for (node *p = list; p; p = p->kids[0], want--) CHECK_QUIET(p->id == want);
    }
    /* move to the other heap: the one left goes into a blocking region */
    hk_gc_blocking_end(m[1 - cur]);
    hk_gc_blocking_begin(m[cur]);
    cur = 1 - cur;
  }
  hk_gc_blocking_end(m[1 - cur]);
  for (int k = 0; k < 2; k++) hk_gc_thread_unregister(m[k]);
  return NULL;
}

static void test_twoheaps(void) {
  two_arg a[2];
  hk_gc_heap *h[2];
  for (int k = 0; k < 2; k++) {
    CHECK(hk_gc_heap_create(NULL, &h[k], NULL) == HK_OK);
    register_test_types(h[k]); /* the same ids in both heaps (registered in the same order) */
  }
  pthread_t t[2];
  for (int i = 0; i < 2; i++) {
    a[i] = (two_arg){{h[0], h[1]}, i};
    CHECK(pthread_create(&t[i], NULL, two_worker, &a[i]) == 0);
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (int k = 0; k < 2; k++) CHECK(hk_gc_heap_destroy(h[k]) == HK_OK);
}

int main(int argc, char **argv) {
  const char *c = argc > 1 ? argv[1] : "all";
  int all = strcmp(c, "all") == 0, ran = 0;
  if (all || !strcmp(c, "resurrect")) test_resurrect(), ran++;
  if (all || !strcmp(c, "pinmany")) test_pinmany(), ran++;
  if (all || !strcmp(c, "oomretry")) test_oomretry(), ran++;
  if (all || !strcmp(c, "barrier")) test_barrier(), ran++;
  if (all || !strcmp(c, "twoheaps")) test_twoheaps(), ran++;
  if (!ran) {
    fprintf(stderr, "usage: test_gc_embed resurrect|pinmany|oomretry|barrier|twoheaps|all\n");
    return 2;
  }
  return check_report(c);
}
