/* How much a program can allocate under an address-space limit (`ulimit -v`, RLIMIT_AS) with heapkit
 * preloaded, against glibc's malloc under the same limit. The limit is set before exec, as a shell's
 * `ulimit -v` is, so what heapkit maps at start (its .bss, its first segments) counts too.
 *
 * For each block size, a child is exec'd with RLIMIT_AS = (this program's address space at start
 * under glibc) + headroom, once plain and once with LD_PRELOAD=<libheapkit.so>; it allocates blocks
 * of that size until malloc returns NULL (which must come with errno ENOMEM, never a crash), writing
 * the first word and the last byte of each, frees them and allocates one again, and prints the bytes
 * it got. heapkit must get at least the size's percentage of glibc's bytes: 90, but 80 for blocks of
 * 20000 bytes, whose size class (20480) fits 6 to a 128 KiB page (85% of glibc's at 128 MiB; the
 * page's fit, not address space).
 *
 * Before (2026-12-07), with 128 MiB: 70-86% (an 8 MiB segment map in .bss, a 4 MiB segment for
 * the thread records, whole 4 MiB segments only, 4 MiB more for a moment to align each, a 1 MiB
 * block's segment rounded to 1.25 MiB); now 85-95%. With 48 MiB 53-65% before, 80-89% now (the
 * map's 4 MiB is a twelfth of it); with 16 MiB the first malloc failed, now 61-73%.
 *
 * Usage: malloc_vsz LIBHEAPKIT [headroom-MiB [SIZE[:PERCENT]...]]   (defaults: 128, the sizes below)
 *        malloc_vsz -child SIZE          (internal; SIZE 0 prints the address space at start) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define MiB ((size_t)1 << 20)

extern char **environ;

/* Allocates blocks of n bytes (chained through their first word) until malloc says no. */
static int child(size_t n) {
  void *head = NULL;
  size_t bytes = 0, count = 0;
  for (;;) {
    errno = 0;
    void **p = malloc(n);
    if (!p) {
      if (errno != ENOMEM) {
        fprintf(stderr, "malloc_vsz: malloc(%zu) failed with errno %d, expected ENOMEM\n", n, errno);
        return 2;
      }
      break;
    }
    *p = head;
    head = p;
    ((char *)p)[n - 1] = 1;
    bytes += n;
    count++;
  }
  /* every block intact and freed: the allocator still works at the limit */
  while (head) {
    void **p = head;
    head = *p;
    free(p);
  }
  void *q = malloc(n);
  if (!q) {
    fprintf(stderr, "malloc_vsz: no %zu-byte block after freeing %zu\n", n, count);
    return 3;
  }
  free(q);
  printf("%zu\n", bytes);
  return 0;
}

/* Runs this program as a child under the limit, with or without heapkit; returns the bytes it got. */
static size_t run(const char *self, const char *lib, size_t limit, size_t n) {
  int fd[2];
  CHECK(pipe(fd) == 0);
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    if (lib) setenv("LD_PRELOAD", lib, 1);
    else unsetenv("LD_PRELOAD");
    struct rlimit rl = {limit, limit};
    if (limit && setrlimit(RLIMIT_AS, &rl) != 0) _exit(120);
    char arg[32];
    snprintf(arg, sizeof arg, "%zu", n);
    execl(self, self, "-child", arg, (char *)NULL);
    _exit(121);
  }
  close(fd[1]);
  char buf[64] = {0};
  ssize_t got = 0, r;
  while (got < (ssize_t)sizeof buf - 1 && (r = read(fd[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0) got += r;
  close(fd[0]);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s child for %zu-byte blocks under %zu MiB: %s %d", lib ? "heapkit" : "glibc", n,
         limit >> 20, WIFSIGNALED(st) ? "killed by signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  return (size_t)strtoull(buf, NULL, 10);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_vsz";
  if (argc == 3 && strcmp(argv[1], "-child") == 0) {
    size_t n = (size_t)strtoull(argv[2], NULL, 10);
    if (n == 0) { /* the address space of this program at start */
      printf("%zu\n", tu_vm_size());
      return 0;
    }
    return child(n);
  }
  CHECK(argc >= 2);
  const char *lib = argv[1];
  size_t headroom = (argc > 2 ? (size_t)atol(argv[2]) : 128) * MiB;
  static const char *dflt[] = {"16", "100", "1000", "20000:80", "102400", "1048576", "9437184"};
  const char *specs[32];
  size_t nsizes = 0;
  for (int i = 3; i < argc && nsizes < 32; i++) specs[nsizes++] = argv[i];
  if (nsizes == 0)
    for (; nsizes < sizeof dflt / sizeof dflt[0]; nsizes++) specs[nsizes] = dflt[nsizes];
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  CHECK(len > 0);
  self[len] = 0;
  unsetenv("LD_PRELOAD");
  size_t base = run(self, NULL, 0, 0);
  CHECK(base > 0);
  size_t limit = base + headroom;
  int failed = 0;
  for (size_t i = 0; i < nsizes; i++) {
    char *end;
    size_t n = (size_t)strtoull(specs[i], &end, 10);
    long percent = *end == ':' ? atol(end + 1) : 90;
    CHECK(n >= sizeof(void *));
    size_t g = run(self, NULL, limit, n), h = run(self, lib, limit, n);
    double r = g ? (double)h / (double)g : 0;
    bool ok = r * 100 >= (double)percent;
    printf("malloc_vsz: %8zu-byte blocks under %zu MiB (start %zu MiB + %zu): glibc %6.1f MiB, heapkit %6.1f MiB (%3.0f%%, at least %ld%%)%s\n",
           n, limit >> 20, base >> 20, headroom >> 20, (double)g / (double)MiB, (double)h / (double)MiB, r * 100, percent,
           ok ? "" : "  <-- below the bound");
    fflush(stdout);
    failed += !ok;
  }
  CHECKF(failed == 0, "%d block sizes below their bound", failed);
  return 0;
}
