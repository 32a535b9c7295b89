/* hk_gc_verify: stop the world, trace everything reachable with checks on every slot, and check
 * the block tables. It uses the side mark bitmaps as its visited set and clears them afterwards
 * (minor collections rely on young blocks' bits being clear), putting back the mature blocks'
 * marks when a sticky collection will need them. */
#include "gc/gc_internal.h"

typedef struct verify_ctx {
  hk_gc_visitor v;
  hk_gc_heap *h;
  gc_stack work;
  const void *referrer; /* object being scanned, NULL for roots */
  bool referrer_old;
  char err[256];
} verify_ctx;

static void fail(verify_ctx *c, const char *what, const void *p) {
  if (c->err[0]) return;
  char tbuf[64] = "";
  if (c->referrer) {
    unsigned t = hdr_type(*hdr_of(c->referrer));
    const char *name = t < c->h->ntypes && c->h->types[t].d.name ? c->h->types[t].d.name : "?";
    hk__snprintf(tbuf, sizeof tbuf, " (type %s)", name);
  }
  hk__snprintf(c->err, sizeof c->err, "heapkit: gc verify: %s: %p, reached from %s %p%s\n", what, p,
               c->referrer ? "object" : "a root", c->referrer, tbuf);
}

static bool is_young(const void *p) {
  return seghdr_of(hdr_of(p))->role == ROLE_BLOCKS && block_of_obj(p)->state == B_YOUNG;
}

static void verify_visit(hk_gc_visitor *v, void **slot) {
  verify_ctx *c = (verify_ctx *)v;
  hk_gc_heap *h = c->h;
  void *p = *slot;
  if (c->err[0]) return;
  if (!hk__gc_owns(h, p)) return fail(c, "a slot holds a pointer that is not an object of this heap", p);
  uintptr_t hd = *hdr_of(p);
  if (hd & HK_GC_HDR_FORWARDED) return fail(c, "forwarded header outside a collection", p);
  unsigned t = hdr_type(hd);
  if (t == 0 || t >= h->ntypes || !h->types[t].used) return fail(c, "object with an unregistered type", p);
  const hk_gc_type_desc *d = &h->types[t].d;
  size_t total = hdr_total(hd);
  bool large = seghdr_of(hdr_of(p))->role == ROLE_LARGE;
  if (total < HK_GC_GRANULE) return fail(c, "object with a zero size", p);
  if (large) {
    if (total != large_of(p)->total) return fail(c, "large object whose size disagrees with its segment", p);
  } else if (((uintptr_t)hdr_of(p) & (GC_BLOCK_SIZE - 1)) + total > GC_BLOCK_SIZE) {
    return fail(c, "object that crosses its block's end", p);
  }
  if (d->size && total - HK_GC_GRANULE < d->size) return fail(c, "object smaller than its type's size", p);
  if (d->size_of && gc_total_of(d->size_of(p)) != total) return fail(c, "object whose size_of disagrees with its header", p);
  if ((hd & HK_GC_HDR_NOSCAN) && !(d->flags & HK_GC_TYPE_NO_POINTERS))
    return fail(c, "pointer-free object of a type that has pointers", p);
  bool young = is_young(p);
  if (young && (hd & HK_GC_HDR_BARRIER)) return fail(c, "young object with its barrier bit set", p);
  if (!young && !large && gc_hdr_leaf(hd) && gc_has_refs(h, p, hd))
    return fail(c, "old object with the leaf hint holds a pointer", p);
  if (young && c->referrer_old && (*hdr_of(c->referrer) & HK_GC_HDR_BARRIER) &&
      !(obj_is_large(c->referrer) && large_card_dirty(large_of(c->referrer), c->referrer, slot)))
    return fail(c, "old object points to a young one but is not remembered", p);
  bool fresh;
  if (large) {
    fresh = large_of(p)->vmark != h->vgen;
    large_of(p)->vmark = h->vgen;
  } else {
    fresh = mark_set(p);
  }
  if (fresh && !(hd & HK_GC_HDR_NOSCAN) && !hk__gc_stack_push(h, &c->work, p))
    fail(c, "out of memory for the verifier's work list", p);
}

static void check_tables(verify_ctx *c) {
  hk_gc_heap *h = c->h;
  size_t young = 0, mature = 0, nfree = 0, listed_free = 0, listed_young = 0;
  for (gc_seg *s = h->segs; s; s = s->next) {
    if (s->h.magic != GC_MAGIC || s->h.role != ROLE_BLOCKS || s->h.heap != h) return fail(c, "corrupt block segment", s);
    for (size_t i = 0; i < GC_BLOCKS_PER_SEG; i++) {
      gc_block *b = &s->blocks[i];
      if (!hk__gc_block_is_valid(b)) return fail(c, "corrupt block descriptor", b);
      if (b->flags & (F_FROM | F_EVAC | F_RETAIN)) return fail(c, "collection flags left on a block", b);
      young += b->state == B_YOUNG;
      mature += b->state == B_MATURE;
      nfree += b->state == B_FREE;
    }
  }
  for (gc_block *b = h->free_blocks; b; b = b->next) {
    if (b->state != B_FREE) return fail(c, "a non-free block on the free list", b);
    listed_free++;
  }
  for (gc_block *b = h->young; b; b = b->next) {
    if (b->state != B_YOUNG) return fail(c, "a non-young block on the young list", b);
    listed_young++;
  }
  for (int k = 0; k < 2; k++)
    for (gc_block *b = h->recyclable[k]; b; b = b->next)
      if (b->state != B_MATURE || ((b->flags & F_DATA) != 0) != k) return fail(c, "bad block on a recyclable list", b);
  if (young != h->blocks_young || listed_young != young) return fail(c, "young block count mismatch", NULL);
  if (mature != h->blocks_mature) return fail(c, "mature block count mismatch", NULL);
  if (nfree != h->nfree || listed_free != nfree) return fail(c, "free block count mismatch", NULL);
  for (hk_gc_mutator *m = h->mutators; m; m = m->next)
    if (!hk__gc_mutator_is_valid(m)) return fail(c, "corrupt mutator allocation buffers", m);
  size_t lb = 0, lc = 0;
  for (gc_large *l = h->large; l; l = l->next) {
    if (l->h.magic != GC_MAGIC || l->h.role != ROLE_LARGE || l->h.heap != h) return fail(c, "corrupt large object", l);
    lb += l->total;
    lc++;
  }
  if (lb != h->large_bytes || lc != h->large_count) return fail(c, "large object accounting mismatch", NULL);
}

/* The mark bits of the mature blocks, saved in a chunk per segment: the next sticky collection
 * relies on them, and the next full collection reads them to leave out of its evacuation the blocks
 * that held pinned objects (full.c, holds_pinned). Saved only while sticky marks were in use until
 * review3 (2026-12-07): a verification on a heap whose finalizable objects kept sticky collections
 * off (or any collection at HK_DEBUG=3) made the next full collection evacuate those blocks again
 * (gc.review3_verify_pinned). If the chunks cannot be had, the next full collection is made a
 * complete one and may evacuate such blocks. */
#define MARKS_SAVED (sizeof(((gc_seg *)0)->marks) - GC_SEG_META_BLOCKS * sizeof(((gc_seg *)0)->marks[0]))
_Static_assert(MARKS_SAVED <= sizeof(((gc_chunk *)0)->items), "a segment's mark bits fit a chunk");
static gc_chunk *marks_save(hk_gc_heap *h) {
  gc_chunk *list = NULL;
  for (gc_seg *s = h->segs; s; s = s->next) {
    gc_chunk *c = hk__gc_chunk_alloc(h);
    if (!c) {
      while (list) {
        c = list;
        list = list->prev;
        hk__gc_chunk_free(h, c);
      }
      h->sticky_ok = false;
      return NULL;
    }
    memcpy(c->items, s->marks[GC_SEG_META_BLOCKS], MARKS_SAVED);
    c->prev = list;
    list = c;
  }
  return list;
}
/* Segments are in the same order (none come or go during a verification): the list is reversed. */
static void marks_restore(hk_gc_heap *h, gc_chunk *list) {
  size_t n = 0;
  for (gc_seg *s = h->segs; s; s = s->next) n++;
  for (gc_chunk *c = list, *prev; c; c = prev) {
    prev = c->prev;
    gc_seg *s = h->segs;
    for (size_t i = 1; i < n; i++) s = s->next;
    memcpy(s->marks[GC_SEG_META_BLOCKS], c->items, MARKS_SAVED);
    n--;
    hk__gc_chunk_free(h, c);
  }
}

/* The whole check with the world already stopped (the collector calls it after every collection
 * at HK_DEBUG >= 3). Prints the first problem and returns HK_EINVAL, or returns HK_OK. */
int hk__gc_verify_stopped(hk_gc_heap *h) {
  verify_ctx c = {.v = {verify_visit}, .h = h};
  hk__gc_merge_finalizers(h);
  if (++h->vgen == 0) {
    for (gc_large *l = h->large; l; l = l->next) l->vmark = 0;
    h->vgen = 1;
  }
  gc_chunk *saved = marks_save(h);
  for (gc_seg *s = h->segs; s; s = s->next) memset(s->marks, 0, sizeof s->marks);
  check_tables(&c);
  if (!c.err[0]) hk__gc_visit_roots(h, &c.v);
  void *o;
  while (!c.err[0] && (o = hk__gc_stack_pop(h, &c.work))) {
    c.referrer = o;
    c.referrer_old = !is_young(o);
    hk__gc_trace_object(h, o, &c.v);
  }
  c.referrer = NULL;
  c.referrer_old = false;
  for (hk_gc_weak *w = h->weaks; w && !c.err[0]; w = w->next)
    if (w->target && !((uintptr_t)w->target & 7) && !hk__gc_owns(h, w->target))
      fail(&c, "a weak reference holds a pointer that is not an object of this heap", w->target);
  gc_flist *lists[3] = {&h->final_young, &h->final_old, &h->final_ready};
  for (int i = 0; i < 3 && !c.err[0]; i++)
    FLIST_FOR(lists[i], f) {
      if (c.err[0]) break;
      if (!hk__gc_owns(h, f->obj)) fail(&c, "a finalizer entry holds a pointer that is not an object of this heap", f->obj);
      else if (!(*hdr_of(f->obj) & HK_GC_HDR_FINALIZABLE)) fail(&c, "a finalizable object lost its header bit", f->obj);
      else if (i == 0 && !is_young(f->obj)) fail(&c, "an old object on the young finalizer list", f->obj);
    }
  hk__gc_stack_clear(h, &c.work);
  for (gc_seg *s = h->segs; s; s = s->next) memset(s->marks, 0, sizeof s->marks);
  marks_restore(h, saved);
  if (c.err[0]) {
    hk__write_fd(2, c.err);
    return HK_EINVAL;
  }
  return HK_OK;
}

int hk_gc_verify(hk_gc_mutator *m) {
  if (gc_mutator_dead(m, "hk_gc_verify", "returns HK_EINVAL")) return HK_EINVAL;
  if (gc_mutator_blocking(m, "hk_gc_verify", "returns HK_EBUSY")) return HK_EBUSY;
  if (gc_reentered("hk_gc_verify", "returns HK_EBUSY")) return HK_EBUSY;
  hk_gc_heap *h = m->heap;
  gc_lock(h);
  while (!hk__gc_stop_world(m)) {}
  /* Not a collection: the buffers stay. The calling thread's are hidden meanwhile, so that an
   * allocation from a callback takes the slow path, which refuses it as in a collection (it
   * succeeded from the buffer before). */
  hk_gc_mutator_fast *f = (hk_gc_mutator_fast *)hk__gc_mutator_of_self(h), saved;
  if (f) {
    saved = *f;
    f->limit = f->cursor;
    f->data_limit = f->data_cursor;
  }
  int rc = hk__gc_verify_stopped(h);
  if (f) {
    f->limit = saved.limit;
    f->data_limit = saved.data_limit;
  }
  hk__gc_resume_world(m->heap);
  gc_unlock(h);
  return rc;
}
