/* free: find the page in O(1) (segment = p & ~4 MiB, page = index in its header), check that p is
 * a block heapkit handed out, and push it on the right list. Local frees touch no atomic; frees
 * from other threads push on the page's atomic xthread_free list and, when the page is full,
 * notify its heap so the page becomes allocatable again (the delayed-free protocol below). */
#include "malloc/malloc.h"

#include <errno.h>

void hk__invalid_free(const void *p, const char *why) {
  hk__fatal("invalid free of %p (%s)", p, why);
}

/* Why a pointer that failed the fast checks is not a heapkit block, or NULL if it is one. */
static const char *explain(const void *p) {
  hk__segment *s = hk__segment_find(p);
  if (!s) return "not allocated by heapkit";
  switch (s->kind) {
  case HK__SEG_ARENA: return "it belongs to a heapkit arena";
  case HK__SEG_POOL: return "it belongs to a heapkit pool";
  case HK__SEG_GC: case HK__SEG_GC_LARGE: return "it belongs to a heapkit GC heap";
  case HK__SEG_LARGE: return "not the start of a block";
  case HK__SEG_NONE: return "already freed";
  default: return "not the start of a block";
  }
}

/* Block start for p inside an in-use page, or NULL. */
static inline hk__block *block_start(const hk__page *pg, const void *p) {
  const hk__page_remote *r = &pg->remote;
  size_t off = (uintptr_t)p - (uintptr_t)r->start;
  if (off >= __atomic_load_n(&r->carved, __ATOMIC_RELAXED)) return NULL;
  size_t idx = (size_t)((off * r->div_magic) >> 40);
  return (hk__block *)(r->start + idx * r->block_size);
}

hk_noinline void hk__corrupt_link(const hk__page *pg) {
  hk__fatal("corrupted free list in page %p (a free block's link was overwritten: a write after free or an overflow)", (const void *)pg);
}

/* A block whose first word decodes to an address in its own page (or to NULL) may be on a free
 * list already: look. Cheap because a live block rarely looks like that. */
uint64_t hk__free_search_steps;

/* A hardened page's search checks the links it follows, as its pops do (page.c, page_pop): a link
 * overwritten in a free block is reported, not followed. */
static inline hk__block *search_next(const hk__page *pg, const hk__block *x, bool check) {
  hk__block *next = hk__decode(pg, x->next);
  if (check && !hk__link_ok(pg, next)) hk__corrupt_link(pg);
  return next;
}

/* (b is looked for before the link of the block it is is followed: a block freed again by another
 * thread into a full page went on its heap's delayed-free list, whose raw link replaced its own,
 * and hk__check_delayed_free must find it, not report that link) */
static bool list_holds(const hk__page *pg, const hk__block *x, const hk__block *b, bool check, uint64_t *n) {
  for (; x; x = search_next(pg, x, check)) {
    ++*n;
    if (x == b) return true;
  }
  return false;
}

static bool on_free_list(const hk__page *pg, const hk__block *b) {
  uint64_t n = 0;
  bool check = (pg->flags & HK__PAGE_HARDENED) != 0;
  bool found = list_holds(pg, pg->free, b, check, &n) || list_holds(pg, pg->local_free, b, check, &n) ||
               list_holds(pg, hk__tf_ptr(atomic_load(&((hk__page *)pg)->xthread_free)), b, check, &n);
  __atomic_fetch_add(&hk__free_search_steps, n, __ATOMIC_RELAXED); /* (one add per search: tests bound it) */
  return found;
}

static hk_noinline void check_double_free(hk__page *pg, hk__block *b) {
  if (on_free_list(pg, b)) hk__fatal("double free of %p", (void *)b);
}

/* HEAPKIT_HARDENED: a block another thread freed into pg while pg was full waits on the delayed-free
 * list of pg's heap (a heap of this thread, which alone takes blocks off it; other threads only
 * push, each block linked before it is published), not on pg's lists. Without this look the
 * owner's free of such a block passed the search, overwrote its link in that list, and a block of
 * a class over 1 KiB went to the hot page, so the next malloc handed it out while the list still
 * held it: the drain then followed the overwritten link (SIGSEGV, misuse case
 * double_delayed_local_hardened) or freed a live block. Hardened pages only. */
static void check_delayed_list(const hk__page *pg, const hk__block *b) {
  hk_heap *h = atomic_load_explicit(&((hk__page *)pg)->heap, memory_order_relaxed);
  if (h == NULL) return;
  for (const hk__block *x = atomic_load_explicit(&h->delayed_free, memory_order_acquire); x; x = (const hk__block *)x->next)
    if (x == b) hk__fatal("double free of %p (freed by another thread before, found on its heap's delayed-free list)", (const void *)b);
}

/* HEAPKIT_HARDENED: the owner collects pg's remote frees (count blocks from head). Each must be a
 * block that is not free: not on the page's lists, not twice in the chain. Without this a block
 * freed by two threads, or by its owner and then another thread, went back on the free list twice
 * (a cycle: malloc handed out the same block again and again), and the count check of
 * hk__mpage_collect sees it only when the page has no other block in use. One bit per block on the
 * stack (at most 8192 blocks: 8-byte blocks in a 64 KiB page); hardened pages only. */
#define HK__CHECK_BLOCKS_MAX (((size_t)1 << HK_MEDIUM_PAGE_SHIFT) / 16)
hk_noinline void hk__check_remote_frees(const hk__page *pg, const hk__block *head, uint32_t count) {
  uint64_t seen[HK__CHECK_BLOCKS_MAX / 64] = {0};
  uint32_t bs = pg->block_size, cap = pg->capacity;
  if (cap > HK__CHECK_BLOCKS_MAX) return; /* (cannot happen: see above) */
  const hk__block *lists[2] = {pg->free, pg->local_free};
  for (int l = 0; l < 2; l++) {
    uint32_t n = 0;
    for (const hk__block *x = lists[l]; x && n < cap; x = hk__decode(pg, x->next), n++) {
      size_t off = (size_t)((const uint8_t *)x - pg->start);
      if (off >= (size_t)cap * bs || off % bs) break; /* (a link overwritten after free: the pop that follows it reports it) */
      seen[off / bs / 64] |= (uint64_t)1 << (off / bs % 64);
    }
  }
  const hk__block *x = head;
  for (uint32_t n = 0; n < count; n++, x = hk__decode(pg, x->next)) {
    size_t off = (size_t)((const uint8_t *)x - pg->start);
    if (off >= (size_t)cap * bs || off % bs) hk__fatal("corrupted free list in page %p (a block freed by another thread is not one of its blocks)", (const void *)pg);
    uint64_t bit = (uint64_t)1 << (off / bs % 64);
    if (seen[off / bs / 64] & bit) hk__fatal("double free of %p (freed by another thread, found when its page collected that free)", (const void *)x);
    seen[off / bs / 64] |= bit;
  }
}

/* HEAPKIT_HARDENED: b, freed by another thread into a full page, came to the owner through its
 * heap's delayed-free list (not the page's remote list): the same check. */
hk_noinline void hk__check_delayed_free(const hk__page *pg, const hk__block *b) {
  if (on_free_list(pg, b)) hk__fatal("double free of %p (freed by another thread, found when its page collected that free)", (const void *)b);
}

/* end: the page's carved bytes, or more (the fast path takes the largest page's size, an
 * immediate: only a live block whose first word decodes past the carved blocks costs a search) */
static inline bool maybe_free_block(const hk__page *pg, const hk__block *b, uint32_t end) {
  uintptr_t n = b->next ^ pg->key;
  return n == 0 || n - (uintptr_t)pg->start < end; /* free-list blocks are carved ones */
}

/* Remote free with delayed notification: if the page is full (USE_DELAYED), the first remote free
 * hands its block to the heap's delayed_free list instead, so the owner learns that the page has
 * room; DELAYING marks that hand-over in flight, and owners that tear pages down wait for it. */
void hk__free_remote(hk__page *pg, hk__block *b) {
  uintptr_t tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed), nt;
  bool notify;
  do {
    notify = (tf & HK__DELAY_MASK) == HK__USE_DELAYED;
    if (notify) {
      nt = (tf & ~HK__DELAY_MASK) | HK__DELAYING;
    } else {
      b->next = (uintptr_t)hk__tf_ptr(tf) ^ pg->remote.key; /* hk__encode, from the remote line */
      nt = (uintptr_t)b | (tf & HK__DELAY_MASK) | ((uintptr_t)(hk__tf_count(tf) + 1) << HK__TF_COUNT_SHIFT);
    }
  } while (!atomic_compare_exchange_weak_explicit(&pg->xthread_free, &tf, nt, memory_order_release, memory_order_relaxed));
  if (notify) {
    hk_heap *h = atomic_load_explicit(&pg->heap, memory_order_acquire);
    hk_assert(h != NULL);
    hk__block *head = atomic_load_explicit(&h->delayed_free, memory_order_relaxed);
    do {
      b->next = (uintptr_t)head;
    } while (!atomic_compare_exchange_weak_explicit(&h->delayed_free, &head, b, memory_order_release, memory_order_relaxed));
    tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed);
    do {
      nt = (tf & ~HK__DELAY_MASK) | HK__NO_DELAY;
    } while (!atomic_compare_exchange_weak_explicit(&pg->xthread_free, &tf, nt, memory_order_release, memory_order_relaxed));
  }
}

/* A chain of blocks: one CAS for all of them. If the page wants a notification, the head goes
 * through hk__free_remote's hand-over alone, and the rest follows on the page list. */
void hk__free_remote_list(hk__page *pg, hk__block *head, hk__block *tail, uint32_t n) {
  uintptr_t tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed);
  for (;;) {
    if ((tf & HK__DELAY_MASK) == HK__USE_DELAYED) {
      hk__block *rest = n > 1 ? (hk__block *)(head->next ^ pg->remote.key) : NULL;
      hk__free_remote(pg, head);
      if (!rest) return;
      head = rest;
      n--;
      tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed);
      continue;
    }
    tail->next = (uintptr_t)hk__tf_ptr(tf) ^ pg->remote.key;
    uintptr_t nt = (uintptr_t)head | (tf & HK__DELAY_MASK) | ((uintptr_t)(hk__tf_count(tf) + n) << HK__TF_COUNT_SHIFT);
    if (atomic_compare_exchange_weak_explicit(&pg->xthread_free, &tf, nt, memory_order_release, memory_order_relaxed)) return;
  }
}

/* The end of every local free off the fast path, once b is known to be a live block of pg, a page
 * of h (the calling thread's default heap): counted, and pushed as its page wants. */
static void free_local_checked(hk_heap *h, hk__page *pg, hk__block *b) {
  hk__heap_count(h, inuse, -(int64_t)pg->block_size);
  if (pg->flags & HK__PAGE_HARDENED) {
    /* on local_free, where the block stays until the allocation list runs dry: a later free of it
     * by another thread is then found when the page collects that free (hk__check_remote_frees);
     * on the allocation list the next malloc would hand it out first. Hot pages too (tested
     * before 2026-12-07: a class over 1 KiB went to the allocation list, the other thread's free
     * then overwrote the block's link, and the owner handed the block out twice before a pop
     * reported the link as "overwritten", not the double free) */
    hk__heap_count_op(h, frees);
    hk__page_free_local(pg, b);
    return;
  }
  if (pg->flags & HK__PAGE_HOT) {
    hk__page_free_hot(h, pg, b);
    return;
  }
  hk__page_free_owned(h, pg, b);
}

static hk_noinline void free_other(void *p);

/* What the owner's fast path does not handle: a page with flags, a pointer that is not a carved
 * block start. It takes only p, so that the fast path computes no arguments for it. */
static hk_noinline void free_generic(void *p) {
  hk__mseg *seg = hk__mseg_of(p);
  /* (the fast path sends a pointer into the header or past the last page here: hk__mseg.guard) */
  if (((uintptr_t)p - (uintptr_t)seg - HK_PAGES_OFFSET) >> seg->base.page_shift >= seg->base.page_count) {
    free_other(p);
    return;
  }
  hk__page *pg = hk__page_of(seg, p);
  if (!pg->in_use) hk__invalid_free(p, "not an allocated block");
  hk__block *b = block_start(pg, p);
  if (b == NULL) hk__invalid_free(p, "not an allocated block");
  if ((void *)b != p && !(__atomic_load_n(&pg->remote.flags, __ATOMIC_RELAXED) & HK__PAGE_HAS_ALIGNED))
    hk__invalid_free(p, "not the start of a block");
  hk_heap *h = hk__tls_heap;
  if (atomic_load_explicit(&seg->base.thread_id, memory_order_relaxed) != hk__thread_id()) {
    hk__free_xthread(pg, p, h);
    return;
  }
  /* Every block on pg's own lists (free, local_free, the remote list) holds an encoded link to a
   * carved block of pg or to NULL, so a block whose first word does not is on none of them: the
   * search runs only for a block that looks free, hardened or not. The delayed-free list links raw
   * pointers, so a hardened page searches it always (usually empty: drained by the owner's
   * allocation slow paths). Hardened pages searched pg's lists at every free before (2026-12-07):
   * O(free blocks of the page) per free, lua5.4's realloc churn ~7x slower. */
  if (maybe_free_block(pg, b, hk__page_carved(pg))) check_double_free(pg, b);
  if (pg->flags & HK__PAGE_HARDENED) check_delayed_list(pg, b);
  free_local_checked(h, pg, b);
}

/* The segment of a large block: in its first 4 MiB unless it was aligned to 4 MiB or more. */
static hk__segment *large_segment_of(const void *p) {
  hk__segment *s = hk__segment_of(p);
  if (!s) s = hk__segment_find(p);
  return s;
}

static hk_noinline void free_other(void *p) {
  if (p == NULL) return;
  hk__mseg *mseg = hk__mseg_of(p);
  if (hk__segmap_contains((uintptr_t)mseg) && hk__is_malloc_kind(&mseg->base)) hk__invalid_free(p, "not an allocated block");
  hk__segment *s = large_segment_of(p);
  if (s && s->kind == HK__SEG_LARGE) {
    hk__mseg *seg = (hk__mseg *)s;
    if ((uint8_t *)p != seg->large_block) hk__invalid_free(p, "not the start of a block");
    hk__large_free(seg, p);
    return;
  }
  const char *why = explain(p);
  hk__invalid_free(p, why ? why : "not allocated by heapkit");
}

/* A local free of a block whose first word looks like a free-list link: maybe a double free. */
static hk_noinline void free_suspect(void *p) {
  hk__page *pg = hk__page_at(p);
  hk__block *b = (hk__block *)p;
  check_double_free(pg, b);
  free_local_checked(hk__tls_heap, pg, b);
}

/* hk_free of p in a page whose flags are HOT (a class over HK_DIRECT_MAX), maybe with IN_FULL (a full
 * page with no other flag takes the fast path: hk__page.full_bias), in a segment among the
 * thread's hints: one of its malloc segments, the page index in range. Without free_generic's
 * segment, page and thread checks. */
static hk_noinline void free_owned_flagged(void *p) {
  hk__page *pg = hk__page_at(p);
  size_t off = (uintptr_t)p - (uintptr_t)pg->start;
  uint32_t carved = hk__page_carved(pg);
  if (hk_unlikely(!hk__page_is_block(pg, off))) {
    free_generic(p); /* reports it */
    return;
  }
  hk__block *b = (hk__block *)p;
  if (hk_unlikely(maybe_free_block(pg, b, carved))) check_double_free(pg, b);
  free_local_checked(hk__tls_heap, pg, b); /* (HOT: the hot-page push) */
}

/* A local free in a malloc segment that is not among the thread's hints yet: it becomes one, and
 * hk_free runs again. */
static hk_noinline void free_hint(void *p) {
  hk__mseg *seg = hk__mseg_of(p);
  if (hk_unlikely(!hk__is_malloc_kind(&seg->base))) {
    free_generic(p);
    return;
  }
  *hk__seg_hint_slot(hk__tls_heap, p) = (uintptr_t)seg;
  hk_free(p);
}

/* The fast path does only loads, compares and the push; everything else is a tail call, so it
 * needs no stack frame. A segment among the thread's hints is one of its live malloc segments, so
 * neither the segment map nor the segment's thread is read (w_tiny: 54 -> 44 instructions per free). */
void hk_free(void *p) {
  hk_heap *h = hk__tls_heap;
  hk__mseg *seg = hk__mseg_of(p);
  /* (a copy gcc cannot see through: otherwise it keeps p >> 22 for the segment map below, one
   * more instruction on the fast path) */
  uintptr_t q = (uintptr_t)p;
  __asm__("" : "+r"(q));
  if (hk_unlikely(*hk__seg_hint_slot(h, (void *)q) != (uintptr_t)seg)) {
    /* the full checks, here rather than in a call: cross-thread frees come this way every time */
    if (hk_unlikely(!hk__segmap_contains((uintptr_t)seg))) {
      free_other(p);
      return;
    }
    size_t rel = (uintptr_t)p - (uintptr_t)seg - HK_PAGES_OFFSET;
    size_t idx = rel >> seg->base.page_shift;
    if (hk_unlikely(idx >= seg->base.page_count)) {
      free_other(p);
      return;
    }
    if (atomic_load_explicit(&seg->base.thread_id, memory_order_relaxed) != h->thread_id) {
      hk__free_xthread(&seg->pages[idx], p, h); /* another thread's page (rfree.c) */
      return;
    }
    free_hint(p);
    return;
  }
  hk_assert_internal(hk__is_malloc_kind(&seg->base) &&
                     atomic_load_explicit(&seg->base.thread_id, memory_order_relaxed) == h->thread_id);
  /* Signed: -1 for p in the first 64 KiB (the header), and at most page_count (the last 64 KiB of
   * a medium segment): the descriptors there (hk__mseg.guard, pages[page_count]) have fast_lim 0,
   * so such a p fails the block test below with no bound compare of its own. */
  intptr_t idx = (intptr_t)((uintptr_t)p - (uintptr_t)seg - HK_PAGES_OFFSET) >> seg->base.page_shift;
  hk__page *pg = (hk__page *)((uintptr_t)seg->pages + (uintptr_t)idx * sizeof(hk__page));
  /* one register for pg: otherwise gcc computes it twice, once for a call and once as
   * seg + idx * 192 with the fields at offsets past the segment header */
  __asm__("" : "+r"(pg));
  size_t off = (uintptr_t)p - (uintptr_t)pg->start; /* below the page size: hk__page_is_block holds */
  /* A carved block start, in a page with no flags or a biased full one (fast_lim is 0 otherwise:
   * hk__page_fast_lim): one compare */
  if (hk_unlikely(off * pg->div_check >= pg->fast_lim)) {
    /* (not the guard descriptors: they have no flags) */
    if (pg->flags != 0 && (pg->flags & ~(HK__PAGE_HOT | HK__PAGE_IN_FULL)) == 0) free_owned_flagged(p);
    else free_generic(p);
    return;
  }
  hk__block *b = (hk__block *)p;
  if (hk_unlikely(maybe_free_block(pg, b, (uint32_t)1 << HK_MEDIUM_PAGE_SHIFT))) {
    free_suspect(p);
    return;
  }
  hk__heap_count(h, inuse, -(int64_t)pg->block_size);
  /* The block goes on the allocation list, so that the next malloc of its size returns it while
   * it is in this core's cache (the caller usually just read it): the blocks the page would hand
   * out otherwise were freed long ago or by other cores (w_server: simulated L2 misses -16 %).
   * Only HK__LIFO_FREES times between two allocation slow paths: the allocation list must still
   * run dry now and then, since the slow path does the thread's periodic work (hands its
   * remote-free buffer over, collects its pages' remote frees, purges). After that, local_free.
   * hk__lifo_take also counts the free for the statistics. */
  hk__page_push_local(h, pg, b);
  if (hk_unlikely(--pg->used == 0)) {
    hk__page_retire(h, pg);
    return;
  }
  hk_assert_expensive(hk__page_is_valid(pg));
}

void hk_free_sized(void *p, size_t size) {
  (void)size; /* the page knows the size; a mismatch is not checked (in any build) and does no harm */
  hk_free(p);
}

/* The bytes usable from p, inside a block. For realloc (whole) p must also be what free accepts:
 * a block's start (or inside a block of a page that hands out aligned blocks), not free where this
 * thread can tell (its own page); otherwise an interior pointer of a large block grew the block
 * in place from that pointer, and a freed block that still held the size came back as it was. */
static inline size_t usable_size(const void *p, const char *who, bool whole) {
  /* A live large block starts on a page (hk__large_tag): its segment's header is not read. Other
   * pointers skip the look-up: a small block's segment header is read anyway. */
  uint64_t tag = ((uintptr_t)p & 4095) == 0 ? hk__segtag_get(p) : 0;
  if (tag) {
    const uint8_t *block = (const uint8_t *)((uintptr_t)p & ~(uintptr_t)HK_SEGMENT_MASK) + hk__large_tag_off(tag);
    size_t size = hk__large_tag_size(tag);
    if ((const uint8_t *)p >= block && (const uint8_t *)p < block + size && (!whole || (const uint8_t *)p == block))
      return size - (size_t)((const uint8_t *)p - block);
  }
  hk__segment *s = large_segment_of(p);
  if (!s) hk__fatal("%s of %p: not allocated by heapkit", who, p);
  hk__mseg *seg = (hk__mseg *)s;
  if (s->kind == HK__SEG_LARGE) {
    if ((const uint8_t *)p < seg->large_block || (const uint8_t *)p >= seg->large_block + seg->large_size)
      hk__fatal("%s of %p: not an allocated block", who, p);
    if (whole && (const uint8_t *)p != seg->large_block) hk__fatal("%s of %p: not the start of a block", who, p);
    return seg->large_size - (size_t)((const uint8_t *)p - seg->large_block);
  }
  if (!hk__is_malloc_kind(s)) hk__fatal("%s of %p: %s", who, p, explain(p));
  size_t idx = ((uintptr_t)p - (uintptr_t)seg - HK_PAGES_OFFSET) >> seg->base.page_shift;
  if (idx >= seg->base.page_count || !seg->pages[idx].in_use) hk__fatal("%s of %p: not an allocated block", who, p);
  hk__page *pg = &seg->pages[idx];
  hk__block *b = block_start(pg, p);
  if (!b) hk__fatal("%s of %p: not an allocated block", who, p);
  if (whole) {
    if ((const void *)b != p && !(__atomic_load_n(&pg->remote.flags, __ATOMIC_RELAXED) & HK__PAGE_HAS_ALIGNED))
      hk__fatal("%s of %p: not the start of a block", who, p);
    if (atomic_load_explicit(&seg->base.thread_id, memory_order_relaxed) == hk__thread_id() &&
        maybe_free_block(pg, b, hk__page_carved(pg)) && on_free_list(pg, b))
      hk__fatal("%s of %p: already freed", who, p);
  }
  return pg->block_size - (size_t)((const uint8_t *)p - (const uint8_t *)b);
}

size_t hk__usable_size(const void *p, const char *who) { return usable_size(p, who, false); }
/* realloc's look-up: in a segment among the thread's hints (one of its malloc segments, so its
 * free lists may be read here), a carved block start whose first word does not look like a free
 * list link is what usable_size would accept, with no segment-map read (w_churn: 8 % of the calls
 * are reallocs); anything else takes the full checks. */
size_t hk__realloc_usable(const void *p) {
  hk__mseg *seg = hk__mseg_of(p);
  if (*hk__seg_hint_slot(hk__tls_heap, p) == (uintptr_t)seg) {
    size_t idx = ((uintptr_t)p - (uintptr_t)seg - HK_PAGES_OFFSET) >> seg->base.page_shift;
    if (idx < seg->base.page_count) {
      const hk__page *pg = &seg->pages[idx];
      size_t off = (uintptr_t)p - (uintptr_t)pg->start;
      uint32_t end = hk__page_carved(pg); /* 0 for a page not in use */
      if (hk__page_is_block(pg, off) && !maybe_free_block(pg, p, end)) return pg->block_size;
    }
  }
  return usable_size(p, "realloc", true);
}

bool hk_owns(const void *p) {
  hk__segment *s = hk__segment_find(p);
  if (!s) return false;
  hk__mseg *seg = (hk__mseg *)s;
  if (s->kind == HK__SEG_LARGE)
    return (const uint8_t *)p >= seg->large_block && (const uint8_t *)p < seg->large_block + seg->large_size;
  if (!hk__is_malloc_kind(s)) return false;
  if ((uintptr_t)p - (uintptr_t)s < HK_PAGES_OFFSET) return false;
  size_t idx = ((uintptr_t)p - (uintptr_t)seg - HK_PAGES_OFFSET) >> seg->base.page_shift;
  if (idx >= seg->base.page_count || !seg->pages[idx].in_use) return false;
  const hk__page *pg = &seg->pages[idx];
  hk__block *b = block_start(pg, p);
  if (!b) return false;
  /* The free lists of a page may be read only by its owner. Only a block whose first word looks
   * like a link can be on them (a block handed out has a zero one): the search, a walk over every
   * free block of the page, cost a call on a live block 5.8 us with 4000 free blocks beside it. */
  if (atomic_load_explicit(&seg->base.thread_id, memory_order_relaxed) == hk__thread_id())
    return !(maybe_free_block(pg, b, hk__page_carved(pg)) && on_free_list(pg, b));
  return true;
}

HK_ALIAS(free, hk_free)
HK_ALIAS(cfree, hk_free)
HK_ALIAS(__libc_free, hk_free)
