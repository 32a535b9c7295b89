/* The general allocator's data structures.
 *
 * Glossary (from the bottom up)
 *   segment   a 4 MiB page-layer segment of kind SMALL (63 pages of 64 KiB), MEDIUM (31 pages of
 *             128 KiB) or LARGE (one block). Pages start at offset 64 KiB; the first 64 KiB hold the
 *             segment header and the page descriptors, never blocks.
 *   page      a run of equal-size blocks of one size class, owned by one heap. Its descriptor
 *             (hk__page) lives in the segment header, out of line.
 *   block     what malloc returns. A free block's first word links the free list, XOR-encoded with
 *             the page key so a stray write or a double free is likely noticed.
 *   heap      per-thread allocation state: per size-class queues of pages and a direct table for
 *             small sizes. Every thread has a default heap; first-class heaps are more of them.
 *   tld       thread-local data shared by a thread's heaps: the segments it owns, its purge queue.
 *
 * Threads: a segment is owned by one thread (thread_id). Only the owner allocates from its pages
 * and frees into free/local_free without synchronisation; any other thread pushes onto the page's
 * atomic xthread_free list. When the owner exits, its segments are abandoned (thread_id 0) and a
 * thread that later needs a page adopts them.
 */
#ifndef HK_MALLOC_TYPES_H
#define HK_MALLOC_TYPES_H
#include "page/segment.h"

#define HK_PAGES_OFFSET ((size_t)64 << 10)
#define HK_SMALL_PAGE_SHIFT 16
#define HK_MEDIUM_PAGE_SHIFT 17
#define HK_SMALL_PAGES ((HK_SEGMENT_SIZE - HK_PAGES_OFFSET) >> HK_SMALL_PAGE_SHIFT)  /* 63 */
#define HK_MEDIUM_PAGES ((HK_SEGMENT_SIZE - HK_PAGES_OFFSET) >> HK_MEDIUM_PAGE_SHIFT) /* 31 */
/* Page sizes are small because a size class with few live blocks keeps a whole page resident
 * (its freed blocks stay touched until the page empties): with 8-64 KiB blocks spread over ~24
 * classes, 512 KiB medium pages left churn's pages half empty (w_churn peak RSS 33 -> 28 MiB with
 * 64 KiB pages up to 16 KiB blocks and 128 KiB pages above). */
#define HK_SMALL_MAX ((size_t)16 << 10)  /* largest block in a small page (at least 4 per page) */
#define HK_MEDIUM_MAX ((size_t)64 << 10) /* largest block in a medium page; larger ones get a segment */
#define HK_LARGE_OFFSET ((size_t)4 << 10) /* where a large block starts in its segment (but see below) */
/* Every large block that fits gets a segment of this one size (address space only; the block's
 * pages are what becomes resident). Any cached large segment can then serve any such request, so
 * a freed block's resident memory is reused by the next large block whatever its size, and
 * realloc grows in place up to this size. With segments of the block's own size (4, 8, 12 MiB),
 * the cache needed segments of every size at once, each resident to the largest block it ever
 * held (w_large peak RSS 121 -> 96 MiB, page faults 31k -> 25k). */
#define HK_LARGE_RESERVE ((size_t)16 << 20)
/* ... while fewer large blocks than this are live, so the address space that costs stays under
 * 1 GiB (strict overcommit; under RLIMIT_AS fewer, mseg.c: reserve_live_max); past it, blocks get
 * segments of their own size. */
#define HK_LARGE_RESERVE_LIVE 64
/* Local frees pushed on the allocation list between two allocation slow paths (free.c): bounds how
 * long a thread that allocates and frees in a loop goes without its periodic work. */
#define HK__LIFO_FREES 4096u
#define HK__SEG_HINTS 16                 /* hk_heap.seg_hint */
#define HK__NO_SEG ((uintptr_t)1)        /* never a segment address */
#define HK_DIRECT_MAX 1024               /* sizes served through heap->direct */
#define HK_DIRECT_SLOTS (HK_DIRECT_MAX / 8 + 1)
#define HK_BIN_MAX 81                    /* bins 1..81 hold size classes 8 .. 64 KiB */
#define HK_BIN_FULL (HK_BIN_MAX + 1)     /* queue of pages with no free block */
#define HK__HOT_FIRST_BIN 34             /* hk__bin_of(HK_DIRECT_MAX + 1): classes with a hot page */
#define HK__HOT_BINS (HK_BIN_MAX + 1 - HK__HOT_FIRST_BIN)
#define HK_MAX_ALLOC ((size_t)1 << 46)   /* larger requests fail with ENOMEM */

typedef struct hk__block { uintptr_t next; } hk__block;

/* Page flags; the fast free path tests flags == 0. */
#define HK__PAGE_IN_FULL 1     /* in the heap's full queue; a free must move it back */
#define HK__PAGE_HAS_ALIGNED 2 /* some block was handed out at an offset inside it */
#define HK__PAGE_HARDENED 4    /* HEAPKIT_HARDENED: every free is checked for a double free */
#define HK__PAGE_HOT 8         /* blocks over HK_DIRECT_MAX: a local free makes the page its heap's
                                  hot page of the class (hk__page_free_hot), so these frees leave the
                                  fast path (free.c, free_flagged) */

/* The remote-free buffer (rfree.c) holds less than HK__RBUF_BYTES (and at most HK__RBUF_MAX blocks)
 * of one page before handing them over, and no block over HK__RBUF_BYTES / 2 or under 16 bytes. */
#define HK__RBUF_BYTES 2048
#define HK__RBUF_MAX 32
/* remote.rbuf_limit of a page whose blocks (over HK__RBUF_BYTES / 2, up to HK_SMALL_MAX) another
 * thread's remote free may keep in its foreign-block cache (hk__fcache) instead */
#define HK__RBUF_FOREIGN 255

/* The foreign-block cache of a default heap (rfree.c): blocks of 1-16 KiB that this thread freed
 * into other threads' pages, kept (still counted as used on their pages) for this thread's next
 * malloc of their size class, while the freeing core still has them in its cache. Per size class
 * a stack of HK__FC_DEPTH, at most HK__FC_BYTES in all; handed over to their pages when the
 * remote-free buffer is. */
#define HK__FC_FIRST_BIN 34 /* hk__bin_of(HK__RBUF_BYTES / 2 + 1): 1152-byte blocks */
#define HK__FC_BINS 32      /* up to hk__bin_of(HK_SMALL_MAX) == 65 */
#define HK__FC_DEPTH 8
#define HK__FC_BYTES ((uint32_t)64 << 10)
typedef struct hk__fcache {
  uint32_t bytes;               /* block bytes held */
  uint8_t n[HK__FC_BINS];       /* blocks held per size class */
  /* per size class: this thread has asked the cache for a block since the last hand-over; only
   * then are blocks of the class kept (a thread that frees foreign blocks of a class it does not
   * allocate would only pin their pages) */
  uint8_t want[HK__FC_BINS];
  hk__block *b[HK__FC_BINS][HK__FC_DEPTH]; /* [bin - HK__FC_FIRST_BIN][0..n): oldest first */
} hk__fcache;

/* xthread_free: list of blocks freed by other threads in one word: bits 0-1 the delayed-free state,
 * bits 2-47 the list head (blocks are 8-aligned, user addresses are below 2^48), bits 48-63 the
 * number of blocks on the list (a page holds at most 8192), so the owner can take the whole list
 * without walking it. */
#define HK__TF_COUNT_SHIFT 48
#define HK__TF_PTR_MASK ((((uintptr_t)1 << HK__TF_COUNT_SHIFT) - 1) & ~(uintptr_t)3)
#define HK__DELAY_MASK ((uintptr_t)3)
#define HK__NO_DELAY 0        /* remote frees push on the page list */
#define HK__USE_DELAYED 1     /* page is full: the next remote free also notifies the heap */
#define HK__DELAYING 2        /* a remote freer is notifying the heap right now */
#define HK__NEVER_DELAY 3     /* page is abandoned or being torn down */

typedef struct hk_heap_s hk_heap;
typedef struct hk__tld hk__tld;
typedef struct hk__rbuf hk__rbuf;

static inline hk__block *hk__tf_ptr(uintptr_t tf) { return (hk__block *)(tf & HK__TF_PTR_MASK); }
static inline uint32_t hk__tf_count(uintptr_t tf) { return (uint32_t)(tf >> HK__TF_COUNT_SHIFT); }

/* The fields a thread that does not own the page needs to validate a pointer and free it: copies
 * of the owner's start, key, block_size and carved, div_magic (for block_start), and the flags that matter to it
 * (HAS_ALIGNED, HARDENED), and how a remote free may buffer the block (rbuf_limit). They live on the remote line so that a remote free never reads the line
 * the owner writes on every malloc and free (reading it costs the freer a miss and the owner an
 * invalidation each time). Written by the owner when the page is set up and when it grows. */
typedef struct hk__page_remote {
  uint8_t *start;
  uintptr_t key;
  uint64_t div_magic;        /* floor(off / block_size) == (off * div_magic) >> 40 for off < reserved * block_size */
  uint32_t block_size;
  uint32_t carved;
  uint8_t flags;
  /* remote frees into the page may be held in the freeing thread's buffer (rfree.c), and handed
   * over this many at a time: min(HK__RBUF_MAX, ceil(HK__RBUF_BYTES / block_size)); 0 when they
   * may not: not in a default heap, HARDENED, or blocks under 16 bytes or over HK_SMALL_MAX;
   * HK__RBUF_FOREIGN for blocks over HK__RBUF_BYTES / 2, which go to the foreign-block cache
   * (hk__rbuf_limit) */
  uint8_t rbuf_limit;
} hk__page_remote;

/* Invariants (hk__page_is_valid):
 *   in_use ⇒ capacity ≤ reserved, used + full_bias + |free| + |local_free| == capacity,
 *            fast_lim == (flags && !full_bias ? 0 : hk__page_lim(pg)),
 *            full_bias != 0 ⇔ flags == IN_FULL, and then 0 < used ≤ hk__page_full_bias(capacity)
 *            (blocks on xthread_free still count as used until collected),
 *            every free-list block lies in [start, start + capacity*block_size) at a block boundary,
 *            remote holds the same start, key, block_size, carved and remote flags,
 *            div_check and remote.div_magic are those of block_size,
 *            and remote.rbuf_limit == hk__rbuf_limit(page, heap);
 *   flags & IN_FULL ⇔ the page is in its heap's full queue;
 *   !in_use ⇒ free == local_free == NULL and used == full_bias == 0. */
typedef struct __attribute__((aligned(64))) hk__page {
  /* ---- first cache line: the owner's fast paths (malloc pops, local frees); only the owner
   * reads or writes it */
  hk__block *free;           /* allocation list */
  uint32_t used;
  uint32_t block_size;
  hk__block *local_free;     /* owner frees past the LIFO budget, into hardened pages, or handed
                                over through the delayed-free list (most go on free, see hk_free),
                                moved to free when free runs dry */
  uintptr_t key;             /* free-list encoding key */
  uint8_t flags;
  uint8_t is_zero;           /* the blocks beyond capacity read zero */
  uint8_t bin;
  uint32_t capacity;         /* blocks carved so far */
  uint8_t *start;
  /* div_check = floor(2^64 / block_size) + 1 and e = block_size * div_check mod 2^64, 1 <= e <= block_size:
   * for an offset off below 2^32, off * div_check mod 2^64 is k * e when off = k * block_size and at
   * least div_check (over 2^47) otherwise (Lemire, Kaser and Kurz 2019, with the +1 that keeps e
   * nonzero for powers of two), so "off is the start of a carved block" is one multiplication and
   * one compare: off * div_check < capacity * e (hk__page_lim) */
  uint64_t div_check;
  uint64_t fast_lim;         /* hk__page_lim while flags == 0 or the page is biased (full_bias), else 0,
                                so that the fast free path's one compare also sends the other pages
                                with flags to the slow path */
  /* ---- second cache line: what other threads read and write (remote frees, pointer checks) */
  _Atomic uintptr_t xthread_free __attribute__((aligned(64)));
  _Atomic(hk_heap *) heap;
  hk__page_remote remote;
  uint8_t in_use;
  /* ---- third cache line: the owner's queue links and bookkeeping, written when pages move */
  struct hk__page *next __attribute__((aligned(64)));
  struct hk__page *prev;
  uint32_t reserved;         /* blocks that fit */
  /* In the full queue with no other flag: subtracted from used, so that the owner's frees stay on
   * hk_free's fast path and its `--used == 0` brings the page back once
   * hk__page_full_bias(capacity) blocks are free (page.c, page_bias). 0 otherwise. */
  uint32_t full_bias;
  uint32_t full_seq;         /* its queue's full_seq when it last went full */
  int64_t retire_at;         /* when an empty page kept in its queue was last emptied */
  /* The three fields that outlive the page's use (mseg.c keeps them when it clears a page): */
  int64_t freed_at;          /* !in_use: when the page was last given back to its segment */
  int64_t deep_at;           /* when an owner last carved (nearly) as far as touched */
  uint32_t touched;          /* bytes from start that may be resident: the most any owner carved
                                since the memory was last given back to the OS */
} hk__page;
_Static_assert(__builtin_offsetof(hk__page, fast_lim) + 8 <= 64, "owner-side page fields must fit one cache line");
_Static_assert(__builtin_offsetof(hk__page, in_use) < 128, "remote-side page fields must fit one cache line");
_Static_assert(sizeof(hk__page) == 192, "page descriptors are three cache lines");

typedef struct hk__page_queue {
  hk__page *first, *last;
  uint32_t block_size;
  uint32_t full_seq;         /* pages of the class sent to the full queue (page.c, page_to_full) */
} hk__page_queue;

/* A malloc segment: the page-layer header, then ours. */
typedef struct hk__mseg {
  hk__segment base;          /* base.owner = the owning tld (NULL when abandoned);
                                base.page_shift/page_count describe the pages */
  uint32_t used_pages;
  uint32_t list;             /* which tld list it is on (0 none, 1 has free pages, 2 full) */
  uint8_t *large_block;      /* LARGE: the block */
  size_t large_size;         /* LARGE: usable bytes of the block */
  _Atomic uint64_t *large_tag; /* LARGE: the segment's tag word (hk__segtag_slot): hk__large_tag of the block while it is live */
  struct hk__mseg *abandoned_next;
  uint32_t tails;            /* counted in its owner's tld->tail_segs: some in-use page may hold a
                                resident tail for hk__tld_trim_tails to give back */
  size_t idle;               /* abandoned: what its free pages may hold resident, counted in the
                                ownerless budget (mseg.c) */
  /* The fast free path takes the page index of p as (p - seg - HK_PAGES_OFFSET) >> page_shift with
   * an arithmetic shift: -1 for p in the header, and page_count for p in the last 64 KiB of a MEDIUM
   * segment (31.5 pages of 128 KiB). Both descriptors there, guard and pages[page_count] (the header
   * holds one more descriptor than pages), stay zeroed, so their fast_lim of 0 sends such a
   * pointer to the checks of free_generic with no bound compare on the fast path. A segment of
   * fewer pages (under an address-space limit, mseg_reserve) has the header of a whole one, and
   * the descriptors past page_count, up to the guard, stay zeroed the same way. */
  hk__page guard;
  hk__page pages[];
} hk__mseg;

typedef struct hk__seg_list { hk__mseg *first; } hk__seg_list;

/* Per-thread data. Counters are written only by the owner thread and read racily (relaxed) by
 * statistics. */
struct hk__tld {
  uintptr_t thread_id;
  hk_heap *heap_default;
  hk_heap *heaps;            /* all heaps of this thread, linked by heap->next */
  hk__seg_list free_segs[2]; /* [0] small, [1] medium: owned segments with a free page */
  hk__seg_list full_segs[2];
  hk__purge_queue purge;
  int64_t now;               /* clock at the last slow-path check */
  int64_t tails_at;          /* when hk__tld_trim_tails last looked at this thread's pages */
  uint32_t tail_segs;        /* owned segments with tails set */
  uint32_t slow_calls;
  struct hk__mseg *large_kept; /* the segment of the last large block this thread freed, empty
                                  and parked (hk__segment_park) for its next large malloc */
  int64_t large_kept_at;       /* tld->now when it was kept */
  hk__rbuf *rbuf;            /* blocks this thread freed into other threads' pages (rfree.c);
                                &hk__rbuf_none until the first such block, never NULL */
  struct hk__tld *next_live, *prev_live;
};

#define HK__HEAP_MAGIC 0x68656170u /* "heap": set while the record is a live heap */

struct hk_heap_s {
  hk__page *direct[HK_DIRECT_SLOTS];       /* page to allocate size (i*8) from; never NULL */
  hk__page_queue queues[HK_BIN_FULL + 1];
  _Atomic(hk__block *) delayed_free;      /* blocks of full pages freed by other threads */
  hk__tld *tld;
  uintptr_t thread_id;
  hk_heap *next;
  size_t page_count;
  bool is_default;
  bool destroying;
  uint32_t magic;
  /* Odd while the owner moves counts between the counters below (hk__lifo_reset, hk__stats_flush_heap):
   * a reader retries, so that it never sees a count in two places (stats.c). Where a lock of
   * large_first was (the layout is kept). */
  unsigned stats_seq;
  /* Counters, written only by the owner and read racily by statistics. No two that one operation
   * writes are next to each other: gcc would otherwise update a pair with one 16-byte load and
   * store, and that load cannot be forwarded from the two 8-byte stores of the operation before
   * (a stall on every malloc after a free). */
  int64_t mallocs;
  hk__segment *large_first;               /* large blocks of a first-class heap */
  /* bytes allocated from this heap minus bytes freed by this thread through it, not yet flushed to
   * the global counters */
  int64_t inuse;
  /* lifo_left: how many more local frees the fast path may push on their page's allocation list
   * (free.c), reset to HK__LIFO_FREES by the allocation slow path; it goes on counting down below 0
   * and so counts the fast path's frees: lifo_base is its value when they were last added to
   * `frees` (hk__lifo_fold), which counts the other frees. */
  int64_t lifo_base;
  int64_t lifo_left;
  int64_t frees;
  /* Default heap only: malloc segments this thread owns, seg_hint[(address >> 22) % HK__SEG_HINTS]
   * (HK__NO_SEG where none): a free whose segment is here skips the segment map and the thread
   * check. Set by hk_free after a checked local free, cleared before the thread gives a segment
   * back or abandons its segments (mseg.c), so an entry is always a live segment of this thread. */
  uintptr_t seg_hint[HK__SEG_HINTS];
  hk__fcache *fcache;  /* default heap only: the foreign-block cache (rfree.c), NULL until used */
  /* hot[bin - HK__HOT_FIRST_BIN]: the page of that class (over HK_DIRECT_MAX) that took this
   * heap's last local free of the class, or NULL; malloc of the class pops from it first when it
   * has a free block (page.c, heap_malloc_bin). A page of this heap, in its bin queue or the full
   * queue: cleared when the page leaves the heap (hk__page_retire, hk__heap_release_pages). */
  hk__page *hot[HK__HOT_BINS];
};

#endif
