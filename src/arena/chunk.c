/* Arena chunks: reservation, commit in steps, chaining, budgets and trimming.
 * Every byte an arena holds is in a chunk, and every chunk is one segment of the page layer, so
 * the page layer's statistics and purging see arenas like any other client. */
#include "arena/arena_internal.h"

#include <string.h>

hk__arena_globals hk__arena_g;

size_t hk__arena_header_size(bool with_arena) {
  size_t n = hk__align_up(sizeof(hk__segment), 64) + hk__align_up(sizeof(hk__arena_chunk), 64);
  if (with_arena) n += hk__align_up(sizeof(hk_arena), 64);
  return n;
}

static inline bool poisoning(const hk_arena *a) { return a->track; }


/* Poisons [from, to), at most HK__ARENA_TRACK_MAX of it. */
static void release_capped(char *from, char *to) {
  if (to <= from) return;
  size_t n = (size_t)(to - from);
  hk__track_release(from, n < HK__ARENA_TRACK_MAX ? n : HK__ARENA_TRACK_MAX);
}

static void atomic_max(_Atomic size_t *x, size_t v) {
  size_t old = atomic_load_explicit(x, memory_order_relaxed);
  while (old < v && !atomic_compare_exchange_weak_explicit(x, &old, v, memory_order_relaxed, memory_order_relaxed)) {
  }
}

void hk__arena_account_commit(hk_arena *a, ptrdiff_t bytes) {
  a->committed += (size_t)bytes;
  if (a->committed > a->committed_peak) a->committed_peak = a->committed;
  size_t g = atomic_fetch_add_explicit(&hk__arena_g.committed, (size_t)bytes, memory_order_relaxed) + (size_t)bytes;
  if (bytes > 0) atomic_max(&hk__arena_g.committed_peak, g);
  hk__page_inuse_add(bytes);
}

void hk__arena_chunk_init(hk_arena *a, hk__arena_chunk *c, hk__segment *seg, size_t hdr) {
  char *s0 = (char *)seg;
  c->seg = seg;
  c->next = c->prev = NULL;
  c->base = s0 + hdr;
  c->limit = s0 + seg->size;
  atomic_store_explicit(&c->pos, (uintptr_t)c->base, memory_order_relaxed);
  char *ce = s0 + hk__round_up(hdr, seg->unit);
  atomic_store_explicit(&c->commit_end, (uintptr_t)ce, memory_order_release);
  c->poisoned_end = ce;
  seg->owner = a;
  /* The rest of the header unit is usable now; it is poisoned until handed out. */
  if (poisoning(a)) release_capped(c->base, ce);
}

/* Budgets: charging walks from the arena to the root; the first arena whose limit would be passed
 * is asked (through its release callback) to free memory, and the walk is retried. */
/* Set while this thread runs a release callback. A callback that allocated from an arena under
 * the same budget (a sibling, say) hit that budget again, called itself again, and so on until the
 * stack overflowed: release callbacks do not nest, a commit from inside one that passes a budget
 * fails at once. */
static __thread bool t_releasing;

int hk__arena_charge(hk_arena *a, size_t n) {
  for (int tries = 0;; tries++) {
    hk_arena *failed = NULL;
    for (hk_arena *x = a; x; x = x->parent) {
      size_t old = atomic_load_explicit(&x->tree_committed, memory_order_relaxed);
      for (;;) {
        if (x->budget && (old + n < old || old + n > x->budget)) { failed = x; break; }
        if (atomic_compare_exchange_weak_explicit(&x->tree_committed, &old, old + n, memory_order_relaxed,
                                                  memory_order_relaxed))
          break;
      }
      if (failed) break;
    }
    if (!failed) return HK_OK;
    for (hk_arena *y = a; y != failed; y = y->parent)
      atomic_fetch_sub_explicit(&y->tree_committed, n, memory_order_relaxed);
    if (tries >= HK__ARENA_RELEASE_RETRIES || !failed->release || t_releasing) return HK_ENOMEM;
    t_releasing = true;
    int retry = failed->release(failed, n, failed->release_arg);
    t_releasing = false;
    if (!retry) return HK_ENOMEM;
  }
}

void hk__arena_uncharge(hk_arena *a, size_t n) {
  for (hk_arena *x = a; x; x = x->parent) atomic_fetch_sub_explicit(&x->tree_committed, n, memory_order_relaxed);
}

int hk__arena_commit_to(hk_arena *a, hk__arena_chunk *c, char *from, char *end) {
  char *ce = hk__chunk_commit_end(c);
  if (end <= ce) return HK_OK;
  hk_assert(end <= c->limit);
  char *s0 = (char *)c->seg;
  size_t unit = c->seg->unit;
  size_t step = hk__round_up(a->commit_step > unit ? a->commit_step : unit, unit);
  size_t new_off = hk__round_up((size_t)(end - s0), step);
  if (new_off > c->seg->size) new_off = c->seg->size;
  size_t old_off = (size_t)(ce - s0), n = new_off - old_off;
  if (hk__arena_charge(a, n) != HK_OK) return HK_ENOMEM;
  if (hk__segment_commit(c->seg, old_off, n, NULL) != HK_OK) {
    hk__arena_uncharge(a, n);
    return HK_ENOMEM;
  }
  if (poisoning(a)) {
    /* Not the claim [from, end) itself, but its last granule (the rounding past the requested
     * size: the allocation unpoisons exactly what was asked for). Before it: padding or other
     * threads' claims, which unpoison theirs once they see this commit. */
    char *own = end - HK_ARENA_ALIGN > from ? end - HK_ARENA_ALIGN : from;
    release_capped(ce, from < ce ? ce : from);
    release_capped(own < ce ? ce : own, s0 + new_off);
  }
  if (s0 + new_off > c->poisoned_end) c->poisoned_end = s0 + new_off;
  hk__arena_account_commit(a, (ptrdiff_t)n);
  atomic_store_explicit(&c->commit_end, (uintptr_t)(s0 + new_off), memory_order_release);
  return HK_OK;
}

/* Allocation moves on to a spare chunk that is large enough, or to a new reservation placed right
 * after the current chunk, so that the list stays in allocation order (restore relies on it). */
int hk__arena_next_chunk(hk_arena *a, size_t need) {
  hk__arena_chunk *c = hk__arena_cur(a);
  if (!a->slow_only) atomic_store_explicit(&c->pos, (uintptr_t)a->head.cur, memory_order_relaxed);
  hk__arena_chunk *n = c->next;
  if (!n || (size_t)(n->limit - n->base) < need) {
    size_t hdr = hk__arena_header_size(false);
    if (need > ((size_t)1 << 46)) return HK_ENOMEM;
    size_t reserve = a->next_reserve;
    bool oversized = hdr + need > reserve;
    if (oversized) reserve = hk__align_up(hdr + need, HK_SEGMENT_SIZE);
    size_t hdr_commit = hk__round_up(hdr, reserve / HK_SEGMENT_UNITS);
    if (hk__arena_charge(a, hdr_commit) != HK_OK) return HK_ENOMEM;
    /* (a chunk for one oversized allocation is that allocation: hk_arena_alloc of 64 GiB on a
     * 24 GiB machine succeeded, where malloc fails, and hk_arena_calloc's memset of it brought the
     * OOM killer) */
    hk__segment *seg = oversized ? hk__segment_alloc_block(reserve, HK_SEGMENT_SIZE, HK__SEG_ARENA, hdr)
                                 : hk__segment_alloc(reserve, HK_SEGMENT_SIZE, HK__SEG_ARENA, hdr);
    if (!seg) {
      hk__arena_uncharge(a, hdr_commit);
      return HK_ENOMEM;
    }
    hk_assert(seg->unit == reserve / HK_SEGMENT_UNITS || seg->size != reserve);
    n = (hk__arena_chunk *)((char *)seg + hk__align_up(sizeof(hk__segment), 64));
    hk__arena_chunk_init(a, n, seg, hdr);
    size_t real_commit = (size_t)(hk__chunk_commit_end(n) - (char *)seg);
    /* The page layer chose another unit (a larger segment from its cache): charge what it did. That
     * charge was ignored when it failed, and the arena held more than its budget (128 KiB over,
     * arena.budget's `cached_unit`); it fails the allocation now, as the header's charge does. */
    if (real_commit > hdr_commit && hk__arena_charge(a, real_commit - hdr_commit) != HK_OK) {
      hk__track_forget(n->base, (size_t)(n->poisoned_end - n->base));
      hk__segment_free(seg);
      hk__arena_uncharge(a, hdr_commit);
      return HK_ENOMEM;
    }
    if (real_commit < hdr_commit) hk__arena_uncharge(a, hdr_commit - real_commit);
    hk__arena_account_commit(a, (ptrdiff_t)real_commit);
    a->reserved += seg->size;
    a->nchunks++;
    atomic_fetch_add_explicit(&hk__arena_g.reserved, seg->size, memory_order_relaxed);
    atomic_fetch_add_explicit(&hk__arena_g.chunks, 1, memory_order_relaxed);
    n->prev = c;
    n->next = c->next;
    if (c->next) c->next->prev = n;
    else a->last = n;
    c->next = n;
    if (a->next_reserve < HK__ARENA_MAX_RESERVE) a->next_reserve *= 2;
  }
  hk_assert(hk__chunk_pos(n) == (uintptr_t)n->base);
  atomic_store_explicit(&a->cur, n, memory_order_release);
  if (!a->slow_only) {
    a->head.cur = n->base;
    a->head.end = hk__chunk_commit_end(n);
  }
  hk__arena_sync_stats(a);
  return HK_OK;
}

void hk__arena_chunk_free(hk_arena *a, hk__arena_chunk *c) {
  if (c->prev) c->prev->next = c->next;
  else a->first = c->next;
  if (c->next) c->next->prev = c->prev;
  else a->last = c->prev;
  hk__segment *seg = c->seg;
  size_t committed = (size_t)(hk__chunk_commit_end(c) - (char *)seg);
  if (c->poisoned_end > c->base) hk__track_unpoison_large(c->base, (size_t)(c->poisoned_end - c->base), true);
  hk__arena_uncharge(a, committed);
  hk__arena_account_commit(a, -(ptrdiff_t)committed);
  a->reserved -= seg->size;
  a->nchunks--;
  atomic_fetch_sub_explicit(&hk__arena_g.reserved, seg->size, memory_order_relaxed);
  atomic_fetch_sub_explicit(&hk__arena_g.chunks, 1, memory_order_relaxed);
  /* For the first chunk this also frees the arena itself: nothing may touch a afterwards. */
  hk__segment_free(seg);
}

void hk__arena_release_range(hk_arena *a, char *from, char *to) {
  if (to <= from) return;
  size_t n = (size_t)(to - from);
  if (n > HK__ARENA_TRACK_MAX) n = HK__ARENA_TRACK_MAX; /* (filling the rest would make it resident) */
#if HK_DEBUG >= 1
  if (poisoning(a)) hk__track_forget(from, n);
  memset(from, HK_ARENA_FILL_FREED, n);
#endif
  if (poisoning(a)) hk__track_release(from, n);
}

/* Keeps, walking the chunks in order, what is in use, and committed memory while the first
 * `retain` bytes (in use included) last; the rest is decommitted and spare chunks that keep
 * nothing are returned to the page layer. */
void hk__arena_trim(hk_arena *a) {
  size_t keep = a->retain;
  hk__arena_chunk *cur = hk__arena_cur(a);
  bool after = false;
  for (hk__arena_chunk *c = a->first, *next; c; c = next) {
    next = c->next;
    char *used = after ? c->base : (c == cur ? hk__arena_pos(a) : (char *)hk__chunk_pos(c));
    if (used > c->limit) used = c->limit;
    char *ce = hk__chunk_commit_end(c);
    size_t usable = ce > c->base ? (size_t)(ce - c->base) : 0;
    size_t want = (size_t)(used - c->base);
    size_t extra = keep < usable ? keep : usable;
    if (extra > want) want = extra;
    keep -= keep < want ? keep : want;
    if (after && want == 0 && c != a->first) {
      hk__arena_chunk_free(a, c);
      continue;
    }
    char *s0 = (char *)c->seg;
    size_t new_off = hk__round_up((size_t)(c->base + want - s0), c->seg->unit);
    if (s0 + new_off < ce) {
      size_t n = (size_t)(ce - (s0 + new_off));
      hk__segment_decommit(c->seg, new_off, n);
      hk__arena_uncharge(a, n);
      hk__arena_account_commit(a, -(ptrdiff_t)n);
      atomic_store_explicit(&c->commit_end, (uintptr_t)(s0 + new_off), memory_order_release);
    }
    if (c == cur) after = true;
  }
  if (!a->slow_only) a->head.end = hk__chunk_commit_end(cur);
}

bool hk__arena_chunk_is_valid(const hk_arena *a, const hk__arena_chunk *c) {
  char *s0 = (char *)c->seg;
  char *pos = (char *)hk__chunk_pos(c), *ce = hk__chunk_commit_end(c);
  if (c->seg->kind != HK__SEG_ARENA || c->seg->owner != (void *)a) return false;
  if (c->limit != s0 + c->seg->size || c->base > c->limit) return false;
  if (pos < c->base || pos > c->limit || ce < c->base || ce > c->limit) return false;
  if ((size_t)(ce - s0) % c->seg->unit != 0 && ce != c->limit) return false;
  if (c->next && c->next->prev != c) return false;
  return true;
}
