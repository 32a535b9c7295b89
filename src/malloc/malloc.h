/* Internal interface between the general allocator's files, and its inline helpers. */
#ifndef HK_MALLOC_INTERNAL_H
#define HK_MALLOC_INTERNAL_H
#include "malloc/types.h"

/* ---- size classes -------------------------------------------------------------------------------
 * 8, 16, then every 16 bytes to 128, then 8 classes per doubling (spacing <= 12.5%). */
static inline size_t hk__bin_of(size_t size) {
  if (size <= 8) return 1;
  if (size <= 128) return ((size + 15) >> 4) + 1;
  size_t w = size - 1;
  unsigned b = 63u - (unsigned)__builtin_clzll(w);
  return 10 + (size_t)(b - 7) * 8 + ((w >> (b - 3)) & 7);
}
static inline size_t hk__bin_size(size_t bin) {
  if (bin == 1) return 8;
  if (bin <= 9) return (bin - 1) * 16;
  size_t k = (bin - 10) / 8 + 7, j = (bin - 10) % 8 + 1;
  return ((size_t)1 << k) + j * ((size_t)1 << (k - 3));
}

/* The page's constants for "is off a block start" (owner, hk_free) and "which block holds off"
 * (remote frees, pointer checks); see hk__page. */
static inline uint64_t hk__div_check(size_t block_size) {
  /* floor(2^64 / size) + 1, also for powers of two, without a 128-bit division: 2^64 = M + 1 with
   * M = UINT64_MAX, so the floor is M / size, plus one when size divides M + 1. gcc calls libgcc's
   * __udivti3 for the 128-bit form, which the linker puts at the very end of .text: the first page
   * a thread set up faulted in the last 64 KiB window of the library's code (malloc.text_rss). */
  uint64_t m = UINT64_MAX, d = block_size;
  return m / d + (m % d == d - 1) + 1;
}
static inline uint64_t hk__div_magic(size_t block_size) { return (((uint64_t)1 << 40) / block_size) + 1; }

/* ---- segment hints (hk_heap.seg_hint) ---- */
static inline uintptr_t *hk__seg_hint_slot(hk_heap *h, const void *p) {
  return &h->seg_hint[((uintptr_t)p >> HK_SEGMENT_SHIFT) % HK__SEG_HINTS];
}
static inline void hk__seg_hints_clear(hk_heap *h) {
  for (size_t i = 0; i < HK__SEG_HINTS; i++) h->seg_hint[i] = HK__NO_SEG;
}
/* Before the thread gives seg back: h is its default heap. */
static inline void hk__seg_hint_drop(hk_heap *h, const void *seg) {
  uintptr_t *slot = hk__seg_hint_slot(h, seg);
  if (*slot == (uintptr_t)seg) *slot = HK__NO_SEG;
}

/* ---- threads ------------------------------------------------------------------------------------ */
static inline uintptr_t hk__thread_id(void) { return (uintptr_t)__builtin_thread_pointer(); }

/* The calling thread's default heap; &hk__heap_empty until the thread first allocates or frees a
 * block of another thread, &hk__heap_done after its exit. One pointer
 * of initial-exec TLS, which glibc's static TLS surplus always has room for, so dlopen works. */
extern __thread hk_heap *hk__tls_heap __attribute__((tls_model("initial-exec"), visibility("hidden")));
HK_INTERNAL extern hk_heap hk__heap_empty;
HK_INTERNAL extern hk_heap hk__heap_done;  /* after the thread's record was freed */
HK_INTERNAL extern hk__page hk__page_empty;

/* ---- free-list encoding ------------------------------------------------------------------------- */
static inline hk__block *hk__decode(const hk__page *pg, uintptr_t v) { return (hk__block *)(v ^ pg->key); }
static inline uintptr_t hk__encode(const hk__page *pg, const hk__block *b) { return (uintptr_t)b ^ pg->key; }

/* ---- page flags: written by the owner only, read by any thread that validates a pointer ---------- */
#define HK__PAGE_REMOTE_FLAGS (HK__PAGE_HAS_ALIGNED | HK__PAGE_HARDENED) /* copied to remote.flags */
static inline uint32_t hk__page_carved(const hk__page *pg) { return pg->capacity * pg->block_size; }
/* off (below 2^32) is the start of a carved block of pg iff off * pg->div_check < hk__page_lim(pg)
 * (see hk__page.div_check) */
static inline uint64_t hk__page_lim(const hk__page *pg) {
  return (uint64_t)pg->capacity * (uint64_t)(pg->block_size * pg->div_check); /* capacity * e */
}
static inline bool hk__page_is_block(const hk__page *pg, size_t off) { return off * pg->div_check < hk__page_lim(pg); }
/* HEAPKIT_HARDENED: next, a link decoded from a free block of pg, is one a free list can hold
 * (NULL or a carved block of pg). A write after free or an overflow into a free block leaves
 * another value there, and a pop that followed it handed out, and then read, an address of the
 * program's data (a segfault at best). Hardened pages only: the check costs each pop a compare. */
static inline bool hk__link_ok(const hk__page *pg, const hk__block *next) {
  size_t off = (uintptr_t)next - (uintptr_t)pg->start;
  return next == NULL || (off < hk__page_carved(pg) && hk__page_is_block(pg, off));
}
/* A page of the full queue with no other flag keeps its frees on the fast path: its used count is
 * lowered by full_bias (hk__page.full_bias), so that the fast path's `--used == 0` fires once
 * hk__page_full_bias(capacity) of its blocks are free (hk__page_retire then brings it back). */
static inline uint32_t hk__page_full_bias(uint32_t capacity) {
  uint32_t k = capacity / 16;
  return k > 32 ? 32 : k == 0 ? 1 : k;
}
static inline uint64_t hk__page_fast_lim_of(const hk__page *pg) {
  return (pg->flags && pg->full_bias == 0) ? 0 : hk__page_lim(pg);
}
static inline void hk__page_fast_lim(hk__page *pg) { pg->fast_lim = hk__page_fast_lim_of(pg); }
static inline void hk__page_flag_set(hk__page *pg, uint8_t f) {
  __atomic_store_n(&pg->flags, (uint8_t)(pg->flags | f), __ATOMIC_RELAXED);
  hk__page_fast_lim(pg);
  if (f & HK__PAGE_REMOTE_FLAGS)
    __atomic_store_n(&pg->remote.flags, (uint8_t)(pg->remote.flags | (f & HK__PAGE_REMOTE_FLAGS)), __ATOMIC_RELAXED);
}
static inline void hk__page_flag_clear(hk__page *pg, uint8_t f) {
  __atomic_store_n(&pg->flags, (uint8_t)(pg->flags & ~f), __ATOMIC_RELAXED);
  hk__page_fast_lim(pg);
  if (f & HK__PAGE_REMOTE_FLAGS)
    __atomic_store_n(&pg->remote.flags, (uint8_t)(pg->remote.flags & ~(f & HK__PAGE_REMOTE_FLAGS)), __ATOMIC_RELAXED);
}

/* How many remote frees into pg a thread may hold back at a time while pg is in heap h (rfree.c):
 * only pages of a default heap (given back only when their used count is zero, and a held block
 * counts as used) that are not HARDENED (whose owner must see every free), and blocks of at least
 * 16 bytes (a held chain's head keeps the chain's tail in its second word). 0: none. Blocks over
 * HK__RBUF_BYTES / 2 are not chained (the CAS is cheap next to the block) but kept, up to
 * HK_SMALL_MAX, in the freeing thread's foreign-block cache for its own next malloc:
 * HK__RBUF_FOREIGN. */
static inline uint8_t hk__rbuf_limit(const hk__page *pg, const hk_heap *h) {
  uint32_t bs = pg->block_size;
  if (h == NULL || !h->is_default || (pg->flags & HK__PAGE_HARDENED) || bs > HK_SMALL_MAX || bs < 16) return 0;
  if (bs > HK__RBUF_BYTES / 2) return HK__RBUF_FOREIGN;
  uint32_t n = (HK__RBUF_BYTES + bs - 1) / bs;
  return (uint8_t)(n < HK__RBUF_MAX ? n : HK__RBUF_MAX);
}

/* Whether pg, of heap h, is HK__PAGE_HOT: a class over HK_DIRECT_MAX in a default heap. Only
 * default heaps, so that a local free into a hot page (which comes through the thread's default
 * heap) knows the page's heap without loading it from the remote line. */
static inline bool hk__page_wants_hot(const hk__page *pg, const hk_heap *h) {
  return h != NULL && h->is_default && pg->block_size > HK_DIRECT_MAX;
}

/* Every change of a page's heap goes through here, so that remote.rbuf_limit says whether remote
 * frees into it may be buffered (rfree.c), and the HOT flag whether its local frees make it the
 * heap's hot page. Owner only, block_size and the other flags already set. */
static inline void hk__page_set_heap(hk__page *pg, hk_heap *h) {
  if (hk__page_wants_hot(pg, h)) hk__page_flag_set(pg, HK__PAGE_HOT);
  else if (pg->flags & HK__PAGE_HOT) hk__page_flag_clear(pg, HK__PAGE_HOT);
  __atomic_store_n(&pg->remote.rbuf_limit, hk__rbuf_limit(pg, h), __ATOMIC_RELAXED);
  atomic_store_explicit(&pg->heap, h, memory_order_release);
}

/* ---- lookups ------------------------------------------------------------------------------------ */
static inline hk__mseg *hk__mseg_of(const void *p) { return (hk__mseg *)((uintptr_t)p & ~(uintptr_t)HK_SEGMENT_MASK); }
static inline hk__page *hk__page_of(const hk__mseg *seg, const void *p) {
  size_t idx = ((uintptr_t)p - (uintptr_t)seg - HK_PAGES_OFFSET) >> seg->base.page_shift;
  return (hk__page *)&seg->pages[idx];
}
/* p's page descriptor, p inside a small or medium segment */
static inline hk__page *hk__page_at(const void *p) { return hk__page_of(hk__mseg_of(p), p); }
static inline bool hk__is_malloc_kind(const hk__segment *s) {
  return s->kind == HK__SEG_SMALL || s->kind == HK__SEG_MEDIUM;
}

/* ---- statistics (per thread, flushed to globals on slow paths) ---------------------------------- */
#if HK_STATS && defined(__SANITIZE_THREAD__)
#define hk__heap_count(h, field, delta) \
  __atomic_store_n(&(h)->field, __atomic_load_n(&(h)->field, __ATOMIC_RELAXED) + (delta), __ATOMIC_RELAXED)
#elif HK_STATS
/* Only the owner writes the counters; other threads read them racily with relaxed loads (stats.c).
 * A plain add compiles to one add-to-memory instruction where a relaxed load and store are three
 * (gcc does not fuse them): 8 of the ~95 instructions of a malloc/free pair on the fast paths. The
 * aligned 8-byte store cannot tear on the targets heapkit supports; ThreadSanitizer builds, which
 * would report the race, keep the atomic form above. */
#define hk__heap_count(h, field, delta) ((void)((h)->field += (delta)))
#else
#define hk__heap_count(h, field, delta) ((void)0)
#endif
#if HK_STATS
#define hk__heap_count_op(h, field) hk__heap_count(h, field, 1)
#else
#define hk__heap_count_op(h, field) ((void)0)
#endif
HK_INTERNAL void hk__stats_flush(hk__tld *tld);
/* The budget of local frees pushed on allocation lists (hk_free): lifo_left counts down on every
 * local free of the fast path, true while it stays >= 0. The fast path counts its frees with it and
 * nothing else (one subtract-from-memory): with HK_STATS a heap's frees are
 * frees + lifo_base - lifo_left (hk__heap_frees), folded into `frees` when the budget is reset. */
#if HK_STATS && defined(__SANITIZE_THREAD__)
static inline bool hk__lifo_take(hk_heap *h) {
  int64_t v = __atomic_load_n(&h->lifo_left, __ATOMIC_RELAXED) - 1;
  __atomic_store_n(&h->lifo_left, v, __ATOMIC_RELAXED);
  return v >= 0;
}
#else
static inline bool hk__lifo_take(hk_heap *h) { return --h->lifo_left >= 0; }
#endif

/* A local free's push: on the allocation list while the LIFO budget lasts (hk_free says why),
 * then on local_free. */
static inline void hk__page_push_local(hk_heap *h, hk__page *pg, hk__block *b) {
  if (hk_likely(hk__lifo_take(h))) {
    b->next = hk__encode(pg, pg->free);
    pg->free = b;
  } else {
    b->next = hk__encode(pg, pg->local_free);
    pg->local_free = b;
  }
}

/* Frees through h not yet flushed (racy when another thread reads them, like every counter). */
static inline int64_t hk__heap_frees(const hk_heap *h) {
#if !HK_STATS
  (void)h; /* (lifo_left still counts down: it is the fast path's budget) */
  return 0;
#endif
  return __atomic_load_n(&h->frees, __ATOMIC_RELAXED) + __atomic_load_n(&h->lifo_base, __ATOMIC_RELAXED) -
         __atomic_load_n(&h->lifo_left, __ATOMIC_RELAXED);
}
/* Owner only: the fast path's frees since the last fold join `frees`. */
static inline void hk__lifo_fold(hk_heap *h) {
#if HK_STATS
  int64_t left = __atomic_load_n(&h->lifo_left, __ATOMIC_RELAXED);
  __atomic_store_n(&h->frees, __atomic_load_n(&h->frees, __ATOMIC_RELAXED) + h->lifo_base - left, __ATOMIC_RELAXED);
  __atomic_store_n(&h->lifo_base, left, __ATOMIC_RELAXED);
#else
  (void)h;
#endif
}
/* Owner only, around a move of counts between the counters (slow paths): a reader of another
 * thread's counters (hk_stats_get) retries while one is under way, or it saw a count twice (lifo_base
 * reset before lifo_left: up to HK__LIFO_FREES frees) or not at all. A seqlock: the fences are free
 * on x86. */
static inline void hk__stats_seq_begin(hk_heap *h) {
#if HK_STATS
#if defined(__SANITIZE_THREAD__) /* (TSan does not model fences: an RMW that orders the same) */
  __atomic_fetch_add(&h->stats_seq, 1, __ATOMIC_ACQ_REL);
#else
  __atomic_store_n(&h->stats_seq, h->stats_seq + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
#else
  (void)h;
#endif
}
static inline void hk__stats_seq_end(hk_heap *h) {
#if HK_STATS
#if defined(__SANITIZE_THREAD__)
  __atomic_fetch_add(&h->stats_seq, 1, __ATOMIC_RELEASE); /* (a reader's RMW writes it too) */
#else
  __atomic_store_n(&h->stats_seq, h->stats_seq + 1, __ATOMIC_RELEASE);
#endif
#else
  (void)h;
#endif
}
static inline void hk__lifo_reset(hk_heap *h) {
  hk__stats_seq_begin(h);
  hk__lifo_fold(h);
  __atomic_store_n(&h->lifo_left, (int64_t)HK__LIFO_FREES, __ATOMIC_RELAXED);
  __atomic_store_n(&h->lifo_base, (int64_t)HK__LIFO_FREES, __ATOMIC_RELAXED);
  hk__stats_seq_end(h);
}
HK_INTERNAL void hk__stats_flush_heap(hk_heap *h);
HK_INTERNAL extern _Atomic size_t hk__huge_live; /* live blocks in their own segment */
HK_INTERNAL extern _Atomic size_t hk__huge_bytes; /* and their committed block bytes (for mallinfo) */
HK_INTERNAL void hk__stats_global_add(int64_t inuse, int64_t mallocs, int64_t frees);
/* Raise the in-use peak from a full sum; once per millisecond `now` at most (one caller does it). */
HK_INTERNAL void hk__stats_sample_peak(int64_t now);

/* ---- heaps and threads (heap.c) ------------------------------------------------------------------ */
HK_INTERNAL hk_heap *hk__heap_get(void);          /* the default heap, initialising the thread */
/* After the thread's exit destructor (a later pthread key destructor allocating): a thread record
 * for one allocation, given up at once as at thread exit (heap.c); and the allocation (alloc.c). */
HK_INTERNAL hk_heap *hk__heap_late_begin(void);
HK_INTERNAL void hk__heap_late_end(hk_heap *h);
HK_INTERNAL void *hk__malloc_late(size_t size, size_t align, bool zero);
HK_INTERNAL void hk__heap_init(hk_heap *h, hk__tld *tld);
HK_INTERNAL void hk__process_init(void);
HK_INTERNAL void hk__tld_periodic(hk__tld *tld);  /* purge, cache aging, adoption; cheap when idle */

/* ---- pages (page.c) ------------------------------------------------------------------------------ */
HK_INTERNAL void *hk__malloc_generic(size_t size, hk_heap *h); /* size first: malloc's fast path keeps it in place */
HK_INTERNAL void *hk__heap_malloc_bin(hk_heap *h, size_t bin);
/* A large block (over HK_MEDIUM_MAX): the size cap, the thread's heap readied or the late path,
 * then hk__large_alloc. h may be hk__heap_empty or hk__heap_done. */
#define HK__LARGE_ZERO 1u  /* cleared (calloc) */
#define HK__LARGE_ROOM 2u  /* room to double in place (realloc moving a block to grow it) */
#define HK__LARGE_TICK 4u  /* the thread's periodic work first (malloc, realloc; not calloc) */
HK_INTERNAL void *hk__malloc_large(size_t size, hk_heap *h, unsigned flags);
HK_INTERNAL void hk__mpage_collect(hk__page *pg);
HK_INTERNAL void hk__page_free_local(hk__page *pg, hk__block *b);   /* a delayed free, handed to its heap */
/* local free off hk_free's fast path, into a page that is not HK__PAGE_HOT; h: the calling thread's
 * default heap, which counts the free as hk_free's fast path does */
HK_INTERNAL void hk__page_free_owned(hk_heap *h, hk__page *pg, hk__block *b);
/* local free into a HK__PAGE_HOT page of h, the calling thread's default heap; counts the free as
 * hk_free's fast path does */
HK_INTERNAL void hk__page_free_hot(hk_heap *h, hk__page *pg, hk__block *b);
HK_INTERNAL void hk__page_retire(hk_heap *h, hk__page *pg);
HK_INTERNAL void hk__page_queue_push(hk_heap *h, hk__page_queue *q, hk__page *pg);
HK_INTERNAL void hk__page_queue_remove(hk_heap *h, hk__page_queue *q, hk__page *pg);
HK_INTERNAL void hk__page_set_delay(hk__page *pg, uintptr_t state, bool override_never);
/* The process that forked, set by the allocator's prepare handler: between the fork and the
 * allocator's child handler, a process other than this one is the child (hk__page_set_delay). */
HK_INTERNAL extern _Atomic int hk__fork_parent_pid;
HK_INTERNAL void hk__heap_drain_delayed(hk_heap *h);
HK_INTERNAL void hk__heap_release_pages(hk_heap *h, hk_heap *into); /* into == NULL: abandon/destroy */
HK_INTERNAL void hk__page_place(hk_heap *h, hk__page *pg);          /* put an adopted page in a queue */
HK_INTERNAL bool hk__page_is_valid(const hk__page *pg);
HK_INTERNAL bool hk__heap_is_valid(const hk_heap *h);

/* ---- segments (mseg.c) --------------------------------------------------------------------------- */
HK_INTERNAL hk__page *hk__mseg_page_alloc(hk_heap *h, size_t block_size);
HK_INTERNAL void hk__mseg_page_free(hk__tld *tld, hk__page *pg);
HK_INTERNAL void hk__tld_abandon_segments(hk__tld *tld);
/* The thread's kept large segment goes to the segment cache (mseg.c); decommitted first when idle
 * or kept for a purge delay already (by tld->now). */
HK_INTERNAL void hk__tld_large_release(hk__tld *tld, bool idle);
HK_INTERNAL bool hk__tld_adopt_one(hk__tld *tld, int medium); /* medium: 0 small, 1 medium, -1 any */
HK_INTERNAL void hk__tld_sweep_abandoned(hk__tld *tld);
/* Give back the resident tails of this thread's in-use pages that no owner has used for a purge
 * delay (from the periodic work, at most every half purge delay). */
HK_INTERNAL void hk__tld_trim_tails(hk__tld *tld, int64_t now);
/* HEAPKIT_HARDENED: the remote frees a page's owner collects are blocks not free already (free.c) */
HK_INTERNAL void hk__check_remote_frees(const hk__page *pg, const hk__block *head, uint32_t count);
HK_INTERNAL void hk__check_delayed_free(const hk__page *pg, const hk__block *b); /* one, handed over to its heap */
/* HEAPKIT_HARDENED: a link of pg's free lists failed hk__link_ok: reported, then abort() */
HK_INTERNAL _Noreturn void hk__corrupt_link(const hk__page *pg);
/* Blocks the double-free search of free.c has stepped over, all threads (tests bound it:
 * malloc.hardened_cost) */
HK_INTERNAL extern uint64_t hk__free_search_steps;
/* room: reserve room for the block to double in place (realloc growing a block it had to move) */
HK_INTERNAL void *hk__large_alloc(hk_heap *h, size_t size, size_t align, bool zero, bool room);
/* A live large block's segment tag (segment.h, hk__segtag_get), so that malloc_usable_size does not
 * read the segment's header: the block's size (whole pages) with its offset in the segment in
 * 4 KiB units in the low 12 bits; none (0) for a block 4 MiB or more into its segment (aligned so). */
static inline uint64_t hk__large_tag(size_t off, size_t size) { return off < HK_SEGMENT_SIZE ? (uint64_t)size | (off >> 12) : 0; }
static inline size_t hk__large_tag_size(uint64_t tag) { return (size_t)(tag & ~(uint64_t)0xfff); }
static inline size_t hk__large_tag_off(uint64_t tag) { return (size_t)(tag & 0xfff) << 12; }
HK_INTERNAL void hk__heap_free_large_blocks(hk_heap *h);
HK_INTERNAL void hk__heap_disown_large_blocks(hk_heap *h);
HK_INTERNAL void hk__tld_foreach(void (*fn)(hk__tld *, void *), void *arg);
HK_INTERNAL void hk__large_free(hk__mseg *seg, void *p);
HK_INTERNAL void *hk__large_realloc_inplace(hk__mseg *seg, void *p, size_t size);
HK_INTERNAL size_t hk__abandoned_count(void);
/* The ownerless budget (mseg.c): what the free pages of segments no live thread owns (abandoned,
 * and malloc's in the segment cache) may keep resident once a thread has exited; past it, the
 * pages given back longest ago are decommitted at once. Pages given back within the grace period
 * (a sixteenth of the purge delay) are left to the delay: the next threads reuse them. */
#define HK__OWNERLESS_BUDGET ((size_t)2 << 20)
static inline int64_t hk__ownerless_grace(void) { return hk__opt(HK_OPT_PURGE_DELAY) / 16; }
HK_INTERNAL void hk__mseg_fork_prepare(void);
HK_INTERNAL void hk__mseg_fork_parent(void);
HK_INTERNAL void hk__mseg_fork_child(void);

/* ---- free (free.c) -------------------------------------------------------------------------------- */
HK_INTERNAL void hk__free_remote(hk__page *pg, hk__block *b);
/* a chain head..tail of n blocks of pg, linked with the page key */
HK_INTERNAL void hk__free_remote_list(hk__page *pg, hk__block *head, hk__block *tail, uint32_t n);

/* ---- remote-free buffer (rfree.c) ------------------------------------------------------------------ */
/* hk_free of p, a block of pg, by a thread that does not own pg's segment; h: its default heap */
HK_INTERNAL void hk__free_xthread(hk__page *pg, void *p, hk_heap *h);
HK_INTERNAL void hk__rbuf_flush(hk__tld *tld);
HK_INTERNAL extern hk__rbuf hk__rbuf_none;      /* what tld->rbuf starts as: an empty buffer */
HK_INTERNAL void hk__rbuf_release(hk__tld *tld); /* flush and free the buffer (thread exit) */
/* malloc of a size class whose foreign-block cache (h->fcache != NULL) may hold a block: the block,
 * counted, or NULL */
static inline void *hk__fcache_pop(hk_heap *h, size_t bin) {
  hk__fcache *fc = h->fcache;
  size_t i = bin - HK__FC_FIRST_BIN;
  if (i >= HK__FC_BINS) return NULL;
  if (fc->n[i] == 0) {
    fc->want[i] = 1;
    return NULL;
  }
  hk__block *b = fc->b[i][--fc->n[i]];
  b->next = 0; /* (as heap_malloc_small: no free-list link in a block handed out) */
  size_t bs = hk__bin_size(bin);
  fc->bytes -= (uint32_t)bs;
  hk__heap_count(h, inuse, (int64_t)bs);
  hk__heap_count_op(h, mallocs);
  return b;
}
HK_INTERNAL _Noreturn void hk__invalid_free(const void *p, const char *why);
HK_INTERNAL size_t hk__usable_size(const void *p, const char *who);
/* realloc's: also fatal unless p is what free would take (a block start, not free) */
HK_INTERNAL size_t hk__realloc_usable(const void *p);

/* ---- meta records (meta.c) ------------------------------------------------------------------------ */
HK_INTERNAL void *hk__meta_alloc(size_t size);
HK_INTERNAL void hk__meta_free(void *p);
HK_INTERNAL void hk__meta_fork_prepare(void);
HK_INTERNAL void hk__meta_fork_parent(void);
HK_INTERNAL void hk__meta_fork_child(void);

/* ---- drop-in names --------------------------------------------------------------------------------
 * With HK_OVERRIDE the libc names are aliases of the hk_ functions (no extra call), exported from
 * libheapkit.so and libheapkit.a, so LD_PRELOAD or linking replaces the whole malloc family. */
#if HK_OVERRIDE
#define HK_ALIAS(name, target) extern __typeof(target) name __attribute__((alias(#target), copy(target), visibility("default")));
#else
#define HK_ALIAS(name, target)
#endif

#endif
