/* heapkit/gc.h: a precise, generational, moving garbage collector for language runtimes.
 *
 * A complete minimal embedder (a cons cell and a string; compile with -lheapkit):
 *
 *   #include <heapkit.h>
 *   #include <string.h>
 *
 *   typedef struct cons { void *car, *cdr; } cons;            // both words may hold pointers
 *   static hk_gc_type CONS, STR;
 *
 *   static cons *mk(hk_gc_mutator *m, void *car, void *cdr) {
 *     HK_GC_ROOTS(m, car, cdr);                  // car/cdr survive (and are updated by) a GC below
 *     cons *c = hk_gc_alloc(m, CONS, sizeof(cons));
 *     if (!c) return NULL;                       // heap limit reached and the OOM callback gave up
 *     c->car = car; c->cdr = cdr;                // fresh objects need no barrier (they are young)
 *     return c;
 *   }
 *
 *   int main(void) {
 *     hk_gc_heap *h; hk_gc_mutator *m;
 *     if (hk_gc_heap_create(NULL, &h, &m) != HK_OK) return 1;   // NULL options = defaults
 *     hk_gc_type_desc cd = { .name = "cons", .size = sizeof(cons), .pointer_mask = 0x3 };
 *     hk_gc_type_desc sd = { .name = "string", .flags = HK_GC_TYPE_NO_POINTERS };
 *     hk_gc_type_register(h, &cd, &CONS);
 *     hk_gc_type_register(h, &sd, &STR);
 *     {
 *       cons *list = NULL;
 *       HK_GC_ROOTS(m, list);                    // a precise root until the closing brace
 *       for (int i = 0; i < 1000000; i++) {
 *         char *s = hk_gc_alloc_data(m, STR, 16); // pointer-free: kept apart, never scanned
 *         strcpy(s, "hello");
 *         list = mk(m, s, i % 1000 ? list : NULL);
 *       }
 *       HK_GC_WRITE(m, list, car, NULL);         // a store into an object that may be old
 *       hk_gc_collect(m, HK_GC_FULL);
 *       if (hk_gc_verify(m) != HK_OK) return 2;
 *     }                                          // frames popped before the heap goes
 *     hk_gc_stats st; hk_gc_stats_get(h, &st);
 *     hk_gc_heap_destroy(h);                     // unregisters m as well
 *     return 0;
 *   }
 *
 * The contract with the embedder, in short (docs/gc.md has the long form):
 *  - Objects are allocated with hk_gc_alloc / hk_gc_alloc_data and come back zeroed and 8-byte
 *    aligned, with a one-word header in front of them (never touch it). They may MOVE at any
 *    safepoint: every pointer into the GC heap that the collector cannot see (a C local, a field
 *    of a malloc'd struct) must be registered as a root, or the object pinned.
 *  - Safepoints are: hk_gc_alloc*, hk_gc_safepoint, hk_gc_collect, and any hk_gc_* call marked
 *    "(safepoint)". Between safepoints nothing moves and nothing is freed.
 *  - Every store of a pointer into a field of a heap object goes through HK_GC_WRITE (or calls
 *    hk_gc_write_barrier(m, obj) right before the store), except stores into an object allocated
 *    since the mutator's last safepoint.
 *  - A pointer-holding slot contains NULL, a pointer to the start of a live object of the same
 *    heap, or a value with one of its low three bits set (a tagged immediate, which the
 *    collector ignores). Interior pointers are not supported.
 *  - Each thread that touches a heap registers (hk_gc_thread_register) and uses its own
 *    mutator. A thread that blocks (I/O, locks, joins) while others may allocate brackets the
 *    blocking call with hk_gc_blocking_begin/end, or polls with hk_gc_safepoint.
 */
#ifndef HEAPKIT_GC_H
#define HEAPKIT_GC_H
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- handles ---------------------------------------------------------------------------------- */

typedef struct hk_gc_heap hk_gc_heap;       /* one independent heap; several may coexist */
typedef struct hk_gc_mutator hk_gc_mutator; /* one thread's view of one heap */
typedef uint16_t hk_gc_type;                /* a registered object type (1 .. HK_GC_MAX_TYPES-1) */
typedef struct hk_gc_visitor hk_gc_visitor; /* passed to trace functions and root callbacks */
typedef struct hk_gc_weak hk_gc_weak;       /* a weak reference handle */

#define HK_GC_MAX_TYPES 4096
/* Objects whose size (header included) exceeds this go to the large-object space: never moved,
 * returned to the page layer when dead. */
#define HK_GC_LARGE_THRESHOLD ((size_t)8192)

/* ---- heap creation ------------------------------------------------------------------------------ */

/* Called when an allocation cannot be satisfied within max_heap even after a full collection.
 * request is the size asked for. Return non-zero after releasing memory (dropping caches, then
 * letting them become unreachable) or raising the limit (hk_gc_heap_set_limit): the collector
 * collects again and retries once more per call. Return 0 to give up: the allocation returns NULL.
 * After 16 retries in a row after which the heap (blocks and large objects, as counted against
 * the limit) got no smaller than after any earlier retry of this allocation and the limit no
 * higher than any earlier one, the allocation returns NULL without calling it again, with a
 * warning: release enough per call to free whole blocks.
 * Runs on the allocating thread, with the world running; it may call hk_gc_* functions but must
 * not allocate from the heap (an allocation in it that passes the limit returns NULL without
 * calling it again); unregistering the allocating mutator or destroying the heap from it is
 * refused with a warning (the allocation goes on with them). The allocating mutator stays
 * running meanwhile, so other threads' collections wait for the callback to return: one that
 * waits for another thread of the heap must do so in a blocking region (hk_gc_blocking_begin). */
typedef int (*hk_gc_oom_fn)(hk_gc_heap *heap, size_t request, void *data);

enum {
  HK_GC_OPT_MANUAL_FINALIZERS = 1u << 0, /* queue ready finalizers; run them only in hk_gc_run_finalizers */
  HK_GC_OPT_NO_EVACUATION = 1u << 1,     /* mature space: mark-region without evacuation */
  HK_GC_OPT_NO_STICKY = 1u << 2,         /* every full collection marks everything (no sticky marks) */
  HK_GC_OPT_NO_BLOCK_PROMOTION = 1u << 3, /* minor collections always copy (no promotion in place) */
};

typedef struct hk_gc_options {
  size_t initial_heap;      /* first full collection when the mature+large heap reaches this (default 8 MiB);
                               the growth policy's floor, raised to max_heap / 2 when that is more (at
                               most 4x the most live data seen) */
  size_t max_heap;          /* hard limit on the whole heap, nursery included; 0 = no limit; the
                               nursery is clamped to an eighth of it */
  size_t nursery_size;      /* bytes allocated between minor collections (default 4 MiB); the
                               collector shrinks it while much of it survives (short pauses);
                               this and initial_heap at most 2^46 (64 TiB), else HK_EINVAL */
  unsigned growth_percent;  /* next full collection at live * (100 + growth) / 100 (default 70) */
  unsigned promote_age;     /* minor collections survived before promotion, 1..3 (default 2) */
  unsigned flags;           /* HK_GC_OPT_* */
  hk_gc_oom_fn oom;         /* may be NULL: allocations beyond max_heap return NULL */
  void *oom_data;
} hk_gc_options;

/* Fill *o with the defaults (a zeroed struct also means "defaults" field by field). NULL is ignored. */
HK_API void hk_gc_options_init(hk_gc_options *o);

/* Create a heap. When mutator_out is not NULL the calling thread is registered too. Returns
 * HK_OK, HK_EINVAL (bad options: promote_age > 3, a max_heap under 6 blocks of 32 KiB, growth_percent
 * over 10000, a flag bit that is no HK_GC_OPT_* value; a NULL heap_out), HK_ENOMEM, or HK_EBUSY when called from a trace, size or root
 * callback during a collection. The nursery is clamped to at most an eighth of max_heap (at least
 * one block), not refused. */
HK_API int hk_gc_heap_create(const hk_gc_options *opts, hk_gc_heap **heap_out, hk_gc_mutator **mutator_out);
/* Destroy a heap and every object in it. Finalizers do not run. All mutators other than the
 * caller's must have unregistered; returns HK_EBUSY otherwise (and destroys nothing). It may be
 * called inside the caller's HK_GC_ROOTS blocks: their frames are detached from the freed
 * mutator, so the pops at the ends of the blocks are harmless (their variables then point into
 * freed memory, as any pointer into the heap does). */
HK_API int hk_gc_heap_destroy(hk_gc_heap *heap);
/* Change the hard limit (0 = none). Takes effect at the next allocation slow path. A limit under
 * 6 blocks of 32 KiB (192 KiB, the least a heap needs to go on allocating) is raised to that, with
 * a warning. */
HK_API void hk_gc_heap_set_limit(hk_gc_heap *heap, size_t max_heap);
HK_API void hk_gc_set_oom_handler(hk_gc_heap *heap, hk_gc_oom_fn fn, void *data);

/* ---- types -------------------------------------------------------------------------------------- */

enum {
  HK_GC_TYPE_NO_POINTERS = 1u << 0,   /* instances hold no pointers: use hk_gc_alloc_data */
  HK_GC_TYPE_TAIL_POINTERS = 1u << 1, /* (layout) every word from tail_start to the end is a slot */
};

/* How the collector finds the pointer fields of an object of this type: trace if given, else the
 * layout (pointer_mask for the first 64 words, plus the tail rule). */
typedef struct hk_gc_type_desc {
  const char *name;        /* for messages and hk_gc_verify reports */
  size_t size;             /* fixed payload size in bytes, or 0 for variable-sized types */
  /* Visit every pointer-holding slot: call hk_gc_visit(v, &field) for each. Must not allocate,
   * must not read other heap objects (they may be half-moved), must be deterministic. Calls into
   * the collector from here (or from size_of, or the root callback) are refused with a warning:
   * see docs/gc.md, Errors. fork from here is not supported (the child may only exec or _exit). */
  void (*trace)(void *obj, hk_gc_visitor *v);
  /* Payload size of a variable-sized object, computed from its contents. Optional: the collector
   * records each object's size in its header; when given, hk_gc_verify checks the two agree. */
  size_t (*size_of)(const void *obj);
  uint64_t pointer_mask;   /* layout: bit i set = word i of the payload is a slot */
  uint32_t tail_start;     /* layout with HK_GC_TYPE_TAIL_POINTERS: first word index of the tail */
  unsigned flags;          /* HK_GC_TYPE_* */
} hk_gc_type_desc;

/* Register a type; *out gets its id. Returns HK_EINVAL for a NULL desc, contradictory flags
 * (NO_POINTERS with a trace function or layout), a flag bit that is no HK_GC_TYPE_* value, or a size
 * over HK_GC_MAX_SMALL * 1024; HK_ENOMEM when HK_GC_MAX_TYPES is reached. */
HK_API int hk_gc_type_register(hk_gc_heap *heap, const hk_gc_type_desc *desc, hk_gc_type *out);

/* ---- mutators (threads) -------------------------------------------------------------------------- */

/* Register the calling thread with heap (safepoint: may wait for a running collection). NULL when
 * out of memory. A thread may register with several heaps, once per heap; it then keeps its
 * mutators of the heaps it is not using in a blocking region (a collection of a heap waits for
 * each of its running mutators: docs/gc.md, The embedder's duties, item 5). */
HK_API hk_gc_mutator *hk_gc_thread_register(hk_gc_heap *heap);
/* Unregister: the mutator's buffers are handed back. Its root frames should be empty (a warning
 * otherwise: the variables of open blocks stop being roots); called by the mutator's thread inside
 * its HK_GC_ROOTS blocks, their pops are harmless, as for hk_gc_heap_destroy. Another thread may
 * unregister it while its own thread does not use it (say, idle in a blocking region, which it
 * must not end then); its thread's exit then leaves it alone. Later calls through m (or through a
 * mutator of a destroyed heap) are refused with a warning until a registration reuses its record
 * (docs/gc.md, Errors). */
HK_API void hk_gc_thread_unregister(hk_gc_mutator *m);
/* Around a blocking call: while "blocking" the mutator counts as stopped, so other threads can
 * collect; it must not touch heap objects or call hk_gc_* other than blocking_end (its
 * allocations, collections and the other calls that would need a running mutator are refused with
 * a warning; hk_gc_safepoint does nothing there: docs/gc.md, Errors). */
HK_API void hk_gc_blocking_begin(hk_gc_mutator *m);
HK_API void hk_gc_blocking_end(hk_gc_mutator *m);
/* The heap m is registered with; NULL for a NULL m (the handle is not otherwise checked). */
HK_API hk_gc_heap *hk_gc_mutator_heap(const hk_gc_mutator *m);

/* ---- the inline fast paths ---------------------------------------------------------------------- */

/* The first fields of every hk_gc_mutator; public only so the fast paths below can be inline. */
typedef struct hk_gc_frame hk_gc_frame;
typedef struct hk_gc_mutator_fast {
  char *cursor, *limit;           /* allocation buffer for objects with pointers */
  char *data_cursor, *data_limit; /* allocation buffer for pointer-free objects */
  hk_gc_frame *frames;            /* innermost root frame */
  const int *stop;                /* non-zero when a collection waits for this thread (atomic) */
} hk_gc_mutator_fast;

/* Object header: one word in front of each object.
 *   bit 0      forwarded (the rest is the new address) - only ever seen by the collector
 *   bit 1      barrier: stores into this object take the slow path (an old object not yet
 *              remembered; later also a black object during incremental marking)
 *   bit 2      gray: collector-internal (an old object logged for the next sticky collection;
 *              meant for incremental quad-color marking later)
 *   bit 3      pinned       bit 4  has a finalizer     bit 5  pointer-free
 *   bits 6-7   age (minor collections survived; in an old object, collector-internal hints)
 *   bits 8-23  type         bits 24-63  size in 8-byte granules, header included */
#define HK_GC_HDR_FORWARDED ((uintptr_t)1 << 0)
#define HK_GC_HDR_BARRIER ((uintptr_t)1 << 1)
#define HK_GC_HDR_GRAY ((uintptr_t)1 << 2)
#define HK_GC_HDR_PINNED ((uintptr_t)1 << 3)
#define HK_GC_HDR_FINALIZABLE ((uintptr_t)1 << 4)
#define HK_GC_HDR_NOSCAN ((uintptr_t)1 << 5)
#define HK_GC_HDR_AGE_SHIFT 6
#define HK_GC_HDR_TYPE_SHIFT 8
#define HK_GC_HDR_SIZE_SHIFT 24
#define HK_GC_GRANULE 8
/* Largest payload the inline path handles (bigger requests take the slow path). */
#define HK_GC_MAX_SMALL (HK_GC_LARGE_THRESHOLD - HK_GC_GRANULE)

HK_API void *hk_gc_alloc_slow(hk_gc_mutator *m, hk_gc_type type, size_t size, int data);
HK_API void hk_gc_write_barrier_slow(hk_gc_mutator *m, void *obj);
HK_API void hk_gc_write_barrier_slot_slow(hk_gc_mutator *m, void *obj, void *slot);
HK_API void hk_gc_safepoint_slow(hk_gc_mutator *m);
/* (The *_slow functions are the out-of-line halves of the inline paths; not for direct calls.) */

HK_INLINE void *hk__gc_bump(hk_gc_mutator *m, char **cursor, char *limit, hk_gc_type type,
                            size_t size, uintptr_t flags, int data) {
  size_t total = (size + 2 * HK_GC_GRANULE - 1) & ~(size_t)(HK_GC_GRANULE - 1);
  char *p = *cursor;
  if (HK_LIKELY(size <= HK_GC_MAX_SMALL && total <= (size_t)(limit - p))) {
    *cursor = p + total;
    *(uintptr_t *)p = ((uintptr_t)(total / HK_GC_GRANULE) << HK_GC_HDR_SIZE_SHIFT) |
                      ((uintptr_t)type << HK_GC_HDR_TYPE_SHIFT) | flags;
    return p + HK_GC_GRANULE;
  }
  return hk_gc_alloc_slow(m, type, size, data);
}

/* Allocate a zeroed object of type with size payload bytes (safepoint). NULL when the heap limit
 * is reached and the OOM callback gives up, or when the system refuses a large object even after a
 * full collection (one bigger than RAM + swap, under Linux's default overcommit heuristic, as
 * malloc's); and for misuse (docs/gc.md, Errors). */
HK_INLINE HK_MALLOC_LIKE void *hk_gc_alloc(hk_gc_mutator *m, hk_gc_type type, size_t size) {
  hk_gc_mutator_fast *f = (hk_gc_mutator_fast *)m;
  return hk__gc_bump(m, &f->cursor, f->limit, type, size, 0, 0);
}
/* The same for a type registered with HK_GC_TYPE_NO_POINTERS: kept in blocks of their own and
 * never scanned. */
HK_INLINE HK_MALLOC_LIKE void *hk_gc_alloc_data(hk_gc_mutator *m, hk_gc_type type, size_t size) {
  hk_gc_mutator_fast *f = (hk_gc_mutator_fast *)m;
  return hk__gc_bump(m, &f->data_cursor, f->data_limit, type, size, HK_GC_HDR_NOSCAN, 1);
}

/* The write barrier: call right before storing a pointer into a field of obj. Three
 * instructions on the fast path (load the header, test a bit, branch). */
HK_INLINE void hk_gc_write_barrier(hk_gc_mutator *m, const void *obj) {
  uintptr_t h = __atomic_load_n((const uintptr_t *)obj - 1, __ATOMIC_RELAXED);
  if (HK_UNLIKELY(h & HK_GC_HDR_BARRIER)) hk_gc_write_barrier_slow(m, (void *)obj);
}
/* The same when the slot is known: a large array then only has the 512-byte card holding the
 * slot rescanned at the next minor collection, not all of it. Same fast path. */
HK_INLINE void hk_gc_write_barrier_slot(hk_gc_mutator *m, const void *obj, const void *slot) {
  uintptr_t h = __atomic_load_n((const uintptr_t *)obj - 1, __ATOMIC_RELAXED);
  if (HK_UNLIKELY(h & HK_GC_HDR_BARRIER)) hk_gc_write_barrier_slot_slow(m, (void *)obj, (void *)slot);
}
/* obj->field = value, with the barrier. obj is a pointer to a struct (evaluated three times). */
#define HK_GC_WRITE(m, obj, field, value)                     \
  do {                                                        \
    hk_gc_write_barrier_slot((m), (obj), &(obj)->field);      \
    (obj)->field = (value);                                   \
  } while (0)
/* obj[index] = value for an object that is an array of pointers. */
#define HK_GC_WRITE_INDEX(m, obj, index, value)               \
  do {                                                        \
    hk_gc_write_barrier_slot((m), (obj), &(obj)[index]);      \
    (obj)[index] = (value);                                   \
  } while (0)

/* A safepoint poll for loops that run long without allocating. */
HK_INLINE void hk_gc_safepoint(hk_gc_mutator *m) {
  if (HK_UNLIKELY(__atomic_load_n(((hk_gc_mutator_fast *)m)->stop, __ATOMIC_RELAXED))) hk_gc_safepoint_slow(m);
}

/* Header inspection (valid between safepoints). */
HK_INLINE size_t hk_gc_object_size(const void *obj) { /* payload bytes allocated (rounded up to 8) */
  return (size_t)(((const uintptr_t *)obj)[-1] >> HK_GC_HDR_SIZE_SHIFT) * HK_GC_GRANULE - HK_GC_GRANULE;
}
HK_INLINE hk_gc_type hk_gc_object_type(const void *obj) {
  return (hk_gc_type)(((const uintptr_t *)obj)[-1] >> HK_GC_HDR_TYPE_SHIFT);
}

/* ---- roots -------------------------------------------------------------------------------------- */

/* A frame of root slots: the addresses of local variables that hold heap pointers. Frames form a
 * stack per mutator. */
struct hk_gc_frame {
  hk_gc_frame *prev;
  hk_gc_mutator *mutator;
  size_t count;
  void ***slots; /* count addresses of slots */
};

static inline void hk__gc_frame_pop(hk_gc_frame *fr) {
  ((hk_gc_mutator_fast *)fr->mutator)->frames = fr->prev;
}
/* gcc 12's -Wdangling-pointer does not see that the cleanup pops the frame before the function
 * returns, and warned in every function that declares roots and returns a value. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
static inline void hk__gc_frame_push(hk_gc_frame *fr) { ((hk_gc_mutator_fast *)fr->mutator)->frames = fr; }
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
#define HK__GC_CAT2(a, b) a##b
#define HK__GC_CAT(a, b) HK__GC_CAT2(a, b)
#define HK__GC_NARG(...) HK__GC_NARG_(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define HK__GC_NARG_(a1, a2, a3, a4, a5, a6, a7, a8, n, ...) n
#define HK__GC_A1(a) (void **)&(a)
#define HK__GC_A2(a, ...) (void **)&(a), HK__GC_A1(__VA_ARGS__)
#define HK__GC_A3(a, ...) (void **)&(a), HK__GC_A2(__VA_ARGS__)
#define HK__GC_A4(a, ...) (void **)&(a), HK__GC_A3(__VA_ARGS__)
#define HK__GC_A5(a, ...) (void **)&(a), HK__GC_A4(__VA_ARGS__)
#define HK__GC_A6(a, ...) (void **)&(a), HK__GC_A5(__VA_ARGS__)
#define HK__GC_A7(a, ...) (void **)&(a), HK__GC_A6(__VA_ARGS__)
#define HK__GC_A8(a, ...) (void **)&(a), HK__GC_A7(__VA_ARGS__)

/* HK_GC_ROOTS(m, a, b, ...): make the local pointer variables a, b, ... (1 to 8 of them) precise
 * roots until the end of the enclosing block (popped automatically, GNU cleanup attribute). The
 * collector reads and updates them, so they must be initialised (NULL is fine). Frames must be
 * popped in LIFO order: code that leaves scopes with longjmp saves hk_gc_frames_save() before
 * setjmp and calls hk_gc_frames_restore() after landing. */
#define HK_GC_ROOTS(m, ...) HK__GC_ROOTS_(m, __COUNTER__, __VA_ARGS__)
#define HK__GC_ROOTS_(m, id, ...)                                                                 \
  void **HK__GC_CAT(hk__gc_sl_, id)[] = {HK__GC_CAT(HK__GC_A, HK__GC_NARG(__VA_ARGS__))(__VA_ARGS__)}; \
  hk_gc_frame HK__GC_CAT(hk__gc_fr_, id) __attribute__((cleanup(hk__gc_frame_pop))) = {            \
      ((hk_gc_mutator_fast *)(m))->frames, (m), HK__GC_NARG(__VA_ARGS__), HK__GC_CAT(hk__gc_sl_, id)}; \
  hk__gc_frame_push(&HK__GC_CAT(hk__gc_fr_, id))

/* For longjmp-based unwinding. */
HK_INLINE hk_gc_frame *hk_gc_frames_save(hk_gc_mutator *m) { return ((hk_gc_mutator_fast *)m)->frames; }
HK_INLINE void hk_gc_frames_restore(hk_gc_mutator *m, hk_gc_frame *saved) {
  ((hk_gc_mutator_fast *)m)->frames = saved;
}

/* Global roots: a slot (a global or a field of a non-GC struct) scanned at every collection
 * until removed. Returns HK_OK, HK_EINVAL (NULL slot), HK_ENOMEM. Removing an unknown slot is
 * HK_EINVAL. */
HK_API int hk_gc_root_add(hk_gc_heap *heap, void **slot);
HK_API int hk_gc_root_remove(hk_gc_heap *heap, void **slot);
/* An embedder callback that visits its own roots (an interpreter stack, a symbol table) with
 * hk_gc_visit; called once per collection, with the world stopped. One per heap; NULL removes. */
typedef void (*hk_gc_roots_fn)(hk_gc_visitor *v, void *data);
HK_API void hk_gc_set_root_callback(hk_gc_heap *heap, hk_gc_roots_fn fn, void *data);

/* Used by trace functions and root callbacks: report one slot. The collector may rewrite it. */
struct hk_gc_visitor {
  void (*visit)(hk_gc_visitor *v, void **slot);
};
HK_INLINE void hk_gc_visit(hk_gc_visitor *v, void **slot) {
  void *p = *slot;
  if (p && !((uintptr_t)p & 7)) v->visit(v, slot);
}
#define HK_GC_VISIT(v, field) hk_gc_visit((v), (void **)&(field))

/* ---- pinning, weak references, finalizers ------------------------------------------------------ */

/* While pinned an object never moves (pins do not nest: one unpin undoes any number of pins).
 * Pinning is not a root: a pinned object still dies when unreachable. Not from a trace, size or
 * root callback during a collection (refused with a warning, ignored). */
HK_API void hk_gc_pin(hk_gc_mutator *m, void *obj);
HK_API void hk_gc_unpin(hk_gc_mutator *m, void *obj);
/* False for NULL. obj is not checked (unlike hk_gc_pin): it must be an object of a heap; the
 * answer holds between safepoints. */
HK_API bool hk_gc_is_pinned(const void *obj);

/* A weak reference: hk_gc_weak_get returns the target, updated when it moves, or NULL once the
 * target is no longer strongly reachable (cleared before finalizers of the collection run). NULL
 * on out of memory. Handles are not heap objects: free them with hk_gc_weak_free, with a mutator
 * of the handle's heap (another heap's is refused with a warning). hk_gc_weak_get(NULL) is NULL. */
HK_API hk_gc_weak *hk_gc_weak_new(hk_gc_mutator *m, void *target);
HK_API void *hk_gc_weak_get(const hk_gc_weak *w);
HK_API void hk_gc_weak_free(hk_gc_mutator *m, hk_gc_weak *w);

/* Finalizers. fn(m, obj, data) runs once obj is unreachable, in this order: if A references B,
 * A's finalizer runs (in some earlier collection's batch) before B's becomes eligible. Objects
 * in a cycle of finalizable objects (or a finalizable object that reaches itself) are never
 * finalized while the cycle exists, as with the Boehm collector: break cycles with a weak
 * reference. obj is alive during fn (it may be resurrected by storing it somewhere). fn runs on
 * a mutator thread after the collection, with the world running, and may allocate.
 * One finalizer per object; setting fn = NULL removes it. Returns HK_OK, HK_EINVAL, HK_ENOMEM.
 * A first registration is cheap and lock-free; changing or removing one stops the world
 * (safepoint). */
typedef void (*hk_gc_finalizer_fn)(hk_gc_mutator *m, void *obj, void *data);
HK_API int hk_gc_set_finalizer(hk_gc_mutator *m, void *obj, hk_gc_finalizer_fn fn, void *data);
/* hk_gc_alloc and hk_gc_set_finalizer(m, obj, fn, data) in one call (a safepoint), with the
 * same result, and cheaper: a new object needs no checks, and no other thread can see it yet.
 * NULL when the allocation fails, or when there is no memory for the record (then the object is
 * garbage and its finalizer never runs). hk_gc_alloc_data_finalized: the same with
 * hk_gc_alloc_data. */
HK_API int hk__gc_finalizer_fresh(hk_gc_mutator *m, void *obj, hk_gc_finalizer_fn fn, void *data);
HK_INLINE HK_MALLOC_LIKE void *hk_gc_alloc_finalized(hk_gc_mutator *m, hk_gc_type type, size_t size,
                                                     hk_gc_finalizer_fn fn, void *data) {
  void *p = hk_gc_alloc(m, type, size);
  return HK_LIKELY(p != NULL) && HK_LIKELY(hk__gc_finalizer_fresh(m, p, fn, data) == HK_OK) ? p : NULL;
}
HK_INLINE HK_MALLOC_LIKE void *hk_gc_alloc_data_finalized(hk_gc_mutator *m, hk_gc_type type, size_t size,
                                                          hk_gc_finalizer_fn fn, void *data) {
  void *p = hk_gc_alloc_data(m, type, size);
  return HK_LIKELY(p != NULL) && HK_LIKELY(hk__gc_finalizer_fresh(m, p, fn, data) == HK_OK) ? p : NULL;
}
/* Run the queued finalizers now (the normal way with HK_GC_OPT_MANUAL_FINALIZERS). Returns how
 * many ran. Not reentrant: a nested call from a finalizer returns 0. */
HK_API size_t hk_gc_run_finalizers(hk_gc_mutator *m);

/* ---- collection, verification, statistics ------------------------------------------------------- */

typedef enum hk_gc_kind { HK_GC_MINOR = 0, HK_GC_FULL = 1 } hk_gc_kind;
/* Collect now (safepoint). A minor collection evacuates the nursery, and is followed by a full
 * one in the same stop when the mature space's estimate has passed the full-collection threshold
 * (both are counted); a full one also marks the mature and large spaces, completely (never
 * sticky). Finalizers made ready run before it returns (unless manual). A NULL mutator or another
 * kind is ignored with a warning. */
HK_API void hk_gc_collect(hk_gc_mutator *m, hk_gc_kind kind);

/* Walk everything reachable and check the heap's invariants: every slot points to a valid object
 * of this heap with a registered type and a consistent size, old-to-young pointers are
 * remembered, weak and finalizer records are sound, the block tables, counters and the mutators'
 * allocation buffers agree.
 * Returns HK_OK, or HK_EINVAL after printing "heapkit: gc verify: <what>" to stderr for the first
 * problem. Safepoint. */
HK_API int hk_gc_verify(hk_gc_mutator *m);

typedef struct hk_gc_pause_stats {
  uint64_t count;
  double p50_ms, p95_ms, max_ms, total_ms; /* percentiles over the last 4096 pauses of the kind */
} hk_gc_pause_stats;

typedef struct hk_gc_stats {
  uint64_t minor_collections, full_collections;
  uint64_t bytes_allocated;  /* by all mutators (counted per allocation buffer) */
  uint64_t bytes_copied;     /* nursery survivors copied within the young generation */
  uint64_t bytes_promoted;   /* copied (or pinned in place) into the mature space */
  uint64_t bytes_evacuated;  /* mature objects moved out of fragmented blocks */
  size_t live_bytes;         /* reached by the last full collection (mature + large) */
  size_t heap_size;          /* blocks in use (nursery, mature) + large objects, now */
  size_t heap_peak;
  size_t large_objects, large_bytes;
  uint64_t finalizers_run, weak_cleared;
  size_t mutators;
  size_t nursery_size; /* now: adapted to the survivors, at most the nursery_size option */
  uint64_t parallel_phases;  /* collection phases that parked mutators helped with */
  uint64_t parallel_helpers; /* helpers that joined them (a phase may have several) */
  uint64_t parallel_opened;  /* phases opened with a mutator parked; helped or not */
  /* Time collectors spent waiting for the other mutators to reach a safepoint (not counted in
   * the pauses): total and longest wait. */
  double safepoint_wait_ms, safepoint_wait_max_ms;
  /* CPU time the waited-for mutators ran between the stop request and their safepoint: the wait
   * an idle machine would show (on a busy one the waits above also hold the time a mutator was
   * descheduled). Waits shorter than about 10 us, and the first 10 us of longer ones, are left
   * out: measuring them cost more than they last. */
  double safepoint_run_cpu_ms;
  uint64_t sticky_collections; /* of full_collections: those that marked only what was promoted
                                  since the last complete one (docs/gc.md, sticky marks) */
  hk_gc_pause_stats minor, full, all;
} hk_gc_stats;
HK_API void hk_gc_stats_get(hk_gc_heap *heap, hk_gc_stats *out);
/* Print the statistics as text to fd (2 = stderr), with write(2); never allocates. A NULL or
 * foreign heap prints zeros, as hk_gc_stats_get fills them. */
HK_API void hk_gc_stats_print(hk_gc_heap *heap, int fd);

#ifdef __cplusplus
}
#endif
#endif
