/* A promotion in place walks the headers of every young block (inplace.c). With several threads
 * the walk is a parallel phase, and each participant walks the blocks its own thread filled before
 * any other thread's: those lines are in its core's cache, and a header the other core rewrote
 * has to come back when its thread next reads the object (docs/gc.md, "The promotion walk starts
 * with each thread's own blocks"). The main thread and a worker take turns building young
 * subtrees of about a block each, so that their blocks alternate on the young list (as when two
 * threads allocate side by side); then the worker parks and the main thread runs a full
 * collection, whose first step promotes both nurseries in place in a phase the worker helps.
 * Every subtree must come through intact, and no participant may walk a block of its own thread
 * after one of another thread's (the heap's internal counter walk_inversions: claiming blocks in
 * list order, the old way, gave each participant the other's blocks half of the time), and the
 * two threads' block tags must differ. Reads internal counters (hence internal).
 *   test_gc_walk [rounds] */
#include "gc/gc_internal.h"
#include "gc_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define DEPTH 8 /* 511 nodes of 48 bytes: a block and a half per turn */
#define TURNS 8 /* per thread and round: 16 turns, 20-25 blocks, enough for a parallel walk */

static hk_gc_heap *heap;
static _Atomic int turn, stop, bad; /* turn: even for the main thread, odd for the worker */
static _Atomic int collected;       /* rounds whose collection is over */
static hk_gc_mutator *_Atomic worker_m;

static long count(const node *n, int depth) {
  if (!n || n->id != (uint64_t)depth) return -1000000;
  return depth ? 1 + count(n->kids[0], depth - 1) + count(n->kids[1], depth - 1) : 1;
}

/* A list of TURNS subtrees, one built at each of this thread's turns; true if all are intact. */
static bool build_round(hk_gc_mutator *m, int parity, node **list) {
  node *sub = NULL, *cell = NULL;
  HK_GC_ROOTS(m, sub, cell);
  *list = NULL;
  for (int i = 0; i < TURNS; i++) {
    while (turn % 2 != parity && !stop) hk_gc_safepoint(m);
    if (stop) return false;
    sub = gc_test_tree(m, DEPTH);
    cell = new_node(m, 1000, 2, false);
    if (!sub || !cell) return false;
    cell->kids[0] = sub;
    cell->kids[1] = *list;
    *list = cell;
    turn++;
  }
  return true;
}

static bool intact(const node *list) {
  int n = 0;
  for (; list; list = list->kids[1], n++)
    if (list->id != 1000 || count(list->kids[0], DEPTH) != (2L << DEPTH) - 1) return false;
  return n == TURNS;
}

static void worker_rounds(hk_gc_mutator *m) {
  node *list = NULL;
  HK_GC_ROOTS(m, list);
  for (int r = 0; !stop; r++) {
    if (!build_round(m, 1, &list)) break;
    while (collected <= r && !stop) hk_gc_safepoint(m); /* parked at the main thread's collection */
    if (!stop && !intact(list)) bad = 1;
  }
}

static void *worker(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    bad = 1;
    stop = 1;
    return NULL;
  }
  worker_m = m;
  worker_rounds(m);
  hk_gc_thread_unregister(m);
  return NULL;
}

static long main_rounds(hk_gc_mutator *m, int rounds) {
  node *list = NULL;
  HK_GC_ROOTS(m, list);
  long ok = 0;
  for (int r = 0; r < rounds && !bad; r++) {
    if (!build_round(m, 0, &list)) break;
    while (turn % 2 != 0 && !bad) hk_gc_safepoint(m); /* the worker's last subtree */
    hk_gc_collect(m, HK_GC_FULL);
    ok += intact(list);
    collected = r + 1;
  }
  return ok;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 50; /* (list-order claims gave inversions in every helped round) */
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 8 << 20; /* both threads' subtrees stay young until the full collection */
  hk_gc_mutator *m = NULL;
  CHECK(hk_gc_heap_create(&o, &heap, &m) == HK_OK);
  register_test_types(heap);
  pthread_t t;
  hk_gc_blocking_begin(m); /* (its registration must not wait for a collection this thread runs) */
  CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
  hk_gc_blocking_end(m);
  while (!worker_m && !bad) sched_yield();
  /* The two mutators' records are neighbours: their blocks' tags must still differ ((m >> 9) | 1,
   * the old tag, gave this pair one tag, so each thread took the other's blocks for its own). */
  if (worker_m) CHECK(gc_nursery_tag(m) != gc_nursery_tag(worker_m));
  long ok = main_rounds(m, rounds);
  stop = 1;
  hk_gc_blocking_begin(m);
  pthread_join(t, NULL);
  hk_gc_blocking_end(m);
  fprintf(stderr, "walk: %d rounds, %lu blocks walked by the helper, %lu walked out of order\n", rounds,
          (unsigned long)heap->walk_helper_blocks, (unsigned long)heap->walk_inversions);
  CHECK(!bad);
  CHECK(ok == rounds);
  CHECK(heap->walk_inversions == 0);
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.walk");
}
