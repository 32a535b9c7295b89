/* Page-layer accounting: every reserved and committed byte, updated on segment-level operations
 * only (never per block), so it is exact and cheap. */
#include "page/stats.h"

hk__page_counters hk__pstats;

static void raise_peak(_Atomic size_t *peak, size_t v) {
  size_t cur = atomic_load_explicit(peak, memory_order_relaxed);
  while (v > cur && !atomic_compare_exchange_weak_explicit(peak, &cur, v, memory_order_relaxed, memory_order_relaxed)) {}
}

void hk__pstat_committed(ptrdiff_t delta) {
  size_t v = atomic_fetch_add_explicit(&hk__pstats.committed, (size_t)delta, memory_order_relaxed) + (size_t)delta;
  if (delta > 0) raise_peak(&hk__pstats.committed_peak, v);
}

void hk__page_inuse_add(ptrdiff_t delta) {
  size_t v = atomic_fetch_add_explicit(&hk__pstats.client_inuse, (size_t)delta, memory_order_relaxed) + (size_t)delta;
  if (delta > 0) raise_peak(&hk__pstats.client_inuse_peak, v);
}

size_t hk__page_inuse(void) { return atomic_load_explicit(&hk__pstats.client_inuse, memory_order_relaxed); }

void hk__page_stats(hk_stats *out) {
  out->reserved = atomic_load_explicit(&hk__pstats.reserved, memory_order_relaxed);
  out->committed = atomic_load_explicit(&hk__pstats.committed, memory_order_relaxed);
  out->committed_peak = atomic_load_explicit(&hk__pstats.committed_peak, memory_order_relaxed);
  out->segments = atomic_load_explicit(&hk__pstats.segments, memory_order_relaxed);
  out->segments_cached = atomic_load_explicit(&hk__pstats.cached, memory_order_relaxed);
  out->purged = atomic_load_explicit(&hk__pstats.purged, memory_order_relaxed);
  out->in_use = hk__page_inuse();
  out->in_use_peak = atomic_load_explicit(&hk__pstats.client_inuse_peak, memory_order_relaxed);
}
