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
/* Big problems run only three first-fit orders (the winners on model traces) and give the rest to
 * the squeaky wheel. Conflict first: on Y_1 (62k buffers) it reaches the bound at once, and each
 * run there costs ~0.15 s of CPU, so on a loaded machine the size order ahead of it used to leave
 * Y_1 at +0.36% (or at the skyline's +26%) when the time ran out. */
static const hk__plan_order big_portfolio[] = {HK__ORDER_CONFLICT, HK__ORDER_SIZE, HK__ORDER_LONG_FIRST};
#define BIG_PORTFOLIO (sizeof big_portfolio / sizeof *big_portfolio)

/* The squeaky wheel's blame for ending above the bound and for living at the loaded section. */
#ifndef HK__SQUEAKY_ABOVE
#define HK__SQUEAKY_ABOVE 1
#endif
#ifndef HK__SQUEAKY_HOT
#define HK__SQUEAKY_HOT 2
#endif

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

/* Work so far (the greedy's deterministic clock plus the squeaky wheel's own sorting). */
static uint64_t spent(const hk__plan_run *r, const hk__plan_greedy *g) { return hk__plan_greedy_work(g) + r->work_extra; }

/* Would one more run that costs what the last one did (`last`) pass `share` of the work budget?
 * Never with no budget. */
static bool over_budget(const hk__plan_run *r, const hk__plan_greedy *g, uint64_t last, double share) {
  return r->work_limit && (double)(spent(r, g) + last) > share * (double)r->work_limit;
}

/* Squeaky wheel: after each run every buffer that ends above the bound gets one point of blame,
 * every buffer live at the most loaded section under the peak-setting buffer two (the waste that
 * lifts the peak is usually there); the next run places buffers by decreasing blame, ties in the
 * best heuristic's order. Blame accumulates, so the order keeps moving instead of settling on a
 * fixed point. The weights were the other way round (two for ending above the bound, one for the
 * loaded section) until pangu_2.6B needed 17 rounds with them (0.5 s of CPU, which a loaded machine
 * does not give it in 1 s) and needs 2 with these; on 36 generated traces of 5000-20000 buffers
 * neither is ahead (docs/planner.md, *Under load*). Runs until the bound, the work budget
 * (deterministic: on a loaded machine the same rounds, unless the clock strikes first) or, as an
 * outer bound, the deadline. */
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
  uint64_t last = 0;
  while (!good_enough(r) && !over_budget(r, g, last, 1.0)) {
    double start = hk__plan_clock(p);
    uint64_t before = spent(r, g);
    uint32_t top = 0;
    for (uint32_t i = 1; i < p->n; i++) if (r->cur[i] + p->size[i] > r->cur[top] + p->size[top]) top = i;
    uint32_t hot = p->sl[top];
    for (uint32_t x = p->sl[top]; x < p->su[top]; x++) if (load[x] > load[hot]) hot = x;
    for (size_t i = 0; i < p->n; i++) {
      uint32_t b = r->best_order[i];
      if (r->cur[b] + p->size[b] > p->lb) blame[b] += HK__SQUEAKY_ABOVE;
      if (p->sl[b] <= hot && hot < p->su[b]) blame[b] += HK__SQUEAKY_HOT;
      kv[i] = (hk__plan_kv){((uint64_t)(UINT32_MAX - blame[b]) << 32) | i, b};
    }
    hk__plan_sort_kv(kv, p->n);
    r->work_extra += 4 * (uint64_t)p->n; /* the blame pass and the sort, ~5% of a run */
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
    last = spent(r, g) - before;
    double now = hk__plan_clock(p);
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
  bool big = autom && r->big;
  size_t count = big ? BIG_PORTFOLIO : sizeof portfolio / sizeof *portfolio;
  uint64_t last = 0;
  for (size_t h = 0; h < count && !good_enough(r); h++) {
    hk__plan_order o = big ? big_portfolio[h] : portfolio[h].o;
    bool best_fit = big ? false : portfolio[h].best_fit;
    if (only != HK__ORDER__COUNT && (o != only || !best_fit)) continue;
    /* Another run only if, at the last one's cost, it ends within the work budget (60% of it on
     * small problems: the search gets the rest). */
    if (h > 0 && over_budget(r, g, last, big ? 1.0 : 0.6)) break;
    double start = hk__plan_clock(p);
    uint64_t before = spent(r, g);
    if (hk__plan_make_order(p, o, r->order) != HK_OK) goto out;
    int gr = hk__plan_greedy_run(g, r->order, best_fit, r->deadline, r->cur);
    if (gr < 0) goto out;
    if (gr == HK__PLAN_LATE) break; /* out of time: keep what we have */
    last = spent(r, g) - before;
    consider(r, r->order, best_fit, hk__plan_order_name(o, best_fit));
    /* the outer bound, in wall time: on small problems the same 60% at this pace */
    double now = hk__plan_clock(p);
    if (autom && !r->big && opt->time_limit > 0 && now - r->t0 + (now - start) > 0.6 * opt->time_limit) break;
  }
  if (autom && r->big && r->deadline > 0 && !good_enough(r) && squeaky(r, g) != HK_OK) goto out;
  rc = HK_OK;
out:
  hk__plan_greedy_free(g);
  return rc;
}
