/* The pool workload of bench_arena.c (1,024 live 48-byte blocks, 256 frees in a random order,
 * then 256 allocations, 2,000,000 pairs) in a function of its own, for A/B comparisons of the
 * inline paths in pool.h. In bench_arena the loop shares its function and its code placement
 * with other rows, and the placement alone moves a row by as much as a change of the inline
 * paths does; bench/arena/placement.sh builds this program at 8 placements (PAD bytes of padding
 * before the loop) against two libraries and alternates them. Prints the median over 9 runs of
 * the CPU nanoseconds per alloc+free; argument "u" measures an unchecked pool. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <heapkit.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pool_perms.h"

#ifndef PAD
#define PAD 0
#endif
#define STR_(x) #x
#define STR(x) STR_(x)
#define POOL_OPS 2000000
#define POOL_SIZE 48

static void *live[POOL_LIVE];
static hk_pool *hkp;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}


static inline void touch(void *p, int i) { ((uint32_t *)p)[0] = (uint32_t)i; }

/* PAD bytes of code before the loop's function: a different placement of the same loop */
__attribute__((noinline, aligned(64))) void pad_fn(void) {
#if PAD > 0
  __asm__ volatile(".skip " STR(PAD) ", 0x90");
#endif
}

__attribute__((noinline)) static void loop(int unchecked) {
  hkp = hk_pool_new_ex(&(hk_pool_options){.block_size = POOL_SIZE, .unchecked = unchecked});
  for (int s = 0; s < POOL_LIVE; s++) live[s] = hk_pool_alloc(hkp);
  for (int r = 0; r < POOL_OPS / POOL_BATCH; r++) {
    const uint16_t *pm = perm[r % POOL_PERMS];
    for (int i = 0; i < POOL_BATCH; i++) hk_pool_free(hkp, live[pm[i]]);
    for (int i = 0; i < POOL_BATCH; i++) touch(live[pm[i]] = hk_pool_alloc(hkp), i);
  }
  for (int s = 0; s < POOL_LIVE; s++) hk_pool_free(hkp, live[s]);
  hk_pool_destroy(hkp);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int unchecked = argc > 1 && argv[1][0] == 'u';
  make_perms();
  double t[9];
  loop(unchecked); /* warm-up */
  for (int r = 0; r < 9; r++) {
    double t0 = now_ns();
    loop(unchecked);
    t[r] = (now_ns() - t0) / POOL_OPS;
  }
  qsort(t, 9, sizeof t[0], cmp_double);
  printf("%.3f\n", t[4]);
  return 0;
}
