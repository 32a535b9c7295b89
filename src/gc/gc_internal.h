/* The garbage collector's internal model.
 *
 * Glossary
 *   block     32 KiB, the unit the collector takes from its segments: a nursery allocation buffer,
 *             a survivor buffer, or a mature Immix block.
 *   line      128 bytes, the Immix reclamation unit inside a mature block. After a full collection
 *             a line is free when no marked object overlaps it; the mature allocator bumps through
 *             runs of free lines ("holes").
 *   young     nursery and survivor blocks. Minor collections copy live young objects out of the
 *             blocks flagged FROM and free those blocks.
 *   mature    blocks of promoted objects; collected by full collections (mark-region) which may
 *             evacuate objects out of sparsely used blocks (EVAC candidates).
 *   large     objects above HK_GC_LARGE_THRESHOLD, one per page-layer segment, never moved.
 *   data      pointer-free objects: they live in blocks of their own (flag DATA), never scanned.
 *
 * Segments: every segment the collector holds starts with gc_seghdr (role says which kind), so
 * seghdr_of(p) is a mask. A pointer's block is found from its header address, never from the
 * payload address (a header-only object may end exactly at a block boundary).
 *
 * The main invariants (checked by hk_gc_verify and the *_is_valid functions):
 *   - a mature or large object either has HK_GC_HDR_BARRIER set or is in a remembered set (a
 *     mutator's or the heap's); so every old-to-young pointer is found at a minor collection.
 *   - young objects never have HK_GC_HDR_BARRIER set (stores into them need no remembering).
 *   - outside a collection no header is forwarded and no block is flagged FROM or EVAC.
 *   - heap->blocks_young + heap->blocks_mature + free blocks == usable blocks of all segments.
 *   - a line is marked with the current epoch iff a live object overlaps it (valid right after
 *     a full collection's mark phase; holes are taken from that snapshot and consumed once).
 */
#ifndef HK_GC_INTERNAL_H
#define HK_GC_INTERNAL_H
#include "common/internal.h"
#include "page/segment.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#if UINTPTR_MAX != 0xffffffffffffffffu
#error "the collector's one-word header layout assumes 64-bit pointers"
#endif

#define GC_MAGIC 0x68676321u /* "hgc!" */

#define GC_BLOCK_SHIFT 15
#define GC_BLOCK_SIZE ((size_t)1 << GC_BLOCK_SHIFT)
#define GC_LINE_SHIFT 7
#define GC_LINE_SIZE ((size_t)1 << GC_LINE_SHIFT)
#define GC_LINES (GC_BLOCK_SIZE / GC_LINE_SIZE)
#define GC_BLOCKS_PER_SEG (HK_SEGMENT_SIZE / GC_BLOCK_SIZE)
#define GC_GRANULES (GC_BLOCK_SIZE / HK_GC_GRANULE)
#define GC_SEG_META_BLOCKS 4 /* blocks at the start of a block segment that hold its tables */
#define GC_LARGE_OFF 256     /* offset of a large object's header in its segment */
#define GC_CHUNK_SIZE ((size_t)65536)
#define GC_MEDIUM 256 /* objects above this skip small holes and use the overflow allocator */
/* A minor collection costs about 1 ns per byte it copies: the nursery is sized so that the
 * expected survivors stay near this, which keeps nursery pauses well under a millisecond. */
#define GC_PAUSE_SURVIVORS ((size_t)192 << 10)
#define GC_NURSERY_MIN_BLOCKS 8
/* The growth policy's floor (heap.c, hk__gc_threshold_floor): max_heap / GC_FLOOR_DIV, at most
 * GC_FLOOR_LIVE times the most live data seen, never below initial_heap. */
#define GC_FLOOR_DIV 2
#define GC_FLOOR_LIVE 4

enum { ROLE_HEAP = 1, ROLE_BLOCKS, ROLE_META, ROLE_LARGE };

typedef struct gc_seghdr {
  hk__segment base;
  uint32_t magic;
  uint32_t role;
  hk_gc_heap *heap;
} gc_seghdr;

/* Block states and flags. */
enum { B_META = 0, B_FREE, B_YOUNG, B_MATURE };
enum {
  F_DATA = 1,   /* holds pointer-free objects only */
  F_FROM = 2,   /* young block being evacuated by the current minor collection */
  F_EVAC = 4,   /* mature block chosen for evacuation by the current full collection */
  F_RETAIN = 8, /* FROM block kept because a pinned object sits in it: becomes mature */
  F_CUR = 16,   /* an allocator is bumping through it */
  F_COLD = 32,  /* free block beyond the reserve: may be returned to the OS (sweep only) */
  F_UNREACHED = 64, /* full collection: mature block with nothing marked from the roots (full.c) */
  F_FINAL = 128, /* full collection: mature block holding a dead finalizable object (full.c) */
};

typedef struct gc_block {
  struct gc_block *next; /* free list, recyclable list or young list */
  uint16_t free_lines;   /* after the last sweep */
  uint16_t holes;
  uint8_t state;
  uint8_t flags;
  uint16_t kept; /* full.c, F_UNREACHED blocks: granules the finalization passes marked (KEPT_UNREAD) */
  uint32_t owner; /* nursery blocks: tag of the mutator that last zeroed it (a cache-affinity hint) */
  uint16_t fill;  /* young pointer-free blocks: granules its buffer used when closed (inplace.c); 0 unknown */
  uint8_t walked; /* young blocks, during a promotion in place: claimed by a walker (atomic; inplace.c) */
} gc_block;

/* The owner tag of the nursery blocks a mutator zeroes (gc_block.owner): never 0 (no owner), and
 * distinct for mutator records (512 bytes) less than 2^40 bytes apart. ((m >> 9) | 1 gave two
 * neighbouring records, such as a heap's first mutator and the next thread's, the same tag.) */
static inline uint32_t gc_nursery_tag(const hk_gc_mutator *m) { return ((uint32_t)((uintptr_t)m >> 9) << 1) | 1u; }

/* A segment of blocks. Invariant: blocks[i].state == B_META for i < GC_SEG_META_BLOCKS. */
typedef struct gc_seg {
  gc_seghdr h;
  struct gc_seg *next;
  uint32_t nfree;
  gc_block blocks[GC_BLOCKS_PER_SEG];
  uint8_t lines[GC_BLOCKS_PER_SEG][GC_LINES];
  uint64_t marks[GC_BLOCKS_PER_SEG][GC_GRANULES / 64];
} gc_seg;
_Static_assert(sizeof(gc_seg) <= GC_SEG_META_BLOCKS * GC_BLOCK_SIZE, "block tables fit the meta blocks");

/* A large object: alone in its segment, header at GC_LARGE_OFF. */
typedef struct gc_large {
  gc_seghdr h;
  struct gc_large *next, *prev;
  size_t total; /* object bytes, header included */
  uint8_t mark;  /* == heap->epoch when marked */
  uint8_t vmark; /* == heap->vgen when reached by the current hk_gc_verify */
  uint8_t queued; /* carded: on a remembered set (set by the mutator that dirtied a card first) */
  uint64_t *cards; /* NULL, or a dirty bit per GC_CARD_SIZE bytes of payload (slot barriers) */
  size_t card_words;
} gc_large;
#define GC_CARD_SHIFT 9
#define GC_CARD_SIZE ((size_t)1 << GC_CARD_SHIFT)
/* Is slot's card of the large object obj dirty (and the object queued for the next minor)? */
static inline bool large_card_dirty(gc_large *l, const void *obj, const void *slot) {
  uint64_t *cards = __atomic_load_n(&l->cards, __ATOMIC_ACQUIRE);
  if (!cards || !__atomic_load_n(&l->queued, __ATOMIC_RELAXED)) return false;
  size_t card = (size_t)((const char *)slot - (const char *)obj) >> GC_CARD_SHIFT;
  return (__atomic_load_n(&cards[card / 64], __ATOMIC_RELAXED) >> (card % 64)) & 1;
}
_Static_assert(sizeof(gc_large) <= GC_LARGE_OFF, "large header fits");

typedef struct gc_type {
  hk_gc_type_desc d;
  bool used;
} gc_type;

/* A LIFO of pointers in 64 KiB chunks (remembered sets, mark stacks, global-root lists). */
typedef struct gc_chunk {
  struct gc_chunk *prev;
  size_t n;
  void *items[(GC_CHUNK_SIZE - 2 * sizeof(size_t)) / sizeof(void *)];
} gc_chunk;
#define GC_CHUNK_CAP (sizeof(((gc_chunk *)0)->items) / sizeof(void *))
typedef struct gc_stack {
  gc_chunk *top;
  size_t count;
} gc_stack;

/* Bump allocator over a block (young) or through the holes of mature blocks. */
typedef struct gc_bump {
  char *cursor, *limit;
  gc_block *block;
  unsigned line; /* next line to search for a hole in block */
  bool data;
} gc_bump;

/* tag: the record's address XOR GC_WEAK_LIVE while the handle is live, XOR GC_WEAK_FREED once
 * freed (a record is zeroed when reused). The heap's metadata segments also hold mutators, global
 * roots and finalizer chunks: hk_gc_weak_free checks the tag so that a pointer to one of those, or
 * a freed handle whose record a global root took, is refused instead of unlinked as a handle. */
struct hk_gc_weak {
  void *target;
  hk_gc_weak *next, *prev;
  uintptr_t tag;
};
#define GC_WEAK_LIVE ((uintptr_t)0x5745414b4c495645u)  /* "WEAKLIVE" */
#define GC_WEAK_FREED ((uintptr_t)0x5745414b46524545u) /* "WEAKFREE" */

typedef struct gc_final {
  void *obj;
  hk_gc_finalizer_fn fn;
  void *data;
} gc_final;
/* Finalizer records packed in 64 KiB chunks (a LIFO like gc_stack): registering is a store into
 * the thread's current chunk, and a collection walks records sequentially instead of chasing a
 * linked list of scattered small records. */
typedef struct gc_flist {
  gc_chunk *top;
  size_t count;
} gc_flist;
#define GC_FCAP (sizeof(((gc_chunk *)0)->items) / (sizeof(gc_final)))
static inline gc_final *flist_recs(gc_chunk *c) { return (gc_final *)(void *)c->items; }
#define FLIST_FOR(l, f)                                          \
  for (gc_chunk *fc_ = (l)->top; fc_; fc_ = fc_->prev)            \
    for (gc_final *f = flist_recs(fc_); f < flist_recs(fc_) + fc_->n; f++)

typedef struct gc_root {
  void **slot;
  struct gc_root *next;
} gc_root;

enum { MUT_RUNNING = 0, MUT_BLOCKING, MUT_STOPPED };

/* A parallel phase of a collection (thread.c): the collecting thread opens it with the world
 * stopped and the mutators parked at safepoints join it as helpers, so a stopped thread works
 * instead of idling. Work items are shared through pool; a participant with nothing left waits
 * on cond; the phase is over when all participants wait at once. */
typedef struct gc_par {
  hk_gc_heap *heap;
  /* A helper's part, called without the heap lock; self is the helper's own mutator. */
  void (*help)(struct gc_par *job, hk_gc_mutator *self);
  gc_stack pool;                    /* under the heap lock */
  size_t pooled;                    /* pool.count, also read without the lock (atomic) */
  pthread_cond_t cond;
  int active, idle; /* participants (the collector included), those waiting for work; idle is
                       also read without the lock (atomic) */
  bool done;
  bool helped; /* somebody joined */
  /* A minor phase starts serial: its collector forwards objects with plain stores until a helper
   * asks to join (join_req), then switches to compare-and-swap and sets granted (both atomic). */
  int join_req, granted;
} gc_par;

struct hk_gc_mutator {
  hk_gc_mutator_fast fast; /* first: the inline paths cast m to this */
  hk_gc_heap *heap;
  hk_gc_mutator *next, *prev;
  hk_gc_mutator *self_next; /* its thread's other mutators (thread.c: t_mutators, under self_lock) */
  hk_gc_mutator **self_head; /* its owner thread's list; NULL once taken off it (self_claim) */
  char *tlab_start, *data_start; /* for counting allocated bytes */
  char *real_limit, *real_data_limit; /* the buffers' ends (fast.limit is lowered in stress mode) */
  char *zero_limit, *zero_data_limit; /* the buffers are zeroed up to here (alloc.c: zero_ahead) */
  gc_stack remset;               /* old objects whose barrier bit this thread cleared */
  gc_flist fin_local;            /* finalizers registered by this thread since the last collection */
  uint64_t stress_count;
  pthread_t thread;
  clockid_t cpu_clock; /* this thread's CPU clock (valid when cpu_clock_ok) */
  bool cpu_clock_ok;
  double stop_cpu_ms; /* its CPU clock when a collector started waiting for it (0: not waited for) */
  int state;
  int in_finalizers;
  int in_oom;          /* running the heap's OOM callback: an allocation in it does not call it again */
  unsigned frames_gen; /* == heap->frames_gen: its frames are claimed in this collection (atomic) */
};

#define GC_PAUSE_RING 4096
typedef struct gc_pauses {
  uint64_t count;
  double total_ms, max_ms;
  float ring[GC_PAUSE_RING]; /* ms */
} gc_pauses;

struct hk_gc_heap {
  gc_seghdr h; /* the heap lives at the start of its own segment */
  pthread_mutex_t lock;
  pthread_cond_t cond; /* world stopped / world resumed */
  hk_gc_options opts;
  size_t max_heap;
  size_t nursery_blocks;  /* the nursery now: adapted after every minor collection (minor.c) */
  size_t nursery_max;     /* the configured nursery (options, heap limit): the adaptive ceiling */
  size_t full_threshold; /* a full collection is due when mature_estimate exceeds this */
  size_t full_live;       /* reached from the roots by the last complete (non-sticky) full collection */
  size_t live_peak;       /* the most any complete full collection reached (the growth floor's cap) */
  size_t mature_estimate; /* live at the last full collection + promoted and large bytes since */
  long stress;
  long trace; /* HEAPKIT_GC_TRACE */
  bool parallel; /* HEAPKIT_GC_PARALLEL (default 1): parked mutators help with collections */

  /* mutators and the stop-the-world handshake (all under lock) */
  hk_gc_mutator *mutators;
  size_t nmutators, nrunning, nblocking;
  int stop; /* read atomically by the safepoint polls */
  int collecting;
  hk_gc_mutator *collector;
  gc_par *par; /* the collection's parallel phase, while one is open */
  unsigned wake_gen; /* bumped (under lock) by every broadcast: short waits spin on it first */
  unsigned frames_gen; /* bumped by hk__gc_frames_begin: the mutators' frames are unclaimed */

  /* blocks */
  gc_seg *segs;
  size_t nsegs;
  gc_block *free_blocks;
  size_t nfree;
  gc_block *young; /* nursery + survivor blocks */
  size_t blocks_young, blocks_mature;
  size_t young_since_gc; /* nursery blocks handed out since the last minor collection */
  bool high_survival;    /* the last minor collection kept more than a third of the nursery */
  unsigned inplace_left; /* minor collections that may still promote the young blocks in place */
  unsigned inplace_run;  /* the last run granted (0: the last copying minor collection kept little) */
  size_t survivor_blocks; /* survivor blocks taken since the last copying minor collection */
  size_t kept_young_blocks; /* made young by the last full collection for finalizers (full.c), until
                               the next minor collection frees them */
  uint64_t last_copied;   /* bytes that collection copied into them */
  gc_block *recyclable[2]; /* mature blocks with holes from the last sweep: [0] pointers, [1] data */
  gc_bump mature[2];     /* promotion allocators: [0] objects with pointers, [1] data */
  gc_bump overflow[2];   /* medium objects that did not fit the current hole */
  gc_bump survivor[2];   /* minor collection: survivor copies */
  uint8_t epoch;         /* line and large-object mark value of the current full collection */
  uint8_t vgen;          /* large-object mark value of the current verification */

  /* large objects */
  gc_large *large;
  size_t large_count, large_bytes;

  /* metadata: 64 KiB chunks from META segments, small records carved from chunks */
  gc_seghdr *meta_segs;
  gc_chunk *free_chunks;
  char *meta_cursor, *meta_limit;
  void *meta_free[4]; /* free lists by record class: 32, 64, 128, 512 bytes */

  /* roots and the embedder's records */
  gc_root *roots;
  hk_gc_roots_fn root_fn;
  void *root_data;
  gc_stack remset; /* old objects with young fields found by the collector itself */
  /* Sticky marks (full.c): while sticky_ok, the mark bits and line marks of the last full
   * collection still describe the mature space, and a collection due by the growth policy marks
   * only what was promoted since, from the roots and sticky_log: the marked objects remembered
   * since (each once, flagged with the header's gray bit). */
  gc_stack sticky_log;
  bool sticky_ok;
  unsigned sticky_skip, sticky_backoff; /* complete collections to do before trying again */
  hk_gc_weak *weaks;
  gc_flist final_young, final_old, final_ready;
  size_t nweak, nfinal;

  /* statistics */
  uint64_t minor_count, full_count, sticky_count;
  uint64_t bytes_allocated, bytes_copied, bytes_promoted, bytes_evacuated;
  uint64_t finalizers_run, weak_cleared;
  uint64_t par_phases, par_helpers, par_opened;
  uint64_t par_cas_unhelped; /* objects forwarded by compare-and-swap in minor phases nobody joined */
  /* parallel walks of a promotion in place (inplace.c): blocks helpers walked, and blocks of a
   * participant's own thread it walked after one of another thread's (the order it must avoid) */
  uint64_t walk_helper_blocks, walk_inversions;
  double stw_wait_ms, stw_wait_max_ms; /* collectors waiting for the other mutators to park */
  double stw_run_cpu_ms;               /* the CPU time those mutators ran meanwhile (thread.c) */
  size_t live_bytes, heap_peak;
  gc_pauses pause[2];
  float pause_scratch[GC_PAUSE_RING * 2];

  hk_gc_heap *fork_next, *fork_prev; /* the live heaps (fork.c, under its lock) */
  bool fork_stopped; /* fork.c stopped the world for a fork (under lock) */
  bool fork_locked;  /* fork.c's prepare handler holds the lock (a heap made after it does not) */

  /* registered types; index 0 is never used */
  uint32_t ntypes;
  gc_type types[HK_GC_MAX_TYPES];

  /* full.c, mark_drain_par: a thread's marking in a parallel phase, with and without the tests
   * evacuation needs (atomic; test_gc_noevac reads them) */
  uint64_t par_mark_evac, par_mark_plain;
};

/* Under AddressSanitizer free blocks are poisoned, so an embedder's stale pointer into an
 * evacuated nursery (a missing root) is reported at its first use. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define gc_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define gc_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define gc_poison(p, n) ((void)(p), (void)(n))
#define gc_unpoison(p, n) ((void)(p), (void)(n))
#endif

/* ---- small helpers ---------------------------------------------------------------------------- */

static inline uintptr_t *hdr_of(const void *obj) { return (uintptr_t *)obj - 1; }
static inline size_t hdr_total(uintptr_t h) { return (size_t)(h >> HK_GC_HDR_SIZE_SHIFT) * HK_GC_GRANULE; }
static inline unsigned hdr_type(uintptr_t h) { return (unsigned)(h >> HK_GC_HDR_TYPE_SHIFT) & 0xffff; }
static inline unsigned hdr_age(uintptr_t h) { return (unsigned)(h >> HK_GC_HDR_AGE_SHIFT) & 3; }
/* The leaf hint, in a mature object's age bits (age means nothing once an object is old): set
 * with the barrier bit when a minor collection promotes an object traced by its layout whose
 * pointer slots are all empty. While the barrier bit is still set nothing has been stored into
 * the object since, so full marking need not read its slots: on a tree most nodes are leaves.
 * Only the pair is trusted (gc_hdr_leaf); every place that arms the barrier bit again clears the
 * hint (gc_hdr_rearm), since whatever cleared the bit may have let a pointer be stored. */
#define GC_HDR_LEAF ((uintptr_t)1 << HK_GC_HDR_AGE_SHIFT)
static inline bool gc_hdr_leaf(uintptr_t h) {
  return (h & (GC_HDR_LEAF | HK_GC_HDR_BARRIER)) == (GC_HDR_LEAF | HK_GC_HDR_BARRIER);
}
static inline uintptr_t gc_hdr_rearm(uintptr_t h) { return (h | HK_GC_HDR_BARRIER) & ~GC_HDR_LEAF; }
static inline uintptr_t hdr_with_age(uintptr_t h, unsigned age) {
  return (h & ~((uintptr_t)3 << HK_GC_HDR_AGE_SHIFT)) | ((uintptr_t)age << HK_GC_HDR_AGE_SHIFT);
}
static inline uintptr_t hdr_make(size_t total, unsigned type, uintptr_t flags) {
  return ((uintptr_t)(total / HK_GC_GRANULE) << HK_GC_HDR_SIZE_SHIFT) | ((uintptr_t)type << HK_GC_HDR_TYPE_SHIFT) | flags;
}
static inline size_t gc_total_of(size_t payload) {
  return (payload + 2 * HK_GC_GRANULE - 1) & ~(size_t)(HK_GC_GRANULE - 1);
}

static inline gc_seghdr *seghdr_of(const void *p) { return (gc_seghdr *)((uintptr_t)p & ~(uintptr_t)HK_SEGMENT_MASK); }
static inline size_t block_index(const void *p) { return ((uintptr_t)p & HK_SEGMENT_MASK) >> GC_BLOCK_SHIFT; }
/* Block of an object (by its header address); only for objects in ROLE_BLOCKS segments. */
static inline gc_block *block_of_obj(const void *obj) {
  const uintptr_t *h = hdr_of(obj);
  return &((gc_seg *)seghdr_of(h))->blocks[block_index(h)];
}
static inline gc_seg *seg_of_block(const gc_block *b) { return (gc_seg *)seghdr_of(b); }
static inline size_t block_no(const gc_block *b) { return (size_t)(b - seg_of_block(b)->blocks); }
static inline char *block_start(const gc_block *b) { return (char *)seg_of_block(b) + block_no(b) * GC_BLOCK_SIZE; }
static inline bool obj_is_large(const void *obj) { return seghdr_of(hdr_of(obj))->role == ROLE_LARGE; }
static inline gc_large *large_of(const void *obj) { return (gc_large *)seghdr_of(hdr_of(obj)); }

/* Side mark bitmap: one bit per granule of a block, at the object's header. */
static inline uint64_t *mark_word(const void *obj, uint64_t *bit) {
  const uintptr_t *h = hdr_of(obj);
  gc_seg *s = (gc_seg *)seghdr_of(h);
  size_t g = ((uintptr_t)h & (GC_BLOCK_SIZE - 1)) / HK_GC_GRANULE;
  *bit = (uint64_t)1 << (g & 63);
  return &s->marks[block_index(h)][g / 64];
}
static inline bool mark_test(const void *obj) {
  uint64_t bit, *w = mark_word(obj, &bit);
  return (*w & bit) != 0;
}
static inline bool mark_set(const void *obj) { /* returns true if newly marked */
  uint64_t bit, *w = mark_word(obj, &bit);
  if (*w & bit) return false;
  *w |= bit;
  return true;
}

/* ---- internal interfaces (the heap lock is held unless said otherwise) ------------------------- */

/* meta.c */
HK_INTERNAL gc_seghdr *hk__gc_seg_alloc(hk_gc_heap *h, size_t size, int role, size_t zeroed);
HK_INTERNAL gc_chunk *hk__gc_chunk_alloc(hk_gc_heap *h);
HK_INTERNAL void hk__gc_chunk_free(hk_gc_heap *h, gc_chunk *c);
HK_INTERNAL void *hk__gc_meta_alloc(hk_gc_heap *h, size_t size);
HK_INTERNAL void hk__gc_meta_free(hk_gc_heap *h, void *p, size_t size);
HK_INTERNAL void hk__gc_meta_release_all(hk_gc_heap *h);
HK_INTERNAL bool hk__gc_stack_push(hk_gc_heap *h, gc_stack *s, void *p);
static inline void *gc_stack_pop(gc_stack *s) { /* without freeing chunks; NULL may mean "look below" */
  gc_chunk *c = s->top;
  if (!c) return NULL;
  if (c->n == 0) return NULL;
  s->count--;
  return c->items[--c->n];
}
/* Inline in the common case, out of line when a chunk empties. */
#define GC_POP(h, s) ({ void *p_ = gc_stack_pop(s); p_ ? p_ : hk__gc_stack_pop((h), (s)); })
static inline bool gc_stack_push(hk_gc_heap *h, gc_stack *s, void *p) {
  gc_chunk *c = s->top;
  if (hk_likely(c && c->n < GC_CHUNK_CAP)) {
    c->items[c->n++] = p;
    s->count++;
    return true;
  }
  return hk__gc_stack_push(h, s, p);
}
HK_INTERNAL void *hk__gc_stack_pop(hk_gc_heap *h, gc_stack *s); /* frees emptied chunks */
HK_INTERNAL void hk__gc_stack_clear(hk_gc_heap *h, gc_stack *s);

/* block.c */
/* Not zeroed. */
HK_INTERNAL gc_block *hk__gc_block_take(hk_gc_heap *h, int state, bool data);
HK_INTERNAL void hk__gc_block_prefer(hk_gc_heap *h, uint32_t owner);
HK_INTERNAL void hk__gc_block_release(hk_gc_heap *h, gc_block *b);
/* A block in use changes generation in place (pinned survivors, block promotion, blocks made young
 * for finalizers): the per-block collection state goes and the generations' counts follow. The
 * caller handles the mark bits and the young list. */
static inline void gc_block_retype(hk_gc_heap *h, gc_block *b, uint8_t state) {
  if (b->state == B_YOUNG) h->blocks_young--;
  else h->blocks_mature--;
  if (state == B_YOUNG) h->blocks_young++;
  else h->blocks_mature++;
  b->state = state;
  b->flags &= F_DATA;
  b->free_lines = 0;
  b->holes = 0;
}
HK_INTERNAL size_t hk__gc_heap_bytes(const hk_gc_heap *h);
HK_INTERNAL void hk__gc_release_free_segments(hk_gc_heap *h, size_t keep_blocks);
/* Free blocks worth keeping committed: what the nursery and the promotions until the next full
 * collection will take again anyway (giving them back would only fault them in again). */
HK_INTERNAL size_t hk__gc_free_reserve(const hk_gc_heap *h);
HK_INTERNAL bool hk__gc_block_is_valid(const gc_block *b);
/* A mutator's buffers: each is empty or inside one young block of its kind, cursor <= limit. */
HK_INTERNAL bool hk__gc_mutator_is_valid(const hk_gc_mutator *m);

/* alloc.c */
HK_INTERNAL void *hk__gc_mature_alloc(hk_gc_heap *h, size_t total, bool data);
HK_INTERNAL void *hk__gc_survivor_alloc(hk_gc_heap *h, size_t total, bool data);
/* The same with the caller's allocators (a helper of a parallel phase has its own). */
HK_INTERNAL void *hk__gc_mature_alloc_in(hk_gc_heap *h, gc_bump *mature, gc_bump *overflow, size_t total, bool data);
HK_INTERNAL void *hk__gc_survivor_alloc_in(hk_gc_heap *h, gc_bump *a, size_t total, bool data);
/* Nursery blocks handed out before a minor collection is due: the configured nursery for each
 * thread allocating, so that threads do not fill one thread's nursery between them. */
HK_INTERNAL size_t hk__gc_nursery_target(const hk_gc_heap *h);
HK_INTERNAL size_t hk__gc_threshold_floor(const hk_gc_heap *h);
/* The most nursery blocks the allocating threads may take again (the adaptive nursery's ceiling
 * for each): free blocks the heap keeps committed for them. */
HK_INTERNAL size_t hk__gc_nursery_reserve(const hk_gc_heap *h);
HK_INTERNAL void hk__gc_bump_reset(gc_bump *b);
HK_INTERNAL void hk__gc_retire_tlabs(hk_gc_heap *h);
HK_INTERNAL void hk__gc_buffers_close(hk_gc_mutator *m);
HK_INTERNAL void *hk__gc_large_alloc(hk_gc_heap *h, unsigned type, size_t total, bool data);
HK_INTERNAL void hk__gc_large_free(hk_gc_heap *h, gc_large *l);
/* minor.c: a large object's card table goes before the object does. */
HK_INTERNAL void hk__gc_cards_free(hk_gc_heap *h, gc_large *l);

/* thread.c: stop the world (returns false if another thread collected meanwhile). */
HK_INTERNAL bool hk__gc_stop_world(hk_gc_mutator *m);
HK_INTERNAL void hk__gc_resume_world(hk_gc_heap *h);
/* Parallel phases (world stopped). open: with the heap lock held; false when no parked mutator
 * could help (run serially then). share: give part of local to waiting participants. take: more
 * work into local, false once the phase is over. Both take the lock themselves. close: with
 * the lock held, after take returned false; waits for the helpers to leave. */
HK_INTERNAL bool hk__gc_par_open(hk_gc_heap *h, gc_par *job, void (*help)(gc_par *, hk_gc_mutator *));
HK_INTERNAL void hk__gc_par_share(gc_par *job, gc_stack *local);
HK_INTERNAL bool hk__gc_par_take(gc_par *job, gc_stack *local);
HK_INTERNAL void hk__gc_par_close(gc_par *job);
/* A helper of a gated phase (a minor one): asks to join and waits until the collector allows it. */
HK_INTERNAL void hk__gc_par_join(gc_par *job);
static inline bool gc_par_wanted(const gc_par *job, const gc_stack *local) {
  return local->count > 1 && __atomic_load_n(&job->idle, __ATOMIC_RELAXED) > 0 &&
         __atomic_load_n(&job->pooled, __ATOMIC_RELAXED) == 0;
}
HK_INTERNAL void hk__gc_park(hk_gc_mutator *m);
/* Heap lock held; returns with it held after the next broadcast on cv (spinning a little first);
 * the caller re-checks its condition. */
HK_INTERNAL void hk__gc_wait(hk_gc_heap *h, pthread_cond_t *cv);
/* Re-entry (thread.c). While a thread runs a collection or a verification of a heap, as its
 * collector or as a helper of a parallel phase, the embedder's callbacks it calls (trace
 * functions, size_of, the root callback) must not call back into the collector: the collector
 * holds the heap's lock (a call that takes it waits for ever) or, in a parallel phase, a call that
 * waits for the collection to end waits for itself. hk__gc_t_busy is that heap (else NULL), and
 * every entry point that takes the lock or may wait checks it first, on its slow path only, and
 * refuses the call with a warning. Any heap: a collection of another heap started from a callback
 * would wait for the threads parked in this one. Finalizers run after the collection, not busy. */
extern __thread hk_gc_heap *hk__gc_t_busy __attribute__((tls_model("initial-exec"), visibility("hidden")));
HK_INTERNAL hk_cold void hk__gc_reentry_warn(const char *fn, const char *result);
static inline bool gc_reentered(const char *fn, const char *result) {
  if (hk_likely(!hk__gc_t_busy)) return false;
  hk__gc_reentry_warn(fn, result);
  return true;
}
/* A NULL mutator, or one unregistered already (an unregistered record's heap is NULL until a
 * registration reuses it; hk_gc_heap_destroy clears its mutators' too): the entry points refuse
 * it with a warning instead of following the NULL heap (a SIGSEGV in hk_gc_blocking_begin, in the
 * allocation slow path). The inline paths cannot check: an unregistered record's buffers are
 * left so that every inline allocation calls out (hk__gc_mutator_disarm). */
HK_INTERNAL hk_cold void hk__gc_dead_mutator_warn(const hk_gc_mutator *m, const char *fn, const char *result);
static inline bool gc_mutator_dead(const hk_gc_mutator *m, const char *fn, const char *result) {
  if (hk_likely(m != NULL && m->heap != NULL)) return false;
  hk__gc_dead_mutator_warn(m, fn, result);
  return true;
}
/* A mutator inside hk_gc_blocking_begin/end counts as stopped: a collection of another thread
 * does not wait for it. A collection it started itself did not wait for the running threads
 * either (nrunning counted it out: SIGSEGV in review), its allocations bumped in a buffer the
 * other thread's collection was evacuating (a list of that thread's came back corrupt), and its
 * safepoint poll parked it, which left it counted as blocking while it ran (hk_gc_blocking_end
 * then refused to end the region). The entry points that run or wait for a collection, or hand
 * the collector an object, refuse such a mutator on their slow paths; blocking_begin hides its
 * buffers, so that every allocation in the region gets there. Safepoint polls are no-ops. */
HK_INTERNAL hk_cold void hk__gc_blocking_warn(const hk_gc_mutator *m, const char *fn, const char *result);
static inline bool gc_mutator_blocking(const hk_gc_mutator *m, const char *fn, const char *result) {
  if (hk_likely(m->state != MUT_BLOCKING)) return false;
  hk__gc_blocking_warn(m, fn, result);
  return true;
}
/* m leaves its heap (its record freed, or about to be): the inline allocation paths of a stale
 * handle then find no room and call out, and its safepoint poll reads a flag that is never set. */
HK_INTERNAL void hk__gc_mutator_disarm(hk_gc_mutator *m);
/* Heap lock held: the calling thread's mutator of h, or NULL. */
HK_INTERNAL hk_gc_mutator *hk__gc_mutator_of_self(hk_gc_heap *h);
HK_INTERNAL void hk__gc_mutex_aside(pthread_mutex_t *lk, const hk_gc_heap *keep);
HK_INTERNAL void hk__gc_lock_aside(hk_gc_heap *h);
/* Heap lock held: m leaves the heap for good (unregistering, or a thread that does not exist in a
 * forked child). Its remembered objects and finalizers go to the heap. */
HK_INTERNAL void hk__gc_mutator_drop(hk_gc_mutator *m);
/* Heap lock held: m unregisters (hk_gc_thread_unregister, or its thread's exit). */
HK_INTERNAL void hk__gc_unregister_locked(hk_gc_mutator *m);
/* fork.c: the live heaps, so that fork can quiesce them (create / destroy). */
HK_INTERNAL void hk__gc_fork_track(hk_gc_heap *h);
HK_INTERNAL void hk__gc_fork_untrack(hk_gc_heap *h);
/* Heap lock held, h being destroyed by the calling thread: its mutators of h (the only ones left)
 * leave the thread's list of mutators. */
HK_INTERNAL void hk__gc_self_forget(hk_gc_heap *h);
/* The concurrent arenas' and shared pools' hooks (src/arena/arena.c, src/pool/pool.c): their fork
 * handlers, registered before the collector's (fork.c), and a thread's wait that a fork may keep
 * going until it is over (hk__arena_parked: fork.c, thread.c). */
HK_INTERNAL void hk__arena_fork_register(void);
HK_INTERNAL void hk__pool_fork_register(void);
HK_INTERNAL void hk__arena_parked(bool on);
HK_INTERNAL void hk__gc_self_fork_prepare(void);
HK_INTERNAL void hk__gc_self_fork_parent(void);
HK_INTERNAL void hk__gc_self_fork_child(void);

/* A slot value the collector follows: not NULL and not tagged (an embedder's immediate). */
static inline bool gc_is_ref(uintptr_t r) { return r && !(r & 7); }
/* The slots of a layout-traced object (header hd) its pointer mask names, within its words. */
static inline uint64_t gc_layout_mask(const hk_gc_type_desc *d, uintptr_t hd) {
  size_t words = (hdr_total(hd) - HK_GC_GRANULE) / sizeof(void *);
  return words < 64 ? d->pointer_mask & (((uint64_t)1 << words) - 1) : d->pointer_mask;
}

/* Visit the slots of obj: through the type's trace function, or its layout with VISIT called
 * directly (so the collectors' hot loops inline their visitor for layout types). */
#define GC_TRACE_WITH(h, obj, v, VISIT)                                                      \
  do {                                                                                       \
    uintptr_t hd_ = *hdr_of(obj);                                                            \
    if (hd_ & HK_GC_HDR_NOSCAN) break;                                                       \
    const hk_gc_type_desc *d_ = &(h)->types[hdr_type(hd_)].d;                                \
    if (d_->trace) {                                                                         \
      d_->trace((obj), (v));                                                                 \
      break;                                                                                 \
    }                                                                                        \
    void **w_ = (void **)(obj);                                                              \
    uint64_t mask_ = gc_layout_mask(d_, hd_);                                                \
    /* Touch the children's headers first, so their cache misses overlap instead of queueing, \
     * and note which slots hold pointers: the visits skip the empty ones. */                \
    uint64_t refs_ = 0;                                                                      \
    for (uint64_t pm_ = mask_; pm_; pm_ &= pm_ - 1) {                                        \
      unsigned i_ = (unsigned)__builtin_ctzll(pm_);                                          \
      uintptr_t r_ = (uintptr_t)w_[i_];                                                      \
      if (gc_is_ref(r_)) {                                                                   \
        __builtin_prefetch((void *)(r_ - HK_GC_GRANULE), 1);                                 \
        refs_ |= (uint64_t)1 << i_;                                                          \
      }                                                                                      \
    }                                                                                        \
    for (; refs_; refs_ &= refs_ - 1) VISIT((v), &w_[__builtin_ctzll(refs_)]);               \
    if (d_->flags & HK_GC_TYPE_TAIL_POINTERS)                                                \
      for (size_t i_ = d_->tail_start, n_ = (hdr_total(hd_) - HK_GC_GRANULE) / sizeof(void *); \
           i_ < n_; i_++)                                                                    \
        if (gc_is_ref((uintptr_t)w_[i_])) VISIT((v), &w_[i_]);                               \
  } while (0)

/* ---- shared by the collectors (world stopped) -------------------------------------------------- */

/* Whether obj (header hd) may hold a pointer to visit: false only for an object traced by its
 * layout whose pointer slots are all empty. Such a leaf (most nodes of a tree) needs no trip
 * through a work list: the slots are in the cache line the collector is touching anyway. */
static inline bool gc_has_refs(const hk_gc_heap *h, const void *obj, uintptr_t hd) {
  const hk_gc_type_desc *d = &h->types[hdr_type(hd)].d;
  if (d->trace || (d->flags & HK_GC_TYPE_TAIL_POINTERS)) return true;
  void *const *w = (void *const *)obj;
  for (uint64_t mask = gc_layout_mask(d, hd); mask; mask &= mask - 1)
    if (gc_is_ref((uintptr_t)w[__builtin_ctzll(mask)])) return true;
  return false;
}

static inline bool in_blocks(const void *obj) { return seghdr_of(hdr_of(obj))->role == ROLE_BLOCKS; }
static inline void *fwd_of(uintptr_t hd) { return (char *)(hd & ~HK_GC_HDR_FORWARDED) + HK_GC_GRANULE; }

/* The common case of the collector's allocators, inline. */
static inline char *bump_fast(gc_bump *a, size_t total) {
  char *p = a->cursor;
  if (hk_likely(p && total <= (size_t)(a->limit - p))) {
    a->cursor = p + total;
    return p;
  }
  return NULL;
}

/* Most objects are a few words: a word loop beats a call to memcpy. */
static inline void copy_payload(char *dst, const char *src, size_t n) {
  if (n <= 64) {
    /* In 32-, 16- and 8-byte moves (n is a multiple of 8): a 48-byte payload is two, where the
     * word loop ran 34 instructions per copy on quadtree. */
    if (n >= 32) {
      __builtin_memcpy(dst, src, 32);
      dst += 32, src += 32, n -= 32;
      if (n >= 32) {
        __builtin_memcpy(dst, src, 32);
        return;
      }
    }
    if (n >= 16) {
      __builtin_memcpy(dst, src, 16);
      dst += 16, src += 16, n -= 16;
    }
    if (n) __builtin_memcpy(dst, src, 8);
  } else {
    memcpy(dst, src, n);
  }
}

static inline void push_or_die(hk_gc_heap *h, gc_stack *s, void *p) {
  if (!hk__gc_stack_push(h, s, p)) hk__fatal("gc: out of memory for the collector's work list");
}

/* collect.c (entry, tracing), minor.c, full.c */
HK_INTERNAL void hk__gc_collect_locked(hk_gc_mutator *m, hk_gc_kind kind);
HK_INTERNAL void hk__gc_trace_object(hk_gc_heap *h, void *obj, hk_gc_visitor *v);
HK_INTERNAL void hk__gc_visit_roots(hk_gc_heap *h, hk_gc_visitor *v);
/* The roots split for parallel tracing: each participant visits its own mutator's frames first
 * (its own young objects, in its own cache), then claims the frames nobody has visited yet.
 * hk__gc_frames_begin (world stopped, lock held) makes every mutator unclaimed; a claim is an
 * atomic exchange, so each mutator's frames are visited exactly once. */
HK_INTERNAL void hk__gc_visit_other_roots(hk_gc_heap *h, hk_gc_visitor *v); /* all but the frames */
HK_INTERNAL void hk__gc_visit_frames(hk_gc_mutator *m, hk_gc_visitor *v);
static inline void hk__gc_frames_begin(hk_gc_heap *h) { h->frames_gen++; }
static inline bool hk__gc_frames_claim(hk_gc_heap *h, hk_gc_mutator *m) {
  return __atomic_exchange_n(&m->frames_gen, h->frames_gen, __ATOMIC_RELAXED) != h->frames_gen;
}
/* Visits the frames of self (when not NULL and unclaimed), else of any unclaimed mutator; false
 * when all are claimed. */
HK_INTERNAL bool hk__gc_frames_visit_next(hk_gc_heap *h, hk_gc_mutator *self, hk_gc_visitor *v);
/* Some unclaimed mutator has frames (a parallel phase has work even if the collector has none). */
HK_INTERNAL bool hk__gc_frames_pending(hk_gc_heap *h);
HK_INTERNAL void hk__gc_minor(hk_gc_heap *h, bool promote_all);
/* inplace.c: whether the young blocks can be promoted where they are, and doing it (minor.c). */
#define GC_INPLACE_RUN 3
/* Runs double up to this while the nurseries are full of finalizable objects that all survive
 * (minor.c, next_inplace_run). */
#define GC_INPLACE_RUN_MAX 24
HK_INTERNAL bool hk__gc_promote_blocks_ok(const hk_gc_heap *h);
HK_INTERNAL void hk__gc_promote_blocks(hk_gc_heap *h, bool promote_all);
/* compact: evacuate every block the budget allows (an explicit collection, or one forced by the
 * heap limit); else only sparse blocks (a collection due by the growth policy). */
HK_INTERNAL void hk__gc_full(hk_gc_heap *h, bool compact);
/* full.c: a remembered old object found by a minor collection; if the last full collection marked
 * it, it is logged for the next sticky collection (it may now point to objects promoted since). */
static inline void gc_sticky_note(hk_gc_heap *h, void *o) {
  if (!h->sticky_ok) return;
  uintptr_t hd = *hdr_of(o);
  if ((hd & (HK_GC_HDR_GRAY | HK_GC_HDR_NOSCAN)) ||
      !(in_blocks(o) ? mark_test(o) : large_of(o)->mark == h->epoch))
    return;
  *hdr_of(o) = hd | HK_GC_HDR_GRAY;
  push_or_die(h, &h->sticky_log, o);
}

/* final.c */
/* Heap lock held (or the world stopped); false when out of memory. */
HK_INTERNAL bool hk__gc_flist_push(hk_gc_heap *h, gc_flist *l, const gc_final *f);
/* Takes the most recent record; frees emptied chunks. */
HK_INTERNAL bool hk__gc_flist_pop(hk_gc_heap *h, gc_flist *l, gc_final *out);
/* All of src's records onto dst, in O(chunks); src is left empty. */
HK_INTERNAL void hk__gc_flist_splice(gc_flist *dst, gc_flist *src);
/* Inline while the top chunk keeps a record after the pop. */
static inline bool flist_pop(hk_gc_heap *h, gc_flist *l, gc_final *out) {
  gc_chunk *c = l->top;
  if (hk_likely(c && c->n > 1)) {
    *out = flist_recs(c)[--c->n];
    l->count--;
    return true;
  }
  return hk__gc_flist_pop(h, l, out);
}
static inline void flist_push_or_die(hk_gc_heap *h, gc_flist *l, const gc_final *f) {
  gc_chunk *c = l->top;
  if (hk_likely(c && c->n < GC_FCAP)) {
    flist_recs(c)[c->n++] = *f;
    l->count++;
    return;
  }
  if (!hk__gc_flist_push(h, l, f)) hk__fatal("gc: out of memory for the finalizer records");
}
HK_INTERNAL bool hk__gc_owns(hk_gc_heap *h, const void *obj);
HK_INTERNAL bool hk__gc_is_object(hk_gc_heap *h, const void *obj);

/* Could the word before obj (in one of h's blocks, or a large object when large) be an object's
 * header? A pointer into a small object's middle lies in a heap block too, but the word before
 * it is the object's data: a word with bit 0 set reads as forwarded at the next collection, and
 * a pin or a finalizer would set a bit in the program's data. The collector keeps no map of
 * where objects start (and a mature block cannot be walked: its holes are refilled over dead
 * objects), so the word is checked as a header: not forwarded, a registered type, a size of at
 * least the header that stays within the block. An address, a double, text and an integer
 * below 2^24 all fail (the size field is the word's top 40 bits: zero, or far past a 32 KiB
 * block); a word built to look like a header (an integer from 2^24 to 2^36 whose bits 8-23 name
 * a registered type) passes. Used by hk_gc_set_finalizer, hk_gc_weak_new, hk_gc_pin/unpin. */
static inline bool gc_hdr_plausible(hk_gc_heap *h, const void *obj, bool large) {
  /* (atomically: another thread's hk_gc_pin/unpin or finalizer may be changing a flag bit) */
  uintptr_t hd = __atomic_load_n(hdr_of(obj), __ATOMIC_RELAXED);
  /* type in 1 .. ntypes-1 (registered: ntypes is published after the slot is filled) */
  bool typed = hdr_type(hd) - 1u < __atomic_load_n(&h->ntypes, __ATOMIC_RELAXED) - 1u;
  /* 1 .. (granules left in the block) granules, header included */
  size_t g = (size_t)(hd >> HK_GC_HDR_SIZE_SHIFT), at = ((uintptr_t)hdr_of(obj) & (GC_BLOCK_SIZE - 1)) / HK_GC_GRANULE;
  return !(hd & HK_GC_HDR_FORWARDED) && typed && g - 1 < (large ? SIZE_MAX : GC_GRANULES - at);
}
HK_INTERNAL size_t hk__gc_run_finalizers(hk_gc_mutator *m);
/* World stopped: move the mutators' new finalizer entries to the heap's young/old lists. */
HK_INTERNAL void hk__gc_merge_finalizers(hk_gc_heap *h);
/* Heap lock held: a mutator leaves; its entries go to the heap. */
HK_INTERNAL void hk__gc_mutator_finalizers_flush(hk_gc_mutator *m);

/* verify.c: world stopped, heap lock held */
HK_INTERNAL int hk__gc_verify_stopped(hk_gc_heap *h);

/* stats.c */
HK_INTERNAL void hk__gc_pause_record(hk_gc_heap *h, int kind, double ms);
HK_INTERNAL double hk__gc_now_ms(void);

/* fork.c: the forking thread while the collector's fork handlers hold the heaps (their locks,
 * their worlds stopped): a fork handler registered before the collector's runs then, on that
 * thread, and may use a heap (fork.c). gc_fork_owns(h): this thread is that thread and h is one
 * of the heaps the fork stopped; its lock is not taken again, its stop does not park this thread,
 * and a collection takes the stopped world over. (Only the holder reads fork_stopped then: the
 * holder is tested first.) */
HK_INTERNAL extern _Atomic uintptr_t hk__gc_holder;
static inline bool gc_fork_owns(const hk_gc_heap *h) { return hk__holds(&hk__gc_holder) && h->fork_stopped; }
/* h's world is stopped for this thread (a collection or a fork waits for it to park). */
static inline bool gc_stopped(const hk_gc_heap *h) {
  return __atomic_load_n(&h->stop, __ATOMIC_RELAXED) && !gc_fork_owns(h);
}

HK_INTERNAL void hk__gc_lock_slow(hk_gc_heap *h);
static inline void gc_lock(hk_gc_heap *h) {
  if (hk_unlikely(pthread_mutex_trylock(&h->lock) != 0)) hk__gc_lock_slow(h);
}
HK_INTERNAL void hk__gc_unlock_slow(hk_gc_heap *h);
static inline void gc_unlock(hk_gc_heap *h) {
  /* (the fork's test out of line: inline in the marking loop's parallel-phase unlock, bintrees 16
   * ran 0.15% more instructions than before under callgrind, 0.17% fewer with this) */
  if (hk_unlikely(atomic_load_explicit(&hk__gc_holder, memory_order_relaxed) != 0)) hk__gc_unlock_slow(h);
  else pthread_mutex_unlock(&h->lock);
}

#endif
