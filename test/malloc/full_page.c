/* Local frees into a page of the full queue. (1) They go on the page's allocation list as the fast
 * path's do, so the page's blocks are handed out in one run: before (2026-12-07) the first went on
 * local_free, and the allocation slow path ran again for that one block (w_tiny 0.1: 57 K of 119 K
 * slow paths). (2) The page stays in the full queue, its frees on hk_free's fast path, until
 * hk__page_full_bias(capacity) of its blocks are free (hk__page.full_bias): brought back at the
 * first free, a page with one free block cycled between the queues (w_tiny 0.1: 59 K moves each
 * way). (3) The page of its class that went full last comes back to the front of its queue (its
 * blocks were handed out last, so they are the ones a LIFO program frees next, still in the
 * cache); an older full page joins the end. (4) A block another thread frees into a full page
 * brings the page back at once (its further remote frees are collected only from the bin queue).
 * Counts the thread's slow paths (tld->slow_calls). Linked with the static library: it reads page
 * descriptors and the thread's record. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include "testutil.h"

#define SIZE 48
#define MAX 16384

static void *b[MAX];
static int n;
static void *last_freed;

/* malloc until a page other than those in have[0..k) is dry (all carved and handed out); it is returned */
static hk__page *fill_next_page(hk__page **have, int k) {
  hk__page *p = NULL;
  while (n < MAX) {
    b[n] = hk_malloc(SIZE);
    CHECK(b[n] != NULL);
    hk__page *pg = hk__page_at(b[n++]);
    bool old = false;
    for (int i = 0; i < k; i++) old |= pg == have[i];
    if (!old) p = pg;
    if (p && p->free == NULL && p->local_free == NULL && p->capacity == p->reserved) return p;
  }
  CHECK(!"no page filled");
  return NULL;
}

/* free count blocks of pg, the ones handed out last first */
static void free_of(hk__page *pg, int count) {
  for (int i = n - 1; i >= 0 && count > 0; i--)
    if (b[i] && hk__page_at(b[i]) == pg) {
      hk_free(b[i]);
      last_freed = b[i];
      b[i] = NULL;
      count--;
    }
  CHECK(count == 0);
}

static bool in_full_queue(hk__page *pg) { return (pg->flags & HK__PAGE_IN_FULL) != 0; }

static void *remote_free(void *p) {
  hk_free(p);
  return NULL;
}

int main(void) {
  tu_test_name = "malloc_full_page";
  hk_heap *h = hk_heap_get_default();
  b[n++] = hk_malloc(SIZE);
  hk_free(hk_malloc(SIZE)); /* (the segment among the thread's hints: the next frees take the fast path) */
  hk__page *pages[4] = {hk__page_at(b[0])};
  /* p1 full, p2 dry (p1 went to the full queue when p2 was taken); then p2 full, p3 dry */
  pages[1] = fill_next_page(pages, 1);
  CHECK(in_full_queue(pages[0]) && !in_full_queue(pages[1]));
  hk__page *p1 = pages[0], *p2 = pages[1];
  b[n++] = hk_malloc(SIZE); /* (p2 goes to the full queue, p3 is taken) */
  hk__page *p3 = hk__page_at(b[n - 1]);
  CHECK(p3 != p1 && p3 != p2 && in_full_queue(p2));
  pages[2] = p3;
  CHECK(fill_next_page(pages, 2) == p3); /* (n stays below MAX: p3 is the third page) */
  hk__page_queue *q = &h->queues[p1->bin];
  uint32_t k = hk__page_full_bias(p1->capacity);
  CHECK(k > 1 && k == hk__page_full_bias(p2->capacity));

  /* (2) k - 1 frees leave p1 in the full queue, with the blocks on its allocation list */
  free_of(p1, (int)k - 1);
  CHECKF(in_full_queue(p1), "p1 left the full queue after %u of %u frees", k - 1, k);
  CHECK(p1->free != NULL && p1->local_free == NULL);
  /* (3) the k-th brings it back, to the end of its queue: p2 went full after it */
  free_of(p1, 1);
  CHECK(!in_full_queue(p1) && q->last == p1 && q->first == p3);
  /* (3) p2, the page that went full last, comes back to the front */
  free_of(p2, (int)k);
  CHECK(!in_full_queue(p2) && q->first == p2);
  CHECK(hk__page_is_valid(p1) && hk__page_is_valid(p2) && hk__heap_is_valid(h));

  /* (1) its k blocks are handed out in one run, the block freed last first, with no slow path */
  uint32_t slow = h->tld->slow_calls;
  void *want = last_freed;
  for (uint32_t i = 0; i < k; i++) {
    CHECK(n < MAX);
    b[n] = hk_malloc(SIZE);
    CHECK(hk__page_at(b[n]) == p2 && (i > 0 || b[n] == want));
    n++;
  }
  uint32_t extra = h->tld->slow_calls - slow;
  printf("slow paths for the %u blocks of the page back from the full queue: %u\n", k, extra); /* (printf allocates) */
  CHECK(extra == 0);

  /* (4) p2 is dry again; the next malloc sends it to the full queue and takes p1 */
  b[n++] = hk_malloc(SIZE);
  CHECK(hk__page_at(b[n - 1]) == p1 && in_full_queue(p2));
  while (p1->free) {
    CHECK(n < MAX);
    b[n++] = hk_malloc(SIZE);
    CHECK(hk__page_at(b[n - 1]) == p1);
  }
  void *victim = NULL;
  for (int i = 0; i < n && !victim; i++)
    if (b[i] && hk__page_at(b[i]) == p2) { victim = b[i]; b[i] = NULL; }
  CHECK(victim != NULL);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, remote_free, victim) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  b[n++] = hk_malloc(SIZE); /* (the slow path: p1 is dry; it drains the heap's delayed frees) */
  CHECK(!in_full_queue(p2) && hk__page_is_valid(p2) && hk__heap_is_valid(h));

  for (int i = 0; i < n; i++) hk_free(b[i]);
  printf("ok\n");
  return 0;
}
