/* Arenas: internal structures shared by the files of src/arena/.
 *
 * Glossary
 *   chunk    one segment of the page layer (kind HK__SEG_ARENA) reserved whole and committed in
 *            steps from its start. Layout: [hk__segment][hk__arena_chunk][hk_arena, first chunk
 *            only][usable memory: base .. limit). Pointers never move: when a chunk is exhausted
 *            the arena chains a new one (each reservation twice the previous, up to 256 MiB).
 *   current  the chunk allocation bumps in. Chunks before it in the list are used, chunks after it
 *            are spares kept from an earlier restore (pos == base).
 *   head     {cur, end}: the bump pointer and the commit end of the current chunk, read by the
 *            inline fast path. In slow-only mode (concurrent, tracing, replay, sanitizers) head is
 *            {NULL, NULL} and the current chunk's atomic pos is the bump pointer instead.
 *   budget   a limit on the committed bytes of an arena and all its descendants (tree_committed).
 */
#ifndef HK_ARENA_INTERNAL_H
#define HK_ARENA_INTERNAL_H
#include "common/internal.h"
#include "page/segment.h"
#include "arena/track.h"

#include <pthread.h>
#include <stdatomic.h>

#define HK__ARENA_MAGIC 0x4152454eu /* "AREN" */
#define HK__ARENA_MAX_RESERVE ((size_t)256 << 20)
#define HK__ARENA_DEFAULT_STEP ((size_t)64 << 10)
#define HK__ARENA_DEFAULT_RETAIN ((size_t)1 << 20)
#define HK__ARENA_RELEASE_RETRIES 16

/* Invariants (hk__arena_chunk_is_valid):
 *   base <= pos <= limit, and base <= commit_end <= limit  (commit_end >= pos except for the
 *   claimed-but-not-yet-committed tail of a concurrent allocation in flight)
 *   commit_end - (char *)seg is a multiple of seg->unit; limit == (char *)seg + seg->size
 *   a spare chunk (after the current one) has pos == base. */
typedef struct hk__arena_chunk {
  hk__segment *seg;
  struct hk__arena_chunk *next, *prev;
  char *base;
  char *limit;
  _Atomic(uintptr_t) pos;        /* bump position; stale for the current chunk outside slow-only mode */
  _Atomic(uintptr_t) commit_end; /* only grows while the chunk is current; shrinks at trim */
  char *poisoned_end;            /* highest commit end ever: what must be unpoisoned at free */
} hk__arena_chunk;

typedef struct hk__arena_cleanup {
  void (*fn)(void *);
  void *arg;
  struct hk__arena_cleanup *next;
} hk__arena_cleanup;

typedef struct hk__arena_trace hk__arena_trace;
typedef struct hk__arena_replay hk__arena_replay;

enum { HK__ROLE_PLAIN = 0, HK__ROLE_REGION = 1, HK__ROLE_SCRATCH = 2 };
/* Why a fork's prepare handler left a concurrent arena's lock to its holder (arena.c, conc_prepare). */
enum { HK__SKIP_NONE = 0, HK__SKIP_OWN = 1, HK__SKIP_PARKED = 2 };

/* Invariants (hk__arena_is_valid):
 *   head is first, so the public hk_arena_head view is valid.
 *   slow_only => head.cur == head.end == NULL; otherwise head.cur lies in the current chunk,
 *   head.cur % 16 == 0 and head.end == its commit_end.
 *   committed == sum over chunks of (commit_end - seg); tree_committed >= committed.
 *   ncleanups == length of the cleanups list. */
struct hk_arena {
  hk_arena_head head;
  _Atomic(hk__arena_chunk *) cur;
  hk__arena_chunk *first, *last;
  uint32_t magic;
  unsigned flags;
  bool slow_only;
  bool track; /* annotate released memory for ASan/valgrind (poisoning on, and a tool present) */
  uint8_t role;
  size_t commit_step, retain, budget, next_reserve;

  hk__arena_cleanup *cleanups;
  size_t ncleanups;

  size_t committed, committed_peak, reserved, nchunks, alloc_peak, synced_alloc;
  _Atomic size_t tree_committed;

  hk_arena *parent, *first_child, *next_sibling, *prev_sibling;
  hk_arena_release_fn release;
  void *release_arg;
  hk_arena_oom_fn oom;
  void *oom_arg;
  pthread_mutex_t lock; /* concurrent mode: growth, cleanups; always: the children list */
  /* Concurrent mode, while lock is held: the next of the locks its thread holds (hk__arena_self),
   * and whether that thread waits for a collector (hk__arena_parked); see conc_prepare (arena.c). */
  hk_arena *held_next;
  _Atomic bool holder_parked;
  uint8_t fork_skip; /* HK__SKIP_*, under conc_lock across a fork: its prepare handler did not take lock */

  hk_arena *region_prev; /* region stack link */
  hk_arena *conc_next, *conc_prev; /* concurrent arenas: the list fork's handlers lock (arena.c) */
  hk__arena_trace *trace;
  hk__arena_replay *replay;
  size_t seq; /* allocations so far (tracing and replay) */
};

static inline uintptr_t hk__chunk_pos(const hk__arena_chunk *c) {
  return atomic_load_explicit(&c->pos, memory_order_relaxed);
}
static inline char *hk__chunk_commit_end(const hk__arena_chunk *c) {
  return (char *)atomic_load_explicit(&c->commit_end, memory_order_acquire);
}
static inline hk__arena_chunk *hk__arena_cur(const hk_arena *a) {
  return atomic_load_explicit(&((hk_arena *)a)->cur, memory_order_acquire);
}
/* The bump pointer wherever it lives (the arena must be quiet in concurrent mode). */
static inline char *hk__arena_pos(const hk_arena *a) {
  return a->slow_only ? (char *)hk__chunk_pos(hk__arena_cur(a)) : a->head.cur;
}
/* The concurrent arenas' locks are held across a fork by the thread that forks (arena.c). */
HK_INTERNAL extern _Atomic uintptr_t hk__arena_holder;
/* Per thread: while a fork is being prepared, a thread that lets go of a concurrent arena's lock
 * tells the forker and, holding no other (held), stays out of the arenas for a moment; a fork's
 * prepare handler does not wait for the locks on top's list (arena.c, conc_prepare). */
typedef struct hk__arena_thread {
  unsigned held;  /* concurrent arenas' locks held */
  hk_arena *top;  /* those taken (not skipped as the fork's holder's), through held_next */
} hk__arena_thread;
HK_INTERNAL extern _Thread_local hk__arena_thread hk__arena_self;
HK_INTERNAL extern _Atomic unsigned hk__arena_forking;
HK_INTERNAL void hk__arena_released(void);
/* This thread waits for what a fork may keep until it is over: a stopped world to resume (the
 * collector, src/gc/thread.c), or, in a fork's prepare handler, a lock another fork holds (arena.c,
 * src/gc/fork.c, src/pool/pool.c); the locks it holds are left to it by a fork meanwhile. */
HK_INTERNAL void hk__arena_parked(bool on);
/* a fork handler (this thread holds every arena for a fork) reached an arena whose lock the fork
 * left to a stopped holder: reported in the forking process (arena.c) */
HK_INTERNAL void hk__arena_fork_skipped(const hk_arena *a);
static inline void hk__arena_lock(hk_arena *a) {
  if (a->flags & HK_ARENA_CONCURRENT) {
    hk__arena_thread *me = &hk__arena_self;
    if (!hk__holds(&hk__arena_holder)) {
      pthread_mutex_lock(&a->lock);
      a->held_next = me->top;
      me->top = a;
    } else if (hk_unlikely(a->fork_skip == HK__SKIP_PARKED)) {
      hk__arena_fork_skipped(a);
    }
    me->held++;
  }
}
static inline void hk__arena_unlock(hk_arena *a) {
  if (a->flags & HK_ARENA_CONCURRENT) {
    hk__arena_thread *me = &hk__arena_self;
    me->held--;
    if (!hk__holds(&hk__arena_holder)) {
      /* (the last taken, but for a program that lets them go in another order) */
      hk_arena **q = &me->top;
      while (*q && *q != a) q = &(*q)->held_next;
      if (*q) *q = a->held_next;
      pthread_mutex_unlock(&a->lock);
    }
    if (hk_unlikely(atomic_load_explicit(&hk__arena_forking, memory_order_relaxed) != 0)) hk__arena_released();
  }
}
/* The children list's lock, which every arena has: held across a fork only for concurrent ones. */
static inline void hk__arena_list_lock(hk_arena *a) {
  if (a->flags & HK_ARENA_CONCURRENT) hk__arena_lock(a);
  else pthread_mutex_lock(&a->lock);
}
static inline void hk__arena_list_unlock(hk_arena *a) {
  if (a->flags & HK_ARENA_CONCURRENT) hk__arena_unlock(a);
  else pthread_mutex_unlock(&a->lock);
}

/* ASan keeps a shadow byte per 8 bytes, written when a range is poisoned: poisoning a block's
 * whole committed range made a 100 GB arena allocation take 12 GB of resident shadow and 27 s
 * (a 1 TiB one ran the machine out of memory). So a block's own bytes are never poisoned when
 * its claim commits them (its allocation unpoisons them next anyway), and any one poisoning or
 * debug fill covers at most this much: committed memory further ahead of the allocation that
 * committed it, and released memory further into a released range, stay addressable (an access
 * there is not reported). 1 GiB: 128 MiB of shadow. */
#define HK__ARENA_TRACK_MAX ((size_t)1 << 30)

/* chunk.c: chunks, commit, budgets, trimming. */
HK_INTERNAL size_t hk__arena_header_size(bool with_arena);
HK_INTERNAL void hk__arena_chunk_init(hk_arena *a, hk__arena_chunk *c, hk__segment *seg, size_t hdr);
/* Makes the current position able to take the claim [from, end): commits more of c, or
 * NULL-returns failure (budget after the release callback, or the OS). 0 on success. */
HK_INTERNAL int hk__arena_commit_to(hk_arena *a, hk__arena_chunk *c, char *from, char *end);
/* Moves allocation to a chunk after the current one with at least need usable bytes. */
HK_INTERNAL int hk__arena_next_chunk(hk_arena *a, size_t need);
HK_INTERNAL void hk__arena_chunk_free(hk_arena *a, hk__arena_chunk *c);
/* Charges n committed bytes to a and its ancestors, calling release callbacks under pressure. */
HK_INTERNAL int hk__arena_charge(hk_arena *a, size_t n);
HK_INTERNAL void hk__arena_uncharge(hk_arena *a, size_t n);
/* Returns committed memory beyond what is in use plus the retention to the page layer. */
HK_INTERNAL void hk__arena_trim(hk_arena *a);
/* Releases [from, to) of c: debug fill, then poisoning. */
HK_INTERNAL void hk__arena_release_range(hk_arena *a, char *from, char *to);
HK_INTERNAL void hk__arena_account_commit(hk_arena *a, ptrdiff_t bytes);
HK_INTERNAL bool hk__arena_chunk_is_valid(const hk_arena *a, const hk__arena_chunk *c);

/* arena.c */
/* Registers the fork handlers of the concurrent arenas (once; the collector calls it first). */
HK_INTERNAL void hk__arena_fork_register(void);
HK_INTERNAL bool hk__arena_is_valid(const hk_arena *a);
HK_INTERNAL size_t hk__arena_allocated(const hk_arena *a);
HK_INTERNAL size_t hk__arena_sync_stats(hk_arena *a);
/* Allocation in slow-only mode; tracing and replay hook in here. */
HK_INTERNAL void *hk__arena_alloc_tracked(hk_arena *a, size_t size, size_t align);
/* hk_arena_defer's record: never served from a replayed plan (arena.c). */
HK_INTERNAL void *hk__arena_alloc_record(hk_arena *a, size_t size);
/* locked: the caller holds a->lock (tracing and replay serialize concurrent allocations). */
HK_INTERNAL void *hk__arena_bump_atomic(hk_arena *a, size_t size, size_t align, bool locked);
HK_INTERNAL void *hk__arena_fail(hk_arena *a, size_t size, int err);
HK_INTERNAL void hk__arena_destroy_any(hk_arena *a);

/* scope.c */
HK_INTERNAL void hk__arena_run_cleanups(hk_arena *a, size_t keep);
HK_INTERNAL size_t hk__arena_restore_to(hk_arena *a, hk__arena_chunk *c, char *pos, size_t cleanups, size_t seq);

/* trace.c */
HK_INTERNAL int hk__arena_trace_init(hk_arena *a);
HK_INTERNAL int hk__arena_trace_add(hk_arena *a, size_t size, size_t align);
HK_INTERNAL void hk__arena_trace_close(hk_arena *a, size_t from_seq);
HK_INTERNAL void hk__arena_trace_free(hk_arena *a);
HK_INTERNAL int hk__arena_replay_init(hk_arena *a, const char *path);
HK_INTERNAL void *hk__arena_replay_next(hk_arena *a, size_t size, size_t align);
/* A restore or reset released the allocations from from_seq on. */
HK_INTERNAL void hk__arena_replay_close(hk_arena *a, size_t from_seq);
HK_INTERNAL void hk__arena_replay_free(hk_arena *a);
HK_INTERNAL void hk__arena_replay_stats(const hk_arena *a, size_t *hits, size_t *misses);
HK_INTERNAL bool hk__arena_replay_contains(const hk_arena *a, const void *p);

/* Global statistics (all arenas). */
typedef struct hk__arena_globals {
  _Atomic size_t arenas, committed, committed_peak, reserved, chunks, allocated;
} hk__arena_globals;
HK_INTERNAL extern hk__arena_globals hk__arena_g;

#endif
