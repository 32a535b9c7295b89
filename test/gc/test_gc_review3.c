/* Review of 2026-12-07 (review3): cases named by the defect each one checks.
 *   verify_pinned: a mature block that held a pinned object at the last full collection is no
 *   evacuation candidate (full.c, holds_pinned, through that collection's mark bits). hk_gc_verify
 *   (and the check after every collection at HK_DEBUG=3) clears the mark bits and put them back
 *   only while sticky collections could use them: on a heap whose finalizable objects keep sticky
 *   collections off, the next full collection after a verification evacuated the pinned objects'
 *   blocks again (the copies take new blocks, the pinned objects keep the old ones).
 *   test_gc_review3 [case] */
#include "gc_test.h"

#include <stdio.h>

#define N 4000 /* 48-byte nodes: 5 blocks */

static node *tab[N];
static void fin(hk_gc_mutator *m, void *obj, void *data) {
  (void)m;
  (void)obj;
  (void)data;
}

/* Moved objects in the third of three full collections: all N nodes, one in 64 pinned, live at
 * the first; two in 64 (the pinned one and its neighbour, finalizable when `finalizers`) at the
 * others, so the blocks are sparse candidates at the third. */
static int moved_after(bool pin, bool finalizers, bool verify) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.growth_percent = 1; /* a small room: the finalizable objects' share keeps sticky collections off */
  o.initial_heap = 1;
  hk_gc_heap *h = NULL;
  hk_gc_mutator *m = NULL;
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_OK);
  if (!h) return -1;
  register_test_types(h);
  for (int i = 0; i < N; i++) CHECK(hk_gc_root_add(h, (void **)&tab[i]) == HK_OK);
  for (int i = 0; i < N; i++) CHECK((tab[i] = new_node(m, (uint64_t)i, 2, false)) != NULL);
  for (int i = 0; i < N; i += 64) {
    if (pin) hk_gc_pin(m, tab[i]);
    if (finalizers) CHECK(hk_gc_set_finalizer(m, tab[i + 1], fin, NULL) == HK_OK);
  }
  hk_gc_collect(m, HK_GC_FULL);
  for (int i = 0; i < N; i++)
    if (i % 64 > 1) tab[i] = NULL;
  hk_gc_collect(m, HK_GC_FULL);
  node *before[N];
  for (int i = 0; i < N; i++) before[i] = tab[i];
  if (verify) CHECK(hk_gc_verify(m) == HK_OK);
  hk_gc_collect(m, HK_GC_FULL);
  int moved = 0;
  for (int i = 0; i < N; i++) {
    moved += before[i] != tab[i];
    if (tab[i]) CHECK(tab[i]->id == (uint64_t)i);
  }
  for (int i = 0; i < N; i++) CHECK(hk_gc_root_remove(h, (void **)&tab[i]) == HK_OK);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
  return moved;
}

static void test_verify_pinned(void) {
  /* (the control: without pins, those blocks are evacuated) */
  int control = moved_after(false, true, true);
  int plain = moved_after(true, true, false), verified = moved_after(true, true, true);
  int nofin = moved_after(true, false, true);
  fprintf(stderr, "verify_pinned: moved without pins %d; pinned: %d, after a verification %d, without finalizers %d\n",
          control, plain, verified, nofin);
  CHECK(control > 0);
  CHECK(plain == 0);
  CHECK(verified == 0);
  CHECK(nofin == 0);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = !strcmp(what, "all");
  if (all || !strcmp(what, "verify_pinned")) test_verify_pinned();
  return check_report("test_gc_review3");
}
