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

/* The page layer's header of a collector segment: one page. The page layer clears the whole header
 * of a segment it hands out, and a page written is a page resident: with the tables as the header,
 * the heap struct (289 KiB, mostly the type table and the pause rings, of which a program uses a
 * few pages), a META segment's first 64 KiB and a block segment's 128 KiB of tables were resident
 * at once, used or not (quadtree at 2x: 0.4 MB of its peak RSS, see docs/gc.md). */
#define GC_SEG_HEADER ((size_t)4096)

/* A segment of the collector whose first `zeroed` bytes read zero (the header is gc_seghdr). A
 * fresh one from the OS is zero without being touched; one from the page layer's cache is cleared
 * here where it is dirty. Callers hold the heap lock, or own h alone (heap creation: h NULL). */
gc_seghdr *hk__gc_seg_alloc(hk_gc_heap *h, size_t size, int role, size_t zeroed) {
  _Static_assert(sizeof(gc_seghdr) <= GC_SEG_HEADER, "the segment header fits its page");
  gc_seghdr *s = (gc_seghdr *)hk__segment_alloc(size, 0, HK__SEG_GC, GC_SEG_HEADER);
  if (!s) return NULL;
  if (zeroed > GC_SEG_HEADER) {
    bool zero = false;
    if (hk__segment_commit(&s->base, GC_SEG_HEADER, zeroed - GC_SEG_HEADER, &zero) != HK_OK) {
      hk__segment_free(&s->base);
      return NULL;
    }
    if (!zero) memset((char *)s + GC_SEG_HEADER, 0, zeroed - GC_SEG_HEADER);
  }
  s->magic = GC_MAGIC;
  s->role = (uint32_t)role;
  s->heap = h;
  s->base.owner = h;
  return s;
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
  /* Chunks are carved from META_SEG_HEADER on and need not read zero. */
  gc_seghdr *s = hk__gc_seg_alloc(h, HK_SEGMENT_SIZE, ROLE_META, 0);
  if (!s) return NULL;
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
