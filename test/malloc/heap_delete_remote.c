/* hk_heap_delete while another thread frees the deleted heap's large blocks. Deleting a heap
 * disowns its large blocks (they live on, owned by no heap); a free that sees a block disowned
 * skips the large lock and gives the segment back at once, to the thread's kept segment, the cache
 * or the OS, from where the next owner writes its list links. The disowning loop read each
 * block's link after disowning it, so a free in between made it follow a link of a released or
 * reused segment. Found by TSan in malloc.thread_exit_late_heaps (CI run of 2026-12-07).
 *
 * Deterministic under TSan: the freeing thread learns of the deletion through a relaxed flag (no
 * happens-before), then, in the free's order, loads the owner with acquire (which synchronises with
 * the disowning store only) and writes the segment's link as its next owner would. A read of the
 * link after the disowning store is then a data race that TSan reports every run; before, none.
 * Without TSan the test checks the blocks' contents and that the process survives. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include "testutil.h"

#include <heapkit.h>
#include <stdatomic.h>

#define ROUNDS 20
#define SIZE 300000

static void *_Atomic handed;
static atomic_int deleted;

static void *freer(void *arg) {
  (void)arg;
  for (int r = 0; r < ROUNDS; r++) {
    void *p;
    while (!(p = atomic_load_explicit(&handed, memory_order_acquire))) {}
    atomic_store_explicit(&handed, NULL, memory_order_relaxed);
    while (atomic_load_explicit(&deleted, memory_order_relaxed) != r + 1) {}
    CHECK(tu_verify(p, SIZE) == (size_t)-1);
    hk__segment *s = &hk__mseg_of(p)->base;
    /* hk__large_free's order: an acquire load that sees the block disowned, then writes to the
     * segment with no lock (here the link, as the segment's next owner would write it) */
    CHECK(__atomic_load_n(&s->owner, __ATOMIC_ACQUIRE) == NULL);
    s->next = NULL;
    hk_free(p);
  }
  return NULL;
}

int main(void) {
  tu_test_name = "heap_delete_remote";
  pthread_t t;
  CHECK(pthread_create(&t, NULL, freer, NULL) == 0);
  for (int r = 0; r < ROUNDS; r++) {
    hk_heap *y = hk_heap_new();
    CHECK(y != NULL);
    void *p = hk_heap_malloc(y, SIZE);
    CHECK(p != NULL && hk_heap_contains(y, p));
    tu_fill(p, SIZE);
    while (atomic_load_explicit(&handed, memory_order_relaxed)) {}
    atomic_store_explicit(&handed, p, memory_order_release);
    hk_heap_delete(y);
    atomic_store_explicit(&deleted, r + 1, memory_order_relaxed);
    while (atomic_load_explicit(&handed, memory_order_relaxed) == p) {}
  }
  CHECK(pthread_join(t, NULL) == 0);
  printf("heap_delete_remote: %d large blocks freed by another thread after hk_heap_delete: ok\n", ROUNDS);
  return 0;
}
