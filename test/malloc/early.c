/* A preloadable library whose constructor starts allocating threads: preloaded after heapkit
 * (LD_PRELOAD="libheapkit.so libmalloc_early.so"), its constructor runs before heapkit's own, so
 * these threads call malloc before heapkit's initialisation has run anywhere. malloc_ctor_preload
 * finds hk_test_early_join through dlsym, joins the threads and checks their blocks. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdbool.h>

#include "testutil.h"

#define NT 4
#define KEEP 100
static pthread_t threads[NT];
static void *kept[NT][KEEP];
static size_t kept_n[NT][KEEP];

static void *early(void *arg) {
  int id = (int)(uintptr_t)arg;
  tu_rng r;
  tu_seed(&r, (uint64_t)id + 77);
  for (int i = 0; i < 5000; i++) {
    size_t n = tu_powerlaw_size(&r, 64 << 10);
    char *p = malloc(n);
    CHECK(p != NULL);
    tu_fill(p, n);
    int k = (int)tu_below(&r, KEEP);
    if (kept[id][k]) {
      CHECK(tu_verify(kept[id][k], kept_n[id][k]) == (size_t)-1);
      free(kept[id][k]);
    }
    kept[id][k] = p;
    kept_n[id][k] = n;
  }
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  tu_test_name = "malloc_early";
  for (int i = 0; i < NT; i++)
    if (pthread_create(&threads[i], NULL, early, (void *)(uintptr_t)i) != 0) abort();
}

/* Joins the threads, verifies and frees what they kept; returns the number of blocks, each
 * checked with owns() when given. */
__attribute__((visibility("default"))) int hk_test_early_join(bool (*owns)(const void *)) {
  int n = 0;
  for (int i = 0; i < NT; i++) CHECK(pthread_join(threads[i], NULL) == 0);
  for (int i = 0; i < NT; i++)
    for (int k = 0; k < KEEP; k++)
      if (kept[i][k]) {
        CHECK(tu_verify(kept[i][k], kept_n[i][k]) == (size_t)-1);
        if (owns) CHECK(owns(kept[i][k]));
        free(kept[i][k]);
        n++;
      }
  return n;
}
