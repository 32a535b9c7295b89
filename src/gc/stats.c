/* Collector statistics: counters kept by the collector itself and pause times, whose percentiles
 * come from a ring of the last GC_PAUSE_RING pauses of each kind (sorted on demand, in place in a
 * scratch area of the heap, so reading them never allocates). */
#include "gc/gc_internal.h"

#include <time.h>

double hk__gc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void hk__gc_pause_record(hk_gc_heap *h, int kind, double ms) {
  gc_pauses *p = &h->pause[kind];
  ms = (float)ms; /* the ring keeps floats: keep max consistent with the percentiles */
  p->ring[p->count % GC_PAUSE_RING] = (float)ms;
  p->count++;
  p->total_ms += ms;
  if (ms > p->max_ms) p->max_ms = ms;
}

static void sift(float *a, size_t n, size_t i) {
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && a[c + 1] > a[c]) c++;
    if (a[i] >= a[c]) return;
    float t = a[i];
    a[i] = a[c];
    a[c] = t;
    i = c;
  }
}

static void heapsort_f(float *a, size_t n) {
  for (size_t i = n / 2; i-- > 0;) sift(a, n, i);
  for (size_t end = n; end-- > 1;) {
    float t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift(a, end, 0);
  }
}

static double pct(const float *sorted, size_t n, double q) {
  if (!n) return 0;
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return sorted[i];
}

static void summarize(hk_gc_heap *h, const int *kinds, int nk, hk_gc_pause_stats *out) {
  size_t n = 0;
  memset(out, 0, sizeof *out);
  for (int k = 0; k < nk; k++) {
    gc_pauses *p = &h->pause[kinds[k]];
    size_t c = p->count < GC_PAUSE_RING ? (size_t)p->count : GC_PAUSE_RING;
    memcpy(h->pause_scratch + n, p->ring, c * sizeof(float));
    n += c;
    out->count += p->count;
    out->total_ms += p->total_ms;
    if (p->max_ms > out->max_ms) out->max_ms = p->max_ms;
  }
  heapsort_f(h->pause_scratch, n);
  out->p50_ms = pct(h->pause_scratch, n, 0.50);
  out->p95_ms = pct(h->pause_scratch, n, 0.95);
}

void hk_gc_stats_get(hk_gc_heap *h, hk_gc_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!h || h->h.magic != GC_MAGIC || h->h.role != ROLE_HEAP) return;
  if (gc_reentered("hk_gc_stats_get", "all zero")) return;
  hk__gc_lock_aside(h);
  out->minor_collections = h->minor_count;
  out->full_collections = h->full_count;
  uint64_t pending = 0;
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) {
    /* Other threads' buffers move under us; only the totals of retired buffers are exact. */
    if (pthread_equal(m->thread, pthread_self())) {
      /* (a buffer closed in a blocking region keeps its cursor: alloc.c, buffer_close) */
      if (m->fast.cursor && m->tlab_start) pending += (uint64_t)(m->fast.cursor - m->tlab_start);
      if (m->fast.data_cursor && m->data_start) pending += (uint64_t)(m->fast.data_cursor - m->data_start);
    }
  }
  out->bytes_allocated = h->bytes_allocated + pending;
  out->bytes_copied = h->bytes_copied;
  out->bytes_promoted = h->bytes_promoted;
  out->bytes_evacuated = h->bytes_evacuated;
  out->live_bytes = h->live_bytes;
  out->heap_size = hk__gc_heap_bytes(h);
  out->heap_peak = h->heap_peak;
  out->large_objects = h->large_count;
  out->large_bytes = h->large_bytes;
  out->finalizers_run = h->finalizers_run;
  out->weak_cleared = h->weak_cleared;
  out->mutators = h->nmutators;
  out->nursery_size = h->nursery_blocks * GC_BLOCK_SIZE;
  out->parallel_phases = h->par_phases;
  out->parallel_helpers = h->par_helpers;
  out->parallel_opened = h->par_opened;
  out->safepoint_wait_ms = h->stw_wait_ms;
  out->safepoint_wait_max_ms = h->stw_wait_max_ms;
  out->safepoint_run_cpu_ms = h->stw_run_cpu_ms;
  out->sticky_collections = h->sticky_count;
  static const int minor[1] = {0}, full[1] = {1}, all[2] = {0, 1};
  summarize(h, minor, 1, &out->minor);
  summarize(h, full, 1, &out->full);
  summarize(h, all, 2, &out->all);
  gc_unlock(h);
}

static void print_pause(int fd, const char *name, const hk_gc_pause_stats *p) {
  char buf[256];
  hk__snprintf(buf, sizeof buf, "  %s pauses: %lu, p50 %lu us, p95 %lu us, max %lu us, total %lu ms\n", name,
               (unsigned long)p->count, (unsigned long)(p->p50_ms * 1000), (unsigned long)(p->p95_ms * 1000),
               (unsigned long)(p->max_ms * 1000), (unsigned long)p->total_ms);
  hk__write_fd(fd, buf);
}

void hk_gc_stats_print(hk_gc_heap *h, int fd) {
  hk_gc_stats s;
  hk_gc_stats_get(h, &s);
  char buf[512];
  hk__snprintf(buf, sizeof buf,
               "heapkit gc: %lu minor, %lu full collections; allocated %lu KiB, copied %lu KiB, promoted %lu KiB, "
               "evacuated %lu KiB\n  live %zu KiB, heap %zu KiB (peak %zu KiB), %zu large objects (%zu KiB), "
               "%lu finalizers run, %lu weak refs cleared, %zu mutators\n",
               (unsigned long)s.minor_collections, (unsigned long)s.full_collections,
               (unsigned long)(s.bytes_allocated >> 10), (unsigned long)(s.bytes_copied >> 10),
               (unsigned long)(s.bytes_promoted >> 10), (unsigned long)(s.bytes_evacuated >> 10), s.live_bytes >> 10,
               s.heap_size >> 10, s.heap_peak >> 10, s.large_objects, s.large_bytes >> 10,
               (unsigned long)s.finalizers_run, (unsigned long)s.weak_cleared, s.mutators);
  hk__write_fd(fd, buf);
  print_pause(fd, "minor", &s.minor);
  print_pause(fd, "full", &s.full);
  if (s.parallel_opened || s.safepoint_wait_ms > 0) {
    hk__snprintf(buf, sizeof buf, "  parallel phases %lu (helped %lu, %lu helpers); waiting for safepoints %lu us (max %lu us, "
                 "%lu us of the waited threads' CPU)\n",
                 (unsigned long)s.parallel_opened, (unsigned long)s.parallel_phases, (unsigned long)s.parallel_helpers,
                 (unsigned long)(s.safepoint_wait_ms * 1000), (unsigned long)(s.safepoint_wait_max_ms * 1000),
                 (unsigned long)(s.safepoint_run_cpu_ms * 1000));
    hk__write_fd(fd, buf);
  }
}
