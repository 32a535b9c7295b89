/* Arenas: creation, destruction, the allocation slow paths and statistics. */
#include "arena/arena_internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALL_FLAGS (HK_ARENA_CONCURRENT | HK_ARENA_TRACE | HK_ARENA_NO_POISON)


/* A concurrent arena is used by several threads at once, so a fork could copy its lock held (a
 * thread growing it, or in a budget callback, which runs under it) into the child, whose first
 * allocation that needed the lock then waited for ever. Like the shared pools, concurrent arenas
 * are on a list, and fork handlers hold every one's lock across the fork (registered at the first
 * one or the first collector heap: after the allocator's, so these are prepared first and the page
 * layer stays usable while a holder finishes). */
static pthread_mutex_t conc_lock = PTHREAD_MUTEX_INITIALIZER;
/* A program's or library's fork handlers registered before these (which are registered at the
 * first concurrent arena or collector heap) run their prepare handler after conc_prepare and their
 * parent and child ones before conc_parent and conc_child: one that used a concurrent arena waited
 * for a lock its own thread held (arena.concurrent_atfork hung). So, as the allocator's
 * (internal.h, hk__fork_holder), the arenas' locks are skipped on the forking thread while these
 * handlers hold them; a concurrent arena made in that window is linked locked, one destroyed in it
 * unlocked first, so that conc_parent's unlocks stay paired. */
_Atomic uintptr_t hk__arena_holder;
static hk_arena *conc_arenas;
static pthread_once_t conc_once = PTHREAD_ONCE_INIT;

/* A lock holder may be in a budget callback that destroys another concurrent arena (allowed), which
 * takes conc_lock (after the arena's lock), or that allocates from another concurrent arena (taking
 * its lock after the first): so the arenas' locks are only tried under conc_lock, and when one is
 * busy everything is let go and taken again. Tried again at once (a yield), that needed every
 * arena free at the same instant, and beside threads that hold them nearly all the time (a budget
 * callback that sleeps, a hot loop committing) the fork waited seconds or for ever
 * (arena.concurrent_fork_busy). So, while a fork is being prepared (hk__arena_forking), a thread that
 * lets go of a concurrent arena's lock says so (conc_released, which the forker sleeps on instead
 * of yielding) and, holding no other concurrent arena's lock, keeps out of the arenas for a moment
 * (at most HK__ARENA_FORK_PAUSE_MS, until the fork is prepared): the forker's wait is one critical
 * section per busy arena. The pause is bounded because the pausing thread may hold a lock of its
 * own that a holder's callback waits for; the forker never blocks on an arena's lock, so it needs
 * no hold on an arena that may be destroyed meanwhile. */
_Atomic unsigned hk__arena_forking;
static pthread_mutex_t conc_wlock = PTHREAD_MUTEX_INITIALIZER; /* a leaf: nothing is taken under it */
static pthread_cond_t conc_wcond;
static unsigned long conc_released; /* under conc_wlock */
_Thread_local hk__arena_thread hk__arena_self;
#define HK__ARENA_FORK_PAUSE_MS 10

void hk__arena_released(void) {
  pthread_mutex_lock(&conc_wlock);
  conc_released++;
  pthread_cond_broadcast(&conc_wcond);
  pthread_mutex_unlock(&conc_wlock);
  /* (nor on a thread whose fork holds the arenas: its own handlers, while another thread prepares) */
  if (hk__arena_self.held || hk__holds(&hk__arena_holder)) return;
  int64_t until = hk__clock_ms() + HK__ARENA_FORK_PAUSE_MS;
  while (atomic_load(&hk__arena_forking) && hk__clock_ms() < until) sched_yield();
}

static unsigned long conc_released_now(void) {
  pthread_mutex_lock(&conc_wlock);
  unsigned long n = conc_released;
  pthread_mutex_unlock(&conc_wlock);
  return n;
}

static void conc_wcond_init(void) {
  pthread_condattr_t at;
  pthread_condattr_init(&at);
  pthread_condattr_setclock(&at, CLOCK_MONOTONIC);
  pthread_cond_init(&conc_wcond, &at);
  pthread_condattr_destroy(&at);
}

/* Two kinds of lock are left to their holders by a fork (fork_skip), both held by a thread inside
 * a budget callback (the only code outside the arenas that runs under one), whose arena is as the
 * callback may see it: a commit or a chunk change waits for the callback, nothing is half done.
 *  - The forking thread's own (a fork from a budget callback, or from an oom handler called inside
 *    one): the prepare handler waited for it, and the fork hung. In the parent the callback goes on
 *    holding it; in the child its copy is held again by the child's one thread, the same one, which
 *    lets it go when the callback returns.
 *  - Another thread's that waits for a collector (the callback allocates from a GC heap): the
 *    collector's prepare handler, which runs before this one, stopped its heaps, so that thread is
 *    parked at a safepoint or on its way back from a blocking region, and cannot move before the
 *    collector's parent handler, which runs after this one's; this one waited for its lock for
 *    ever. The child, where that thread does not exist, gets the lock free (the claim it was
 *    committing for is left unused until a restore). holder_parked is set by the holder from the
 *    start of its wait and cleared under the lock of the heap it waits on when it runs again; the
 *    collector's prepare handler took every heap's lock after that, so read here it is up to date,
 *    and true only for a thread stuck until the fork is over. (A fork from inside a collection's callback does not stop the heaps;
 *    its child may only exec or _exit, src/gc/fork.c.) */
void hk__arena_parked(bool on) {
  for (hk_arena *a = hk__arena_self.top; a; a = a->held_next) atomic_store_explicit(&a->holder_parked, on, memory_order_relaxed);
}

/* A third kind of stuck holder, marked the same way: a thread that forks from a budget callback
 * itself, while its fork waits for a lock the other fork holds until it is over (conc_lock, or the
 * collector's or the pools' list lock, whose prepare handlers may run first). Two threads forking
 * at once from callbacks each left its own lock alone and waited for the other's, for ever. Its
 * locks are marked from before such a wait until it holds the lock: one fork that reads the mark
 * under conc_lock keeps conc_lock to its end, so the other cannot get through its own prepare
 * handler and back to its callback before; and a mark set after that handler (one run after it) is
 * cleared before it returns, while it holds conc_lock, so no prepare handler reads it. */

/* A lock left to a stuck holder (HK__SKIP_PARKED) guards an arena that holder is in the middle of
 * changing (a commit waiting for its budget callback): a program's fork handler that ran under the
 * fork's hold (prepare handlers registered before the arenas', parent handlers, in the parent)
 * committed into it unlocked beside the paused commit, whose later end moved commit_end back and
 * charged the memory twice. Refused with a message instead. In the child the holder does not
 * exist, and the arena is as its callback saw it: usable. */
static pid_t conc_fork_pid; /* under conc_lock */
void hk__arena_fork_skipped(const hk_arena *a) {
  if (getpid() == conc_fork_pid)
    hk__fatal("fork handler used concurrent arena %p, whose lock a thread stopped inside its budget callback holds "
              "until the fork is over; an arena cannot be used from a fork handler then",
              (const void *)a);
}

static void conc_prepare(void) {
  atomic_fetch_add(&hk__arena_forking, 1);
  hk__arena_parked(true); /* (until this thread holds conc_lock) */
  for (;;) {
    unsigned long seen = conc_released_now(); /* (before the try: a release during it is not missed) */
    pthread_mutex_lock(&conc_lock);
    hk__arena_parked(false);
    hk_arena *busy = NULL;
    for (hk_arena *a = conc_arenas; a; a = a->conc_next) a->fork_skip = HK__SKIP_NONE;
    for (hk_arena *a = hk__arena_self.top; a; a = a->held_next) a->fork_skip = HK__SKIP_OWN; /* (not tried) */
    for (hk_arena *a = conc_arenas; a; a = a->conc_next) {
      if (a->fork_skip || pthread_mutex_trylock(&a->lock) == 0) continue;
      if (atomic_load_explicit(&a->holder_parked, memory_order_relaxed)) {
        a->fork_skip = HK__SKIP_PARKED;
        continue;
      }
      busy = a;
      break;
    }
    if (!busy) {
      conc_fork_pid = getpid(); /* (under conc_lock, which the fork keeps) */
      hk__hold(&hk__arena_holder, true);
      atomic_fetch_sub(&hk__arena_forking, 1);
      return;
    }
    for (hk_arena *a = conc_arenas; a != busy; a = a->conc_next)
      if (!a->fork_skip) pthread_mutex_unlock(&a->lock);
    hk__arena_parked(true);
    pthread_mutex_unlock(&conc_lock);
    /* until a lock is let go (a timeout too, in case it went by a path that does not say so) */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += HK__ARENA_FORK_PAUSE_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&conc_wlock);
    while (conc_released == seen && pthread_cond_timedwait(&conc_wcond, &conc_wlock, &ts) == 0) {}
    pthread_mutex_unlock(&conc_wlock);
  }
}
static void conc_parent(void) {
  hk__hold(&hk__arena_holder, false);
  for (hk_arena *a = conc_arenas; a; a = a->conc_next) {
    if (!a->fork_skip) pthread_mutex_unlock(&a->lock);
    a->fork_skip = HK__SKIP_NONE;
  }
  pthread_mutex_unlock(&conc_lock);
}
static void conc_child(void) {
  hk__hold(&hk__arena_holder, false);
  for (hk_arena *a = conc_arenas; a; a = a->conc_next) {
    pthread_mutex_init(&a->lock, NULL);
    /* (this thread's: its callback lets it go; another's is free here, where its thread is not) */
    if (a->fork_skip == HK__SKIP_OWN) pthread_mutex_lock(&a->lock);
    else atomic_store_explicit(&a->holder_parked, false, memory_order_relaxed);
    a->fork_skip = HK__SKIP_NONE;
  }
  pthread_mutex_init(&conc_lock, NULL);
  /* (another thread of the parent may have been preparing a fork of its own) */
  atomic_store(&hk__arena_forking, 0);
  pthread_mutex_init(&conc_wlock, NULL);
  conc_wcond_init(); /* (not destroyed first: a destroy waits for the parent's waiters, gone here) */
}
static void conc_register(void) {
  conc_wcond_init();
  if (pthread_atfork(conc_prepare, conc_parent, conc_child) != 0) hk__fatal("cannot register the arenas' fork handlers");
}

/* The collector registers these before its own (src/gc/fork.c), so that its prepare handler runs
 * first: registered later, these ran first and held the arenas' locks while the collector waited
 * for a mutator blocked on one of them (a deadlock of the forking parent). */
void hk__arena_fork_register(void) { pthread_once(&conc_once, conc_register); }

static void conc_link(hk_arena *a) {
  hk__arena_fork_register();
  hk__hlock(&hk__arena_holder, &conc_lock);
  a->conc_prev = NULL;
  a->conc_next = conc_arenas;
  if (conc_arenas) conc_arenas->conc_prev = a;
  conc_arenas = a;
  a->fork_skip = HK__SKIP_NONE;
  if (hk__holds(&hk__arena_holder)) pthread_mutex_lock(&a->lock); /* (a fork handler's arena) */
  hk__hunlock(&hk__arena_holder, &conc_lock);
}
static void conc_unlink(hk_arena *a) {
  hk__hlock(&hk__arena_holder, &conc_lock);
  if (a->conc_prev) a->conc_prev->conc_next = a->conc_next;
  else conc_arenas = a->conc_next;
  if (a->conc_next) a->conc_next->conc_prev = a->conc_prev;
  if (hk__holds(&hk__arena_holder) && !a->fork_skip) pthread_mutex_unlock(&a->lock); /* (destroyed by a fork handler) */
  hk__hunlock(&hk__arena_holder, &conc_lock);
}

hk_arena *hk_arena_new(const hk_arena_options *opt) {
  hk_arena_options o = {0};
  if (opt) o = *opt;
  if ((o.flags & ~(unsigned)ALL_FLAGS) || ((o.flags & HK_ARENA_TRACE) && o.replay_path) ||
      o.reserve > ((size_t)1 << 40) || (o.parent && o.parent->magic != HK__ARENA_MAGIC)) {
    errno = EINVAL;
    return NULL;
  }
  hk__page_init();
  size_t reserve = hk__align_up(o.reserve ? o.reserve : HK_SEGMENT_SIZE, HK_SEGMENT_SIZE);
  size_t hdr = hk__arena_header_size(true);
  hk__segment *seg = hk__segment_alloc(reserve, HK_SEGMENT_SIZE, HK__SEG_ARENA, hdr);
  if (!seg) {
    errno = ENOMEM;
    return NULL;
  }
  char *s0 = (char *)seg;
  hk__arena_chunk *c = (hk__arena_chunk *)(s0 + hk__align_up(sizeof(hk__segment), 64));
  hk_arena *a = (hk_arena *)((char *)c + hk__align_up(sizeof(hk__arena_chunk), 64));
  memset(a, 0, sizeof *a);
  a->magic = HK__ARENA_MAGIC;
  a->flags = o.flags;
  a->track = !(o.flags & HK_ARENA_NO_POISON) && hk__track_per_alloc();
  /* at most the largest chunk (all a step can commit): rounding a step near SIZE_MAX up to the
   * commit unit wrapped to 0, and the first commit past the first unit looped for ever */
  size_t step_max = (size_t)1 << 46;
  a->commit_step = o.commit_step ? hk__align_up(o.commit_step < step_max ? o.commit_step : step_max, 4096) : HK__ARENA_DEFAULT_STEP;
  a->retain = o.retain ? o.retain : HK__ARENA_DEFAULT_RETAIN;
  a->budget = o.budget;
  a->next_reserve = reserve * 2 < HK__ARENA_MAX_RESERVE ? reserve * 2 : (reserve > HK__ARENA_MAX_RESERVE ? reserve : HK__ARENA_MAX_RESERVE);
  a->parent = o.parent;
  a->release = o.release;
  a->release_arg = o.release_arg;
  a->oom = o.oom ? o.oom : (o.parent ? o.parent->oom : NULL);
  a->oom_arg = o.oom ? o.oom_arg : (o.parent ? o.parent->oom_arg : NULL);
  pthread_mutex_init(&a->lock, NULL);
  if (o.flags & HK_ARENA_CONCURRENT) conc_link(a);
  hk__arena_chunk_init(a, c, seg, hdr);
  a->first = a->last = c;
  atomic_store_explicit(&a->cur, c, memory_order_release);
  size_t hdr_commit = (size_t)(hk__chunk_commit_end(c) - s0);
  /* The arena's own metadata counts against its budget and its ancestors'. */
  if (hk__arena_charge(a, hdr_commit) != HK_OK) {
    if (o.flags & HK_ARENA_CONCURRENT) conc_unlink(a);
    hk__track_forget(c->base, (size_t)(c->poisoned_end - c->base));
    hk__segment_free(seg);
    errno = ENOMEM;
    return NULL;
  }
  hk__arena_account_commit(a, (ptrdiff_t)hdr_commit);
  a->reserved = seg->size;
  a->nchunks = 1;
  atomic_fetch_add_explicit(&hk__arena_g.reserved, seg->size, memory_order_relaxed);
  atomic_fetch_add_explicit(&hk__arena_g.chunks, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&hk__arena_g.arenas, 1, memory_order_relaxed);

  a->slow_only = (o.flags & (HK_ARENA_CONCURRENT | HK_ARENA_TRACE)) || o.replay_path || hk__track_per_alloc();
  if (!a->slow_only) {
    a->head.cur = c->base;
    a->head.end = hk__chunk_commit_end(c);
  }
  if (o.parent) {
    hk_arena *p = o.parent;
    hk__arena_list_lock(p);
    a->next_sibling = p->first_child;
    if (p->first_child) p->first_child->prev_sibling = a;
    p->first_child = a;
    hk__arena_list_unlock(p);
  }
  int rc = HK_OK;
  if (o.flags & HK_ARENA_TRACE) rc = hk__arena_trace_init(a);
  else if (o.replay_path) rc = hk__arena_replay_init(a, o.replay_path);
  if (rc != HK_OK) {
    hk__arena_destroy_any(a);
    errno = rc == HK_ENOMEM ? ENOMEM : EINVAL;
    return NULL;
  }
  hk_assert_expensive(hk__arena_is_valid(a));
  return a;
}

void hk__arena_destroy_any(hk_arena *a) {
  /* A cleanup may make a child of a: repeated until none is left (children first and cleanups
   * once left such a child alive with a dangling parent, its cleanups never run). */
  do {
    while (a->first_child) hk__arena_destroy_any(a->first_child);
    hk__arena_run_cleanups(a, 0);
  } while (a->first_child);
  hk__arena_trace_free(a);
  hk__arena_replay_free(a);
  hk_arena *p = a->parent;
  if (p) {
    hk__arena_list_lock(p);
    if (a->prev_sibling) a->prev_sibling->next_sibling = a->next_sibling;
    else p->first_child = a->next_sibling;
    if (a->next_sibling) a->next_sibling->prev_sibling = a->prev_sibling;
    hk__arena_list_unlock(p);
  }
  atomic_fetch_sub_explicit(&hk__arena_g.allocated, a->synced_alloc, memory_order_relaxed);
  atomic_fetch_sub_explicit(&hk__arena_g.arenas, 1, memory_order_relaxed);
  a->magic = 0;
  /* (the inline path reads only these: left as they were, an allocation through the destroyed
   * handle bumped on in the freed chunk, which the page layer may hand to another client; now it
   * calls out, and the slow path refuses a dead arena while the memory is still mapped) */
  a->head.cur = a->head.end = NULL;
  if (a->flags & HK_ARENA_CONCURRENT) conc_unlink(a);
  pthread_mutex_destroy(&a->lock);
  while (a->last != a->first) hk__arena_chunk_free(a, a->last);
  hk__arena_chunk_free(a, a->first); /* frees a */
}

void hk_arena_destroy(hk_arena *a) {
  if (!a) return;
  if (a->magic != HK__ARENA_MAGIC) {
    hk__warning("hk_arena_destroy(%p): not a live arena (destroyed twice?); ignored", (void *)a);
    return;
  }
  if (a->role != HK__ROLE_PLAIN) {
    hk__warning("hk_arena_destroy(%p): this arena belongs to the %s of its thread; use %s", (void *)a,
                a->role == HK__ROLE_REGION ? "region stack" : "scratch set",
                a->role == HK__ROLE_REGION ? "hk_region_pop" : "hk_scratch_end");
    return;
  }
  hk_assert_expensive(hk__arena_is_valid(a));
  hk__arena_destroy_any(a);
}

/* An oom handler that allocates from its own arena (say, a message for the error it reports) and
 * fails again was called again, recursively, until the stack overflowed (SIGSEGV). The calls to
 * handlers running on this thread are counted, by their stack positions: a handler may leave by
 * longjmp (the documented way out), so a count kept by a flag or a counter would stay up for
 * ever, while a position at or below the current one belongs to a call that is over. A call is
 * refused when HK__ARENA_OOM_NEST calls are running above it: only a recursion gets there (or that
 * many handlers in a row left by longjmp, each from deeper down the stack than the one before,
 * with no failure in between from higher up). */
#define HK__ARENA_OOM_NEST 16
static __thread uintptr_t t_oom_at[HK__ARENA_OOM_NEST];
static __thread unsigned t_oom_n;

/* Keeps the handler calls above here (higher addresses: the stack grows down) and returns their
 * number. */
static unsigned oom_calls_above(uintptr_t here) {
  unsigned n = 0;
  for (unsigned i = 0; i < t_oom_n; i++)
    if (t_oom_at[i] > here) t_oom_at[n++] = t_oom_at[i];
  return t_oom_n = n;
}

hk_noinline void *hk__arena_fail(hk_arena *a, size_t size, int err) {
  if (a->oom) {
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    unsigned n = oom_calls_above(here);
    if (n < HK__ARENA_OOM_NEST) {
      t_oom_at[n] = here;
      t_oom_n = n + 1;
      void *p = a->oom(a, size, a->oom_arg);
      (void)oom_calls_above(here); /* (this call's entry, and any a nested handler left by longjmp) */
      return p;
    }
    hk__warning("arena %p: an allocation of %zu bytes failed inside %d nested calls of oom handlers (does the "
                "handler allocate from its own arena?); it returns NULL without calling the handler",
                (void *)a, size, HK__ARENA_OOM_NEST);
  }
  errno = err;
  return NULL;
}

/* The out-of-line path of hk_arena_alloc: refill from more committed memory or the next chunk. */
void *hk__arena_alloc_slow(hk_arena *a, size_t size, size_t align) {
  if (!a || a->magic != HK__ARENA_MAGIC || align == 0 || (align & (align - 1)) || align > HK_SEGMENT_SIZE) {
    errno = EINVAL;
    return NULL;
  }
  if (align < HK_ARENA_ALIGN) align = HK_ARENA_ALIGN;
  if (size > ((size_t)1 << 46)) return hk__arena_fail(a, size, ENOMEM);
  if (a->slow_only) return hk__arena_alloc_tracked(a, size, align);
  size_t n = hk__arena_round(size);
  for (;;) {
    hk__arena_chunk *c = atomic_load_explicit(&a->cur, memory_order_relaxed);
    uintptr_t p = hk__align_up((uintptr_t)a->head.cur, align);
    if (p + n <= (uintptr_t)a->head.end) {
      a->head.cur = (char *)(p + n);
      return (void *)p;
    }
    if (p + n <= (uintptr_t)c->limit) {
      if (hk__arena_commit_to(a, c, (char *)p, (char *)(p + n)) != HK_OK) return hk__arena_fail(a, size, ENOMEM);
      a->head.end = hk__chunk_commit_end(c);
      hk__arena_sync_stats(a);
      hk_assert_expensive(hk__arena_is_valid(a));
      continue;
    }
    if (hk__arena_next_chunk(a, n + align) != HK_OK) return hk__arena_fail(a, size, ENOMEM);
  }
}

/* Slow-only mode: a compare-and-swap bump on the current chunk's position, so threads can share
 * the arena. A claim past the commit end commits under the lock; a claim past the reservation
 * makes one thread chain the next chunk while the others wait on the lock and retry. */
void *hk__arena_bump_atomic(hk_arena *a, size_t size, size_t align, bool locked) {
  size_t n = hk__arena_round(size);
  for (;;) {
    hk__arena_chunk *c = hk__arena_cur(a);
    uintptr_t old = atomic_load_explicit(&c->pos, memory_order_relaxed), p, e;
    bool full = false;
    for (;;) {
      p = hk__align_up(old, align);
      e = p + n;
      if (e < p || e > (uintptr_t)c->limit) { full = true; break; }
      if (atomic_compare_exchange_weak_explicit(&c->pos, &old, e, memory_order_relaxed, memory_order_relaxed)) break;
    }
    if (!full) {
      if (e > (uintptr_t)hk__chunk_commit_end(c)) {
        if (!locked) hk__arena_lock(a);
        int rc = hk__arena_commit_to(a, c, (char *)p, (char *)e);
        if (rc == HK_OK) hk__arena_sync_stats(a);
        if (!locked) hk__arena_unlock(a);
        if (rc != HK_OK) {
          /* Give the refused claim back unless another thread claimed past it (then it stays
           * unused until the next restore): left in place, it made every later allocation lie
           * past it and fail too, however small, and allocated counted it. */
          uintptr_t mine = e;
          atomic_compare_exchange_strong_explicit(&c->pos, &mine, old, memory_order_relaxed, memory_order_relaxed);
          return NULL;
        }
      }
      return (void *)p;
    }
    if (!locked) hk__arena_lock(a);
    int rc = HK_OK;
    if (hk__arena_cur(a) == c) rc = hk__arena_next_chunk(a, n + align);
    if (!locked) hk__arena_unlock(a);
    if (rc != HK_OK) return NULL;
  }
}

/* planned: the allocation may be served from a replayed plan (not a cleanup record: below). */
static void *alloc_tracked(hk_arena *a, size_t size, size_t align, bool planned) {
  bool serial = a->trace || a->replay;
  if (serial) hk__arena_lock(a);
  void *p = a->replay && planned ? hk__arena_replay_next(a, size, align) : NULL;
  if (!p) p = hk__arena_bump_atomic(a, size, align, serial && (a->flags & HK_ARENA_CONCURRENT));
  if (p && serial) {
    if (a->trace) hk__arena_trace_add(a, hk__arena_round(size), align);
    a->seq++;
  }
  if (serial) hk__arena_unlock(a);
  if (!p) return hk__arena_fail(a, size, ENOMEM);
  if (hk_likely(size <= HK__ARENA_TRACK_MAX)) hk__track_alloc(p, size);
  else hk__track_unpoison_large(p, size, false);
  return p;
}

void *hk__arena_alloc_tracked(hk_arena *a, size_t size, size_t align) { return alloc_tracked(a, size, align, true); }

/* A cleanup record holds a function pointer the arena calls: served from a replayed plan, it lay
 * wherever the plan said, and a plan without an upper column is trusted, so two rows could share
 * memory and the program's data overwrote the record (a jump to that data at restore or destroy:
 * SIGSEGV, make stress's fuzzer). A record is bump-allocated with the arena's other metadata
 * instead; it still takes its allocation number, so the later ones keep their rows, and it counts
 * as neither hit nor miss. Recording is unchanged (the record stays a row of the trace). */
void *hk__arena_alloc_record(hk_arena *a, size_t size) {
  if (!a->replay) return hk_arena_alloc(a, size);
  return alloc_tracked(a, size, HK_ARENA_ALIGN, false);
}

/* Cursors (arena.h): a cursor with an end mirrors head, with a bump pointer at or past head.cur
 * (the cursor only moves forward and the arena is not otherwise used while it is open). */
void hk__arena_cursor_sync(hk_arena *a, char *cur, char *end) {
  if (!end || !a || a->magic != HK__ARENA_MAGIC || a->slow_only) return;
  if (end != a->head.end || cur < a->head.cur || cur > end) {
    hk__warning("hk_arena_cursor(%p): the cursor no longer matches its arena (was the arena used while the "
                "cursor was open?); its position is ignored",
                (void *)a);
    return;
  }
  a->head.cur = cur;
}

hk_arena_head hk__arena_cursor_refill(hk_arena *a, char *cur, char *end, size_t size) {
  hk__arena_cursor_sync(a, cur, end);
  hk_arena_head r = {hk__arena_alloc_slow(a, size, HK_ARENA_ALIGN), NULL};
  /* Served from the head (not by the oom handler, not in slow-only mode): the cursor can go on
   * bumping, and its bump past r.cur lands exactly on head.cur. */
  if (r.cur && !a->slow_only && (uintptr_t)r.cur + hk__arena_round(size) == (uintptr_t)a->head.cur) r.end = a->head.end;
  return r;
}

void *hk_arena_calloc_aligned(hk_arena *a, size_t count, size_t size, size_t align) {
  size_t total;
  if (hk__mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = hk_arena_alloc_aligned(a, total, align);
  if (p) memset(p, 0, total);
  return p;
}

char *hk_arena_strdup(hk_arena *a, const char *s) {
  if (!s) {
    errno = EINVAL;
    return NULL;
  }
  size_t n = strlen(s) + 1;
  char *p = hk_arena_alloc(a, n);
  if (p) memcpy(p, s, n);
  return p;
}

size_t hk__arena_allocated(const hk_arena *a) {
  hk__arena_chunk *cur = hk__arena_cur(a);
  size_t total = 0;
  for (hk__arena_chunk *c = a->first; c; c = c->next) {
    char *pos = c == cur ? hk__arena_pos(a) : (char *)hk__chunk_pos(c);
    if (pos > c->limit) pos = c->limit;
    total += (size_t)(pos - c->base);
    if (c == cur) break;
  }
  return total;
}

/* Brings the peak up to date, and the global total when it is off by a commit step or more (an
 * atomic add on a shared counter at every restore would cost more than the allocations); called
 * whenever allocated may be about to drop (restore, reset) and at every refill, so the peak is
 * exact when observed. Returns the bytes allocated now. */
size_t hk__arena_sync_stats(hk_arena *a) {
  size_t now = hk__arena_allocated(a);
  if (now > a->alloc_peak) a->alloc_peak = now;
  size_t d = now > a->synced_alloc ? now - a->synced_alloc : a->synced_alloc - now;
  if (d >= HK__ARENA_DEFAULT_STEP) {
    atomic_fetch_add_explicit(&hk__arena_g.allocated, now - a->synced_alloc, memory_order_relaxed);
    a->synced_alloc = now;
  }
  return now;
}

void hk_arena_stats_get(const hk_arena *a, hk_arena_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!a || a->magic != HK__ARENA_MAGIC) return;
  out->allocated = hk__arena_allocated(a);
  out->allocated_peak = a->alloc_peak > out->allocated ? a->alloc_peak : out->allocated;
  out->committed = a->committed;
  out->committed_peak = a->committed_peak;
  out->reserved = a->reserved;
  out->chunks = a->nchunks;
  out->cleanups = a->ncleanups;
  out->budget_used = atomic_load_explicit(&((hk_arena *)a)->tree_committed, memory_order_relaxed);
  out->arenas = 1;
  hk__arena_replay_stats(a, &out->replay_hits, &out->replay_misses);
}

void hk_arena_global_stats(hk_arena_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  out->allocated = atomic_load_explicit(&hk__arena_g.allocated, memory_order_relaxed);
  out->committed = atomic_load_explicit(&hk__arena_g.committed, memory_order_relaxed);
  out->committed_peak = atomic_load_explicit(&hk__arena_g.committed_peak, memory_order_relaxed);
  out->reserved = atomic_load_explicit(&hk__arena_g.reserved, memory_order_relaxed);
  out->chunks = atomic_load_explicit(&hk__arena_g.chunks, memory_order_relaxed);
  out->arenas = atomic_load_explicit(&hk__arena_g.arenas, memory_order_relaxed);
}

bool hk_arena_contains(const hk_arena *a, const void *p) {
  if (!a || a->magic != HK__ARENA_MAGIC) return false;
  const char *q = p;
  hk__arena_chunk *cur = hk__arena_cur(a);
  for (hk__arena_chunk *c = a->first; c; c = c->next) {
    char *pos = c == cur ? hk__arena_pos(a) : (char *)hk__chunk_pos(c);
    if (q >= c->base && q < pos) return true;
    if (c == cur) break;
  }
  return hk__arena_replay_contains(a, p);
}

hk_arena *hk_arena_parent(const hk_arena *a) { return a && a->magic == HK__ARENA_MAGIC ? a->parent : NULL; }

bool hk__arena_is_valid(const hk_arena *a) {
  if (a->magic != HK__ARENA_MAGIC) return false;
  if ((void *)&a->head != (void *)a) return false;
  hk__arena_chunk *cur = hk__arena_cur(a);
  bool found = false;
  size_t committed = 0, n = 0;
  for (hk__arena_chunk *c = a->first; c; c = c->next) {
    if (!hk__arena_chunk_is_valid(a, c)) return false;
    if (found && hk__chunk_pos(c) != (uintptr_t)c->base) return false; /* spares are empty */
    if (c == cur) found = true;
    committed += (size_t)(hk__chunk_commit_end(c) - (char *)c->seg);
    n++;
    if (!c->next && c != a->last) return false;
  }
  if (!found || n != a->nchunks || committed != a->committed) return false;
  if (atomic_load_explicit(&((hk_arena *)a)->tree_committed, memory_order_relaxed) < committed) return false;
  if (a->slow_only) {
    if (a->head.cur || a->head.end) return false;
  } else {
    if (a->head.cur < cur->base || a->head.cur > a->head.end || a->head.end != hk__chunk_commit_end(cur)) return false;
    if ((uintptr_t)a->head.cur % HK_ARENA_ALIGN) return false;
  }
  size_t k = 0;
  for (hk__arena_cleanup *q = a->cleanups; q; q = q->next) k++;
  return k == a->ncleanups;
}
