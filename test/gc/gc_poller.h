/* A second mutator that does nothing but poll: it parks at every collection of its heap, so the
 * collector opens parallel phases (the parked thread may help them). Start it from the main
 * mutator inside a blocking region (its registration must not wait for a collection the main
 * thread would have to run), and stop it the same way. */
#ifndef GC_POLLER_H
#define GC_POLLER_H
#include <heapkit.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "../check.h"

typedef struct gc_poller {
  hk_gc_heap *heap;
  pthread_t thread;
  _Atomic int stop, ready, failed; /* failed: the thread could not register */
} gc_poller;

static void *gc_poller_main(void *arg) {
  gc_poller *p = arg;
  hk_gc_mutator *m = hk_gc_thread_register(p->heap);
  if (!m) {
    p->failed = 1;
    return NULL;
  }
  p->ready = 1;
  while (!p->stop) hk_gc_safepoint(m);
  hk_gc_thread_unregister(m);
  return NULL;
}

static inline void gc_poller_start(gc_poller *p, hk_gc_heap *heap, hk_gc_mutator *m) {
  p->heap = heap;
  p->stop = p->ready = p->failed = 0;
  hk_gc_blocking_begin(m);
  CHECK(pthread_create(&p->thread, NULL, gc_poller_main, p) == 0);
  while (!p->ready && !p->failed) sched_yield();
  hk_gc_blocking_end(m);
  CHECK(!p->failed);
}

static inline void gc_poller_stop(gc_poller *p, hk_gc_mutator *m) {
  p->stop = 1;
  hk_gc_blocking_begin(m);
  pthread_join(p->thread, NULL);
  hk_gc_blocking_end(m);
}
#endif
