/* Collector metadata that is not heap objects: 64 KiB chunks (remembered sets, mark stacks) and
 * small records (mutators, weak handles, finalizer entries, global roots), all carved from META
 * segments so the collector never calls malloc. Callers hold the heap lock. */
#include "gc/gc_internal.h"

#define META_SEG_HEADER ((size_t)GC_CHUNK_SIZE) /* first chunk slot holds the segment header */

static const size_t meta_classes[4] = {32, 64, 128, 512};

static int meta_class(size_t size) {
  for (int i = 0; i < 4; i++)
    if (size <= meta_classes[i]) return i;
  return -1;
}

/* Carve a fresh chunk: from the free list, then the current META segment, then a new one. */
gc_chunk *hk__gc_chunk_alloc(hk_gc_heap *h) {
  gc_chunk *c = h->free_chunks;
  if (c) {
    h->free_chunks = c->prev;
    c->prev = NULL;
    c->n = 0;
    return c;
  }
  for (gc_seghdr *s = h->meta_segs; s; s = (gc_seghdr *)s->base.next) {
    /* base.prev is unused by META segments: it stores the carve offset */
    size_t off = (size_t)(uintptr_t)s->base.prev;
    if (off + GC_CHUNK_SIZE <= HK_SEGMENT_SIZE) {
      if (hk__segment_commit(&s->base, off, GC_CHUNK_SIZE, NULL) != HK_OK) return NULL;
      s->base.prev = (hk__segment *)(uintptr_t)(off + GC_CHUNK_SIZE);
      c = (gc_chunk *)((char *)s + off);
      c->prev = NULL;
      c->n = 0;
      return c;
    }
  }
  gc_seghdr *s = (gc_seghdr *)hk__segment_alloc(HK_SEGMENT_SIZE, 0, HK__SEG_GC, META_SEG_HEADER);
  if (!s) return NULL;
  s->magic = GC_MAGIC;
  s->role = ROLE_META;
  s->heap = h;
  s->base.owner = h;
  s->base.prev = (hk__segment *)(uintptr_t)META_SEG_HEADER;
  s->base.next = (hk__segment *)h->meta_segs;
  h->meta_segs = s;
  return hk__gc_chunk_alloc(h);
}

void hk__gc_chunk_free(hk_gc_heap *h, gc_chunk *c) {
  c->prev = h->free_chunks;
  h->free_chunks = c;
}

void *hk__gc_meta_alloc(hk_gc_heap *h, size_t size) {
  int k = meta_class(size);
  if (k < 0) return NULL;
  size_t sz = meta_classes[k];
  void *p = h->meta_free[k];
  if (p) {
    h->meta_free[k] = *(void **)p;
  } else {
    if (h->meta_cursor == NULL || (size_t)(h->meta_limit - h->meta_cursor) < sz) {
      gc_chunk *c = hk__gc_chunk_alloc(h);
      if (!c) return NULL;
      h->meta_cursor = (char *)c;
      h->meta_limit = (char *)c + GC_CHUNK_SIZE;
    }
    p = h->meta_cursor;
    h->meta_cursor += sz;
  }
  memset(p, 0, sz);
  return p;
}

void hk__gc_meta_free(hk_gc_heap *h, void *p, size_t size) {
  int k = meta_class(size);
  hk_assert(k >= 0);
  *(void **)p = h->meta_free[k];
  h->meta_free[k] = p;
}

void hk__gc_meta_release_all(hk_gc_heap *h) {
  gc_seghdr *s = h->meta_segs;
  while (s) {
    gc_seghdr *next = (gc_seghdr *)s->base.next;
    s->base.next = s->base.prev = NULL;
    hk__segment_free(&s->base);
    s = next;
  }
  h->meta_segs = NULL;
  h->free_chunks = NULL;
  h->meta_cursor = h->meta_limit = NULL;
  memset(h->meta_free, 0, sizeof h->meta_free);
}

/* ---- chunked stacks ---------------------------------------------------------------------------- */

bool hk__gc_stack_push(hk_gc_heap *h, gc_stack *s, void *p) {
  gc_chunk *c = s->top;
  if (!c || c->n == GC_CHUNK_CAP) {
    gc_chunk *n = hk__gc_chunk_alloc(h);
    if (!n) return false;
    n->prev = c;
    s->top = c = n;
  }
  c->items[c->n++] = p;
  s->count++;
  return true;
}

void *hk__gc_stack_pop(hk_gc_heap *h, gc_stack *s) {
  for (;;) {
    gc_chunk *c = s->top;
    if (!c) return NULL;
    if (c->n) {
      s->count--;
      return c->items[--c->n];
    }
    /* The last chunk stays: a stack that empties and refills often would churn it. */
    if (!c->prev) return NULL;
    s->top = c->prev;
    hk__gc_chunk_free(h, c);
  }
}

void hk__gc_stack_clear(hk_gc_heap *h, gc_stack *s) {
  while (s->top) {
    gc_chunk *c = s->top;
    s->top = c->prev;
    hk__gc_chunk_free(h, c);
  }
  s->count = 0;
}
