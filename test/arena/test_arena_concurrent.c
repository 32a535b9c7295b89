/* Concurrent mode: threads share one arena (atomic bump). Every block must be distinct and keep
 * what its thread wrote; cleanups and children may be added from any thread. Runs under TSan. */
#include <heapkit.h>
#include "check.h"
#include "child.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#define THREADS 4
#define PER_THREAD 20000

static hk_arena *shared;
static unsigned char *blocks[THREADS][PER_THREAD];
static size_t sizes[THREADS][PER_THREAD];
static atomic_int cleanups_run;
static void cleanup(void *arg) { (void)arg; atomic_fetch_add(&cleanups_run, 1); }

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  uint32_t x = 12345u + (uint32_t)id * 7919u;
  for (int i = 0; i < PER_THREAD; i++) {
    x = x * 1103515245u + 12345u;
    size_t n = 8 + (x >> 16) % 200;
    if (i % 1000 == 999) n = 70000; /* forces commits and chunk changes under contention */
    size_t align = (i % 7 == 0) ? 64 : 16;
    unsigned char *p = hk_arena_alloc_aligned(shared, n, align);
    CHECK_QUIET(p != NULL && (uintptr_t)p % align == 0);
    memset(p, id + 1, n);
    blocks[id][i] = p;
    sizes[id][i] = n;
    if (i % 5000 == 0) hk_arena_defer(shared, cleanup, NULL);
  }
  hk_arena *child = hk_arena_new(&(hk_arena_options){.parent = shared, .flags = HK_ARENA_CONCURRENT});
  CHECK_QUIET(child && hk_arena_alloc(child, 100));
  return NULL;
}

/* Budgets under contention: threads allocate until the budget refuses; the total never passes it. */
static hk_arena *budgeted;
static atomic_size_t got_bytes;
static void *until_full(void *arg) {
  (void)arg;
  while (hk_arena_alloc(budgeted, 1000)) atomic_fetch_add(&got_bytes, 1008);
  return NULL;
}

/* Tracing a shared arena serializes the allocations; every one is recorded once. */
static hk_arena *traced;
static void *traced_worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 2000; i++) CHECK_QUIET(hk_arena_alloc(traced, 24) != NULL);
  return NULL;
}

static void test_budget_and_trace(void) {
  const size_t budget = (size_t)8 << 20;
  budgeted = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = budget});
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, until_full, NULL);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  hk_arena_stats st;
  hk_arena_stats_get(budgeted, &st);
  CHECK(st.budget_used <= budget && st.committed <= budget);
  CHECK(atomic_load(&got_bytes) > budget / 2 && atomic_load(&got_bytes) <= budget);
  hk_arena_destroy(budgeted);

  traced = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT | HK_ARENA_TRACE});
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, traced_worker, NULL);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  char path[] = "/tmp/hk_arena_conc_traceXXXXXX";
  int fd = mkstemp(path);
  close(fd);
  CHECK(hk_arena_trace_write(traced, path) == HK_OK);
  FILE *f = fopen(path, "r");
  int lines = 0;
  char buf[128];
  while (f && fgets(buf, sizeof buf, f)) lines++;
  if (f) fclose(f);
  remove(path);
  CHECK(lines == 1 + THREADS * 2000);
  hk_arena_destroy(traced);
}

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((unsigned char *const *)a)[0], y = (uintptr_t)((unsigned char *const *)b)[0];
  return x < y ? -1 : x > y;
}

/* fork while other threads use a concurrent arena: a thread holding the arena's lock (growing it,
 * here in a slow budget callback, which runs under it) at the fork left it held in the child, whose
 * first allocation that needed the lock waited for ever (alarm turns that into a failure). */
static hk_arena *forked;
static atomic_int fork_stop;
static int slow_release(hk_arena *a, size_t need, void *arg) {
  (void)a, (void)need, (void)arg;
  usleep(100);
  return 0;
}
static void *fork_worker(void *arg) {
  (void)arg;
  while (!atomic_load(&fork_stop)) hk_arena_alloc(forked, 100000); /* at the budget: NULL, after the callback */
  return NULL;
}
static int test_fork(void) {
  forked = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 2 << 20, .release = slow_release});
  CHECK(forked != NULL);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, fork_worker, NULL);
  int bad = 0;
  for (int k = 0; k < 40 && bad < 2; k++) {
    pid_t p = fork();
    if (p == 0) {
      alarm(2);
      hk_arena_alloc(forked, 100000); /* takes the lock to commit (and fails at the budget) */
      hk_arena *c = hk_arena_new(&(hk_arena_options){.parent = forked});
      (void)c; /* (NULL at the budget: its metadata counts against it) */
      _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
  }
  CHECK(bad == 0);
  atomic_store(&fork_stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  hk_arena_destroy(forked);
  return check_report("arena.concurrent_fork");
}

/* The same beside a collector: a thread that is a mutator of a heap allocates from the concurrent
 * arena (at its budget, the slow callback under the arena's lock) and from the heap. With the
 * arenas' fork handlers registered after the collector's (the heap first), theirs ran first and
 * held the arena's lock while the collector's waited for that mutator, blocked on it: the parent
 * hung at its fork (alarm turns that into a failure). */
static hk_gc_heap *fork_heap;
static hk_gc_type fork_type;
static void *gc_fork_worker(void *arg) {
  (void)arg;
  hk_gc_mutator *m = hk_gc_thread_register(fork_heap);
  CHECK(m != NULL);
  while (!atomic_load(&fork_stop)) {
    hk_arena_alloc(forked, 100000);
    for (int i = 0; i < 10; i++) CHECK_QUIET(hk_gc_alloc(m, fork_type, 32) != NULL);
  }
  hk_gc_thread_unregister(m);
  return NULL;
}
static int test_fork_gc(void) {
  hk_gc_mutator *m;
  CHECK(hk_gc_heap_create(NULL, &fork_heap, &m) == HK_OK); /* the collector's handlers first */
  hk_gc_type_desc d = {.name = "data", .flags = HK_GC_TYPE_NO_POINTERS};
  CHECK(hk_gc_type_register(fork_heap, &d, &fork_type) == HK_OK);
  forked = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 2 << 20, .release = slow_release});
  CHECK(forked != NULL);
  pthread_t t;
  pthread_create(&t, NULL, gc_fork_worker, NULL);
  alarm(30);
  int ok = 0;
  for (int k = 0; k < 200; k++) {
    hk_gc_blocking_begin(m); /* (fork waits for running mutators: this one is not going to poll) */
    pid_t p = fork();
    if (p == 0) _exit(0);
    hk_gc_blocking_end(m);
    int st = 0;
    waitpid(p, &st, 0);
    ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  alarm(0);
  CHECK(ok == 200);
  atomic_store(&fork_stop, 1);
  pthread_join(t, NULL);
  hk_arena_destroy(forked);
  CHECK(hk_gc_heap_destroy(fork_heap) == HK_OK);
  return check_report("arena.concurrent_fork_gc");
}

/* Fork handlers that use a concurrent arena, registered before the arenas' own (which are
 * registered at the first concurrent arena): glibc runs prepare handlers last-registered first and
 * the others first-registered first, so these ran while the arenas' handlers held every concurrent
 * arena's lock, and the first commit waited for a lock its own thread held: the fork hung (alarm
 * turns that into a failure). They commit (a block past the committed end), make a child of the
 * arena and another concurrent arena and destroy both, while another thread allocates from it. */
static hk_arena *aarena;
static int aruns[3]; /* prepare, parent, child */
static void atfork_use(int which) {
  if (!aarena) return;
  unsigned char *b = hk_arena_alloc(aarena, 300000);
  if (!b) abort();
  memset(b, which + 1, 300000);
  hk_arena *c = hk_arena_new(&(hk_arena_options){.parent = aarena});
  hk_arena *d = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT});
  if (!c || !d || !hk_arena_alloc(c, 100) || !hk_arena_alloc(d, 100000)) abort();
  hk_arena_destroy(c);
  hk_arena_destroy(d);
  if (b[299999] != which + 1) abort();
  aruns[which]++;
}
static void atfork_prepare(void) { atfork_use(0); }
static void atfork_parent(void) { atfork_use(1); }
static void atfork_child(void) { atfork_use(2); }
/* Commits in the handlers' arena (a bounded amount), then waits in a budget callback of another
 * one, under its lock, again and again. (With no pause between the callbacks the lock was free
 * for a few instructions at a time, and the arenas' prepare handler, which only tries the locks,
 * waited for seconds in the debug build.) */
static void *atfork_worker(void *arg) {
  (void)arg;
  for (int i = 0; i < 1000 && !atomic_load(&fork_stop); i++) hk_arena_alloc(aarena, 70000);
  while (!atomic_load(&fork_stop)) {
    hk_arena_alloc(forked, 100000);
    usleep(100);
  }
  return NULL;
}
static int test_atfork(void) {
  CHECK(pthread_atfork(atfork_prepare, atfork_parent, atfork_child) == 0);
  alarm(30);
  aarena = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT}); /* the arenas' handlers now */
  forked = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 2 << 20, .release = slow_release});
  CHECK(aarena != NULL && forked != NULL);
  pthread_t t;
  pthread_create(&t, NULL, atfork_worker, NULL);
  int bad = 0;
  for (int k = 0; k < 20; k++) {
    pid_t p = fork();
    if (p == 0) {
      alarm(10);
      if (aruns[2] != 1) _exit(2);
      atfork_use(2); /* and again, after every handler */
      _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
  }
  atomic_store(&fork_stop, 1);
  pthread_join(t, NULL);
  alarm(0);
  CHECK(bad == 0);
  CHECK(aruns[0] == 20 && aruns[1] == 20 && aruns[2] == 0);
  hk_arena_destroy(aarena);
  hk_arena_destroy(forked);
  return check_report("arena.concurrent_atfork");
}

/* fork while threads hold concurrent arenas' locks nearly all the time (each in a budget callback
 * that sleeps, under its arena's lock, with a moment's gap between calls): the prepare handler only
 * tried the locks and, when one was busy, let all go, yielded and tried again, so it needed every
 * arena free at the same instant and the fork waited for ever (alarm turns that into a failure; no
 * timing is judged, only that every fork completes). */
static hk_arena *busy_arenas[2];
static int sleepy_release(hk_arena *a, size_t need, void *arg) {
  (void)a, (void)need, (void)arg;
  usleep(1000);
  return 0;
}
static void *busy_worker(void *arg) {
  hk_arena *a = busy_arenas[(intptr_t)arg];
  while (!atomic_load(&fork_stop)) hk_arena_alloc(a, 100000); /* at the budget: the callback, then NULL */
  return NULL;
}
static int test_fork_busy(void) {
  alarm(120);
  for (int i = 0; i < 2; i++) {
    busy_arenas[i] = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 2 << 20, .release = sleepy_release});
    CHECK(busy_arenas[i] != NULL);
  }
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, busy_worker, (void *)(intptr_t)i);
  usleep(20000); /* (both at their budgets) */
  int forks = 0, bad = 0;
  for (int k = 0; k < 20; k++) {
    pid_t p = fork();
    if (p == 0) {
      alarm(10);
      /* each takes its arena's lock to commit (and fails at the budget): usable in the child */
      (void)hk_arena_alloc(busy_arenas[0], 100000);
      (void)hk_arena_alloc(busy_arenas[1], 100000);
      _exit(0);
    }
    CHECK(p > 0);
    int st = 0;
    waitpid(p, &st, 0);
    forks++;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
  }
  alarm(0);
  CHECK(forks == 20 && bad == 0);
  atomic_store(&fork_stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < 2; i++) hk_arena_destroy(busy_arenas[i]);
  return check_report("arena.concurrent_fork_busy");
}


/* fork from inside a concurrent arena's budget callback, which runs under that arena's lock: the
 * prepare handler waited for that lock, held by its own thread, and the fork hung (alarm turns that
 * into a failure). The callback of arena `own` forks (on the main thread, when armed) while a
 * worker allocates from `own` (at its budget: callbacks, the lock) and from `other`; the child
 * returns from the callback (which lets its copy of the lock go), checks the blocks made before
 * the fork, resets `own` and allocates from both arenas (commits: their locks), and exits 0; the
 * parent goes on allocating from both beside the worker. The oom-handler variant forks from the
 * oom handler of a third arena, allocated from inside `own`'s callback (a commit from a callback
 * past a budget fails at once, without a callback: callbacks do not nest). */
static hk_arena *own, *other, *third;
static pthread_t own_main;
static atomic_int own_armed;
static pid_t own_pid = -1;
static int own_mode; /* 0: fork in own's release callback; 1: in third's oom handler from it */
static void *own_oom(hk_arena *a, size_t size, void *arg) {
  (void)a, (void)size, (void)arg;
  if (pthread_equal(pthread_self(), own_main) && atomic_exchange(&own_armed, 0)) own_pid = fork();
  return NULL;
}
static int own_release(hk_arena *a, size_t need, void *arg) {
  (void)a, (void)need, (void)arg;
  if (!pthread_equal(pthread_self(), own_main)) {
    usleep(50);
    return 0;
  }
  if (own_mode == 0) {
    if (atomic_exchange(&own_armed, 0)) own_pid = fork();
  } else {
    (void)hk_arena_alloc(third, 100000); /* past third's budget: its oom handler, under own's lock */
  }
  return 0;
}
static void *own_worker(void *arg) {
  (void)arg;
  uint32_t x = 1;
  while (!atomic_load(&fork_stop)) {
    hk_arena_alloc(own, 100000);
    x = x * 1103515245u + 12345u;
    size_t n = 16 + (x >> 16) % 4000;
    unsigned char *p = hk_arena_alloc(other, n);
    CHECK_QUIET(p != NULL);
    if (p) {
      memset(p, 0x5a, n);
      CHECK_QUIET(p[0] == 0x5a && p[n - 1] == 0x5a);
    }
  }
  return NULL;
}
static bool filled(const unsigned char *p, size_t n, int v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)v) return false;
  return true;
}
static void own_child(unsigned char **blk, int nblk, int k) {
  alarm(10);
  for (int i = 0; i < nblk; i++)
    if (!filled(blk[i], 1000, (k + i) & 0xff)) _exit(3);
  hk_arena_reset(own); /* (the child's only thread: quiet) */
  unsigned char *a = hk_arena_alloc(own, 1 << 20), *b = hk_arena_alloc(other, 3 << 20);
  if (!a || !b) _exit(4);
  memset(a, 0x11, 1 << 20);
  memset(b, 0x22, 3 << 20);
  if (!filled(a, 1 << 20, 0x11) || !filled(b, 3 << 20, 0x22)) _exit(5);
  hk_arena_destroy(own);
  hk_arena_destroy(other);
  _exit(0);
}
static int test_fork_own(int mode) {
  const char *name = mode ? "arena.concurrent_fork_own_oom" : "arena.concurrent_fork_own";
  own_mode = mode;
  own_main = pthread_self();
  alarm(60);
  own = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 4 << 20, .release = own_release});
  other = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT});
  third = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 1 << 20, .oom = own_oom});
  CHECK(own && other && third);
  pthread_t t;
  pthread_create(&t, NULL, own_worker, NULL);
  int forks = 0, bad = 0;
  for (int k = 0; k < 20; k++) {
    unsigned char *blk[8];
    int nblk = 0;
    for (int i = 0; i < 8; i++) {
      blk[i] = hk_arena_alloc(i % 2 ? other : own, 1000);
      if (!blk[i]) break;
      memset(blk[i], (k + i) & 0xff, 1000);
      nblk++;
    }
    own_pid = -1;
    atomic_store(&own_armed, 1);
    /* at the budget: a commit calls the callback, which forks */
    for (int i = 0; i < 1000 && atomic_load(&own_armed); i++) hk_arena_alloc(own, 100000);
    CHECK(!atomic_load(&own_armed));
    if (own_pid == 0) own_child(blk, nblk, k);
    CHECK(own_pid > 0);
    int st = 0;
    if (own_pid > 0) waitpid(own_pid, &st, 0);
    forks++;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    for (int i = 0; i < nblk; i++) CHECK_QUIET(filled(blk[i], 1000, (k + i) & 0xff));
    /* the parent's locks work: commits in both arenas, from here and from the worker */
    for (int i = 0; i < 20; i++) {
      hk_arena_alloc(own, 100000);
      CHECK_QUIET(hk_arena_alloc(other, 70000) != NULL);
    }
  }
  CHECK(forks == 20 && bad == 0);
  /* an oom handler of a concurrent arena runs with no lock held: forking there worked already */
  atomic_store(&own_armed, 1);
  own_pid = -1;
  for (int i = 0; i < 100 && atomic_load(&own_armed); i++) hk_arena_alloc(third, 100000);
  if (own_pid == 0) _exit(hk_arena_alloc(other, 1 << 20) ? 0 : 6);
  CHECK(own_pid > 0);
  int st = 0;
  if (own_pid > 0) waitpid(own_pid, &st, 0);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  alarm(0);
  atomic_store(&fork_stop, 1);
  pthread_join(t, NULL);
  hk_arena_destroy(own);
  hk_arena_destroy(other);
  hk_arena_destroy(third);
  return check_report(name);
}


/* fork while another thread, inside a concurrent arena's budget callback (under its lock), is
 * stopped at a collector safepoint: the collector's prepare handler (which runs first) parks it
 * there, and the arenas' prepare handler then waited for its lock for ever (alarm turns that into
 * a failure). The parked thread cannot move until the fork is over, and its arena is as consistent
 * as a callback sees it, so the lock is left to it; the child, without that thread, gets the lock
 * free. The child commits in that arena and in another one (a worker's, not a mutator) and
 * allocates from the heap; the parent goes on as before. */
static hk_gc_mutator *parked_m;
static atomic_int parked_calls;
static int parked_release(hk_arena *a, size_t need, void *arg) {
  (void)a, (void)need, (void)arg;
  atomic_fetch_add(&parked_calls, 1);
  for (int i = 0; i < 4; i++) {
    CHECK_QUIET(hk_gc_alloc(parked_m, fork_type, 32) != NULL);
    hk_gc_safepoint(parked_m); /* (where the collector's prepare handler stops this thread) */
    usleep(50);
  }
  return 0;
}
static void *parked_worker(void *arg) {
  (void)arg;
  parked_m = hk_gc_thread_register(fork_heap);
  CHECK(parked_m != NULL);
  while (!atomic_load(&fork_stop)) hk_arena_alloc(forked, 100000); /* at the budget: the callback */
  hk_gc_thread_unregister(parked_m);
  return NULL;
}
static void *parked_other(void *arg) {
  (void)arg;
  while (!atomic_load(&fork_stop)) {
    unsigned char *p = hk_arena_alloc(other, 70000);
    CHECK_QUIET(p != NULL);
    if (p) memset(p, 7, 70000);
  }
  return NULL;
}
static int test_fork_parked(void) {
  hk_gc_mutator *m;
  CHECK(hk_gc_heap_create(NULL, &fork_heap, &m) == HK_OK);
  hk_gc_type_desc d = {.name = "data", .flags = HK_GC_TYPE_NO_POINTERS};
  CHECK(hk_gc_type_register(fork_heap, &d, &fork_type) == HK_OK);
  forked = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 2 << 20, .release = parked_release});
  other = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT});
  CHECK(forked && other);
  pthread_t t[2];
  pthread_create(&t[0], NULL, parked_worker, NULL);
  pthread_create(&t[1], NULL, parked_other, NULL);
  while (atomic_load(&parked_calls) < 10) usleep(1000); /* (at the budget) */
  alarm(60);
  int ok = 0;
  for (int k = 0; k < 40; k++) {
    hk_gc_blocking_begin(m); /* (fork waits for running mutators: this one is not going to poll) */
    pid_t p = fork();
    if (p == 0) {
      alarm(10);
      hk_gc_blocking_end(m);
      for (int i = 0; i < 100; i++)
        if (!hk_gc_alloc(m, fork_type, 32)) _exit(2);
      hk_arena_reset(forked); /* (quiet: the child's only thread) */
      unsigned char *a = hk_arena_alloc(forked, 1 << 20), *b = hk_arena_alloc(other, 3 << 20);
      if (!a || !b) _exit(3);
      memset(a, 1, 1 << 20);
      memset(b, 2, 3 << 20);
      if (!filled(a, 1 << 20, 1) || !filled(b, 3 << 20, 2)) _exit(4);
      _exit(0);
    }
    hk_gc_blocking_end(m);
    int st = 0;
    waitpid(p, &st, 0);
    ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  alarm(0);
  CHECK(ok == 40);
  int calls = atomic_load(&parked_calls);
  usleep(20000);
  CHECK(atomic_load(&parked_calls) > calls); /* the parked thread went on in the parent */
  atomic_store(&fork_stop, 1);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  hk_arena_destroy(forked);
  hk_arena_destroy(other);
  CHECK(hk_gc_heap_destroy(fork_heap) == HK_OK);
  return check_report("arena.concurrent_fork_parked");
}

/* Two threads fork at once, each from a budget callback of its own concurrent arena: each prepare
 * handler left its own thread's lock alone and waited for the other's, held by a thread that was
 * itself waiting in its fork, for ever (alarm: a failure). Both threads meet at a barrier inside
 * their callbacks and fork (and at another out of them after); each child allocates from the other
 * thread's arena (free there: its holder does not exist) and exits 0. Variants with a GC heap and
 * a shared pool: their prepare handlers, which run before the arenas', wait for a lock the first
 * fork holds throughout. */
static hk_arena *two[2];
static pthread_barrier_t two_bar;
static atomic_int two_bad, two_forks;
static int two_in_child;
static int two_release(hk_arena *a, size_t need, void *arg) {
  (void)a, (void)need;
  int i = (int)(intptr_t)arg;
  if (two_in_child) return 0;
  pthread_barrier_wait(&two_bar);
  pid_t p = fork();
  if (p == 0) {
    two_in_child = 1;
    alarm(10);
    hk_arena_reset(two[1 - i]); /* (its lock: free here) */
    unsigned char *x = hk_arena_alloc(two[1 - i], 1 << 20);
    if (!x) _exit(3);
    memset(x, 0x33, 1 << 20);
    if (!filled(x, 1 << 20, 0x33)) _exit(4);
    _exit(0);
  }
  int st = 0;
  if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) atomic_fetch_add(&two_bad, 1);
  atomic_fetch_add(&two_forks, 1);
  return 0;
}
static void *two_worker(void *arg) {
  int i = (int)(intptr_t)arg;
  for (int k = 0; k < 20; k++) {
    hk_arena_reset(two[i]);
    /* at the budget: one callback, which fails the commit */
    for (int j = 0; j < 100; j++)
      if (!hk_arena_alloc(two[i], 100000)) break;
    /* (not at the next callback's barrier, holding its lock, while the other fork waits for it) */
    pthread_barrier_wait(&two_bar);
  }
  return NULL;
}
static int test_fork_two(int mode) {
  const char *name = mode == 0 ? "arena.concurrent_fork_two" : mode == 1 ? "arena.concurrent_fork_two_gc" : "arena.concurrent_fork_two_pool";
  hk_gc_heap *h = NULL;
  hk_gc_mutator *m = NULL;
  hk_pool *pool = NULL;
  if (mode == 1) CHECK(hk_gc_heap_create(NULL, &h, &m) == HK_OK);
  if (m) hk_gc_blocking_begin(m); /* (the main thread does not poll) */
  alarm(60);
  pthread_barrier_init(&two_bar, NULL, 2);
  for (int i = 0; i < 2; i++) {
    two[i] = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 2 << 20, .release = two_release,
                                              .release_arg = (void *)(intptr_t)i});
    CHECK(two[i] != NULL);
  }
  /* (after the arenas: the pools' handlers, registered later, are prepared before theirs) */
  if (mode == 2) CHECK((pool = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .shared = true})) != NULL);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, two_worker, (void *)(intptr_t)i);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  alarm(0);
  if (atomic_load(&two_forks) != 40 || atomic_load(&two_bad)) fprintf(stderr, "forks %d, bad %d\n", atomic_load(&two_forks), atomic_load(&two_bad));
  CHECK(atomic_load(&two_forks) == 40 && atomic_load(&two_bad) == 0);
  /* the parent's locks work */
  for (int i = 0; i < 2; i++) {
    hk_arena_reset(two[i]);
    CHECK(hk_arena_alloc(two[i], 1 << 20) != NULL);
    hk_arena_destroy(two[i]);
  }
  pthread_barrier_destroy(&two_bar);
  if (pool) hk_pool_destroy(pool);
  if (m) {
    hk_gc_blocking_end(m);
    CHECK(hk_gc_heap_destroy(h) == HK_OK);
  }
  return check_report(name);
}

/* A program's fork handler that runs while the fork holds the arenas (a prepare handler registered
 * before them) uses an arena whose lock the fork left to a thread stopped inside that arena's
 * budget callback: the holder's commit is paused half done, so the handler's commit beside it
 * would run unlocked (commit_end moved back, memory charged twice). It is refused with a message.
 * The holder stays in its callback (polling safepoints) until the fork is over, so the lock is
 * left to it every time; the whole scene runs in a child that must abort with the message. */
static atomic_int ph_in_cb, ph_go, ph_refused;
static pthread_t ph_worker_thread;
static int ph_release(hk_arena *a, size_t need, void *arg) {
  (void)a, (void)need, (void)arg;
  if (!pthread_equal(pthread_self(), ph_worker_thread)) return 0; /* (the handler's own try, before) */
  atomic_store(&ph_in_cb, 1);
  while (!atomic_load(&ph_go)) {
    hk_gc_safepoint(parked_m);
    usleep(100);
  }
  atomic_store(&ph_in_cb, 0);
  return 0;
}
static void ph_prepare(void) {
  if (!forked || !atomic_load(&ph_in_cb)) return;
  if (!hk_arena_alloc(forked, 1 << 20)) atomic_store(&ph_refused, 1); /* (before: NULL at the budget) */
}
static void *ph_worker(void *arg) {
  (void)arg;
  parked_m = hk_gc_thread_register(fork_heap);
  if (!parked_m) _exit(20);
  while (!atomic_load(&fork_stop)) hk_arena_alloc(forked, 100000);
  hk_gc_thread_unregister(parked_m);
  return NULL;
}
static void fork_handler_scene(void) {
  alarm(30);
  if (pthread_atfork(ph_prepare, NULL, NULL) != 0) _exit(21); /* (before the arenas' and the collector's) */
  hk_gc_mutator *m;
  if (hk_gc_heap_create(NULL, &fork_heap, &m) != HK_OK) _exit(22);
  hk_gc_type_desc d = {.name = "data", .flags = HK_GC_TYPE_NO_POINTERS};
  if (hk_gc_type_register(fork_heap, &d, &fork_type) != HK_OK) _exit(23);
  forked = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .budget = 2 << 20, .release = ph_release});
  if (!forked) _exit(24);
  pthread_create(&ph_worker_thread, NULL, ph_worker, NULL);
  while (!atomic_load(&ph_in_cb)) usleep(1000);
  hk_gc_blocking_begin(m);
  pid_t p = fork();
  if (p == 0) _exit(0);
  hk_gc_blocking_end(m);
  waitpid(p, NULL, 0);
  atomic_store(&fork_stop, 1);
  atomic_store(&ph_go, 1);
  pthread_join(ph_worker_thread, NULL);
  fprintf(stderr, "fork done, handler's allocation %s\n", atomic_load(&ph_refused) ? "NULL" : "served");
}
static int test_fork_parked_handler(void) {
  char out[2048], why[256];
  int st = check_child_run(fork_handler_scene, out, sizeof out);
  check_child_aborted(st, out, "heapkit: fork handler used concurrent arena", NULL, why, sizeof why);
  if (why[0]) fprintf(stderr, "arena.concurrent_fork_parked_handler: %s (child said: %s)\n", why, out);
  CHECK(why[0] == 0);
  return check_report("arena.concurrent_fork_parked_handler");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "fork") == 0) return test_fork();
  if (argc > 1 && strcmp(argv[1], "fork_gc") == 0) return test_fork_gc();
  if (argc > 1 && strcmp(argv[1], "atfork") == 0) return test_atfork();
  if (argc > 1 && strcmp(argv[1], "fork_busy") == 0) return test_fork_busy();
  if (argc > 1 && strcmp(argv[1], "fork_own") == 0) return test_fork_own(0);
  if (argc > 1 && strcmp(argv[1], "fork_own_oom") == 0) return test_fork_own(1);
  if (argc > 1 && strcmp(argv[1], "fork_parked") == 0) return test_fork_parked();
  if (argc > 1 && strcmp(argv[1], "fork_parked_handler") == 0) return test_fork_parked_handler();
  if (argc > 1 && strcmp(argv[1], "fork_two") == 0) return test_fork_two(0);
  if (argc > 1 && strcmp(argv[1], "fork_two_gc") == 0) return test_fork_two(1);
  if (argc > 1 && strcmp(argv[1], "fork_two_pool") == 0) return test_fork_two(2);
  shared = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT, .commit_step = 4096});
  CHECK(shared != NULL);
  for (int round = 0; round < 2; round++) {
    hk_arena_mark m = hk_arena_save(shared);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    /* contents intact: no two threads got overlapping memory */
    int intact = 1;
    for (int id = 0; id < THREADS; id++)
      for (int i = 0; i < PER_THREAD; i++)
        for (size_t k = 0; k < sizes[id][i]; k += 7) intact &= blocks[id][i][k] == id + 1;
    CHECK(intact);
    /* and pairwise disjoint by address */
    static unsigned char *all[2 * THREADS * PER_THREAD][2];
    size_t n = 0;
    for (int id = 0; id < THREADS; id++)
      for (int i = 0; i < PER_THREAD; i++) {
        all[n][0] = blocks[id][i];
        all[n][1] = blocks[id][i] + sizes[id][i];
        n++;
      }
    qsort(all, n, sizeof all[0], cmp_ptr);
    int disjoint = 1;
    for (size_t i = 1; i < n; i++) disjoint &= all[i][0] >= all[i - 1][1];
    CHECK(disjoint);
    hk_arena_stats st;
    hk_arena_stats_get(shared, &st);
    CHECK(st.allocated >= (size_t)THREADS * PER_THREAD * 8);
    CHECK(st.cleanups == (size_t)THREADS * (PER_THREAD / 5000));
    atomic_store(&cleanups_run, 0);
    hk_arena_restore(shared, m);
    CHECK(atomic_load(&cleanups_run) == THREADS * (PER_THREAD / 5000));
    hk_arena_stats_get(shared, &st);
    CHECK(st.allocated == 0);
  }
  hk_arena_stats g0, g1;
  hk_arena_global_stats(&g0);
  hk_arena_destroy(shared); /* and the 2 * THREADS children with it */
  hk_arena_global_stats(&g1);
  CHECK(g1.arenas == g0.arenas - 1 - 2 * THREADS);
  test_budget_and_trace();
  return check_report("arena.concurrent");
}
