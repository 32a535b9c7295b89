/* The page layer: every byte heapkit holds lives in a segment.
 *
 * Glossary
 *   segment  a reservation of HK_SEGMENT_SIZE (4 MiB) or a multiple of it (under an address-space
 *            limit a large block's or the metadata's: a multiple of its unit, hk__segment_alloc_ex;
 *            malloc's small and medium ones: a prefix, hk__segment_alloc_pages), aligned to 4 MiB, with
 *            this header at its start. The header is the out-of-line metadata of everything in the
 *            segment: clients put their own metadata (page descriptors, arena state) right after it
 *            and never inside the blocks they hand out.
 *   unit     commit/purge granularity: size / 64 (64 KiB for a 4 MiB segment).
 *   kind     which client owns the segment (malloc small/medium/large pages, arena, pool, GC).
 *
 * Pointer lookup is O(1): a segment starts at p & ~(HK_SEGMENT_SIZE-1) for any p in its first
 * 4 MiB, and a process-wide bitmap (one bit per 4 MiB of address space) says whether a segment
 * starts there, so a pointer heapkit never handed out is recognised without touching it.
 * hk__segment_find also resolves interior pointers of multi-chunk segments.
 *
 * Purging: a client calls hk__segment_purge_later when a range becomes unused; the range returns
 * to the OS after HEAPKIT_PURGE_DELAY ms, when the client next calls hk__purge_queue_run (the
 * malloc heaps do so from their slow paths, so no background thread is needed). Reusing the range
 * before then (hk__segment_commit) cancels the purge for free.
 *
 * Invariants (checked by hk__segment_is_valid):
 *   - (uintptr_t)seg % HK_SEGMENT_SIZE == 0, size % HK_SEGMENT_SIZE == 0 (LARGE, META: size % unit
 *     == 0; SMALL, MEDIUM: size % 64 KiB == 0, size <= HK_SEGMENT_SIZE, unit 64 KiB), segmap bit of
 *     seg set.
 *   - purge_mask ⊆ commit_mask; purge_mask != 0 ⇔ the segment is on a purge queue.
 *   - header units (those covering [0, header_size)) are always committed and never purged.
 */
#ifndef HK_PAGE_SEGMENT_H
#define HK_PAGE_SEGMENT_H
#include "common/internal.h"

#define HK_SEGMENT_SHIFT 22
#define HK_SEGMENT_SIZE ((size_t)1 << HK_SEGMENT_SHIFT)
#define HK_SEGMENT_MASK (HK_SEGMENT_SIZE - 1)
#define HK_SEGMENT_UNITS 64

typedef enum hk__seg_kind {
  HK__SEG_NONE = 0,
  HK__SEG_SMALL,    /* malloc: 64 KiB pages */
  HK__SEG_MEDIUM,   /* malloc: 128 KiB pages */
  HK__SEG_LARGE,    /* malloc: one block per segment */
  HK__SEG_ARENA,
  HK__SEG_POOL,
  HK__SEG_GC,
  HK__SEG_GC_LARGE,
  HK__SEG_META,     /* heapkit's own records (thread heaps) */
  HK__SEG_KIND_COUNT
} hk__seg_kind;

typedef struct hk__segment hk__segment;
typedef struct hk__purge_queue {
  hk__segment *first;  /* segments with a pending purge, in no particular order */
  int64_t next_due;    /* earliest expiry among them (ms), INT64_MAX when empty */
} hk__purge_queue;

struct hk__segment {
  uintptr_t cookie;           /* random per segment: free-list encoding keys derive from it */
  size_t size;                /* reserved bytes */
  size_t header_size;         /* bytes at the start that hold this struct and client metadata */
  size_t unit;                /* size / HK_SEGMENT_UNITS rounded up to whole OS pages (segment.c, unit_for);
                                 64 KiB in malloc's small and medium segments of any size */
  uint64_t commit_mask;       /* units that may be resident */
  uint64_t purge_mask;        /* committed units to return to the OS at purge_expire */
  uint64_t dirty_mask;        /* committed units that may hold non-zero bytes */
  int64_t purge_expire;
  hk__segment *purge_next;    /* link in the owner's hk__purge_queue */
  hk__purge_queue *purge_queue;
  _Atomic uintptr_t thread_id;/* owning thread for thread-owned kinds; 0 when abandoned/none */
  void *owner;                /* the client object (heap data, arena, pool, GC heap) */
  hk__segment *next, *prev;   /* free for the owner's own lists */
  uint8_t kind;               /* hk__seg_kind */
  uint8_t from_cache;         /* 1: reused from the cache; 2: and its client header kept (hk__seg_keeps_header) */
  uint8_t header_tail_clean;  /* the header units past header_size were never handed out (read zero) */
  uint8_t cached_kind;        /* in the cache: the kind it had */
  /* For clients that cut the segment into equal pages after a 64 KiB header (malloc small and
   * medium segments): the page size shift and count. 0 pages for every other kind, so a free()
   * of a pointer into any other segment fails the page-index check without looking at kind. */
  uint32_t page_shift;
  uint32_t page_count;
};

/* Kinds whose client header (what follows this struct, up to header_size) survives the segment
 * cache: a cached segment reused by the same kind with the same header size comes back with the
 * header as its client left it (from_cache == 2), and the client resets what it must. Malloc's
 * small and medium segments keep their page descriptors' records of what is resident in each page
 * and since when it is unused: with thread churn a medium segment went through the cache every
 * other thread (w_threads), each time losing what would let idle pages be given back. Every other
 * kind gets a zeroed header. */
static inline bool hk__seg_keeps_header(int kind) { return kind == HK__SEG_SMALL || kind == HK__SEG_MEDIUM; }

/* Kinds laid out for HK_SEGMENT_SIZE: malloc's small and medium segments cut pages at fixed
 * offsets and compute each page's commit units from them, which holds only while a unit is
 * HK_SEGMENT_SIZE / HK_SEGMENT_UNITS (also in a prefix of such a segment, which they get under an
 * address-space limit: hk__segment_alloc_pages). The cache gives them only segments of the size
 * they ask for and with that unit: an 8 MiB
 * segment (a large block's, cached) has 128 KiB units, and a medium page's units computed for
 * 64 KiB ones then covered half of the neighbouring page, which a purge zeroed while in use. */
static inline bool hk__seg_exact_size(int kind) { return kind == HK__SEG_SMALL || kind == HK__SEG_MEDIUM; }

/* The address-space limit (RLIMIT_AS) as read at the first call, or 0 when there is none. */
HK_INTERNAL size_t hk__page_as_limit(void);
/* The same, read now (a system call): for decisions made next to a reservation. */
HK_INTERNAL size_t hk__page_as_limit_now(void);
/* Reserve a segment of at least size bytes (rounded up to a multiple of 4 MiB; for LARGE under an
 * address-space limit, of its unit: a 64th of it in whole pages), aligned to
 * max(align, 4 MiB). The first header_size bytes are committed and zero (except the client header
 * of a kind that keeps it through the cache: from_cache == 2, see hk__seg_keeps_header); the rest
 * is reserved, uncommitted. Returns NULL if the OS refuses. Thread-safe. */
HK_INTERNAL hk__segment *hk__segment_alloc(size_t size, size_t align, hk__seg_kind kind, size_t header_size);
/* The same, reserving max(size, reserve) bytes (rounded up to 4 MiB) of which the client means to
 * use only size: segments of one reserve size are interchangeable in the cache, whatever their
 * clients used of them. The OS is asked to account (overcommit check, see hk__os_reserve) only a
 * LARGE segment reserved at its own size. */
HK_INTERNAL hk__segment *hk__segment_alloc_ex(size_t size, size_t reserve, size_t align, hk__seg_kind kind, size_t header_size);
/* A segment of head + n * page bytes (head + *pages * page is at most HK_SEGMENT_SIZE; with
 * n = *pages, HK_SEGMENT_SIZE) for a kind laid out
 * in pages after a head (hk__seg_exact_size): whole (n = *pages) when the cache has one or the OS
 * grants it; under an address-space limit at most a 16th of the limit, and when the OS refuses,
 * n halved down to 1: the rest of its 4 MiB stays unreserved. *pages gets n. Units stay
 * HK_SEGMENT_SIZE / HK_SEGMENT_UNITS (the client computes its pages' units for those). */
HK_INTERNAL hk__segment *hk__segment_alloc_pages(size_t head, size_t page, uint32_t *pages, hk__seg_kind kind, size_t header_size);
/* hk__segment_alloc for a segment that backs one block of the client's user (a collector's large
 * object, an arena chunk sized for one oversized allocation): accounted as a LARGE segment is, so
 * that the OS refuses a block it could never back (ENOMEM, as malloc does) instead of handing out
 * memory whose first touch brings the OOM killer. */
HK_INTERNAL hk__segment *hk__segment_alloc_block(size_t size, size_t align, hk__seg_kind kind, size_t header_size);
/* Give a segment back: kept in a small cache for reuse (decommitted after the purge delay) or
 * released. Removes it from its purge queue first. Thread-safe. */
HK_INTERNAL void hk__segment_free(hk__segment *s);
/* An empty segment its client keeps for itself instead of freeing it (malloc's per-thread large
 * segment, mseg.c): counted as cached, and its kind cleared, so a lookup of an address inside sees
 * a freed segment as it would in the cache. unpark makes it live again with its old kind. */
HK_INTERNAL void hk__segment_park(hk__segment *s);
HK_INTERNAL void hk__segment_unpark(hk__segment *s);

/* Make [off, off+len) usable (rounded out to units). Cancels any pending purge there. *is_zero, if
 * given, is set when every byte of the range is known to read zero.
 * Not thread-safe on one segment: commit, decommit and purge calls on a segment must be serialised
 * by its owner (they update plain masks). Different segments are independent. */
HK_INTERNAL int hk__segment_commit(hk__segment *s, size_t off, size_t len, bool *is_zero);
/* Return [off, off+len) (rounded in to whole units) to the OS now. */
HK_INTERNAL void hk__segment_decommit(hk__segment *s, size_t off, size_t len);
/* Grow a large block's segment in place to at least size bytes (rounded to its new unit), when the
 * address space right after it can be had: HK_OK, or HK_ENOMEM with the segment unchanged. Its
 * commit unit grows with it (a 64th of the size); what was committed or dirty stays so, rounded out
 * to the new units. Only a segment with no pending purge, kinds sized to fit (LARGE). */
HK_INTERNAL int hk__segment_extend(hk__segment *s, size_t size);
/* Give back the physical pages inside [off, off+len) (rounded in to OS pages) and keep the range
 * committed: for the unused part of a unit that is partly in use. Its bytes read zero or keep their
 * contents (HEAPKIT_PURGE_FREE) until written. Same serialisation as commit. */
HK_INTERNAL void hk__segment_reset(hk__segment *s, size_t off, size_t len);
/* Decommit the units in `units` (bit i = unit i; header units are ignored), one system call per run. */
HK_INTERNAL void hk__segment_decommit_units(hk__segment *s, uint64_t units);
/* Return [off, off+len) (rounded in to whole units) to the OS after the purge delay, unless it is
 * committed again before. The segment joins q. */
HK_INTERNAL void hk__segment_purge_later(hk__purge_queue *q, hk__segment *s, size_t off, size_t len, int64_t now);
/* Purge the due ranges of the segments in q (all of them when force). */
HK_INTERNAL void hk__purge_queue_run(hk__purge_queue *q, int64_t now, bool force);
/* Take s off its purge queue, leaving its pending ranges committed. */
HK_INTERNAL void hk__segment_purge_cancel(hk__segment *s);

/* The user address space the segment map covers. x86-64 gives a process addresses below 2^47
 * (with 5-level paging, above only to an mmap that asks for such an address, which heapkit never
 * does): a map for 48 bits was 8 MiB of .bss, half of it for addresses no process gets, and .bss
 * counts against an address-space limit (`ulimit -v`) whether touched or not. */
#if defined(__x86_64__)
#define HK__VA_BITS 47
#else
#define HK__VA_BITS 48
#endif
/* Segment of a pointer in the first 4 MiB of a segment, or NULL when no segment starts there. */
#define HK__SEGMAP_BITS ((size_t)1 << (HK__VA_BITS - HK_SEGMENT_SHIFT))
HK_INTERNAL extern _Atomic uint64_t hk__segmap[HK__SEGMAP_BITS / 64];
static inline bool hk__segmap_contains(uintptr_t base) {
  uintptr_t idx = base >> HK_SEGMENT_SHIFT;
  if (hk_unlikely(idx >= HK__SEGMAP_BITS)) return false;
  return (atomic_load_explicit(&hk__segmap[idx / 64], memory_order_relaxed) >> (idx % 64)) & 1;
}
static inline hk__segment *hk__segment_of(const void *p) {
  uintptr_t base = (uintptr_t)p & ~(uintptr_t)HK_SEGMENT_MASK;
  return hk__segmap_contains(base) ? (hk__segment *)base : NULL;
}
/* Segment containing p anywhere (interior pointers of multi-chunk segments too), or NULL. */
HK_INTERNAL hk__segment *hk__segment_find(const void *p);

/* Segment tags: one word per 4 MiB of address space that a client sets for a segment it owns and
 * reads back from any pointer into the segment's first 4 MiB without touching the segment. Malloc
 * keeps a large block's offset and size there: malloc_usable_size over many large blocks read one
 * segment header each, all at 4 MiB-aligned addresses, so all in one cache set of every level
 * (and their page-table entries too): 0.66 s for 20 M calls over 1000 blocks against glibc's 0.12
 * (docs/architecture.md, "Performance cliffs checked"). The tags of neighbouring segments lie
 * next to each other. Two levels: a directory in .bss (64 KiB, touched where used) and leaves of
 * 8192 words (64 KiB, 32 GiB of address space each), reserved on first use and never released,
 * so a reader needs no lock. 0 is no tag. */
#define HK__SEGTAG_LEAF_SHIFT 13
#define HK__SEGTAG_LEAF ((size_t)1 << HK__SEGTAG_LEAF_SHIFT)
HK_INTERNAL extern _Atomic(_Atomic uint64_t *) hk__segtag_dir[HK__SEGMAP_BITS >> HK__SEGTAG_LEAF_SHIFT];
/* The tag word of segment s, its leaf made if need be (if the OS refuses the leaf, a word that no
 * look-up reads, so that writers need no test). The client writes it with a relaxed store, and
 * must write 0 before it gives the segment back. */
HK_INTERNAL _Atomic uint64_t *hk__segtag_slot(const hk__segment *s);
/* The tag of the 4 MiB chunk of p (0 where none was set). */
static inline uint64_t hk__segtag_get(const void *p) {
  uintptr_t idx = (uintptr_t)p >> HK_SEGMENT_SHIFT;
  if (hk_unlikely(idx >= HK__SEGMAP_BITS)) return 0;
  _Atomic uint64_t *leaf = atomic_load_explicit(&hk__segtag_dir[idx >> HK__SEGTAG_LEAF_SHIFT], memory_order_acquire);
  return leaf ? atomic_load_explicit(&leaf[idx & (HK__SEGTAG_LEAF - 1)], memory_order_relaxed) : 0;
}

HK_INTERNAL bool hk__segment_is_valid(const hk__segment *s);

/* Page-layer statistics (exact; updated on segment and commit operations, never per block). */
HK_INTERNAL void hk__page_stats(hk_stats *out);
/* Clients that hand out memory without the malloc counters report bytes in use here. */
HK_INTERNAL void hk__page_inuse_add(ptrdiff_t delta);
HK_INTERNAL size_t hk__page_inuse(void);

/* Calls fn on every segment in the cache whose client header survives it (hk__seg_keeps_header of
 * its cached_kind), under the cache's lock: the client may read its records there and decommit
 * units (hk__segment_decommit_units), and must not call back into the cache. */
HK_INTERNAL void hk__segment_cache_visit(void (*fn)(hk__segment *s, void *arg), void *arg);

/* Age the cache of empty segments: decommit after the purge delay, release later. Called from
 * clients' slow paths (cheap when nothing is due); force releases everything cached. */
HK_INTERNAL void hk__page_collect(int64_t now, bool force);

/* The OS page size (for clients, which do not call the OS layer). */
HK_INTERNAL size_t hk__page_size(void);
/* Resident set size of the process (for statistics). */
HK_INTERNAL size_t hk__page_rss(void);

/* Once per process; idempotent and thread-safe. */
HK_INTERNAL void hk__page_init(void);
/* fork: the page layer's locks are taken before fork and released in both processes after. */
HK_INTERNAL void hk__page_fork_prepare(void);
HK_INTERNAL void hk__page_fork_parent(void);
HK_INTERNAL void hk__page_fork_child(void);

#endif
