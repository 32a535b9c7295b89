/* fork safety: a multi-threaded parent forks while its other threads allocate and free. The child
 * (which has only the forking thread) must be able to allocate, free blocks it inherited (owned by
 * threads that do not exist in the child), start threads, and fork again; the grandchild too.
 * A child that deadlocks on a lock held at fork time is killed by alarm() and reported.
 *
 * Usage: malloc_fork [forks] [threads]   (env HK_TEST_FORKS, HK_TEST_THREADS) */
#define _GNU_SOURCE
#include <heapkit.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block.h"

#define NSLOTS 1024
static _Atomic(uint64_t *) slots[NSLOTS];
static atomic_int stop;

static uint64_t *make_block(tu_rng *r) { return tu_block_new(16 + tu_powerlaw_size(r, tu_below(r, 50) ? 64 << 10 : 6 << 20)); }

static void *allocator_thread(void *arg) {
  tu_rng r;
  tu_seed(&r, (uintptr_t)arg);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    uint64_t *old = atomic_exchange(&slots[tu_below(&r, NSLOTS)], make_block(&r));
    if (old) tu_block_free(old);
  }
  return NULL;
}

/* What a child does: use the allocator hard, including blocks inherited from the parent. */
static void child_work(int depth, unsigned seed) {
  tu_rng r;
  tu_seed(&r, seed);
  /* Inherited blocks: their owner threads do not exist here. Verify and free a third of them. */
  for (int i = 0; i < NSLOTS; i += 3) {
    uint64_t *b = atomic_exchange(&slots[i], NULL);
    if (b) tu_block_free(b);
  }
  for (int i = 0; i < 4000; i++) {
    uint64_t *old = atomic_exchange(&slots[tu_below(&r, NSLOTS)], make_block(&r));
    if (old) tu_block_free(old);
  }
  char *c = hk_calloc(1000, 1000);
  CHECK(c && tu_all_zero(c, 1000000));
  hk_free(c);
  hk_heap *h = hk_heap_new();
  for (int i = 0; i < 1000; i++) CHECK(hk_heap_malloc(h, (size_t)i * 7) != NULL);
  hk_heap_destroy(h);
  /* A thread in the child. */
  atomic_store(&stop, 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, allocator_thread, (void *)(uintptr_t)(seed + 1)) == 0);
  for (int i = 0; i < 5000; i++) hk_free(hk_malloc((size_t)i));
  usleep(20000);
  atomic_store(&stop, 1);
  CHECK(pthread_join(t, NULL) == 0);
  if (depth < 2) {
    fflush(NULL);
    pid_t g = fork();
    CHECK(g >= 0);
    if (g == 0) {
      alarm(30);
      child_work(depth + 1, seed * 7 + 3);
      exit(0);
    }
    int st;
    CHECK(waitpid(g, &st, 0) == g);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "grandchild (depth %d) failed: %s %d", depth + 1,
           WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  }
  for (int i = 0; i < NSLOTS; i++) {
    uint64_t *b = atomic_exchange(&slots[i], NULL);
    if (b) tu_block_free(b);
  }
}

/* A thread the child starts may get the thread pointer (heapkit's thread id) of a parent thread
 * the child does not have: glibc reuses the stacks fork left behind. It must not take that dead
 * thread's segments for its own. Here it frees all of the dead thread's 16 KiB blocks (which gave
 * their emptied segments back through the dead thread's structures, leaving the new thread hints
 * to them), the main thread's next allocations took those segments, and the new thread's frees of
 * the main thread's blocks went through the stale hints, as local frees into the main thread's
 * pages (caught by the debug build's assertion on that path; a data race in others). */
enum { TID_N = 600 }; /* 16 KiB blocks: more than two segments */
static void *tid_dead[TID_N], *tid_main[TID_N];
static void *tid_dead_tp;
static atomic_int tid_step;
static void tid_wait(int v) { while (atomic_load(&tid_step) < v) usleep(200); }
static void *tid_parent_thread(void *arg) {
  (void)arg;
  tid_dead_tp = __builtin_thread_pointer();
  for (int i = 0; i < TID_N; i++) CHECK((tid_dead[i] = hk_malloc(16 << 10)) != NULL);
  atomic_store(&tid_step, 1);
  tid_wait(2);
  return NULL;
}
static void *tid_child_thread(void *arg) {
  *(int *)arg = __builtin_thread_pointer() == tid_dead_tp;
  for (int i = 0; i < TID_N; i++) hk_free(tid_dead[i]);
  atomic_store(&tid_step, 3);
  tid_wait(4);
  for (int i = 0; i < TID_N; i += 2) hk_free(tid_main[i]);
  hk_free(hk_malloc(16 << 10));
  return NULL;
}
static void reused_thread_id(void) {
  pthread_t t;
  CHECK(pthread_create(&t, NULL, tid_parent_thread, NULL) == 0);
  tid_wait(1);
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    alarm(60);
    int reused = 0;
    pthread_t u;
    CHECK(pthread_create(&u, NULL, tid_child_thread, &reused) == 0);
    tid_wait(3);
    for (int i = 0; i < TID_N; i++) {
      CHECK((tid_main[i] = hk_malloc(16 << 10)) != NULL);
      memset(tid_main[i], 0x5a, 16 << 10);
    }
    atomic_store(&tid_step, 4);
    CHECK(pthread_join(u, NULL) == 0);
    for (int i = 1; i < TID_N; i += 2) hk_free(tid_main[i]);
    printf("malloc_fork: the child's thread %s the thread pointer of a parent thread\n", reused ? "reused" : "did not reuse");
    exit(0);
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child with a reused thread id: %s %d",
         WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  atomic_store(&tid_step, 2);
  CHECK(pthread_join(t, NULL) == 0);
  for (int i = 0; i < TID_N; i++) hk_free(tid_dead[i]);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_fork";
  int forks = (int)tu_arg(argc, argv, 1, "HK_TEST_FORKS", 8);
  int nthreads = (int)tu_arg(argc, argv, 2, "HK_TEST_THREADS", 4);
  double t0 = tu_now();
  reused_thread_id();
  pthread_t *t = malloc(sizeof(pthread_t) * nthreads);
  for (int i = 0; i < nthreads; i++) CHECK(pthread_create(&t[i], NULL, allocator_thread, (void *)(uintptr_t)(i + 100)) == 0);
  int failed = 0;
  for (int f = 0; f < forks; f++) {
    usleep(10000 + (useconds_t)(f * 3000));
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      alarm(60); /* a deadlock in the child becomes SIGALRM, reported below */
      child_work(f % 2, (unsigned)f + 1);
      exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      fprintf(stderr, "malloc_fork: child %d %s %d%s\n", f, WIFSIGNALED(st) ? "killed by signal" : "exited with status",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
              WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? " (deadlock after fork?)" : "");
      failed++;
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < nthreads; i++) CHECK(pthread_join(t[i], NULL) == 0);
  free(t);
  for (int i = 0; i < NSLOTS; i++) {
    uint64_t *b = atomic_exchange(&slots[i], NULL);
    if (b) tu_block_free(b);
  }
  CHECKF(failed == 0, "%d of %d forked children failed", failed, forks);
  printf("malloc_fork: %d forks with %d allocating threads, children forked again: ok (%.2f s)\n", forks, nthreads,
         tu_now() - t0);
  return 0;
}
