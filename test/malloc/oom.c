/* Out of memory: when the OS refuses address space (RLIMIT_AS), every allocation function returns
 * NULL with ENOMEM (posix_memalign: ENOMEM) instead of crashing, the blocks already handed out stay
 * intact, and once they are freed the same allocations succeed again.
 *
 * Usage: malloc_oom [headroom-MiB]   (address space allowed beyond what the process has; 384)
 * Runs in a forked child so the limit does not leak into anything else. Not under sanitizers
 * (their shadow memory needs terabytes of address space). */
#define _GNU_SOURCE
#include <heapkit.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define MiB ((size_t)1 << 20)
#define MAXB 1000000

static void *blocks[MAXB];

/* Allocates blocks of n bytes until the allocator says no; returns how many it got. */
static int fill_up(size_t n, int kind) {
  int count = 0;
  for (;;) {
    CHECKF(count < MAXB, "no failure after %d blocks of %zu bytes: is the limit in force?", count, n);
    errno = 0;
    void *p = NULL;
    int rc = 0;
    switch (kind) {
    case 0: p = hk_malloc(n); break;
    case 1: p = hk_calloc(1, n); break;
    case 2: rc = hk_posix_memalign(&p, 4096, n); if (rc) p = NULL; break;
    default: p = hk_aligned_alloc(64 << 10, n); break;
    }
    if (!p) {
      if (kind == 2) CHECKF(rc == ENOMEM, "posix_memalign failed with %d, expected ENOMEM", rc);
      else CHECKF(errno == ENOMEM, "allocation %d of %zu bytes (kind %d) failed with errno %d, expected ENOMEM", count, n, kind, errno);
      return count;
    }
    memset(p, 0x3C, n < 4096 ? n : 4096);
    ((char *)p)[n - 1] = 0x3C;
    blocks[count++] = p;
  }
}

static void check_and_free(int count, size_t n) {
  for (int i = 0; i < count; i++) {
    const unsigned char *b = blocks[i];
    CHECKF(b[0] == 0x3C && b[(n < 4096 ? n : 4096) - 1] == 0x3C && b[n - 1] == 0x3C, "block %d of %zu bytes damaged", i, n);
    hk_free(blocks[i]);
  }
}

static void child(size_t headroom) {
  hk_free(hk_malloc(1)); /* initialise before the limit */
  size_t limit = tu_vm_size() + headroom;
  struct rlimit rl = {limit, limit};
  CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
  const size_t sizes[] = {3 * MiB, 200 << 10, 20 << 10, 1000, 9 * MiB};
  for (int kind = 0; kind < 4; kind++)
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      int first = fill_up(n, kind);
      CHECKF(first > 0, "no %zu-byte block at all under a limit of %zu MiB", n, limit >> 20);
      /* at the limit: other sizes fail cleanly too, or succeed */
      errno = 0;
      void *q = hk_malloc(64 * MiB);
      CHECK(q == NULL && errno == ENOMEM);
      check_and_free(first, n);
      hk_collect(true);
      int again = fill_up(n, kind);
      /* the memory came back: at least half as many blocks fit again */
      CHECKF(again >= first / 2, "after freeing %d blocks of %zu bytes only %d fit again", first, n, again);
      check_and_free(again, n);
      hk_collect(true);
      printf("malloc_oom: kind %d, %8zu-byte blocks: %5d then %5d before ENOMEM\n", kind, n, first, again);
    }
  /* and normal service resumes */
  void *p = hk_malloc(100);
  CHECK(p != NULL);
  hk_free(p);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_oom";
  size_t headroom = (size_t)tu_arg(argc, argv, 1, "HK_TEST_HEADROOM_MIB", 384) * MiB;
  double t0 = tu_now();
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    alarm(120);
    child(headroom);
    fflush(NULL);
    _exit(0);
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s %d", WIFSIGNALED(st) ? "killed by signal" : "exited with status",
         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  printf("malloc_oom: ok (%.2f s)\n", tu_now() - t0);
  return 0;
}
