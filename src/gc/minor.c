/* Minor collections: copy the live objects of the FROM blocks (the whole young generation) into
 * survivor blocks or, once old enough (or at once while survival is high), into the mature space.
 * Roots are those of collect.c plus the remembered sets; a work list (not Cheney order, since
 * copies go to two places) scans the copies. Pinned young objects stay and their block becomes
 * mature. Then weak references and young finalizable objects are processed. */
#include "gc/gc_internal.h"

typedef struct minor_ctx {
  hk_gc_visitor v;
  hk_gc_heap *h;
  gc_stack work;
  unsigned promote_age; /* 0: promote everything */
  bool young_found;     /* a visited slot points to a young object after the visit */
  uint64_t copied, promoted;
} minor_ctx;

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
  while ((o = GC_POP(c->h, &c->work))) {
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
  /* What is kept for a finalizer dies right after it runs: copy it within the young generation
   * even while survival is high, so it is freed by a minor collection, not promoted. */
  if (c->promote_age) c->promote_age = 3;
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

/* The pause of a minor collection is its survivors (roots and remembered sets are small next to
 * them), so the nursery follows what survives: cut in proportion when a minor collection copied
 * more than GC_PAUSE_SURVIVORS (a big structure being built), doubled back towards the configured
 * size while it copies less than half of that. A survival *rate* would not do: a small nursery
 * makes everything in it look long-lived and would never grow again. Collections forced early
 * (heap limit, explicit calls) saw too small a nursery to judge by. */
static void adapt_nursery(hk_gc_heap *h, size_t nursery_bytes, uint64_t survived) {
  if (!nursery_bytes || nursery_bytes * 2 < h->nursery_blocks * GC_BLOCK_SIZE) return;
  size_t want = h->nursery_blocks;
  if (survived > GC_PAUSE_SURVIVORS)
    want = (size_t)((double)want * (double)GC_PAUSE_SURVIVORS / (double)survived);
  else if (survived < GC_PAUSE_SURVIVORS / 2)
    want *= 2;
  if (want < GC_NURSERY_MIN_BLOCKS) want = GC_NURSERY_MIN_BLOCKS;
  if (want > h->nursery_max) want = h->nursery_max;
  h->nursery_blocks = want;
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
  if (!promote_all) adapt_nursery(h, nursery_bytes, c.copied + c.promoted);
  h->young_since_gc = 0;
  h->bytes_copied += c.copied;
  h->bytes_promoted += c.promoted;
  h->mature_estimate += c.promoted;
  h->minor_count++;
}
