/* Statistics of the general allocator, merged with the page layer's. Per-thread counters are
 * flushed into these globals from slow paths and at thread exit.
 *
 * The in-use peak is raised only from a full sum (globals plus every live thread's pending
 * counter), never from the globals alone: a thread that only frees (a consumer, or a main thread
 * freeing what exited workers left behind) seldom reaches a slow path, so its negative delta can
 * stay pending while producers flush theirs, and the globals alone then run far above what is
 * really in use (10,000 exited workers leaving 8 blocks each made a 1 MiB workload report a 95 MiB
 * peak). The full sum is taken at most once per millisecond from flushes (one thread does it), at
 * thread exit, and by hk_stats_get; a peak that lasts less than that between two samples can be
 * missed, and a sum that races a concurrent flush can be off by that thread's pending delta. */
#include "malloc/malloc.h"

#include <sched.h>
#include <unistd.h>

static _Atomic int64_t g_inuse, g_inuse_peak, g_mallocs, g_frees;
_Atomic size_t hk__huge_live, hk__huge_bytes;

static void raise_peak(int64_t v) {
  int64_t cur = atomic_load_explicit(&g_inuse_peak, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak_explicit(&g_inuse_peak, &cur, v, memory_order_relaxed, memory_order_relaxed)) {}
}

void hk__stats_global_add(int64_t inuse, int64_t mallocs, int64_t frees) {
  if (inuse) atomic_fetch_add_explicit(&g_inuse, inuse, memory_order_relaxed);
  /* (release: a reader that sees the sum sees the pending counts zeroed: hk_stats_get) */
  if (mallocs) atomic_fetch_add_explicit(&g_mallocs, mallocs, memory_order_release);
  if (frees) atomic_fetch_add_explicit(&g_frees, frees, memory_order_release);
}

typedef struct sums { int64_t inuse, mallocs, frees, threads; } sums;
/* Another thread's default heap is stable while the live list is locked; its first-class heaps are
 * not, so their counters are seen once their owner flushes them (at its next slow path). */
static void add_tld(hk__tld *t, void *arg) {
  sums *s = arg;
  hk_heap *h = t->heap_default;
  int64_t inuse, mallocs, frees;
  /* (a seqlock read: hk__stats_seq_begin; after many tries, a thread stuck in a move is read as it is) */
  for (int tries = 0;; tries++) {
    unsigned seq = __atomic_load_n(&h->stats_seq, __ATOMIC_ACQUIRE);
    inuse = __atomic_load_n(&h->inuse, __ATOMIC_RELAXED);
    mallocs = __atomic_load_n(&h->mallocs, __ATOMIC_RELAXED);
    frees = hk__heap_frees(h);
#if defined(__SANITIZE_THREAD__) /* (TSan does not model fences: an RMW that orders the same) */
    unsigned again = __atomic_fetch_add(&h->stats_seq, 0, __ATOMIC_ACQ_REL);
#else
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    unsigned again = __atomic_load_n(&h->stats_seq, __ATOMIC_RELAXED);
#endif
    if (((seq & 1) == 0 && again == seq) || tries >= 1000) break;
    if (tries >= 10) sched_yield();
  }
  s->inuse += inuse;
  s->mallocs += mallocs;
  s->frees += frees;
  s->threads++;
}

/* What is in use now: the globals plus every live thread's pending counter. */
static int64_t inuse_now(sums *s) {
  *s = (sums){0, 0, 0, 0};
  hk__tld_foreach(add_tld, s);
  int64_t inuse = atomic_load_explicit(&g_inuse, memory_order_relaxed) + s->inuse;
  return inuse < 0 ? 0 : inuse;
}

static _Atomic int64_t g_sampled_at = -1;

void hk__stats_sample_peak(int64_t now) {
  int64_t last = atomic_load_explicit(&g_sampled_at, memory_order_relaxed);
  if (now == last || !atomic_compare_exchange_strong_explicit(&g_sampled_at, &last, now, memory_order_relaxed, memory_order_relaxed)) return;
  sums s;
  raise_peak(inuse_now(&s));
}

void hk__stats_flush_heap(hk_heap *h) {
  hk__stats_seq_begin(h);
  hk__lifo_fold(h);
  int64_t inuse = __atomic_load_n(&h->inuse, __ATOMIC_RELAXED);
  int64_t m = __atomic_load_n(&h->mallocs, __ATOMIC_RELAXED), f = __atomic_load_n(&h->frees, __ATOMIC_RELAXED);
  __atomic_store_n(&h->inuse, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->mallocs, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->frees, 0, __ATOMIC_RELAXED);
  hk__stats_seq_end(h);
  hk__stats_global_add(inuse, m, f);
}

/* Owner thread only. */
void hk__stats_flush(hk__tld *tld) {
#if HK_STATS
  for (hk_heap *h = tld->heaps; h; h = h->next) hk__stats_flush_heap(h);
#else
  (void)tld;
#endif
}

/* The cumulative counters a reader is given never go down. A sum races the flushes it does not
 * lock out: a thread moving its pending counts into the globals (hk__stats_flush_heap) has them in
 * neither for a moment, so one sum could miss them and the next not (malloc_count 73 187 then
 * 68 914 under 4 threads freeing each other's blocks: malloc.stats_monotonic). The globals are read
 * before the threads' pending counts (a count flushed in between is then missed, not counted
 * twice), and every reader returns at least what any reader returned before: a process-wide
 * high-water per counter, raised with a compare-and-swap here only, so the malloc and free paths
 * pay nothing. */
static _Atomic size_t hw_mallocs, hw_frees, hw_inuse_peak, hw_committed_peak, hw_purged;

static size_t never_lower(_Atomic size_t *hw, size_t v) {
  size_t cur = atomic_load_explicit(hw, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak_explicit(hw, &cur, v, memory_order_relaxed, memory_order_relaxed)) {}
  return v > cur ? v : cur;
}

void hk_stats_get(hk_stats *out) {
  if (!out) return; /* (as the other clients' *_stats_get) */
  hk__process_init();
  /* the calling thread's first-class heaps are summed only once flushed: flush them (its own, so
   * it may), or their allocations since the last slow path were missing from its own figures */
  hk__tld *self = hk__tls_heap->tld;
  if (self) hk__stats_flush(self);
  *out = (hk_stats){0};
  hk__page_stats(out);
  int64_t gm = atomic_load_explicit(&g_mallocs, memory_order_acquire), gf = atomic_load_explicit(&g_frees, memory_order_acquire);
  sums s;
  int64_t inuse = inuse_now(&s);
  raise_peak(inuse);
  out->in_use += (size_t)inuse;
  out->in_use_peak += (size_t)atomic_load_explicit(&g_inuse_peak, memory_order_relaxed);
  if (out->in_use_peak < out->in_use) out->in_use_peak = out->in_use;
  out->in_use_peak = never_lower(&hw_inuse_peak, out->in_use_peak);
  out->committed_peak = never_lower(&hw_committed_peak, out->committed_peak);
  out->purged = never_lower(&hw_purged, out->purged);
  out->malloc_count = never_lower(&hw_mallocs, (size_t)(gm + s.mallocs));
  out->free_count = never_lower(&hw_frees, (size_t)(gf + s.frees));
  out->threads = (size_t)s.threads;
  out->segments_abandoned = hk__abandoned_count();
  out->huge_count = atomic_load_explicit(&hk__huge_live, memory_order_relaxed);
  out->fragmentation = out->in_use ? (double)out->committed / (double)out->in_use : 0.0;
  out->counters = HK_STATS != 0;
}

static void count(int fd, const char *name, size_t v) {
  char buf[128];
  hk__snprintf(buf, sizeof buf, "  %s %zu\n", name, v);
  hk__write_fd(fd, buf);
}

static void line(int fd, const char *name, size_t v) {
  char buf[128];
  if (v >= (size_t)10 << 20) hk__snprintf(buf, sizeof buf, "  %s %zu (%zu MiB)\n", name, v, v >> 20);
  else if (v >= (size_t)10 << 10) hk__snprintf(buf, sizeof buf, "  %s %zu (%zu KiB)\n", name, v, v >> 10);
  else hk__snprintf(buf, sizeof buf, "  %s %zu\n", name, v);
  hk__write_fd(fd, buf);
}

void hk_stats_print(int fd) {
  hk_stats s;
  hk_stats_get(&s);
  char buf[128];
  hk__write_fd(fd, s.counters ? "heapkit statistics:\n"
                               : "heapkit statistics (built with HK_STATS=OFF: malloc's in-use bytes and counts are not kept):\n");
  line(fd, "reserved         ", s.reserved);
  line(fd, "committed        ", s.committed);
  line(fd, "committed peak   ", s.committed_peak);
  line(fd, "in use           ", s.in_use);
  line(fd, "in use peak      ", s.in_use_peak);
  count(fd, "large blocks     ", s.huge_count);
  /* in integers: the ratio has no bound (one small block beside a full segment cache), and a
   * double beyond UINT_MAX converted to unsigned is undefined (it printed garbage) */
  size_t frag100 = s.in_use ? (size_t)(((unsigned __int128)s.committed * 100 + s.in_use / 2) / s.in_use) : 0;
  hk__snprintf(buf, sizeof buf, "  fragmentation     %zu.%zu%zu (committed / in use)\n", frag100 / 100, frag100 / 10 % 10, frag100 % 10);
  hk__write_fd(fd, buf);
  count(fd, "segments         ", s.segments);
  count(fd, "segments cached  ", s.segments_cached);
  count(fd, "segments abandoned", s.segments_abandoned);
  count(fd, "mallocs          ", s.malloc_count);
  count(fd, "frees            ", s.free_count);
  line(fd, "purged (total)   ", s.purged);
  count(fd, "threads          ", s.threads);
  line(fd, "rss              ", hk__page_rss());
}

__attribute__((destructor)) static void heapkit_unload(void) {
  if (hk__opt(HK_OPT_SHOW_STATS)) hk_stats_print(2);
}
