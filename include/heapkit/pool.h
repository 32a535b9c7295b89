/* heapkit/pool.h: pools of fixed-size blocks.
 *
 * A pool carves blocks of one size from 4 MiB segments of the page layer. Allocation and free are
 * O(1) and LIFO: the most recently freed block is reused first; a pool with no free block carves
 * the next one from committed memory, committing more in steps. hk_pool_reset releases every
 * block at once.
 *
 * Threads: a pool is single-threaded (no locking at all) unless created with `.shared = true`,
 * in which case every function may be called from any thread (a lock per pool).
 *
 * Checking: a *checked* pool detects every bad free (a pointer that is not a block of this pool,
 * a double free) in O(1), reports it on stderr and ignores it. Pools are checked when created
 * with `.checked = true` or `.shared = true`, in debug builds (HK_DEBUG >= 1), under ASan or
 * valgrind, and when HEAPKIT_HARDENED=1. Other pools take the inline fast paths below, which
 * check nothing: there a bad free is undefined behaviour, as with free(). docs/arena.md describes
 * pools in full.
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
  bool shared;         /* thread-safe pool (always checked) */
  bool checked;        /* detect every bad free, at the cost of the inline fast paths */
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
/* NULL is ignored. In a checked pool a pointer that is not a live block of p is reported and
 * ignored; in an unchecked pool it is undefined behaviour (caught only when it is cheap to). */
static inline void hk_pool_free(hk_pool *p, void *block);
HK_API void hk__pool_free_slow(hk_pool *p, void *block);
/* Frees every block at once; keeps `retain` committed bytes and returns the rest. */
HK_API void hk_pool_reset(hk_pool *p);
HK_API void hk_pool_destroy(hk_pool *p);
HK_API size_t hk_pool_block_size(const hk_pool *p);
/* True if q is a live (allocated, not freed) block of p, or points inside one. */
HK_API bool hk_pool_contains(const hk_pool *p, const void *q);
HK_API void hk_pool_stats_get(hk_pool *p, hk_pool_stats *out);

/* The inline fast paths: a pool starts with this head. The free blocks of an unchecked pool are
 * on a stack of pointers (the most recently freed on top): allocation pops it, free pushes, and
 * neither touches the block or chases a pointer through it. room is how many entries the inline
 * free may fill: the committed stack slots, never more than the blocks carved so far, and 0 in a
 * checked pool, whose free list lives elsewhere; past room, and for an empty stack, the
 * out-of-line paths take over (they grow the stack, carve blocks, and do all the checking). */
typedef struct hk_pool_head {
  void **stack;
  size_t n;
  size_t room;
} hk_pool_head;

static inline void *hk_pool_alloc(hk_pool *p) {
  hk_pool_head *h = (hk_pool_head *)p;
  if (HK_LIKELY(h != NULL)) {
    size_t n = h->n;
    if (HK_LIKELY(n != 0)) {
      h->n = n - 1;
      return h->stack[n - 1];
    }
  }
  return hk__pool_alloc_slow(p);
}

static inline void hk_pool_free(hk_pool *p, void *block) {
  hk_pool_head *h = (hk_pool_head *)p;
  if (HK_LIKELY(h != NULL && block != NULL)) {
    size_t n = h->n;
    if (HK_LIKELY(n < h->room)) {
      h->stack[n] = block;
      h->n = n + 1;
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
