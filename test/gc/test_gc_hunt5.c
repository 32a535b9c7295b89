/* Threads and collections in ways an embedder may use them, found in a hunt for defects of the
 * collector's multi-threaded behaviour (2026-12-07). Each case names the bug it caught.
 *   test_gc_hunt5 unregister_other  a thread running a mutator of the heap unregisters an idle
 *                                   worker's mutator (in a blocking region) while a third thread's
 *                                   collection waits for it: the caller parks (it waited for the
 *                                   world as a running thread: both waited for ever)
 *   test_gc_hunt5 register_twice    a thread registered with the heap already registers again
 *                                   while another thread's collection waits for it: NULL and the
 *                                   warning (it waited for the world first: for ever)
 * A watchdog ends a case that hangs (exit status 2) rather than leaving it to ctest's timeout. */
#include "gc_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static hk_gc_heap *heap;

static bool stop_pending(hk_gc_mutator *m) {
  return __atomic_load_n(((hk_gc_mutator_fast *)m)->stop, __ATOMIC_RELAXED) != 0;
}

static long count(const node *n) { return n ? 1 + count(n->kids[0]) + count(n->kids[1]) : 0; }

static const char *watched;
static void *watchdog(void *arg) {
  unsigned secs = (unsigned)(uintptr_t)arg;
  sleep(secs);
  fprintf(stderr, "%s: still running after %u s: hung\n", watched, secs);
  _exit(2);
}

static void watch(const char *name, unsigned secs) {
  watched = name;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, watchdog, (void *)(uintptr_t)secs) == 0);
  pthread_detach(t);
}

/* ---- a mutator of a worker in a blocking region, unregistered by another running mutator ---- */

static hk_gc_mutator *idle_m;
static _Atomic int idle_ready, idle_go;

/* A pool's idle worker: registered, then waiting in a blocking region for work that never comes. */
static void *idle_worker(void *arg) {
  (void)arg;
  idle_m = hk_gc_thread_register(heap);
  if (!idle_m) return NULL;
  hk_gc_blocking_begin(idle_m);
  idle_ready = 1;
  while (!idle_go) sched_yield();
  return NULL; /* (unregistered by the main thread meanwhile: no exit warning) */
}

static _Atomic int coll_go, coll_done;

static void *collector(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) return NULL;
  hk_gc_blocking_begin(m);
  while (!coll_go) sched_yield();
  hk_gc_blocking_end(m);
  hk_gc_collect(m, HK_GC_FULL);
  coll_done = 1;
  hk_gc_thread_unregister(m);
  return NULL;
}

/* Starts the collector and returns once its collection waits for main_m (which does not poll). */
static void collection_pending(hk_gc_mutator *main_m, pthread_t *co) {
  coll_go = coll_done = 0;
  hk_gc_blocking_begin(main_m); /* (the collector's registration may wait for a collection) */
  CHECK(pthread_create(co, NULL, collector, NULL) == 0);
  hk_gc_blocking_end(main_m);
  coll_go = 1;
  while (!stop_pending(main_m)) sched_yield();
}

static void join_blocking(hk_gc_mutator *m, pthread_t t) {
  hk_gc_blocking_begin(m);
  pthread_join(t, NULL);
  hk_gc_blocking_end(m);
}

static int test_unregister_other(void) {
  watch("gc.hunt5_unregister_other", 30);
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(NULL, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  for (int round = 0; round < 20; round++) {
    node *tree = gc_test_tree(main_m, 8);
    HK_GC_ROOTS(main_m, tree);
    idle_ready = idle_go = 0;
    pthread_t w, co;
    hk_gc_blocking_begin(main_m);
    CHECK(pthread_create(&w, NULL, idle_worker, NULL) == 0);
    while (!idle_ready) sched_yield();
    hk_gc_blocking_end(main_m);
    hk_gc_stats s0, s1;
    hk_gc_stats_get(heap, &s0);
    collection_pending(main_m, &co);
    /* The collection waits for this thread: the unregistration must let it run (parking here). */
    hk_gc_thread_unregister(idle_m);
    while (!coll_done) hk_gc_safepoint(main_m);
    hk_gc_stats_get(heap, &s1);
    CHECK_QUIET(s1.full_collections == s0.full_collections + 1);
    idle_go = 1;
    join_blocking(main_m, w);
    join_blocking(main_m, co);
    hk_gc_stats_get(heap, &s1);
    CHECK_QUIET(s1.mutators == 1); /* the idle worker's is gone (and its exit found none) */
    CHECK_QUIET(count(tree) == 511);
  }
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1 && s.full_collections >= 20);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.hunt5_unregister_other");
}

/* ---- a second registration while a collection waits for the first mutator ------------------- */

static int test_register_twice(void) {
  watch("gc.hunt5_register_twice", 30);
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(NULL, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  for (int round = 0; round < 20; round++) {
    node *tree = gc_test_tree(main_m, 6);
    HK_GC_ROOTS(main_m, tree);
    pthread_t co;
    collection_pending(main_m, &co);
    CHECK_QUIET(hk_gc_thread_register(heap) == NULL); /* (with the warning, at once) */
    CHECK_QUIET(!coll_done);
    while (!coll_done) hk_gc_safepoint(main_m);
    join_blocking(main_m, co);
    CHECK_QUIET(count(tree) == 127);
  }
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1 && s.full_collections >= 20);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.hunt5_register_twice");
}

int main(int argc, char **argv) {
  const char *t = argc > 1 ? argv[1] : "";
  if (!strcmp(t, "unregister_other")) return test_unregister_other();
  if (!strcmp(t, "register_twice")) return test_register_twice();
  fprintf(stderr, "usage: test_gc_hunt5 unregister_other|register_twice\n");
  return 2;
}
