/* Several mutator threads allocating, mutating (old-to-young stores through the barrier) and
 * collecting at once on one heap; each checks its own structure against a model after every
 * round, some rounds verify the whole heap, and threads register and unregister while others run.
 * usage: test_gc_threads [threads] [rounds] */
#include "gc_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 128

static hk_gc_heap *heap;
static int rounds = 40;
static _Atomic int failures;
static _Atomic long fin_registered, fin_ran;

static void blob_fin(hk_gc_mutator *m, void *obj, void *data) {
  (void)m;
  if (((blob *)obj)->id != (uint64_t)(uintptr_t)data || !blob_ok(obj)) failures++;
  fin_ran++;
}

typedef struct model {
  uint64_t len[SLOTS], sum[SLOTS];
} model;

static node *chain(hk_gc_mutator *m, uint64_t len, uint64_t seed, uint64_t *sum) {
  node *head = NULL;
  HK_GC_ROOTS(m, head);
  *sum = 0;
  for (uint64_t i = 0; i < len; i++) {
    uint64_t id = seed * 1000 + i + 1;
    blob *b = NULL;
    HK_GC_ROOTS(m, b);
    if (i % 3 == 2) { /* allocated first: n's stores below need no safepoint */
      b = new_blob(m, id, 24);
      if (b && i % 2 == 0) {
        if (hk_gc_set_finalizer(m, b, blob_fin, (void *)(uintptr_t)id) != HK_OK) failures++;
        fin_registered++;
      }
    }
    node *n = b ? new_node(m, id, 2, true) : new_node(m, id, 1, false);
    if (!n) return NULL;
    n->kids[0] = head; /* n is fresh (no safepoint since): no barrier needed */
    if (b) n->kids[1] = (node *)b;
    head = n;
    *sum += id;
  }
  return head;
}

static bool check(node *arr, const model *md) {
  for (int k = 0; k < SLOTS; k++) {
    uint64_t len = 0, sum = 0;
    for (node *n = arr->kids[k]; n; n = n->kids[0]) {
      len++;
      sum += n->id;
      if (n->nkids == 2) {
        blob *b = (blob *)n->kids[1];
        if (!b || b->id != n->id || !blob_ok(b)) return false;
      }
    }
    if (len != md->len[k] || sum != md->sum[k]) return false;
  }
  return true;
}

static void work(hk_gc_mutator *m, uint64_t seed) {
  uint64_t st = seed * 0x9E3779B97F4A7C15ull;
  model *md = calloc(1, sizeof *md);
  node *arr = new_node(m, seed, SLOTS, false);
  HK_GC_ROOTS(m, arr);
  hk_gc_weak *w = hk_gc_weak_new(m, arr); /* weak handles and pins from several threads */
  if (!w) failures++;
  for (int r = 0; r < rounds; r++) {
    bool pinned = r % 4 == 1;
    void *at = arr;
    if (pinned) hk_gc_pin(m, arr);
    for (int i = 0; i < 400; i++) {
      st ^= st << 13, st ^= st >> 7, st ^= st << 17;
      int k = (int)(st % SLOTS);
      uint64_t len = st % 12, sum;
      node *c = chain(m, len, st % 100000, &sum);
      if (!c && len) {
        failures++;
        break;
      }
      hk_gc_write_barrier(m, arr); /* arr may be old; c is young */
      arr->kids[k] = c;
      md->len[k] = len;
      md->sum[k] = sum;
      for (int g = 0; g < 10; g++) (void)new_node(m, 0, 3, false); /* garbage */
      hk_gc_safepoint(m);
    }
    if (!check(arr, md)) {
      fprintf(stderr, "thread %lu: structure corrupt in round %d\n", (unsigned long)seed, r);
      failures++;
      break;
    }
    if (r % 10 == 3) hk_gc_collect(m, HK_GC_FULL);
    if (r % 20 == 7 && hk_gc_verify(m) != HK_OK) failures++;
    if (hk_gc_weak_get(w) != arr) failures++;
    if (pinned) {
      if ((void *)arr != at) failures++; /* pinned: never moved */
      hk_gc_unpin(m, arr);
    }
  }
  hk_gc_weak_free(m, w);
  free(md);
}

static void *worker(void *arg) {
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  work(m, (uint64_t)(uintptr_t)arg * 7919 + 1); /* its root frame is popped on return */
  hk_gc_thread_unregister(m);
  return NULL;
}

int main(int argc, char **argv) {
  int nthreads = argc > 1 ? atoi(argv[1]) : 4;
  if (argc > 2) rounds = atoi(argv[2]);
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 1 << 20;
  o.initial_heap = 4 << 20;
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(&o, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  for (int wave = 0; wave < 2; wave++) {
    pthread_t t[64];
    for (int i = 0; i < nthreads && i < 64; i++)
      CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1 + wave * 100)) == 0);
    /* The main thread is a mutator too: joining blocks, so it steps out of the way. */
    hk_gc_blocking_begin(main_m);
    for (int i = 0; i < nthreads && i < 64; i++) pthread_join(t[i], NULL);
    hk_gc_blocking_end(main_m);
  }
  hk_gc_collect(main_m, HK_GC_FULL);
  hk_gc_collect(main_m, HK_GC_FULL);
  CHECK(failures == 0);
  CHECK(fin_registered > 0 && fin_ran == fin_registered);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1);
  CHECK(s.minor_collections > 0 && s.full_collections > 0);
  CHECK(s.live_bytes < (1u << 20)); /* the workers' structures died with them */
  hk_gc_stats_print(heap, 2);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads");
}
