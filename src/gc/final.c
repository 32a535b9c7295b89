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

/* hk__gc_owns and an object's start (gc_hdr_plausible): for the entry points that write into or
 * keep an object the program names. */
bool hk__gc_is_object(hk_gc_heap *h, const void *obj) {
  return hk__gc_owns(h, obj) && gc_hdr_plausible(h, obj, obj_is_large(obj));
}

static bool obj_young(const void *obj) {
  return seghdr_of(hdr_of(obj))->role == ROLE_BLOCKS && block_of_obj(obj)->state == B_YOUNG;
}

bool hk__gc_flist_push(hk_gc_heap *h, gc_flist *l, const gc_final *f) {
  gc_chunk *c = l->top;
  if (!c || c->n >= GC_FCAP) {
    gc_chunk *n = hk__gc_chunk_alloc(h);
    if (!n) return false;
    n->prev = c;
    l->top = c = n;
  }
  flist_recs(c)[c->n++] = *f;
  l->count++;
  return true;
}

bool hk__gc_flist_pop(hk_gc_heap *h, gc_flist *l, gc_final *out) {
  gc_chunk *c = l->top;
  while (c && c->n == 0) {
    l->top = c->prev;
    hk__gc_chunk_free(h, c);
    c = l->top;
  }
  if (!c) return false;
  *out = flist_recs(c)[--c->n];
  l->count--;
  if (c->n == 0) {
    l->top = c->prev;
    hk__gc_chunk_free(h, c);
  }
  return true;
}

/* Move all of src's records to dst without touching them: src's chunks are linked on top of dst's.
 * A partly filled chunk may then sit under another one, which is fine: records are only pushed
 * onto the top chunk, every walk reads each chunk's own count, and a pop skips empty chunks. */
void hk__gc_flist_splice(gc_flist *dst, gc_flist *src) {
  gc_chunk *bottom = src->top;
  if (!bottom) return;
  while (bottom->prev) bottom = bottom->prev;
  bottom->prev = dst->top;
  dst->top = src->top;
  dst->count += src->count;
  *src = (gc_flist){0};
}

static void list_add(hk_gc_heap *h, const gc_final *f) {
  flist_push_or_die(h, obj_young(f->obj) ? &h->final_young : &h->final_old, f);
}

void hk__gc_merge_finalizers(hk_gc_heap *h) {
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) hk__gc_mutator_finalizers_flush(m);
}

void hk__gc_mutator_finalizers_flush(hk_gc_mutator *m) {
  gc_final f;
  while (flist_pop(m->heap, &m->fin_local, &f)) list_add(m->heap, &f);
}

/* Remove the record *slot of list l (order does not matter: the last record takes its place). */
static void flist_remove(hk_gc_heap *h, gc_flist *l, gc_final *slot) {
  gc_final last;
  gc_chunk *top = l->top;
  bool is_last = top && top->n && slot == &flist_recs(top)[top->n - 1];
  flist_pop(h, l, &last);
  if (!is_last) *slot = last;
}

/* An object in the thread's current allocation buffer is one of this heap's (the usual case:
 * registered right after allocation), without a look-up in the page layer's segment map. */
static inline bool owned_by_buffer(const hk_gc_mutator *m, const void *obj) {
  const char *p = (const char *)obj;
  return !((uintptr_t)p & 7) && m->tlab_start && p > m->tlab_start && p <= m->fast.cursor;
}

static int set_finalizer_slow(hk_gc_mutator *m, void *obj, hk_gc_finalizer_fn fn, void *data, bool set);

/* A first registration into the thread's chunk c (not full). Field by field: a record built on
 * the stack and copied was read back with one 16-byte load over two 8-byte stores, a failed store
 * forwarding (two thirds of hk_gc_set_finalizer's time on the finalizer benchmark). */
static hk_forceinline void fin_push(hk_gc_mutator *m, gc_chunk *c, void *obj, hk_gc_finalizer_fn fn, void *data) {
  gc_final *r = &flist_recs(c)[c->n++];
  r->obj = obj;
  r->fn = fn;
  r->data = data;
  m->fin_local.count++;
}

/* A first registration is the common case (finalizer-heavy programs register one per object):
 * it is a store into the thread's own chunk of records, kept until the next collection. The rest
 * (a new chunk, under the lock; changing or removing a registration, which stops the world to
 * find the record) is out of line, so that this path saves and restores no registers for it. */
int hk_gc_set_finalizer(hk_gc_mutator *m, void *obj, hk_gc_finalizer_fn fn, void *data) {
  if (gc_mutator_dead(m, "hk_gc_set_finalizer", "returns HK_EINVAL")) return HK_EINVAL;
  /* (checked on the fast path too: a record added after the collection took the thread's ones
   * would keep the object's old address if the collection moves it) */
  if (gc_reentered("hk_gc_set_finalizer", "returns HK_EBUSY")) return HK_EBUSY;
  if (gc_mutator_blocking(m, "hk_gc_set_finalizer", "returns HK_EBUSY")) return HK_EBUSY;
  if (owned_by_buffer(m, obj) ? !gc_hdr_plausible(m->heap, obj, false) : !hk__gc_is_object(m->heap, obj)) {
    hk__warning("gc: hk_gc_set_finalizer: %p is not an object of this heap (or not an object's start)", obj);
    return HK_EINVAL;
  }
  if (!fn) return set_finalizer_slow(m, obj, fn, data, false);
  uintptr_t old = __atomic_fetch_or(hdr_of(obj), HK_GC_HDR_FINALIZABLE, __ATOMIC_RELAXED);
  gc_chunk *c = m->fin_local.top;
  if (hk_likely(!(old & HK_GC_HDR_FINALIZABLE) && c && c->n < GC_FCAP)) {
    fin_push(m, c, obj, fn, data);
    return HK_OK;
  }
  return set_finalizer_slow(m, obj, fn, data, !(old & HK_GC_HDR_FINALIZABLE));
}

/* hk_gc_alloc_finalized's registration, for an object m has just allocated (no other thread can
 * see it yet): a plain header update, no ownership or re-entry checks (the allocation did them:
 * in a collection's callbacks every allocation takes the slow path, which refuses). 0 or
 * HK_ENOMEM. */
int hk__gc_finalizer_fresh(hk_gc_mutator *m, void *obj, hk_gc_finalizer_fn fn, void *data) {
  if (!fn) return HK_OK;
  *hdr_of(obj) |= HK_GC_HDR_FINALIZABLE;
  gc_chunk *c = m->fin_local.top;
  if (hk_likely(c && c->n < GC_FCAP)) {
    fin_push(m, c, obj, fn, data);
    return HK_OK;
  }
  return set_finalizer_slow(m, obj, fn, data, true);
}

/* fresh: fn is set and this call set the object's bit (a first registration, its thread's chunk
 * full). */
static __attribute__((noinline)) int set_finalizer_slow(hk_gc_mutator *m, void *obj, hk_gc_finalizer_fn fn,
                                                        void *data, bool fresh) {
  hk_gc_heap *h = m->heap;
  if (fresh) {
    gc_final rec = {obj, fn, data};
    gc_lock(h);
    bool ok = hk__gc_flist_push(h, &m->fin_local, &rec);
    gc_unlock(h);
    if (ok) return HK_OK;
    __atomic_fetch_and(hdr_of(obj), ~HK_GC_HDR_FINALIZABLE, __ATOMIC_RELAXED);
    return HK_ENOMEM;
  }
  if (!fn && !(__atomic_load_n(hdr_of(obj), __ATOMIC_RELAXED) & HK_GC_HDR_FINALIZABLE)) return HK_OK;
  /* Waiting for the world may let another thread's collection move obj: keep it rooted. */
  HK_GC_ROOTS(m, obj);
  gc_lock(h);
  while (!hk__gc_stop_world(m)) {}
  hk__gc_merge_finalizers(h);
  int rc = HK_OK;
  bool found = false;
  gc_flist *lists[2] = {&h->final_young, &h->final_old};
  for (int i = 0; i < 2; i++)
    for (gc_chunk *c = lists[i]->top; c; c = c->prev)
      for (gc_final *f = flist_recs(c); f < flist_recs(c) + c->n; f++) {
        if (f->obj != obj) continue;
        found = true;
        if (fn) {
          f->fn = fn;
          f->data = data;
        } else {
          flist_remove(h, lists[i], f); /* may free c: leave the loops at once */
          __atomic_fetch_and(hdr_of(obj), ~HK_GC_HDR_FINALIZABLE, __ATOMIC_RELAXED);
        }
        goto done;
      }
done:
  if (!found && fn) {
    /* The bit was set but the entry is on the ready queue (its finalizer is about to run): a
     * new registration for the resurrected object. */
    gc_final rec = {obj, fn, data};
    if (!hk__gc_flist_push(h, obj_young(obj) ? &h->final_young : &h->final_old, &rec)) rc = HK_ENOMEM;
  }
  hk__gc_resume_world(m->heap);
  gc_unlock(h);
  return rc;
}

size_t hk__gc_run_finalizers(hk_gc_mutator *m) {
  hk_gc_heap *h = m->heap;
  if (m->in_finalizers) return 0;
  m->in_finalizers = 1;
  size_t n = 0;
  enum { BATCH = 128 };
  void *objs[BATCH];
  hk_gc_finalizer_fn fns[BATCH];
  void *datas[BATCH];
  void **slots[BATCH];
  for (int i = 0; i < BATCH; i++) slots[i] = &objs[i];
  for (;;) {
    size_t k = 0;
    gc_lock(h);
    /* A batch is the last records of the top chunk (a pop per record cost a third more). */
    gc_flist *q = &h->final_ready;
    gc_chunk *c;
    while ((c = q->top) && !c->n) {
      q->top = c->prev;
      hk__gc_chunk_free(h, c);
    }
    if (c) {
      k = c->n < BATCH ? c->n : BATCH;
      const gc_final *r = flist_recs(c) + (c->n - k);
      for (size_t i = 0; i < k; i++) {
        __builtin_prefetch(hdr_of(r[i].obj), 1); /* typically a cache miss: start them all now */
        objs[i] = r[i].obj;
        fns[i] = r[i].fn;
        datas[i] = r[i].data;
      }
      c->n -= k;
      q->count -= k;
      if (!c->n) {
        q->top = c->prev;
        hk__gc_chunk_free(h, c);
      }
    }
    h->finalizers_run += k;
    gc_unlock(h);
    if (!k) break;
    /* No safepoint since the queue let go of them; from here this frame holds them. */
    hk_gc_frame fr = {m->fast.frames, m, k, slots};
    m->fast.frames = &fr;
    /* Cleared first, so the finalizer may register a new one (resurrection). A plain store: a
     * ready object was reached from nothing but the queue (weak references to it are cleared), so
     * no other thread can touch its header; a locked instruction per object made each cache miss
     * wait for the one before (3% of the finalizer benchmark's time). */
    for (size_t i = 0; i < k; i++) *hdr_of(objs[i]) &= ~HK_GC_HDR_FINALIZABLE;
    for (size_t i = 0; i < k; i++) fns[i](m, objs[i], datas[i]);
    m->fast.frames = fr.prev;
    n += k;
  }
  m->in_finalizers = 0;
  return n;
}

size_t hk_gc_run_finalizers(hk_gc_mutator *m) {
  if (gc_reentered("hk_gc_run_finalizers", "returns 0") || gc_mutator_dead(m, "hk_gc_run_finalizers", "returns 0") ||
      gc_mutator_blocking(m, "hk_gc_run_finalizers", "returns 0"))
    return 0;
  return hk__gc_run_finalizers(m);
}

/* ---- weak references ---------------------------------------------------------------------------- */

hk_gc_weak *hk_gc_weak_new(hk_gc_mutator *m, void *target) {
  if (gc_reentered("hk_gc_weak_new", "returns NULL") || gc_mutator_dead(m, "hk_gc_weak_new", "returns NULL") ||
      gc_mutator_blocking(m, "hk_gc_weak_new", "returns NULL"))
    return NULL;
  hk_gc_heap *h = m->heap;
  if (target && ((uintptr_t)target & 7) == 0 && !hk__gc_is_object(h, target)) {
    hk__warning("gc: hk_gc_weak_new: %p is not an object of this heap (or not an object's start)", target);
    return NULL;
  }
  gc_lock(h);
  hk_gc_weak *w = hk__gc_meta_alloc(h, sizeof *w);
  if (w) {
    w->target = target;
    w->tag = (uintptr_t)w ^ GC_WEAK_LIVE;
    w->next = h->weaks;
    if (h->weaks) h->weaks->prev = w;
    h->weaks = w;
    h->nweak++;
  }
  gc_unlock(h);
  return w;
}

void *hk_gc_weak_get(const hk_gc_weak *w) { return w ? w->target : NULL; }

/* A handle is a record of its heap's metadata segments: freed through another heap's mutator, it
 * was unlinked through that heap's list head and went on that heap's free list, so its own heap's
 * list kept the freed record, which the other heap's next handle took (a collection then walked a
 * cycle for ever). Checked through the page layer's segment map, so any pointer is safe. The same
 * segments hold the heap's other records (mutators, global roots, finalizer chunks): the tag tells
 * a handle from them. A pointer to a mutator was unlinked as a handle (its buffer pointers taken
 * for list links: a SIGSEGV), and so was a freed handle whose record a global root had taken. A
 * second free of a handle (until a new handle reuses its record) finds the freed tag: it unlinked
 * the handle again through its stale links and put the record on the free list twice (two later
 * handles shared it, and the list got a cycle that a collection then walked for ever). */
static bool weak_of_heap(const hk_gc_heap *h, const hk_gc_weak *w) {
  if ((uintptr_t)w & 7) return false;
  hk__segment *s = hk__segment_of(w);
  return s && s->kind == HK__SEG_GC && s->owner == h && ((const gc_seghdr *)s)->role == ROLE_META;
}

void hk_gc_weak_free(hk_gc_mutator *m, hk_gc_weak *w) {
  if (!w || gc_reentered("hk_gc_weak_free", "ignored") || gc_mutator_dead(m, "hk_gc_weak_free", "ignored")) return;
  hk_gc_heap *h = m->heap;
  if (!weak_of_heap(h, w)) {
    hk__warning("gc: hk_gc_weak_free: %p is not a weak reference of this mutator's heap; ignored", (void *)w);
    return;
  }
  gc_lock(h);
  if (w->tag != ((uintptr_t)w ^ GC_WEAK_LIVE)) {
    bool freed = w->tag == ((uintptr_t)w ^ GC_WEAK_FREED);
    gc_unlock(h);
    if (freed) hk__warning("gc: hk_gc_weak_free: %p was freed already; ignored", (void *)w);
    else hk__warning("gc: hk_gc_weak_free: %p is not a weak reference of this mutator's heap; ignored", (void *)w);
    return;
  }
  if (w->prev) w->prev->next = w->next;
  else h->weaks = w->next;
  if (w->next) w->next->prev = w->prev;
  h->nweak--;
  w->tag = (uintptr_t)w ^ GC_WEAK_FREED;
  hk__gc_meta_free(h, w, sizeof *w);
  gc_unlock(h);
}
