/* Collections: the entry point (stop the world, pick the kind, record the pause) and what both
 * collectors share: tracing an object through its type, and the roots (the mutators' frames,
 * global roots, the embedder's callback, queued finalizable objects). The minor collector is
 * minor.c, the full one full.c; both run with the world stopped and the heap lock held. */
#include "gc/gc_internal.h"

/* ---- tracing helpers ------------------------------------------------------------------------- */

static inline void visit_indirect(hk_gc_visitor *v, void **slot) { v->visit(v, slot); }

void hk__gc_trace_object(hk_gc_heap *h, void *obj, hk_gc_visitor *v) {
  GC_TRACE_WITH(h, obj, v, visit_indirect);
}

void hk__gc_visit_frames(hk_gc_mutator *m, hk_gc_visitor *v) {
  for (hk_gc_frame *f = m->fast.frames; f; f = f->prev)
    for (size_t i = 0; i < f->count; i++) hk_gc_visit(v, f->slots[i]);
}

/* The mutator list does not change while the world is stopped (registering waits for the
 * collection, unregistering parks first), so helpers walk it without the lock. */
static hk_gc_mutator *frames_next(hk_gc_heap *h, hk_gc_mutator *self) {
  if (self && hk__gc_frames_claim(h, self)) return self;
  for (hk_gc_mutator *m = h->mutators; m; m = m->next)
    if (__atomic_load_n(&m->frames_gen, __ATOMIC_RELAXED) != h->frames_gen && hk__gc_frames_claim(h, m)) return m;
  return NULL;
}

bool hk__gc_frames_visit_next(hk_gc_heap *h, hk_gc_mutator *self, hk_gc_visitor *v) {
  hk_gc_mutator *m = frames_next(h, self);
  if (m) hk__gc_visit_frames(m, v);
  return m != NULL;
}

bool hk__gc_frames_pending(hk_gc_heap *h) {
  for (hk_gc_mutator *m = h->mutators; m; m = m->next)
    if (m->fast.frames && m->frames_gen != h->frames_gen) return true;
  return false;
}

void hk__gc_visit_roots(hk_gc_heap *h, hk_gc_visitor *v) {
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) hk__gc_visit_frames(m, v);
  hk__gc_visit_other_roots(h, v);
}

void hk__gc_visit_other_roots(hk_gc_heap *h, hk_gc_visitor *v) {
  for (gc_root *r = h->roots; r; r = r->next) hk_gc_visit(v, r->slot);
  if (h->root_fn) h->root_fn(v, h->root_data);
  FLIST_FOR(&h->final_ready, f) hk_gc_visit(v, &f->obj);
}

/* ---- entry ------------------------------------------------------------------------------------ */

void hk__gc_collect_locked(hk_gc_mutator *m, hk_gc_kind kind) {
  hk_gc_heap *h = m->heap;
  if (!hk__gc_stop_world(m)) return;
  double t0 = hk__gc_now_ms();
  hk__gc_retire_tlabs(h);
  if (kind == HK_GC_FULL) {
    hk__gc_full(h, true);
    hk__gc_pause_record(h, 1, hk__gc_now_ms() - t0);
  } else {
    hk__gc_minor(h, false);
    /* Blocks freed beyond what the heap will take again before the next full collection go back
     * to the OS now, not at that collection, so resident memory tracks the heap. */
    size_t keep = hk__gc_free_reserve(h);
    if (h->nfree > keep + keep / 4) hk__gc_release_free_segments(h, keep);
    if (h->mature_estimate > h->full_threshold) {
      double t1 = hk__gc_now_ms();
      hk__gc_pause_record(h, 0, t1 - t0);
      hk__gc_full(h, false);
      hk__gc_pause_record(h, 1, hk__gc_now_ms() - t1);
    } else {
      hk__gc_pause_record(h, 0, hk__gc_now_ms() - t0);
    }
  }
  /* Segments given back wait in the page layer's cache; age it (cheap when nothing is due). */
  hk__page_collect(hk__clock_ms(), false);
  /* Debug level 3: the whole heap is checked after every collection. */
  hk_assert_expensive(hk__gc_verify_stopped(h) == HK_OK);
  hk__gc_resume_world(m->heap);
}
