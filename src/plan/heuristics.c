/* The heuristic portfolio: which greedy orders run, in what order, for how long, and the squeaky
 * wheel that improves on them when the problem is too big to search. */
#include "plan/plan_internal.h"

#include <stdlib.h>
#include <string.h>

/* First fit stops at the first gap, so it runs 3-4x faster than best fit on big traces and is
 * often as good: the cheap ones go first, so a short time limit still tries several. */
static const struct { hk__plan_order o; bool best_fit; } portfolio[] = {
  {HK__ORDER_SIZE, false}, {HK__ORDER_CONFLICT, false}, {HK__ORDER_LONG_FIRST, false}, {HK__ORDER_PEAK, false},
  {HK__ORDER_SIZE_LONG, false}, {HK__ORDER_SIZE, true}, {HK__ORDER_LONG_FIRST, true}, {HK__ORDER_SIZE_LONG, true},
  {HK__ORDER_PEAK, true}, {HK__ORDER_CONFLICT, true}, {HK__ORDER_LIFETIME, true}, {HK__ORDER_AREA, true},
  {HK__ORDER_LIFETIME, false}, {HK__ORDER_AREA, false},
};
/* Big problems run only the first three (size, conflict, long-first: the winners on model
 * traces) and give the rest of the time to the squeaky wheel. */
#define BIG_PORTFOLIO 3

static bool good_enough(const hk__plan_run *r) {
  return r->best_peak <= r->p->lb || (r->opt->capacity && r->best_peak <= r->opt->capacity);
}

static void consider(hk__plan_run *r, const uint32_t *order, bool best_fit, const char *method) {
  uint64_t pk = hk__plan_peak(r->p, r->cur);
  if (pk >= r->best_peak) return;
  r->best_peak = pk;
  memcpy(r->best, r->cur, r->p->n * sizeof *r->best);
  if (order != r->best_order) memcpy(r->best_order, order, r->p->n * sizeof *r->best_order);
  r->best_fit = best_fit;
  r->method = method;
}

/* Squeaky wheel: after each run every buffer that ends above the bound gets two points of blame,
 * every buffer live at the most loaded section under the peak-setting buffer one (the waste that
 * lifts the peak is usually there); the next run places buffers by decreasing blame, ties in the
 * best heuristic's order. Blame accumulates, so the order keeps moving instead of settling on a
 * fixed point. Runs until the deadline or the bound. */
static int squeaky(hk__plan_run *r, hk__plan_greedy *g) {
  const hk__plan_prob *p = r->p;
  uint32_t *blame = calloc(p->n, sizeof *blame);
  hk__plan_kv *kv = malloc(p->n * sizeof *kv);
  uint64_t *load = calloc(p->nsec + 1, sizeof *load);
  int rc = HK_ENOMEM;
  if (!blame || !kv || !load) goto out;
  for (size_t i = 0; i < p->n; i++) { load[p->sl[i]] += p->size[i]; load[p->su[i]] -= p->size[i]; }
  for (size_t x = 1; x <= p->nsec; x++) load[x] += load[x - 1]; /* unsigned wrap-around gives exact sums */
  memcpy(r->cur, r->best, p->n * sizeof *r->cur);
  rc = HK_OK;
  while (!good_enough(r)) {
    double start = hk__plan_now();
    uint32_t top = 0;
    for (uint32_t i = 1; i < p->n; i++) if (r->cur[i] + p->size[i] > r->cur[top] + p->size[top]) top = i;
    uint32_t hot = p->sl[top];
    for (uint32_t x = p->sl[top]; x < p->su[top]; x++) if (load[x] > load[hot]) hot = x;
    for (size_t i = 0; i < p->n; i++) {
      uint32_t b = r->best_order[i];
      if (r->cur[b] + p->size[b] > p->lb) blame[b] += 2;
      if (p->sl[b] <= hot && hot < p->su[b]) blame[b]++;
      kv[i] = (hk__plan_kv){((uint64_t)(UINT32_MAX - blame[b]) << 32) | i, b};
    }
    hk__plan_sort_kv(kv, p->n);
    for (size_t i = 0; i < p->n; i++) r->order[i] = (uint32_t)kv[i].val;
    int gr = hk__plan_greedy_run(g, r->order, r->best_fit, r->deadline, r->cur);
    if (gr < 0) { rc = gr; goto out; }
    if (gr == HK__PLAN_LATE) break;
    uint64_t pk = hk__plan_peak(p, r->cur);
    if (pk < r->best_peak) {
      r->best_peak = pk;
      memcpy(r->best, r->cur, p->n * sizeof *r->best);
      r->method = "greedy-squeaky";
    }
    double now = hk__plan_now();
    if (now + (now - start) > r->deadline) break;
  }
out:
  free(blame);
  free(kv);
  free(load);
  return rc;
}

int hk__plan_heuristics(hk__plan_run *r) {
  const hk__plan_prob *p = r->p;
  const hk_plan_options *opt = r->opt;
  bool autom = opt->method == HK_PLAN_AUTO;
  hk__plan_greedy *g = hk__plan_greedy_new(p);
  if (!g) return HK_ENOMEM;
  int rc = HK_ENOMEM;
  r->best_peak = UINT64_MAX;
  if (hk__plan_make_order(p, HK__ORDER_SIZE, r->prio) != HK_OK) goto out;
  memcpy(r->best_order, r->prio, p->n * sizeof *r->best_order);
  /* With a time limit, heuristic runs stop at it; the skyline placement, O(n log n) whatever the
   * input, guarantees an answer when even the first one cannot finish. */
  if (r->deadline > 0) {
    if (hk__plan_skyline(p, r->prio, r->cur) != HK_OK) goto out;
    consider(r, r->prio, true, "skyline");
  }
  /* one heuristic for the single-method requests (best fit), the portfolio otherwise */
  hk__plan_order only = HK__ORDER__COUNT;
  if (opt->method == HK_PLAN_GREEDY_SIZE) only = HK__ORDER_SIZE;
  if (opt->method == HK_PLAN_GREEDY_LIFETIME) only = HK__ORDER_LIFETIME;
  if (opt->method == HK_PLAN_GREEDY_AREA) only = HK__ORDER_AREA;
  size_t ran = 0;
  for (size_t h = 0; h < sizeof portfolio / sizeof *portfolio && !good_enough(r); h++) {
    hk__plan_order o = portfolio[h].o;
    if (only != HK__ORDER__COUNT && (o != only || !portfolio[h].best_fit)) continue;
    if (autom && r->big && ran == BIG_PORTFOLIO) break;
    double start = hk__plan_now();
    if (hk__plan_make_order(p, o, r->order) != HK_OK) goto out;
    int gr = hk__plan_greedy_run(g, r->order, portfolio[h].best_fit, r->deadline, r->cur);
    if (gr < 0) goto out;
    if (gr == HK__PLAN_LATE) break; /* out of time: keep what we have */
    ran++;
    consider(r, r->order, portfolio[h].best_fit, hk__plan_order_name(o, portfolio[h].best_fit));
    /* small problems: another heuristic only if, at this pace, it ends within 60% of the limit
     * (the search gets the rest) */
    double now = hk__plan_now();
    if (autom && !r->big && opt->time_limit > 0 && now - r->t0 + (now - start) > 0.6 * opt->time_limit) break;
  }
  if (autom && r->big && r->deadline > 0 && !good_enough(r) && squeaky(r, g) != HK_OK) goto out;
  rc = HK_OK;
out:
  hk__plan_greedy_free(g);
  return rc;
}
