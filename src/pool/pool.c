/* Pools of fixed-size blocks, carved from 4 MiB segments of the page layer.
 *
 * Layout of a pool segment: [hk__segment][pool_seg][hk_pool, first segment only][blocks].
 * Blocks are carved lazily: a pool only touches memory it hands out.
 *
 * Four modes, chosen at creation and never mixed (the fourth, shared pools, is described with its
 * code below: per-thread caches in front of a depot that is the stack of the first two):
 *   checked (the default)  free blocks on a stack of pointers in a segment of its own (kind
 *            HK__SEG_POOL with no owner, so a free of a pointer into it is rejected like any
 *            foreign pointer). The inline paths in pool.h pop and push it and never follow a
 *            pointer stored in a block, so allocations do not wait on each other's loads. The
 *            inline free checks the pointer against the window (the blocks carved in p->cur: one
 *            multiply, a rotate and a compare) and the block's first word (a free block's holds
 *            the address of its stack slot), writes its slot's address there and pushes;
 *            allocation writes nothing but top. Frees outside the window (older segments) and
 *            first words that may name a slot below top come here: the first pass the
 *            segment-map checks below, the second are a double free exactly when that slot holds
 *            the block (in_slot: O(1); a stale slot of a block popped and not written since, or
 *            user data that looks like a slot, is not). Everything the fast paths read is in the
 *            head's four words and the block's first word. The window is the push's capacity
 *            test too (window_n): the stack is committed for the blocks carved.
 *   unchecked (.unchecked)  the same stack with nothing checked inline; bad frees that reach
 *            this file (a push at a page boundary of the stack) are still caught when it is
 *            cheap: more frees than blocks carved, a pointer that is not a block.
 *   listed   (HK_DEBUG >= 1, ASan/valgrind runs) a LIFO list through the first word
 *            of each free block, whose second word holds a mark (the secret xor the block's
 *            address) that allocation clears, so a bad free is found in O(1) as above; a marked
 *            block is confirmed free by a walk of the free list. Every call comes here (h.top is
 *            nil_top, h.win the unchecked flag alone), which lets ASan/valgrind
 *            annotate and debug builds fill each block. Blocks are therefore at least 16 bytes.
 * A detected bad free is fatal in every mode, with the message hk_free uses for its own.
 * The stack of both stack modes: its committed slots grow, out of line, in steps of one page-layer
 * unit, with the number of blocks free at once and, in checked pools, with the blocks carved (up
 * to its 4 MiB segment; on Linux a commit is bookkeeping, and only the entries written touch
 * pages); a stack that outgrows its segment moves to one twice the size. The word below its first
 * entry is NULL (the inline pop's empty test), and its committed end is a page boundary (the
 * unchecked inline push's capacity test: cheaper than loading an end pointer, measured; 1 push in
 * 512 comes here).
 * Divisibility by the stride is one multiply (is_multiple), the slot index a multiply
 * and a shift (offsets are below 2^22, so a 33-bit reciprocal is exact).
 */
#include "common/internal.h"
#include "page/segment.h"
#include "arena/track.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define POOL_MAGIC 0x504f4f4cu /* "POOL" */
#define POOL_DEFAULT_STEP ((size_t)64 << 10)
/* shared pools' thread caches (see "shared pools" below) */
#define PC_CAP 512 /* 64 sent a burst of 256 frees through the depot to the other thread */
#define PC_CACHE_BYTES ((size_t)256 << 10) /* a cache holds at most this much (two blocks at least):
                                              64 blocks of 256 KiB kept 16 MiB idle per thread */
#define POOL_DEFAULT_RETAIN ((size_t)1 << 20)
#define POOL_FILL_FREED 0xDF

/* Invariants (checked by hk__pool_is_valid): base <= carve <= limit; carve <= commit_end;
 * (carve - base) % stride == 0; a segment after the pool's current one has carve == base. */
typedef struct pool_seg {
  hk__segment *seg;
  struct pool_seg *next, *prev;
  char *base, *carve, *commit_end, *limit, *poisoned_end;
} pool_seg;

/* Blocks in use are carved - free, and their peak is the largest carved count: a block is only
 * carved when no block is free, that is when every carved block is in use. So the fast paths
 * count nothing but the stack height they need anyway.
 * Invariants (hk__pool_is_valid): carved == sum over segments of (carve - base) / stride.
 * Stack modes: n = h.top - stk <= stk_slots, stk[-1] == NULL, the stack holds n carved blocks of
 * p (each naming its slot in its first word, in checked mode, where h.base and nwin = h.win >>
 * HK__POOL_NWIN_SHIFT describe p->cur's first carved blocks: all of them while stk_slots >=
 * carved, else no more than the stack has room for; nwin 0 while there is no stack or the stack's
 * segment is larger than 4 MiB), n <=
 * carved unless an unchecked pool was misused; h.top == nil_top while there is no stack; list ==
 * NULL. Listed: h.top == nil_top, h.win == HK__POOL_UNCHECKED, the free list has nlist <= carved blocks, each
 * marked. listed == !shared && (track || HK_DEBUG >= 1). Shared: h.top == nil_top,
 * h.win == HK__POOL_UNCHECKED,
 * the depot stk[0 .. dn) holds dn <= carved blocks, each marked (word 0 == mark_of), list empty. */
struct hk_pool {
  hk_pool_head h; /* first: the inline fast paths read it */
  pool_seg *cur, *first, *last;
  void *list;     /* listed pools: the free list */
  size_t nlist;
  hk__segment *stk_seg; /* stack modes: the segment holding the stack, NULL until the first free */
  void **stk;           /* its first entry */
  size_t stk_slots;     /* committed stack entries */
  size_t stride;
  uint64_t inv, lim;    /* offset % stride == 0 <=> rotr(offset * inv, tz) <= lim (stride = odd << tz) */
  unsigned tz;
  uintptr_t secret;
  bool listed, unchecked;
  size_t align;
  uint64_t div_m; /* offset / stride == (offset * div_m) >> div_shift for offsets below 4 MiB */
  unsigned div_shift;
  bool shared;
  size_t dn;                /* shared pools: blocks in the depot (p->stk[0 .. dn)) */
  size_t pc_cap;            /* shared pools: a thread cache's capacity, 2 <= pc_cap <= PC_CAP,
                               pc_cap * stride <= PC_CACHE_BYTES unless pc_cap == 2 */
  struct pcache *caches;    /* shared pools: the thread caches bound to this pool (under cache_lock) */
  struct hk_pool *snext, *sprev; /* shared pools: the list of live ones (under cache_lock), for fork */
  bool track; /* annotate every block for ASan/valgrind (kept off the fast path otherwise) */
  uint32_t magic;
  size_t commit_step, retain;
  size_t carved, peak_before_reset, committed, committed_peak, reserved, nsegs, bad_frees;
  pthread_mutex_t lock;
};

static inline size_t seg_meta_off(void) { return hk__align_up(sizeof(hk__segment), 64); }
static inline pool_seg *meta_of(hk__segment *s) { return (pool_seg *)((char *)s + seg_meta_off()); }
/* The shared pools' locks are held across a fork by the thread that forks (pc_fork_prepare). */
static _Atomic uintptr_t pc_holder;
static inline void plock(pthread_mutex_t *m) { hk__hlock(&pc_holder, m); }
static inline void punlock(pthread_mutex_t *m) { hk__hunlock(&pc_holder, m); }
static inline void lock(hk_pool *p) { if (p->shared) plock(&p->lock); }
static inline void unlock(hk_pool *p) { if (p->shared) punlock(&p->lock); }
/* The stack's top (pool.h keeps it as an integer: see hk_pool_head). */
static inline void **htop(const hk_pool *p) { return (void **)p->h.top; }
static inline size_t slot_of(const hk_pool *p, size_t off) { return (size_t)(((uint64_t)off * p->div_m) >> p->div_shift); }
/* The listed mode's mark (word 1) of a free block. */
static inline uintptr_t mark_of(const hk_pool *p, const void *b) { return p->secret ^ (uintptr_t)b; }
static inline uintptr_t word0(const void *b) { return ((const uintptr_t *)b)[0]; }
static inline bool slotted(const hk_pool *p) { return !p->listed && !p->unchecked && !p->shared; }
/* Where h.top points when the fast paths must not touch a stack (listed pools, no stack yet): a
 * page boundary, after a NULL word. Never written. */
static _Alignas(4096) void *nil_page[4096 / sizeof(void *) + 1];
static void **const nil_top = &nil_page[4096 / sizeof(void *)];
/* The inline paths' head for NULL and shared pools (pool.h, hk__pool_head_of): nil_top and the
 * unchecked flag send every call here, and what the calls return for it is nil_top again. */
__thread hk_pool_head hk__pool_thread_head __attribute__((tls_model("initial-exec"))) = {
    (uintptr_t)&nil_page[4096 / sizeof(void *)], HK__POOL_UNCHECKED, 0, 0};
/* A shared pool's handle is its address with HK__POOL_SHARED_TAG set (pool.h): every entry point
 * takes the handle off first, and messages name the handle the program holds. */
static inline hk_pool *untag(const hk_pool *p) { return (hk_pool *)((uintptr_t)p & ~HK__POOL_SHARED_TAG); }
static inline bool live(const hk_pool *p) { return p && p->magic == POOL_MAGIC; }
static inline bool tagged(const hk_pool *p) { return ((uintptr_t)p & HK__POOL_SHARED_TAG) != 0; }
static inline const void *handle_of(const hk_pool *p) {
  return (const void *)((uintptr_t)p | (p->shared ? HK__POOL_SHARED_TAG : 0));
}
/* Shared pools keep their depot's height in dn and h.top at nil_top (every call out of line). */
static inline size_t stk_n(const hk_pool *p) { return p->shared ? p->dn : p->stk ? (size_t)(htop(p) - p->stk) : 0; }
static inline void stk_set_n(hk_pool *p, size_t n) {
  if (p->shared) p->dn = n;
  else p->h.top = (uintptr_t)(p->stk ? p->stk + n : nil_top);
}
/* inv = odd^-1 mod 2^64 maps the multiples of odd onto [0, UINT64_MAX / odd]; the rotation folds
 * the power-of-two factor in: one multiply instead of a division. */
static inline bool is_multiple(const hk_pool *p, uint64_t off) {
  uint64_t x = off * p->inv;
  return ((x >> p->tz) | (x << ((64 - p->tz) & 63))) <= p->lim;
}
static inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
/* The inline free's window follows the segment blocks are carved from. It is empty while there
 * is no stack, and while the stack's segment is larger than 4 MiB: the inline slot test only looks
 * at top's 4 MiB-aligned window, so every checked free must then come here.
 * The inline push has no capacity test: the window admits a free only while the stack has a slot
 * for it. Between two calls of set_window the stack's height plus the window's live blocks never
 * grows (an inline free moves a live window block onto the stack; an inline allocation takes one
 * off, and it is a window block or leaves the count). So the stack can take every inline push if
 * its committed slots hold that sum when the window is set; the sum is at most the height plus
 * the window's blocks, and at most the blocks carved (the stack holds each block once). The
 * stack is committed for the blocks carved (carve, and the free that makes the stack), so the
 * window is cut to the room above the height only when that commit failed or the 4 MiB segment
 * cannot hold them. */
static inline uint64_t window_n(const hk_pool *p) {
  if (!p->stk_seg || p->stk_seg->size > HK_SEGMENT_SIZE) return 0;
  uint64_t n = slot_of(p, (size_t)(p->cur->carve - p->cur->base));
  if (p->carved > p->stk_slots) {
    size_t h = stk_n(p), room = p->stk_slots > h ? p->stk_slots - h : 0;
    if (n > room) n = room;
  }
  return n;
}
static inline void set_window(hk_pool *p) {
  if (!slotted(p)) return;
  p->h.base = (uintptr_t)p->cur->base;
  p->h.win = (p->h.win & (((uint64_t)1 << HK__POOL_NWIN_SHIFT) - 1)) | window_n(p) << HK__POOL_NWIN_SHIFT;
}
static size_t cached_blocks(const hk_pool *p);
static void pc_link(hk_pool *p);
static inline size_t nfree(const hk_pool *p) { return p->listed ? p->nlist : stk_n(p) + (p->shared ? cached_blocks(p) : 0); }
/* The segment header, then the NULL word below the first entry (pool.h's inline slot test knows
 * the offset). */
_Static_assert(sizeof(hk__segment) + sizeof(void *) <= HK__POOL_STACK_OFF && HK__POOL_STACK_OFF % 64 == 0, "stack header");
_Static_assert(HK__POOL_SEG_MASK == HK_SEGMENT_MASK, "pool.h assumes 4 MiB segments");
static inline size_t stk_hdr(void) { return HK__POOL_STACK_OFF; }
/* Entries a 4 MiB stack segment holds. */
static inline size_t stk_seg_slots(void) { return (HK_SEGMENT_SIZE - HK__POOL_STACK_OFF) / sizeof(void *); }
/* Reads word i of block b, which may be poisoned (a free block). */
static inline uintptr_t word(const hk_pool *p, const void *b, int i) {
  if (hk_unlikely(p->track)) hk__track_peek((const char *)b + i * sizeof(void *), sizeof(void *));
  uintptr_t w = ((const uintptr_t *)b)[i];
  if (hk_unlikely(p->track)) hk__track_release((char *)b + i * sizeof(void *), sizeof(void *));
  return w;
}
/* Reads word i of block b and leaves it addressable; the caller restores the poisoning. */
static inline uintptr_t word_open(const hk_pool *p, const void *b, int i) {
  if (hk_unlikely(p->track)) hk__track_peek((const char *)b + i * sizeof(void *), sizeof(void *));
  return ((const uintptr_t *)b)[i];
}
/* Checked pools: true if b (a carved block) is free: its first word is a slot below top that
 * holds b. Exact, whatever a live block's first word holds: only free blocks are on the stack,
 * each once. */
static bool in_slot(const hk_pool *p, const void *b) {
  uintptr_t w = word0(b), lo = (uintptr_t)p->stk;
  return p->stk && w >= lo && w < (uintptr_t)htop(p) && (w - lo) % sizeof(void *) == 0 && *(void *const *)w == b;
}
/* True if b is free: the slow confirmation behind a matching mark, or a scan of the stack
 * (unchecked). */
static hk_cold bool on_free_list(const hk_pool *p, const void *b) {
  if (!p->listed) {
    for (void **e = p->stk, **top = htop(p); p->stk && e < top; e++)
      if (*e == b) return true;
    return false;
  }
  for (const char *f = p->list; f; f = (const char *)word(p, f, 0))
    if (f == b) return true;
  return false;
}

HK_INTERNAL bool hk__pool_is_valid(hk_pool *p);

static void account(hk_pool *p, ptrdiff_t bytes) {
  p->committed += (size_t)bytes;
  if (p->committed > p->committed_peak) p->committed_peak = p->committed;
  hk__page_inuse_add(bytes);
}

/* A new segment; the first one also holds the pool itself (with_pool). */
static pool_seg *seg_new(hk_pool *p, size_t stride, size_t align, bool with_pool) {
  size_t fixed = seg_meta_off() + hk__align_up(sizeof(pool_seg), 64) + (with_pool ? hk__align_up(sizeof(hk_pool), 64) : 0);
  size_t hdr = hk__align_up(fixed, align > 64 ? align : 64);
  hk__segment *s = hk__segment_alloc(HK_SEGMENT_SIZE, HK_SEGMENT_SIZE, HK__SEG_POOL, hdr);
  if (!s) return NULL;
  char *s0 = (char *)s;
  pool_seg *ps = meta_of(s);
  memset(ps, 0, sizeof *ps);
  ps->seg = s;
  ps->base = ps->carve = s0 + hdr;
  ps->limit = ps->base + ((HK_SEGMENT_SIZE - hdr) / stride) * stride;
  ps->commit_end = ps->poisoned_end = s0 + hk__round_up(hdr, s->unit);
  if (ps->commit_end > ps->base) hk__track_release(ps->base, (size_t)(ps->commit_end - ps->base));
  if (p) {
    s->owner = p;
    account(p, ps->commit_end - s0);
    p->reserved += s->size;
    p->nsegs++;
  }
  return ps;
}

static void seg_free(hk_pool *p, pool_seg *ps) {
  if (ps->prev) ps->prev->next = ps->next;
  else p->first = ps->next;
  if (ps->next) ps->next->prev = ps->prev;
  else p->last = ps->prev;
  hk__segment *s = ps->seg;
  if (ps->poisoned_end > ps->base) hk__track_forget(ps->base, (size_t)(ps->poisoned_end - ps->base));
  account(p, -(ptrdiff_t)(ps->commit_end - (char *)s));
  p->reserved -= s->size;
  p->nsegs--;
  hk__segment_free(s); /* for the first segment this frees p */
}

hk_pool *hk_pool_new_ex(const hk_pool_options *opt) {
  if (!opt || opt->block_size == 0 || opt->block_size > HK_POOL_MAX_BLOCK ||
      (opt->align && (!hk__is_pow2(opt->align) || opt->align > 4096))) {
    errno = EINVAL;
    return NULL;
  }
  hk__page_init();
  size_t align = opt->align ? opt->align : 16;
  if (align < 2 * sizeof(void *) && !opt->align) align = 2 * sizeof(void *);
  if (align < sizeof(void *)) align = sizeof(void *);
  size_t stride = hk__align_up(opt->block_size < 2 * sizeof(void *) ? 2 * sizeof(void *) : opt->block_size, align);
  pool_seg *ps = seg_new(NULL, stride, align, true);
  if (!ps) {
    errno = ENOMEM;
    return NULL;
  }
  hk_pool *p = (hk_pool *)((char *)ps + hk__align_up(sizeof(pool_seg), 64));
  memset(p, 0, sizeof *p);
  p->magic = POOL_MAGIC;
  p->stride = stride;
  p->align = align;
  unsigned l = 0;
  while (((size_t)1 << l) < stride) l++;
  p->div_shift = 32 + l;
  p->div_m = (((uint64_t)1 << p->div_shift) + stride - 1) / stride;
  p->tz = (unsigned)__builtin_ctzll(stride);
  uint64_t odd = stride >> p->tz, inv = odd; /* Newton: each step doubles the correct bits */
  for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;
  p->inv = inv;
  p->lim = UINT64_MAX / stride;
  p->shared = opt->shared;
  size_t cap = PC_CACHE_BYTES / stride;
  p->pc_cap = cap < 2 ? 2 : cap > PC_CAP ? PC_CAP : cap;
  p->track = hk__track_per_alloc();
  /* Debug builds fill freed blocks and tools annotate them, which the inline paths do not. */
  p->listed = !p->shared && (p->track || HK_DEBUG >= 1);
  p->unchecked = !p->listed && !p->shared && opt->unchecked && !opt->checked && hk_option_get(HK_OPT_HARDENED) == 0;
  p->h.top = (uintptr_t)nil_top;
  p->h.inv = p->inv;
  /* listed and shared pools: the flag alone, so the inline free tests it and top's page boundary
   * (nil_top is one) and calls out, without the checked branch's window */
  p->h.win = p->unchecked || p->listed || p->shared ? HK__POOL_UNCHECKED : p->tz;
  p->secret = (ps->seg->cookie | 1) * (uintptr_t)0x9E3779B97F4A7C15ull;
  /* at most a segment (all a step can commit): rounding a step near SIZE_MAX up wrapped to 0 */
  p->commit_step = opt->commit_step ? hk__align_up(min_sz(opt->commit_step, HK_SEGMENT_SIZE), 4096) : POOL_DEFAULT_STEP;
  p->retain = opt->retain ? opt->retain : POOL_DEFAULT_RETAIN;
  pthread_mutex_init(&p->lock, NULL);
  if (p->shared) pc_link(p);
  ps->seg->owner = p;
  account(p, ps->commit_end - (char *)ps->seg);
  p->reserved = ps->seg->size;
  p->nsegs = 1;
  p->cur = p->first = p->last = ps;
  set_window(p);
  return p->shared ? (hk_pool *)((uintptr_t)p | HK__POOL_SHARED_TAG) : p;
}

hk_pool *hk_pool_new(size_t block_size) {
  hk_pool_options o = {0};
  o.block_size = block_size;
  return hk_pool_new_ex(&o);
}

static hk_cold int stk_grow(hk_pool *p, size_t need);

/* No free block: carve the next one, committing more or moving to the next segment. */
static hk_cold void *carve(hk_pool *p) {
  for (;;) {
    pool_seg *ps = p->cur;
    if (ps->carve + p->stride <= ps->commit_end) {
      char *b = ps->carve;
      __atomic_store_n(&ps->carve, b + p->stride, __ATOMIC_RELAXED); /* read unlocked by shared frees */
      p->carved++;
      /* the inline push's room (window_n): commit the stack for the blocks carved, one page-layer
       * unit (8 K entries) at a time; on Linux committing is bookkeeping, pages are touched only
       * by the entries written. A failure only narrows the window. */
      if (hk_unlikely(p->carved > p->stk_slots) && slotted(p) && p->stk_seg && p->stk_seg->size <= HK_SEGMENT_SIZE &&
          p->stk_slots < stk_seg_slots())
        (void)stk_grow(p, min_sz(p->carved, stk_seg_slots()));
      set_window(p);
      return b;
    }
    if (ps->carve + p->stride <= ps->limit) {
      char *s0 = (char *)ps->seg;
      size_t unit = ps->seg->unit;
      size_t step = hk__round_up(p->commit_step > unit ? p->commit_step : unit, unit);
      size_t new_off = hk__round_up((size_t)(ps->carve + p->stride - s0), step);
      if (new_off > ps->seg->size) new_off = ps->seg->size;
      size_t old_off = (size_t)(ps->commit_end - s0);
      if (hk__segment_commit(ps->seg, old_off, new_off - old_off, NULL) != HK_OK) return NULL;
      hk__track_release(ps->commit_end, new_off - old_off);
      ps->commit_end = s0 + new_off;
      if (ps->commit_end > ps->poisoned_end) ps->poisoned_end = ps->commit_end;
      account(p, (ptrdiff_t)(new_off - old_off));
      continue;
    }
    if (!ps->next) {
      pool_seg *n = seg_new(p, p->stride, p->align, false);
      if (!n) return NULL;
      n->prev = ps;
      ps->next = n;
      p->last = n;
    }
    p->cur = ps->next;
    set_window(p);
  }
}

/* ---- the free stack of checked and unchecked pools ------------------------------------------- */

static size_t stk_committed(const hk_pool *p) {
  return p->stk_seg ? hk__round_up(stk_hdr() + p->stk_slots * sizeof(void *), p->stk_seg->unit) : 0;
}

/* Room for at least `need` entries: commit the next unit(s) of the stack's segment, or move the
 * stack to a fresh segment twice as large (copying the entries). */
static hk_cold int stk_grow(hk_pool *p, size_t need) {
  size_t hdr = stk_hdr(), bytes = hdr + need * sizeof(void *);
  hk__segment *s = p->stk_seg;
  if (s && bytes <= s->size) {
    size_t old_off = stk_committed(p), new_off = hk__round_up(bytes, s->unit);
    if (hk__segment_commit(s, old_off, new_off - old_off, NULL) != HK_OK) return HK_ENOMEM;
    account(p, (ptrdiff_t)(new_off - old_off));
    p->stk_slots = (new_off - hdr) / sizeof(void *);
    return HK_OK;
  }
  size_t size = s ? 2 * s->size : HK_SEGMENT_SIZE;
  if (size < bytes) size = hk__align_up(bytes, HK_SEGMENT_SIZE);
  hk__segment *ns = hk__segment_alloc(size, HK_SEGMENT_SIZE, HK__SEG_POOL, hdr);
  if (!ns) return HK_ENOMEM;
  ns->owner = NULL; /* not a block segment of any pool: frees into it are rejected */
  size_t first = hk__round_up(hdr, ns->unit), want = hk__round_up(bytes, ns->unit);
  if (want > first && hk__segment_commit(ns, first, want - first, NULL) != HK_OK) {
    hk__segment_free(ns);
    return HK_ENOMEM;
  }
  void **stack = (void **)((char *)ns + hdr);
  size_t n = stk_n(p);
  stack[-1] = NULL; /* already zero (a fresh header); said for the reader */
  if (n) memcpy(stack, p->stk, n * sizeof(void *));
  if (slotted(p)) /* each free block names its slot */
    for (size_t i = 0; i < n; i++) ((uintptr_t *)stack[i])[0] = (uintptr_t)&stack[i];
  account(p, (ptrdiff_t)want);
  p->reserved += ns->size;
  if (s) {
    account(p, -(ptrdiff_t)stk_committed(p));
    p->reserved -= s->size;
    hk__segment_free(s);
  }
  p->stk_seg = ns;
  p->stk = stack;
  stk_set_n(p, n);
  p->stk_slots = (want - hdr) / sizeof(void *);
  set_window(p);
  return HK_OK;
}

/* Keeps at most `keep` committed bytes of the (empty) stack, and at least its first unit. */
static void stk_trim(hk_pool *p, size_t keep) {
  hk__segment *s = p->stk_seg;
  if (!s) return;
  size_t hdr = stk_hdr(), old_off = stk_committed(p);
  size_t new_off = hk__align_down(keep, s->unit);
  if (new_off < hk__round_up(hdr, s->unit)) new_off = hk__round_up(hdr, s->unit);
  if (new_off >= old_off) return;
  hk__segment_decommit(s, new_off, old_off - new_off);
  account(p, -(ptrdiff_t)(old_off - new_off));
  p->stk_slots = (new_off - hdr) / sizeof(void *);
}


/* ---- shared pools: thread caches in front of a locked depot ------------------------------------
 *
 * Each thread keeps, per shared pool it uses (PC_WAYS pools at a time), a cache: a stack of up to
 * p->pc_cap free blocks (PC_CAP, fewer for blocks over 512 bytes: PC_CACHE_BYTES). Allocation pops
 * it and free pushes it with no lock and no atomic read-modify-write; only an empty cache (refill:
 * up to pc_batch(p) blocks from the depot, or carve up to PC_CARVE, and at most PC_CARVE_BYTES) or
 * a full one (flush: its pc_batch(p) oldest blocks) takes the pool's lock, and
 * moves a batch with one memcpy. The depot is the checked mode's stack of pointers (p->stk, height
 * p->dn), so a transfer never walks blocks.
 * A free block of a shared pool (cached or in the depot) holds the mark (secret ^ address) in its
 * first word; allocation clears it. A free finds it set: a double free (see docs/arena.md for why
 * the mark is trusted without a walk: a live block holds it only if the program wrote the pool's
 * secret-derived value there itself).
 * The caches of a pool are on its list (pcache.next/prev), guarded by the global cache_lock, which
 * is taken before any pool lock: binding and evicting a cache, thread exit, reset (empties every
 * cache of the pool: its blocks become uncarved), destroy (unbinds every cache) and stats (sum the
 * cached counts). pool and n are atomics because those run on other threads than the owner; the
 * owner's accesses are relaxed (plain moves on x86).
 * A shared pool's handle is its address with HK__POOL_SHARED_TAG set: the inline paths (pool.h)
 * then run on the calling thread's dummy head, never on the pool's, which they would otherwise
 * write after every call from every thread (a data race: pool.shared under TSan reports it). */
static hk_cold _Noreturn void double_free(const hk_pool *p, const void *b, const char *why);
static void check_block(hk_pool *p, const char *b);
#define PC_CARVE 16
#define PC_CARVE_BYTES ((size_t)64 << 10) /* a carve batch takes at most this much (one block at least):
                                             16 blocks of 256 KiB committed 4 MiB for one allocation */
#define PC_WAYS 4
typedef struct pcache {
  _Atomic(hk_pool *) pool; /* NULL: unbound */
  _Atomic size_t n;
  struct pcache *next, *prev;
  void *b[PC_CAP];
} pcache;
typedef struct pcaches {
  pcache c[PC_WAYS];
  unsigned clock; /* the next way to evict */
} pcaches;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static hk_pool *pc_pool; /* a single-threaded pool of pcaches records, under cache_lock */
static hk__tkey pc_key; /* unloaded with a plugin that links this copy (pc_unload) */
static pthread_once_t pc_once = PTHREAD_ONCE_INIT;
static __thread pcaches *t_pc __attribute__((tls_model("initial-exec")));

/* A refill or flush moves half a cache. */
static inline size_t pc_batch(const hk_pool *p) { return p->pc_cap / 2; }
static inline size_t pc_n(pcache *c) { return atomic_load_explicit(&c->n, memory_order_relaxed); }
static inline void pc_set_n(pcache *c, size_t n) { atomic_store_explicit(&c->n, n, memory_order_relaxed); }

static size_t cached_blocks(const hk_pool *p) { /* caller holds cache_lock */
  size_t n = 0;
  for (pcache *c = p->caches; c; c = c->next) n += pc_n(c);
  return n;
}

/* Moves the k oldest blocks of c to p's depot (under p's lock); false if the depot cannot grow. */
static hk_cold __attribute__((noinline)) bool pc_flush(hk_pool *p, pcache *c, size_t k) {
  size_t n = pc_n(c);
  plock(&p->lock);
  size_t dn = p->dn;
  if (dn + k > p->stk_slots && stk_grow(p, dn + k) != HK_OK) {
    punlock(&p->lock);
    return false;
  }
  memcpy(p->stk + dn, c->b, k * sizeof(void *));
  p->dn = dn + k;
  /* the count drops under the lock: a stats reader (which holds it) never sees the blocks both in
   * the depot and in the cache. Only this thread reads c->b, so the move can wait. */
  pc_set_n(c, n - k);
  punlock(&p->lock);
  memmove(c->b, c->b + k, (n - k) * sizeof(void *));
  return true;
}

/* Unbinds c (caller holds cache_lock): its blocks go back to its pool's depot. */
static void pc_unbind(pcache *c) {
  hk_pool *p = atomic_load_explicit(&c->pool, memory_order_relaxed);
  if (!p) return;
  if (pc_n(c) && !pc_flush(p, c, pc_n(c)))
    hk__warning("shared pool %p: no memory to take back %zu cached blocks; they are leaked", handle_of(p), pc_n(c));
  pc_set_n(c, 0);
  if (c->prev) c->prev->next = c->next;
  else p->caches = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
  atomic_store_explicit(&c->pool, NULL, memory_order_relaxed);
}

/* Thread exit: every cached block goes back to its pool, and the record to pc_pool. A pool
 * destroyed before has already unbound the caches (pool == NULL), so nothing here touches it. */
static void pc_thread_exit(void *arg) {
  pcaches *t = arg;
  plock(&cache_lock);
  for (int i = 0; i < PC_WAYS; i++) pc_unbind(&t->c[i]);
  hk_pool_free(pc_pool, t);
  punlock(&cache_lock);
  if (t_pc == t) t_pc = NULL;
}
/* fork: no lock of the shared pools may be held by a thread that does not exist in the child
 * (a child forked while another thread refilled a cache hung on the pool's lock at its first
 * refill). Registered after the allocator's handlers, so these locks are taken before its own and
 * given back after them; a thread holding a pool's lock takes the page layer's locks, never the
 * reverse. The other threads' caches are lost to the child, as their malloc caches are.
 * These handlers are registered at the first shared pool, usually after a program's or library's
 * own: those run their prepare handlers after this one and their parent and child ones before
 * these, and one that used a shared pool waited for a lock its own thread held (pool.shared_atfork
 * hung). So, as the allocator's (internal.h, hk__fork_holder), the pools' locks are skipped on the
 * forking thread while these handlers hold them (pc_holder); a pool made in that window is linked
 * locked, and one destroyed in it unlocked first, so the parent handler's unlocks stay paired. */
static hk_pool *shared_pools; /* under cache_lock */
HK_INTERNAL void hk__arena_parked(bool on); /* (src/arena/arena.c) */
static void pc_fork_prepare(void) {
  hk__arena_parked(true); /* (another fork holds these locks to its end: src/arena/arena.c) */
  pthread_mutex_lock(&cache_lock);
  for (hk_pool *p = shared_pools; p; p = p->snext) pthread_mutex_lock(&p->lock);
  hk__arena_parked(false);
  hk__hold(&pc_holder, true);
}
static void pc_fork_parent(void) {
  hk__hold(&pc_holder, false);
  for (hk_pool *p = shared_pools; p; p = p->snext) pthread_mutex_unlock(&p->lock);
  pthread_mutex_unlock(&cache_lock);
}
static void pc_fork_child(void) {
  hk__hold(&pc_holder, false);
  for (hk_pool *p = shared_pools; p; p = p->snext) pthread_mutex_init(&p->lock, NULL);
  pthread_mutex_init(&cache_lock, NULL);
}
static void pc_make_key(void) {
  if (hk__tkey_create(&pc_key, pc_thread_exit) != 0) hk__fatal("cannot create the pool thread-cache key");
  if (pthread_atfork(pc_fork_prepare, pc_fork_parent, pc_fork_child) != 0) hk__fatal("cannot register the pools' fork handlers");
}
#if HK_UNLOADABLE
/* A plugin that links libheapkit.a being unloaded: the key goes with the code, or a thread with a
 * cache exiting afterwards called pc_thread_exit in the unmapped code (malloc.key_dlclose). Its
 * cached blocks and record stay where they are (src/malloc/heap.c, plugin_unload); a cache bound
 * later (the object's remaining destructors) is not, and such a thread takes the pool's lock. */
__attribute__((destructor)) static void pc_unload(void) {
  hk__tkey_unload(&pc_key);
}
#endif
/* The collector registers these before its own (src/gc/fork.c), so that its prepare handler runs
 * first: registered later (a shared pool made after a collector heap), these ran first and held
 * the pools' locks while the collector waited for a mutator blocked on one of them (the forking
 * parent hung: gc.fork_pool). */
HK_INTERNAL void hk__pool_fork_register(void);
void hk__pool_fork_register(void) { pthread_once(&pc_once, pc_make_key); }

static void pc_link(hk_pool *p) {
  pthread_once(&pc_once, pc_make_key);
  plock(&cache_lock);
  p->sprev = NULL;
  p->snext = shared_pools;
  if (shared_pools) shared_pools->sprev = p;
  shared_pools = p;
  if (hk__holds(&pc_holder)) pthread_mutex_lock(&p->lock); /* (a fork handler's pool) */
  punlock(&cache_lock);
}

/* This thread's cache for p, bound now if it has none (evicting another pool's); NULL if there is
 * no memory for the thread's record (the caller then takes the lock for one block). */
static hk_cold __attribute__((noinline)) pcache *pc_bind(hk_pool *p) {
  pthread_once(&pc_once, pc_make_key);
  plock(&cache_lock);
  pcaches *t = t_pc;
  if (!t) {
    if (!pc_pool) pc_pool = hk_pool_new(sizeof(pcaches));
    t = pc_pool ? hk_pool_alloc(pc_pool) : NULL;
    if (!t) {
      punlock(&cache_lock);
      return NULL;
    }
    memset(t, 0, sizeof *t);
    if (hk__tkey_set(&pc_key, t) != 0) {
      hk_pool_free(pc_pool, t);
      punlock(&cache_lock);
      return NULL;
    }
    t_pc = t;
  }
  pcache *c = NULL;
  for (int i = 0; i < PC_WAYS && !c; i++)
    if (!atomic_load_explicit(&t->c[i].pool, memory_order_relaxed)) c = &t->c[i];
  if (!c) {
    c = &t->c[t->clock++ % PC_WAYS];
    pc_unbind(c);
  }
  c->prev = NULL;
  c->next = p->caches;
  if (c->next) c->next->prev = c;
  p->caches = c;
  pc_set_n(c, 0);
  atomic_store_explicit(&c->pool, p, memory_order_relaxed);
  punlock(&cache_lock);
  return c;
}

static inline pcache *pc_get(hk_pool *p) {
  pcaches *t = t_pc;
  if (hk_likely(t != NULL)) {
    for (int i = 0; i < PC_WAYS; i++)
      if (atomic_load_explicit(&t->c[i].pool, memory_order_relaxed) == p) return &t->c[i];
  }
  return pc_bind(p);
}

/* A block from the depot or freshly carved into an empty cache (or straight to the caller when
 * c is NULL); NULL when memory runs out. */
static hk_cold __attribute__((noinline)) void *pc_refill(hk_pool *p, pcache *c) {
  plock(&p->lock);
  size_t dn = p->dn;
  if (dn) {
    /* the depot's top (the most recently flushed) ends on top of the cache */
    size_t k = !c ? 1 : dn < pc_batch(p) ? dn : pc_batch(p);
    void *b = p->stk[dn - 1];
    if (c) memcpy(c->b, p->stk + dn - k, (k - 1) * sizeof(void *));
    p->dn = dn - k;
    if (c) pc_set_n(c, k - 1); /* under the lock, as in pc_flush */
    punlock(&p->lock);
    return b;
  }
  void *b = carve(p), *more[PC_CARVE];
  size_t k = 0;
  size_t batch = PC_CARVE_BYTES / p->stride;
  if (batch > PC_CARVE) batch = PC_CARVE;
  while (b && c && k + 1 < batch && (more[k] = carve(p)) != NULL) k++;
  punlock(&p->lock);
  for (size_t i = 0; i < k; i++) { /* lowest address on top; each marked free */
    void *x = more[k - 1 - i];
    hk__track_peek(x, sizeof(uintptr_t));
    ((uintptr_t *)x)[0] = mark_of(p, x);
    hk__track_release(x, sizeof(uintptr_t));
    c->b[i] = x;
  }
  if (c) pc_set_n(c, k);
  return b;
}

/* A free whose block cannot be recorded (the free stack cannot grow): warned about, not fatal. */
static hk_cold void free_leaked(const hk_pool *p, const void *b) {
  hk__warning("hk_pool_free(%p, %p): no memory to record the free block; it is leaked", handle_of(p), b);
}

/* Takes b (checked: a carved block of p) back; under ASan the whole block is poisoned. */
static inline __attribute__((always_inline)) void pc_free(hk_pool *p, char *b) {
  uintptr_t m = mark_of(p, b);
  if (hk_unlikely(word_open(p, b, 0) == m)) {
    if (hk_unlikely(p->track)) hk__track_release(b, p->stride);
    double_free(p, b, "the block is already free");
  }
#if HK_DEBUG >= 1
  memset(b, POOL_FILL_FREED, p->stride);
#endif
  ((uintptr_t *)b)[0] = m;
  if (hk_unlikely(p->track)) hk__track_release(b, p->stride);
  pcache *c = pc_get(p);
  if (hk_unlikely(!c)) { /* no thread record: straight to the depot */
    plock(&p->lock);
    if (p->dn >= p->stk_slots && stk_grow(p, p->dn + 1) != HK_OK) {
      punlock(&p->lock);
      free_leaked(p, b);
      return;
    }
    p->stk[p->dn++] = b;
    punlock(&p->lock);
    return;
  }
  size_t n = pc_n(c);
  if (hk_unlikely(n == p->pc_cap)) {
    if (!pc_flush(p, c, pc_batch(p))) {
      free_leaked(p, b);
      return;
    }
    n -= pc_batch(p);
  }
  c->b[n] = b;
  pc_set_n(c, n + 1);
}

static inline void *pc_alloc(hk_pool *p) {
  pcache *c = pc_get(p);
  void *b;
  size_t n;
  if (hk_likely(c != NULL) && hk_likely((n = pc_n(c)) != 0)) {
    b = c->b[n - 1];
    pc_set_n(c, n - 1);
  } else {
    b = pc_refill(p, c);
    if (!b) {
      errno = ENOMEM;
      return NULL;
    }
  }
  if (hk_unlikely(p->track)) hk__track_alloc(b, p->stride);
  ((uintptr_t *)b)[0] = 0; /* no longer free */
  return b;
}

/* ---- allocation and free --------------------------------------------------------------------- */

/* Everything the inline hk_pool_alloc does not do: listed pools (shared, annotated, debug),
 * and carving. p is untagged. */
static void *alloc_slow(hk_pool *p) {
  if (hk_unlikely(!live(p))) {
    errno = EINVAL;
    return NULL;
  }
  if (p->shared) return pc_alloc(p);
  if (!p->listed) {
    size_t n = stk_n(p);
    if (n) {
      void *b = p->stk[n - 1];
      stk_set_n(p, n - 1);
      return b;
    }
    void *b = carve(p);
    if (!b) errno = ENOMEM;
    return b;
  }
  lock(p);
  char *b = p->list;
  if (hk_likely(b != NULL)) {
    p->list = (void *)word(p, b, 0);
    if (hk_unlikely(p->track)) hk__track_alloc(b, p->stride);
    p->nlist--;
  } else {
    b = carve(p);
    if (!b) {
      unlock(p);
      errno = ENOMEM;
      return NULL;
    }
    if (hk_unlikely(p->track)) hk__track_alloc(b, p->stride);
  }
  ((void **)b)[1] = NULL;
  unlock(p);
  return b;
}

/* The top the inline paths store after a call with handle h into the head they used
 * (hk__pool_head_of): this thread's dummy head keeps nil_top; a pool's own head gets what it holds
 * now (for a dead pool, what destroy left there: the store changes nothing). */
static inline void **top_after(const hk_pool *h) { return !h || tagged(h) ? nil_top : htop(h); }

hk__pool_got hk__pool_alloc_slow(hk_pool *h) {
  hk__pool_got g;
  if (tagged(h)) { /* shared pools first: every call of theirs comes here */
    hk_pool *p = untag(h);
    if (hk_likely(live(p))) g.block = pc_alloc(p);
    else {
      errno = EINVAL;
      g.block = NULL;
    }
    g.top = nil_top;
    return g;
  }
  g.block = alloc_slow(h);
  g.top = top_after(h);
  return g;
}

void *hk_pool_zalloc(hk_pool *p) {
  void *b = hk_pool_alloc(p);
  if (b) memset(b, 0, hk_pool_block_size(p));
  return b;
}

/* Bad frees are fatal, as in hk_free: the program has lost track of its memory, and going on
 * would hand one block out twice or corrupt a block in use. */
static hk_cold _Noreturn void invalid_free(const hk_pool *p, const void *b, const char *why) {
  hk__fatal("invalid free of %p to pool %p (%s)", b, handle_of(p), why);
}
static hk_cold _Noreturn void double_free(const hk_pool *p, const void *b, const char *why) {
  hk__fatal("double free of %p to pool %p (%s)", b, handle_of(p), why);
}

/* The checks every free that comes here passes: the pointer is the start of a carved block of p
 * (the page layer's segment map first, so a wild pointer is never read). */
static void check_block(hk_pool *p, const char *b) {
  hk__segment *s = hk__segment_of(b);
  if (hk_unlikely(!s || s->kind != HK__SEG_POOL || s->owner != (void *)p)) {
    invalid_free(p, b, s && s->kind == HK__SEG_POOL && s->owner ? "a block of another pool" : "not a block of this pool");
  }
  pool_seg *ps = meta_of(s);
  if (hk_unlikely(b < ps->base || b >= __atomic_load_n(&ps->carve, __ATOMIC_RELAXED) || !is_multiple(p, (uint64_t)(b - ps->base)))) {
    invalid_free(p, b, "not the start of a block of this pool");
  }
}

/* Everything the inline hk_pool_free does not take: listed pools, a full stack, frees outside the
 * window or of a block whose first word may name a slot below top, and the frees of an unchecked pool that would leave more blocks
 * free than were carved. h is the program's handle. */
static void free_slow(hk_pool *h, void *block) {
  if (!block) return;
  hk_pool *p = untag(h);
  if (hk_unlikely(!live(p))) {
    hk__warning("hk_pool_free(%p, %p): not a live pool; ignored", (void *)h, block);
    return;
  }
  char *b = block;
  if (hk_unlikely(p->shared)) /* a shared pool's untagged address: never handed out */
    invalid_free(p, b, "the pool's address without its shared tag");
  if (!p->listed) {
    check_block(p, b);
    if (slotted(p) && in_slot(p, b)) double_free(p, b, "the block is already free");
    size_t n = stk_n(p);
    if (n >= p->carved) double_free(p, b, "more blocks freed than were handed out");
    if (n >= p->stk_slots) {
      /* a checked pool's first stack is committed for the blocks carved (window_n) */
      size_t want = slotted(p) && !p->stk_seg ? min_sz(p->carved, stk_seg_slots()) : 0;
      if (stk_grow(p, want > n + 1 ? want : n + 1) != HK_OK) {
        free_leaked(p, block);
        return;
      }
    }
    if (slotted(p)) ((uintptr_t *)b)[0] = (uintptr_t)&p->stk[n];
    p->stk[n] = b;
    stk_set_n(p, n + 1);
    set_window(p); /* the height grew: the window's room above it may shrink (window_n) */
    return;
  }
  lock(p);
  check_block(p, b);
  if (hk_unlikely(word_open(p, b, 1) == mark_of(p, b)) && on_free_list(p, b)) {
    if (hk_unlikely(p->track)) hk__track_release(b, p->stride); /* still free: poisoned again */
    unlock(p);
    double_free(p, b, "the block is already free");
  } else {
#if HK_DEBUG >= 1
    memset(b, POOL_FILL_FREED, p->stride);
#endif
    ((void **)b)[0] = p->list;
    ((uintptr_t *)b)[1] = mark_of(p, b);
    p->list = b;
    p->nlist++;
    if (hk_unlikely(p->track)) hk__track_release(b, p->stride);
  }
  unlock(p);
}

void **hk__pool_free_slow(hk_pool *h, void *block) {
  hk_pool *p = untag(h);
  if (tagged(h) && hk_likely(block != NULL) && hk_likely(live(p))) { /* shared pools first */
    check_block(p, block);
    pc_free(p, block);
    return nil_top;
  }
  free_slow(h, block);
  return top_after(h);
}

/* ---- cursors (pool.h) ----------------------------------------------------------------------------
 * A cursor is a copy of the head in the caller's registers. While it is attached, the pool's
 * h.top is stale: every call that comes here writes the cursor's top back first (only into a live
 * stack-mode pool: shared and listed pools keep nil_top, which the inline paths send here, and
 * several threads may hold cursors of a shared pool) and hands the head back after. A detached
 * cursor (closed, or opened on something that is not a live pool) gets a head that sends every
 * call here, and goes through the pool's own functions. */
static const hk_pool_head cursor_detached = {(uintptr_t)&nil_page[4096 / sizeof(void *)], HK__POOL_UNCHECKED | HK__POOL_DETACHED, 0, 0};

/* Writes top back; true when the cursor is attached to a live pool (then p->h is its next head).
 * p is untagged. */
static bool cursor_sync(hk_pool *p, void **top, uint64_t win) {
  if ((win & HK__POOL_DETACHED) || !live(p)) return false;
  if (!p->shared && !p->listed) p->h.top = (uintptr_t)top;
  return true;
}

hk_pool_head hk__pool_cursor_attach(hk_pool *h) {
  hk_pool *p = untag(h);
  return live(p) ? p->h : cursor_detached;
}

hk_pool_head hk__pool_cursor_alloc_slow(hk_pool *h, void **top, uint64_t win, void **out) {
  hk_pool *p = untag(h);
  if (!cursor_sync(p, top, win)) {
    *out = hk_pool_alloc(h);
    return cursor_detached;
  }
  *out = hk__pool_alloc_slow(p).block;
  return p->h;
}

hk_pool_head hk__pool_cursor_free_slow(hk_pool *h, void **top, uint64_t win, void *block) {
  hk_pool *p = untag(h);
  if (!cursor_sync(p, top, win)) {
    hk_pool_free(h, block);
    return cursor_detached;
  }
  (void)hk__pool_free_slow(h, block);
  return p->h;
}

hk_pool_head hk__pool_cursor_detach(hk_pool *h, void **top, uint64_t win) {
  cursor_sync(untag(h), top, win);
  return cursor_detached;
}

/* Bulk release: every block becomes uncarved again; retention as for arenas (the free stack's
 * committed memory counts against it first). */
void hk_pool_reset(hk_pool *h) {
  hk_pool *p = untag(h);
  if (!live(p)) {
    hk__warning("hk_pool_reset(%p): not a live pool; ignored", (void *)h);
    return;
  }
  /* Shared: every thread's cached blocks become uncarved with the rest (the program must not use
   * the pool from another thread during the reset, as with any bulk release). */
  if (p->shared) plock(&cache_lock);
  for (pcache *c = p->caches; c; c = c->next) pc_set_n(c, 0);
  lock(p);
  hk_assert_expensive(hk__pool_is_valid(p));
  for (pool_seg *ps = p->first; ps; ps = ps->next) {
    if (ps->carve > ps->base) {
#if HK_DEBUG >= 1
      hk__track_forget(ps->base, (size_t)(ps->carve - ps->base));
      memset(ps->base, POOL_FILL_FREED, (size_t)(ps->carve - ps->base));
#endif
      hk__track_release(ps->base, (size_t)(ps->carve - ps->base));
    }
    __atomic_store_n(&ps->carve, ps->base, __ATOMIC_RELAXED);
  }
  p->list = NULL;
  p->nlist = 0;
  stk_set_n(p, 0);
  if (p->carved > p->peak_before_reset) p->peak_before_reset = p->carved;
  p->carved = 0;
  p->cur = p->first;
  size_t keep = p->retain;
  stk_trim(p, keep);
  set_window(p);
  keep -= min_sz(keep, stk_committed(p));
  for (pool_seg *ps = p->first, *next; ps; ps = next) {
    next = ps->next;
    size_t usable = ps->commit_end > ps->base ? (size_t)(ps->commit_end - ps->base) : 0;
    size_t want = keep < usable ? keep : usable;
    keep -= want;
    if (want == 0 && ps != p->first) {
      seg_free(p, ps);
      continue;
    }
    char *s0 = (char *)ps->seg;
    size_t new_off = hk__round_up((size_t)(ps->base + want - s0), ps->seg->unit);
    if (s0 + new_off < ps->commit_end) {
      size_t n = (size_t)(ps->commit_end - (s0 + new_off));
      hk__segment_decommit(ps->seg, new_off, n);
      account(p, -(ptrdiff_t)n);
      ps->commit_end = s0 + new_off;
    }
  }
  hk_assert_expensive(hk__pool_is_valid(p));
  unlock(p);
  if (p->shared) punlock(&cache_lock);
}

void hk_pool_destroy(hk_pool *h) {
  hk_pool *p = untag(h);
  if (!p) return;
  if (p->magic != POOL_MAGIC) {
    hk__warning("hk_pool_destroy(%p): not a live pool (destroyed twice?); ignored", (void *)h);
    return;
  }
  if (p->shared) { /* the threads' caches forget p (their blocks go with its segments) */
    plock(&cache_lock);
    for (pcache *c = p->caches, *next; c; c = next) {
      next = c->next;
      pc_set_n(c, 0);
      c->next = c->prev = NULL;
      atomic_store_explicit(&c->pool, NULL, memory_order_relaxed);
    }
    p->caches = NULL;
    if (p->sprev) p->sprev->snext = p->snext;
    else shared_pools = p->snext;
    if (p->snext) p->snext->sprev = p->sprev;
    if (hk__holds(&pc_holder)) pthread_mutex_unlock(&p->lock); /* (destroyed by a fork handler) */
    punlock(&cache_lock);
  }
  hk_assert_expensive(hk__pool_is_valid(p));
  p->magic = 0;
  /* every later inline call goes out of line, where the dead pool is refused (its top pointed into
   * the freed stack: an allocation handed out a block of the dead pool, a free pushed into it) */
  p->h.top = (uintptr_t)nil_top;
  p->h.win = HK__POOL_UNCHECKED;
  pthread_mutex_destroy(&p->lock);
  if (p->stk_seg) {
    account(p, -(ptrdiff_t)stk_committed(p));
    hk__segment_free(p->stk_seg);
    p->stk_seg = NULL;
  }
  while (p->last != p->first) seg_free(p, p->last);
  seg_free(p, p->first);
}

size_t hk_pool_block_size(const hk_pool *h) {
  const hk_pool *p = untag(h);
  return live(p) ? p->stride : 0;
}

bool hk_pool_contains(const hk_pool *h, const void *q) {
  const hk_pool *p = untag(h);
  if (!live(p) || !q) return false;
  hk__segment *s = hk__segment_of(q);
  if (!s || s->kind != HK__SEG_POOL || s->owner != (void *)p) return false;
  hk_pool *mp = (hk_pool *)p;
  lock(mp);
  pool_seg *ps = meta_of(s);
  bool live = false;
  if ((const char *)q >= ps->base && (const char *)q < ps->carve) {
    const char *b = ps->base + slot_of(p, (size_t)((const char *)q - ps->base)) * p->stride;
    if (p->shared) {
      live = word_open(p, b, 0) != mark_of(p, b);
      if (hk_unlikely(p->track) && !live) hk__track_release((char *)b, sizeof(void *));
    } else if (slotted(p)) {
      live = !in_slot(p, b);
    } else if (!p->listed) {
      live = !on_free_list(p, b);
    } else {
      live = !(word_open(p, b, 1) == mark_of(p, b) && on_free_list(p, b));
      if (hk_unlikely(p->track) && !live) hk__track_release((char *)b + sizeof(void *), sizeof(void *));
    }
  }
  unlock(mp);
  return live;
}

/* A block of p that was carved (for the entries of the free stack). */
static bool is_carved_block(const hk_pool *p, const void *b) {
  hk__segment *s = hk__segment_of(b);
  if (!s || s->kind != HK__SEG_POOL || s->owner != (void *)p) return false;
  pool_seg *ps = meta_of(s);
  return (const char *)b >= ps->base && (const char *)b < ps->carve && is_multiple(p, (uint64_t)((const char *)b - ps->base));
}

bool hk__pool_is_valid(hk_pool *h) {
  hk_pool *p = untag(h);
  size_t carved = 0, n = 0, nf = 0;
  bool after = false;
  for (pool_seg *ps = p->first; ps; ps = ps->next) {
    if (ps->carve < ps->base || ps->carve > ps->limit || (size_t)(ps->carve - ps->base) % p->stride) return false;
    if (after && ps->carve != ps->base) return false;
    if (ps->carve > ps->commit_end) return false;
    carved += (size_t)(ps->carve - ps->base) / p->stride;
    if (ps == p->cur) after = true;
    n++;
  }
  if (p->listed != (!p->shared && (p->track || HK_DEBUG >= 1))) return false;
  if ((p->unchecked || p->listed || p->shared) != ((p->h.win & HK__POOL_UNCHECKED) != 0)) return false;
  if (p->shared) {
    if (htop(p) != nil_top || p->h.win != HK__POOL_UNCHECKED || p->list || p->nlist || p->dn > p->stk_slots || p->dn > p->carved) return false;
    for (size_t i = 0; i < p->dn; i++)
      if (!is_carved_block(p, p->stk[i]) || word(p, p->stk[i], 0) != mark_of(p, p->stk[i])) return false;
  } else if (p->listed) {
    if (htop(p) != nil_top || p->h.win != HK__POOL_UNCHECKED || p->stk_seg || p->stk) return false;
    for (const char *f = p->list; f; f = (const char *)word(p, f, 0)) {
      if (++nf > p->carved) return false;
      hk__segment *s = hk__segment_of(f);
      if (!s || s->owner != (void *)p || word(p, f, 1) != mark_of(p, f)) return false;
    }
    if (nf != p->nlist) return false;
  } else {
    if (p->list || p->nlist) return false;
    size_t n = stk_n(p);
    if (n > p->carved || n > p->stk_slots) return false;
    if (p->stk_seg && (p->stk != (void **)((char *)p->stk_seg + stk_hdr()) || p->stk[-1] != NULL)) return false;
    if (!p->stk_seg && (p->stk || p->stk_slots || htop(p) != nil_top)) return false;
    if (p->stk && (htop(p) < p->stk || (n == 0) != (htop(p)[-1] == NULL))) return false;
    for (size_t i = 0; i < n; i++) {
      if (!is_carved_block(p, p->stk[i])) return false;
      if (slotted(p) && word0(p->stk[i]) != (uintptr_t)&p->stk[i]) return false;
    }
    if (slotted(p)) {
      uint64_t nwin = p->h.win >> HK__POOL_NWIN_SHIFT;
      if ((p->h.win & (((uint64_t)1 << HK__POOL_NWIN_SHIFT) - 1)) != p->tz || p->h.inv != p->inv ||
          p->h.base != (uintptr_t)p->cur->base) return false;
      /* the window (window_n): every block carved in p->cur while the stack has a slot for every
       * carved block, else no more than the stack can take: height + live window blocks <= slots */
      uint64_t all = p->stk_seg && p->stk_seg->size <= HK_SEGMENT_SIZE ? slot_of(p, (size_t)(p->cur->carve - p->cur->base)) : 0;
      if (nwin > all || (p->carved <= p->stk_slots && nwin != all)) return false;
      size_t free_in = 0;
      for (size_t i = 0; i < n; i++) {
        uint64_t off = (uint64_t)((uintptr_t)p->stk[i] - p->h.base);
        if ((uintptr_t)p->stk[i] >= p->h.base && off / p->stride < nwin) free_in++;
      }
      if (n + (nwin - free_in) > p->stk_slots && nwin) return false;
    }
  }
  return n == p->nsegs && carved == p->carved;
}

void hk_pool_stats_get(hk_pool *h, hk_pool_stats *out) {
  hk_pool *p = untag(h);
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!live(p)) return;
  if (p->shared) plock(&cache_lock); /* nfree counts the threads' cached blocks */
  lock(p);
  hk_assert_expensive(hk__pool_is_valid(p));
  out->block_size = p->stride;
  /* one count: the owners of a shared pool's caches change theirs without our locks */
  size_t nf = nfree(p);
  out->in_use = p->carved - nf;
  out->in_use_peak = p->carved > p->peak_before_reset ? p->carved : p->peak_before_reset;
  out->free_blocks = nf;
  out->carved = p->carved;
  out->committed = p->committed;
  out->committed_peak = p->committed_peak;
  out->reserved = p->reserved;
  out->segments = p->nsegs;
  out->bad_frees = p->bad_frees;
  unlock(p);
  if (p->shared) punlock(&cache_lock);
}
