/* heapkit/arena.h: arenas (bump allocation with save points and cleanups), the thread-local
 * region stack, and per-thread scratch arenas.
 *
 * An arena hands out memory by moving a pointer; nothing is freed one by one. Memory comes back
 * in groups: hk_arena_restore releases everything allocated after a save point, hk_arena_reset
 * everything, hk_arena_destroy everything plus the arena. Cleanups registered with
 * hk_arena_defer run, last registered first, when the memory they belong to is released.
 *
 * Threads: an arena is used by one thread at a time, unless created with HK_ARENA_CONCURRENT;
 * then hk_arena_alloc, hk_arena_alloc_aligned, hk_arena_defer and hk_arena_new(child) may be called
 * from many threads at once, while save/restore/reset/destroy still need the arena to be quiet.
 * The full description, including every error and what it looks like, is in docs/arena.md.
 */
#ifndef HEAPKIT_ARENA_H
#define HEAPKIT_ARENA_H
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hk_arena hk_arena;

/* Flags for hk_arena_options.flags. */
enum {
  HK_ARENA_CONCURRENT = 1u << 0, /* allocation is thread-safe (atomic bump) */
  HK_ARENA_TRACE = 1u << 1,      /* record every allocation for hk_arena_trace_write */
  HK_ARENA_NO_POISON = 1u << 2,  /* do not poison released memory for ASan/valgrind */
};

/* Called when a commit would exceed the budget of `a` (the arena whose limit is hit: the allocating
 * arena or one of its ancestors). It may release memory (reset or destroy other arenas, restore
 * save points of arenas that are not allocating right now) and returns nonzero to ask for a retry,
 * 0 to give up. `need` is the number of bytes the failing commit asked for. */
typedef int (*hk_arena_release_fn)(hk_arena *a, size_t need, void *arg);
/* Called instead of returning NULL when an allocation of `size` bytes fails; its result is what
 * the allocation returns (a handler typically logs and aborts, or longjmps out). A failure inside
 * 16 nested handler calls (a handler allocating from its own arena) returns NULL with errno
 * ENOMEM without calling it again (docs/arena.md, Errors). */
typedef void *(*hk_arena_oom_fn)(hk_arena *a, size_t size, void *arg);

/* All fields zero (or options NULL) give the defaults. */
typedef struct hk_arena_options {
  unsigned flags;               /* HK_ARENA_* */
  size_t reserve;               /* virtual memory of the first chunk; 0 = 4 MiB (rounded up to 4 MiB) */
  size_t commit_step;           /* growth step of committed memory; 0 = 64 KiB (at least one page-layer unit) */
  size_t retain;                /* committed bytes kept by reset/restore for reuse; 0 = 1 MiB */
  size_t budget;                /* max committed bytes of this arena and its descendants; 0 = no own limit */
  hk_arena *parent;             /* destroy this arena with parent; count it against parent's budget */
  hk_arena_release_fn release;  /* budget pressure callback (see above) */
  void *release_arg;
  hk_arena_oom_fn oom;          /* failure handler; NULL = return NULL (inherited from the parent) */
  void *oom_arg;
  const char *replay_path;      /* CSV with id,lower,upper,size,offset: serve the allocations from planned offsets
                                   (every row ends with a newline; the peak offset+size fits in physical memory;
                                   rows live at the same time must not overlap in memory: with an upper
                                   column, hk_arena_new checks it and fails with EINVAL) */
} hk_arena_options;

/* A save point. Plain data: copy it freely; it is valid until the arena is restored to an earlier
 * point, reset or destroyed. */
typedef struct hk_arena_mark {
  hk_arena *arena;
  void *chunk;
  char *pos;
  size_t cleanups;  /* number of pending cleanups at the time of the save */
  size_t seq;       /* allocation count at the time of the save (traces) */
} hk_arena_mark;

typedef struct hk_arena_stats {
  size_t allocated;      /* bytes handed out and not yet released (with alignment padding) */
  size_t allocated_peak; /* high-water mark of allocated */
  size_t committed;      /* bytes of committed memory the arena holds (its metadata included) */
  size_t committed_peak;
  size_t reserved;       /* virtual memory reserved by the arena's chunks */
  size_t chunks;         /* reservations chained so far and still held */
  size_t cleanups;       /* cleanups registered and not yet run */
  size_t budget_used;    /* committed bytes of this arena and all its descendants */
  size_t replay_hits;    /* replay mode: allocations served from their planned offset */
  size_t replay_misses;  /* replay mode: allocations that left the plan and were bump-allocated (cleanup
                            records are neither: never served from a plan) */
  size_t arenas;         /* 1 per arena; in global statistics the number of live arenas */
} hk_arena_stats;

/* ---- arenas ------------------------------------------------------------------------------------ */

/* A new arena, or NULL with errno set (ENOMEM: no memory or the parent's budget is exhausted;
 * EINVAL: contradictory options, or a replay file that cannot be read or is not a valid plan). */
HK_API hk_arena *hk_arena_new(const hk_arena_options *opt);
/* Runs the children's destruction, then the pending cleanups (LIFO), then returns all memory. */
HK_API void hk_arena_destroy(hk_arena *a);

/* size bytes aligned to alignof(max_align_t) (16). NULL (errno ENOMEM) or the oom handler's result
 * when memory or the budget runs out. Size 0 gives a valid pointer that the next allocation may
 * share. */
HK_API void *hk__arena_alloc_slow(hk_arena *a, size_t size, size_t align);
static inline void *hk_arena_alloc(hk_arena *a, size_t size);
/* align must be a power of two up to 4 MiB; otherwise NULL with errno EINVAL. */
static inline void *hk_arena_alloc_aligned(hk_arena *a, size_t size, size_t align);
/* count * size zeroed bytes, aligned to max(align, 16); NULL with errno ENOMEM when count * size
 * overflows (or as hk_arena_alloc), EINVAL when align is not a power of two. */
HK_API void *hk_arena_calloc_aligned(hk_arena *a, size_t count, size_t size, size_t align);
#define hk_arena_calloc(a, count, size) hk_arena_calloc_aligned((a), (count), (size), HK_ARENA_ALIGN)
HK_API char *hk_arena_strdup(hk_arena *a, const char *s);

HK_API hk_arena_mark hk_arena_save(hk_arena *a);
/* Runs the cleanups registered after m (LIFO) and releases everything allocated after m for reuse.
 * A mark of another arena, or one already released by an earlier restore, is reported on stderr
 * and ignored. */
HK_API void hk_arena_restore(hk_arena *a, hk_arena_mark m);
/* Registers fn(arg) to run when the memory allocated up to now is released: at the restore of a
 * mark saved before this call, at reset or at destroy. The record lives in the arena. HK_OK, HK_EINVAL (fn NULL) or HK_ENOMEM
 * (the record could not be allocated: fn was not registered). */
HK_API int hk_arena_defer(hk_arena *a, void (*fn)(void *), void *arg);
/* Runs all pending cleanups and releases every allocation; keeps up to `retain` committed bytes
 * for reuse and returns the rest to the page layer. Children stay alive. */
HK_API void hk_arena_reset(hk_arena *a);

HK_API void hk_arena_stats_get(const hk_arena *a, hk_arena_stats *out);
/* Totals over all live arenas (allocated may lag by what each arena handed out since its last
 * refill, save point or reset). */
HK_API void hk_arena_global_stats(hk_arena_stats *out);
/* True if p points into memory this arena currently has handed out (not after its bump pointer). */
HK_API bool hk_arena_contains(const hk_arena *a, const void *p);
/* The arena given as opt.parent at creation; NULL without one (regions and scratch arenas), for a
 * NULL a, or for a handle that is not a live arena (while its memory is still mapped). */
HK_API hk_arena *hk_arena_parent(const hk_arena *a);

/* Writes the trace of an HK_ARENA_TRACE arena as CSV `id,lower,upper,size` (docs/planner.md):
 * allocation k has id k and lives in [lower, upper) measured in allocation events; buffers still
 * live are closed at the current time. HK_OK, HK_EINVAL (not a tracing arena), HK_ENOMEM (the
 * trace was abandoned: a record could not be stored, with a warning then) or HK_EPERM (the file
 * could not be written). */
HK_API int hk_arena_trace_write(const hk_arena *a, const char *path);

/* ---- regions: a thread-local stack of arenas (letregion) ---------------------------------------- */

/* Pushes a fresh region (an arena with default options) on this thread's stack. NULL on failure. */
HK_API hk_arena *hk_region_push(void);
/* Pops r and every region pushed after it (their cleanups run); a region that is not on this
 * thread's stack is reported on stderr and ignored. */
HK_API void hk_region_pop(hk_arena *r);
/* The innermost region of this thread, or NULL. */
HK_API hk_arena *hk_region_top(void);
HK_API size_t hk_region_depth(void);
/* Allocates from the innermost region; NULL (errno EINVAL) when the stack is empty. */
HK_API void *hk_region_alloc(size_t size);

/* ---- scratch arenas ----------------------------------------------------------------------------- */

/* A scratch scope on one of this thread's scratch arenas that is none of the `n` arenas in
 * `conflicts` (the arenas the caller is using for results it will keep). .arena is NULL when every
 * scratch arena of the thread (HK_SCRATCH_ARENAS of them) conflicts. */
#define HK_SCRATCH_ARENAS 4
typedef struct hk_scratch {
  hk_arena *arena;
  hk_arena_mark mark;
} hk_scratch;
HK_API hk_scratch hk_scratch_begin(hk_arena *const *conflicts, size_t n);
/* Releases everything the scope allocated (and runs its cleanups). */
HK_API void hk_scratch_end(hk_scratch s);

/* ---- the inline fast path ------------------------------------------------------------------------
 * An arena starts with these two pointers. When the rounded request ends before end, the
 * allocation is an add and a compare on cur (the rounding folds away for constant sizes), and a
 * prefetch of the memory a little further on (HK__ARENA_PREFETCH);
 * everything else (growth, budgets, concurrent mode, tracing, sanitizer annotations, which keep
 * cur == end == NULL so that the compare always fails) goes to hk__arena_alloc_slow. cur is
 * always 16-aligned. */
typedef struct hk_arena_head {
  char *cur;
  char *end;
} hk_arena_head;

#define HK_ARENA_ALIGN 16
/* Larger requests take the slow path, so that neither the rounding nor cur + size can wrap (a
 * pointer is below 2^47); the compiler drops the test when it knows the size. */
#define HK__ARENA_FAST_MAX ((size_t)1 << 40)

/* size rounded up to HK_ARENA_ALIGN (the caller keeps size <= HK__ARENA_FAST_MAX, or checks). */
static inline size_t hk__arena_round(size_t size) { return (size + (HK_ARENA_ALIGN - 1)) & ~(size_t)(HK_ARENA_ALIGN - 1); }

/* How far past the new cur hk_arena_alloc prefetches (for writing) the memory the next allocations
 * will hand out. A loop that allocates and writes fresh memory waits for those lines (their
 * read-for-ownership) with the store of cur queued behind its own writes; prefetched, they are in
 * L1 when written. Measured on the Intel host of 2026-12-07 (docs/arena.md, Performance): the AST
 * workload 2.48 -> 2.16 ns per node, 256 to 1024 bytes all alike. A prefetch never faults, so
 * one past the chunk's committed end is harmless. */
#define HK__ARENA_PREFETCH 512
#if defined(__GNUC__) || defined(__clang__)
/* q is an integer: the address may lie past the chunk, where pointer arithmetic would not be C */
#define HK__ARENA_PREFETCH_AT(q) __builtin_prefetch((const void *)((q) + HK__ARENA_PREFETCH), 1, 3)
#else
#define HK__ARENA_PREFETCH_AT(q) ((void)0)
#endif

static inline void *hk_arena_alloc(hk_arena *a, size_t size) {
  hk_arena_head *h = (hk_arena_head *)a;
  if (HK_LIKELY(h != NULL)) {
    uintptr_t p = (uintptr_t)h->cur;
    uintptr_t np = p + hk__arena_round(size);
    if (HK_LIKELY(size <= HK__ARENA_FAST_MAX && np < (uintptr_t)h->end)) {
      h->cur = (char *)np;
      HK__ARENA_PREFETCH_AT(np);
      return (void *)p;
    }
  }
  return hk__arena_alloc_slow(a, size, HK_ARENA_ALIGN);
}

static inline void *hk_arena_alloc_aligned(hk_arena *a, size_t size, size_t align) {
  if (align <= HK_ARENA_ALIGN && align != 0 && (align & (align - 1)) == 0) return hk_arena_alloc(a, size);
  return hk__arena_alloc_slow(a, size, align);
}

/* ---- cursors: the bump pointer in the caller's registers ----------------------------------------
 * hk_arena_alloc keeps the bump pointer in the arena, so a loop of allocations loads and stores it
 * once per allocation: no compiler keeps it in a register, because the slow path (a call) may move
 * it. A cursor is a local copy of {cur, end} that the compiler can keep in registers (pass it to
 * nothing but these three functions), which takes a load and a store off every allocation of a hot
 * loop (building a tree, parsing; docs/arena.md has the figures):
 *
 *   hk_arena_cursor c = hk_arena_cursor_open(a);
 *   for (...) { node *n = hk_arena_cursor_alloc(&c, sizeof *n); ... }
 *   hk_arena_cursor_close(&c);
 *
 * The allocations are exactly those hk_arena_alloc would make (16-aligned, NULL with errno or the
 * oom handler's result on failure, growth, budgets, tracing and sanitizer annotations included:
 * arenas in slow-only mode serve every cursor allocation out of line). Between open and close, use
 * the arena only through the cursor (one cursor at a time, on one thread; a concurrent arena may
 * have one per thread): its own functions would not see the cursor's allocations. close writes the
 * bump pointer back; a closed cursor still allocates correctly, every call out of line. */
typedef struct hk_arena_cursor {
  char *cur;
  char *end; /* NULL: every allocation takes the slow path (slow-only arenas, after a failure, closed) */
  hk_arena *arena;
} hk_arena_cursor;

/* Internal: writes cur back when the cursor mirrors the arena (end != NULL), allocates size bytes
 * like hk__arena_alloc_slow and returns {the allocation, the arena's commit end} when the arena can
 * go on bumping from it, {the allocation (or NULL), NULL} otherwise. */
HK_API hk_arena_head hk__arena_cursor_refill(hk_arena *a, char *cur, char *end, size_t size);
HK_API void hk__arena_cursor_sync(hk_arena *a, char *cur, char *end);

static inline hk_arena_cursor hk_arena_cursor_open(hk_arena *a) {
  hk_arena_cursor c = {NULL, NULL, a};
  if (a) {
    const hk_arena_head *h = (const hk_arena_head *)a;
    c.cur = h->cur;
    c.end = h->end;
  }
  return c;
}

static inline void *hk_arena_cursor_alloc(hk_arena_cursor *c, size_t size) {
  uintptr_t n = hk__arena_round(size);
  uintptr_t p = (uintptr_t)c->cur;
  if (HK_UNLIKELY(!(size <= HK__ARENA_FAST_MAX && p + n < (uintptr_t)c->end))) {
    hk_arena_head r = hk__arena_cursor_refill(c->arena, c->cur, c->end, size);
    p = (uintptr_t)r.cur;
    c->end = r.end;
  }
  c->cur = (char *)(p + n);
  return (void *)p;
}

static inline void hk_arena_cursor_close(hk_arena_cursor *c) {
  hk__arena_cursor_sync(c->arena, c->cur, c->end);
  c->cur = c->end = NULL;
}

/* Typed helpers: HK_ARENA_NEW(a, struct node) and HK_ARENA_NEW_ARRAY(a, int, n) (zeroed). */
#define HK_ARENA_NEW(a, T) ((T *)hk_arena_calloc_aligned((a), 1, sizeof(T), __alignof__(T)))
#define HK_ARENA_NEW_ARRAY(a, T, n) ((T *)hk_arena_calloc_aligned((a), (n), sizeof(T), __alignof__(T)))

#ifdef __cplusplus
}
#endif
#endif
