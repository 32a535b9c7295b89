/* Allocation: the mutator's slow path (refilling its nursery buffers, the heap limit and the OOM
 * handler, the stress mode, large objects) and the collector's own bump allocators (survivor
 * blocks, and the Immix hole allocator of the mature space). */
#include "gc/gc_internal.h"

/* ---- the collector's bump allocators (heap lock held, world stopped) --------------------------- */

/* F_CUR changes atomically: in a parallel phase other threads read the flags of the same block
 * (a copy's block) without the lock. */
static inline void block_flags_or(gc_block *b, uint8_t f) { __atomic_fetch_or(&b->flags, f, __ATOMIC_RELAXED); }

void hk__gc_bump_reset(gc_bump *a) {
  if (a->block) __atomic_fetch_and(&a->block->flags, (uint8_t)~F_CUR, __ATOMIC_RELAXED);
  a->cursor = a->limit = NULL;
  a->block = NULL;
  a->line = 0;
}

static void *bump(gc_bump *a, size_t total) {
  char *p = a->cursor;
  if (p && total <= (size_t)(a->limit - p)) {
    a->cursor = p + total;
    return p;
  }
  return NULL;
}

static bool fresh_block(hk_gc_heap *h, gc_bump *a, int state, bool data) {
  gc_block *b = hk__gc_block_take(h, state, data);
  if (!b) hk__fatal("gc: out of memory during a collection (the OS refused a block)");
  hk__gc_bump_reset(a);
  block_flags_or(b, F_CUR);
  a->block = b;
  a->cursor = block_start(b);
  a->limit = a->cursor + GC_BLOCK_SIZE;
  a->line = GC_LINES;
  return true;
}

/* Next run of lines not marked in the last full collection, in the current block or the next
 * recyclable one; false when no recyclable block is left. */
static bool next_hole(hk_gc_heap *h, gc_bump *a, bool data) {
  for (;;) {
    gc_block *b = a->block;
    if (b && a->line < GC_LINES) {
      const uint8_t *lm = seg_of_block(b)->lines[block_no(b)];
      unsigned l = a->line;
      while (l < GC_LINES && lm[l] == h->epoch) l++;
      unsigned e = l;
      while (e < GC_LINES && lm[e] != h->epoch) e++;
      a->line = e;
      if (l < GC_LINES) {
        a->cursor = block_start(b) + (size_t)l * GC_LINE_SIZE;
        a->limit = block_start(b) + (size_t)e * GC_LINE_SIZE;
        return true;
      }
    }
    hk__gc_bump_reset(a);
    gc_block *r;
    do {
      r = h->recyclable[data];
      if (!r) return false;
      h->recyclable[data] = r->next;
      r->next = NULL;
    } while (__atomic_load_n(&r->flags, __ATOMIC_RELAXED) & F_EVAC); /* evacuation never fills the blocks it empties */
    block_flags_or(r, F_CUR);
    r->holes = 0; /* being refilled: holes now unknown until the next sweep */
    a->block = r;
    a->line = 0;
  }
}

void *hk__gc_mature_alloc_in(hk_gc_heap *h, gc_bump *a, gc_bump *o, size_t total, bool data) {
  void *p = bump(a, total);
  if (p) return p;
  if (total > GC_MEDIUM) {
    /* A medium object skips the rest of the current hole rather than wasting it. */
    if ((p = bump(o, total))) return p;
    fresh_block(h, o, B_MATURE, data);
    return bump(o, total);
  }
  while (next_hole(h, a, data))
    if ((p = bump(a, total))) return p;
  fresh_block(h, a, B_MATURE, data);
  return bump(a, total);
}

void *hk__gc_mature_alloc(hk_gc_heap *h, size_t total, bool data) {
  return hk__gc_mature_alloc_in(h, &h->mature[data], &h->overflow[data], total, data);
}

void *hk__gc_survivor_alloc(hk_gc_heap *h, size_t total, bool data) {
  return hk__gc_survivor_alloc_in(h, &h->survivor[data], total, data);
}

void *hk__gc_survivor_alloc_in(hk_gc_heap *h, gc_bump *a, size_t total, bool data) {
  void *p = bump(a, total);
  if (p) return p;
  fresh_block(h, a, B_YOUNG, data);
  h->survivor_blocks++;
  a->block->next = h->young;
  h->young = a->block;
  return bump(a, total);
}

/* ---- large objects ------------------------------------------------------------------------------ */

void *hk__gc_large_alloc(hk_gc_heap *h, unsigned type, size_t total, bool data) {
  /* (accounted: the OS refuses an object it could never back, as malloc's; a 64 GiB object on a
   * 24 GiB machine was handed out, and its first touch brought the OOM killer) */
  gc_large *l = (gc_large *)hk__segment_alloc_block(GC_LARGE_OFF + total, 0, HK__SEG_GC_LARGE, GC_LARGE_OFF);
  if (!l) return NULL;
  bool zero = false;
  if (hk__segment_commit(&l->h.base, GC_LARGE_OFF, total, &zero) != HK_OK) {
    hk__segment_free(&l->h.base);
    return NULL;
  }
  char *p = (char *)l + GC_LARGE_OFF;
  if (!zero) memset(p, 0, total);
  l->h.magic = GC_MAGIC;
  l->h.role = ROLE_LARGE;
  l->h.heap = h;
  l->h.base.owner = h;
  l->total = total;
  l->mark = 0;
  l->queued = 0;
  l->cards = NULL;
  l->card_words = 0;
  l->prev = NULL;
  l->next = h->large;
  if (h->large) h->large->prev = l;
  h->large = l;
  h->large_count++;
  h->large_bytes += total;
  h->mature_estimate += total;
  h->bytes_allocated += total;
  hk__page_inuse_add((ptrdiff_t)total);
  size_t bytes = hk__gc_heap_bytes(h);
  if (bytes > h->heap_peak) h->heap_peak = bytes;
  /* Large objects are born old: stores into them are remembered. */
  *(uintptr_t *)p = hdr_make(total, type, data ? HK_GC_HDR_NOSCAN : HK_GC_HDR_BARRIER);
  return p + HK_GC_GRANULE;
}

void hk__gc_large_free(hk_gc_heap *h, gc_large *l) {
  if (l->prev) l->prev->next = l->next;
  else h->large = l->next;
  if (l->next) l->next->prev = l->prev;
  h->large_count--;
  h->large_bytes -= l->total;
  hk__page_inuse_add(-(ptrdiff_t)l->total);
  hk__segment_decommit(&l->h.base, 0, l->h.base.size); /* (the header units stay) */
  hk__segment_free(&l->h.base);
}

/* ---- the mutator's slow path -------------------------------------------------------------------- */

/* A nursery buffer is zeroed GC_ZERO_AHEAD bytes at a time, just before its cursor gets there
 * (the fast path's limit is the end of the zeroed part, the slow path zeroes the next piece), so
 * the mutator writes its objects into lines still in its L1: zeroing the whole 32 KiB block when
 * it was handed out filled this core's whole L1 at once, ahead of objects written much later
 * (docs/gc.md, "Zeroing the nursery as it is used"). */
#define GC_ZERO_AHEAD ((size_t)4096)

static void zero_ahead(char **zeroed, char *need) {
  char *to = (char *)(((uintptr_t)need + GC_ZERO_AHEAD - 1) & ~(uintptr_t)(GC_ZERO_AHEAD - 1));
  memset(*zeroed, 0, (size_t)(to - *zeroed)); /* (blocks are GC_ZERO_AHEAD-aligned) */
  *zeroed = to;
}

/* Allocates total bytes (room checked) at the buffer's cursor, zeroing ahead as needed; the
 * caller sets the fast path's limit. */
static hk_forceinline void *buffer_bump(char **cur, char **zeroed, size_t total, hk_gc_type type, bool data) {
  char *p = *cur;
  if (p + total > *zeroed) zero_ahead(zeroed, p + total);
  *cur = p + total;
  *(uintptr_t *)(void *)p = hdr_make(total, type, data ? HK_GC_HDR_NOSCAN : 0);
  return p + HK_GC_GRANULE;
}

/* Counts a buffer's bytes and ends it: past the zeroed part the block holds what its last use
 * left, and the in-place walk (inplace.c) stops at the first zero header, so a zero word goes at
 * the cursor.
 * A mutator in a blocking region keeps its inline pair as hk_gc_blocking_begin left it (cursor =
 * limit, no room) and only the rest goes (start NULL: closed; hk_gc_blocking_end clears the pair).
 * Its thread may be reading the pair meanwhile (an allocation in the region, the misuse the slow
 * path refuses), with two plain loads: set to NULL, the old cursor with the new NULL limit gave
 * 2^64 - cursor bytes of room, and that allocation and every later one bumped on in the closed
 * block, with no limit (gc.review_blocking_close). */
static void buffer_close(hk_gc_heap *h, hk_gc_mutator *m, bool data) {
  char *cur = data ? m->fast.data_cursor : m->fast.cursor;
  char *start = data ? m->data_start : m->tlab_start;
  if (!cur || !start) return;
  h->bytes_allocated += (uint64_t)(cur - start);
  if (cur < (data ? m->real_data_limit : m->real_limit)) *(uintptr_t *)(void *)cur = 0;
  bool keep = m->state == MUT_BLOCKING;
  if (data) {
    /* What the in-place walk would count by reading every header of the block (inplace.c). */
    block_of_obj(start + HK_GC_GRANULE)->fill = (uint16_t)((size_t)(cur - start) / HK_GC_GRANULE);
    m->real_data_limit = m->data_start = m->zero_data_limit = NULL;
    if (!keep) m->fast.data_cursor = m->fast.data_limit = NULL;
  } else {
    m->real_limit = m->tlab_start = m->zero_limit = NULL;
    if (!keep) m->fast.cursor = m->fast.limit = NULL;
  }
}

void hk__gc_buffers_close(hk_gc_mutator *m) {
  buffer_close(m->heap, m, false);
  buffer_close(m->heap, m, true);
}

/* Hand the mutator's buffers back before a collection: the bytes used are counted, the blocks
 * stay young (they are evacuated with the rest of the nursery). */
void hk__gc_retire_tlabs(hk_gc_heap *h) {
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) hk__gc_buffers_close(m);
}

/* A handler that answers "retry" without releasing anything looped for ever (about 4400 calls a
 * second, a full collection each); arenas stop after 16 retries too. */
#define GC_OOM_STALLED_RETRIES 16

/* Make room for bytes more under the heap limit: a full collection, then the embedder's OOM
 * handler as long as it asks to retry and its retries make progress. Heap lock held; the handler
 * runs without it. */
static bool room_for(hk_gc_mutator *m, size_t bytes, size_t request, bool *collected) {
  hk_gc_heap *h = m->heap;
  int full_done = 0; /* two: the second one can evacuate what the first freed room for */
  bool minor_done = false, fin_done = false;
  int stalled = 0; /* retries in a row after which the heap got no smaller and the limit stayed */
  /* The lowest heap and the highest limit of this allocation's retries: compared with the retry
   * before only, a callback that lowered the limit and raised it by less, in turns, counted every
   * raise as progress and was called on and on. */
  size_t least_used = SIZE_MAX, most_max = 0;
  for (;;) {
    /* The young blocks count twice: a collection may have to copy all of them before it frees
     * them, and the limit holds during collections too. */
    if (!h->max_heap || hk__gc_heap_bytes(h) + h->blocks_young * GC_BLOCK_SIZE + bytes <= h->max_heap) return true;
    if (!fin_done && h->final_ready.count && !(h->opts.flags & HK_GC_OPT_MANUAL_FINALIZERS) && !m->in_finalizers) {
      /* What a full collection keeps for its finalizers is garbage once they have run, and where
       * full.c made its blocks young the next minor collection frees it: run them first (another
       * full collection now would only find all of it still held). */
      fin_done = true;
      gc_unlock(h);
      hk__gc_run_finalizers(m);
      gc_lock(h);
      continue;
    }
    /* (Blocks a full collection made young need a minor collection after it, even if one ran.) */
    if ((!minor_done && h->young_since_gc > 0) || h->kept_young_blocks > 0) {
      /* Emptying the nursery is cheap and usually enough. */
      hk__gc_collect_locked(m, HK_GC_MINOR);
      minor_done = *collected = true;
      continue;
    }
    if (full_done < 2) {
      hk__gc_collect_locked(m, HK_GC_FULL);
      full_done++;
      *collected = true;
      continue;
    }
    hk_gc_oom_fn fn = h->opts.oom;
    void *data = h->opts.oom_data;
    /* (an allocation inside the callback that passes the limit called it again, recursively,
     * each level collecting twice: it ran for minutes toward a stack overflow) */
    if (!fn || m->in_oom) return false;
    size_t used = hk__gc_heap_bytes(h) + h->blocks_young * GC_BLOCK_SIZE;
    /* (a limit lowered is no progress: a callback that lowered it a little per call and asked to
     * retry was called for ever) */
    if (used < least_used || h->max_heap > most_max) stalled = 0;
    else if (++stalled >= GC_OOM_STALLED_RETRIES) {
      hk__warning("gc: the OOM callback asked to retry %d times in a row without the heap getting smaller or its "
                  "limit being raised; the allocation of %zu bytes fails", stalled, request);
      return false;
    }
    if (used < least_used) least_used = used;
    if (h->max_heap > most_max) most_max = h->max_heap;
    gc_unlock(h);
    m->in_oom = 1;
    int retry = fn(h, request, data);
    m->in_oom = 0;
    gc_lock(h);
    if (!retry) return false;
    full_done = 1;
  }
}

/* per_thread blocks for each thread allocating (registered, not in a blocking region). */
static size_t nursery_for_threads(const hk_gc_heap *h, size_t per_thread) {
  size_t threads = h->nmutators - h->nblocking;
  if (threads <= 1) return per_thread;
  size_t n = per_thread * threads;
  /* Under a heap limit the nursery stays within the share one thread's nursery may take. */
  size_t cap = h->max_heap ? h->max_heap / GC_BLOCK_SIZE / 8 : n;
  if (cap < per_thread) cap = per_thread;
  return n < cap ? n : cap;
}

size_t hk__gc_nursery_target(const hk_gc_heap *h) { return nursery_for_threads(h, h->nursery_blocks); }

size_t hk__gc_nursery_reserve(const hk_gc_heap *h) { return nursery_for_threads(h, h->nursery_max); }

/* Give the mutator a fresh nursery block of the kind asked for. May collect. */
static bool refill(hk_gc_mutator *m, bool data, size_t request, bool *collected) {
  hk_gc_heap *h = m->heap;
  bool os_retry = false;
  gc_lock(h);
  for (;;) {
    if (gc_stopped(h)) {
      hk__gc_park(m);
      *collected = true;
      continue;
    }
    buffer_close(h, m, data);
    if (h->young_since_gc >= hk__gc_nursery_target(h)) {
      hk__gc_collect_locked(m, HK_GC_MINOR);
      *collected = true;
      continue;
    }
    /* Twice: a young block counts once more as its copy reserve (room_for counts young blocks
     * twice). Asked for once, a heap whose objects all survive took its last nursery block with
     * no room left to copy it: the minor collection that promoted it passed the limit by that
     * block (docs/gc.md, Heap limit). */
    if (!room_for(m, 2 * GC_BLOCK_SIZE, request, collected)) break;
    if (data ? m->fast.data_cursor : m->fast.cursor) { /* a finalizer room_for ran refilled it */
      gc_unlock(h);
      return true;
    }
    /* A block this thread zeroed before, if one is near the head of the free list: its lines
     * are more likely in this core's cache than in the other's (see hk__gc_block_prefer). */
    uint32_t tag = gc_nursery_tag(m);
    hk__gc_block_prefer(h, tag);
    gc_block *b = hk__gc_block_take(h, B_YOUNG, data);
    if (b) b->owner = tag;
    if (!b) {
      if (os_retry) break;
      os_retry = true;
      hk__gc_collect_locked(m, HK_GC_FULL);
      *collected = true;
      continue;
    }
    b->next = h->young;
    h->young = b;
    h->young_since_gc++;
    /* Nothing is zeroed yet: the allocations do it (zero_ahead), outside the lock. */
    char *start = block_start(b);
    if (data) {
      m->data_start = m->fast.data_cursor = m->fast.data_limit = m->zero_data_limit = start;
      m->real_data_limit = start + GC_BLOCK_SIZE;
    } else {
      m->tlab_start = m->fast.cursor = m->fast.limit = m->zero_limit = start;
      m->real_limit = start + GC_BLOCK_SIZE;
    }
    gc_unlock(h);
    return true;
  }
  gc_unlock(h);
  return false;
}

static void after_collection(hk_gc_mutator *m) {
  if (!(m->heap->opts.flags & HK_GC_OPT_MANUAL_FINALIZERS) && !m->in_finalizers) hk__gc_run_finalizers(m);
}

static void *large_alloc(hk_gc_mutator *m, hk_gc_type type, size_t size, bool data) {
  hk_gc_heap *h = m->heap;
  /* The header's size field holds 40 bits of granules, header included: 8 TiB - 8 bytes. (The
   * limit was 16 TiB: from 8 TiB on the field wrapped, so the object read as empty.) */
  if (size > ((size_t)1 << (64 - HK_GC_HDR_SIZE_SHIFT + 3)) - 2 * HK_GC_GRANULE) {
    hk__warning("gc: allocation of %zu bytes is beyond the collector's object size limit", size);
    return NULL;
  }
  size_t total = gc_total_of(size);
  bool collected = false, os_retry = false;
  void *p = NULL;
  gc_lock(h);
  for (;;) {
    if (gc_stopped(h)) {
      hk__gc_park(m);
      collected = true;
      continue;
    }
    if (h->mature_estimate + total > h->full_threshold && !collected) {
      hk__gc_collect_locked(m, HK_GC_FULL);
      collected = true;
      continue;
    }
    if (!room_for(m, total, size, &collected)) break;
    p = hk__gc_large_alloc(h, type, total, data);
    if (p && !data) {
      /* Born old but remembered at birth, so like any fresh object it can be initialised
       * without barriers until the next safepoint. */
      *hdr_of(p) &= ~HK_GC_HDR_BARRIER;
      if (!hk__gc_stack_push(h, &m->remset, p)) hk__fatal("gc: out of memory for the remembered set");
    }
    if (p || os_retry) break;
    os_retry = true;
    hk__gc_collect_locked(m, HK_GC_FULL);
    collected = true;
  }
  gc_unlock(h);
  if (collected) {
    /* A finalizer may allocate and collect: keep the new object visible meanwhile. */
    HK_GC_ROOTS(m, p);
    after_collection(m);
  }
  return p;
}

static hk_noinline void *alloc_slow(hk_gc_mutator *m, hk_gc_type type, size_t size, int data);

/* Most calls only find the zeroed part of the buffer used up: they zero the next piece
 * (zero_ahead) and allocate, without the frame and checks of the rest of the slow path. */
void *hk_gc_alloc_slow(hk_gc_mutator *m, hk_gc_type type, size_t size, int data) {
  if (gc_mutator_dead(m, data ? "hk_gc_alloc_data" : "hk_gc_alloc", "returns NULL")) return NULL;
  hk_gc_heap *h = m->heap;
  char **cur = data ? &m->fast.data_cursor : &m->fast.cursor;
  char **limit = data ? &m->fast.data_limit : &m->fast.limit;
  char **zeroed = data ? &m->zero_data_limit : &m->zero_limit;
  char *p = *cur, *end = data ? m->real_data_limit : m->real_limit;
  size_t total = gc_total_of(size);
  /* (in a collection's callbacks the buffers are retired: p is NULL; in stress mode every
   * allocation takes the full path, to be counted) */
  if (!p || size > HK_GC_MAX_SMALL || total > (size_t)(end - p) || h->stress > 0 || m->state != MUT_RUNNING || type == 0 ||
      type >= __atomic_load_n(&h->ntypes, __ATOMIC_ACQUIRE) || !h->types[type].used ||
      (data && !(h->types[type].d.flags & HK_GC_TYPE_NO_POINTERS)))
    return alloc_slow(m, type, size, data);
  hk_assert_internal(hk__gc_mutator_is_valid(m));
  void *obj = buffer_bump(cur, zeroed, total, type, data);
  *limit = *zeroed;
  return obj;
}

static void *alloc_slow(hk_gc_mutator *m, hk_gc_type type, size_t size, int data) {
  /* (in a collection's callbacks the buffers are retired, so every allocation comes here) */
  if (gc_reentered(data ? "hk_gc_alloc_data" : "hk_gc_alloc", "returns NULL")) return NULL;
  if (gc_mutator_blocking(m, data ? "hk_gc_alloc_data" : "hk_gc_alloc", "returns NULL")) return NULL;
  hk_gc_heap *h = m->heap;
  if (type == 0 || type >= __atomic_load_n(&h->ntypes, __ATOMIC_ACQUIRE) || !h->types[type].used) {
    hk__warning("gc: allocation with type %u, which is not registered", (unsigned)type);
    return NULL;
  }
  bool nop = (h->types[type].d.flags & HK_GC_TYPE_NO_POINTERS) != 0;
  if (data && !nop) {
    hk__warning("gc: hk_gc_alloc_data with type '%s', which was not registered with HK_GC_TYPE_NO_POINTERS",
                h->types[type].d.name ? h->types[type].d.name : "?");
    return NULL;
  }
  if (h->stress > 0 && ++m->stress_count % (uint64_t)h->stress == 0 && !m->in_finalizers)
    hk_gc_collect(m, (m->stress_count / (uint64_t)h->stress) % 4 == 0 ? HK_GC_FULL : HK_GC_MINOR);
  hk_assert_internal(hk__gc_mutator_is_valid(m));
  if (size > HK_GC_MAX_SMALL) return large_alloc(m, type, size, data);
  size_t total = gc_total_of(size);
  for (;;) {
    char **cur = data ? &m->fast.data_cursor : &m->fast.cursor;
    char *lim = data ? m->real_data_limit : m->real_limit;
    char **zeroed = data ? &m->zero_data_limit : &m->zero_limit;
    if (*cur && total <= (size_t)(lim - *cur)) {
      void *obj = buffer_bump(cur, zeroed, total, type, data);
      /* In stress mode every allocation comes here, so it can be counted. */
      if (data) m->fast.data_limit = h->stress > 0 ? *cur : *zeroed;
      else m->fast.limit = h->stress > 0 ? *cur : *zeroed;
      return obj;
    }
    bool collected = false;
    bool ok = refill(m, data, size, &collected);
    if (collected) after_collection(m);
    if (!ok) return NULL;
  }
}
