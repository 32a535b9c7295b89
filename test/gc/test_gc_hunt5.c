/* Threads and collections in ways an embedder may use them, found in a hunt for defects of the
 * collector's multi-threaded behaviour (2026-12-07). Each case names the bug it caught.
 *   test_gc_hunt5 unregister_other  a thread running a mutator of the heap unregisters an idle
 *                                   worker's mutator (in a blocking region) while a third thread's
 *                                   collection waits for it: the caller parks (it waited for the
 *                                   world as a running thread: both waited for ever)
 *   test_gc_hunt5 register_twice    a thread registered with the heap already registers again
 *                                   while another thread's collection waits for it: NULL and the
 *                                   warning (it waited for the world first: for ever)
 *   test_gc_hunt5 cancel_parked     pthread_cancel of a thread that allocates while another thread
 *                                   collects: the cancellation waits until the thread is out of the
 *                                   collector (it took effect in a park's condition wait, with the
 *                                   heap lock held: its exit and every other thread waited for ever)
 *   test_gc_hunt5 cancel_warning    a thread cancelled while the allocation slow path prints a
 *                                   warning under the heap lock (write(2) is a cancellation point;
 *                                   the same hang)
 *   test_gc_hunt5 fork_heaps        a thread running a mutator of one heap creates and destroys
 *                                   heaps, registers with and unregisters from them and reads
 *                                   another heap's statistics while another thread forks; then two registered threads fork at
 *                                   once (each waited for a lock the fork held without parking,
 *                                   and the fork for it: hung)
 * A watchdog ends a case that stops making progress (exit status 2) rather than leaving it to
 * ctest's timeout. */
#include "gc_test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static hk_gc_heap *heap;

static bool stop_pending(hk_gc_mutator *m) {
  return __atomic_load_n(((hk_gc_mutator_fast *)m)->stop, __ATOMIC_RELAXED) != 0;
}

static long count(const node *n) { return n ? 1 + count(n->kids[0]) + count(n->kids[1]) : 0; }

/* The watchdog looks for a stall, not for a slow run: a hang stops every step, while a loaded
 * machine (TSan, two shared cores, other tests beside) only slows them. With a fixed limit of
 * 60 s, cancel_parked was ended at its fifth round, making progress (TSan, ctest -j2, two CPU
 * hogs; 25 s unloaded). Each case counts its steps (a round, a collection, a fork, a retry); no
 * step for STALL_SECS seconds is a hang. A step takes well under a second even then. */
#define STALL_SECS 30
static const char *watched;
static _Atomic unsigned long steps;
static void step(void) { steps++; }

static void *watchdog(void *arg) {
  (void)arg;
  unsigned long seen = steps;
  for (unsigned idle = 0; idle < STALL_SECS; idle++) {
    sleep(1);
    if (steps != seen) seen = steps, idle = 0;
  }
  fprintf(stderr, "%s: no progress for %u s (%lu steps): hung\n", watched, STALL_SECS, seen);
  _exit(2);
}

static void watch(const char *name) {
  watched = name;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, watchdog, NULL) == 0);
  pthread_detach(t);
}

/* The end of a case with 20+ rounds, one full collection each: one mutator left, the heap
 * verified and destroyed. */
static int finish_case(hk_gc_mutator *main_m, const char *name) {
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1 && s.full_collections >= 20);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report(name);
}

/* ---- a mutator of a worker in a blocking region, unregistered by another running mutator ---- */

static hk_gc_mutator *idle_m;
static _Atomic int idle_ready, idle_go;

/* A pool's idle worker: registered, then waiting in a blocking region for work that never comes. */
static void *idle_worker(void *arg) {
  (void)arg;
  idle_m = hk_gc_thread_register(heap);
  if (!idle_m) return NULL;
  hk_gc_blocking_begin(idle_m);
  idle_ready = 1;
  while (!idle_go) sched_yield();
  return NULL; /* (unregistered by the main thread meanwhile: no exit warning) */
}

static _Atomic int coll_go, coll_done;

static void *collector(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) return NULL;
  hk_gc_blocking_begin(m);
  while (!coll_go) sched_yield();
  hk_gc_blocking_end(m);
  hk_gc_collect(m, HK_GC_FULL);
  coll_done = 1;
  hk_gc_thread_unregister(m);
  return NULL;
}

/* Starts the collector and returns once its collection waits for main_m (which does not poll). */
static void collection_pending(hk_gc_mutator *main_m, pthread_t *co) {
  coll_go = coll_done = 0;
  hk_gc_blocking_begin(main_m); /* (the collector's registration may wait for a collection) */
  CHECK(pthread_create(co, NULL, collector, NULL) == 0);
  hk_gc_blocking_end(main_m);
  coll_go = 1;
  while (!stop_pending(main_m)) sched_yield();
}

static void join_blocking(hk_gc_mutator *m, pthread_t t) {
  hk_gc_blocking_begin(m);
  pthread_join(t, NULL);
  hk_gc_blocking_end(m);
}

static int test_unregister_other(void) {
  watch("gc.hunt5_unregister_other");
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(NULL, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  for (int round = 0; round < 20; round++) {
    node *tree = gc_test_tree(main_m, 8);
    HK_GC_ROOTS(main_m, tree);
    idle_ready = idle_go = 0;
    pthread_t w, co;
    hk_gc_blocking_begin(main_m);
    CHECK(pthread_create(&w, NULL, idle_worker, NULL) == 0);
    while (!idle_ready) sched_yield();
    hk_gc_blocking_end(main_m);
    hk_gc_stats s0, s1;
    hk_gc_stats_get(heap, &s0);
    collection_pending(main_m, &co);
    /* The collection waits for this thread: the unregistration must let it run (parking here). */
    hk_gc_thread_unregister(idle_m);
    while (!coll_done) hk_gc_safepoint(main_m);
    hk_gc_stats_get(heap, &s1);
    CHECK_QUIET(s1.full_collections == s0.full_collections + 1);
    idle_go = 1;
    join_blocking(main_m, w);
    join_blocking(main_m, co);
    hk_gc_stats_get(heap, &s1);
    CHECK_QUIET(s1.mutators == 1); /* the idle worker's is gone (and its exit found none) */
    CHECK_QUIET(count(tree) == 511);
    step();
  }
  return finish_case(main_m, "gc.hunt5_unregister_other");
}

/* ---- a second registration while a collection waits for the first mutator ------------------- */

static int test_register_twice(void) {
  watch("gc.hunt5_register_twice");
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(NULL, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  for (int round = 0; round < 20; round++) {
    node *tree = gc_test_tree(main_m, 6);
    HK_GC_ROOTS(main_m, tree);
    pthread_t co;
    collection_pending(main_m, &co);
    CHECK_QUIET(hk_gc_thread_register(heap) == NULL); /* (with the warning, at once) */
    CHECK_QUIET(!coll_done);
    while (!coll_done) hk_gc_safepoint(main_m);
    join_blocking(main_m, co);
    CHECK_QUIET(count(tree) == 127);
    step();
  }
  return finish_case(main_m, "gc.hunt5_register_twice");
}

/* ---- pthread_cancel of a mutator ------------------------------------------------------------ */

typedef struct pair {
  struct pair *l, *r;
} pair;
static hk_gc_type T_PAIR;
static _Atomic int victim_ready;

static pair *pairs(hk_gc_mutator *m, int depth) {
  pair *l = NULL, *r = NULL;
  HK_GC_ROOTS(m, l, r);
  if (depth) {
    l = pairs(m, depth - 1);
    r = pairs(m, depth - 1);
  }
  pair *p = hk_gc_alloc(m, T_PAIR, sizeof *p);
  p->l = l;
  p->r = r;
  return p;
}
static long pairs_count(const pair *p) { return p ? 1 + pairs_count(p->l) + pairs_count(p->r) : 0; }

/* Allocates garbage, so it parks (and waits, asleep) at each of the main thread's collections;
 * its own cancellation point comes only every 100 000 allocations. Exits registered. */
static void *victim(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) return NULL;
  victim_ready = 1;
  for (long i = 1;; i++) {
    if (!hk_gc_alloc(m, T_PAIR, sizeof(pair))) return NULL;
    if (i % 10000 == 0) step();
    if (i % 100000 == 0) pthread_testcancel();
  }
}

static void *canceller(void *arg) {
  nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
  pthread_cancel(*(pthread_t *)arg);
  return NULL;
}

static int test_cancel_parked(void) {
  watch("gc.hunt5_cancel_parked");
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(NULL, &heap, &main_m) == HK_OK);
  hk_gc_type_desc d = {.name = "pair", .pointer_mask = 3};
  CHECK(hk_gc_type_register(heap, &d, &T_PAIR) == HK_OK);
  pair *big = pairs(main_m, 16); /* full collections of a few ms: the victim sleeps in them */
  HK_GC_ROOTS(main_m, big);
  for (int round = 0; round < 5; round++) {
    victim_ready = 0;
    pthread_t v, c;
    hk_gc_blocking_begin(main_m);
    CHECK(pthread_create(&v, NULL, victim, NULL) == 0);
    while (!victim_ready) sched_yield();
    CHECK(pthread_create(&c, NULL, canceller, &v) == 0);
    hk_gc_blocking_end(main_m);
    for (int i = 0; i < 30; i++) {
      hk_gc_collect(main_m, HK_GC_FULL);
      step();
    }
    hk_gc_blocking_begin(main_m);
    pthread_join(c, NULL);
    void *ret = NULL;
    pthread_join(v, &ret);
    hk_gc_blocking_end(main_m);
    CHECK_QUIET(ret == PTHREAD_CANCELED);
    hk_gc_collect(main_m, HK_GC_FULL);
  }
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1); /* each victim's exit unregistered it */
  CHECK(pairs_count(big) == (1L << 17) - 1);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.hunt5_cancel_parked");
}

/* The OOM callback cancels its own thread (deferred: pending until a cancellation point) and asks
 * to retry without freeing anything: after 16 retries the allocation prints its warning, with the
 * heap lock held, then returns NULL. */
static int cancel_oom(hk_gc_heap *h, size_t request, void *data) {
  (void)h, (void)request, (void)data;
  pthread_cancel(pthread_self());
  step();
  return 1;
}

static _Atomic int warned_null;

static void fill(hk_gc_mutator *m) {
  pair *keep = NULL;
  HK_GC_ROOTS(m, keep);
  for (;;) {
    pair *p = hk_gc_alloc(m, T_PAIR, sizeof *p);
    if (!p) break;
    p->l = keep;
    keep = p;
  }
}

static void *oom_victim(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) return NULL;
  /* (in a frame of its own: the cancellation's unwinding skips frames without unpoisoning their
   * locals, and AddressSanitizer then reported its own thread teardown on that stack) */
  fill(m);
  warned_null = 1; /* (no cancellation point since the callback) */
  pthread_testcancel();
  return NULL;
}

static int test_cancel_warning(void) {
  watch("gc.hunt5_cancel_warning");
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = 1 << 20;
  o.oom = cancel_oom;
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(&o, &heap, &main_m) == HK_OK);
  hk_gc_type_desc d = {.name = "pair", .pointer_mask = 3};
  CHECK(hk_gc_type_register(heap, &d, &T_PAIR) == HK_OK);
  pthread_t v;
  void *ret = NULL;
  hk_gc_blocking_begin(main_m);
  CHECK(pthread_create(&v, NULL, oom_victim, NULL) == 0);
  pthread_join(v, &ret);
  hk_gc_blocking_end(main_m);
  CHECK(ret == PTHREAD_CANCELED && warned_null);
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1);
  hk_gc_collect(main_m, HK_GC_FULL); /* the heap lock is free */
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  return check_report("gc.hunt5_cancel_warning");
}

/* ---- fork while a mutator of one heap waits for another heap's lock ------------------------- */

static _Atomic int forks_left, forkers_running;
static hk_gc_heap *other;

static void fork_once(void) {
  pid_t p = fork();
  if (p == 0) _exit(0);
  if (p > 0) waitpid(p, NULL, 0);
}

/* Not registered (a library thread calling popen, say). */
static void *outside_forker(void *arg) {
  (void)arg;
  while (forks_left > 0) {
    fork_once();
    forks_left--;
    step();
  }
  forkers_running--;
  return NULL;
}

/* Registered, allocating between forks (its fork stops the heap's world with the other's running). */
static void *mutator_forker(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(heap);
  if (!m) return NULL;
  while (forks_left > 0) {
    for (int i = 0; i < 200; i++) CHECK_QUIET(new_node(m, 1, 1, false) != NULL);
    pid_t p = fork();
    if (p == 0) _exit(0);
    hk_gc_blocking_begin(m);
    if (p > 0) waitpid(p, NULL, 0);
    hk_gc_blocking_end(m);
    forks_left--;
    step();
  }
  forkers_running--;
  hk_gc_thread_unregister(m);
  return NULL;
}

static int test_fork_heaps(void) {
  watch("gc.hunt5_fork_heaps");
  hk_gc_mutator *main_m;
  CHECK(hk_gc_heap_create(NULL, &heap, &main_m) == HK_OK);
  register_test_types(heap);
  hk_gc_mutator *om;
  CHECK(hk_gc_heap_create(NULL, &other, &om) == HK_OK);
  hk_gc_thread_unregister(om);
  node *tree = gc_test_tree(main_m, 6);
  HK_GC_ROOTS(main_m, tree);
  /* 1: the main thread runs in heap and works on other heaps while an outside thread forks. */
  forks_left = 100;
  forkers_running = 1;
  pthread_t f;
  CHECK(pthread_create(&f, NULL, outside_forker, NULL) == 0);
  long rounds = 0;
  while (forkers_running) {
    for (int i = 0; i < 100; i++) CHECK_QUIET(new_node(main_m, 1, 1, false) != NULL);
    hk_gc_heap *h1;
    CHECK_QUIET(hk_gc_heap_create(NULL, &h1, NULL) == HK_OK); /* (the list of heaps) */
    hk_gc_mutator *m1 = hk_gc_thread_register(h1);           /* (h1's lock) */
    CHECK_QUIET(m1 != NULL);
    hk_gc_blocking_begin(m1); /* (the mutator of the heap it does not use: The embedder's duties) */
    hk_gc_stats st;
    hk_gc_stats_get(other, &st); /* (other's lock) */
    hk_gc_thread_unregister(m1); /* (h1's lock) */
    CHECK_QUIET(hk_gc_heap_destroy(h1) == HK_OK);
    rounds++;
    step();
  }
  join_blocking(main_m, f);
  /* 2: two registered threads fork at once (each fork waits for the other's running mutator). */
  forks_left = 200;
  forkers_running = 2;
  pthread_t g[2];
  hk_gc_blocking_begin(main_m);
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&g[i], NULL, mutator_forker, NULL) == 0);
  for (int i = 0; i < 2; i++) pthread_join(g[i], NULL);
  hk_gc_blocking_end(main_m);
  fprintf(stderr, "fork_heaps: %ld heaps made and destroyed during 100 forks\n", rounds);
  CHECK(count(tree) == 127);
  hk_gc_stats s;
  hk_gc_stats_get(heap, &s);
  CHECK(s.mutators == 1);
  CHECK(hk_gc_verify(main_m) == HK_OK);
  CHECK(hk_gc_heap_destroy(heap) == HK_OK);
  om = hk_gc_thread_register(other);
  CHECK(om && hk_gc_heap_destroy(other) == HK_OK);
  return check_report("gc.hunt5_fork_heaps");
}

int main(int argc, char **argv) {
  const char *t = argc > 1 ? argv[1] : "";
  if (!strcmp(t, "unregister_other")) return test_unregister_other();
  if (!strcmp(t, "register_twice")) return test_register_twice();
  if (!strcmp(t, "cancel_parked")) return test_cancel_parked();
  if (!strcmp(t, "cancel_warning")) return test_cancel_warning();
  if (!strcmp(t, "fork_heaps")) return test_fork_heaps();
  fprintf(stderr, "usage: test_gc_hunt5 unregister_other|register_twice|cancel_parked|cancel_warning|fork_heaps\n");
  return 2;
}
