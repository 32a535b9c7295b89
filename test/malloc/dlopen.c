/* dlopen safety: a program that is not linked with heapkit loads libheapkit.so at run time with
 * RTLD_NOW | RTLD_LOCAL, after it has started threads, and calls the allocator from all of them
 * through dlsym. A library built with initial-exec TLS larger than glibc's static TLS surplus
 * fails right here with "cannot allocate memory in static TLS block".
 *
 * Usage: malloc_dlopen <library.so> [malloc-symbol] [free-symbol] [threads]
 * (symbols default to hk_malloc / hk_free; another allocator's names validate the test itself) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "testutil.h"

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef bool (*owns_fn)(const void *);

static malloc_fn xmalloc;
static free_fn xfree;
static owns_fn xowns;
static pthread_barrier_t ready;
#define NSLOTS 512
static _Atomic(uint64_t *) slots[NSLOTS];

static void *worker(void *arg) {
  pthread_barrier_wait(&ready); /* started before the library was loaded */
  pthread_barrier_wait(&ready); /* library loaded, symbols resolved */
  tu_rng r;
  tu_seed(&r, (uintptr_t)arg);
  for (int i = 0; i < 20000; i++) {
    size_t n = 16 + tu_powerlaw_size(&r, 1 << 20);
    uint64_t *b = xmalloc(n);
    CHECKF(b != NULL, "malloc(%zu) through dlsym", n);
    if (xowns) CHECK(xowns(b));
    b[0] = n;
    tu_fill(b + 1, n - 8);
    uint64_t *old = atomic_exchange(&slots[tu_below(&r, NSLOTS)], b);
    if (old) {
      CHECKF(tu_verify(old + 1, old[0] - 8) == (size_t)-1, "block %p corrupt", (void *)old);
      xfree(old);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_dlopen";
  CHECKF(argc >= 2, "usage: %s <library.so> [malloc-symbol] [free-symbol] [threads]", argv[0]);
  const char *msym = argc > 2 ? argv[2] : "hk_malloc";
  const char *fsym = argc > 3 ? argv[3] : "hk_free";
  int nthreads = argc > 4 ? atoi(argv[4]) : 8;
  double t0 = tu_now();
  pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
  pthread_t *t = malloc(sizeof(pthread_t) * nthreads);
  for (int i = 0; i < nthreads; i++) CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
  pthread_barrier_wait(&ready);

  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  CHECKF(lib != NULL, "dlopen(%s) failed: %s", argv[1], dlerror());
  xmalloc = (malloc_fn)dlsym(lib, msym);
  xfree = (free_fn)dlsym(lib, fsym);
  xowns = (owns_fn)dlsym(lib, "hk_owns");
  CHECKF(xmalloc && xfree, "dlsym(%s/%s): %s", msym, fsym, dlerror());
  /* RTLD_LOCAL: the library's symbols must not have become global. */
  CHECKF(dlsym(RTLD_DEFAULT, msym) == NULL, "%s visible globally after RTLD_LOCAL", msym);

  /* the loading thread allocates too, before the others start */
  void *p = xmalloc(100);
  CHECK(p != NULL);
  xfree(p);
  pthread_barrier_wait(&ready);
  for (int i = 0; i < nthreads; i++) CHECK(pthread_join(t[i], NULL) == 0);
  /* a thread started after the load */
  pthread_barrier_init(&ready, NULL, 1);
  pthread_t late;
  CHECK(pthread_create(&late, NULL, worker, (void *)(uintptr_t)999) == 0);
  CHECK(pthread_join(late, NULL) == 0);
  for (int i = 0; i < NSLOTS; i++) {
    uint64_t *b = atomic_exchange(&slots[i], NULL);
    if (b) {
      CHECK(tu_verify(b + 1, b[0] - 8) == (size_t)-1);
      xfree(b);
    }
  }
  free(t);
  dlclose(lib);
  printf("malloc_dlopen: %s loaded RTLD_NOW|RTLD_LOCAL with %d threads running, %s/%s from %d threads: ok (%.2f s)\n",
         argv[1], nthreads, msym, fsym, nthreads + 1, tu_now() - t0);
  return 0;
}
