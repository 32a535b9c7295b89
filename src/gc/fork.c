/* fork: a child process gets one thread, the one that forked. Without handlers, a heap's other
 * registered mutators would still count as running in the child, so its first collection waited
 * for them for ever; a fork during a collection would leave the heap half collected; and a thread
 * forked away in the middle of a write barrier (its bit cleared, the object not yet remembered)
 * would leave an old-to-young pointer that the child's first minor collection misses.
 *
 * So every live heap is on a list, and fork stops each heap's world as a collection does:
 *  - prepare: takes the list's lock; for each heap, lets a running collection end (a forking
 *    thread that is a running mutator of the heap parks and helps, as at any safepoint), then
 *    stops the other mutators at their safepoints and keeps the heap's lock;
 *  - parent: lets them run again and releases the locks;
 *  - child: drops the mutators of the threads that do not exist there (their frames are roots no
 *    more; their remembered objects and finalizers go to the heap, as when a thread unregisters),
 *    and re-initialises the locks.
 * So fork waits for the heap's other running mutators to reach a safepoint, as a collection does
 * (threads in a blocking region are not waited for: they promise not to touch the heap).
 * The allocator registers its handlers when the library loads and these at the first heap, so
 * these are prepared first and the page layer stays usable while a collection is waited for.
 * A fork from inside a collection or hk_gc_verify (a root callback, a trace or size function, on
 * the collecting thread or a helper) cannot stop the world: this thread holds the heap's lock or
 * is part of the phase a stop would wait for (it hung, waiting for itself). It is documented as
 * unsupported: the handlers warn and leave every heap alone for that fork, the parent's
 * collection goes on, and the child, whose heaps are halfway through the collection, may only
 * exec or _exit (as POSIX asks of the child of a multi-threaded process). */
#include "gc/gc_internal.h"

static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
_Atomic uintptr_t hk__gc_holder;
static hk_gc_heap *heaps;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

/* Returns with the heap lock held and, unless this thread is collecting it, the world stopped. */
static void stop_others(hk_gc_heap *h) {
  gc_lock(h);
  h->fork_locked = true;
  hk_gc_mutator *self = hk__gc_mutator_of_self(h);
  while (h->collecting) {
    if (self && h->collector == self) return;
    if (self && self->state == MUT_RUNNING) hk__gc_park(self);
    else hk__gc_wait(h, &h->cond); /* (a collection ends with a broadcast) */
  }
  h->collecting = 1;
  h->collector = NULL;
  __atomic_store_n(&h->stop, 1, __ATOMIC_RELAXED);
  h->fork_stopped = true;
  size_t me = self && self->state == MUT_RUNNING ? 1 : 0;
  while (h->nrunning > me) hk__gc_wait(h, &h->cond); /* (every park broadcasts) */
}

/* Heap lock held. */
static void resume_others(hk_gc_heap *h) {
  if (!h->fork_stopped) return;
  h->fork_stopped = false;
  hk__gc_resume_world(h);
}

/* (a caller running mutators of other heaps puts them aside while it waits: thread.c) */
static void heaps_lock_take(void) {
  if (!hk__holds(&hk__gc_holder)) hk__gc_mutex_aside(&heaps_lock, NULL);
}

static __thread bool fork_skipped; /* this thread's fork came from a collection's callback */

static void fork_prepare(void) {
  if (hk__gc_t_busy) {
    fork_skipped = true;
    hk__warning("gc: fork called from a trace function, size function or root callback during a collection of "
                "heap %p: unsupported; the collector's heaps are left as they are, and the child may only exec or _exit",
                (void *)hk__gc_t_busy);
    return;
  }
  hk__arena_parked(true); /* (another fork holds heaps_lock to its end: src/arena/arena.c) */
  heaps_lock_take(); /* (and waits for this thread's running mutators: two forks at once hung) */
  hk__arena_parked(false);
  for (hk_gc_heap *h = heaps; h; h = h->fork_next) stop_others(h);
  hk__gc_self_fork_prepare(); /* (a leaf lock: last) */
  hk__hold(&hk__gc_holder, true); /* (gc_internal.h, gc_fork_owns) */
}

static void fork_parent(void) {
  if (fork_skipped) {
    fork_skipped = false;
    return;
  }
  hk__hold(&hk__gc_holder, false);
  hk__gc_self_fork_parent();
  for (hk_gc_heap *h = heaps; h; h = h->fork_next) {
    if (!h->fork_locked) continue; /* (made by a fork handler) */
    h->fork_locked = false;
    resume_others(h);
    gc_unlock(h);
  }
  pthread_mutex_unlock(&heaps_lock);
}

static void fork_child(void) {
  if (fork_skipped) {
    fork_skipped = false;
    return;
  }
  hk__hold(&hk__gc_holder, false);
  hk__gc_self_fork_child();
  for (hk_gc_heap *h = heaps; h; h = h->fork_next) {
    h->fork_locked = false;
    hk_gc_mutator *self = hk__gc_mutator_of_self(h);
    for (hk_gc_mutator *m = h->mutators, *next; m; m = next) {
      next = m->next;
      if (m != self) hk__gc_mutator_drop(m);
    }
    if (self) { /* the same thread under another kernel thread id: its CPU clock is a new one */
      self->cpu_clock_ok = pthread_getcpuclockid(pthread_self(), &self->cpu_clock) == 0;
      self->stop_cpu_ms = 0;
    }
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    resume_others(h); /* (nobody waits: a fresh condition variable) */
  }
  pthread_mutex_init(&heaps_lock, NULL);
}


static void register_handlers(void) {
  /* The concurrent arenas' and shared pools' handlers first, so that ours are prepared before
   * theirs: theirs hold the arenas' and pools' locks, and a mutator blocked on one of them would
   * never reach its safepoint. */
  hk__arena_fork_register();
  hk__pool_fork_register();
  if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
    hk__fatal("gc: cannot register the collector's fork handlers");
}

void hk__gc_fork_track(hk_gc_heap *h) {
  pthread_once(&handlers_once, register_handlers);
  heaps_lock_take();
  h->fork_prev = NULL;
  h->fork_next = heaps;
  if (heaps) heaps->fork_prev = h;
  heaps = h;
  hk__hunlock(&hk__gc_holder, &heaps_lock);
}

void hk__gc_fork_untrack(hk_gc_heap *h) {
  heaps_lock_take();
  if (h->fork_prev) h->fork_prev->fork_next = h->fork_next;
  else heaps = h->fork_next;
  if (h->fork_next) h->fork_next->fork_prev = h->fork_prev;
  h->fork_next = h->fork_prev = NULL;
  hk__hunlock(&hk__gc_holder, &heaps_lock);
}
