/* A deliberate embedder bug: an object is used through a pointer that was not a root across a
 * collection. Under AddressSanitizer the evacuated nursery block is poisoned, so the read is
 * reported ("use-after-poison"); ctest expects that report (registered only in ASan builds). */
#include "gc_test.h"

#include <stdio.h>

int main(void) {
  hk_gc_heap *h;
  hk_gc_mutator *m;
  if (hk_gc_heap_create(NULL, &h, &m) != HK_OK) return 2;
  register_test_types(h);
  node *stale = new_node(m, 42, 1, false); /* not registered as a root: the bug */
  node *rooted = new_node(m, 43, 1, false);
  HK_GC_ROOTS(m, rooted);
  hk_gc_collect(m, HK_GC_MINOR);
  printf("rooted id %lu\n", (unsigned long)rooted->id);
  volatile uint64_t id = stale->id; /* reads the evacuated (now free) nursery */
  printf("stale id %lu (a use-after-poison report should have stopped us)\n", (unsigned long)id);
  return 0;
}
