/* Page-layer counters (internal to src/page). */
#ifndef HK_PAGE_STATS_H
#define HK_PAGE_STATS_H
#include "page/segment.h"

typedef struct hk__page_counters {
  _Atomic size_t reserved;       /* bytes of live and cached segments */
  _Atomic size_t committed;      /* committed units of those, in bytes */
  _Atomic size_t committed_peak;
  _Atomic size_t segments;       /* live segments (not counting cached ones) */
  _Atomic size_t cached;         /* segments in the cache */
  _Atomic size_t purged;         /* bytes decommitted, cumulative */
  _Atomic size_t client_inuse;   /* bytes reported by non-malloc clients */
  _Atomic size_t client_inuse_peak;
} hk__page_counters;

HK_INTERNAL extern hk__page_counters hk__pstats;
HK_INTERNAL void hk__pstat_committed(ptrdiff_t delta);
static inline void hk__pstat_add(_Atomic size_t *c, ptrdiff_t d) {
  atomic_fetch_add_explicit(c, (size_t)d, memory_order_relaxed);
}
#endif
