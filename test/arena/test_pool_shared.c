/* A shared pool under a threaded stress: threads allocate, stamp, verify and free blocks, and
 * hand some blocks to other threads to free; a producer allocates and a consumer frees every
 * block (each filled with a pattern and checked whole); threads that exit with blocks in their
 * caches; a pool reset and a pool destroyed while another thread holds cached blocks of it; the
 * per-thread LIFO order. Runs under TSan. */
#include <heapkit.h>
#include "check.h"
/* a thread cache's capacity for small blocks (PC_CAP in src/pool/pool.c) */
#define PC_CAP_TEST 512

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define THREADS 4
#define OPS 100000
#define LIVE 256
#define SIZE 40

static hk_pool *pool;
static _Atomic(unsigned char *) handoff[THREADS];
static atomic_int failures;

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned char *live[LIVE] = {0};
  uint32_t x = 777u * (uint32_t)(id + 1);
  int bad = 0;
  for (int i = 0; i < OPS; i++) {
    x = x * 1103515245u + 12345u;
    int slot = (int)((x >> 8) % LIVE);
    if (live[slot]) {
      for (int k = 0; k < SIZE; k++) bad |= live[slot][k] != (unsigned char)(id * 64 + slot % 64);
      if (i % 16 == 0) {
        /* give it to the next thread; free whatever it left us */
        unsigned char *old = atomic_exchange(&handoff[(id + 1) % THREADS], live[slot]);
        if (old) hk_pool_free(pool, old);
      } else {
        hk_pool_free(pool, live[slot]);
      }
      live[slot] = NULL;
    } else {
      unsigned char *b = hk_pool_alloc(pool);
      if (!b) { bad = 1; break; }
      memset(b, id * 64 + slot % 64, SIZE);
      live[slot] = b;
    }
  }
  for (int s = 0; s < LIVE; s++) hk_pool_free(pool, live[s]);
  if (bad) atomic_fetch_add(&failures, 1);
  return NULL;
}


/* ---- producer / consumer: every block freed by the other thread ---- */
#define XN 200000
#define XSIZE 72
#define XRING 1024
static hk_pool *xpool;
static _Atomic(unsigned char *) xring[XRING];
static atomic_int xbad;
static void fill(unsigned char *b, uint32_t v) { for (int k = 0; k < XSIZE; k++) b[k] = (unsigned char)(v + (uint32_t)k * 7u); }
static int holds(const unsigned char *b, uint32_t v) {
  for (int k = 4; k < XSIZE; k++) if (b[k] != (unsigned char)(v + (uint32_t)k * 7u)) return 0;
  return 1;
}
static void *producer(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < XN; i++) {
    unsigned char *b = hk_pool_alloc(xpool);
    if (!b) { atomic_fetch_add(&xbad, 1); return NULL; }
    fill(b, i);
    memcpy(b, &i, sizeof i); /* the index, for the consumer to know the pattern */
    while (atomic_load_explicit(&xring[i % XRING], memory_order_acquire) != NULL) sched_yield();
    atomic_store_explicit(&xring[i % XRING], b, memory_order_release);
  }
  return NULL;
}
static void *consumer(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < XN; i++) {
    unsigned char *b;
    while ((b = atomic_load_explicit(&xring[i % XRING], memory_order_acquire)) == NULL) sched_yield();
    atomic_store_explicit(&xring[i % XRING], NULL, memory_order_relaxed);
    uint32_t v;
    memcpy(&v, b, sizeof v);
    if (v != i || !holds(b, i)) atomic_fetch_add(&xbad, 1); /* bytes 0-3: the index; 4-71: the pattern */
    hk_pool_free(xpool, b);
  }
  return NULL;
}
static void test_cross_thread(void) {
  xpool = hk_pool_new_ex(&(hk_pool_options){.block_size = XSIZE, .shared = true});
  pthread_t a, b;
  pthread_create(&a, NULL, producer, NULL);
  pthread_create(&b, NULL, consumer, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK(atomic_load(&xbad) == 0);
  hk_pool_stats st;
  hk_pool_stats_get(xpool, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved);
  /* blocks flow back through the depot: far fewer carved than allocated */
  CHECK(st.carved <= XRING + 2 * PC_CAP_TEST + 16); /* the consumer's cache, a batch in the producer's, a carve */
  hk_pool_destroy(xpool);
}

/* ---- thread exit with cached blocks: they go back to the pool ---- */
static hk_pool *epool;
static void *alloc_free_exit(void *arg) {
  int n = (int)(intptr_t)arg;
  void *b[100];
  for (int i = 0; i < n; i++) b[i] = hk_pool_alloc(epool);
  for (int i = 0; i < n; i++) hk_pool_free(epool, b[i]);
  return NULL;
}
static void test_thread_exit(void) {
  epool = hk_pool_new_ex(&(hk_pool_options){.block_size = 32, .shared = true});
  for (int round = 0; round < 20; round++) {
    pthread_t t;
    pthread_create(&t, NULL, alloc_free_exit, (void *)(intptr_t)(round % 2 ? 100 : 10));
    pthread_join(t, NULL);
  }
  hk_pool_stats st;
  hk_pool_stats_get(epool, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved);
  /* each exiting thread gave its blocks back, so the next one reused them */
  CHECK(st.carved <= 100 + 16);
  /* the main thread gets them too: 100 allocations carve nothing new */
  size_t carved = st.carved;
  void *b[100];
  for (int i = 0; i < 100; i++) b[i] = hk_pool_alloc(epool);
  hk_pool_stats_get(epool, &st);
  CHECK(st.carved == carved && st.in_use == 100);
  for (int i = 0; i < 100; i++) hk_pool_free(epool, b[i]);
  hk_pool_destroy(epool);
}

/* ---- reset and destroy while another thread holds cached blocks ---- */
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int step;
static hk_pool *hpool;
static void wait_step(int s) {
  pthread_mutex_lock(&m);
  while (step < s) pthread_cond_wait(&cv, &m);
  pthread_mutex_unlock(&m);
}
static void set_step(int s) {
  pthread_mutex_lock(&m);
  step = s;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&m);
}
static void *holder(void *arg) {
  (void)arg;
  void *b[20];
  for (int i = 0; i < 20; i++) b[i] = hk_pool_alloc(hpool);
  for (int i = 0; i < 20; i++) hk_pool_free(hpool, b[i]); /* cached here */
  set_step(1);
  wait_step(2); /* main resets the pool */
  /* after the reset no stale cached block comes back: 40 distinct blocks between us and main */
  for (int i = 0; i < 20; i++) b[i] = hk_pool_alloc(hpool);
  set_step(3);
  wait_step(4);
  for (int i = 0; i < 20; i++) hk_pool_free(hpool, b[i]);
  for (int i = 0; i < 20; i++) b[i] = hk_pool_alloc(hpool);
  for (int i = 0; i < 20; i++) hk_pool_free(hpool, b[i]); /* cached again */
  set_step(5);
  wait_step(6); /* main destroys the pool and makes a new one */
  for (int i = 0; i < 20; i++) b[i] = hk_pool_alloc(hpool);
  for (int i = 0; i < 20; i++) hk_pool_free(hpool, b[i]);
  return NULL; /* exits with blocks of the new pool cached; the old pool is not touched */
}
static void test_reset_destroy_with_caches(void) {
  hpool = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .shared = true});
  pthread_t t;
  pthread_create(&t, NULL, holder, NULL);
  wait_step(1);
  hk_pool_stats st;
  hk_pool_stats_get(hpool, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved && st.carved >= 20);
  hk_pool_reset(hpool);
  hk_pool_stats_get(hpool, &st);
  CHECK(st.in_use == 0 && st.carved == 0 && st.free_blocks == 0);
  set_step(2);
  wait_step(3);
  void *mine[20];
  for (int i = 0; i < 20; i++) mine[i] = hk_pool_alloc(hpool);
  hk_pool_stats_get(hpool, &st);
  CHECK(st.in_use == 40);
  set_step(4);
  for (int i = 0; i < 20; i++) hk_pool_free(hpool, mine[i]);
  wait_step(5);
  hk_pool_destroy(hpool); /* the holder's cache is bound to it and full of its blocks */
  hpool = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .shared = true});
  set_step(6);
  pthread_join(t, NULL);
  hk_pool_stats_get(hpool, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved && st.carved >= 20);
  hk_pool_destroy(hpool);
}

/* ---- ASan: free blocks are poisoned, cached or in the depot ---- */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
static void test_poison(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 48, .shared = true});
  enum { N = PC_CAP_TEST + 200 }; /* more than a cache holds: some go to the depot */
  static char *b[N];
  for (int i = 0; i < N; i++) b[i] = hk_pool_alloc(p);
  for (int i = 0; i < N; i++) CHECK_QUIET(!__asan_region_is_poisoned(b[i], 48));
  for (int i = 0; i < N; i++) hk_pool_free(p, b[i]);
  for (int i = 0; i < N; i++) CHECK_QUIET(__asan_address_is_poisoned(b[i]) && __asan_address_is_poisoned(b[i] + 47));
  char *c = hk_pool_alloc(p); /* carved neighbours sit poisoned in the cache too */
  CHECK(!__asan_region_is_poisoned(c, 48) && __asan_address_is_poisoned(b[N - 2]));
  hk_pool_free(p, c);
  hk_pool_destroy(p);
}
#else
static void test_poison(void) {}
#endif

/* ---- more shared pools than a thread has caches (4): evictions flush to the right pool ---- */
#define NP 6
static hk_pool *mp[NP];
static void *many_pools(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned char *b[NP][40];
  for (int round = 0; round < 50; round++) {
    for (int k = 0; k < NP; k++)
      for (int i = 0; i < 40; i++) {
        b[k][i] = hk_pool_alloc(mp[k]);
        memset(b[k][i], id * 16 + k, 32);
      }
    for (int k = NP - 1; k >= 0; k--)
      for (int i = 0; i < 40; i++) {
        for (int j = 0; j < 32; j++) CHECK_QUIET(b[k][i][j] == (unsigned char)(id * 16 + k));
        hk_pool_free(mp[k], b[k][i]);
      }
  }
  return NULL;
}
static void test_many_pools(void) {
  for (int k = 0; k < NP; k++) mp[k] = hk_pool_new_ex(&(hk_pool_options){.block_size = 32 + 16 * (size_t)k, .shared = true});
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, many_pools, (void *)(intptr_t)i);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (int k = 0; k < NP; k++) {
    hk_pool_stats st;
    hk_pool_stats_get(mp[k], &st);
    CHECK(st.in_use == 0 && st.free_blocks == st.carved && st.carved <= 2 * (40 + PC_CAP_TEST + 16));
    hk_pool_destroy(mp[k]);
  }
}

/* The pool's invariant check (src/pool/pool.c, through the static library): a shared pool's
 * head sends every call out of line (top at nil_top, win at the unchecked flag alone). */
bool hk__pool_is_valid(hk_pool *p);

/* ---- per-thread LIFO: a thread gets back the block it freed last ---- */
static void test_lifo(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 24, .shared = true});
  CHECK(hk__pool_is_valid(p));
  void *a = hk_pool_alloc(p), *b = hk_pool_alloc(p), *c = hk_pool_alloc(p);
  hk_pool_free(p, a);
  hk_pool_free(p, c);
  hk_pool_free(p, b);
  CHECK(hk_pool_alloc(p) == b && hk_pool_alloc(p) == c && hk_pool_alloc(p) == a);
  CHECK(hk_pool_contains(p, a) && hk_pool_contains(p, b));
  hk_pool_free(p, a);
  CHECK(!hk_pool_contains(p, a));
  CHECK(hk__pool_is_valid(p));
  hk_pool_destroy(p);
}


/* ---- statistics read while other threads move blocks between their caches and the depot ----
 * A flush puts its blocks in the depot under the pool's lock; if the cache's count dropped only
 * after the unlock, a reader between the two counted those blocks twice (free_blocks > carved,
 * in_use wrapping around). */
static hk_pool *spool;
static atomic_int sdone;
static void *stats_churn(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned char *b[PC_CAP_TEST + 100];
  for (int round = 0; round < 3000; round++) {
    int n = PC_CAP_TEST - 20 + (round * 7 + id) % 100; /* around a cache's capacity: flushes and refills */
    for (int i = 0; i < n; i++) {
      b[i] = hk_pool_alloc(spool);
      if (b[i]) memset(b[i], id + 1, 24);
    }
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < 24; j++) CHECK_QUIET(b[i][j] == (unsigned char)(id + 1));
      hk_pool_free(spool, b[i]);
    }
  }
  atomic_fetch_add(&sdone, 1);
  return NULL;
}
static void test_stats_while_busy(void) {
  spool = hk_pool_new_ex(&(hk_pool_options){.block_size = 24, .shared = true});
  atomic_store(&sdone, 0);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, stats_churn, (void *)(intptr_t)i);
  int bad = 0;
  while (atomic_load(&sdone) < 2) { /* until both are done */
    hk_pool_stats st;
    hk_pool_stats_get(spool, &st);
    if (st.free_blocks > st.carved || st.in_use > st.carved || st.in_use + st.free_blocks != st.carved) {
      if (!bad) fprintf(stderr, "stats: carved %zu free %zu in_use %zu\n", st.carved, st.free_blocks, st.in_use);
      bad++;
    }
  }
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  CHECK(bad == 0);
  hk_pool_stats st;
  hk_pool_stats_get(spool, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved);
  hk_pool_destroy(spool);
}

/* ---- a pool destroyed while the threads that used it are exiting (their caches unbind on exit):
 * defined, since none of them uses the pool any more; the destroy and the exits only meet on the
 * cache lock. Blocks of a second pool, freed by the exiting threads, stay valid. ---- */
static hk_pool *dpool, *dkeep;
static atomic_int dused;
static void *use_then_exit(void *arg) {
  int id = (int)(intptr_t)arg;
  void *b[PC_CAP_TEST + 6];
  for (int i = 0; i < PC_CAP_TEST + 6; i++) b[i] = hk_pool_alloc(dpool);
  for (int i = 0; i < PC_CAP_TEST + 6; i++) hk_pool_free(dpool, b[i]); /* a cache's worth cached, the rest in the depot */
  unsigned char *k = hk_pool_alloc(dkeep);
  memset(k, id, 56);
  atomic_fetch_add(&dused, 1); /* from here on this thread does not touch dpool */
  for (int j = 0; j < 56; j++) CHECK_QUIET(k[j] == (unsigned char)id);
  hk_pool_free(dkeep, k);
  return NULL;
}
static void test_destroy_during_exits(void) {
  dkeep = hk_pool_new_ex(&(hk_pool_options){.block_size = 56, .shared = true});
  for (int round = 0; round < 30; round++) {
    dpool = hk_pool_new_ex(&(hk_pool_options){.block_size = 40 + 8 * (size_t)(round % 3), .shared = true});
    atomic_store(&dused, 0);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, use_then_exit, (void *)(intptr_t)(i + 1));
    while (atomic_load(&dused) < 3) sched_yield();
    hk_pool_destroy(dpool); /* races with the threads' exits */
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  }
  hk_pool_stats st;
  hk_pool_stats_get(dkeep, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved);
  hk_pool_destroy(dkeep);
}

/* ---- a thread's other key destructors may free blocks after the pool's destructor ran: the
 * thread binds a new cache then, which the next destructor round gives back ---- */
static hk_pool *kpool;
static pthread_key_t late_key;
static void late_free(void *arg) {
  void **b = arg;
  for (int i = 0; i < 10; i++) hk_pool_free(kpool, b[i]);
  free(b);
}
static void *free_in_destructor(void *arg) {
  (void)arg;
  void **b = malloc(10 * sizeof *b);
  for (int i = 0; i < 10; i++) b[i] = hk_pool_alloc(kpool); /* binds the pool's key first */
  pthread_setspecific(late_key, b);
  return NULL;
}
static void test_free_in_key_destructor(void) {
  kpool = hk_pool_new_ex(&(hk_pool_options){.block_size = 32, .shared = true});
  void *warm = hk_pool_alloc(kpool); /* the pool's key exists before late_key */
  hk_pool_free(kpool, warm);
  CHECK(pthread_key_create(&late_key, late_free) == 0);
  for (int round = 0; round < 5; round++) {
    pthread_t t;
    pthread_create(&t, NULL, free_in_destructor, NULL);
    pthread_join(t, NULL);
  }
  hk_pool_stats st;
  hk_pool_stats_get(kpool, &st);
  CHECK(st.in_use == 0 && st.free_blocks == st.carved);
  /* the blocks came back to the depot: the main thread gets them without carving */
  size_t carved = st.carved;
  void *b[40];
  size_t n = carved < 40 ? carved : 40;
  for (size_t i = 0; i < n; i++) b[i] = hk_pool_alloc(kpool);
  hk_pool_stats_get(kpool, &st);
  CHECK(st.carved == carved);
  for (size_t i = 0; i < n; i++) hk_pool_free(kpool, b[i]);
  pthread_key_delete(late_key);
  hk_pool_destroy(kpool);
}

/* ---- fork while another thread works a shared pool: the child uses the pool (its first refill
 * and flush take the pool's lock, which the other thread may have held at the fork: 4 of 100
 * children hung before the pools had fork handlers) ---- */
static hk_pool *fpool;
static atomic_int fstop;
static void *fork_churn(void *arg) {
  (void)arg;
  void *b[200];
  while (!atomic_load(&fstop)) {
    for (int i = 0; i < 200; i++) b[i] = hk_pool_alloc(fpool);
    for (int i = 0; i < 200; i++) hk_pool_free(fpool, b[i]);
  }
  return NULL;
}
static void test_fork(void) {
  fpool = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .shared = true});
  hk_pool *other = hk_pool_new_ex(&(hk_pool_options){.block_size = 16, .shared = true}); /* a second one on the list */
  pthread_t t;
  pthread_create(&t, NULL, fork_churn, NULL);
  int hung = 0, bad = 0;
  for (int f = 0; f < 60; f++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(5);
      unsigned char *b[200];
      for (int i = 0; i < 200; i++) {
        b[i] = hk_pool_alloc(fpool);
        if (!b[i]) _exit(2);
        memset(b[i], i, 64);
      }
      for (int i = 0; i < 200; i++) {
        for (int k = 0; k < 64; k++) if (b[i][k] != (unsigned char)i) _exit(3);
        hk_pool_free(fpool, b[i]);
      }
      hk_pool_free(other, hk_pool_alloc(other));
      hk_pool_stats st;
      hk_pool_stats_get(fpool, &st);
      _exit(st.free_blocks <= st.carved ? 0 : 4);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) hung++;
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
  }
  atomic_store(&fstop, 1);
  pthread_join(t, NULL);
  if (hung || bad) fprintf(stderr, "fork: %d of 60 children hung, %d failed\n", hung, bad);
  CHECK(hung == 0 && bad == 0);
  hk_pool_destroy(other);
  hk_pool_destroy(fpool);
}

/* ---- fork handlers that use a shared pool, registered before the pools' own (which are registered
 * at the first shared pool): glibc runs prepare handlers last-registered first and the others
 * first-registered first, so these ran while the pools' handlers held every pool's lock, and the
 * first refill waited for a lock its own thread held: the fork hung (alarm turns that into a
 * failure). They refill and flush (more blocks than a thread cache holds), read the statistics,
 * and make and destroy another shared pool, while a second thread churns the same pool. ---- */
static hk_pool *apool;
static int aruns[3]; /* prepare, parent, child */
static void atfork_use(int which) {
  if (!apool) return;
  unsigned char *b[300];
  for (int i = 0; i < 300; i++) {
    b[i] = hk_pool_alloc(apool);
    if (!b[i]) abort();
    memset(b[i], i, 64);
  }
  for (int i = 0; i < 300; i++) {
    if (b[i][63] != (unsigned char)i) abort();
    hk_pool_free(apool, b[i]);
  }
  hk_pool_stats st;
  hk_pool_stats_get(apool, &st);
  if (st.free_blocks > st.carved) abort();
  hk_pool *tmp = hk_pool_new_ex(&(hk_pool_options){.block_size = 32, .shared = true});
  if (!tmp) abort();
  hk_pool_free(tmp, hk_pool_alloc(tmp));
  hk_pool_destroy(tmp);
  aruns[which]++;
}
static void atfork_prepare(void) { atfork_use(0); }
static void atfork_parent(void) { atfork_use(1); }
static void atfork_child(void) { atfork_use(2); }
static int test_atfork(void) {
  CHECK(pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0);
  alarm(30);
  apool = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .shared = true}); /* the pools' handlers now */
  fpool = apool;
  pthread_t t;
  pthread_create(&t, NULL, fork_churn, NULL);
  int bad = 0;
  for (int f = 0; f < 20; f++) {
    pid_t pid = fork();
    if (pid == 0) {
      alarm(10);
      if (aruns[2] != 1) _exit(2);
      atfork_use(2); /* and again, after every handler */
      hk_pool *other = hk_pool_new_ex(&(hk_pool_options){.block_size = 16, .shared = true});
      hk_pool_free(other, hk_pool_alloc(other));
      hk_pool_destroy(other);
      _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
  }
  atomic_store(&fstop, 1);
  pthread_join(t, NULL);
  alarm(0);
  CHECK(bad == 0);
  CHECK(aruns[0] == 20 && aruns[1] == 20 && aruns[2] == 0);
  hk_pool_stats st;
  hk_pool_stats_get(apool, &st);
  CHECK(st.in_use == 0);
  hk_pool_destroy(apool);
  apool = NULL;
  return check_report("pool.shared_atfork");
}

/* ---- a carve batch of big blocks: one allocation from a pool of 256 KiB blocks used to carve 16
 * of them (4 MiB committed; a single-threaded pool commits 320 KiB) ---- */
static void test_big_blocks(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = HK_POOL_MAX_BLOCK, .shared = true});
  void *b = hk_pool_alloc(p);
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(b != NULL && st.carved == 1 && st.committed < ((size_t)1 << 20));
  hk_pool_free(p, b);
  hk_pool_destroy(p);
  p = hk_pool_new_ex(&(hk_pool_options){.block_size = 4096, .shared = true}); /* 16 of these: 64 KiB */
  b = hk_pool_alloc(p);
  hk_pool_stats_get(p, &st);
  CHECK(st.carved == 16);
  hk_pool_free(p, b);
  hk_pool_destroy(p);
}

/* ---- a thread cache of big blocks: a thread that frees 8 blocks of 256 KiB used to keep all of
 * them (64 per cache: 16 MiB idle per thread); a cache holds at most 256 KiB (two blocks at least),
 * so another thread gets the rest from the depot without carving ---- */
static hk_pool *cpool;
static void *take_six(void *arg) {
  void **out = arg;
  for (int i = 0; i < 6; i++) out[i] = hk_pool_alloc(cpool);
  return NULL;
}
static void test_big_cache(void) {
  cpool = hk_pool_new_ex(&(hk_pool_options){.block_size = HK_POOL_MAX_BLOCK, .shared = true});
  void *b[8], *got[6];
  for (int i = 0; i < 8; i++) CHECK((b[i] = hk_pool_alloc(cpool)) != NULL);
  for (int i = 0; i < 8; i++) hk_pool_free(cpool, b[i]);
  pthread_t t;
  pthread_create(&t, NULL, take_six, got);
  pthread_join(t, NULL);
  hk_pool_stats st;
  hk_pool_stats_get(cpool, &st);
  for (int i = 0; i < 6; i++) {
    CHECK(got[i] != NULL);
    hk_pool_free(cpool, got[i]);
  }
  hk_pool_stats_get(cpool, &st);
  if (st.carved != 8) fprintf(stderr, "big cache: carved %zu, expected 8\n", st.carved);
  CHECK(st.carved == 8 && st.in_use == 0 && st.free_blocks == 8);
  hk_pool_destroy(cpool);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "atfork") == 0) return test_atfork();
  pool = hk_pool_new_ex(&(hk_pool_options){.block_size = SIZE, .shared = true});
  CHECK(pool != NULL);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < THREADS; i++) hk_pool_free(pool, atomic_load(&handoff[i]));
  CHECK(atomic_load(&failures) == 0);
  hk_pool_stats st;
  hk_pool_stats_get(pool, &st);
  CHECK(st.in_use == 0 && st.bad_frees == 0);
  /* the peak is the most blocks carved, which counts the blocks free in thread caches (up to 512
   * each, plus a carved batch of 16) */
  CHECK(st.free_blocks == st.carved && st.in_use_peak <= THREADS * LIVE + THREADS + THREADS * (PC_CAP_TEST + 16));
  hk_pool_reset(pool);
  hk_pool_destroy(pool);
  test_cross_thread();
  test_thread_exit();
  test_reset_destroy_with_caches();
  test_lifo();
  test_many_pools();
  test_poison();
  test_stats_while_busy();
  test_destroy_during_exits();
  test_free_in_key_destructor();
  test_fork();
  test_big_blocks();
  test_big_cache();
  return check_report("pool.shared");
}
