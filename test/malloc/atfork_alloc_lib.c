/* A library whose constructor registers fork handlers that allocate: linked into malloc_atfork_alloc,
 * it is initialised before a preloaded heapkit, so its handlers are registered first. glibc runs
 * prepare handlers last-registered first and the others first-registered first: this prepare
 * handler runs after heapkit's has taken the allocator's locks, its parent and child handlers before
 * heapkit's release them. glibc's own malloc allows allocating there (it locks after every handler);
 * under heapkit the fork hung (the forking thread waited for a lock it held). */
#define _GNU_SOURCE
#include <pthread.h>

#include "testutil.h"

static void *kept[3];
static int runs[3]; /* prepare, parent, child */

/* A new size class, a block bigger than any page (its own segment) and one of several segments,
 * freeing the block the previous fork left: the slow paths that take the allocator's locks. */
static void allocate(int which) {
  static const size_t sizes[] = {24, 3000, 40000, 300000, (size_t)5 << 20};
  void *p[5];
  for (int i = 0; i < 5; i++) {
    size_t n = sizes[i] + (size_t)runs[which] * 16;
    p[i] = (i % 2) ? calloc(1, n) : malloc(n);
    CHECK(p[i] != NULL);
    tu_fill(p[i], n);
  }
  for (int i = 0; i < 5; i++) {
    CHECK(tu_verify(p[i], sizes[i] + (size_t)runs[which] * 16) == (size_t)-1);
    if (i != 3) free(p[i]);
  }
  free(kept[which]);
  kept[which] = p[3];
  runs[which]++;
}
static void prepare(void) { allocate(0); }
static void parent(void) { allocate(1); }
static void child(void) { allocate(2); }

__attribute__((constructor)) static void register_handlers(void) { CHECK(pthread_atfork(prepare, parent, child) == 0); }

/* How often each handler ran in this process. */
void hk_test_atfork_runs(int out[3]);
void hk_test_atfork_runs(int out[3]) {
  for (int i = 0; i < 3; i++) out[i] = runs[i];
}
