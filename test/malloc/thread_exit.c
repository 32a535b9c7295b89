/* Allocations from pthread key destructors, after heapkit's own thread-exit destructor has run.
 * glibc runs the destructors in at most PTHREAD_DESTRUCTOR_ITERATIONS (4) rounds; heapkit's key is
 * older than this test's, so in every round its destructor runs first. A malloc in round 1-3 used
 * to create a thread record that the next round gave back, but one in round 4 created a record
 * (and took a segment) that nothing ever released: 100 threads left hk_stats.threads at 101 and
 * 102 segments. Each thread here allocates, in every round 1-4, blocks of every kind (small,
 * medium, large, zeroed, aligned, realloc'd), keeps some, and frees blocks that other threads left
 * in a shared pool (also blocks they allocated late). Afterwards the main thread checks and frees
 * what is left, collects, and the thread count and the segment count must be back to the base. */
#include <heapkit.h>

#include <limits.h>
#include <stdatomic.h>

#include "testutil.h"

#define POOL 4096
#if defined(__SANITIZE_THREAD__)
/* TSan finishes a thread in the last round (its own key's destructor, older than ours): a mutex
 * locked after that crashes inside TSan (a segfault in its MutexPreLock), in this test's code as in
 * the library's. So under TSan the destructors allocate in rounds 1-3. */
#define ROUNDS (PTHREAD_DESTRUCTOR_ITERATIONS - 1)
#else
#define ROUNDS PTHREAD_DESTRUCTOR_ITERATIONS
#endif

static pthread_key_t key;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void *pool[POOL];
static size_t pool_size[POOL];
static int pool_n;
static _Atomic int max_round;

/* A block's first bytes hold a pattern of its address and size, checked before it is freed. */
static void put(void *p, size_t size) {
  CHECK(p != NULL);
  size_t n = size < 256 ? size : 256;
  for (size_t i = 0; i < n; i++) ((unsigned char *)p)[i] = (unsigned char)(((uintptr_t)p >> 4) + size + i);
  pthread_mutex_lock(&pool_lock);
  if (pool_n < POOL) {
    pool[pool_n] = p;
    pool_size[pool_n] = size;
    pool_n++;
    p = NULL;
  }
  pthread_mutex_unlock(&pool_lock);
  if (p) hk_free(p);
}

static void check_free(void *p, size_t size) {
  size_t n = size < 256 ? size : 256;
  for (size_t i = 0; i < n; i++)
    CHECKF(((unsigned char *)p)[i] == (unsigned char)(((uintptr_t)p >> 4) + size + i), "block %p of %zu bytes overwritten", p, size);
  hk_free(p);
}

/* Frees up to n blocks of the pool, the newest first (most of them some other thread's). */
static void take(int n) {
  for (int i = 0; i < n; i++) {
    pthread_mutex_lock(&pool_lock);
    void *p = NULL;
    size_t size = 0;
    if (pool_n > 0) {
      pool_n--;
      p = pool[pool_n];
      size = pool_size[pool_n];
    }
    pthread_mutex_unlock(&pool_lock);
    if (!p) return;
    check_free(p, size);
  }
}

static void allocate_some(int seed) {
  static const size_t sizes[] = {8, 24, 64, 200, 1000, 3000, 20000, 100000, 300000, 2u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t s = sizes[i] + (size_t)seed % 8;
    put(hk_malloc(s), s);
    void *z = hk_calloc(1, s);
    CHECK(z != NULL);
    for (size_t j = 0; j < s; j += 4096) CHECK(((unsigned char *)z)[j] == 0);
    put(z, s);
  }
  void *a = hk_aligned_alloc(4096, 5000);
  CHECK(a != NULL && (uintptr_t)a % 4096 == 0);
  put(a, 5000);
  void *b = NULL;
  CHECK(hk_posix_memalign(&b, 1u << 20, 100) == 0 && (uintptr_t)b % (1u << 20) == 0);
  put(b, 100);
  char *r = hk_realloc(NULL, 10);
  CHECK(r != NULL);
  r = hk_realloc(r, 5000);
  put(r, 5000);
  hk_free(hk_malloc(48)); /* freed at once by its own (exited) thread */
  char *d = hk_strdup("late");
  CHECK(d && strcmp(d, "late") == 0);
  hk_free(d);
}

/* Mode "heaps": the destructors also allocate through hk_heap_get_default's handle and through
 * two first-class heaps (one destroyed, one deleted: its blocks stay, freed by other threads).
 * Both calls made a record with the key set, which stayed for ever when made in the last round
 * (threads 101 of 1, segments 103 of 3 with 100 threads). */
static bool heaps_mode;

static void use_heaps(int seed) {
  hk_heap *d = hk_heap_get_default();
  CHECK(d != NULL);
  size_t s = 100 + (size_t)seed % 8;
  void *p = hk_heap_malloc(d, s);
  CHECK(hk_heap_contains(d, p));
  put(p, s);
  p = hk_heap_calloc(d, 10, 30);
  CHECK(p != NULL && ((unsigned char *)p)[299] == 0);
  put(p, 300);
  p = hk_heap_malloc_aligned(d, 4096, 300);
  CHECK(p != NULL && (uintptr_t)p % 4096 == 0);
  put(p, 300);
  p = hk_heap_realloc(d, hk_heap_malloc(d, 10), 70000);
  put(p, 70000);
  CHECK(hk_heap_get_default() == d);
  hk_heap *x = hk_heap_new(), *y = hk_heap_new();
  CHECK(x != NULL && y != NULL && x != y);
  for (size_t i = 0; i < 3; i++) {
    static const size_t sizes[] = {64, 20000, 300000};
    void *a = hk_heap_malloc(x, sizes[i]);
    CHECK(a != NULL && hk_heap_contains(x, a));
    memset(a, 1, sizes[i]);
    void *b = hk_heap_malloc(y, sizes[i]);
    CHECK(b != NULL && hk_heap_contains(y, b));
    put(b, sizes[i]);
  }
  hk_heap_destroy(x);
  hk_free(hk_malloc(48));
  hk_heap_delete(y);
}

static void late(void *arg) {
  int *round = arg;
  ++*round;
  int m = atomic_load(&max_round);
  while (m < *round && !atomic_compare_exchange_weak(&max_round, &m, *round)) {}
  allocate_some(*round);
  if (heaps_mode) use_heaps(*round);
  take(12);
  if (*round < ROUNDS) CHECK(pthread_setspecific(key, round) == 0);
  else free(round); /* (the process's malloc: the library itself when it overrides it) */
}

static void *worker(void *arg) {
  int *round = malloc(sizeof *round);
  CHECK(round != NULL);
  *round = 0;
  allocate_some((int)(uintptr_t)arg);
  take(4);
  CHECK(pthread_setspecific(key, round) == 0);
  return NULL;
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_thread_exit";
  int threads = argc > 1 ? atoi(argv[1]) : 100;
  heaps_mode = argc > 2 && !strcmp(argv[2], "heaps");
  int batch = 8;
  CHECK(pthread_key_create(&key, late) == 0);
  /* the main thread's own record and segments first: they are part of the base */
  hk_free(hk_malloc(64));
  hk_free(hk_malloc(20000));
  hk_collect(true);
  hk_stats base;
  hk_stats_get(&base);
  for (int i = 0; i < threads; i += batch) {
    pthread_t t[8];
    int n = threads - i < batch ? threads - i : batch;
    for (int j = 0; j < n; j++) CHECK(pthread_create(&t[j], NULL, worker, (void *)(uintptr_t)(i + j)) == 0);
    for (int j = 0; j < n; j++) CHECK(pthread_join(t[j], NULL) == 0);
  }
  CHECKF(atomic_load(&max_round) == ROUNDS, "the destructors ran %d rounds, not %d", atomic_load(&max_round), ROUNDS);
  take(POOL);
  CHECK(pool_n == 0);
  hk_collect(true);
  hk_stats st;
  hk_stats_get(&st);
  printf("malloc_thread_exit: %d threads: threads %zu (base %zu), segments %zu (base %zu), abandoned %zu, in use %zu (base %zu)\n",
         threads, st.threads, base.threads, st.segments, base.segments, st.segments_abandoned, st.in_use, base.in_use);
  CHECKF(st.threads == base.threads, "%zu threads with a heap, %zu before", st.threads, base.threads);
  CHECKF(st.segments_abandoned == 0, "%zu segments abandoned", st.segments_abandoned);
  CHECKF(st.segments <= base.segments, "%zu segments, %zu before", st.segments, base.segments);
  /* (not in_use: 1152 bytes stay in use with or without the late allocations, glibc's own) */
  return 0;
}
