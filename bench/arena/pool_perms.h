/* The pool workload's free order, shared by bench_arena.c and pool_placement.c so that both time
 * the same sequence: POOL_LIVE live blocks, POOL_BATCH of them freed in a random order then
 * allocated again, cycling through POOL_PERMS fixed permutations (generated, not random per run). */
#ifndef HK_BENCH_POOL_PERMS_H
#define HK_BENCH_POOL_PERMS_H
#include <stdint.h>

#define POOL_LIVE 1024
#define POOL_BATCH 256
#define POOL_PERMS 64
static uint16_t perm[POOL_PERMS][POOL_BATCH];

static void make_perms(void) {
  uint32_t x = 88172645u;
  uint16_t all[POOL_LIVE];
  for (int k = 0; k < POOL_PERMS; k++) {
    for (int i = 0; i < POOL_LIVE; i++) all[i] = (uint16_t)i;
    for (int i = 0; i < POOL_BATCH; i++) {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      int j = i + (int)(x % (uint32_t)(POOL_LIVE - i));
      uint16_t t = all[i];
      all[i] = all[j];
      all[j] = t;
      perm[k][i] = all[i];
    }
  }
}
#endif
