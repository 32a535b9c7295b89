/* Threads before main: a constructor starts threads that allocate and free while the program is
 * still being initialised (and, when preloaded, possibly before heapkit's own constructors ran).
 * main joins them, verifies the blocks they kept and frees them from the main thread.
 *
 * Two builds of this file:
 *   HK_TEST_USE_HK=1  linked with heapkit, calls hk_malloc/hk_free;
 *   HK_TEST_USE_HK=0  not linked with heapkit, calls malloc/free and is run with LD_PRELOAD set
 *                     to the library; argv[1], if given, names the library the blocks must come
 *                     from (checked through hk_owns when the preloaded library has it); argv[2],
 *                     if given, names libmalloc_early.so (early.c), which must be preloaded too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>

#include "testutil.h"

#if HK_TEST_USE_HK
#include <heapkit.h>
#define XMALLOC hk_malloc
#define XFREE hk_free
#define XREALLOC hk_realloc
#else
#define XMALLOC malloc
#define XFREE free
#define XREALLOC realloc
#endif

#define NT 6
#define KEEP 200
static pthread_t early[NT];
static void *kept[NT][KEEP];
static size_t kept_n[NT][KEEP];

static void *early_thread(void *arg) {
  int id = (int)(uintptr_t)arg;
  tu_rng r;
  tu_seed(&r, (uint64_t)id + 1);
  for (int i = 0; i < 20000; i++) {
    size_t n = tu_powerlaw_size(&r, 128 << 10);
    char *p = XMALLOC(n);
    CHECK(p != NULL);
    tu_fill(p, n);
    if (i % 3 == 0) {
      p = XREALLOC(p, n + 100);
      CHECK(p != NULL);
      tu_fill(p, n + 100);
      n += 100;
    }
    int k = (int)tu_below(&r, KEEP);
    if (kept[id][k]) {
      CHECK(tu_verify(kept[id][k], kept_n[id][k]) == (size_t)-1);
      XFREE(kept[id][k]);
    }
    kept[id][k] = p;
    kept_n[id][k] = n;
  }
  return NULL;
}

__attribute__((constructor(101))) static void start_early_threads(void) {
  for (int i = 0; i < NT; i++)
    if (pthread_create(&early[i], NULL, early_thread, (void *)(uintptr_t)i) != 0) abort();
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_ctor";
  double t0 = tu_now();
  for (int i = 0; i < NT; i++) CHECK(pthread_join(early[i], NULL) == 0);
  bool (*owns)(const void *) = NULL;
#if HK_TEST_USE_HK
  owns = hk_owns;
#else
  owns = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "hk_owns");
  if (argc > 1) {
    /* the allocator in use must be the preloaded one */
    Dl_info di;
    CHECK(dladdr(dlsym(RTLD_DEFAULT, "malloc"), &di) && di.dli_fname);
    CHECKF(strstr(di.dli_fname, strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1]) != NULL,
           "malloc resolves to %s, not the preloaded %s", di.dli_fname, argv[1]);
  }
#endif
  /* Threads of a library preloaded after heapkit (early.c), started before heapkit's constructor. */
  int (*early_join)(bool (*)(const void *)) = NULL;
#if !HK_TEST_USE_HK
  early_join = (int (*)(bool (*)(const void *)))dlsym(RTLD_DEFAULT, "hk_test_early_join");
#endif
  int early_blocks = early_join ? early_join(owns) : -1;
  if (argc > 2) CHECKF(early_blocks > 0, "%s was not preloaded", argv[2]);
  int owned = 0;
  for (int i = 0; i < NT; i++)
    for (int k = 0; k < KEEP; k++)
      if (kept[i][k]) {
        CHECKF(tu_verify(kept[i][k], kept_n[i][k]) == (size_t)-1, "block of early thread %d corrupt", i);
        if (owns) {
          CHECKF(owns(kept[i][k]), "block %p of an early thread not owned by heapkit", kept[i][k]);
          owned++;
        }
        XFREE(kept[i][k]);
      }
  printf("malloc_ctor: %d threads started by a constructor allocated before main (%d blocks checked with hk_owns)%s: ok "
         "(%.2f s)\n", NT, owned, early_blocks > 0 ? ", and threads of a library preloaded after heapkit" : "", tu_now() - t0);
  return 0;
}
