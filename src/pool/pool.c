/* Pools of fixed-size blocks, carved from 4 MiB segments of the page layer.
 *
 * Layout of a pool segment: [hk__segment][pool_seg][hk_pool, first segment only][bitmap][blocks].
 * The free list is LIFO and threads through the first word of each free block, so the most
 * recently freed (cache-warm) block is reused first. Blocks are carved lazily: a pool only touches
 * memory it hands out. A free block's second word holds a mark (a per-pool secret xor the block's
 * address) that allocation clears, so a bad free is found in O(1): the pointer must be in a pool
 * segment owned by p, at a multiple of the stride below the carve pointer, and not marked; a
 * marked block is confirmed free by a walk of the free list (a user value equal to the mark is
 * the only case that walks). Blocks are therefore at least 16 bytes. Division by the stride is a
 * multiply and a shift (offsets are below 2^22, so a 33-bit reciprocal is exact).
 *
 * The single-threaded allocation fast path (pop, clear the mark, count) is inline in pool.h and
 * reads hk_pool_head; shared pools and sanitizer/valgrind runs keep head.fast false and come here.
 */
#include "common/internal.h"
#include "page/segment.h"
#include "arena/track.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define POOL_MAGIC 0x504f4f4cu /* "POOL" */
#define POOL_DEFAULT_STEP ((size_t)64 << 10)
#define POOL_DEFAULT_RETAIN ((size_t)1 << 20)
#define POOL_FILL_FREED 0xDF

/* Invariants (checked by hk__pool_is_valid): base <= carve <= limit; carve <= commit_end;
 * (carve - base) % stride == 0; a segment after the pool's current one has carve == base. */
typedef struct pool_seg {
  hk__segment *seg;
  struct pool_seg *next, *prev;
  char *base, *carve, *commit_end, *limit, *poisoned_end;
} pool_seg;

/* Blocks in use are carved - h.nfree, and their peak is the largest carved count: a block is only
 * carved when the free list is empty, that is when every carved block is in use. So the fast
 * paths only count the free list.
 * Invariants (hk__pool_is_valid): h.nfree <= carved == sum over segments of
 * (carve - base) / stride; the free list has h.nfree blocks, each marked; h.fast == !shared &&
 * !track. */
struct hk_pool {
  hk_pool_head h; /* first: the inline fast path reads it */
  pool_seg *cur, *first, *last;
  size_t align;
  uint64_t div_m; /* offset / stride == (offset * div_m) >> div_shift for offsets below 4 MiB */
  unsigned div_shift;
  bool shared;
  bool track; /* annotate every block for ASan/valgrind (kept off the fast path otherwise) */
  uint32_t magic;
  size_t commit_step, retain;
  size_t carved, peak_before_reset, committed, committed_peak, reserved, nsegs, bad_frees;
  pthread_mutex_t lock;
};

static inline size_t seg_meta_off(void) { return hk__align_up(sizeof(hk__segment), 64); }
static inline pool_seg *meta_of(hk__segment *s) { return (pool_seg *)((char *)s + seg_meta_off()); }
static inline void lock(hk_pool *p) { if (p->shared) pthread_mutex_lock(&p->lock); }
static inline void unlock(hk_pool *p) { if (p->shared) pthread_mutex_unlock(&p->lock); }
static inline size_t slot_of(const hk_pool *p, size_t off) { return (size_t)(((uint64_t)off * p->div_m) >> p->div_shift); }
static inline uintptr_t mark_of(const hk_pool *p, const void *b) { return p->h.secret ^ (uintptr_t)b; }
/* The inline free handles blocks of the first segment; keep its view of that segment current. */
static inline void sync_first(hk_pool *p) { p->h.carved_bytes = (size_t)(p->first->carve - p->first->base); }
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
/* True if b is on the free list: the slow confirmation behind a matching mark. */
static hk_cold bool on_free_list(const hk_pool *p, const void *b) {
  for (const char *f = p->h.free; f; f = (const char *)word(p, f, 0))
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
  ps->commit_end = ps->poisoned_end = s0 + hk__align_up(hdr, s->unit);
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
  p->h.stride = stride;
  p->align = align;
  unsigned l = 0;
  while (((size_t)1 << l) < stride) l++;
  p->div_shift = 32 + l;
  p->div_m = (((uint64_t)1 << p->div_shift) + stride - 1) / stride;
  p->h.tz = (unsigned)__builtin_ctzll(stride);
  uint64_t odd = stride >> p->h.tz, inv = odd; /* Newton: each step doubles the correct bits */
  for (int i = 0; i < 5; i++) inv *= 2 - odd * inv;
  p->h.inv = inv;
  p->h.lim = UINT64_MAX / stride;
  p->shared = opt->shared;
  p->track = hk__track_per_alloc();
  /* Debug builds fill freed blocks, which the inline paths do not: keep them out there. */
  p->h.fast = !p->shared && !p->track && HK_DEBUG == 0;
  p->h.base = ps->base;
  p->h.secret = (ps->seg->cookie | 1) * (uintptr_t)0x9E3779B97F4A7C15ull;
  p->commit_step = opt->commit_step ? hk__align_up(opt->commit_step, 4096) : POOL_DEFAULT_STEP;
  p->retain = opt->retain ? opt->retain : POOL_DEFAULT_RETAIN;
  pthread_mutex_init(&p->lock, NULL);
  ps->seg->owner = p;
  account(p, ps->commit_end - (char *)ps->seg);
  p->reserved = ps->seg->size;
  p->nsegs = 1;
  p->cur = p->first = p->last = ps;
  return p;
}

hk_pool *hk_pool_new(size_t block_size) {
  hk_pool_options o = {0};
  o.block_size = block_size;
  return hk_pool_new_ex(&o);
}

/* No free block: carve the next one, committing more or moving to the next segment. */
static hk_cold void *carve(hk_pool *p) {
  for (;;) {
    pool_seg *ps = p->cur;
    if (ps->carve + p->h.stride <= ps->commit_end) {
      char *b = ps->carve;
      ps->carve += p->h.stride;
      p->carved++;
      if (ps == p->first) sync_first(p);
      return b;
    }
    if (ps->carve + p->h.stride <= ps->limit) {
      char *s0 = (char *)ps->seg;
      size_t unit = ps->seg->unit;
      size_t step = hk__align_up(p->commit_step > unit ? p->commit_step : unit, unit);
      size_t new_off = hk__align_up((size_t)(ps->carve + p->h.stride - s0), step);
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
      pool_seg *n = seg_new(p, p->h.stride, p->align, false);
      if (!n) return NULL;
      n->prev = ps;
      ps->next = n;
      p->last = n;
    }
    p->cur = ps->next;
  }
}

/* Everything the inline hk_pool_alloc does not do: shared pools, tool annotations, carving. */
void *hk__pool_alloc_slow(hk_pool *p) {
  if (hk_unlikely(!p || p->magic != POOL_MAGIC)) {
    errno = EINVAL;
    return NULL;
  }
  lock(p);
  char *b = p->h.free;
  if (hk_likely(b != NULL)) {
    p->h.free = (void *)word(p, b, 0);
    if (hk_unlikely(p->track)) hk__track_alloc(b, p->h.stride);
    p->h.nfree--;
  } else {
    b = carve(p);
    if (!b) {
      unlock(p);
      errno = ENOMEM;
      return NULL;
    }
    if (hk_unlikely(p->track)) hk__track_alloc(b, p->h.stride);
  }
  ((void **)b)[1] = NULL;
  unlock(p);
  return b;
}

void *hk_pool_zalloc(hk_pool *p) {
  void *b = hk_pool_alloc(p);
  if (b) memset(b, 0, hk_pool_block_size(p));
  return b;
}

static hk_cold void bad_free(hk_pool *p, const void *b, const char *why) {
  p->bad_frees++;
  hk__warning("hk_pool_free(%p, %p): %s; ignored", (void *)p, b, why);
}

/* Everything the inline hk_pool_free does not take: other segments, shared pools, annotations,
 * and every bad free. */
void hk__pool_free_slow(hk_pool *p, void *block) {
  if (!block) return;
  if (hk_unlikely(!p || p->magic != POOL_MAGIC)) {
    hk__warning("hk_pool_free(%p, %p): not a live pool; ignored", (void *)p, block);
    return;
  }
  char *b = block;
  hk__segment *s = hk__segment_of(b);
  lock(p);
  if (hk_unlikely(!s || s->kind != HK__SEG_POOL || s->owner != (void *)p)) {
    bad_free(p, b, "not a block of this pool");
    unlock(p);
    return;
  }
  pool_seg *ps = meta_of(s);
  size_t off = (size_t)(b - ps->base);
  if (hk_unlikely(b < ps->base || b >= ps->carve || !hk__pool_is_multiple(&p->h, off))) {
    bad_free(p, b, "not the start of a block of this pool");
  } else if (hk_unlikely(word_open(p, b, 1) == mark_of(p, b)) && on_free_list(p, b)) {
    if (hk_unlikely(p->track)) hk__track_release(b, p->h.stride); /* still free: poisoned again */
    bad_free(p, b, "double free (the block is already free)");
  } else {
#if HK_DEBUG >= 1
    memset(b, POOL_FILL_FREED, p->h.stride);
#endif
    ((void **)b)[0] = p->h.free;
    ((uintptr_t *)b)[1] = mark_of(p, b);
    p->h.free = b;
    p->h.nfree++;
    if (hk_unlikely(p->track)) hk__track_release(b, p->h.stride);
  }
  unlock(p);
}

/* Bulk release: every block becomes uncarved again; retention as for arenas. */
void hk_pool_reset(hk_pool *p) {
  if (!p || p->magic != POOL_MAGIC) {
    hk__warning("hk_pool_reset(%p): not a live pool; ignored", (void *)p);
    return;
  }
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
    ps->carve = ps->base;
  }
  p->h.free = NULL;
  if (p->carved > p->peak_before_reset) p->peak_before_reset = p->carved;
  p->h.nfree = p->carved = 0;
  p->cur = p->first;
  sync_first(p);
  size_t keep = p->retain;
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
    size_t new_off = hk__align_up((size_t)(ps->base + want - s0), ps->seg->unit);
    if (s0 + new_off < ps->commit_end) {
      size_t n = (size_t)(ps->commit_end - (s0 + new_off));
      hk__segment_decommit(ps->seg, new_off, n);
      account(p, -(ptrdiff_t)n);
      ps->commit_end = s0 + new_off;
    }
  }
  unlock(p);
}

void hk_pool_destroy(hk_pool *p) {
  if (!p) return;
  if (p->magic != POOL_MAGIC) {
    hk__warning("hk_pool_destroy(%p): not a live pool (destroyed twice?); ignored", (void *)p);
    return;
  }
  hk_assert_expensive(hk__pool_is_valid(p));
  p->magic = 0;
  pthread_mutex_destroy(&p->lock);
  while (p->last != p->first) seg_free(p, p->last);
  seg_free(p, p->first);
}

size_t hk_pool_block_size(const hk_pool *p) { return p && p->magic == POOL_MAGIC ? p->h.stride : 0; }

bool hk_pool_contains(const hk_pool *p, const void *q) {
  if (!p || p->magic != POOL_MAGIC || !q) return false;
  hk__segment *s = hk__segment_of(q);
  if (!s || s->kind != HK__SEG_POOL || s->owner != (void *)p) return false;
  hk_pool *mp = (hk_pool *)p;
  lock(mp);
  pool_seg *ps = meta_of(s);
  bool live = false;
  if ((const char *)q >= ps->base && (const char *)q < ps->carve) {
    const char *b = ps->base + slot_of(p, (size_t)((const char *)q - ps->base)) * p->h.stride;
    live = !(word_open(p, b, 1) == mark_of(p, b) && on_free_list(p, b));
    if (hk_unlikely(p->track) && !live) hk__track_release((char *)b + sizeof(void *), sizeof(void *));
  }
  unlock(mp);
  return live;
}

bool hk__pool_is_valid(hk_pool *p) {
  size_t carved = 0, n = 0, nfree = 0;
  bool after = false;
  for (pool_seg *ps = p->first; ps; ps = ps->next) {
    if (ps->carve < ps->base || ps->carve > ps->limit || (size_t)(ps->carve - ps->base) % p->h.stride) return false;
    if (after && ps->carve != ps->base) return false;
    if (ps->carve > ps->commit_end) return false;
    carved += (size_t)(ps->carve - ps->base) / p->h.stride;
    if (ps == p->cur) after = true;
    n++;
  }
  for (const char *f = p->h.free; f; f = (const char *)word(p, f, 0)) {
    if (++nfree > p->carved) return false;
    hk__segment *s = hk__segment_of(f);
    if (!s || s->owner != (void *)p || word(p, f, 1) != mark_of(p, f)) return false;
  }
  if (nfree != p->h.nfree || p->h.fast != (!p->shared && !p->track && HK_DEBUG == 0)) return false;
  if (p->h.base != p->first->base || p->h.carved_bytes != (size_t)(p->first->carve - p->first->base)) return false;
  return n == p->nsegs && carved == p->carved && p->h.nfree <= p->carved;
}

void hk_pool_stats_get(hk_pool *p, hk_pool_stats *out) {
  memset(out, 0, sizeof *out);
  if (!p || p->magic != POOL_MAGIC) return;
  lock(p);
  hk_assert_expensive(hk__pool_is_valid(p));
  out->block_size = p->h.stride;
  out->in_use = p->carved - p->h.nfree;
  out->in_use_peak = p->carved > p->peak_before_reset ? p->carved : p->peak_before_reset;
  out->free_blocks = p->h.nfree;
  out->carved = p->carved;
  out->committed = p->committed;
  out->committed_peak = p->committed_peak;
  out->reserved = p->reserved;
  out->segments = p->nsegs;
  out->bad_frees = p->bad_frees;
  unlock(p);
}
