/* Allocation entry points: the inline fast path (a pop from the page that heap->direct names) and
 * the malloc family built on it. Everything that is not a pop goes to hk__malloc_generic. */
#include "malloc/malloc.h"

#include <errno.h>
#include <string.h>

static hk_forceinline void *heap_malloc_small(hk_heap *h, size_t size) {
  hk__page *pg = h->direct[(size + 7) >> 3];
  hk__block *b = pg->free;
  if (hk_unlikely(b == NULL)) return hk__malloc_generic(size, h);
  hk__block *next = hk__decode(pg, b->next);
  pg->free = next;
  /* The link must not outlive the pop: free and realloc take a first word that decodes to an
   * address in the page as a possible double free and search the page's free lists. A block whose
   * first word the program never wrote in full (a short string, the start of an aligned block
   * handed out from its middle) kept its link, and every free or realloc of it walked thousands
   * of blocks. Zero decodes to the page key, never into the page. */
  b->next = 0;
  /* the next block is likely cold (another thread freed it, or it was freed long ago): start
   * fetching it now, for writing, since the caller will write this one and the next pop reads it */
  __builtin_prefetch(next, 1, 3);
  pg->used++;
  hk__heap_count(h, inuse, pg->block_size);
  hk__heap_count_op(h, mallocs);
  return b;
}

static hk_forceinline void *heap_malloc(hk_heap *h, size_t size) {
  if (hk_likely(size <= HK_DIRECT_MAX)) return heap_malloc_small(h, size);
  return hk__malloc_generic(size, h);
}

void *hk_malloc(size_t size) { return heap_malloc(hk__tls_heap, size); }

/* First-class heaps allocate only on their own thread; a stale or foreign handle ends the process.
 * hk__heap_done is hk_heap_get_default's handle after the thread's exit: on that thread its calls
 * take the late path (hk__malloc_late), as malloc's do. */
static hk_noinline void heap_misuse(const hk_heap *h, const char *who) {
  if (h == &hk__heap_done && hk__tls_heap == &hk__heap_done) return;
  if (h == NULL) hk__fatal("%s: NULL heap", who);
  if (h->magic != HK__HEAP_MAGIC) hk__fatal("%s: %p is not a live heap (destroyed or deleted, or its thread has exited?)", who, (const void *)h);
  hk__fatal("%s: heap %p belongs to another thread", who, (const void *)h);
}
#define HEAP_CHECK(h, who) \
  do { if (hk_unlikely((h) == NULL || (h)->thread_id != hk__thread_id() || (h)->magic != HK__HEAP_MAGIC)) heap_misuse(h, who); } while (0)

void *hk_heap_malloc(hk_heap *h, size_t size) {
  HEAP_CHECK(h, "hk_heap_malloc");
  return heap_malloc(h, size);
}

static void *heap_calloc(hk_heap *h, size_t count, size_t size) {
  size_t total;
  if (hk_unlikely(hk__mul_overflow(count, size, &total))) { errno = ENOMEM; return NULL; }
  /* large blocks know whether their memory is fresh from the OS: no need to clear it */
  if (total > HK_MEDIUM_MAX) return hk__malloc_large(total, h, HK__LARGE_ZERO);
  void *p = heap_malloc(h, total);
  if (hk_likely(p)) memset(p, 0, total);
  return p;
}

void *hk_calloc(size_t count, size_t size) { return heap_calloc(hk__tls_heap, count, size); }
void *hk_heap_calloc(hk_heap *h, size_t count, size_t size) {
  HEAP_CHECK(h, "hk_heap_calloc");
  return heap_calloc(h, count, size);
}

/* Aligned allocation. Pages start 64 KiB-aligned, so a size class that is a multiple of the
 * alignment gives aligned blocks for free; otherwise over-allocate inside a page and mark it, or
 * place a large block at an aligned offset of its own segment. */
static void *heap_malloc_aligned(hk_heap *h, size_t align, size_t size) {
  if (align <= 8 || (align <= 16 && size > 8)) return heap_malloc(h, size);
  if (size == 0) size = 1;
  if (size >= HK_MAX_ALLOC || align >= HK_MAX_ALLOC) { errno = ENOMEM; return NULL; }
  if (h->tld == NULL) { /* (both ways below need the thread's heap) */
    if (h == &hk__heap_done) return hk__malloc_late(size, align, false);
    if ((h = hk__heap_get()) == NULL) { errno = ENOMEM; return NULL; }
  }
  if (align <= HK_MEDIUM_MAX && size <= HK_MEDIUM_MAX) {
    if (size < align) size = align;
    for (size_t bin = hk__bin_of(size), n = 0; bin <= HK_BIN_MAX && n < 8; bin++, n++) {
      if (hk__bin_size(bin) % align == 0) return hk__heap_malloc_bin(h, bin);
    }
    size_t over = size + align - 1;
    if (over <= HK_MEDIUM_MAX) {
      uint8_t *p = hk__heap_malloc_bin(h, hk__bin_of(over));
      if (!p) return NULL;
      uint8_t *a = (uint8_t *)hk__align_up((uintptr_t)p, align);
      if (a != p) hk__page_flag_set(hk__page_at(p), HK__PAGE_HAS_ALIGNED);
      return a;
    }
  }
  return hk__large_alloc(h, size, align, false, false);
}

/* The thread's exit destructor has run (a later pthread key destructor allocates): the block comes
 * from a record made for this call and given up at once (hk__heap_late_begin), so it stays valid and
 * any thread may free it, while nothing of the thread outlives the call. Not fast (a record, likely
 * an adoption and an abandon), but such calls are few. errno is the allocation's. */
hk_noinline void *hk__malloc_late(size_t size, size_t align, bool zero) {
  hk_heap *h = hk__heap_late_begin();
  if (!h) { errno = ENOMEM; return NULL; }
  void *p = align ? heap_malloc_aligned(h, align, size) : zero ? heap_calloc(h, 1, size) : heap_malloc(h, size);
  int e = errno;
  hk__heap_late_end(h);
  errno = e;
  return p;
}

void *hk_heap_malloc_aligned(hk_heap *h, size_t align, size_t size) {
  HEAP_CHECK(h, "hk_heap_malloc_aligned");
  if (hk_unlikely(!hk__is_pow2(align))) { errno = EINVAL; return NULL; }
  return heap_malloc_aligned(h, align, size);
}

int hk_posix_memalign(void **out, size_t align, size_t size) {
  if (!hk__is_pow2(align) || align % sizeof(void *) != 0) return EINVAL;
  void *p = heap_malloc_aligned(hk__tls_heap, align, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void *hk_aligned_alloc(size_t align, size_t size) {
  if (!hk__is_pow2(align)) { errno = EINVAL; return NULL; }
  return heap_malloc_aligned(hk__tls_heap, align, size);
}

void *hk_memalign(size_t align, size_t size) {
  /* glibc rounds a non-power-of-two alignment up; EINVAL only past SIZE_MAX / 2 + 1, as glibc
   * (from 2^62 + 1 up to there it rounds to 2^63, which fails with ENOMEM) */
  if (align == 0) align = 1;
  if (!hk__is_pow2(align)) {
    if (align > ((size_t)1 << 63)) { errno = EINVAL; return NULL; }
    align = (size_t)1 << (64 - __builtin_clzll(align));
  }
  return heap_malloc_aligned(hk__tls_heap, align, size);
}

void *hk_valloc(size_t size) { return heap_malloc_aligned(hk__tls_heap, hk__page_size(), size); }

void *hk_pvalloc(size_t size) {
  size_t ps = hk__page_size();
  if (size > SIZE_MAX - ps) { errno = ENOMEM; return NULL; }
  size_t rounded = size == 0 ? ps : hk__align_up(size, ps);
  return heap_malloc_aligned(hk__tls_heap, ps, rounded);
}

static void *heap_realloc(hk_heap *h, void *p, size_t size) {
  if (p == NULL) return heap_malloc(h, size);
  if (size == 0) { hk_free(p); return NULL; } /* glibc frees and returns NULL */
  size_t usable = hk__realloc_usable(p);
  if (size <= usable && (size >= usable / 2 || usable <= 16)) return p;
  if (size > HK_MEDIUM_MAX) { /* only a large block can grow in place: no segment lookup otherwise */
    hk__mseg *seg = (hk__mseg *)hk__segment_find(p);
    if (seg->base.kind == HK__SEG_LARGE) {
      void *q = hk__large_realloc_inplace(seg, p, size);
      if (q) return q;
      if (size > usable) {
        q = hk__malloc_large(size, h, HK__LARGE_TICK | HK__LARGE_ROOM); /* with room to double in place */
        if (!q) return NULL; /* p stays valid, as C requires */
        memcpy(q, p, usable);
        hk_free(p);
        return q;
      }
    }
  }
  void *q = heap_malloc(h, size);
  if (!q) return NULL; /* p stays valid, as C requires */
  memcpy(q, p, usable < size ? usable : size);
  hk_free(p);
  return q;
}

void *hk_realloc(void *p, size_t size) { return heap_realloc(hk__tls_heap, p, size); }
void *hk_heap_realloc(hk_heap *h, void *p, size_t size) {
  HEAP_CHECK(h, "hk_heap_realloc");
  return heap_realloc(h, p, size);
}

void *hk_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (hk__mul_overflow(count, size, &total)) { errno = ENOMEM; return NULL; }
  return heap_realloc(hk__tls_heap, p, total);
}

size_t hk_malloc_usable_size(const void *p) { return p ? hk__usable_size(p, "malloc_usable_size") : 0; }

char *hk_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = hk_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

char *hk_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = hk_malloc(len + 1);
  if (d) { memcpy(d, s, len); d[len] = 0; }
  return d;
}

HK_ALIAS(malloc, hk_malloc)
HK_ALIAS(calloc, hk_calloc)
HK_ALIAS(realloc, hk_realloc)
HK_ALIAS(reallocarray, hk_reallocarray)
HK_ALIAS(posix_memalign, hk_posix_memalign)
HK_ALIAS(aligned_alloc, hk_aligned_alloc)
HK_ALIAS(memalign, hk_memalign)
HK_ALIAS(valloc, hk_valloc)
HK_ALIAS(pvalloc, hk_pvalloc)
HK_ALIAS(malloc_usable_size, hk_malloc_usable_size)
HK_ALIAS(__libc_malloc, hk_malloc)
HK_ALIAS(__libc_calloc, hk_calloc)
HK_ALIAS(__libc_realloc, hk_realloc)
HK_ALIAS(__libc_memalign, hk_memalign)
/* glibc 2.36 exports these too (`nm -D libc.so.6 | grep __libc_`); programs that call them directly
 * would otherwise get a glibc block that our free cannot take. (__libc_reallocarray is
 * GLIBC_PRIVATE, but an interposed unversioned definition still binds its callers.) */
HK_ALIAS(__libc_valloc, hk_valloc)
HK_ALIAS(__libc_pvalloc, hk_pvalloc)
HK_ALIAS(__libc_reallocarray, hk_reallocarray)
