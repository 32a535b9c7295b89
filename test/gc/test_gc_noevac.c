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
 *  - A budget the roots spend before the phase opens (the collector's frames and the other roots
 *    are marked first, their objects in candidate blocks evacuated: with equal-size objects the
 *    budget ends at exactly 0): the phase has candidate blocks all the same. Marked without the
 *    evacuation tests, the objects a thread's frames reached in them were left gray (as when a
 *    budget runs out within a phase: kept in place) and unstick_evac, skipped, never cleared it;
 *    a gray old object is not logged for the next sticky collection (gc_sticky_note), which then
 *    freed the young object stored into it since, while reachable. The phase must take the
 *    evacuating variant: no gray bit is left, the stored object survives a sticky collection.
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

/* Objects of 128 bytes, header included: one line each; the budget (a multiple of a block's
 * eighth) ends at exactly 0 when the roots reach more than it in candidate blocks. */
#define SP_KIDS 13
#define SP_N (1 << 17) /* 16 MiB of them */
static void *sp_roots[SP_N];
static void *sp_box[4];
static _Atomic int sp_stop, sp_ready, sp_failed, sp_take, sp_took, sp_give, sp_gave;

static void sp_visit(hk_gc_visitor *v, void *data) {
  (void)data;
  for (size_t i = 0; i < SP_N; i++) HK_GC_VISIT(v, sp_roots[i]);
  for (int i = 0; i < 4; i++) HK_GC_VISIT(v, sp_box[i]);
}

/* Holds the objects handed over in sp_box in its own frame: marked in the parallel phase only. */
static void *sp_holder(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    sp_failed = 1;
    return NULL;
  }
  {
    void *y0 = NULL, *y1 = NULL, *y2 = NULL, *y3 = NULL;
    HK_GC_ROOTS(m, y0, y1, y2, y3);
    sp_ready = 1;
    while (!sp_stop) {
      if (sp_take && !sp_took) {
        y0 = sp_box[0], y1 = sp_box[1], y2 = sp_box[2], y3 = sp_box[3];
        sp_took = 1;
      }
      if (sp_give && !sp_gave) {
        sp_box[0] = y0, sp_box[1] = y1, sp_box[2] = y2, sp_box[3] = y3;
        sp_gave = 1;
      }
      hk_gc_safepoint(m);
    }
  }
  hk_gc_thread_unregister(m);
  return NULL;
}

static void spent_budget(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  /* (the young objects are copied into the holes of the old blocks, which then hold more than
   * their last sweep counted: the budget is what that count fits in) */
  o.flags |= HK_GC_OPT_NO_BLOCK_PROMOTION;
  hk_gc_mutator *m = NULL;
  CHECK(hk_gc_heap_create(&o, &heap, &m) == HK_OK);
  register_test_types(heap);
  hk_gc_set_root_callback(heap, sp_visit, NULL);
  /* (gc_poller.h's start, with this thread function) */
  pthread_t t;
  hk_gc_blocking_begin(m);
  CHECK(pthread_create(&t, NULL, sp_holder, NULL) == 0);
  while (!sp_ready && !sp_failed) sched_yield();
  hk_gc_blocking_end(m);
  CHECK(!sp_failed);
  if (sp_failed) return;
  for (size_t i = 0; i < SP_N; i++) sp_roots[i] = new_node(m, i, SP_KIDS, false);
  hk_gc_collect(m, HK_GC_FULL);
  /* One object in eight stays (a line in eight: every block a candidate by the next sweep's
   * count); four of them go to the other thread's frame. */
  for (size_t i = 0; i < SP_N; i++)
    if (i % 8) sp_roots[i] = NULL;
  for (int k = 0; k < 4; k++) {
    sp_box[k] = sp_roots[8 * (1000 + 7 * k)];
    sp_roots[8 * (1000 + 7 * k)] = NULL;
  }
  sp_take = 1;
  while (!sp_took) sched_yield();
  for (int k = 0; k < 4; k++) sp_box[k] = NULL;
  hk_gc_collect(m, HK_GC_FULL);
  for (size_t i = 0, n = 0; i < SP_N && n < 30000; i++)
    if (i % 8) sp_roots[i] = new_node(m, i, SP_KIDS, false), n++;
  hk_gc_stats s0, s1;
  hk_gc_stats_get(heap, &s0);
  uint64_t e0 = heap->par_mark_evac;
  hk_gc_collect(m, HK_GC_FULL);
  hk_gc_stats_get(heap, &s1);
  uint64_t evacuated = s1.bytes_evacuated - s0.bytes_evacuated, evac = heap->par_mark_evac - e0;
  {
    sp_give = 1;
    while (!sp_gave) sched_yield();
    node *y = sp_box[0];
    HK_GC_ROOTS(m, y);
    int gray = 0;
    for (int k = 0; k < 4; k++) gray += (((uintptr_t *)sp_box[k])[-1] & HK_GC_HDR_GRAY) != 0;
    for (int k = 0; k < 4; k++) sp_box[k] = NULL;
    /* A young object stored into one of them, promoted; then full collections due by growth
     * (garbage promoted), a sticky one among them. */
    {
      node *z = new_node(m, 4242, SP_KIDS, false);
      hk_gc_write_barrier_slot(m, y, &y->kids[0]);
      y->kids[0] = z;
    }
    for (int i = 0; i < 4; i++) hk_gc_collect(m, HK_GC_MINOR);
    hk_gc_stats s2, s3;
    hk_gc_stats_get(heap, &s2);
    s3 = s2;
    for (int round = 0; round < 40 && s3.sticky_collections == s2.sticky_collections; round++) {
      for (size_t i = 0; i < SP_N / 2; i++) sp_roots[i] = new_node(m, 777, SP_KIDS, false);
      for (int j = 0; j < 4; j++) hk_gc_collect(m, HK_GC_MINOR);
      for (size_t i = 0; i < SP_N / 2; i++) sp_roots[i] = NULL;
      hk_gc_stats_get(heap, &s3);
    }
    hk_gc_collect(m, HK_GC_FULL);
    uint64_t kept = y->kids[0] ? y->kids[0]->id : 0;
    fprintf(stderr, "noevac (budget spent before the phase): %lu bytes evacuated, %lu markings with the evacuation "
            "tests, %d of 4 objects left gray; %lu sticky collections, the stored object %s\n",
            (unsigned long)evacuated, (unsigned long)evac, gray,
            (unsigned long)(s3.sticky_collections - s2.sticky_collections), kept == 4242 ? "kept" : "LOST");
    CHECK(evacuated > 0);
    CHECK(evac > 0);
    CHECK(gray == 0);
    CHECK(s3.sticky_collections > s2.sticky_collections);
    CHECK(kept == 4242);
    y = NULL;
  }
  memset(sp_roots, 0, sizeof sp_roots);
  sp_stop = 1;
  hk_gc_blocking_begin(m);
  pthread_join(t, NULL);
  hk_gc_blocking_end(m);
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
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
  spent_budget();
  return check_report("gc.threads_noevac");
}
