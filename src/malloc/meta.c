/* Records for heapkit's own bookkeeping (thread data and heaps): fixed 4 KiB slots carved from
 * META segments, reused through a free list. The allocator cannot use malloc for these, and
 * threads come and go far too often to give each its own segment. */
#include "malloc/malloc.h"

#include <pthread.h>

#define META_SLOT 4096

static pthread_mutex_t meta_lock = PTHREAD_MUTEX_INITIALIZER;
static void *meta_free_list;
static hk__segment *meta_seg;
static size_t meta_next; /* next uncarved offset in meta_seg */

void *hk__meta_alloc(size_t size) {
  if (size > META_SLOT) hk__fatal("internal: meta record of %zu bytes", size);
  hk__glock(&meta_lock);
  void *p = meta_free_list;
  if (p) {
    meta_free_list = *(void **)p;
  } else {
    if (!meta_seg || meta_next + META_SLOT > meta_seg->size) {
      /* Under an address-space limit (`ulimit -v`) 64 slots at a time: a whole segment was 4 MiB of
       * the limit for the one or two records of a single-threaded program (the page layer sizes
       * the segment to the request). Read now: a program may set the limit after its first
       * malloc. */
      size_t bytes = hk__page_as_limit_now() != 0 ? 64 * META_SLOT : HK_SEGMENT_SIZE;
      hk__segment *s = hk__segment_alloc(bytes, 0, HK__SEG_META, META_SLOT);
      if (!s) { hk__gunlock(&meta_lock); return NULL; }
      meta_seg = s;
      meta_next = META_SLOT;
    }
    if (hk__segment_commit(meta_seg, meta_next, META_SLOT, NULL) != HK_OK) { hk__gunlock(&meta_lock); return NULL; }
    p = (uint8_t *)meta_seg + meta_next;
    meta_next += META_SLOT;
  }
  hk__gunlock(&meta_lock);
  __builtin_memset(p, 0, META_SLOT);
  return p;
}

void hk__meta_free(void *p) {
  hk__glock(&meta_lock);
  *(void **)p = meta_free_list;
  meta_free_list = p;
  hk__gunlock(&meta_lock);
}

void hk__meta_fork_prepare(void) { pthread_mutex_lock(&meta_lock); }
void hk__meta_fork_parent(void) { pthread_mutex_unlock(&meta_lock); }
void hk__meta_fork_child(void) { pthread_mutex_init(&meta_lock, NULL); }
