/* Mutator threads and the stop-the-world handshake.
 *
 * Every mutator is RUNNING, BLOCKING (inside hk_gc_blocking_begin/end: it promises not to touch
 * the heap) or STOPPED (parked at a safepoint). heap->nrunning counts the RUNNING ones. A thread
 * that wants to collect sets heap->stop and waits, under the heap lock, until it is the only
 * RUNNING mutator; the others notice heap->stop at their next safepoint (an allocation slow path
 * or hk_gc_safepoint), park on heap->cond and are woken when the collection ends. The lock also
 * orders every collector write before the mutators' next reads, so the fast paths need no atomics
 * besides the stop poll.
 *
 * A parked mutator does not just wait: when the collector opens a parallel phase (heap->par), the
 * parked threads take part in it (gc_par in gc_internal.h), so with two threads a collection
 * takes about half the time instead of the same time with one thread idle. */
#include "gc/gc_internal.h"

#include <sched.h>

/* Condition waits spin a little before sleeping. The waits of a collection (the world stopping,
 * helpers joining, work being shared) are usually over in microseconds, while a sleeping thread
 * can take a scheduler tick to come back when the machine is busy; collections are frequent, so
 * that latency would add up to more than the work shared. Every broadcast is made with the lock
 * held and bumps wake_gen, so a wake-up cannot fall between the spin and the sleep. */
#define GC_SPIN 2000
/* The collector's first wait for the others to park, before their CPU clocks are read: about
 * 10-20 us, longer than the typical distance to a mutator's next safepoint. */
#define GC_STOP_SPIN 400

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* The heap lock changes hands all through a parallel collection (a busy thread shares work with
 * an idle one, which takes it at once; a phase opens and the parked thread joins; the world
 * resumes), usually while the holder has a microsecond or so to go. A plain mutex put the late
 * thread to sleep in the kernel at once, and the holder paid a wake-up system call: 10 000-12 000
 * futex calls in a 2-thread mtbintrees run, the kernel's wake-up paths 3-4% of its CPU. Spinning
 * first, as the condition waits do, leaves about one in a hundred (docs/gc.md). 2000 rounds of a
 * pause and a trylock are about 35 us on this machine; 200 still slept at most hand-overs of the
 * work sharing, whose holds are longer. */
#define GC_LOCK_SPIN 2000

/* A thread that waits for a stopped world says so to the concurrent arenas (hk__arena_parked): one
 * inside an arena's budget callback holds that arena's lock, and while a fork keeps the world
 * stopped it cannot let it go; the arenas' fork handler, run after ours, waited for it for ever.
 * Said from the wait's start (in hk_gc_blocking_end before the heap lock, which a fork holds while
 * the world is stopped) until, under the heap lock, the thread runs again: the fork's prepare
 * handler, which takes every heap's lock, then reads it up to date. */

void hk__gc_lock_slow(hk_gc_heap *h) {
  if (gc_fork_owns(h)) return; /* (held since the fork's prepare handler) */
  for (int i = 0; i < GC_LOCK_SPIN; i++) {
    cpu_relax();
    if (pthread_mutex_trylock(&h->lock) == 0) return;
  }
  pthread_mutex_lock(&h->lock);
}

void hk__gc_unlock_slow(hk_gc_heap *h) {
  if (!gc_fork_owns(h)) pthread_mutex_unlock(&h->lock);
}

/* Heap lock held; returns with it held; the caller re-checks its condition. */
void hk__gc_wait(hk_gc_heap *h, pthread_cond_t *cv) {
  unsigned gen = h->wake_gen;
  gc_unlock(h);
  for (int i = 0; i < GC_SPIN && __atomic_load_n(&h->wake_gen, __ATOMIC_RELAXED) == gen; i++) cpu_relax();
  gc_lock(h);
  if (h->wake_gen == gen) {
    /* Not a cancellation point: a thread cancelled here (pthread_cancel while it was parked at a
     * safepoint, say) unwound with the heap lock held and its mutator parked, and its exit's
     * unregistration, like every other thread, waited for that lock for ever. The cancellation
     * takes effect at the thread's next cancellation point outside the collector. */
    int cancel;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
    pthread_cond_wait(cv, &h->lock);
    pthread_setcancelstate(cancel, NULL);
  }
}

static void gc_wake(hk_gc_heap *h, pthread_cond_t *cv) {
  __atomic_store_n(&h->wake_gen, h->wake_gen + 1, __ATOMIC_RELAXED);
  pthread_cond_broadcast(cv);
}

/* Time to safepoint, measured in the waited thread's own CPU time: on a machine shared with other
 * work a wall-clock wait mostly measures the scheduler, not how long a mutator runs without a
 * safepoint. A clock read is a system call, so only waits are measured: the collector reads each
 * running mutator's clock when it starts waiting, the mutator its own when it stops running. */
static double cpu_ms(const hk_gc_mutator *m) {
  struct timespec ts;
  if (!m->cpu_clock_ok || clock_gettime(m->cpu_clock, &ts) != 0) return 0; /* (a thread gone) */
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Heap lock held: m stops running (parks, or leaves for a blocking region or for good). */
static void stop_cpu_note(hk_gc_heap *h, hk_gc_mutator *m) {
  if (m->stop_cpu_ms <= 0) return;
  double now = cpu_ms(m);
  if (now > m->stop_cpu_ms) h->stw_run_cpu_ms += now - m->stop_cpu_ms;
  m->stop_cpu_ms = 0;
}

__thread hk_gc_heap *hk__gc_t_busy;

void hk__gc_reentry_warn(const char *fn, const char *result) {
  hk__warning("gc: %s called from a trace function, size function or root callback during a collection of heap %p; %s",
              fn, (void *)hk__gc_t_busy, result);
}

/* Heap lock held; returns with it held. */
static void par_help(hk_gc_heap *h, gc_par *job, hk_gc_mutator *self) {
  job->active++;
  if (!job->helped) h->par_phases++;
  job->helped = true;
  h->par_helpers++;
  gc_unlock(h);
  hk_gc_heap *busy = hk__gc_t_busy;
  hk__gc_t_busy = h; /* (a helper runs trace functions too) */
  job->help(job, self);
  hk__gc_t_busy = busy;
  gc_lock(h);
  job->active--;
  gc_wake(h, &job->cond);
}

void hk__gc_park(hk_gc_mutator *m) {
  hk_gc_heap *h = m->heap;
  hk_assert(m->state == MUT_RUNNING);
  stop_cpu_note(h, m);
  m->state = MUT_STOPPED;
  h->nrunning--;
  gc_wake(h, &h->cond);
  hk__arena_parked(true);
  while (gc_stopped(h)) {
    gc_par *job = h->par;
    /* A helper leaves a phase only once it is over, so it joins each phase once. */
    if (job && !job->done) {
      par_help(h, job, m);
      continue;
    }
    hk__gc_wait(h, &h->cond);
  }
  hk__arena_parked(false);
  m->state = MUT_RUNNING;
  h->nrunning++;
}

/* ---- parallel phases ------------------------------------------------------------------------- */

bool hk__gc_par_open(hk_gc_heap *h, gc_par *job, void (*help)(gc_par *, hk_gc_mutator *)) {
  memset(job, 0, sizeof *job);
  if (!h->parallel) return false; /* HEAPKIT_GC_PARALLEL=0: every phase runs on the collector */
  bool helpers = false;
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) helpers = helpers || m->state == MUT_STOPPED;
  if (!helpers) return false;
  job->heap = h;
  job->help = help;
  job->active = 1;
  pthread_cond_init(&job->cond, NULL);
  h->par = job;
  h->par_opened++;
  gc_wake(h, &h->cond);
  return true;
}

void hk__gc_par_close(gc_par *job) {
  hk_gc_heap *h = job->heap;
  hk_assert(job->done);
  while (job->active > 1) hk__gc_wait(h, &job->cond);
  h->par = NULL;
  hk__gc_stack_clear(h, &job->pool);
  pthread_cond_destroy(&job->cond);
}

void hk__gc_par_join(gc_par *job) {
  __atomic_store_n(&job->join_req, 1, __ATOMIC_RELAXED);
  /* The collector answers at its next work item, or when it runs out of work: microseconds,
   * unless it lost its core. */
  for (unsigned i = 1; !__atomic_load_n(&job->granted, __ATOMIC_ACQUIRE); i++) {
    cpu_relax();
    if (i % GC_SPIN == 0) sched_yield();
  }
}

/* The oldest items of the local stack go: in a depth-first traversal they lead to the biggest
 * parts of the graph still unexplored. */
void hk__gc_par_share(gc_par *job, gc_stack *local) {
  hk_gc_heap *h = job->heap;
  gc_chunk *c = local->top;
  gc_lock(h);
  if (job->pooled == 0 && job->idle > 0 && c && c->n > 1) {
    size_t give = c->n / 2;
    if (give > 1024) give = 1024;
    for (size_t i = 0; i < give; i++)
      if (!hk__gc_stack_push(h, &job->pool, c->items[i])) hk__fatal("gc: out of memory for the collector's work list");
    memmove(c->items, c->items + give, (c->n - give) * sizeof(void *));
    c->n -= give;
    local->count -= give;
    __atomic_store_n(&job->pooled, job->pool.count, __ATOMIC_RELAXED);
    gc_wake(h, &job->cond);
  }
  gc_unlock(h);
}

bool hk__gc_par_take(gc_par *job, gc_stack *local) {
  hk_gc_heap *h = job->heap;
  bool got = false;
  gc_lock(h);
  for (;;) {
    if (job->pool.count) {
      size_t n = (job->pool.count + 1) / 2;
      if (n > 256) n = 256;
      for (size_t i = 0; i < n; i++) {
        void *p = hk__gc_stack_pop(h, &job->pool);
        if (!hk__gc_stack_push(h, local, p)) hk__fatal("gc: out of memory for the collector's work list");
      }
      __atomic_store_n(&job->pooled, job->pool.count, __ATOMIC_RELAXED);
      got = true;
      break;
    }
    if (job->done) break;
    __atomic_store_n(&job->idle, job->idle + 1, __ATOMIC_RELAXED);
    if (job->idle == job->active) {
      /* Everybody is out of work and nobody holds any: the phase is over. */
      job->done = true;
      __atomic_store_n(&job->idle, job->idle - 1, __ATOMIC_RELAXED);
      gc_wake(h, &job->cond);
      break;
    }
    hk__gc_wait(h, &job->cond);
    __atomic_store_n(&job->idle, job->idle - 1, __ATOMIC_RELAXED);
  }
  gc_unlock(h);
  return got;
}

bool hk__gc_stop_world(hk_gc_mutator *m) {
  hk_gc_heap *h = m->heap;
  if (h->collecting && gc_fork_owns(h)) {
    /* A fork handler's collection on the forking thread: the fork stopped the world already. */
    h->collector = m;
    hk__gc_t_busy = h;
    return true;
  }
  if (h->collecting) {
    /* Someone else is collecting (it is waiting for us): let it, and report that we did not. */
    hk__gc_park(m);
    return false;
  }
  h->collecting = 1;
  h->collector = m;
  hk__gc_t_busy = h; /* until hk__gc_resume_world, which this thread calls */
  __atomic_store_n(&h->stop, 1, __ATOMIC_RELAXED);
  if (h->nrunning > 1) {
    /* Measured (it is not in the pause): a mutator busy without safepoints holds everyone up. */
    double t0 = hk__gc_now_ms();
    /* Most waits last until the others' next allocation slow path or poll, a few microseconds.
     * Reading a thread's CPU clock is a system call, two per wait (here and when it parks), which
     * doubled the time a 2-thread run waited: the clocks are read only for a wait that outlasts a
     * short spin, so safepoint_run_cpu_ms leaves out the first microseconds of each wait. */
    for (int spins = 0; h->nrunning > 1 && spins < GC_STOP_SPIN;) {
      unsigned gen = h->wake_gen; /* (every park bumps it) */
      gc_unlock(h);
      while (spins < GC_STOP_SPIN && __atomic_load_n(&h->wake_gen, __ATOMIC_RELAXED) == gen) {
        cpu_relax();
        spins++;
      }
      gc_lock(h);
    }
    if (h->nrunning > 1)
      for (hk_gc_mutator *o = h->mutators; o; o = o->next)
        if (o != m && o->state == MUT_RUNNING) o->stop_cpu_ms = cpu_ms(o);
    while (h->nrunning > 1) hk__gc_wait(h, &h->cond);
    double waited = hk__gc_now_ms() - t0;
    h->stw_wait_ms += waited;
    if (waited > h->stw_wait_max_ms) h->stw_wait_max_ms = waited;
  }
  return true;
}

void hk__gc_resume_world(hk_gc_heap *h) {
  if (gc_fork_owns(h)) { /* (the world stays stopped for the fork) */
    h->collector = NULL;
    hk__gc_t_busy = NULL;
    return;
  }
  h->collecting = 0;
  h->collector = NULL;
  hk__gc_t_busy = NULL;
  __atomic_store_n(&h->stop, 0, __ATOMIC_RELAXED);
  gc_wake(h, &h->cond);
}

void hk__gc_dead_mutator_warn(const hk_gc_mutator *m, const char *fn, const char *result) {
  if (!m) hk__warning("gc: %s: NULL mutator; %s", fn, result);
  else hk__warning("gc: %s: mutator %p is not registered (unregistered already, or its heap destroyed?); %s", fn,
                   (const void *)m, result);
}

void hk__gc_blocking_warn(const hk_gc_mutator *m, const char *fn, const char *result) {
  hk__warning("gc: %s: mutator %p is in a blocking region (hk_gc_blocking_begin without hk_gc_blocking_end); %s", fn,
              (const void *)m, result);
}

void hk__gc_mutator_disarm(hk_gc_mutator *m) {
  static const int never_stop = 0;
  /* (word 0, the cursor, may hold the record's free-list link: hk__gc_meta_free. A limit equal to
   * it leaves no room, where a NULL limit left 2^64 - link bytes: an allocation through a stale
   * handle wrote a header into the next free record and returned a pointer into it) */
  m->fast.limit = m->fast.cursor;
  m->fast.data_cursor = m->fast.data_limit = NULL;
  m->fast.stop = &never_stop;
  m->heap = NULL;
}

void hk_gc_safepoint_slow(hk_gc_mutator *m) {
  if (gc_reentered("hk_gc_safepoint", "ignored")) return;
  if (gc_mutator_dead(m, "hk_gc_safepoint", "ignored")) return;
  /* (counted as stopped already: parking it counted it as running, for ever) */
  if (m->state == MUT_BLOCKING) return;
  hk_gc_heap *h = m->heap;
  gc_lock(h);
  if (gc_stopped(h)) hk__gc_park(m);
  gc_unlock(h);
}

hk_gc_mutator *hk__gc_mutator_of_self(hk_gc_heap *h) {
  pthread_t self = pthread_self();
  for (hk_gc_mutator *m = h->mutators; m; m = m->next)
    if (pthread_equal(m->thread, self)) return m;
  return NULL;
}

/* A thread that exits while registered: its mutator counted as a running thread that no safepoint
 * would stop again, so the next collection waited for it for ever, the heap could not be destroyed
 * (HK_EBUSY) and a new thread that got the dead one's pthread_t could not register. Its mutators
 * are unregistered at its exit instead (with a warning). They are found through the thread's own
 * list, not the list of heaps: the exit must take no lock a fork holds while it waits for this
 * thread to park (walking the heaps under fork's lock hung such a fork: gc.fork_exiting). The
 * heaps are alive: a heap with another thread's mutator is not destroyed.
 *
 * Another thread may unregister a thread's mutator too, so the lists are changed under self_lock,
 * and whoever takes a mutator off its owner's list (self_claim) is the one that unregisters it:
 * the owner's exit then never sees it. (The record used to stay on the owner's list after such an
 * unregister, and the owner's exit unregistered the freed record again: SIGSEGV on its NULL heap,
 * or, once another registration had reused it, that thread's live mutator;
 * gc.review_unregister_other.) self_lock is a leaf: nothing else is taken while it is held, so it
 * may be taken under a heap's lock (registration) and by fork's prepare handler. */
static __thread hk_gc_mutator *t_mutators;
static pthread_mutex_t self_lock = PTHREAD_MUTEX_INITIALIZER;
static hk__tkey exit_key; /* unloaded with a plugin that links this copy (gc_key_unload) */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

/* self_lock held: take m off its owner's list; false if it is not on it (claimed already). */
static bool self_unlink_locked(hk_gc_mutator *m) {
  if (!m->self_head) return false;
  for (hk_gc_mutator **p = m->self_head; *p; p = &(*p)->self_next)
    if (*p == m) {
      *p = m->self_next;
      break;
    }
  m->self_head = NULL;
  m->self_next = NULL;
  return true;
}

static bool self_claim(hk_gc_mutator *m) {
  hk__hlock(&hk__gc_holder, &self_lock);
  bool ok = self_unlink_locked(m);
  hk__hunlock(&hk__gc_holder, &self_lock);
  return ok;
}

/* A lock a heap-level call waits for (the heap's, for hk_gc_thread_register, the statistics, roots,
 * types, limit and handlers; fork's list of heaps, for hk_gc_heap_create and _destroy). A fork
 * holds each heap's lock from when it has stopped that heap until its parent handler, and the
 * list's throughout, while it waits for the other heaps' running mutators: a caller running a
 * mutator of another heap (the main thread creating a heap, reading another heap's statistics or
 * unregistering its idle mutator of another heap, while a library thread calls popen) waited for
 * the lock without ever parking, and the fork for it, for ever (gc.hunt5_fork_heaps). So after a
 * short spin such a caller waits with its running mutators of heaps other than keep in blocking
 * regions, which forks and collections do not wait for (the call is then a safepoint of theirs),
 * and ends them with the lock released (an end takes their heaps' locks, which a fork may hold by
 * then), then tries again. A caller without such mutators, the usual case, just waits. */
#define GC_ASIDE_MAX 64 /* running mutators of other heaps set aside (docs/gc.md: more are not) */
void hk__gc_mutex_aside(pthread_mutex_t *lk, const hk_gc_heap *keep) {
  for (;;) {
    for (int i = 0; i < GC_LOCK_SPIN; i++) {
      if (pthread_mutex_trylock(lk) == 0) return;
      cpu_relax();
    }
    hk_gc_mutator *mine[GC_ASIDE_MAX];
    size_t n = 0;
    hk__hlock(&hk__gc_holder, &self_lock);
    for (hk_gc_mutator *m = t_mutators; m && n < GC_ASIDE_MAX; m = m->self_next)
      if (m->heap != keep && m->state == MUT_RUNNING) mine[n++] = m; /* (only this thread changes that) */
    hk__hunlock(&hk__gc_holder, &self_lock);
    for (size_t i = 0; i < n; i++) hk_gc_blocking_begin(mine[i]);
    pthread_mutex_lock(lk);
    if (!n) return;
    pthread_mutex_unlock(lk);
    for (size_t i = 0; i < n; i++) hk_gc_blocking_end(mine[i]);
  }
}

void hk__gc_lock_aside(hk_gc_heap *h) {
  if (!gc_fork_owns(h)) hk__gc_mutex_aside(&h->lock, h); /* (its spin tries the lock first) */
}

/* fork: the lists must not be in the middle of a change in the child (fork.c). */
void hk__gc_self_fork_prepare(void) { pthread_mutex_lock(&self_lock); }
void hk__gc_self_fork_parent(void) { pthread_mutex_unlock(&self_lock); }
void hk__gc_self_fork_child(void) { pthread_mutex_init(&self_lock, NULL); }

/* The pops still pending in this thread's open HK_GC_ROOTS blocks of a mutator that goes away
 * (hk_gc_heap_destroy or hk_gc_thread_unregister inside them: 13 of the collector's own tests did)
 * store into their frame's mutator. The record is freed, or reused by the next registration, so
 * those frames are pointed at this thread's sink instead, where the stores do no harm; the
 * inline push and pop stay a single store each. Only the owner thread pops them, so the sink is
 * per thread (no data race between two threads doing this). */
static __thread hk_gc_mutator_fast t_frames_sink;

static void frames_orphan(hk_gc_frame *fr, const hk_gc_mutator *m) {
  for (; fr && fr->mutator == m; fr = fr->prev) fr->mutator = (hk_gc_mutator *)&t_frames_sink;
}

void hk__gc_self_forget(hk_gc_heap *h) {
  hk__hlock(&hk__gc_holder, &self_lock);
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) (void)self_unlink_locked(m);
  hk__hunlock(&hk__gc_holder, &self_lock);
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) frames_orphan(m->fast.frames, m);
}

static void thread_exit(void *arg) {
  (void)arg;
  for (;;) {
    hk__hlock(&hk__gc_holder, &self_lock);
    hk_gc_mutator *m = t_mutators;
    if (m) (void)self_unlink_locked(m);
    hk__hunlock(&hk__gc_holder, &self_lock);
    if (!m) break;
    hk_gc_heap *h = m->heap; /* (registered, so its heap cannot be destroyed meanwhile) */
    gc_lock(h);
    hk__warning("gc: a thread exits while registered with heap %p; its mutator %p is unregistered", (void *)h,
                (void *)m);
    m->fast.frames = NULL; /* (on the stack that is going away) */
    hk__gc_unregister_locked(m);
    gc_unlock(h);
  }
}

static void make_exit_key(void) {
  if (hk__tkey_create(&exit_key, thread_exit) != 0) hk__fatal("gc: cannot create the thread-exit key");
}

#if HK_UNLOADABLE
/* A plugin that links libheapkit.a being unloaded: the key goes with the code, or a thread still
 * registered with one of its heaps and exiting afterwards called thread_exit in the unmapped code
 * (malloc.key_dlclose). Such a mutator stays registered and its heap stays as it is (only the
 * unloaded code could collect or destroy it; src/malloc/heap.c, plugin_unload). */
__attribute__((destructor)) static void gc_key_unload(void) {
  hk__tkey_unload(&exit_key);
}
#endif

static void exit_watch(void) {
  pthread_once(&exit_once, make_exit_key);
  /* (never set again once deleted: its number may be another library's key by then) */
  if (!hk__tkey_get(&exit_key)) (void)hk__tkey_set(&exit_key, (void *)1);
}

hk_gc_mutator *hk_gc_thread_register(hk_gc_heap *h) {
  if (!h || h->h.magic != GC_MAGIC || h->h.role != ROLE_HEAP) {
    hk__warning("gc: hk_gc_thread_register: not a heap");
    return NULL;
  }
  if (gc_reentered("hk_gc_thread_register", "returns NULL")) return NULL;
  hk__gc_lock_aside(h);
  /* Once per heap: a second mutator of this thread would count as another running thread that no
   * safepoint of this one stops, and the next collection would wait for it for ever. Checked
   * before the wait for the world: the thread's running mutator never parked there, so another
   * thread's collection waited for it for ever (gc.hunt5_register_twice). */
  if (hk__gc_mutator_of_self(h)) {
    gc_unlock(h);
    hk__warning("gc: hk_gc_thread_register: this thread is registered with heap %p already", (void *)h);
    return NULL;
  }
  while (gc_stopped(h)) hk__gc_wait(h, &h->cond);
  hk_gc_mutator *m = hk__gc_meta_alloc(h, sizeof *m);
  if (m) {
    m->heap = h;
    m->fast.stop = &h->stop;
    m->thread = pthread_self();
    m->cpu_clock_ok = pthread_getcpuclockid(m->thread, &m->cpu_clock) == 0;
    m->state = MUT_RUNNING;
    m->frames_gen = h->frames_gen; /* unclaimed at the next collection */
    m->next = h->mutators;
    if (h->mutators) h->mutators->prev = m;
    h->mutators = m;
    h->nmutators++;
    h->nrunning++;
    hk__hlock(&hk__gc_holder, &self_lock);
    m->self_head = &t_mutators;
    m->self_next = t_mutators;
    t_mutators = m;
    hk__hunlock(&hk__gc_holder, &self_lock);
  }
  gc_unlock(h);
  if (m) exit_watch();
  return m;
}

void hk_gc_thread_unregister(hk_gc_mutator *m) {
  if (!m) return;
  if (gc_reentered("hk_gc_thread_unregister", "ignored")) return;
  hk_gc_heap *h = m->heap;
  /* (an unregistered record has no heap until it is reused: a second unregister unlinked it
   * again, counted the mutators down twice and freed the record twice) */
  if (!h) {
    hk__warning("gc: hk_gc_thread_unregister: %p was unregistered already; ignored", (void *)m);
    return;
  }
  /* (the finalizer loop goes on with the mutator: it went on with a freed one, then crashed) */
  if (m->in_finalizers) {
    hk__warning("gc: hk_gc_thread_unregister: %p is running finalizers (called from a finalizer?); ignored", (void *)m);
    return;
  }
  /* (the same for the allocation that called the OOM callback: it went on with the freed record) */
  if (m->in_oom) {
    hk__warning("gc: hk_gc_thread_unregister: %p is running the OOM callback (called from it?); ignored", (void *)m);
    return;
  }
  /* (taken off its owner's list first: whoever does is the one that unregisters it, so a second
   * unregister racing with this one, or the owner's exit, leaves it alone) */
  if (!self_claim(m)) {
    hk__warning("gc: hk_gc_thread_unregister: %p was unregistered already; ignored", (void *)m);
    return;
  }
  hk_gc_frame *open = m->fast.frames;
  if (open) hk__warning("gc: a mutator unregisters with root frames still pushed");
  /* (another thread's frames are on a stack that thread may be changing) */
  bool own = pthread_equal(m->thread, pthread_self());
  hk__gc_lock_aside(h); /* (a mutator idle in a blocking region, its thread running in another heap) */
  hk__gc_unregister_locked(m);
  gc_unlock(h);
  /* (after: a collection the unregistration parks for still scans these frames) */
  if (own) frames_orphan(open, m);
}

void hk__gc_unregister_locked(hk_gc_mutator *m) {
  hk_gc_heap *h = m->heap;
  if (m->state == MUT_BLOCKING) {
    /* Another thread's mutator (an idle worker's) may be unregistered by a thread that runs a
     * mutator of this heap itself: that one parks, as fork's stop_others does. Waiting as a
     * running thread, it held up the collection it waited for, for ever (gc.hunt5_unregister_other). */
    hk_gc_mutator *self = hk__gc_mutator_of_self(h);
    /* A fork's stop in progress (collecting, no collector) is no collection: nothing reads the
     * records the drop changes, and a caller running a mutator of a heap the fork stops next held
     * it up while it waited (gc.hunt5_fork_heaps). */
    while (gc_stopped(h) && !(h->collecting && !h->collector)) {
      if (self && self != m && self->state == MUT_RUNNING) hk__gc_park(self);
      else hk__gc_wait(h, &h->cond);
    }
    /* (dropped as it is, counted out of the blocking ones: made running, it parked for the fork's
     * stop until the fork's end) */
  } else if (gc_stopped(h)) {
    hk__gc_park(m);
  }
  stop_cpu_note(h, m);
  hk__gc_mutator_drop(m);
  gc_wake(h, &h->cond);
}

void hk__gc_mutator_drop(hk_gc_mutator *m) {
  hk_gc_heap *h = m->heap;
  /* (off its owner's list already: self_claim; in a forked child the dropped mutators are the
   * other threads', on lists of threads that do not exist there) */
  hk__gc_buffers_close(m);
  /* Its remembered objects stay remembered: the heap's own set takes them. */
  void *o;
  while ((o = hk__gc_stack_pop(h, &m->remset)))
    if (!hk__gc_stack_push(h, &h->remset, o)) hk__fatal("gc: out of memory for the remembered set");
  hk__gc_stack_clear(h, &m->remset);
  hk__gc_mutator_finalizers_flush(m);
  if (m->prev) m->prev->next = m->next;
  else h->mutators = m->next;
  if (m->next) m->next->prev = m->prev;
  h->nmutators--;
  if (m->state == MUT_BLOCKING) h->nblocking--;
  else if (m->state == MUT_RUNNING) h->nrunning--;
  m->heap = NULL;
  hk__gc_meta_free(h, m, sizeof *m);
  hk__gc_mutator_disarm(m);
}

/* Unpaired calls are refused: a second begin counted the thread out of the running ones twice
 * (a collection would then not wait for a thread that runs), an end without a begin counted in a
 * running thread that does not exist (the next collection waited for it for ever). */
void hk_gc_blocking_begin(hk_gc_mutator *m) {
  if (gc_reentered("hk_gc_blocking_begin", "ignored")) return;
  if (gc_mutator_dead(m, "hk_gc_blocking_begin", "ignored")) return;
  hk_gc_heap *h = m->heap;
  gc_lock(h);
  if (m->state != MUT_RUNNING) {
    gc_unlock(h);
    hk__warning("gc: hk_gc_blocking_begin: mutator %p is in a blocking region already; ignored", (void *)m);
    return;
  }
  stop_cpu_note(h, m);
  m->state = MUT_BLOCKING;
  h->nrunning--;
  h->nblocking++;
  /* Hidden, as hk_gc_verify hides them: an allocation in the region takes the slow path, which
   * refuses it (a collection of another thread may close them meanwhile: all NULL then). */
  m->fast.limit = m->fast.cursor;
  m->fast.data_limit = m->fast.data_cursor;
  gc_wake(h, &h->cond);
  gc_unlock(h);
}

void hk_gc_blocking_end(hk_gc_mutator *m) {
  if (gc_reentered("hk_gc_blocking_end", "ignored")) return;
  if (gc_mutator_dead(m, "hk_gc_blocking_end", "ignored")) return;
  hk_gc_heap *h = m->heap;
  hk__arena_parked(true); /* (from before the lock: a fork holds it while the world is stopped) */
  gc_lock(h);
  if (m->state != MUT_BLOCKING) {
    hk__arena_parked(false);
    gc_unlock(h);
    hk__warning("gc: hk_gc_blocking_end: mutator %p is not in a blocking region; ignored", (void *)m);
    return;
  }
  while (gc_stopped(h)) hk__gc_wait(h, &h->cond);
  hk__arena_parked(false);
  m->state = MUT_RUNNING;
  h->nblocking--;
  h->nrunning++;
  /* (a buffer a collection closed meanwhile kept its pair: alloc.c, buffer_close) */
  if (!m->tlab_start) m->fast.cursor = NULL;
  if (!m->data_start) m->fast.data_cursor = NULL;
  /* (what the allocation paths leave as the fast limits: the end of the zeroed part, the cursor
   * in stress mode) */
  m->fast.limit = h->stress > 0 ? m->fast.cursor : m->zero_limit;
  m->fast.data_limit = h->stress > 0 ? m->fast.data_cursor : m->zero_data_limit;
  gc_unlock(h);
}

hk_gc_heap *hk_gc_mutator_heap(const hk_gc_mutator *m) { return m ? m->heap : NULL; }

/* The barrier's slow path: obj is old and not yet remembered. Clearing the bit atomically makes
 * sure exactly one thread records it. */
void hk_gc_write_barrier_slow(hk_gc_mutator *m, void *obj) {
  /* (the object keeps its barrier bit, so the heap's invariant holds; the store itself is the
   * embedder's: a young pointer stored now is not remembered, which hk_gc_verify reports) */
  if (gc_reentered("hk_gc_write_barrier", "nothing remembered")) return;
  if (gc_mutator_dead(m, "hk_gc_write_barrier", "nothing remembered")) return;
  uintptr_t old = __atomic_fetch_and(hdr_of(obj), ~HK_GC_HDR_BARRIER, __ATOMIC_RELAXED);
  if (!(old & HK_GC_HDR_BARRIER)) return;
  gc_chunk *c = m->remset.top;
  if (c && c->n < GC_CHUNK_CAP) {
    c->items[c->n++] = obj;
    m->remset.count++;
    return;
  }
  hk_gc_heap *h = m->heap;
  gc_lock(h);
  if (!hk__gc_stack_push(h, &m->remset, obj)) hk__fatal("gc: out of memory for the remembered set");
  gc_unlock(h);
}
