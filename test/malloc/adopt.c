/* Adopting the segments of exited threads whose blocks other threads have freed since: placing the
 * segment's last in-use page frees it, and with it the segment (unless it is the thread's one kept
 * empty segment). hk__tld_adopt_one then read that page's descriptor inside the freed segment: a
 * segfault when the segment was unmapped at once (HEAPKIT_SEGMENT_CACHE=0, as ctest runs this), a
 * read of a cached (or reused) segment otherwise.
 *
 * Each round: a thread allocates blocks over several pages of a small and a medium size class and
 * exits; this thread (which holds a segment of its own, so the adopted one is not the one kept
 * empty) frees them all, then adopts by hk_collect(true), or by allocating. */
#include <heapkit.h>

#include "testutil.h"

#define N 3000
static void *blocks[N];

static void *fill(void *arg) {
  size_t big = (size_t)(uintptr_t)arg;
  for (int i = 0; i < N; i++) {
    blocks[i] = hk_malloc(i % 2 ? 64 : big);
    CHECK(blocks[i] != NULL);
    memset(blocks[i], 0x5a, 64);
  }
  return NULL;
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_adopt";
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  void *mine = hk_malloc(64);
  void *mine_big = hk_malloc(4000);
  for (int r = 0; r < rounds; r++) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fill, (void *)(uintptr_t)(r % 2 ? 4000 : 20000)) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    for (int i = 0; i < N; i++) hk_free(blocks[i]);
    if (r % 3 == 2) {
      for (int i = 0; i < 200; i++) hk_free(hk_malloc((size_t)(i + 1) * 96)); /* adoption by allocation */
    } else {
      hk_collect(true);
    }
  }
  hk_free(mine);
  hk_free(mine_big);
  hk_collect(true);
  hk_stats st;
  hk_stats_get(&st);
  printf("malloc_adopt: %d rounds ok (segments %zu, abandoned %zu)\n", rounds, st.segments, st.segments_abandoned);
  return 0;
}
