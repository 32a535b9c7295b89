/* Pages and page queues: carving blocks, collecting frees, moving pages between a heap's bin queues
 * and its full queue, and the generic allocation path that runs when the current page is empty. */
#include "malloc/malloc.h"

#include <errno.h>
#include <sched.h>
#include <unistd.h>

hk__page hk__page_empty;

#define EXTEND_BYTES 4096u

/* ---- queues and the direct table ----------------------------------------------------------------- */

/* the last bin served through heap->direct: hk__bin_of(HK_DIRECT_MAX) (test malloc.api.hot_page) */
#define DIRECT_LAST_BIN (HK__HOT_FIRST_BIN - 1)

/* A HARDENED page is never a direct slot's: malloc's inline pop (alloc.c) checks no link, so such a
 * class's mallocs go through hk__malloc_generic to page_pop, which checks the link it follows.
 * The check costs the pages that are not hardened nothing there. */
static inline hk__page *direct_target(hk__page *pg) {
  return pg != NULL && !(pg->flags & HK__PAGE_HARDENED) ? pg : &hk__page_empty;
}

static void update_direct_slots(hk_heap *h, size_t bin, hk__page *pg) {
  size_t bsize = hk__bin_size(bin);
  size_t lo = bin == 1 ? 0 : hk__bin_size(bin - 1) / 8 + 1, hi = bsize / 8;
  hk__page *target = direct_target(pg);
  for (size_t i = lo; i <= hi; i++) h->direct[i] = target;
}

static inline void update_direct(hk_heap *h, size_t bin, hk__page *pg) {
  if (bin <= DIRECT_LAST_BIN) update_direct_slots(h, bin, pg);
}

static inline size_t queue_bin(const hk_heap *h, const hk__page_queue *q) { return (size_t)(q - h->queues); }

void hk__page_queue_push(hk_heap *h, hk__page_queue *q, hk__page *pg) {
  pg->prev = NULL;
  pg->next = q->first;
  if (q->first) q->first->prev = pg;
  else q->last = pg;
  q->first = pg;
  update_direct(h, queue_bin(h, q), pg);
}

static void queue_append(hk_heap *h, hk__page_queue *q, hk__page *pg) {
  pg->next = NULL;
  pg->prev = q->last;
  if (q->last) q->last->next = pg;
  else { q->first = pg; update_direct(h, queue_bin(h, q), pg); }
  q->last = pg;
}

void hk__page_queue_remove(hk_heap *h, hk__page_queue *q, hk__page *pg) {
  if (pg->prev) pg->prev->next = pg->next;
  else { q->first = pg->next; update_direct(h, queue_bin(h, q), q->first); }
  if (pg->next) pg->next->prev = pg->prev;
  else q->last = pg->prev;
  pg->next = pg->prev = NULL;
}

static void queue_to_front(hk_heap *h, hk__page_queue *q, hk__page *pg) {
  if (q->first == pg) return;
  hk__page_queue_remove(h, q, pg);
  hk__page_queue_push(h, q, pg);
}

/* ---- delayed-free state ------------------------------------------------------------------------------ */

/* A hand-over in flight at a fork: the freer does not exist in the child, where the allocator's
 * child handler clears the state (heap.c, clear_stale_delaying). The child handlers registered
 * before it run first, on the forking thread (which holds the allocator's locks: hk__fork_holds),
 * and one that emptied or filled such a page waited for the hand-over for ever
 * (malloc.fork_delaying). In the child, the forking thread is alone until then: the state is stale. */
static hk_cold bool delaying_stale(void) {
  return hk__fork_holds() && getpid() != atomic_load_explicit(&hk__fork_parent_pid, memory_order_relaxed);
}

void hk__page_set_delay(hk__page *pg, uintptr_t state, bool override_never) {
  uintptr_t tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed), nt;
  for (;;) {
    uintptr_t cur = tf & HK__DELAY_MASK;
    if (cur == HK__DELAYING && !delaying_stale()) { /* a remote freer is handing a block to the heap: let it finish */
      sched_yield();
      tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed);
      continue;
    }
    if (cur == state || (cur == HK__NEVER_DELAY && !override_never)) return;
    nt = (tf & ~HK__DELAY_MASK) | state;
    if (atomic_compare_exchange_weak_explicit(&pg->xthread_free, &tf, nt, memory_order_acq_rel, memory_order_relaxed)) return;
  }
}

/* A full page with no other flag is biased (hk__page.full_bias): until a few of its blocks are
 * free, its owner's frees push them as hk_free's fast path does and leave the page in the full
 * queue. Brought back at the first free, a page with one free block cycled between the queues:
 * the next malloc took that block and sent the page back (w_tiny 0.1: 59 K moves each way, each
 * free of them through the flagged path, with a mispredicted branch in hk_free). */
static void page_bias(hk__page *pg) {
  hk_assert_internal(pg->used == pg->capacity && pg->full_bias == 0);
  if (pg->flags != HK__PAGE_IN_FULL) return;
  pg->full_bias = pg->capacity - hk__page_full_bias(pg->capacity);
  pg->used -= pg->full_bias;
  hk__page_fast_lim(pg);
}

static void page_unbias(hk__page *pg) {
  pg->used += pg->full_bias;
  pg->full_bias = 0;
  hk__page_fast_lim(pg);
}

static void page_to_full(hk_heap *h, hk__page *pg) {
  hk__page_queue_remove(h, &h->queues[pg->bin], pg);
  queue_append(h, &h->queues[HK_BIN_FULL], pg);
  hk__page_flag_set(pg, HK__PAGE_IN_FULL);
  page_bias(pg);
  pg->full_seq = ++h->queues[pg->bin].full_seq;
  hk__page_set_delay(pg, HK__USE_DELAYED, false);
}

/* The page joins the end of its queue, so one free into a full page does not make the allocator
 * bounce between pages. Its delayed state stays USE_DELAYED: at worst the next remote free notifies
 * the heap once more, which costs less than an atomic operation on every full/unfull transition. */
static void page_unfull(hk_heap *h, hk__page *pg) {
  page_unbias(pg);
  bool recent = h->queues[pg->bin].full_seq == pg->full_seq;
  hk__page_queue_remove(h, &h->queues[HK_BIN_FULL], pg);
  hk__page_flag_clear(pg, HK__PAGE_IN_FULL);
  if (recent) hk__page_queue_push(h, &h->queues[pg->bin], pg);
  else queue_append(h, &h->queues[pg->bin], pg);
}

/* ---- blocks ----------------------------------------------------------------------------------------- */

/* Carve up to EXTEND_BYTES of fresh blocks: touching a new page little by little keeps the resident
 * size close to what is used. */
static void page_extend(hk__page *pg, int64_t now) {
  uint32_t left = pg->reserved - pg->capacity;
  if (left == 0) return;
  uint32_t bs = pg->block_size, n = EXTEND_BYTES / bs;
  if (n == 0) n = 1;
  if (n > left) n = left;
  uint8_t *first = pg->start + (size_t)pg->capacity * bs;
  uint8_t *p = first;
  for (uint32_t i = 0; i + 1 < n; i++, p += bs) ((hk__block *)p)->next = hk__encode(pg, (hk__block *)(p + bs));
  ((hk__block *)p)->next = hk__encode(pg, pg->free);
  pg->free = (hk__block *)first;
  pg->capacity += n;
  /* other threads read carved when they validate a pointer (free, malloc_usable_size) */
  uint32_t carved = pg->capacity * bs;
  __atomic_store_n(&pg->remote.carved, carved, __ATOMIC_RELAXED);
  hk__page_fast_lim(pg);
  /* the page's resident prefix is in use again as far as it goes (see trim_tail in mseg.c) */
  if (carved + EXTEND_BYTES >= pg->touched) {
    if (carved > pg->touched) pg->touched = carved;
    pg->deep_at = now;
  }
}

void hk__mpage_collect(hk__page *pg) {
  uintptr_t tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed);
  if (hk__tf_ptr(tf)) {
    while (!atomic_compare_exchange_weak_explicit(&pg->xthread_free, &tf, tf & HK__DELAY_MASK, memory_order_acquire, memory_order_relaxed)) {}
    hk__block *head = hk__tf_ptr(tf);
    uint32_t count = hk__tf_count(tf);
    if (hk_unlikely(count > pg->used)) hk__fatal("corrupted free list in page %p (more blocks freed than allocated)", (void *)pg);
    if (hk_unlikely(pg->flags & HK__PAGE_HARDENED)) hk__check_remote_frees(pg, head, count);
    pg->used -= count;
    if (pg->free == NULL) {
      pg->free = head; /* the common case: no walk over blocks other cores just wrote */
    } else if (pg->local_free == NULL) {
      /* nor here: the chain ends in an encoded NULL already. Walking it to its tail (blocks that
       * other cores wrote last, so cache misses) was 1-1.5% of w_server's samples. */
      pg->local_free = head;
    } else {
      hk__block *tail = head;
      for (uint32_t n = 1; n < count; n++) tail = hk__decode(pg, tail->next);
      tail->next = hk__encode(pg, pg->local_free);
      pg->local_free = head;
    }
  }
  if (pg->free == NULL && pg->local_free != NULL) {
    pg->free = pg->local_free;
    pg->local_free = NULL;
  }
}

/* Every pop of a hardened page comes here (see direct_target): its allocation list holds blocks
 * from frees, carving and the migrations of hk__mpage_collect (local frees, remote frees checked by
 * hk__check_remote_frees), and this is where a link of any of them is first followed. */
static hk_forceinline void *page_pop(hk_heap *h, hk__page *pg) {
  hk__block *b = pg->free;
  hk__block *next = hk__decode(pg, b->next);
  if (hk_unlikely(pg->flags & HK__PAGE_HARDENED) && !hk__link_ok(pg, next)) hk__corrupt_link(pg);
  pg->free = next;
  b->next = 0; /* see heap_malloc_small */
  __builtin_prefetch(pg->free, 1, 3); /* as in heap_malloc_small */
  pg->used++;
  hk__heap_count(h, inuse, pg->block_size);
  hk__heap_count_op(h, mallocs);
  hk_assert_expensive(hk__page_is_valid(pg));
  return b;
}

/* ---- the generic path -------------------------------------------------------------------------------- */

/* Free blocks of pg: on its lists and on its remote list, without walking either. */
static inline uint32_t page_avail(hk__page *pg) {
  return pg->capacity - pg->used + hk__tf_count(atomic_load_explicit(&pg->xthread_free, memory_order_relaxed));
}

/* Before the first page of a queue grows, a page further on that holds at least as many free
 * blocks as an extension would carve is taken instead: with threads exchanging blocks, the pages
 * behind the first one collect remote frees and local frees nobody allocates from (w_server: 1.5
 * of each thread's 3.8 MiB carved), while the first page keeps carving fresh memory. A smaller
 * batch than an extension's would make the allocator hop between pages for a block or two each
 * time. Returns such a page (collected, with free blocks) among the 4 after first, or NULL.
 * Also when the first page is fully carved: the loop of find_page would go on to the next pages
 * anyway, but taking the first with any free block, and restricting the look-ahead to a first
 * page that can grow cost w_churn and w_server about 0.4 MiB of peak RSS (27.5 -> 27.9 MiB and
 * 31.8 -> 32.2 MiB) for 0.8% fewer instructions in w_tiny, where the look-ahead found a page in
 * 1 of 10 slow paths (docs/architecture.md). */
static hk__page *stocked_page(hk__page *first) {
  uint32_t want = EXTEND_BYTES / first->block_size;
  if (want == 0) want = 1;
  hk__page *x = first->next;
  for (int n = 0; x && n < 4; n++, x = x->next) {
    if (page_avail(x) < want) continue;
    hk__mpage_collect(x);
    if (x->free) return x;
  }
  return NULL;
}

static hk__page *find_page(hk_heap *h, hk__page_queue *q) {
  bool first = true;
  for (hk__page *pg = q->first, *next; pg; pg = next, first = false) {
    next = pg->next;
    hk__mpage_collect(pg);
    if (!pg->free && first) {
      hk__page *x = stocked_page(pg);
      if (x) pg = x;
    }
    if (!pg->free) page_extend(pg, h->tld->now);
    if (pg->free) {
      queue_to_front(h, q, pg);
      return pg;
    }
    page_to_full(h, pg);
  }
  hk__page *pg = hk__mseg_page_alloc(h, q->block_size);
  if (!pg) return NULL;
  page_extend(pg, h->tld->now);
  return pg;
}

/* Apart from the pop, so that the pop (every malloc of 1 KiB to 64 KiB) saves no registers. */
static hk_noinline void *heap_malloc_bin_slow(hk_heap *h, size_t bin) {
  hk__page_queue *q = &h->queues[bin];
  hk__page *pg;
  hk__tld_periodic(h->tld);
  hk__lifo_reset(h);
  if (atomic_load_explicit(&h->delayed_free, memory_order_relaxed)) hk__heap_drain_delayed(h);
  hk_assert_expensive(hk__heap_is_valid(h));
  pg = find_page(h, q);
  if (!pg) { errno = ENOMEM; return NULL; }
  return page_pop(h, pg);
}

static hk_forceinline void *heap_malloc_bin(hk_heap *h, size_t bin) {
  hk__page *pg;
  if (bin >= HK__HOT_FIRST_BIN) {
    pg = h->hot[bin - HK__HOT_FIRST_BIN];
    if (pg != NULL && pg->free != NULL) return page_pop(h, pg);
  }
  pg = h->queues[bin].first;
  if (hk_likely(pg != NULL && pg->free != NULL)) return page_pop(h, pg);
  return heap_malloc_bin_slow(h, bin);
}

void *hk__heap_malloc_bin(hk_heap *h, size_t bin) { return heap_malloc_bin(h, bin); }

/* The thread's first allocation (or one after its exit), and large blocks: out of hk__malloc_generic, so that its common
 * case (a size above HK_DIRECT_MAX served from the first page of its queue) saves no registers. */
static hk_noinline void *malloc_first(size_t size) {
  if (hk__tls_heap == &hk__heap_done) return hk__malloc_late(size, 0, false);
  hk_heap *h = hk__heap_get();
  if (!h) { errno = ENOMEM; return NULL; }
  return hk__malloc_generic(size, h);
}

/* A block over HK_MEDIUM_MAX, for malloc (from hk__malloc_generic, h ready), calloc and realloc's
 * move with room to double (h maybe not ready: a thread whose first call this is, or one after
 * its exit, which takes the late path without the room). HK__LARGE_TICK: the thread's periodic
 * work first, as every allocation slow path but calloc's does. */
hk_noinline void *hk__malloc_large(size_t size, hk_heap *h, unsigned flags) {
  if (size >= HK_MAX_ALLOC) { errno = ENOMEM; return NULL; }
  if (h->tld == NULL) {
    if (h == &hk__heap_done) return hk__malloc_late(size, 0, (flags & HK__LARGE_ZERO) != 0);
    if ((h = hk__heap_get()) == NULL) { errno = ENOMEM; return NULL; }
  }
  if (flags & HK__LARGE_TICK) hk__tld_periodic(h->tld);
  return hk__large_alloc(h, size, 0, (flags & HK__LARGE_ZERO) != 0, (flags & HK__LARGE_ROOM) != 0);
}

void *hk__malloc_generic(size_t size, hk_heap *h) {
  if (hk_unlikely(h->tld == NULL)) return malloc_first(size);
  if (hk_likely(size <= HK_MEDIUM_MAX)) {
    size_t bin = hk__bin_of(size);
    if (h->fcache != NULL) {
      void *p = hk__fcache_pop(h, bin);
      if (p) return p;
    }
    return heap_malloc_bin(h, bin);
  }
  return hk__malloc_large(size, h, HK__LARGE_TICK);
}

/* ---- freeing ------------------------------------------------------------------------------------------ */

/* The end of every local free off the fast path (pg->used already counts the free): the page
 * leaves the full queue, and goes when it is empty. False when it went: hk__page_retire may release
 * the segment and pg's descriptor with it, so the caller must not read pg after (an HK_DEBUG=3
 * check after the retire read unmapped memory with HEAPKIT_SEGMENT_CACHE=0). */
static bool page_after_free(hk__page *pg) {
  if (pg->flags & HK__PAGE_IN_FULL) {
    if (pg->full_bias != 0 && pg->used != 0) return true; /* biased: back once enough are free */
    page_unfull(atomic_load_explicit(&pg->heap, memory_order_relaxed), pg);
  }
  if (pg->used == 0) {
    hk__page_retire(NULL, pg); /* clears the heap's hot page of the class if it was pg */
    return false;
  }
  return true;
}

void hk__page_free_local(hk__page *pg, hk__block *b) {
  /* (a full page comes back at once here: after a remote free hands its block over, the page's
   * further remote frees wait on its remote list, which only a page in its bin queue collects) */
  if (pg->full_bias != 0) page_unbias(pg);
  b->next = hk__encode(pg, pg->local_free);
  pg->local_free = b;
  pg->used--;
  if (page_after_free(pg)) hk_assert_expensive(hk__page_is_valid(pg));
}

/* A local free off hk_free's fast path (b already checked; h: the freeing thread's default heap,
 * which counts the free): pushed as the fast path pushes (hk__page_push_local), also into a page of
 * the full queue. There it went on local_free: when every page of the class was full (w_tiny's
 * table of cells freed at random), the page came back as the queue's only page with its one block
 * on local_free, so the next malloc took the allocation slow path to collect it (w_tiny 0.1: 57 K of
 * 119 K slow paths); now it pops the block. (A full page with no other flag gets its local frees on
 * hk_free's fast path: page_bias.) */
void hk__page_free_owned(hk_heap *h, hk__page *pg, hk__block *b) {
  hk__page_push_local(h, pg, b);
  pg->used--;
  if (page_after_free(pg)) hk_assert_expensive(hk__page_is_valid(pg));
}

/* A local free of a block over HK_DIRECT_MAX (b already checked; h: the freeing thread's default
 * heap, which counts the free and is the page's heap: HK__PAGE_HOT): the block goes on the allocation list and its page becomes the
 * heap's hot page of the class, so the next malloc of the class returns the block freed last,
 * whatever its page, as a per-class free list would. Such a class has a few blocks per page; before,
 * its mallocs took the first page of the queue, which handed out blocks freed long ago (a cold
 * link to load) and ran dry at nearly every malloc (w_churn: the allocation slow path on 25 K of
 * about 30 K mallocs over 1 KiB at scale 0.05). Moving the page to the front of its queue instead
 * did as well for the slow path but touched three other page descriptors per free. The LIFO
 * budget bounds it as in hk_free. */
void hk__page_free_hot(hk_heap *h, hk__page *pg, hk__block *b) {
  hk_assert_internal(atomic_load_explicit(&pg->heap, memory_order_relaxed) == h);
  hk__page_push_local(h, pg, b);
  pg->used--;
  if (!page_after_free(pg)) return;
  h->hot[pg->bin - HK__HOT_FIRST_BIN] = pg;
  hk_assert_expensive(hk__page_is_valid(pg));
}

/* An empty page goes back to its segment, unless it is the only page of a small or medium size
 * class: a thread that allocates and frees one object in a loop must not take a page each time
 * (for medium classes, until 2026-12-07, it did: malloc(32 KiB)/free 4-5x glibc's time; test
 * malloc.api.medium_loop). At most one such page per class, 2 MiB for the 16 medium classes. */
void hk__page_retire(hk_heap *unused, hk__page *pg) {
  (void)unused;
  hk_heap *h = atomic_load_explicit(&pg->heap, memory_order_relaxed);
  if (pg->full_bias != 0) { /* hk_free's fast path: a biased full page has enough free blocks */
    page_unfull(h, pg);
    hk_assert_expensive(hk__page_is_valid(pg));
    return;
  }
  if (hk_unlikely(h == NULL || h->destroying)) return;
  hk__page_queue *q = &h->queues[pg->bin];
  if (!(pg->flags & HK__PAGE_IN_FULL) && q->first == pg && q->last == pg && pg->block_size <= HK_MEDIUM_MAX) {
    pg->retire_at = h->tld->now;
    return;
  }
  /* the one way a page leaves a live heap but hk__heap_release_pages, which clears every hint */
  if (pg->bin >= HK__HOT_FIRST_BIN && h->hot[pg->bin - HK__HOT_FIRST_BIN] == pg) h->hot[pg->bin - HK__HOT_FIRST_BIN] = NULL;
  hk__page_queue_remove(h, (pg->flags & HK__PAGE_IN_FULL) ? &h->queues[HK_BIN_FULL] : q, pg);
  hk__page_set_delay(pg, HK__NEVER_DELAY, true);
  h->page_count--;
  hk__mseg_page_free(h->tld, pg);
  hk__tld_periodic(h->tld);
}

/* Blocks that other threads freed into our full pages. */
void hk__heap_drain_delayed(hk_heap *h) {
  hk__block *b = atomic_exchange_explicit(&h->delayed_free, NULL, memory_order_acquire);
  while (b) {
    hk__block *next = (hk__block *)b->next;
    hk__mseg *seg = hk__mseg_of(b);
    hk__page *pg = hk__page_of(seg, b);
    if (hk_unlikely(pg->flags & HK__PAGE_HARDENED)) hk__check_delayed_free(pg, b);
    hk__page_free_local(pg, b);
    b = next;
  }
}

/* ---- moving pages between heaps ----------------------------------------------------------------------- */

void hk__page_place(hk_heap *h, hk__page *pg) {
  hk__page_set_heap(pg, h);
  hk__page_flag_clear(pg, HK__PAGE_IN_FULL);
  hk__page_set_delay(pg, HK__NO_DELAY, true);
  hk__mpage_collect(pg);
  h->page_count++;
  if (pg->used == 0) {
    h->page_count--;
    hk__page_set_delay(pg, HK__NEVER_DELAY, true);
    hk__mseg_page_free(h->tld, pg);
  } else if (pg->free || pg->capacity < pg->reserved) {
    queue_append(h, &h->queues[pg->bin], pg);
  } else {
    queue_append(h, &h->queues[HK_BIN_FULL], pg);
    hk__page_flag_set(pg, HK__PAGE_IN_FULL);
    page_bias(pg);
    /* Not the class's last full page here (its blocks were handed out by its old heap): a sequence
     * this heap's count has passed, so it comes back to the end of its queue. It kept its old
     * heap's, and when that equalled this heap's count it came back to the front
     * (malloc.full_page_adopted). */
    pg->full_seq = h->queues[pg->bin].full_seq - 1;
    hk__page_set_delay(pg, HK__USE_DELAYED, false);
  }
}

/* Detach every page of h. into != NULL: the pages join that heap (hk_heap_delete). Otherwise they
 * are freed when empty (all of them when the heap is being destroyed) or left for adoption. */
void hk__heap_release_pages(hk_heap *h, hk_heap *into) {
  /* 1. stop remote notifications to h and wait for those in flight */
  for (size_t i = 1; i <= HK_BIN_FULL; i++)
    for (hk__page *pg = h->queues[i].first; pg; pg = pg->next) {
      hk__page_set_delay(pg, HK__NEVER_DELAY, true);
      if (pg->full_bias != 0) page_unbias(pg); /* (its IN_FULL flag goes in step 3) */
    }
  /* 2. blocks already handed to h go back to their pages without moving any page */
  hk__block *b = atomic_exchange_explicit(&h->delayed_free, NULL, memory_order_acquire);
  while (b) {
    hk__block *next = (hk__block *)b->next;
    hk__page *pg = hk__page_at(b);
    if (hk_unlikely(pg->flags & HK__PAGE_HARDENED)) hk__check_delayed_free(pg, b);
    b->next = hk__encode(pg, pg->local_free);
    pg->local_free = b;
    pg->used--;
    b = next;
  }
  /* 3. hand each page on */
  for (size_t i = 1; i <= HK_BIN_FULL; i++) {
    hk__page *pg = h->queues[i].first;
    while (pg) {
      hk__page *next = pg->next;
      pg->next = pg->prev = NULL;
      if (into) {
        hk__page_place(into, pg);
      } else {
        hk__mpage_collect(pg);
        if (h->destroying || pg->used == 0) {
          if (h->destroying) { /* its live blocks are freed with it: counted as frees too */
            hk__heap_count(h, inuse, -(int64_t)pg->used * pg->block_size);
            hk__heap_count(h, frees, (int64_t)pg->used);
          }
          hk__mseg_page_free(h->tld, pg);
        } else {
          hk__page_set_heap(pg, NULL);
          hk__page_flag_clear(pg, HK__PAGE_IN_FULL);
        }
      }
      pg = next;
    }
    h->queues[i].first = h->queues[i].last = NULL;
    update_direct(h, i, NULL);
  }
  for (size_t i = 0; i < HK__HOT_BINS; i++) h->hot[i] = NULL;
  h->page_count = 0;
}

/* ---- invariants ---------------------------------------------------------------------------------------- */

bool hk__page_is_valid(const hk__page *pg) {
  if (!pg->in_use) return pg->free == NULL && pg->local_free == NULL && pg->used == 0 && pg->full_bias == 0;
  uint32_t carved = hk__page_carved(pg);
  if (pg->capacity > pg->reserved || pg->fast_lim != hk__page_fast_lim_of(pg)) return false;
  if ((pg->full_bias != 0) != (pg->flags == HK__PAGE_IN_FULL) ||
      (pg->full_bias != 0 && (pg->used == 0 || pg->used > hk__page_full_bias(pg->capacity)))) return false;
  const hk__page_remote *r = &pg->remote;
  if (pg->div_check != hk__div_check(pg->block_size) || r->div_magic != hk__div_magic(pg->block_size)) return false;
  if (r->start != pg->start || r->key != pg->key || r->block_size != pg->block_size ||
      r->carved != carved || r->flags != (pg->flags & HK__PAGE_REMOTE_FLAGS)) return false;
  hk_heap *h = atomic_load_explicit(&((hk__page *)pg)->heap, memory_order_relaxed);
  if (r->rbuf_limit != hk__rbuf_limit(pg, h)) return false;
  if (((pg->flags & HK__PAGE_HOT) != 0) != hk__page_wants_hot(pg, h)) return false;
  size_t n = 0;
  for (int list = 0; list < 2; list++) {
    for (hk__block *b = list ? pg->local_free : pg->free; b; b = hk__decode(pg, b->next)) {
      size_t off = (uintptr_t)b - (uintptr_t)pg->start;
      if (off >= carved || off % pg->block_size) return false;
      if (++n > pg->capacity) return false;
    }
  }
  return pg->used + pg->full_bias + n == pg->capacity;
}

bool hk__heap_is_valid(const hk_heap *h) {
  size_t pages = 0;
  for (size_t i = 1; i <= HK_BIN_FULL; i++) {
    const hk__page_queue *q = &h->queues[i];
    const hk__page *prev = NULL;
    for (const hk__page *pg = q->first; pg; prev = pg, pg = pg->next) {
      if (pg->prev != prev || !hk__page_is_valid(pg)) return false;
      if (atomic_load_explicit(&((hk__page *)pg)->heap, memory_order_relaxed) != h) return false;
      if ((i == HK_BIN_FULL) != ((pg->flags & HK__PAGE_IN_FULL) != 0)) return false;
      if (i != HK_BIN_FULL && pg->bin != i) return false;
      pages++;
    }
    if (q->last != prev) return false;
  }
  for (size_t s = 0; s < HK_DIRECT_SLOTS; s++) {
    size_t bin = hk__bin_of(s == 0 ? 1 : s * 8);
    const hk__page *want = direct_target(h->queues[bin].first);
    if (h->direct[s] != want) return false;
  }
  for (size_t i = 0; i < HK__HOT_BINS; i++) {
    const hk__page *pg = h->hot[i];
    if (pg == NULL) continue;
    if (!pg->in_use || pg->bin != i + HK__HOT_FIRST_BIN || atomic_load_explicit(&((hk__page *)pg)->heap, memory_order_relaxed) != h)
      return false;
    const hk__page *x = h->queues[(pg->flags & HK__PAGE_IN_FULL) ? HK_BIN_FULL : pg->bin].first;
    while (x && x != pg) x = x->next;
    if (x != pg) return false;
  }
  for (size_t i = 0; i < HK__SEG_HINTS; i++) {
    uintptr_t s = h->seg_hint[i];
    if (s == HK__NO_SEG) continue;
    const hk__mseg *seg = (const hk__mseg *)s;
    if (!h->is_default || !hk__segmap_contains(s) || (s >> HK_SEGMENT_SHIFT) % HK__SEG_HINTS != i ||
        !hk__is_malloc_kind(&seg->base) || atomic_load_explicit(&((hk__mseg *)seg)->base.thread_id, memory_order_relaxed) != h->thread_id)
      return false;
  }
  return pages == h->page_count;
}
