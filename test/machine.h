/* What the machine could back, for the tests that ask for more than that (malloc.api,
 * arena.basic, gc.review): shared by both test helpers (check.h and malloc/testutil.h). */
#ifndef HK_TEST_MACHINE_H
#define HK_TEST_MACHINE_H
#include <stddef.h>
#include <stdio.h>

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

/* RAM + swap when a block of twice that must fail (overcommit mode 0, and no more than max bytes,
 * so that twice it is still a request the page layer considers); otherwise 0, with the reason
 * printed under the test's name. */
static inline size_t check_memory_to_exceed(const char *test, size_t max) {
  int mode;
  size_t mem = check_machine_memory(&mode);
  if (mode != 0 || mem == 0 || mem > max) {
    printf("%s: overcommit mode %d, %zu bytes of RAM+swap: nothing to check\n", test, mode, mem);
    return 0;
  }
  return mem;
}
#endif
