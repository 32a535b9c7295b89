/* heapkit/pool.h: pools of fixed-size blocks.
 *
 * A pool carves blocks of one size from 4 MiB segments of the page layer. Allocation and free are
 * O(1): a free block goes on a LIFO list, so the most recently freed block is reused first; a pool
 * with no free block carves the next one from committed memory, committing more in steps.
 * hk_pool_reset releases every block at once.
 *
 * Threads: a pool is single-threaded (no locking at all) unless created with `.shared = true`,
 * in which case every function may be called from any thread (a lock per pool).
 * Bad frees (a pointer that is not a block of this pool, a double free) are detected in O(1),
 * reported on stderr and ignored. docs/arena.md describes pools in full.
 */
#ifndef HEAPKIT_POOL_H
#define HEAPKIT_POOL_H
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_pool hk_pool;

/* Largest block a pool serves. */
#define HK_POOL_MAX_BLOCK ((size_t)256 << 10)

typedef struct hk_pool_options {
  size_t block_size;   /* bytes per block, 1..HK_POOL_MAX_BLOCK (at least 16, rounded up to the alignment) */
  size_t align;        /* power of two up to 4096; 0 = 16 */
  bool shared;         /* thread-safe pool */
  size_t commit_step;  /* growth step of committed memory; 0 = 64 KiB */
  size_t retain;       /* committed bytes hk_pool_reset keeps for reuse; 0 = 1 MiB */
} hk_pool_options;

typedef struct hk_pool_stats {
  size_t block_size;     /* the rounded block size (the stride) */
  size_t in_use;         /* blocks allocated and not freed */
  size_t in_use_peak;
  size_t free_blocks;    /* blocks on the free list */
  size_t carved;         /* blocks ever carved from segments and not yet returned by reset */
  size_t committed;      /* bytes committed, metadata included */
  size_t committed_peak;
  size_t reserved;
  size_t segments;
  size_t bad_frees;      /* frees that were rejected (foreign pointer or double free) */
} hk_pool_stats;

/* NULL with errno EINVAL (size 0 or above HK_POOL_MAX_BLOCK, bad alignment) or ENOMEM. */
HK_API hk_pool *hk_pool_new(size_t block_size);
HK_API hk_pool *hk_pool_new_ex(const hk_pool_options *opt);
/* A block, or NULL (errno ENOMEM) when memory runs out. Contents are undefined. */
static inline void *hk_pool_alloc(hk_pool *p);
HK_API void *hk__pool_alloc_slow(hk_pool *p);
/* A zeroed block. */
HK_API void *hk_pool_zalloc(hk_pool *p);
/* NULL is ignored. A pointer that is not a live block of p is reported and ignored. */
static inline void hk_pool_free(hk_pool *p, void *block);
HK_API void hk__pool_free_slow(hk_pool *p, void *block);
/* Frees every block at once; keeps `retain` committed bytes and returns the rest. */
HK_API void hk_pool_reset(hk_pool *p);
HK_API void hk_pool_destroy(hk_pool *p);
HK_API size_t hk_pool_block_size(const hk_pool *p);
/* True if q is a live (allocated, not freed) block of p, or points inside one. */
HK_API bool hk_pool_contains(const hk_pool *p, const void *q);
HK_API void hk_pool_stats_get(hk_pool *p, hk_pool_stats *out);

/* The inline fast paths: a pool starts with this head. fast is true for single-threaded pools
 * outside sanitizer/valgrind runs and debug builds. Allocation pops the free list; free takes a
 * block of the first segment ([base, base + carved_bytes)) at a multiple of the stride whose
 * second word is not the free mark (secret ^ address), so every bad free still reaches the
 * checking slow path. The mark is explained in docs/arena.md. */
typedef struct hk_pool_head {
  void *free;
  size_t nfree;
  char *base;
  size_t carved_bytes;
  size_t stride;
  /* offset % stride == 0  <=>  rotr(offset * inv, tz) <= lim  (stride = odd << tz, inv = odd^-1
   * mod 2^64, lim = UINT64_MAX / stride): one multiply instead of a division. */
  uint64_t inv, lim;
  unsigned tz;
  uintptr_t secret;
  bool fast;
} hk_pool_head;

static inline void *hk_pool_alloc(hk_pool *p) {
  hk_pool_head *h = (hk_pool_head *)p;
  if (HK_LIKELY(h != NULL && h->fast)) {
    void **b = (void **)h->free;
    if (HK_LIKELY(b != NULL)) {
      h->free = b[0];
      b[1] = NULL;
      h->nfree--;
      return b;
    }
  }
  return hk__pool_alloc_slow(p);
}

static inline bool hk__pool_is_multiple(const hk_pool_head *h, uint64_t off) {
  uint64_t x = off * h->inv;
  return ((x >> h->tz) | (x << ((64 - h->tz) & 63))) <= h->lim;
}

static inline void hk_pool_free(hk_pool *p, void *block) {
  hk_pool_head *h = (hk_pool_head *)p;
  if (HK_LIKELY(h != NULL && h->fast)) {
    uintptr_t b = (uintptr_t)block, off = b - (uintptr_t)h->base;
    if (HK_LIKELY(off < h->carved_bytes && hk__pool_is_multiple(h, off) &&
                  ((uintptr_t *)block)[1] != (h->secret ^ b))) {
      ((void **)block)[0] = h->free;
      ((uintptr_t *)block)[1] = h->secret ^ b;
      h->free = block;
      h->nfree++;
      return;
    }
  }
  hk__pool_free_slow(p, block);
}

/* Typed helpers: a pool of T, blocks typed as T. */
#define HK_POOL_NEW(T) \
  hk_pool_new_ex(&(hk_pool_options){.block_size = sizeof(T), .align = __alignof__(T)})
#define HK_POOL_NEW_SHARED(T) \
  hk_pool_new_ex(&(hk_pool_options){.block_size = sizeof(T), .align = __alignof__(T), .shared = true})
#define HK_POOL_ALLOC(pool, T) ((T *)hk_pool_alloc(pool))
#define HK_POOL_ZALLOC(pool, T) ((T *)hk_pool_zalloc(pool))
#define HK_POOL_FREE(pool, ptr) hk_pool_free((pool), (ptr))

#ifdef __cplusplus
}
#endif
#endif
