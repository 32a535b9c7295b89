/* Finalizers and weak references.
 *
 * Finalization order (the rule in gc.h): at a collection, a finalizable object F that was not
 * reached from the roots is "dead". First everything reachable from every dead F (but not F
 * itself) is traced; then a dead F still unreached is ready: it is kept alive on the ready queue
 * (a root) until its finalizer has run. So if A references B and both are dead, B was reached
 * from A in the first step and waits for a later collection, after A's finalizer has run and A
 * has died. A cycle of finalizable objects (or an object that reaches itself) is reached in the
 * first step and never becomes ready, as with the Boehm collector.
 *
 * Entries are split by the age of their object, so a minor collection only looks at the young
 * ones; entries move to the old list when their object is promoted. */
#include "gc/gc_internal.h"

/* Is obj an object of heap h? Checked through the page layer's segment map, so any pointer is
 * safe to pass. */
bool hk__gc_owns(hk_gc_heap *h, const void *obj) {
  if (!obj || ((uintptr_t)obj & 7)) return false;
  hk__segment *s = hk__segment_of(hdr_of(obj));
  if (!s || (s->kind != HK__SEG_GC && s->kind != HK__SEG_GC_LARGE) || s->owner != h) return false;
  gc_seghdr *g = (gc_seghdr *)s;
  if (g->role == ROLE_LARGE) return (const char *)obj == (const char *)g + GC_LARGE_OFF + HK_GC_GRANULE;
  if (g->role != ROLE_BLOCKS) return false;
  gc_block *b = block_of_obj(obj);
  return b->state == B_YOUNG || b->state == B_MATURE;
}

static bool obj_young(const void *obj) {
  return seghdr_of(hdr_of(obj))->role == ROLE_BLOCKS && block_of_obj(obj)->state == B_YOUNG;
}

int hk_gc_set_finalizer(hk_gc_mutator *m, void *obj, hk_gc_finalizer_fn fn, void *data) {
  if (!m) return HK_EINVAL;
  hk_gc_heap *h = m->heap;
  if (!hk__gc_owns(h, obj)) {
    hk__warning("gc: hk_gc_set_finalizer: %p is not an object of this heap", obj);
    return HK_EINVAL;
  }
  int rc = HK_OK;
  gc_lock(h);
  if (*hdr_of(obj) & HK_GC_HDR_FINALIZABLE) {
    gc_final **lists[2] = {&h->final_young, &h->final_old};
    for (int i = 0; i < 2; i++)
      for (gc_final **pp = lists[i]; *pp; pp = &(*pp)->next)
        if ((*pp)->obj == obj) {
          gc_final *f = *pp;
          if (fn) {
            f->fn = fn;
            f->data = data;
          } else {
            *pp = f->next;
            hk__gc_meta_free(h, f, sizeof *f);
            h->nfinal--;
            __atomic_fetch_and(hdr_of(obj), ~HK_GC_HDR_FINALIZABLE, __ATOMIC_RELAXED);
          }
          gc_unlock(h);
          return HK_OK;
        }
  }
  if (fn) {
    gc_final *f = hk__gc_meta_alloc(h, sizeof *f);
    if (!f) {
      rc = HK_ENOMEM;
    } else {
      f->obj = obj;
      f->fn = fn;
      f->data = data;
      gc_final **list = obj_young(obj) ? &h->final_young : &h->final_old;
      f->next = *list;
      *list = f;
      h->nfinal++;
      __atomic_fetch_or(hdr_of(obj), HK_GC_HDR_FINALIZABLE, __ATOMIC_RELAXED);
    }
  }
  gc_unlock(h);
  return rc;
}

size_t hk__gc_run_finalizers(hk_gc_mutator *m) {
  hk_gc_heap *h = m->heap;
  if (m->in_finalizers) return 0;
  m->in_finalizers = 1;
  size_t n = 0;
  for (;;) {
    gc_lock(h);
    gc_final *f = h->final_ready;
    if (f) {
      h->final_ready = f->next;
      h->nfinal--;
      h->finalizers_run++;
    }
    void *obj = f ? f->obj : NULL;
    hk_gc_finalizer_fn fn = f ? f->fn : NULL;
    void *data = f ? f->data : NULL;
    if (f) {
      __atomic_fetch_and(hdr_of(obj), ~HK_GC_HDR_FINALIZABLE, __ATOMIC_RELAXED);
      hk__gc_meta_free(h, f, sizeof *f);
    }
    gc_unlock(h);
    if (!f) break;
    /* No safepoint since the queue let go of obj; from here the frame holds it. */
    HK_GC_ROOTS(m, obj);
    fn(m, obj, data);
    n++;
  }
  m->in_finalizers = 0;
  return n;
}

size_t hk_gc_run_finalizers(hk_gc_mutator *m) { return m ? hk__gc_run_finalizers(m) : 0; }

/* ---- weak references ---------------------------------------------------------------------------- */

hk_gc_weak *hk_gc_weak_new(hk_gc_mutator *m, void *target) {
  if (!m) return NULL;
  hk_gc_heap *h = m->heap;
  if (target && ((uintptr_t)target & 7) == 0 && !hk__gc_owns(h, target)) {
    hk__warning("gc: hk_gc_weak_new: %p is not an object of this heap", target);
    return NULL;
  }
  gc_lock(h);
  hk_gc_weak *w = hk__gc_meta_alloc(h, sizeof *w);
  if (w) {
    w->target = target;
    w->next = h->weaks;
    if (h->weaks) h->weaks->prev = w;
    h->weaks = w;
    h->nweak++;
  }
  gc_unlock(h);
  return w;
}

void *hk_gc_weak_get(const hk_gc_weak *w) { return w ? w->target : NULL; }

void hk_gc_weak_free(hk_gc_mutator *m, hk_gc_weak *w) {
  if (!m || !w) return;
  hk_gc_heap *h = m->heap;
  gc_lock(h);
  if (w->prev) w->prev->next = w->next;
  else h->weaks = w->next;
  if (w->next) w->next->prev = w->prev;
  h->nweak--;
  hk__gc_meta_free(h, w, sizeof *w);
  gc_unlock(h);
}
