/* hk_gc_set_finalizer, hk_gc_weak_new, hk_gc_pin and hk_gc_unpin refuse a pointer into the middle
 * of a small object (they took it: the segment map only says the pointer is in one of the heap's
 * blocks, and the word before it, the object's data, was then read and written as a header: a
 * pin or a finalizer set a bit in the data, and a word with bit 0 set read as forwarded at the
 * next collection). Each case checks the refusal, that the object's data is untouched, and that
 * the object's own start is still accepted; in the nursery buffer, in a mature block (after a
 * full collection) and in a pointer-free object. */
#include "gc_test.h"

#include <stdio.h>

static hk_gc_heap *h;
static hk_gc_mutator *m;
static int fin_runs;

static void fin(hk_gc_mutator *mm, void *obj, void *data) {
  (void)mm, (void)obj, (void)data;
  fin_runs++;
}

/* p points into an object whose words before p hold the program's data: every call refuses it
 * and writes nothing. */
static void refused(void *p, const uint64_t *before, uint64_t expect) {
  CHECK(hk_gc_set_finalizer(m, p, fin, NULL) == HK_EINVAL);
  CHECK(hk_gc_weak_new(m, p) == NULL);
  hk_gc_pin(m, p);
  CHECK(*before == expect);
  hk_gc_unpin(m, p);
  CHECK(*before == expect);
}

static void accepted(void *obj) {
  hk_gc_pin(m, obj);
  CHECK(hk_gc_is_pinned(obj));
  hk_gc_unpin(m, obj);
  CHECK(!hk_gc_is_pinned(obj));
  hk_gc_weak *w = hk_gc_weak_new(m, obj);
  CHECK(w != NULL && hk_gc_weak_get(w) == obj);
  hk_gc_weak_free(m, w);
  CHECK(hk_gc_set_finalizer(m, obj, fin, NULL) == HK_OK);
  CHECK(hk_gc_set_finalizer(m, obj, NULL, NULL) == HK_OK);
}

/* The odd words (bit 0 set: "forwarded"), zero, an address and text before the pointer. */
static void interior_cases(node *n) {
  n->id = 1;
  n->nkids = 3;
  refused(&n->nkids, &n->id, 1);       /* word before: 1 */
  refused(&n->kids[0], &n->nkids, 3);  /* word before: 3 */
  n->kids[0] = NULL;
  refused(&n->kids[1], (const uint64_t *)&n->kids[0], 0);
  n->kids[0] = n;
  refused(&n->kids[1], (const uint64_t *)&n->kids[0], (uint64_t)(uintptr_t)n);
  n->kids[0] = NULL;
  memcpy(&n->id, "abcdefgh", 8);
  uint64_t text;
  memcpy(&text, "abcdefgh", 8);
  refused(&n->nkids, &n->id, text);
  n->id = 7;
  accepted(n);
}

int main(void) {
  CHECK(hk_gc_heap_create(NULL, &h, &m) == HK_OK);
  register_test_types(h);

  /* in the thread's current nursery buffer */
  node *young = new_node(m, 1, 3, false);
  CHECK(young != NULL);
  interior_cases(young);

  /* in a mature block */
  void *root = new_node(m, 2, 3, false);
  CHECK(hk_gc_root_add(h, &root) == HK_OK);
  hk_gc_collect(m, HK_GC_FULL);
  hk_gc_collect(m, HK_GC_FULL);
  interior_cases((node *)root);

  /* in a pointer-free object */
  blob *b = new_blob(m, 5, 64);
  CHECK(b != NULL);
  b->id = 1;
  refused(&b->len, &b->id, 1);
  b->len = 64;

  /* a large object's interior was refused already (its segment holds one object): still so */
  node *big = new_node(m, 9, 40000, false);
  CHECK(big != NULL);
  big->id = 1;
  refused(&big->nkids, &big->id, 1);
  big->id = 9;

  /* the heap is sound and a collection reads no forged header */
  CHECK(hk_gc_verify(m) == HK_OK);
  hk_gc_collect(m, HK_GC_FULL);
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_root_remove(h, &root) == HK_OK);
  CHECK(fin_runs == 0);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
  return check_report("test_gc_interior");
}
