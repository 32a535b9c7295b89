/* Collections. A minor collection copies the live objects of the FROM blocks (the whole young
 * generation) into survivor blocks or, once old enough, into the mature space; roots are the
 * mutators' frames, global roots, the embedder's callback, queued finalizable objects and the
 * remembered sets. A full collection first runs a minor one that promotes everything, then marks
 * the mature and large spaces (side bitmaps, line marks), evacuating sparsely used blocks, and
 * sweeps by lines. Both run with the world stopped and the heap lock held. */
#include "gc/gc_internal.h"

/* ---- tracing helpers ------------------------------------------------------------------------- */

static inline void visit_indirect(hk_gc_visitor *v, void **slot) { v->visit(v, slot); }

void hk__gc_trace_object(hk_gc_heap *h, void *obj, hk_gc_visitor *v) {
  GC_TRACE_WITH(h, obj, v, visit_indirect);
}

void hk__gc_visit_roots(hk_gc_heap *h, hk_gc_visitor *v) {
  for (hk_gc_mutator *m = h->mutators; m; m = m->next)
    for (hk_gc_frame *f = m->fast.frames; f; f = f->prev)
      for (size_t i = 0; i < f->count; i++) hk_gc_visit(v, f->slots[i]);
  for (gc_root *r = h->roots; r; r = r->next) hk_gc_visit(v, r->slot);
  if (h->root_fn) h->root_fn(v, h->root_data);
  for (gc_final *f = h->final_ready; f; f = f->next) hk_gc_visit(v, &f->obj);
}

static inline bool in_blocks(const void *obj) { return seghdr_of(hdr_of(obj))->role == ROLE_BLOCKS; }
static inline void *fwd_of(uintptr_t hd) { return (char *)(hd & ~HK_GC_HDR_FORWARDED) + HK_GC_GRANULE; }

/* ---- minor collection ------------------------------------------------------------------------ */

typedef struct minor_ctx {
  hk_gc_visitor v;
  hk_gc_heap *h;
  gc_stack work;
  unsigned promote_age; /* 0: promote everything */
  bool young_found;     /* a visited slot points to a young object after the visit */
  uint64_t copied, promoted;
} minor_ctx;

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
    uint64_t *d = (uint64_t *)dst;
    const uint64_t *s = (const uint64_t *)src;
    for (size_t i = 0; i < n / 8; i++) d[i] = s[i];
  } else {
    memcpy(dst, src, n);
  }
}

static void push_or_die(hk_gc_heap *h, gc_stack *s, void *p) {
  if (!hk__gc_stack_push(h, s, p)) hk__fatal("gc: out of memory for the collector's work list");
}

/* Young after this collection: a survivor copy (young block not being evacuated). */
static inline bool young_survivor(const void *obj) {
  if (!in_blocks(obj)) return false;
  gc_block *b = block_of_obj(obj);
  return b->state == B_YOUNG && !(b->flags & F_FROM);
}

static inline __attribute__((always_inline)) void minor_visit(hk_gc_visitor *v, void **slot) {
  minor_ctx *c = (minor_ctx *)v;
  void *p = *slot;
  if (!in_blocks(p)) return; /* large: old */
  gc_block *b = block_of_obj(p);
  if (!(b->flags & F_FROM)) {
    if (b->state == B_YOUNG) c->young_found = true;
    return;
  }
  uintptr_t hd = *hdr_of(p);
  if (hd & HK_GC_HDR_FORWARDED) {
    void *n = fwd_of(hd);
    *slot = n;
    if (young_survivor(n)) c->young_found = true;
    return;
  }
  size_t total = hdr_total(hd);
  if (hd & HK_GC_HDR_PINNED) {
    /* Pinned: stays where it is; its block will become a mature block. */
    if (mark_set(p)) {
      b->flags |= F_RETAIN;
      c->promoted += total;
      if (!(hd & HK_GC_HDR_NOSCAN)) push_or_die(c->h, &c->work, p);
    }
    return;
  }
  bool data = (hd & HK_GC_HDR_NOSCAN) != 0;
  unsigned age = hdr_age(hd) + 1;
  char *dst;
  uintptr_t nh;
  if (c->promote_age == 0 || age >= c->promote_age) {
    dst = bump_fast(&c->h->mature[data], total);
    if (!dst) dst = hk__gc_mature_alloc(c->h, total, data);
    nh = hdr_with_age(hd, 0);
    c->promoted += total;
  } else {
    dst = bump_fast(&c->h->survivor[data], total);
    if (!dst) dst = hk__gc_survivor_alloc(c->h, total, data);
    nh = hdr_with_age(hd, age);
    c->copied += total;
    c->young_found = true;
  }
  copy_payload(dst + HK_GC_GRANULE, p, total - HK_GC_GRANULE);
  *(uintptr_t *)dst = nh;
  *hdr_of(p) = (uintptr_t)dst | HK_GC_HDR_FORWARDED;
  *slot = dst + HK_GC_GRANULE;
  if (!data) if (hk_unlikely(!gc_stack_push(c->h, &c->work, dst + HK_GC_GRANULE))) push_or_die(c->h, &c->work, dst + HK_GC_GRANULE);
}

static void minor_visit_v(hk_gc_visitor *v, void **slot) { minor_visit(v, slot); }

/* Scan an object that is old after this collection; keep it remembered if it still points to a
 * young object, else arm its barrier. */
#define MINOR_VISIT(v, slot) minor_visit((v), (slot))

static void scan_old(minor_ctx *c, void *o) {
  c->young_found = false;
  GC_TRACE_WITH(c->h, o, &c->v, MINOR_VISIT);
  if (*hdr_of(o) & HK_GC_HDR_NOSCAN) return;
  if (c->young_found) {
    *hdr_of(o) &= ~HK_GC_HDR_BARRIER; /* the world is stopped: no atomics needed */
    push_or_die(c->h, &c->h->remset, o);
  } else {
    *hdr_of(o) |= HK_GC_HDR_BARRIER;
  }
}

static void minor_drain(minor_ctx *c) {
  void *o;
  while ((o = hk__gc_stack_pop(c->h, &c->work))) {
    if (young_survivor(o)) {
      GC_TRACE_WITH(c->h, o, &c->v, MINOR_VISIT);
    } else {
      scan_old(c, o);
    }
  }
}

/* Where a young object stands after tracing: moved (slot updated), kept in place, or dead. */
static bool minor_alive(void **slot) {
  void *p = *slot;
  if (!in_blocks(p) || !(block_of_obj(p)->flags & F_FROM)) return true;
  uintptr_t hd = *hdr_of(p);
  if (hd & HK_GC_HDR_FORWARDED) {
    *slot = fwd_of(hd);
    return true;
  }
  return (hd & HK_GC_HDR_PINNED) && mark_test(p);
}

static void minor_weaks(hk_gc_heap *h) {
  for (hk_gc_weak *w = h->weaks; w; w = w->next) {
    if (!w->target || ((uintptr_t)w->target & 7)) continue;
    if (!minor_alive(&w->target)) {
      w->target = NULL;
      h->weak_cleared++;
    }
  }
}

static bool is_young_obj(const void *p) { return in_blocks(p) && block_of_obj(p)->state == B_YOUNG && !(block_of_obj(p)->flags & F_RETAIN); }

/* Ordered finalization over the young finalizable objects (see final.c for the rule). */
static void minor_finalizers(minor_ctx *c) {
  hk_gc_heap *h = c->h;
  gc_final *list = h->final_young, *dead = NULL;
  h->final_young = NULL;
  /* The young list plus the entries the mutators registered since the last collection. */
  hk_gc_mutator *src = h->mutators;
  for (;;) {
    if (!list) {
      while (src && !src->fin_local) src = src->next;
      if (!src) break;
      list = src->fin_local;
      src->fin_local = NULL;
    }
    gc_final *f = list;
    list = f->next;
    if (minor_alive(&f->obj)) {
      gc_final **dst = is_young_obj(f->obj) ? &h->final_young : &h->final_old;
      f->next = *dst;
      *dst = f;
    } else {
      f->next = dead;
      dead = f;
    }
  }
  /* Phase 1: everything reachable from a dead finalizable object must outlive its finalizer. */
  for (gc_final *f = dead; f; f = f->next) {
    if (minor_alive(&f->obj)) continue; /* reached from an earlier one: its copy gets scanned */
    hk__gc_trace_object(h, f->obj, &c->v);
    minor_drain(c);
  }
  /* Phase 2: the ones still unreached are ready; they live on until their finalizer has run. */
  while (dead) {
    gc_final *f = dead;
    dead = f->next;
    if (minor_alive(&f->obj)) {
      gc_final **dst = is_young_obj(f->obj) ? &h->final_young : &h->final_old;
      f->next = *dst;
      *dst = f;
      continue;
    }
    minor_visit(&c->v, &f->obj);
    minor_drain(c);
    f->next = h->final_ready;
    h->final_ready = f;
  }
}

void hk__gc_minor(hk_gc_heap *h, bool promote_all) {
  /* When most of the nursery survives (a big structure being built), aging only copies it twice:
   * promote at once until survival drops again. */
  unsigned age = h->high_survival ? 1 : h->opts.promote_age;
  minor_ctx c = {.v = {minor_visit_v}, .h = h, .promote_age = promote_all ? 0 : age};
  size_t nursery_bytes = h->young_since_gc * GC_BLOCK_SIZE;
  gc_block *from = h->young;
  h->young = NULL;
  for (gc_block *b = from; b; b = b->next) b->flags |= F_FROM;

  hk__gc_visit_roots(h, &c.v);
  /* Remembered objects: old objects that may point into the young generation. */
  gc_stack old_sets[1] = {h->remset};
  h->remset = (gc_stack){0};
  void *o;
  for (hk_gc_mutator *m = h->mutators; m; m = m->next)
    while ((o = hk__gc_stack_pop(h, &m->remset))) scan_old(&c, o);
  while ((o = hk__gc_stack_pop(h, &old_sets[0]))) scan_old(&c, o);
  hk__gc_stack_clear(h, &old_sets[0]);
  minor_drain(&c);
  minor_weaks(h);
  minor_finalizers(&c);
  hk__gc_stack_clear(h, &c.work);

  /* The evacuated blocks are free; those holding pinned objects become mature in place. */
  while (from) {
    gc_block *b = from;
    from = b->next;
    b->next = NULL;
    if (b->flags & F_RETAIN) {
      b->state = B_MATURE;
      b->flags &= F_DATA;
      b->free_lines = 0;
      h->blocks_young--;
      h->blocks_mature++;
      memset(seg_of_block(b)->marks[block_no(b)], 0, sizeof seg_of_block(b)->marks[0]);
    } else {
      hk__gc_block_release(h, b);
    }
  }
  for (int i = 0; i < 2; i++) {
    if (h->survivor[i].block) h->survivor[i].block->flags &= (uint8_t)~F_CUR;
    h->survivor[i] = (gc_bump){0};
  }
  h->high_survival = nursery_bytes && (c.copied + c.promoted) * 3 > nursery_bytes;
  h->young_since_gc = 0;
  h->bytes_copied += c.copied;
  h->bytes_promoted += c.promoted;
  h->mature_estimate += c.promoted;
  h->minor_count++;
}

/* ---- full collection ------------------------------------------------------------------------- */

typedef struct mark_ctx {
  hk_gc_visitor v;
  hk_gc_heap *h;
  gc_stack work;
  size_t live, evacuated, evac_budget;
} mark_ctx;

static inline __attribute__((always_inline)) void mark_visit(hk_gc_visitor *v, void **slot) {
  mark_ctx *c = (mark_ctx *)v;
  hk_gc_heap *h = c->h;
  void *p = *slot;
  uintptr_t hd = *hdr_of(p);
  if (!in_blocks(p)) {
    gc_large *l = large_of(p);
    if (l->mark != h->epoch) {
      l->mark = h->epoch;
      c->live += l->total;
      if (!(hd & HK_GC_HDR_NOSCAN)) push_or_die(h, &c->work, p);
    }
    return;
  }
  if (hd & HK_GC_HDR_FORWARDED) {
    *slot = fwd_of(hd);
    return;
  }
  size_t total = hdr_total(hd);
  gc_block *b = block_of_obj(p);
  if ((b->flags & F_EVAC) && !(hd & HK_GC_HDR_PINNED) && total <= c->evac_budget) {
    /* Opportunistic evacuation: move out of a sparsely used block while marking. */
    c->evac_budget -= total;
    char *dst = hk__gc_mature_alloc(h, total, (hd & HK_GC_HDR_NOSCAN) != 0);
    memcpy(dst, hdr_of(p), total);
    *hdr_of(p) = (uintptr_t)dst | HK_GC_HDR_FORWARDED;
    p = dst + HK_GC_GRANULE;
    *slot = p;
    c->evacuated += total;
  }
  if (!mark_set(p)) return;
  lines_mark(p, total, h->epoch);
  c->live += total;
  if (!(hd & HK_GC_HDR_NOSCAN) && hk_unlikely(!gc_stack_push(h, &c->work, p))) push_or_die(h, &c->work, p);
}

static void mark_visit_v(hk_gc_visitor *v, void **slot) { mark_visit(v, slot); }
#define MARK_VISIT(v, slot) mark_visit((v), (slot))

static void mark_drain(mark_ctx *c) {
  void *o;
  while ((o = hk__gc_stack_pop(c->h, &c->work))) GC_TRACE_WITH(c->h, o, &c->v, MARK_VISIT);
}

static bool full_alive(hk_gc_heap *h, void **slot) {
  void *p = *slot;
  if (!in_blocks(p)) return large_of(p)->mark == h->epoch;
  uintptr_t hd = *hdr_of(p);
  if (hd & HK_GC_HDR_FORWARDED) {
    *slot = fwd_of(hd);
    return true;
  }
  return mark_test(p);
}

static void full_weaks(hk_gc_heap *h) {
  for (hk_gc_weak *w = h->weaks; w; w = w->next) {
    if (!w->target || ((uintptr_t)w->target & 7)) continue;
    if (!full_alive(h, &w->target)) {
      w->target = NULL;
      h->weak_cleared++;
    }
  }
}

static void full_finalizers(mark_ctx *c) {
  hk_gc_heap *h = c->h;
  gc_final *list = h->final_old, *dead = NULL;
  h->final_old = NULL;
  while (list) {
    gc_final *f = list;
    list = f->next;
    if (full_alive(h, &f->obj)) {
      f->next = h->final_old;
      h->final_old = f;
    } else {
      f->next = dead;
      dead = f;
    }
  }
  for (gc_final *f = dead; f; f = f->next) {
    if (full_alive(h, &f->obj)) continue; /* reached from an earlier one: already traced */
    hk__gc_trace_object(h, f->obj, &c->v);
    mark_drain(c);
  }
  while (dead) {
    gc_final *f = dead;
    dead = f->next;
    if (full_alive(h, &f->obj)) {
      f->next = h->final_old;
      h->final_old = f;
      continue;
    }
    mark_visit(&c->v, &f->obj);
    mark_drain(c);
    f->next = h->final_ready;
    h->final_ready = f;
  }
}

/* Evacuation candidates, Immix style: the sparsest mature blocks (by the free lines the last sweep
 * counted) first, as many as the copy budget can empty, never blocks more than three quarters
 * used. The budget is what the free blocks hold, but at least an eighth of the heap: at a tight
 * heap limit the copies may overshoot it by that much during the collection, because evacuation
 * is what brings a fragmented heap back under the limit. Returns the budget (0: none chosen). */
static size_t choose_candidates(hk_gc_heap *h) {
  if (h->opts.flags & HK_GC_OPT_NO_EVACUATION) return 0;
  size_t budget = h->nfree * GC_BLOCK_SIZE, floor = hk__gc_heap_bytes(h) / 8;
  if (budget < floor) budget = floor;
  size_t hist[GC_LINES + 1] = {0};
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++)
      if (s->blocks[i].state == B_MATURE) hist[s->blocks[i].free_lines]++;
  size_t want = 0;
  unsigned threshold = GC_LINES + 1;
  for (unsigned f = GC_LINES; f >= GC_LINES / 4; f--) {
    size_t live = hist[f] * (GC_LINES - f) * GC_LINE_SIZE;
    if (hist[f] && want + live > budget) break;
    want += live;
    threshold = f;
  }
  if (threshold > GC_LINES) return 0;
  size_t n = 0;
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
      gc_block *b = &s->blocks[i];
      if (b->state == B_MATURE && b->free_lines >= threshold && b->free_lines > 0) {
        b->flags |= F_EVAC;
        n++;
      }
    }
  return n ? budget : 0;
}

static void sweep(hk_gc_heap *h) {
  h->recyclable[0] = h->recyclable[1] = NULL;
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
      gc_block *b = &s->blocks[i];
      if (b->state != B_MATURE) continue;
      b->flags &= (uint8_t)~(F_EVAC | F_CUR);
      const uint8_t *lm = s->lines[i];
      unsigned live = 0, holes = 0;
      bool in_hole = false;
      for (unsigned l = 0; l < GC_LINES; l++) {
        bool used = lm[l] == h->epoch;
        live += used;
        if (!used && !in_hole) holes++;
        in_hole = !used;
      }
      if (live == 0) {
        hk__gc_block_release(h, b);
        continue;
      }
      b->free_lines = (uint16_t)(GC_LINES - live);
      b->holes = (uint16_t)holes;
      if (b->free_lines) {
        bool data = (b->flags & F_DATA) != 0;
        b->next = h->recyclable[data];
        h->recyclable[data] = b;
      }
    }
  for (gc_large *l = h->large, *next; l; l = next) {
    next = l->next;
    if (l->mark != h->epoch) hk__gc_large_free(h, l);
  }
}

void hk__gc_full(hk_gc_heap *h) {
  hk__gc_minor(h, true);
  h->minor_count--; /* counted as part of this full collection */

  if (++h->epoch == 0) {
    for (gc_seg *s = h->segs; s; s = s->next) memset(s->lines, 0, sizeof s->lines);
    for (gc_large *l = h->large; l; l = l->next) l->mark = 0;
    h->epoch = 1;
  }
  for (gc_seg *s = h->segs; s; s = s->next) memset(s->marks, 0, sizeof s->marks);
  /* Holes from the last sweep are meaningless under the new epoch: copies go to fresh blocks. */
  for (int i = 0; i < 2; i++) {
    hk__gc_bump_reset(&h->mature[i]);
    hk__gc_bump_reset(&h->overflow[i]);
  }
  h->recyclable[0] = h->recyclable[1] = NULL;
  mark_ctx c = {.v = {mark_visit_v}, .h = h};
  c.evac_budget = choose_candidates(h);

  hk__gc_visit_roots(h, &c.v);
  mark_drain(&c);
  full_weaks(h);
  full_finalizers(&c);
  hk__gc_stack_clear(h, &c.work);

  for (int i = 0; i < 2; i++) {
    hk__gc_bump_reset(&h->mature[i]);
    hk__gc_bump_reset(&h->overflow[i]);
  }
  sweep(h);
  h->live_bytes = c.live;
  h->mature_estimate = c.live;
  h->bytes_evacuated += c.evacuated;
  size_t next = (size_t)((double)c.live * (100.0 + h->opts.growth_percent) / 100.0);
  h->full_threshold = next > h->opts.initial_heap ? next : h->opts.initial_heap;
  hk__gc_release_free_segments(h, h->nursery_blocks);
  h->full_count++;
}

/* ---- entry ------------------------------------------------------------------------------------ */

void hk__gc_collect_locked(hk_gc_mutator *m, hk_gc_kind kind) {
  hk_gc_heap *h = m->heap;
  if (!hk__gc_stop_world(m)) return;
  double t0 = hk__gc_now_ms();
  hk__gc_retire_tlabs(h);
  if (kind == HK_GC_FULL) {
    hk__gc_full(h);
    hk__gc_pause_record(h, 1, hk__gc_now_ms() - t0);
  } else {
    hk__gc_minor(h, false);
    /* Blocks freed beyond the next nursery's worth go back to the OS now, not at the next full
     * collection, so resident memory tracks the heap. */
    if (h->nfree > h->nursery_blocks + h->nursery_blocks / 4) hk__gc_release_free_segments(h, h->nursery_blocks);
    if (h->mature_estimate > h->full_threshold) {
      double t1 = hk__gc_now_ms();
      hk__gc_pause_record(h, 0, t1 - t0);
      hk__gc_full(h);
      hk__gc_pause_record(h, 1, hk__gc_now_ms() - t1);
    } else {
      hk__gc_pause_record(h, 0, hk__gc_now_ms() - t0);
    }
  }
  /* Segments given back wait in the page layer's cache; age it (cheap when nothing is due). */
  hk__page_collect(hk__clock_ms(), false);
  /* Debug level 3: the whole heap is checked after every collection. */
  hk_assert_expensive(hk__gc_verify_stopped(h) == HK_OK);
  hk__gc_resume_world(m);
}
