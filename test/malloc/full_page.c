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
 * (5) A full page adopted from an exited thread's heap joins the end of its queue when it comes
 * back: its blocks were handed out by the other thread. It kept the full_seq of its old heap, and
 * when that equalled the adopting heap's count (here: each heap sent one page of the class to the
 * full queue) it went to the front as if it had gone full last (`full_page adopted`).
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

/* (5): thread A fills a page, which goes to the full queue when A takes its next page, and exits
 * with every block allocated; thread B adopts A's segment at its first malloc, sends a page of its
 * own to the full queue, then frees enough of A's full page to bring it back. */
static hk__page *adopted_page;
static void *thread_a(void *arg) {
  (void)arg;
  b[n++] = hk_malloc(SIZE);
  adopted_page = hk__page_at(b[0]);
  while (n < MAX) { /* until the page has gone to the full queue */
    b[n] = hk_malloc(SIZE);
    CHECK(b[n] != NULL);
    n++;
    if (in_full_queue(adopted_page)) break;
  }
  CHECK(in_full_queue(adopted_page) && adopted_page->full_seq == 1);
  return NULL;
}
static void *thread_b(void *arg) {
  (void)arg;
  hk_heap *h = hk_heap_get_default();
  hk__page *pa = adopted_page;
  void *first = hk_malloc(SIZE); /* (adopts A's segment: no segment of its own yet) */
  CHECK(first != NULL && atomic_load(&pa->heap) == h && in_full_queue(pa));
  hk__page_queue *q = &h->queues[pa->bin];
  void *mine[MAX];
  int m = 0;
  hk__page *own = NULL;
  while (m < MAX && !own) { /* until a page other than A's goes to the full queue */
    mine[m] = hk_malloc(SIZE);
    CHECK(mine[m] != NULL);
    m++;
    for (hk__page *x = h->queues[HK_BIN_FULL].first; x; x = x->next)
      if (x != pa && x->bin == pa->bin) own = x;
  }
  CHECK(own != NULL && q->full_seq == 1); /* (A sent its page to the full queue as its heap's first: full_seq 1) */
  free_of(pa, (int)hk__page_full_bias(pa->capacity));
  CHECKF(!in_full_queue(pa) && q->first != pa && q->last == pa, "the adopted page came back to the %s of its queue",
         q->first == pa ? "front" : "middle");
  /* and the page that went full last in this heap still comes back to the front */
  int freed = 0;
  for (int i = m - 1; i >= 0 && freed < (int)hk__page_full_bias(own->capacity); i--)
    if (mine[i] && hk__page_at(mine[i]) == own) { hk_free(mine[i]); mine[i] = NULL; freed++; }
  CHECK(!in_full_queue(own) && q->first == own && hk__heap_is_valid(h));
  for (int i = 0; i < m; i++) hk_free(mine[i]);
  hk_free(first);
  for (int i = 0; i < n; i++) hk_free(b[i]);
  return NULL;
}

static int adopted(void) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread_a, NULL) == 0 && pthread_join(t, NULL) == 0);
  CHECK(pthread_create(&t, NULL, thread_b, NULL) == 0 && pthread_join(t, NULL) == 0);
  printf("ok\n");
  return 0;
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_full_page";
  if (argc > 1 && strcmp(argv[1], "adopted") == 0) return adopted();
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
