/* Skyline placement: the guaranteed-fast fallback. Buffers by decreasing size, each put on top of
 * everything already placed during its lifetime (no holes are reused), so one range-maximum
 * query and one range assignment on a segment tree over sections place it: O(n log n) whatever
 * the input. Its peak is worse than the greedy heuristics', but it bounds the time of hk_plan
 * when those would take too long (dense, fragmenting inputs, where every best-fit query visits
 * thousands of holes). */
#include "plan/plan_internal.h"

#include <stdlib.h>

typedef struct sky { size_t P; uint64_t *mx; uint64_t *lazy; uint8_t *has; } sky;

/* Assign v to every section in [l, r) of node x covering [nl, nr). Every assigned v exceeds the
 * values it replaces, so a node's max becomes v. */
static void assign(sky *t, size_t x, size_t nl, size_t nr, size_t l, size_t r, uint64_t v) {
  if (r <= nl || nr <= l) return;
  if (l <= nl && nr <= r) { t->mx[x] = v; t->lazy[x] = v; t->has[x] = 1; return; }
  if (t->has[x]) { /* push down */
    for (size_t c = 2 * x; c <= 2 * x + 1; c++) { t->mx[c] = t->lazy[x]; t->lazy[c] = t->lazy[x]; t->has[c] = 1; }
    t->has[x] = 0;
  }
  size_t mid = (nl + nr) / 2;
  assign(t, 2 * x, nl, mid, l, r, v);
  assign(t, 2 * x + 1, mid, nr, l, r, v);
  t->mx[x] = t->mx[2 * x] > t->mx[2 * x + 1] ? t->mx[2 * x] : t->mx[2 * x + 1];
}

static uint64_t query(const sky *t, size_t x, size_t nl, size_t nr, size_t l, size_t r) {
  if (r <= nl || nr <= l) return 0;
  if ((l <= nl && nr <= r) || t->has[x]) return t->mx[x]; /* a pending assignment covers it all */
  size_t mid = (nl + nr) / 2;
  uint64_t a = query(t, 2 * x, nl, mid, l, r), b = query(t, 2 * x + 1, mid, nr, l, r);
  return a > b ? a : b;
}

int hk__plan_skyline(const hk__plan_prob *p, const uint32_t *order, uint64_t *off) {
  sky t;
  t.P = 1;
  while (t.P < p->nsec) t.P <<= 1;
  t.mx = calloc(2 * t.P, sizeof *t.mx);
  t.lazy = calloc(2 * t.P, sizeof *t.lazy);
  t.has = calloc(2 * t.P, 1);
  if (!t.mx || !t.lazy || !t.has) { free(t.mx); free(t.lazy); free(t.has); return HK_ENOMEM; }
  for (size_t k = 0; k < p->n; k++) {
    uint32_t b = order[k];
    uint64_t a = p->align[b];
    uint64_t at = (query(&t, 1, 0, t.P, p->sl[b], p->su[b]) + a - 1) & ~(a - 1);
    off[b] = at;
    assign(&t, 1, 0, t.P, p->sl[b], p->su[b], at + p->size[b]);
  }
  free(t.mx); free(t.lazy); free(t.has);
  return HK_OK;
}
