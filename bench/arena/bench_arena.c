/* Arenas and pools side by side with glibc malloc, mimalloc, obstack and talloc, in one process.
 *
 * Workloads (each allocation writes its object, so nothing is optimized away):
 *   ast      build a tree of 50,000 nodes of 16-64 bytes, then drop it whole; 40 trees per run.
 *   request  per request: a save point, 20 objects of 16-256 bytes, a nested save point with 10
 *            more, restore both; 50,000 requests per run.
 *   pool     fixed 48-byte objects: random alloc/free over 1,024 slots; 2,000,000 operations.
 * Each is run --reps times (after one warm-up); the median CPU ns per allocation (frees and drops included) is printed as TSV: workload,
 * allocator, median, min, max. The ast and pool workloads have a floor row with no allocator at all.
 *
 * glibc is called through malloc/free, checked at start to be glibc's own: heapkit must be built
 * with -DHK_OVERRIDE=OFF for this program (run.sh does so in build-arena-bench/), or its malloc
 * names would replace glibc's in the whole process. mimalloc is loaded with dlopen
 * (RTLD_LOCAL), so it does not replace malloc for glibc, obstack or talloc. */
#define _GNU_SOURCE
#include <heapkit.h>

#include <dlfcn.h>
#include <obstack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool_perms.h"
#ifdef HAVE_TALLOC
#include <talloc.h>
#endif


#define obstack_chunk_alloc malloc
#define obstack_chunk_free free

static int reps = 7;
static volatile uintptr_t sink;

/* CPU time of this thread: the machine is shared, and wall-clock time would count the moments
 * another process had the core. Every workload is single-threaded. */
static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- inputs --------------------------------------------------------------------------------- */
#ifndef AST_NODES
#define AST_NODES 50000
#endif
#ifndef AST_TREES
#define AST_TREES 40
#endif
#define REQS 50000
#define POOL_OPS 2000000
#define POOL_SIZE 48

static uint16_t ast_size[AST_NODES];
static uint16_t req_size[30];

static void make_inputs(void) {
  uint32_t x = 2463534242u;
#define NEXT (x ^= x << 13, x ^= x >> 17, x ^= x << 5, x)
  for (int i = 0; i < AST_NODES; i++) ast_size[i] = (uint16_t)(16 + NEXT % 49);
  for (int i = 0; i < 30; i++) req_size[i] = (uint16_t)(16 + NEXT % 241);
#undef NEXT
  make_perms();
}

/* ---- mimalloc through dlopen ---------------------------------------------------------------- */
static void *(*mi_malloc_p)(size_t);
static void (*mi_free_p)(void *);
static void *(*mi_heap_new_p)(void);
static void *(*mi_heap_malloc_p)(void *, size_t);
static void (*mi_heap_destroy_p)(void *);

static int load_mimalloc(void) {
  void *h = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) h = dlopen("/usr/lib/x86_64-linux-gnu/libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  mi_malloc_p = (void *(*)(size_t))dlsym(h, "mi_malloc");
  mi_free_p = (void (*)(void *))dlsym(h, "mi_free");
  mi_heap_new_p = (void *(*)(void))dlsym(h, "mi_heap_new");
  mi_heap_malloc_p = (void *(*)(void *, size_t))dlsym(h, "mi_heap_malloc");
  mi_heap_destroy_p = (void (*)(void *))dlsym(h, "mi_heap_destroy");
  return mi_malloc_p && mi_free_p && mi_heap_new_p && mi_heap_malloc_p && mi_heap_destroy_p;
}

/* ---- a region built from glibc: bump in 64 KiB malloc'd blocks, freed together --------------- */
typedef struct mregion { char *cur, *end; void *blocks; } mregion;
static void *mregion_alloc(mregion *r, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if ((size_t)(r->end - r->cur) < n) {
    char *b = malloc(65536);
    *(void **)b = r->blocks;
    r->blocks = b;
    r->cur = b + 16;
    r->end = b + 65536;
  }
  void *p = r->cur;
  r->cur += n;
  return p;
}
static void mregion_free(mregion *r) {
  while (r->blocks) {
    void *n = *(void **)r->blocks;
    free(r->blocks);
    r->blocks = n;
  }
  r->cur = r->end = NULL;
}

/* ---- the AST workload ------------------------------------------------------------------------ */
typedef struct node { struct node *next; uint32_t id, size; } node;
static inline void init_node(node *n, node *prev, int i) {
  n->next = prev;
  n->id = (uint32_t)i;
  n->size = ast_size[i];
}

static void ast_hk(void) {
  hk_arena *a = hk_arena_new(&(hk_arena_options){.retain = (size_t)8 << 20});
  for (int t = 0; t < AST_TREES; t++) {
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = hk_arena_alloc(a, ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    hk_arena_reset(a);
  }
  hk_arena_destroy(a);
}
/* The same arena through a cursor (arena.h): the bump pointer stays in registers in the loop. */
static void ast_hk_cursor(void) {
  hk_arena *a = hk_arena_new(&(hk_arena_options){.retain = (size_t)8 << 20});
  for (int t = 0; t < AST_TREES; t++) {
    hk_arena_cursor c = hk_arena_cursor_open(a);
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = hk_arena_cursor_alloc(&c, ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    hk_arena_cursor_close(&c);
    sink += (uintptr_t)prev;
    hk_arena_reset(a);
  }
  hk_arena_destroy(a);
}
/* The floor: no allocator at all, the nodes bumped into one static buffer with no bound check.
 * What every allocator row pays above this is its own cost; the rest is the workload's stores. */
static _Alignas(64) char ast_floor_buf[(size_t)AST_NODES * 64 + 64];
static void ast_floor(void) {
  for (int t = 0; t < AST_TREES; t++) {
    char *cur = ast_floor_buf;
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = (node *)cur;
      cur += ((size_t)ast_size[i] + 15) & ~(size_t)15;
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
  }
}
static void ast_malloc(void) {
  for (int t = 0; t < AST_TREES; t++) {
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = malloc(ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    while (prev) {
      node *nx = prev->next;
      free(prev);
      prev = nx;
    }
  }
}
static void ast_mimalloc(void) {
  for (int t = 0; t < AST_TREES; t++) {
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = mi_malloc_p(ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    while (prev) {
      node *nx = prev->next;
      mi_free_p(prev);
      prev = nx;
    }
  }
}
static void ast_mi_heap(void) {
  for (int t = 0; t < AST_TREES; t++) {
    void *h = mi_heap_new_p();
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = mi_heap_malloc_p(h, ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    mi_heap_destroy_p(h);
  }
}
static void ast_obstack(void) {
  struct obstack ob;
  obstack_init(&ob);
  for (int t = 0; t < AST_TREES; t++) {
    void *base = obstack_alloc(&ob, 1);
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = obstack_alloc(&ob, ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    obstack_free(&ob, base);
  }
  obstack_free(&ob, NULL);
}
static void ast_mregion(void) {
  mregion r = {0};
  for (int t = 0; t < AST_TREES; t++) {
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = mregion_alloc(&r, ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    mregion_free(&r);
  }
}
#ifdef HAVE_TALLOC
static void ast_talloc(void) {
  for (int t = 0; t < AST_TREES; t++) {
    void *ctx = talloc_new(NULL);
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = talloc_size(ctx, ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    talloc_free(ctx);
  }
}
static void ast_talloc_pool(void) {
  for (int t = 0; t < AST_TREES; t++) {
    void *ctx = talloc_pool(NULL, (size_t)4 << 20);
    node *prev = NULL;
    for (int i = 0; i < AST_NODES; i++) {
      node *n = talloc_size(ctx, ast_size[i]);
      init_node(n, prev, i);
      prev = n;
    }
    sink += (uintptr_t)prev;
    talloc_free(ctx);
  }
}
#endif

/* ---- the request workload -------------------------------------------------------------------- */
static inline void touch(void *p, int i) { ((uint32_t *)p)[0] = (uint32_t)i; }

static void req_hk(void) {
  hk_arena *a = hk_arena_new(NULL);
  for (int r = 0; r < REQS; r++) {
    hk_arena_mark m = hk_arena_save(a);
    for (int i = 0; i < 20; i++) touch(hk_arena_alloc(a, req_size[i]), i);
    hk_arena_mark m2 = hk_arena_save(a);
    for (int i = 20; i < 30; i++) touch(hk_arena_alloc(a, req_size[i]), i);
    hk_arena_restore(a, m2);
    hk_arena_restore(a, m);
  }
  hk_arena_destroy(a);
}
static void req_hk_scratch(void) {
  for (int r = 0; r < REQS; r++) {
    hk_scratch s = hk_scratch_begin(NULL, 0);
    for (int i = 0; i < 20; i++) touch(hk_arena_alloc(s.arena, req_size[i]), i);
    hk_scratch s2 = hk_scratch_begin(&s.arena, 1);
    for (int i = 20; i < 30; i++) touch(hk_arena_alloc(s2.arena, req_size[i]), i);
    hk_scratch_end(s2);
    hk_scratch_end(s);
  }
}
static void req_malloc(void) {
  void *ptr[30];
  for (int r = 0; r < REQS; r++) {
    for (int i = 0; i < 20; i++) touch(ptr[i] = malloc(req_size[i]), i);
    for (int i = 20; i < 30; i++) touch(ptr[i] = malloc(req_size[i]), i);
    for (int i = 29; i >= 20; i--) free(ptr[i]);
    for (int i = 19; i >= 0; i--) free(ptr[i]);
  }
}
static void req_mimalloc(void) {
  void *ptr[30];
  for (int r = 0; r < REQS; r++) {
    for (int i = 0; i < 30; i++) touch(ptr[i] = mi_malloc_p(req_size[i]), i);
    for (int i = 29; i >= 0; i--) mi_free_p(ptr[i]);
  }
}
static void req_mi_heap(void) {
  for (int r = 0; r < REQS; r++) {
    void *h = mi_heap_new_p();
    for (int i = 0; i < 20; i++) touch(mi_heap_malloc_p(h, req_size[i]), i);
    void *h2 = mi_heap_new_p();
    for (int i = 20; i < 30; i++) touch(mi_heap_malloc_p(h2, req_size[i]), i);
    mi_heap_destroy_p(h2);
    mi_heap_destroy_p(h);
  }
}
static void req_obstack(void) {
  struct obstack ob;
  obstack_init(&ob);
  for (int r = 0; r < REQS; r++) {
    void *m = obstack_alloc(&ob, 1);
    for (int i = 0; i < 20; i++) touch(obstack_alloc(&ob, req_size[i]), i);
    void *m2 = obstack_alloc(&ob, 1);
    for (int i = 20; i < 30; i++) touch(obstack_alloc(&ob, req_size[i]), i);
    obstack_free(&ob, m2);
    obstack_free(&ob, m);
  }
  obstack_free(&ob, NULL);
}
#ifdef HAVE_TALLOC
static void req_talloc(void) {
  void *root = talloc_new(NULL);
  for (int r = 0; r < REQS; r++) {
    void *ctx = talloc_new(root);
    for (int i = 0; i < 20; i++) touch(talloc_size(ctx, req_size[i]), i);
    void *sub = talloc_new(ctx);
    for (int i = 20; i < 30; i++) touch(talloc_size(sub, req_size[i]), i);
    talloc_free(sub);
    talloc_free(ctx);
  }
  talloc_free(root);
}
#endif

/* ---- the pool workload ----------------------------------------------------------------------
 * 1,024 live objects; each round frees 256 of them (chosen by one of 64 precomputed random
 * permutations) and allocates 256 replacements, so the free order is random but the loop has no
 * data-dependent branches that would dominate the measurement. */
static void *live[POOL_LIVE];


#define POOL_LOOP_IN(live, ALLOC, FREE)                              \
  for (int s = 0; s < POOL_LIVE; s++) live[s] = ALLOC;               \
  for (int r = 0; r < POOL_OPS / POOL_BATCH; r++) {                  \
    const uint16_t *pm = perm[r % POOL_PERMS];                       \
    for (int i = 0; i < POOL_BATCH; i++) FREE(live[pm[i]]);          \
    for (int i = 0; i < POOL_BATCH; i++) touch(live[pm[i]] = ALLOC, i); \
  }                                                                  \
  for (int s = 0; s < POOL_LIVE; s++) FREE(live[s]);
#define POOL_LOOP(ALLOC, FREE) POOL_LOOP_IN(live, ALLOC, FREE)

static hk_pool *hkp;
#define HKP_FREE(q) hk_pool_free(hkp, (q))
static void pool_hk_mode(bool shared, bool unchecked) {
  hkp = hk_pool_new_ex(&(hk_pool_options){.block_size = POOL_SIZE, .shared = shared, .unchecked = unchecked});
  POOL_LOOP(hk_pool_alloc(hkp), HKP_FREE)
  hk_pool_destroy(hkp);
}
/* The default pool (inline paths, every free checked), the same pool opted out of the checks
 * (.unchecked), and a shared (locked, every call out of line) pool. */
/* The same pools through a cursor (pool.h): the stack's top stays in registers in the loops. */
static void pool_hk_cursor_mode(bool unchecked) {
  hkp = hk_pool_new_ex(&(hk_pool_options){.block_size = POOL_SIZE, .unchecked = unchecked});
  hk_pool_cursor c = hk_pool_cursor_open(hkp);
#define HKC_FREE(q) hk_pool_cursor_free(&c, (q))
  POOL_LOOP(hk_pool_cursor_alloc(&c), HKC_FREE)
#undef HKC_FREE
  hk_pool_cursor_close(&c);
  hk_pool_destroy(hkp);
}
static void pool_hk_cursor(void) { pool_hk_cursor_mode(false); }
static void pool_hk_cursor_unchecked(void) { pool_hk_cursor_mode(true); }
static void pool_hk(void) { pool_hk_mode(false, false); }
static void pool_hk_unchecked(void) { pool_hk_mode(false, true); }
static void pool_hk_shared(void) { pool_hk_mode(true, false); }
static void pool_malloc(void) { POOL_LOOP(malloc(POOL_SIZE), free) }
static void pool_mimalloc(void) { POOL_LOOP(mi_malloc_p(POOL_SIZE), mi_free_p) }
/* The floor: no allocator at all. The free only reads the pointer (an xor into a register: any
 * free must at least load it), and the allocation takes the next of 1,024 preallocated 48-byte
 * blocks in turn (one add and one mask), so the loop keeps the same stores and the same 48 KB of
 * live blocks. What a row pays above this is its allocator; the rest is the workload's own. */
static _Alignas(64) char pool_floor_buf[(size_t)POOL_LIVE * POOL_SIZE];
static unsigned pool_floor_next;
static uintptr_t pool_floor_acc;
#define FLOOR_ALLOC() (void *)(pool_floor_buf + (size_t)(pool_floor_next++ & (POOL_LIVE - 1)) * POOL_SIZE)
#define FLOOR_FREE(q) (pool_floor_acc ^= (uintptr_t)(q))
static void pool_floor(void) {
  POOL_LOOP(FLOOR_ALLOC(), FLOOR_FREE)
  sink += pool_floor_acc;
}
/* The hand-rolled alternative: a free list over glibc malloc. */
static void *fl_head;
static inline void *fl_alloc(void) {
  void *p = fl_head;
  if (p) { fl_head = *(void **)p; return p; }
  return malloc(POOL_SIZE);
}
static inline void fl_free(void *p) { *(void **)p = fl_head; fl_head = p; }
static void pool_freelist(void) {
  POOL_LOOP(fl_alloc(), fl_free)
  while (fl_head) { void *n = *(void **)fl_head; free(fl_head); fl_head = n; }
}
#ifdef HAVE_TALLOC
static void *tctx;
#define TFREE(q) talloc_free(q)
static void pool_talloc(void) {
  tctx = talloc_new(NULL);
  POOL_LOOP(talloc_size(tctx, POOL_SIZE), TFREE)
  talloc_free(tctx);
}
#endif


/* ---- multi-thread pool workloads --------------------------------------------------------------
 *   pool2t   two threads run the pool workload at once (each its own 1,024 live objects) on one
 *            allocator: one shared pool for heapkit.
 *   xthread  one thread allocates 48-byte objects (writing each) in batches of 4,096 and hands each
 *            batch through a ring of 4 batches to a second thread, which frees them: every block
 *            is freed by a thread other than the one that allocated it. 2,000,000 objects.
 * Time: the threads' CPU time, summed, per alloc+free pair. xthread times only its allocation and
 * free loops (two clock reads per batch of 4,096), so the waits of the two
 * threads for each other (they spin with sched_yield) are not counted; a thread blocked on a
 * mutex is not counted either, so a locked allocator's contention shows only as the CPU it burns. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
static double mt_ns; /* set by the multi-thread workloads: their own CPU time in ns */
#define XT_OPS 2000000
#define XT_BATCH 4096
#define XT_RING 4
static void *xt_ring[XT_RING][XT_BATCH];
static atomic_long xt_made, xt_done; /* batches produced, consumed */

#define MT_DEFINE(NAME, ALLOC, FREE)                                           \
  static void *NAME##_churn_thr(void *arg) {                                   \
    void *lv[POOL_LIVE];                                                       \
    double t0 = now_ns();                                                      \
    POOL_LOOP_IN(lv, ALLOC, FREE)                                              \
    *(double *)arg = now_ns() - t0;                                            \
    return NULL;                                                               \
  }                                                                            \
  static void NAME##_pool2t(void) {                                            \
    double t[2];                                                               \
    pthread_t th;                                                              \
    pthread_create(&th, NULL, NAME##_churn_thr, &t[1]);                        \
    NAME##_churn_thr(&t[0]);                                                   \
    pthread_join(th, NULL);                                                    \
    mt_ns = t[0] + t[1];                                                       \
  }                                                                            \
  static void *NAME##_xt_free_thr(void *arg) {                                 \
    double spent = 0;                                                          \
    for (long k = 0; k < XT_OPS / XT_BATCH; k++) {                             \
      while (atomic_load_explicit(&xt_made, memory_order_acquire) <= k) sched_yield(); \
      void **bt = xt_ring[k % XT_RING];                                        \
      double t0 = now_ns();                                                    \
      for (int i = 0; i < XT_BATCH; i++) FREE(bt[i]);                          \
      spent += now_ns() - t0;                                                  \
      atomic_store_explicit(&xt_done, k + 1, memory_order_release);            \
    }                                                                          \
    *(double *)arg = spent;                                                    \
    return NULL;                                                               \
  }                                                                            \
  static void NAME##_xthread(void) {                                           \
    double t[2] = {0, 0};                                                      \
    pthread_t th;                                                              \
    atomic_store(&xt_made, 0);                                                 \
    atomic_store(&xt_done, 0);                                                 \
    pthread_create(&th, NULL, NAME##_xt_free_thr, &t[1]);                      \
    for (long k = 0; k < XT_OPS / XT_BATCH; k++) {                             \
      while (atomic_load_explicit(&xt_done, memory_order_acquire) + XT_RING <= k) sched_yield(); \
      void **bt = xt_ring[k % XT_RING];                                        \
      double t0 = now_ns();                                                    \
      for (int i = 0; i < XT_BATCH; i++) touch(bt[i] = ALLOC, i);              \
      t[0] += now_ns() - t0;                                                   \
      atomic_store_explicit(&xt_made, k + 1, memory_order_release);            \
    }                                                                          \
    pthread_join(th, NULL);                                                    \
    mt_ns = t[0] + t[1];                                                       \
  }

MT_DEFINE(hk, hk_pool_alloc(hkp), HKP_FREE)
MT_DEFINE(glibc, malloc(POOL_SIZE), free)
MT_DEFINE(mi, mi_malloc_p(POOL_SIZE), mi_free_p)
/* The floor: each thread takes the next of its own 2,048 preallocated blocks in turn (more than
 * ever live at once in either workload), and a free reads the pointer. */
static __thread _Alignas(64) char mt_floor_buf[(size_t)2048 * POOL_SIZE];
static __thread unsigned mt_floor_next;
static __thread uintptr_t mt_floor_acc;
#define MT_FLOOR_ALLOC() (void *)(mt_floor_buf + (size_t)(mt_floor_next++ & 2047) * POOL_SIZE)
#define MT_FLOOR_FREE(q) (mt_floor_acc ^= (uintptr_t)(q))
MT_DEFINE(floor, MT_FLOOR_ALLOC(), MT_FLOOR_FREE)
static void pool2t_hk(void) {
  hkp = hk_pool_new_ex(&(hk_pool_options){.block_size = POOL_SIZE, .shared = true});
  hk_pool2t();
  hk_pool_destroy(hkp);
}
static void xthread_hk(void) {
  hkp = hk_pool_new_ex(&(hk_pool_options){.block_size = POOL_SIZE, .shared = true});
  hk_xthread();
  hk_pool_destroy(hkp);
}

/* ---- driver ---------------------------------------------------------------------------------- */
typedef struct bench { const char *workload, *name; void (*fn)(void); double ops; int needs_mi, mt; } bench;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
  }
  if (reps < 1) reps = 1;
  void *libc_malloc = dlsym(RTLD_NEXT, "malloc");
  if (libc_malloc && (void *)&malloc != libc_malloc) {
    fprintf(stderr, "bench_arena: malloc is not glibc's in this process; the glibc column would be wrong\n");
    return 2;
  }
  int have_mi = load_mimalloc();
  if (!have_mi) fprintf(stderr, "bench_arena: libmimalloc.so.2 not found; mimalloc rows skipped\n");
  make_inputs();
  const double ast_ops = (double)AST_NODES * AST_TREES, req_ops = (double)REQS * 30, pool_ops = POOL_OPS;
  bench all[] = {
      {"ast", "heapkit arena", ast_hk, ast_ops, 0},
      {"ast", "heapkit arena (cursor)", ast_hk_cursor, ast_ops, 0},
      {"ast", "glibc malloc/free", ast_malloc, ast_ops, 0},
      {"ast", "mimalloc malloc/free", ast_mimalloc, ast_ops, 1},
      {"ast", "obstack", ast_obstack, ast_ops, 0},
#ifdef HAVE_TALLOC
      {"ast", "talloc", ast_talloc, ast_ops, 0},
      {"ast", "talloc pool (region)", ast_talloc_pool, ast_ops, 0},
#endif
      {"ast", "mimalloc heap (region)", ast_mi_heap, ast_ops, 1},
      {"ast", "glibc 64K blocks (region)", ast_mregion, ast_ops, 0},
      {"ast", "no allocator (floor)", ast_floor, ast_ops, 0},
      {"request", "heapkit arena save/restore", req_hk, req_ops, 0},
      {"request", "heapkit scratch scopes", req_hk_scratch, req_ops, 0},
      {"request", "glibc malloc/free", req_malloc, req_ops, 0},
      {"request", "mimalloc malloc/free", req_mimalloc, req_ops, 1},
      {"request", "obstack", req_obstack, req_ops, 0},
#ifdef HAVE_TALLOC
      {"request", "talloc", req_talloc, req_ops, 0},
#endif
      {"request", "mimalloc heap (region)", req_mi_heap, req_ops, 1},
      {"pool", "heapkit pool", pool_hk, pool_ops, 0},
      {"pool", "heapkit pool (unchecked)", pool_hk_unchecked, pool_ops, 0},
      {"pool", "heapkit pool (cursor)", pool_hk_cursor, pool_ops, 0},
      {"pool", "heapkit pool (cursor, unchecked)", pool_hk_cursor_unchecked, pool_ops, 0},
      {"pool", "heapkit pool (shared)", pool_hk_shared, pool_ops, 0},
      {"pool", "glibc malloc/free", pool_malloc, pool_ops, 0},
      {"pool", "mimalloc malloc/free", pool_mimalloc, pool_ops, 1},
      {"pool", "free list over glibc", pool_freelist, pool_ops, 0},
#ifdef HAVE_TALLOC
      {"pool", "talloc", pool_talloc, pool_ops, 0},
#endif
      {"pool", "no allocator (floor)", pool_floor, pool_ops, 0},
      {"pool2t", "heapkit pool (shared)", pool2t_hk, 2.0 * pool_ops, 0, 1},
      {"pool2t", "glibc malloc/free", glibc_pool2t, 2.0 * pool_ops, 0, 1},
      {"pool2t", "mimalloc malloc/free", mi_pool2t, 2.0 * pool_ops, 1, 1},
      {"pool2t", "no allocator (floor)", floor_pool2t, 2.0 * pool_ops, 0, 1},
      {"xthread", "heapkit pool (shared)", xthread_hk, XT_OPS, 0, 1},
      {"xthread", "glibc malloc/free", glibc_xthread, XT_OPS, 0, 1},
      {"xthread", "mimalloc malloc/free", mi_xthread, XT_OPS, 1, 1},
      {"xthread", "no allocator (floor)", floor_xthread, XT_OPS, 0, 1},
  };
  size_t n = sizeof all / sizeof all[0];
  double *t = calloc((size_t)reps, sizeof(double));
  printf("workload\tallocator\tmedian_ns\tmin_ns\tmax_ns\n");
  for (size_t b = 0; b < n; b++) {
    if (all[b].needs_mi && !have_mi) continue;
    if (only && !strstr(only, all[b].workload)) continue;
    all[b].fn(); /* warm-up */
    /* Not interleaved with the other rows, on purpose: obstack takes its chunks from glibc
     * malloc, and after the other rows have churned glibc's heap it measured 2.8-3.3 ns instead of
     * 2.2 (2026-12-06). Each row's repetitions back to back give every peer its steady state. */
    for (int r = 0; r < reps; r++) {
      double t0 = now_ns();
      all[b].fn();
      t[r] = (all[b].mt ? mt_ns : now_ns() - t0) / all[b].ops;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    printf("%s\t%s\t%.3f\t%.3f\t%.3f\n", all[b].workload, all[b].name, t[reps / 2], t[0], t[reps - 1]);
    fflush(stdout);
  }
  free(t);
  return 0;
}
