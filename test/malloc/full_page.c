/* Frees into a page of the full queue that come off hk_free's fast path (the first one: the page is
 * in the full queue) go on the page's allocation list as the fast path's do, so the page's blocks
 * are handed out in one run. Before (2026-12-07) that first free went on local_free, and once the
 * page was back at the front of its queue the allocation slow path ran again for that one block
 * (w_tiny 0.1: 57 K of 119 K slow paths). Counts the thread's slow paths (tld->slow_calls).
 * Linked with the static library: it reads page descriptors and the thread's record. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include "testutil.h"

#define SIZE 48
#define MAX 8192

static hk__page *page_of(void *p) { return hk__page_of(hk__mseg_of(p), p); }

int main(void) {
  tu_test_name = "malloc_full_page";
  static void *b[MAX];
  int n = 0;
  b[n++] = hk_malloc(SIZE);
  hk_free(hk_malloc(SIZE)); /* (the segment among the thread's hints: the next frees take the fast path) */
  hk__page *p1 = page_of(b[0]);
  /* fill p1 and go on until the next page, p2, is dry too (its blocks all carved and handed out) */
  hk__page *p2 = NULL;
  while (n < MAX) {
    b[n] = hk_malloc(SIZE);
    CHECK(b[n] != NULL);
    hk__page *pg = page_of(b[n++]);
    if (pg != p1) p2 = pg;
    if (p2 && p2->free == NULL && p2->local_free == NULL && p2->capacity == p2->reserved) break;
  }
  CHECK(p2 != NULL && p2 != p1 && n < MAX);
  CHECK(p1->flags & HK__PAGE_IN_FULL);
  /* ten blocks of p1 freed: the first leaves the fast path (p1 is full) and brings p1 back */
  int freed = 0;
  for (int i = 0; i < n && freed < 10; i++)
    if (page_of(b[i]) == p1) {
      hk_free(b[i]);
      b[i] = NULL;
      freed++;
    }
  CHECK(freed == 10 && !(p1->flags & HK__PAGE_IN_FULL));
  /* the next malloc takes the slow path (p2 is dry) and moves to p1; the nine after it pop */
  void *q = hk_malloc(SIZE);
  CHECK(page_of(q) == p1);
  hk_heap *h = hk_heap_get_default();
  uint32_t slow = h->tld->slow_calls;
  for (int i = 0; i < 9; i++) CHECK(page_of(hk_malloc(SIZE)) == p1);
  uint32_t extra = h->tld->slow_calls - slow;
  printf("slow paths for the nine blocks after the first: %u\n", extra); /* (printf allocates) */
  CHECK(extra == 0);
  printf("ok\n");
  return 0;
}
