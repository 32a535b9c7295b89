/* A full collection's parallel marking tests every object's block for evacuation only when the
 * collection evacuates (full.c, mark_drain; docs/gc.md "Parallel marking without evacuation"):
 * without a budget no block is a candidate, and the test (a block descriptor read per object, and
 * the gray compare-and-swap it led to in parallel phases) is work for nothing. Sticky collections
 * and most growth-due ones are such. A polling thread parks at every collection, so each full
 * collection opens a parallel phase (helped or not, the collector marks in it).
 *  - A heap with HK_GC_OPT_NO_EVACUATION, a tree kept live through 150 explicit full collections
 *    (with garbage between): no thread marks with the evacuation tests (heap counter
 *    par_mark_evac 0; before the change every parallel marking did: 150+), the tree intact.
 *  - A heap whose old tree loses a scattered third of its nodes, then explicit full collections:
 *    they evacuate (bytes_evacuated > 0) with the tests (par_mark_evac > 0), the tree intact.
 * Reads the heap's internal counters (hence internal).
 *   test_gc_noevac */
#define _GNU_SOURCE
#include "gc/gc_internal.h"
#include "gc_test.h"
#include "gc_poller.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

static hk_gc_heap *heap;

/* Nodes reached, -1000000 for a node whose id is not its height. */
static long count(const node *n, int depth) {
  if (!n) return 0;
  if (n->id != (uint64_t)depth) return -1000000;
  return 1 + (depth ? count(n->kids[0], depth - 1) + count(n->kids[1], depth - 1) : 0);
}

/* Drops the left subtree of every node of height 3: a scattered third of the tree's nodes. */
static void thin(node *n, int depth) {
  if (!n || depth < 3) return;
  if (depth == 3) {
    n->kids[0] = NULL;
    return;
  }
  thin(n->kids[0], depth - 1);
  thin(n->kids[1], depth - 1);
}

typedef struct run {
  uint64_t evac, plain, opened, evacuated;
  bool intact;
} run;

static run one_heap(bool no_evac, int rounds) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  if (no_evac) o.flags |= HK_GC_OPT_NO_EVACUATION;
  hk_gc_mutator *m = NULL;
  run r = {0};
  CHECK(hk_gc_heap_create(&o, &heap, &m) == HK_OK);
  register_test_types(heap);
  gc_poller poll;
  gc_poller_start(&poll, heap, m);
  const int depth = 14;
  node *tree = NULL, *junk = NULL;
  HK_GC_ROOTS(m, tree, junk);
  tree = gc_test_tree(m, depth);
  hk_gc_collect(m, HK_GC_FULL); /* the tree is old now */
  long want = (2L << depth) - 1;
  if (!no_evac) {
    thin(tree, depth);
    want -= (1L << (depth - 3)) * 7; /* (a 7-node subtree per node of height 3) */
  }
  hk_gc_stats s0, s1;
  hk_gc_stats_get(heap, &s0);
  uint64_t e0 = heap->par_mark_evac, p0 = heap->par_mark_plain;
  r.intact = true;
  for (int i = 0; i < rounds; i++) {
    junk = gc_test_tree(m, 8); /* garbage by the next round */
    hk_gc_collect(m, HK_GC_FULL);
    r.intact = r.intact && count(tree, depth) == want;
  }
  hk_gc_stats_get(heap, &s1);
  r.evac = heap->par_mark_evac - e0;
  r.plain = heap->par_mark_plain - p0;
  r.opened = s1.parallel_opened - s0.parallel_opened;
  r.evacuated = s1.bytes_evacuated - s0.bytes_evacuated;
  tree = junk = NULL;
  gc_poller_stop(&poll, m);
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  fprintf(stderr, "noevac (%s): %d full collections, %lu phases opened, %lu markings with the evacuation tests, %lu "
          "without, %lu bytes evacuated, tree %s\n", no_evac ? "no evacuation" : "thinned tree", rounds,
          (unsigned long)r.opened, (unsigned long)r.evac, (unsigned long)r.plain, (unsigned long)r.evacuated,
          r.intact ? "intact" : "BROKEN");
  return r;
}

int main(void) {
  run a = one_heap(true, 150);
  CHECK(a.intact);
  CHECK(a.opened >= 150);
  CHECK(a.plain >= 150);
  CHECK(a.evac == 0);
  run b = one_heap(false, 4);
  CHECK(b.intact);
  CHECK(b.evacuated > 0);
  CHECK(b.evac > 0);
  return check_report("gc.threads_noevac");
}
