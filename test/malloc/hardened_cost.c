/* HEAPKIT_HARDENED=1 (set by ctest) must not make a free cost O(free blocks of its page): an
 * owner's free of a live block beside ~1000 free blocks of its page is checked without stepping
 * over them. Before (2026-12-07) every free of a hardened page walked the page's free lists (lua5.4's
 * realloc churn ~7x slower). The double frees that the search finds are malloc.misuse_hardened's.
 * Linked with the static library: it reads the page descriptor and the search's step counter. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N 1000
#define ROUNDS 2000

int main(void) {
  const char *env = getenv("HEAPKIT_HARDENED");
  CHECK(env != NULL && strcmp(env, "1") == 0); /* (ctest sets it; without it the test proves nothing) */
  static void *b[N];
  for (int i = 0; i < N; i++) {
    b[i] = hk_malloc(48);
    CHECK(b[i] != NULL);
    memset(b[i], 0x5a, 48);
  }
  hk__page *pg = hk__page_at(b[N / 2]);
  CHECK(pg->flags & HK__PAGE_HARDENED);
  /* every other block free: the live ones have free neighbours, the page ~N/2 free blocks */
  int freed = 0;
  for (int i = 0; i < N; i += 2)
    if (hk__page_at(b[i]) == pg) {
      hk_free(b[i]);
      b[i] = NULL;
      freed++;
    }
  CHECK(freed > 100);
  uint64_t before = __atomic_load_n(&hk__free_search_steps, __ATOMIC_RELAXED);
  int rounds = 0;
  for (int r = 0; r < ROUNDS; r++) {
    int i = 1 + 2 * (r % (N / 2));
    if (b[i] == NULL || hk__page_at(b[i]) != pg) continue;
    hk_free(b[i]); /* a live block (its first word the program's data) beside free ones */
    b[i] = hk_malloc(48);
    CHECK(b[i] != NULL);
    memset(b[i], 0x5a, 48);
    rounds++;
  }
  CHECK(rounds > 100);
  uint64_t steps = __atomic_load_n(&hk__free_search_steps, __ATOMIC_RELAXED) - before;
  /* before: every free stepped over the page's free blocks (~500 each, ~10^6 in all) */
  CHECKF(steps == 0, "a hardened free searched %llu blocks in %d frees", (unsigned long long)steps, rounds);
  for (int i = 0; i < N; i++) hk_free(b[i]);
  printf("ok: %d hardened frees beside %d free blocks, %llu search steps\n", rounds, freed, (unsigned long long)steps);
  return 0;
}
