/* Several mutator threads allocating, mutating (old-to-young stores through the barrier) and
 * collecting at once on one heap; each checks its own structure against a model after every
 * round, some rounds verify the whole heap, and threads register and unregister while others run.
 *   test_gc_threads [threads] [rounds]     the mixed workload above
 *   test_gc_threads parallel [threads]     collections shared by the parked threads (parallel
 *                                          copying and marking) on graphs with shared nodes
 *   test_gc_threads register               a thread registers while a collection is pending
 *   test_gc_threads reserve                two threads building trees: the free blocks their
 *                                          nurseries take again are not given back to the OS
 *   test_gc_threads affinity               two threads allocating garbage: after a minor collection
 *                                          each takes back mostly nursery blocks it used itself
 *   test_gc_threads ownframes              two threads with young trees in their frames: a parallel
 *                                          minor collection copies each tree on its own thread
 *   test_gc_threads shortwaits             a collector's short waits for a polling thread read no
 *                                          CPU clocks (safepoint_run_cpu_ms stays near 0)
 *   test_gc_threads handoff                a polling thread helps 300 minor collections copy a tree:
 *                                          the heap lock changes hands without the threads sleeping
 *                                          in the kernel
 *   test_gc_threads inplace                one, then two threads building trees promoted in place
 *                                          (the parallel walk arms every barrier bit), then two
 *                                          with a third registering and unregistering all along
 *   test_gc_threads pinshare               two threads pin and unpin one object at once (for
 *                                          ThreadSanitizer: the header checks read the word the
 *                                          other thread's pin changes) */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include "gc_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#define SLOTS 128

static hk_gc_heap *heap;
static hk_gc_mutator *heap_main; /* the main thread's mutator (test_inplace) */
static int rounds = 40;
static _Atomic int failures;
static _Atomic long fin_registered, fin_ran;

static void blob_fin(hk_gc_mutator *m, void *obj, void *data) {
  (void)m;
  if (((blob *)obj)->id != (uint64_t)(uintptr_t)data || !blob_ok(obj)) failures++;
  fin_ran++;
}

typedef struct model {
  uint64_t len[SLOTS], sum[SLOTS];
} model;

static node *chain(hk_gc_mutator *m, uint64_t len, uint64_t seed, uint64_t *sum) {
  node *head = NULL;
  HK_GC_ROOTS(m, head);
  *sum = 0;
  for (uint64_t i = 0; i < len; i++) {
    uint64_t id = seed * 1000 + i + 1;
    blob *b = NULL;
    HK_GC_ROOTS(m, b);
    if (i % 3 == 2) { /* allocated first: n's stores below need no safepoint */
      b = new_blob(m, id, 24);
      if (b && i % 2 == 0) {
        if (hk_gc_set_finalizer(m, b, blob_fin, (void *)(uintptr_t)id) != HK_OK) failures++;
        fin_registered++;
      }
    }
    node *n = b ? new_node(m, id, 2, true) : new_node(m, id, 1, false);
    if (!n) return NULL;
    n->kids[0] = head; /* n is fresh (no safepoint since): no barrier needed */
    if (b) n->kids[1] = (node *)b;
    head = n;
    *sum += id;
  }
  return head;
}

static bool check(node *arr, const model *md) {
  for (int k = 0; k < SLOTS; k++) {
    uint64_t len = 0, sum = 0;
    for (node *n = arr->kids[k]; n; n = n->kids[0]) {
      len++;
      sum += n->id;
      if (n->nkids == 2) {
        blob *b = (blob *)n->kids[1];
        if (!b || b->id != n->id || !blob_ok(b)) return false;
      }
    }
    if (len != md->len[k] || sum != md->sum[k]) return false;
  }
  return true;
}

static void work(hk_gc_mutator *m, uint64_t seed) {
  uint64_t st = seed * 0x9E3779B97F4A7C15ull;
  model *md = calloc(1, sizeof *md);
  node *arr = new_node(m, seed, SLOTS, false);
  HK_GC_ROOTS(m, arr);
  hk_gc_weak *w = hk_gc_weak_new(m, arr); /* weak handles and pins from several threads */
  if (!w) failures++;
  for (int r = 0; r < rounds; r++) {
    bool pinned = r % 4 == 1;
    void *at = arr;
    if (pinned) hk_gc_pin(m, arr);
    for (int i = 0; i < 400; i++) {
      st ^= st << 13, st ^= st >> 7, st ^= st << 17;
      int k = (int)(st % SLOTS);
      uint64_t len = st % 12, sum;
      node *c = chain(m, len, st % 100000, &sum);
      if (!c && len) {
        failures++;
        break;
      }
      hk_gc_write_barrier(m, arr); /* arr may be old; c is young */
      arr->kids[k] = c;
      md->len[k] = len;
      md->sum[k] = sum;
      for (int g = 0; g < 10; g++) (void)new_node(m, 0, 3, false); /* garbage */
      hk_gc_safepoint(m);
    }
    if (!check(arr, md)) {
      fprintf(stderr, "thread %lu: structure corrupt in round %d\n", (unsigned long)seed, r);
      failures++;
      break;
    }
    if (r % 10 == 3) hk_gc_collect(m, HK_GC_FULL);
    if (r % 20 == 7 && hk_gc_verify(m) != HK_OK) failures++;
    if (hk_gc_weak_get(w) != arr) failures++;
    if (pinned) {
      if ((void *)arr != at) failures++; /* pinned: never moved */
      hk_gc_unpin(m, arr);
    }
  }
  hk_gc_weak_free(m, w);
  free(md);
}

static void *worker(void *arg) {
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  work(m, (uint64_t)(uintptr_t)arg * 7919 + 1); /* its root frame is popped on return */
  hk_gc_thread_unregister(m);
  return NULL;
}

/* ---- parallel collections ------------------------------------------------------------------- */

#define SHARED_ID 0x5ade
#define KEEP 1100 /* slots of the long-lived holder: a large object (> HK_GC_LARGE_THRESHOLD) */

/* A complete binary tree whose nodes all point (kids[2]) to one node, *shared, and whose left
 * children point to their right sibling (kids[3]): a depth-first copy of one subtree reaches the
 * other, so parallel workers often meet at the same objects. Exactly one copy of each must win,
 * or the pointers to it would disagree. */
static node *dag(hk_gc_mutator *m, int depth, node **shared, uint64_t *id) {
  node *l = NULL, *r = NULL;
  HK_GC_ROOTS(m, l, r);
  if (depth > 0) {
    l = dag(m, depth - 1, shared, id);
    r = dag(m, depth - 1, shared, id);
    if (!l || !r) return NULL;
    hk_gc_write_barrier(m, l); /* (l may be old by now) */
    l->kids[3] = r;
  }
  ++*id;
  node *n = new_node(m, *id, 4, *id % 2 == 0);
  if (!n) return NULL;
  n->kids[0] = l;
  n->kids[1] = r;
  n->kids[2] = *shared;
  return n;
}

/* Nodes, and the sum of their ids; -1 if a node does not point to the same shared node. */
static long dag_check(const node *n, const node *shared, uint64_t *sum) {
  if (!n) return 0;
  if (n->nkids != 4 || n->kids[2] != shared || shared->id != SHARED_ID) return -1;
  if (n->kids[0] && n->kids[0]->kids[3] != n->kids[1]) return -1;
  *sum += n->id;
  long a = dag_check(n->kids[0], shared, sum), b = dag_check(n->kids[1], shared, sum);
  return a < 0 || b < 0 ? -1 : 1 + a + b;
}

typedef struct kept {
  uint64_t sum;
  long nodes;
} kept;

static int par_iters = 200;

static void *par_worker(void *arg) {
  int self = (int)(uintptr_t)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  kept *model = calloc(KEEP, sizeof *model);
  {
    node *keep = new_node(m, 1, KEEP, false), *shared = NULL, *t = NULL;
    HK_GC_ROOTS(m, keep, shared, t);
    uint64_t st = (uint64_t)self * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < par_iters && !failures; i++) {
      st ^= st << 13, st ^= st >> 7, st ^= st << 17;
      int depth = 4 + (int)(st % 8);
      shared = new_node(m, SHARED_ID, 0, false);
      uint64_t id = st % 1000000 * 4096, first = id;
      t = dag(m, depth, &shared, &id);
      if (!t) {
        failures++;
        break;
      }
      bool pinned = i % 16 == 5;
      void *at = t;
      if (pinned) hk_gc_pin(m, t);
      /* Pointer-free garbage in between, and now and then a collection asked for. */
      for (int g = 0; g < 32; g++) (void)new_blob(m, (uint64_t)g, 40);
      if (i % 24 == 7) hk_gc_collect(m, self % 2 ? HK_GC_MINOR : HK_GC_FULL);
      uint64_t sum = 0, want = 0;
      for (uint64_t k = first + 1; k <= id; k++) want += k;
      if (dag_check(t, t->kids[2], &sum) != (2L << depth) - 1 || sum != want) {
        fprintf(stderr, "parallel: thread %d: tree %d corrupt\n", self, i);
        failures++;
      }
      if (pinned) {
        if ((void *)t != at) failures++;
        hk_gc_unpin(m, t);
      }
      /* Some trees live on in the (old, large) holder: old-to-young stores, promotion, and
       * sparse mature blocks for evacuation when they are replaced. */
      int k = (int)((st >> 20) % KEEP);
      hk_gc_write_barrier(m, keep);
      keep->kids[k] = t;
      model[k] = (kept){sum, (2L << depth) - 1};
      if (i % 50 == 49) {
        for (int j = 0; j < KEEP; j++) {
          uint64_t s2 = 0;
          node *x = keep->kids[j];
          if (x ? dag_check(x, x->kids[2], &s2) != model[j].nodes || s2 != model[j].sum : model[j].nodes != 0) {
            fprintf(stderr, "parallel: thread %d: kept tree %d corrupt\n", self, j);
            failures++;
            break;
          }
        }
        if (hk_gc_verify(m) != HK_OK) failures++;
      }
    }
  }
  free(model);
  hk_gc_thread_unregister(m);
  return NULL;
}

static _Atomic int churn_stop;
static _Atomic long churn_rounds;

/* Registers, allocates a little and unregisters, over and over, while the others collect. */
static void *churn(void *arg) {
  (void)arg;
  while (!churn_stop) {
    hk_gc_mutator *m = hk_gc_thread_register(heap);
    if (!m) {
      failures++;
      return NULL;
    }
    {
      node *shared = new_node(m, SHARED_ID, 0, false), *c = NULL;
      HK_GC_ROOTS(m, shared, c);
      uint64_t id = 0, sum = 0;
      c = dag(m, 5, &shared, &id);
      if (!c || dag_check(c, shared, &sum) != 63 || sum != 63 * 64 / 2) failures++;
    }
    hk_gc_thread_unregister(m);
    churn_rounds++;
  }
  return NULL;
}

/* A heap with the test types, in `heap`; returns the main thread's mutator. */
static hk_gc_mutator *test_heap(const hk_gc_options *o) {
  hk_gc_mutator *main_m = NULL;
  CHECK(hk_gc_heap_create(o, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  return main_m;
}

/* Runs fn in two threads (argument 1, then 2) and joins them, the main thread's mutator in a
 * blocking region meanwhile so that their collections need not wait for it. */
static void run_two(hk_gc_mutator *main_m, void *(*fn)(void *)) {
  pthread_t t[2];
  hk_gc_blocking_begin(main_m);
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)(i + 1)) == 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  hk_gc_blocking_end(main_m);
}

static int test_parallel(int nthreads) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 256 << 10;
  o.initial_heap = 2 << 20;
  hk_gc_mutator *main_m = test_heap(&o);
  pthread_t t[64], ch;
  if (nthreads > 64) nthreads = 64;
  for (int i = 0; i < nthreads; i++) CHECK(pthread_create(&t[i], NULL, par_worker, (void *)(uintptr_t)(i + 1)) == 0);
  CHECK(pthread_create(&ch, NULL, churn, NULL) == 0);
  hk_gc_blocking_begin(main_m);
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  churn_stop = 1;
  pthread_join(ch, NULL);
  hk_gc_blocking_end(main_m);
  CHECK(failures == 0);
  CHECK(churn_rounds > 0);
  hk_gc_collect(main_m, HK_GC_FULL);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  hk_gc_stats_print(heap, 2);
  fprintf(stderr, "parallel phases %lu, helpers %lu\n", (unsigned long)s.parallel_phases,
          (unsigned long)s.parallel_helpers);
  CHECK(s.mutators == 1);
  /* Hundreds of collections, each with other threads parked: some must have shared the work
   * (none with HEAPKIT_GC_PARALLEL=0, test gc.threads_serial). */
  if (hk_option_get(HK_OPT_GC_PARALLEL) == 0) CHECK(s.parallel_phases == 0 && s.parallel_helpers == 0);
  else if (nthreads >= 2) CHECK(s.parallel_phases > 0 && s.parallel_helpers >= s.parallel_phases);
  CHECK(s.live_bytes < (1u << 20));
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_parallel");
}

/* ---- registration while a collection is pending ------------------------------------------------- */

static _Atomic int spinner_ready, stop_seen, spinner_go;
static _Atomic unsigned long registered_after;

static bool stop_pending(hk_gc_mutator *m) {
  return __atomic_load_n(((hk_gc_mutator_fast *)m)->stop, __ATOMIC_RELAXED) != 0;
}

static double thread_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* A mutator busy without safepoints: the collection another thread asks for waits for it. */
static void *spinner(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  spinner_ready = 1;
  while (!stop_pending(m)) sched_yield();
  stop_seen = 1;
  /* A computation without safepoints: 20 ms of this thread's CPU, whatever the machine's load. */
  double c0 = thread_cpu_ms();
  for (volatile uint64_t x = 1; thread_cpu_ms() - c0 < 20.0;) x = x * 6364136223846793005u + 1;
  while (!spinner_go) sched_yield();
  hk_gc_safepoint(m); /* parks (and may help) until the collection is over */
  hk_gc_thread_unregister(m);
  return NULL;
}

static void *collector(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  {
    node *shared = new_node(m, SHARED_ID, 0, false), *c = NULL;
    HK_GC_ROOTS(m, shared, c);
    uint64_t id = 0, sum = 0;
    c = dag(m, 8, &shared, &id); /* something to collect */
    while (!spinner_ready) sched_yield();
    hk_gc_collect(m, HK_GC_FULL);
    if (!c || dag_check(c, shared, &sum) != 511 || sum != 511 * 512 / 2) failures++;
  }
  hk_gc_thread_unregister(m);
  return NULL;
}

static void *late_registrant(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  registered_after = (unsigned long)s.full_collections;
  {
    node *shared = new_node(m, SHARED_ID, 0, false), *c = NULL;
    HK_GC_ROOTS(m, shared, c);
    uint64_t id = 0, sum = 0;
    c = dag(m, 4, &shared, &id);
    hk_gc_collect(m, HK_GC_MINOR);
    if (!c || dag_check(c, shared, &sum) != 31 || sum != 31 * 32 / 2) failures++;
  }
  hk_gc_thread_unregister(m);
  return NULL;
}

static int test_register(void) {
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(NULL, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  hk_gc_stats s0;
  hk_gc_stats_get(heap, &s0);
  pthread_t sp, co, la;
  hk_gc_blocking_begin(main_m);
  CHECK(pthread_create(&sp, NULL, spinner, NULL) == 0);
  CHECK(pthread_create(&co, NULL, collector, NULL) == 0);
  while (!stop_seen) sched_yield();
  /* The collection is pending (it waits for the spinner): a thread registering now must wait
   * for it to finish, not join the world it is stopping. */
  CHECK(pthread_create(&la, NULL, late_registrant, NULL) == 0);
  nanosleep(&(struct timespec){0, 30 * 1000 * 1000}, NULL);
  spinner_go = 1;
  pthread_join(sp, NULL);
  pthread_join(co, NULL);
  pthread_join(la, NULL);
  hk_gc_blocking_end(main_m);
  CHECK(failures == 0);
  CHECK(registered_after >= s0.full_collections + 1);
  /* The collector waited for the spinner (30 ms and more): that wait is counted. */
  hk_gc_stats s1;
  hk_gc_stats_get(heap, &s1);
  CHECK(s1.safepoint_wait_max_ms >= 25.0 && s1.safepoint_wait_ms >= s1.safepoint_wait_max_ms);
  /* Of which the spinner ran 20 ms of its own CPU (and yielded the rest): counted apart. */
  fprintf(stderr, "register: waited %.1f ms, the waited thread ran %.1f ms of CPU meanwhile\n", s1.safepoint_wait_ms,
          s1.safepoint_run_cpu_ms);
  CHECK(s1.safepoint_run_cpu_ms >= 19.0 && s1.safepoint_run_cpu_ms <= s1.safepoint_wait_ms + 1.0);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_register");
}

/* ---- the free-block reserve of several allocating threads -------------------------------------- */

static long tree_count(const node *n) { return n ? 1 + tree_count(n->kids[0]) + tree_count(n->kids[1]) : 0; }

static int reserve_iters = 40000, reserve_nursery_kib = 2048;

static void *reserve_worker(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  {
    node *t = NULL;
    HK_GC_ROOTS(m, t);
    for (int i = 0; i < reserve_iters && !failures; i++) {
      t = gc_test_tree(m, 6);
      if (!t || tree_count(t) != 127) failures++;
    }
  }
  hk_gc_thread_unregister(m);
  return NULL;
}

/* Two threads allocate garbage (small trees) with 2 MiB nurseries: a minor collection is due after
 * both nurseries' blocks, and frees them all. The heap must keep them committed for the next
 * round: when its free-block reserve counted one thread's nursery, every minor collection gave
 * the other's blocks back to the OS and the next refills faulted them in again (about 64 MiB
 * purged over this run; nothing now). */
static int test_reserve(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = (size_t)reserve_nursery_kib << 10;
  o.initial_heap = 1 << 20;
  hk_gc_mutator *main_m = test_heap(&o);
  hk_stats before, after;
  hk_stats_get(&before);
  run_two(main_m, reserve_worker);
  hk_stats_get(&after);
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  size_t purged = after.purged - before.purged;
  fprintf(stderr, "reserve: %lu minor, %lu full collections, %zu KiB purged, peak %zu KiB\n",
          (unsigned long)s.minor_collections, (unsigned long)s.full_collections, purged >> 10, s.heap_peak >> 10);
  CHECK(failures == 0);
  CHECK(s.minor_collections > 50);
  CHECK(purged <= ((size_t)8 << 20));
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_reserve");
}

/* ---- nursery blocks go back to the thread that used them ------------------------------------- */

/* Which thread last allocated in each 32 KiB block, by address (aliasing across 2 GiB would only
 * blur the count). */
static _Atomic uint8_t aff_owner[1 << 16];
static _Atomic long aff_takes, aff_other;
static pthread_barrier_t aff_start;

static void *affinity_worker(void *arg) {
  uint8_t self = (uint8_t)(uintptr_t)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  /* Both allocate at once (each blocking until the other is registered and ready). */
  hk_gc_blocking_begin(m);
  pthread_barrier_wait(&aff_start);
  hk_gc_blocking_end(m);
  uintptr_t last = 0;
  long takes = 0, other = 0;
  for (int i = 0; i < 400000 && !failures; i++) {
    node *n = new_node(m, (uint64_t)i, 2, false); /* garbage: minor collections copy and free */
    if (!n) {
      failures++;
      break;
    }
    uintptr_t blk = (uintptr_t)n >> 15;
    if (blk == last) continue;
    last = blk;
    uint8_t was = atomic_exchange(&aff_owner[blk & 0xffff], self);
    takes++;
    if (was && was != self) other++;
  }
  aff_takes += takes;
  aff_other += other;
  hk_gc_thread_unregister(m);
  return NULL;
}

/* A copying minor collection frees both threads' nursery blocks onto one free list; a thread that
 * took the next blocks from its head got half of them from the other thread (whose core has their
 * lines cached): 46% of the nursery blocks of a 2-thread mtbintrees run, 4% with the hint in
 * hk__gc_block_prefer. */
static int test_affinity(void) {
  /* A round is one heap and two threads. The bound below holds when the two threads run side by
   * side; on a loaded machine they may run in uneven stretches for a whole round, so up to three
   * rounds are run and the best one must meet it (without the hint every round lands near 46%). */
  long best_takes = 0, best_other = 0;
  for (int round = 0; round < 3; round++) {
    hk_gc_options o;
    hk_gc_options_init(&o);
    o.nursery_size = 1 << 20;
    o.initial_heap = 1 << 20;
    hk_gc_mutator *main_m = test_heap(&o);
    for (size_t i = 0; i < sizeof aff_owner / sizeof aff_owner[0]; i++) atomic_store_explicit(&aff_owner[i], 0, memory_order_relaxed);
    aff_takes = 0;
    aff_other = 0;
    CHECK(pthread_barrier_init(&aff_start, NULL, 2) == 0);
    run_two(main_m, affinity_worker);
    pthread_barrier_destroy(&aff_start);
    hk_gc_stats s;
    hk_gc_stats_get(heap, &s);
    fprintf(stderr, "affinity round %d: %lu minor collections, %ld nursery blocks taken, %ld last used by the other thread\n",
            round, (unsigned long)s.minor_collections, (long)aff_takes, (long)aff_other);
    CHECK(failures == 0);
    CHECK(s.minor_collections >= 10);
    CHECK(aff_takes > 0);
    CHECK(hk_gc_heap_destroy(heap) == HK_OK);
    if (round == 0 || aff_other * best_takes < best_other * aff_takes) {
      best_takes = aff_takes;
      best_other = aff_other;
    }
    if (best_other * 5 < best_takes || failures) break;
  }
  /* The hint looks at the first 8 free blocks only: it works when the two threads run side by
   * side, so that their freed nursery blocks lie interleaved on the free list. Under TSan (and in
   * unoptimised or ASan builds) on a loaded machine the threads run in uneven stretches, the
   * blocks lie grouped by thread and 45-78% came from the other thread (CI, 8 runs beside two
   * busy processes: 6 of 8 over the bound); those builds run the test for its races only. The
   * release build failed once in one round at load 10-12 too, hence the rounds. */
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  CHECK(best_other * 5 < best_takes);
#else
  (void)best_other;
#endif
  return check_report("gc.threads_affinity");
}

/* ---- each thread copies the young objects its own frames reach ------------------------------ */

/* Which of the two threads' trees has nodes in each 32 KiB block, by address (bit 1 or 2). */
static _Atomic uint8_t own_blocks[1 << 16];
static pthread_barrier_t own_step;
static _Atomic long own_mixed, own_blocks_seen, own_rounds_helped;
static _Atomic int own_polling; /* thread 2 polls safepoints in this round (round + 1) */
#define OWN_ROUNDS 40
#define OWN_DEPTH 13 /* 16383 nodes of 32 bytes: 512 KiB, in a 4 MiB nursery */

static node *own_tree(hk_gc_mutator *m, int depth, uint64_t self) {
  node *l = NULL, *r = NULL;
  HK_GC_ROOTS(m, l, r);
  if (depth > 0) {
    l = own_tree(m, depth - 1, self);
    r = own_tree(m, depth - 1, self);
    if (!l || !r) return NULL;
  }
  node *n = new_node(m, self, 2, false);
  if (!n) return NULL;
  n->kids[0] = l;
  n->kids[1] = r;
  return n;
}

static long own_walk(const node *n, uint8_t self) {
  if (!n) return 0;
  if (n->id != self || n->nkids != 2) return -(1L << 30);
  atomic_fetch_or(&own_blocks[((uintptr_t)n >> 15) & 0xffff], self);
  return 1 + own_walk(n->kids[0], self) + own_walk(n->kids[1], self);
}

static void *own_worker(void *arg) {
  uint8_t self = (uint8_t)(uintptr_t)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  node *t = NULL;
  HK_GC_ROOTS(m, t);
  for (int round = 0; round < OWN_ROUNDS && !failures; round++) {
    t = own_tree(m, OWN_DEPTH, self);
    if (!t) {
      failures++;
      break;
    }
    hk_gc_stats s0, s1;
    hk_gc_stats_get(heap, &s0);
    hk_gc_blocking_begin(m);
    pthread_barrier_wait(&own_step); /* both trees built */
    hk_gc_blocking_end(m);
    /* Thread 1 collects; thread 2 waits at safepoints, so it is parked (and spinning) when the
     * collection's parallel phase opens. */
    if (self == 1) {
      while (atomic_load(&own_polling) != round + 1) sched_yield(); /* (not in a blocking region) */
      hk_gc_collect(m, HK_GC_MINOR);
    } else {
      atomic_store(&own_polling, round + 1);
      do {
        hk_gc_safepoint(m);
        hk_gc_stats_get(heap, &s1);
      } while (s1.minor_collections == s0.minor_collections);
    }
    hk_gc_stats_get(heap, &s1);
    hk_gc_blocking_begin(m);
    pthread_barrier_wait(&own_step); /* both threads past the collection */
    hk_gc_blocking_end(m);
    if (own_walk(t, self) != (2L << OWN_DEPTH) - 1) failures++;
    t = NULL;
    hk_gc_blocking_begin(m);
    if (pthread_barrier_wait(&own_step) == PTHREAD_BARRIER_SERIAL_THREAD) { /* both walked */
      long mixed = 0, seen = 0;
      for (size_t i = 0; i < sizeof own_blocks; i++) {
        uint8_t b = atomic_exchange(&own_blocks[i], 0);
        seen += b != 0;
        mixed += b == 3;
      }
      own_mixed += mixed;
      own_blocks_seen += seen;
      if (s1.parallel_phases > s0.parallel_phases) own_rounds_helped++;
    }
    pthread_barrier_wait(&own_step); /* the table is clear */
    hk_gc_blocking_end(m);
  }
  hk_gc_thread_unregister(m);
  return NULL;
}

/* A minor collection visits the mutators' frames one at a time, each followed by the copying of
 * what it reaches, and in a parallel phase each thread starts with its own: the young objects a
 * thread allocated (in its core's cache) are copied by itself. Thread 1 collects while thread 2
 * waits at safepoints, each with a 512 KiB young tree in its frames; each round counts the blocks
 * holding nodes of both trees. Each thread copying its own tree (in a helped phase), or the
 * collector copying one tree after the other (unhelped), leaves one such block per round (where
 * the second tree starts); before, the collector visited every thread's frames first, so the two
 * roots were copied side by side, then the trees after them: two per round (80 in 40 rounds, 1-7
 * rounds helped, load 5-7), now 39-40. */
static int test_own_frames(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 4 << 20;
  o.initial_heap = 16 << 20;
  o.flags |= HK_GC_OPT_NO_BLOCK_PROMOTION; /* every minor collection copies */
  hk_gc_mutator *main_m = test_heap(&o);
  CHECK(pthread_barrier_init(&own_step, NULL, 2) == 0);
  run_two(main_m, own_worker);
  pthread_barrier_destroy(&own_step);
  fprintf(stderr, "own frames: %d rounds, %ld with a helped phase, %ld blocks of tree nodes, %ld with both threads' nodes\n",
          OWN_ROUNDS, (long)own_rounds_helped, (long)own_blocks_seen, (long)own_mixed);
  CHECK(failures == 0);
  CHECK(own_blocks_seen >= 2 * OWN_ROUNDS);
  /* (A thread out of work takes some of the other's, which can mix a few more blocks.) */
  CHECK(own_mixed * 4 <= OWN_ROUNDS * 5);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_own_frames");
}

/* ---- short waits for a safepoint read no CPU clocks ------------------------------------------- */

static _Atomic int sw_stop, sw_ready;

static void *sw_poller(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  sw_ready = 1;
  while (!sw_stop) hk_gc_safepoint(m); /* parks within a microsecond of a collection's request */
  hk_gc_thread_unregister(m);
  return NULL;
}

/* A collector waiting for a thread that polls all the time: the wait ends within the collector's
 * first short spin, so the waited thread's CPU clock (a system call here and another when it
 * parks) is not read and safepoint_run_cpu_ms stays near 0. Reading the clocks at every wait
 * doubled the time a 2-thread mtbintrees run waited at safepoints (35-40 ms against 17-21). */
static int test_short_waits(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 256 << 10;
  hk_gc_mutator *main_m = test_heap(&o);
  pthread_t t;
  hk_gc_blocking_begin(main_m);
  CHECK(pthread_create(&t, NULL, sw_poller, NULL) == 0);
  while (!sw_ready) sched_yield();
  hk_gc_blocking_end(main_m);
  hk_gc_stats s0, s1;
  hk_gc_stats_get(heap, &s0);
  for (int i = 0; i < 2000; i++) hk_gc_collect(main_m, HK_GC_MINOR);
  hk_gc_stats_get(heap, &s1);
  sw_stop = 1;
  hk_gc_blocking_begin(main_m);
  pthread_join(t, NULL);
  hk_gc_blocking_end(main_m);
  double run = s1.safepoint_run_cpu_ms - s0.safepoint_run_cpu_ms, waited = s1.safepoint_wait_ms - s0.safepoint_wait_ms;
  fprintf(stderr, "short waits: 2000 collections waited %.2f ms, the waited thread ran %.3f ms\n", waited, run);
  CHECK(failures == 0);
  /* Only waits the scheduler stretched (the poller off its core) are measured, and the poller
   * runs for a microsecond or so of each. */
  CHECK(run < 0.5);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_short_waits");
}

/* ---- the heap lock's handoffs do not sleep ------------------------------------------------------ */

static _Atomic int ho_stop, ho_ready;
static _Atomic long ho_poller_csw;

/* Voluntary context switches of the calling thread: each is a sleep in the kernel (a futex wait on
 * the heap lock or a condition variable). */
static long own_sleeps(void) {
#ifdef RUSAGE_THREAD
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) == 0) return ru.ru_nvcsw;
#endif
  return -1;
}

static void *ho_poller(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) {
    failures++;
    return NULL;
  }
  long c0 = own_sleeps();
  ho_ready = 1;
  while (!ho_stop) hk_gc_safepoint(m);
  ho_poller_csw = own_sleeps() - c0;
  hk_gc_thread_unregister(m);
  return NULL;
}

static long ho_count(const node *n) { return n ? 1 + ho_count(n->kids[0]) + ho_count(n->kids[1]) : 0; }

/* The phases' work sharing and the handshake go through the heap lock, and it changes hands while
 * its holder has a microsecond or so to go (a busy thread shares work with an idle one, which takes
 * it at once). A plain mutex put the late thread to sleep in the kernel and the holder paid a
 * wake-up. 300 minor collections each copy a young tree of 4095 nodes with the polling thread
 * helping: with a plain mutex the two threads slept 530-590 times between them, with a 200-round
 * spin 450-490, with 2000 rounds 10-20 (SCHED_FIFO, i.e. an idle machine). Where the poller was
 * mostly off its core when the phases opened (a busy machine: 8-13 of 300 helped) there is
 * nothing to judge. */
static int test_handoff(void) {
  if (own_sleeps() < 0) {
    fprintf(stderr, "handoff: no per-thread context switch counts here; skipped\n");
    return 0;
  }
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 4 << 20;
  o.initial_heap = 32 << 20;
  o.flags |= HK_GC_OPT_NO_BLOCK_PROMOTION; /* every minor collection copies */
  hk_gc_mutator *main_m = test_heap(&o);
  pthread_t t;
  hk_gc_blocking_begin(main_m);
  CHECK(pthread_create(&t, NULL, ho_poller, NULL) == 0);
  while (!ho_ready) sched_yield();
  hk_gc_blocking_end(main_m);
  hk_gc_stats s0, s1;
  hk_gc_stats_get(heap, &s0);
  long c0 = own_sleeps();
  node *tree = NULL;
  HK_GC_ROOTS(main_m, tree);
  long nodes_ok = 0;
  for (int i = 0; i < 300; i++) {
    tree = gc_test_tree(main_m, 11);
    hk_gc_collect(main_m, HK_GC_MINOR);
    nodes_ok += ho_count(tree) == 4095;
  }
  long collector = own_sleeps() - c0;
  hk_gc_stats_get(heap, &s1);
  tree = NULL;
  ho_stop = 1;
  hk_gc_blocking_begin(main_m);
  pthread_join(t, NULL);
  hk_gc_blocking_end(main_m);
  long helped = (long)(s1.parallel_phases - s0.parallel_phases);
  fprintf(stderr, "handoff: 300 collections, %ld helped, the collector slept %ld times, the helper %ld\n", helped,
          collector, (long)ho_poller_csw);
  CHECK(failures == 0);
  CHECK(nodes_ok == 300);
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
  /* (Only where the threads run at full speed: a sanitizer's slow paths hold the lock longer than
   * the spin. The scheduler may still take a thread off its core now and then.) */
  /* (judged only where the poller was on its core for most phases: in a CI run beside make stress
   * and two builds, 161 helped and the threads slept 190 times; on the same machine quiet, 260-301
   * helped and 2-32 sleeps) */
  if (helped >= 250) CHECK(collector + ho_poller_csw < 150);
  else fprintf(stderr, "handoff: too few phases helped to judge (a busy machine)\n");
#endif
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_handoff");
}

/* ---- promotion in place, walked in parallel ------------------------------------------------------ */

/* Each thread builds a tree much bigger than its nursery: nearly everything survives, so minor
 * collections promote the young blocks in place, walking them (in a parallel phase when another
 * thread is parked) to arm the barrier bits. Every promoted node must have its bit: a store of a
 * young node into the first leaf (promoted long ago) goes through the barrier, and after a minor
 * collection the leaf must still reach it; hk_gc_verify checks every old object's bit. */
static _Atomic int inplace_verified;
static int inplace_rounds = 8;

static void *inplace_worker(void *arg) {
  hk_gc_mutator *m = arg ? hk_gc_thread_register(heap) : (hk_gc_mutator *)NULL;
  if (arg && !m) {
    failures++;
    return NULL;
  }
  if (!arg) m = (hk_gc_mutator *)heap_main;
  for (int round = 0; round < inplace_rounds && !failures; round++) {
    node *t = NULL, *leaf = NULL, *fresh = NULL;
    HK_GC_ROOTS(m, t, leaf, fresh);
    t = gc_test_tree(m, 14);
    if (!t || tree_count(t) != 32767) failures++;
    if (failures) break;
    for (leaf = t; leaf->kids[0]; leaf = leaf->kids[0]) {}
    fresh = new_node(m, 77, 0, false);
    if (!fresh) {
      failures++;
      break;
    }
    HK_GC_WRITE(m, leaf, kids[0], fresh);
    hk_gc_collect(m, HK_GC_MINOR);
    if (!leaf->kids[0] || leaf->kids[0]->id != 77 || leaf->kids[0] != fresh) failures++;
    HK_GC_WRITE(m, leaf, kids[0], NULL);
    if (hk_gc_verify(m) != HK_OK) failures++;
    inplace_verified++;
  }
  if (arg) hk_gc_thread_unregister(m);
  return NULL;
}

/* Threads that come and go while the two workers promote in place: a thread unregistering while
 * a collection is pending parks first (and may help its walk) and then leaves; one in a blocking
 * region is not waited for. Their own small trees are checked before they leave. */
static _Atomic int inplace_workers_left;
static _Atomic long churned;
static void *inplace_churner(void *arg) {
  (void)arg;
  do { /* at least once, however late this thread starts */
    hk_gc_mutator *m = hk_gc_thread_register(heap);
    if (!m) {
      failures++;
      break;
    }
    {
      node *t = NULL;
      HK_GC_ROOTS(m, t);
      t = gc_test_tree(m, 6);
      if (!t || tree_count(t) != 127) failures++;
      if (churned % 4 == 0) {
        hk_gc_blocking_begin(m);
        sched_yield();
        hk_gc_blocking_end(m);
      }
      hk_gc_safepoint(m);
      if (tree_count(t) != 127) failures++;
    } /* (the root frame is popped here) */
    hk_gc_thread_unregister(m);
    churned++;
  } while (inplace_workers_left > 0 && !failures);
  return NULL;
}
static void *inplace_worker_counted(void *arg) {
  inplace_worker(arg);
  inplace_workers_left--;
  return NULL;
}

static int test_inplace(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 512 << 10; /* 16 blocks: enough for a parallel walk */
  hk_gc_mutator *main_m = test_heap(&o);
  heap_main = main_m;
  inplace_worker(NULL); /* one thread: the walk runs serially */
  hk_gc_stats s1;
  hk_gc_stats_get(heap, &s1);
  run_two(main_m, inplace_worker);
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  fprintf(stderr, "inplace: %lu minor collections, %lu KiB copied, %lu KiB promoted, %lu of %lu phases helped "
          "(%lu helpers)\n", (unsigned long)s.minor_collections, (unsigned long)(s.bytes_copied >> 10),
          (unsigned long)(s.bytes_promoted >> 10), (unsigned long)s.parallel_phases, (unsigned long)s.parallel_opened,
          (unsigned long)s.parallel_helpers);
  CHECK(failures == 0);
  CHECK(inplace_verified == 3 * inplace_rounds);
  /* Mostly promoted in place, not copied (else this test would not test the walk). */
  CHECK(s1.bytes_promoted > 4 * s1.bytes_copied);
  CHECK(s.bytes_promoted > 4 * s.bytes_copied);
  /* One other thread to help: it joins a phase at most once (a helper whose part of the walk
   * ended before the collector's used to join the same phase again and again, spinning on the
   * heap lock until the collector was done). */
  CHECK(s.parallel_helpers <= s.parallel_opened);
  /* again, with a third thread registering and unregistering all along */
  inplace_verified = 0;
  inplace_workers_left = 2;
  pthread_t t[2], c;
  CHECK(pthread_create(&c, NULL, inplace_churner, NULL) == 0);
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, inplace_worker_counted, (void *)1) == 0);
  hk_gc_blocking_begin(main_m);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  pthread_join(c, NULL);
  hk_gc_blocking_end(main_m);
  hk_gc_stats s2;
  hk_gc_stats_get(heap, &s2);
  fprintf(stderr, "inplace with churn: %ld threads came and went, %lu minor collections, %lu of %lu phases helped\n",
          (long)churned, (unsigned long)(s2.minor_collections - s.minor_collections),
          (unsigned long)(s2.parallel_phases - s.parallel_phases), (unsigned long)(s2.parallel_opened - s.parallel_opened));
  CHECK(failures == 0 && inplace_verified == 2 * inplace_rounds && churned > 0);
  CHECK(s2.bytes_promoted > s.bytes_promoted);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_inplace");
}

/* ---- two threads pinning one object ------------------------------------------------------------
 * hk_gc_pin/unpin change the header word with an atomic read-modify-write while the other thread's
 * call checks that word as a header (gc_hdr_plausible): the check must read it atomically too, or
 * ThreadSanitizer reports a data race (test gc.threads_pinshare under -DHK_SANITIZE=thread). */
static pthread_barrier_t pin_barrier;

static void *pin_sharer(void *arg) {
  node *obj = arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) failures++;
  /* Both registered before either pins: registration takes the heap lock, which would otherwise
   * order one thread's whole loop before the other's and hide the race from ThreadSanitizer on a
   * loaded machine. (No collection is asked for meanwhile: nobody allocates.) */
  pthread_barrier_wait(&pin_barrier);
  if (!m) return NULL;
  for (int i = 0; i < 20000; i++) {
    hk_gc_pin(m, obj);
    hk_gc_unpin(m, obj); /* (the pin bit is not counted: the other thread's unpin clears it too) */
  }
  hk_gc_thread_unregister(m);
  return NULL;
}

static int test_pinshare(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  hk_gc_mutator *main_m = test_heap(&o);
  node *obj = new_node(main_m, 1, 0, false);
  HK_GC_ROOTS(main_m, obj);
  CHECK(obj != NULL);
  pthread_t t[2];
  CHECK(pthread_barrier_init(&pin_barrier, NULL, 2) == 0);
  hk_gc_blocking_begin(main_m);
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, pin_sharer, obj) == 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  hk_gc_blocking_end(main_m);
  pthread_barrier_destroy(&pin_barrier);
  CHECK(failures == 0);
  CHECK(!hk_gc_is_pinned(obj));
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads_pinshare");
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "pinshare")) return test_pinshare();
  if (argc > 1 && !strcmp(argv[1], "parallel")) {
    if (argc > 3) par_iters = atoi(argv[3]);
    return test_parallel(argc > 2 ? atoi(argv[2]) : 2);
  }
  if (argc > 1 && !strcmp(argv[1], "register")) return test_register();
  if (argc > 1 && !strcmp(argv[1], "inplace")) return test_inplace();
  if (argc > 1 && !strcmp(argv[1], "affinity")) return test_affinity();
  if (argc > 1 && !strcmp(argv[1], "ownframes")) return test_own_frames();
  if (argc > 1 && !strcmp(argv[1], "shortwaits")) return test_short_waits();
  if (argc > 1 && !strcmp(argv[1], "handoff")) return test_handoff();
  if (argc > 1 && !strcmp(argv[1], "reserve")) {
    if (argc > 2) reserve_iters = atoi(argv[2]);
    if (argc > 3) reserve_nursery_kib = atoi(argv[3]);
    return test_reserve();
  }
  int nthreads = argc > 1 ? atoi(argv[1]) : 4;
  if (argc > 2) rounds = atoi(argv[2]);
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 1 << 20;
  o.initial_heap = 4 << 20;
  hk_gc_mutator *main_m = test_heap(&o);
  for (int wave = 0; wave < 2; wave++) {
    pthread_t t[64];
    for (int i = 0; i < nthreads && i < 64; i++)
      CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1 + wave * 100)) == 0);
    /* The main thread is a mutator too: joining blocks, so it steps out of the way. */
    hk_gc_blocking_begin(main_m);
    for (int i = 0; i < nthreads && i < 64; i++) pthread_join(t[i], NULL);
    hk_gc_blocking_end(main_m);
  }
  hk_gc_collect(main_m, HK_GC_FULL);
  hk_gc_collect(main_m, HK_GC_FULL);
  CHECK(failures == 0);
  CHECK(fin_registered > 0 && fin_ran == fin_registered);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1);
  CHECK(s.minor_collections > 0 && s.full_collections > 0);
  CHECK(s.live_bytes < (1u << 20)); /* the workers' structures died with them */
  hk_gc_stats_print(heap, 2);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.threads");
}
