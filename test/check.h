/* A tiny assertion helper shared by heapkit's C tests: CHECK records a failure with its line and
 * keeps going; check_report prints "N passed, N failed" and returns the exit status. */
#ifndef HK_TEST_CHECK_H
#define HK_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>

static int check_passed, check_failed;
#define CHECK(e)                                                                        \
  do {                                                                                  \
    if (e) check_passed++;                                                              \
    else { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #e); } \
  } while (0)
/* For checks inside loops: counts one pass or failure per call site and stops at the first failure. */
#define CHECK_QUIET(e)                                                                  \
  do { if (!(e)) { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #e); } } while (0)

/* RAM + swap in bytes, and the kernel's overcommit mode (-1 unknown); 0 bytes when unknown. A block
 * of twice that must fail with ENOMEM under the default heuristic (mode 0), as with glibc. */
static inline size_t check_machine_memory(int *mode) {
  *mode = -1;
  FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
  if (f) { if (fscanf(f, "%d", mode) != 1) *mode = -1; fclose(f); }
  f = fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char key[64];
  unsigned long long kb, total = 0;
  while (fscanf(f, "%63s %llu kB", key, &kb) == 2)
    if (key[0] == 'M' ? !__builtin_strcmp(key, "MemTotal:") : !__builtin_strcmp(key, "SwapTotal:")) total += kb;
  fclose(f);
  return (size_t)total << 10;
}

static inline int check_report(const char *name) {
  printf("%s: %d checks passed, %d failed\n", name, check_passed, check_failed);
  return check_failed ? 1 : 0;
}
#endif
