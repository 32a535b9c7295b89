/* A coarser problem for the guillotine search: chains of buffers of one size, each starting where
 * the previous one ends, merged into one buffer.
 *
 * A tensor cut in time (the benchmark's generator cuts its rectangle so; a compiler splits a
 * buffer's lifetime at a reshape or an in-place op) leaves such chains, and a packing that keeps
 * them at one offset is what packing the uncut buffer would give. Two buffers are linked when one
 * ends at boundary t, the other starts there, they have the same size and alignment, and each is
 * the only buffer of that size ending (starting) at t: where there is a choice, no link. A
 * placement of the coarse problem unfolds into one of the original (every buffer at its chain's
 * offset: buffers of one chain never live at the same time, and buffers of two chains that do
 * overlap in time belong to chains that overlap too). The converse does not hold (the chain's
 * buffers may sit at different offsets in every packing at the bound), so a search of the coarse
 * problem proves nothing when it fails. Every section keeps its total, so a tight problem stays
 * tight with the same bound. */
#include "plan/plan_internal.h"

#include <stdlib.h>

int hk__plan_coarsen(const hk__plan_prob *p, hk__plan_prob *out, uint32_t *map) {
  size_t n = p->n;
  /* events keyed by size, then (section, end before start, buffer): section < 2^31 and n < 2^32
   * (the search runs on at most HK_PLAN_SEARCH_MAX buffers) */
  if (p->nsec >= ((size_t)1 << 31) || n >= UINT32_MAX) return HK_EINVAL;
  hk__plan_kv *ev = malloc((2 * n + 1) * sizeof *ev);
  uint32_t *next = malloc((n + 1) * sizeof *next);
  uint8_t *linked = calloc(n + 1, 1); /* has a predecessor */
  hk_plan_buffer *b = malloc((n + 1) * sizeof *b);
  int rc = HK_ENOMEM;
  if (!ev || !next || !linked || !b) goto out;
  for (size_t i = 0; i < n; i++) {
    next[i] = UINT32_MAX;
    ev[2 * i] = (hk__plan_kv){p->size[i], ((uint64_t)p->su[i] << 33) | i};
    ev[2 * i + 1] = (hk__plan_kv){p->size[i], ((uint64_t)p->sl[i] << 33) | ((uint64_t)1 << 32) | i};
  }
  hk__plan_sort_kv(ev, 2 * n);
  for (size_t i = 0, j; i < 2 * n; i = j) {
    /* one group: the same size and boundary; exactly one end and one start link */
    size_t ends = 0, starts = 0;
    uint32_t e = 0, s = 0;
    for (j = i; j < 2 * n && ev[j].key == ev[i].key && ev[j].val >> 33 == ev[i].val >> 33; j++) {
      uint32_t k = (uint32_t)(ev[j].val & 0xffffffffu);
      if (ev[j].val >> 32 & 1) starts++, s = k;
      else ends++, e = k;
    }
    if (ends == 1 && starts == 1 && p->align[e] == p->align[s]) { next[e] = s; linked[s] = 1; }
  }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (linked[i]) continue;
    uint32_t k = (uint32_t)i;
    for (;;) {
      map[k] = (uint32_t)m;
      if (next[k] == UINT32_MAX) break;
      k = next[k];
    }
    b[m++] = (hk_plan_buffer){p->sl[i], p->su[k], p->size[i], p->align[i]};
  }
  /* every buffer is non-empty, so the coarse problem keeps them in this order (orig[j] == j) */
  rc = hk__plan_prob_init(out, b, m, 0);
out:
  free(ev); free(next); free(linked); free(b);
  return rc;
}
