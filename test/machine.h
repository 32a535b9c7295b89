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
#endif
