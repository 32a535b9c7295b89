/* Fork handlers that allocate, registered before heapkit's (atfork_alloc_lib.c), under LD_PRELOAD.
 *
 * Usage: LD_PRELOAD=<libheapkit.so> malloc_atfork_alloc <forks>
 * Two threads allocate and free all the time (so the allocator's locks are contended); the main
 * thread forks; each child allocates, starts a thread that allocates, and exits 0. alarm() turns a
 * hang into a failure (before the fix: the first fork hung in the library's prepare handler). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

void hk_test_atfork_runs(int out[3]);

static atomic_int stop;

static void *churn(void *arg) {
  tu_rng r;
  tu_seed(&r, (uint64_t)(uintptr_t)arg);
  void *slot[64] = {0};
  while (!atomic_load(&stop)) {
    int k = (int)tu_below(&r, 64);
    free(slot[k]);
    slot[k] = malloc(tu_powerlaw_size(&r, (size_t)8 << 20));
  }
  for (int k = 0; k < 64; k++) free(slot[k]);
  return NULL;
}

static void *child_thread(void *arg) {
  for (int i = 0; i < 100; i++) free(malloc((size_t)i * 1000 + 1));
  return arg;
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_atfork_alloc";
  int forks = argc > 1 ? atoi(argv[1]) : 20;
  alarm(30);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0);
  for (int f = 0; f < forks; f++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      int runs[3];
      hk_test_atfork_runs(runs);
      if (runs[2] != 1) _exit(3); /* the child handler ran once in this process */
      pthread_t c;
      if (pthread_create(&c, NULL, child_thread, NULL) != 0) _exit(4);
      pthread_join(c, NULL);
      void *p = malloc((size_t)6 << 20);
      if (!p) _exit(5);
      free(p);
      _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: status 0x%x", f, st);
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  int runs[3];
  hk_test_atfork_runs(runs);
  CHECKF(runs[0] == forks && runs[1] == forks && runs[2] == 0, "handler runs %d %d %d for %d forks", runs[0], runs[1], runs[2], forks);
  printf("malloc_atfork_alloc: %d forks with allocating handlers registered before heapkit's: ok\n", forks);
  return 0;
}
