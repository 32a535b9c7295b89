/* heapkit/pool.h: pools of fixed-size blocks.
 *
 * A pool carves blocks of one size from 4 MiB segments of the page layer. Allocation and free are
 * O(1) and LIFO: the most recently freed block is reused first; a pool with no free block carves
 * the next one from committed memory, committing more in steps. hk_pool_reset releases every
 * block at once.
 *
 * Threads: a pool is single-threaded (no locking at all) unless created with `.shared = true`,
 * in which case every function may be called from any thread and a block may be freed by another
 * thread: each thread keeps a small cache of free blocks per shared pool (LIFO per thread), moved
 * to and from the pool in batches under its lock; a thread's cached blocks go back to the pool
 * when it exits. A shared pool may be reset or destroyed while other threads hold cached blocks
 * of it, but not while they call into it.
 *
 * Checking: by default every free is checked in O(1), on the inline fast path: a pointer that is
 * not the start of a block this pool carved (foreign memory, another pool's or malloc's block, an
 * interior pointer) or a block that is already free (a double free) ends the process with one
 * line on stderr, "heapkit: invalid free of 0x... to pool 0x... (...)" or "heapkit: double free
 * of 0x... to pool 0x... (...)", as hk_free does. `.unchecked = true` opts out: the inline free
 * then checks nothing and a bad free is undefined behaviour, as with free() in most allocators
 * (debug and sanitizer builds, valgrind runs and HEAPKIT_HARDENED=1 check those pools anyway).
 * docs/arena.md describes pools in full.
 */
#ifndef HEAPKIT_POOL_H
#define HEAPKIT_POOL_H
#include "common.h"

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_pool hk_pool;

/* Largest block a pool serves. */
#define HK_POOL_MAX_BLOCK ((size_t)256 << 10)

typedef struct hk_pool_options {
  size_t block_size;   /* bytes per block, 1..HK_POOL_MAX_BLOCK (at least 16, rounded up to the alignment) */
  size_t align;        /* power of two up to 4096; 0 = 16 */
  bool shared;         /* thread-safe pool (per-thread caches, a lock per pool; every call out of line) */
  bool checked;        /* no effect: pools are checked unless .unchecked (kept for source compatibility) */
  size_t commit_step;  /* growth step of committed memory; 0 = 64 KiB */
  size_t retain;       /* committed bytes hk_pool_reset keeps for reuse; 0 = 1 MiB */
  bool unchecked;      /* no bad-free checks on the inline free: a bad free is undefined behaviour */
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
  size_t bad_frees;      /* always 0: a detected bad free ends the process (kept for source compatibility) */
} hk_pool_stats;

/* NULL with errno EINVAL (size 0 or above HK_POOL_MAX_BLOCK, bad alignment) or ENOMEM. A handle
 * is opaque: a shared pool's is odd (HK__POOL_SHARED_TAG below), so do not keep flags in its low
 * bits. */
HK_API hk_pool *hk_pool_new(size_t block_size);
HK_API hk_pool *hk_pool_new_ex(const hk_pool_options *opt);
/* A block, or NULL (errno ENOMEM) when memory runs out. Contents are undefined. */
static inline void *hk_pool_alloc(hk_pool *p);
/* A zeroed block. */
HK_API void *hk_pool_zalloc(hk_pool *p);
/* NULL is ignored. A pointer that is not a live block of p ends the process with a message; in a
 * pool created with .unchecked it is undefined behaviour (caught only when it is cheap to). */
static inline void hk_pool_free(hk_pool *p, void *block);
/* Frees every block at once; keeps `retain` committed bytes and returns the rest. */
HK_API void hk_pool_reset(hk_pool *p);
HK_API void hk_pool_destroy(hk_pool *p);
HK_API size_t hk_pool_block_size(const hk_pool *p);
/* True if q is a live (allocated, not freed) block of p, or points inside one. */
HK_API bool hk_pool_contains(const hk_pool *p, const void *q);
HK_API void hk_pool_stats_get(hk_pool *p, hk_pool_stats *out);

/* The inline fast paths: a pool starts with this head. Free blocks are on a stack of pointers
 * (the most recently freed on top): allocation pops it, free pushes, and neither chases a pointer
 * through a block. top is the next free slot; the word below the first entry is NULL, so a pop
 * that reads NULL found the stack empty. Debug and sanitizer pools, destroyed pools and this
 * thread's dummy head (NULL and shared pools: hk__pool_head_of below) point top at a page
 * boundary after a NULL word and keep win at the unchecked flag alone (the inline free's cheapest
 * way out: the flag, then top's page boundary), so every call goes out of line, and out of line
 * are also carving, stack growth and everything the checks below send there. Every path of the
 * inline functions ends in one store of top (an out-of-line call returns the top to store), so
 * that gcc keeps top in a register across a loop of calls; only the store stays on every call.
 *
 * The checks of a (default) checked pool read this head and the block's first word; allocation
 * writes nothing but top:
 *   - window: base and nwin (win >> HK__POOL_NWIN_SHIFT) describe the blocks carved in the pool's
 *     current segment. With stride = odd << rot (rot = win & 63) and inv = odd^-1 mod 2^64,
 *     x -> rotr(x * inv, rot) permutes the 64-bit integers and maps each multiple k * stride to k,
 *     so every other value of q - base (wrapped) maps to at least 2^64 / stride: one compare with
 *     nwin rejects foreign, interior, uncarved and below-base pointers before the block is read.
 *     Blocks of the pool's older segments fail it too and are checked out of line. The window is
 *     also the push's capacity test: it admits a block only while the stack has a slot for it
 *     (nwin 0 while there is no stack; src/pool/pool.c, window_n).
 *   - slot: a free block's first word holds the address of its stack slot, and only a free block
 *     is in a slot below top (each block at most once), so "the first word is a slot below top
 *     that holds this block" means free, exactly, whatever a live block holds. The inline free
 *     sends out of line every first word in [top's 4 MiB-aligned segment + HK__POOL_STACK_OFF,
 *     top) (a superset of those slots: a stack that outgrows its 4 MiB segment gets nwin 0);
 *     out of line the slot is read: it holds the block, a double free; it does not (the stale
 *     slot of a block popped and not written since, or data that looks like one), the free goes
 *     on. So allocation need not clear anything.
 * An unchecked pool (win bit 7) pushes without either check, inline while top is not at a 4 KiB
 * boundary (the stack's committed end is one; 1 push in 512 checks out of line).
 * The free's loop is bound by loads and stores, not by instructions (docs/arena.md): nwin shares
 * the word the rotation is loaded from (one shift instead of a load), and the block's slot word
 * is written through a type of its own (HK__POOL_SET_SLOT below) so that it cannot be the head's
 * words for gcc. */
typedef struct hk_pool_head {
  uintptr_t top; /* a void **: an integer, because a program's stores of pointers (into its own
                    arrays of blocks) may write a pointer field as far as gcc's type-based alias
                    analysis knows, and top would be loaded again after each */
  uint64_t win; /* rot | HK__POOL_UNCHECKED | nwin << HK__POOL_NWIN_SHIFT */
  uintptr_t base;
  uint64_t inv;
} hk_pool_head;

#define HK__POOL_UNCHECKED ((uint64_t)0x80)
#define HK__POOL_NWIN_SHIFT 8
/* Stack segments are 4 MiB-aligned; the stack's first slot is this far into its segment. */
#define HK__POOL_SEG_MASK (((uintptr_t)1 << 22) - 1)
#define HK__POOL_STACK_OFF ((uintptr_t)256)

/* The checked free's store of the slot address into the block. Under gcc it goes through a type
 * of its own, which gcc's type-based alias analysis knows cannot be a field of the head: in a loop
 * of frees gcc then loads win, base and inv once (and again after an out-of-line call) instead of
 * on every free, as a memcpy store, which may write anything, makes it do (docs/arena.md,
 * Performance). The store is valid C (memory with no declared type takes the type it is written
 * with, until the program writes the block again), and gcc never uses types to move a store
 * across another store or across an earlier load, so the program's own accesses to the block keep
 * their order around it; the read stays a memcpy. Other compilers get the memcpy. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER)
typedef struct hk__pool_slot_word {
  uintptr_t slot;
} hk__pool_slot_word;
#define HK__POOL_SET_SLOT(block, v) (((hk__pool_slot_word *)(block))->slot = (v))
#else
#define HK__POOL_SET_SLOT(block, v) memcpy((block), &(v), sizeof(uintptr_t))
#endif

/* The out-of-line paths of hk_pool_alloc and hk_pool_free. Each returns the top the inline code
 * stores into the head it used (hk__pool_head_of: the pool's, read again after the call, or this
 * thread's dummy head's), with the block for an allocation (NULL, errno set, on failure).
 * `leaf`: they never call back into the caller's translation unit (no callbacks, no user hooks),
 * so gcc knows they cannot change the caller's own static variables (a pool handle kept in one,
 * as the benchmark does, stays in a register). A change that makes them call user code must drop
 * the attribute. */
#if defined(__has_attribute)
#if __has_attribute(leaf)
#define HK__POOL_LEAF __attribute__((leaf))
#endif
#endif
#ifndef HK__POOL_LEAF
#define HK__POOL_LEAF
#endif
typedef struct hk__pool_got {
  void *block;
  void **top;
} hk__pool_got;
HK_API hk__pool_got hk__pool_alloc_slow(hk_pool *p) HK__POOL_LEAF;
HK_API void **hk__pool_free_slow(hk_pool *p, void *block) HK__POOL_LEAF;

/* The head the inline paths use: the pool's own, or, for NULL and shared pools (whose handle
 * carries HK__POOL_SHARED_TAG), this thread's dummy head (top at a page boundary after a NULL
 * word, win the unchecked flag: every call out of line). A select, not a branch: every path of
 * the inline functions then ends in one store of top to the same head, and gcc keeps top in a
 * register across a loop of calls (docs/arena.md, Performance). Per thread, because that store
 * also runs after every out-of-line call, and a shared pool's head written by every thread (even
 * with the value it holds) would be a data race. */
#define HK__POOL_SHARED_TAG ((uintptr_t)1)
#if defined(__GNUC__)
HK_API extern __thread hk_pool_head hk__pool_thread_head __attribute__((tls_model("initial-exec")));
#else
HK_API extern _Thread_local hk_pool_head hk__pool_thread_head;
#endif
static inline hk_pool_head *hk__pool_head_of(hk_pool *p) {
  uintptr_t u = (uintptr_t)p;
  return (u & HK__POOL_SHARED_TAG) || u == 0 ? &hk__pool_thread_head : (hk_pool_head *)p;
}

/* The checked or unchecked push of hk_pool_free and hk_pool_cursor_free: the new top, or NULL
 * when the free must go out of line. */
static inline void **hk__pool_push(void **t, uint64_t win, uintptr_t base, uint64_t inv, void *block) {
  /* The unchecked branch first, without a hint: gcc then gives each mode's loop of frees a
   * compact body (docs/arena.md, Performance). */
  if (win & HK__POOL_UNCHECKED) {
    if (HK_LIKELY(((uintptr_t)t & 4095) != 0 && block != NULL)) {
      *t = block;
      return t + 1;
    }
  } else {
    /* no capacity test: the window admits a block only while the stack has a slot for it */
    uint64_t x = (uint64_t)((uintptr_t)block - base) * inv;
    unsigned r = (unsigned)win & 63;
    x = (x >> r) | (x << ((64 - r) & 63));
    if (HK_LIKELY(x < (win >> HK__POOL_NWIN_SHIFT))) {
      uintptr_t w, tt = (uintptr_t)t;
      memcpy(&w, block, sizeof w); /* memcpy: the block may hold any type */
      if (HK_LIKELY(tt - 1 + HK__POOL_STACK_OFF - w >= (tt & HK__POOL_SEG_MASK))) {
        HK__POOL_SET_SLOT(block, tt);
        *t = block;
        return t + 1;
      }
    }
  }
  return (void **)0;
}

/* gcc 12 with -fsanitize=undefined at -O2 tests the thread's dummy head's address for NULL with
 * the flags of an unrelated earlier test (seen after `errno = 0`), and reports a null member
 * access that cannot happen (pool.single under UBSan, 2026-12-07); h is never NULL
 * (hk__pool_head_of). These two functions are left out of UBSan (no_sanitize("null") alone did
 * not stop the report); an opaque-asm workaround cost 1.7 ns per pair (4.1 vs 2.4 ns). No effect
 * without the sanitizer. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define HK__POOL_NO_NULL_CHECK __attribute__((no_sanitize("undefined")))
#endif
#endif
#ifndef HK__POOL_NO_NULL_CHECK
#define HK__POOL_NO_NULL_CHECK
#endif

HK__POOL_NO_NULL_CHECK static inline void *hk_pool_alloc(hk_pool *p) {
  hk_pool_head *h = hk__pool_head_of(p);
  void **t = (void **)h->top;
  void *b = t[-1];
  if (HK_LIKELY(b != NULL)) {
    t = t - 1;
  } else {
    hk__pool_got g = hk__pool_alloc_slow(p);
    b = g.block;
    t = g.top;
  }
  h->top = (uintptr_t)t; /* on every path (above) */
  return b;
}

HK__POOL_NO_NULL_CHECK static inline void hk_pool_free(hk_pool *p, void *block) {
  hk_pool_head *h = hk__pool_head_of(p);
  /* win, base and inv read here, in either mode, so that gcc can keep them in registers across a
   * loop of frees (HK__POOL_SET_SLOT) */
  void **t = hk__pool_push((void **)h->top, h->win, h->base, h->inv, block);
  if (HK_UNLIKELY(t == (void **)0)) t = hk__pool_free_slow(p, block);
  h->top = (uintptr_t)t; /* on every path (above) */
}

/* ---- cursors: the stack's top in the caller's registers ------------------------------------------
 * hk_pool_alloc and hk_pool_free store the stack's top into the pool on every call (under gcc
 * they keep it in a register across a loop, but the store stays: docs/arena.md, Performance),
 * and clang 14 also loads it again on every call, so that the next call's load waits for
 * the last store (a store-to-load forwarding, 4-5 cycles on Intel cores). A cursor is a local
 * copy of the head that the compiler can keep in registers (pass it to nothing but these four
 * functions), stored back only by out-of-line calls and close, exactly as hk_arena_cursor does
 * for arenas:
 *
 *   hk_pool_cursor c = hk_pool_cursor_open(p);
 *   for (...) { hk_pool_cursor_free(&c, old[i]); new[i] = hk_pool_cursor_alloc(&c); }
 *   hk_pool_cursor_close(&c);
 *
 * The blocks handed out and every check are exactly those of hk_pool_alloc and hk_pool_free (the
 * same inline code on the copy: LIFO, a bad free ends the process); every out-of-line call writes
 * the copy's top back to the pool first and takes the pool's head back after. Between open and
 * close, use the pool only through the cursor (one cursor at a time, on one thread): the pool's
 * own functions would not see its top. Shared, listed (debug, sanitizer) pools and a NULL or
 * dead pool give a cursor whose every call goes out of line, where it behaves as hk_pool_alloc
 * and hk_pool_free (a shared pool may have one cursor per thread). close writes the top back; a
 * closed cursor still works, every call out of line, as hk_pool_alloc/hk_pool_free on its pool. */
typedef struct hk_pool_cursor {
  void **top;
  uint64_t win; /* as hk_pool_head; HK__POOL_DETACHED: closed (or never attached), nothing to write back */
  uintptr_t base;
  uint64_t inv;
  hk_pool *pool;
} hk_pool_cursor;

#define HK__POOL_DETACHED ((uint64_t)0x40)

/* Internal: each writes top back to p when the cursor is attached to a live stack-mode pool, does
 * what its name says, and returns the head the cursor goes on with (p's, or one that sends every
 * call out of line). By value, so that the cursor's address never escapes. */
HK_API hk_pool_head hk__pool_cursor_attach(hk_pool *p);
HK_API hk_pool_head hk__pool_cursor_alloc_slow(hk_pool *p, void **top, uint64_t win, void **out);
HK_API hk_pool_head hk__pool_cursor_free_slow(hk_pool *p, void **top, uint64_t win, void *block);
HK_API hk_pool_head hk__pool_cursor_detach(hk_pool *p, void **top, uint64_t win);

static inline void hk__pool_cursor_set(hk_pool_cursor *c, hk_pool_head h) {
  c->top = (void **)h.top;
  c->win = h.win;
  c->base = h.base;
  c->inv = h.inv;
}

static inline hk_pool_cursor hk_pool_cursor_open(hk_pool *p) {
  hk_pool_cursor c;
  c.pool = p;
  hk__pool_cursor_set(&c, hk__pool_cursor_attach(p));
  return c;
}

static inline void *hk_pool_cursor_alloc(hk_pool_cursor *c) {
  void **t = c->top;
  void *b = t[-1];
  if (HK_LIKELY(b != NULL)) {
    c->top = t - 1;
    return b;
  }
  void *nb; /* not b: its address would keep b in memory on the fast path too */
  hk__pool_cursor_set(c, hk__pool_cursor_alloc_slow(c->pool, t, c->win, &nb));
  return nb;
}

/* The checks of hk_pool_free, on the cursor's copy of the head. */
static inline void hk_pool_cursor_free(hk_pool_cursor *c, void *block) {
  void **t = hk__pool_push(c->top, c->win, c->base, c->inv, block);
  if (HK_LIKELY(t != (void **)0)) {
    c->top = t;
    return;
  }
  hk__pool_cursor_set(c, hk__pool_cursor_free_slow(c->pool, c->top, c->win, block));
}

static inline void hk_pool_cursor_close(hk_pool_cursor *c) {
  hk__pool_cursor_set(c, hk__pool_cursor_detach(c->pool, c->top, c->win));
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
