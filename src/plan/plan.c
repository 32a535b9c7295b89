/* hk_plan: check the request, build the problem, run the heuristics, then the search.
 *
 * Policy, in one place: every heuristic is cheap (O(n log n) plus the overlap pairs it visits),
 * so all of them run and the best placement wins; the search then spends what is left of the
 * time limit trying to reach the lower bound and, failing that, to lower the peak further. It is
 * skipped when the heuristics already reach the bound or fit the capacity, and on problems too
 * large for its O(n + sections) cost per node. */
#include "plan/plan_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Above this many non-zero buffers a search node costs too much to be worth it in a second. */
#define HK_PLAN_SEARCH_MAX 4000

void hk_plan_options_init(hk_plan_options *opt) {
  if (!opt) return;
  memset(opt, 0, sizeof *opt);
  opt->time_limit = 1.0;
  opt->method = HK_PLAN_AUTO;
}

static bool pow2_or_zero(uint64_t a) { return (a & (a - 1)) == 0; }

/* Shared argument check. Offsets never exceed the sum of (size + align - 1): stacking everything
 * is always possible and no heuristic does worse, so bounding that sum bounds every offset. */
static int check_request(const hk_plan_buffer *bufs, size_t n, uint64_t default_align, size_t *bad) {
  *bad = SIZE_MAX;
  if (n > 0 && !bufs) return HK_EINVAL;
  if (!pow2_or_zero(default_align)) return HK_EINVAL;
  if (n >= UINT32_MAX) return HK_EOVERFLOW;
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    const hk_plan_buffer *b = &bufs[i];
    if (b->lower >= b->upper || !pow2_or_zero(b->align)) { *bad = i; return HK_EINVAL; }
    uint64_t a = b->align ? b->align : (default_align ? default_align : 1);
    if (b->size == 0) continue;
    if (b->size >= (1ull << 62) || a >= (1ull << 62) || (total += b->size + a - 1) >= (1ull << 63)) {
      *bad = i;
      return HK_EOVERFLOW;
    }
  }
  return HK_OK;
}

int hk_plan_lower_bound(const hk_plan_buffer *bufs, size_t n, uint64_t *out) {
  size_t bad;
  int rc = check_request(bufs, n, 0, &bad);
  if (rc != HK_OK) return rc;
  if (!out) return HK_EINVAL;
  hk__plan_prob p;
  if ((rc = hk__plan_prob_init(&p, bufs, n, 0)) != HK_OK) return rc;
  *out = p.lb;
  hk__plan_prob_free(&p);
  return HK_OK;
}

/* The search phase. First aim at the bound (or the capacity): short slices alternating the
 * problem and its time reversal, each slice twice as long as the previous pair, for half of the
 * time (nine tenths when every section is full at the bound, where only the bound is worth
 * aiming at). Then branch and bound from the best peak with what is left. */
static int search(const hk__plan_prob *p, const uint32_t *prio, const hk_plan_options *opt, double t0,
                  uint64_t *best, uint64_t *best_peak, hk_plan_result *res) {
  hk__plan_prob rev;
  if (hk__plan_prob_reverse(p, &rev) != HK_OK) return HK_ENOMEM;
  hk__plan_search_stats st = {0};
  double deadline = t0 + opt->time_limit, now = hk__plan_now();
  double aim_end = now + (deadline - now) * (p->tight ? 0.9 : 0.5);
  double slice = opt->time_limit / 4 > 0.005 ? opt->time_limit / 4 : 0.005;
  uint64_t aim = opt->capacity > p->lb ? opt->capacity : p->lb;
  bool refuted = false;
  int rc = HK_OK;
  for (int turn = 0; !refuted && *best_peak > aim && now < aim_end; turn++) {
    double d = now + slice < aim_end ? now + slice : aim_end;
    int sr = hk__plan_search(turn & 1 ? &rev : p, prio, HK__SEARCH_LB, (unsigned)turn, d, opt->capacity, best,
                             best_peak, &st);
    if (sr < 0) { rc = sr; goto out; }
    refuted = sr == 2;
    if (turn & 1) slice *= 2;
    now = hk__plan_now();
  }
  if (*best_peak > aim && !(refuted && opt->capacity)) {
    int sr = hk__plan_search(p, prio, HK__SEARCH_BB, 0, deadline, opt->capacity, best, best_peak, &st);
    if (sr < 0) { rc = sr; goto out; }
    if (sr == 1) res->optimal = true;
  }
  if (refuted && opt->capacity) res->capacity_refuted = true;
out:
  res->nodes = st.nodes;
  hk__plan_prob_free(&rev);
  return rc;
}

int hk_plan(const hk_plan_buffer *bufs, size_t n, const hk_plan_options *opt_in, uint64_t *offsets,
            hk_plan_result *res) {
  double t0 = hk__plan_now();
  hk_plan_options opt;
  if (opt_in) opt = *opt_in; else hk_plan_options_init(&opt);
  hk_plan_result dummy;
  if (!res) res = &dummy;
  memset(res, 0, sizeof *res);
  res->bad_index = SIZE_MAX;
  res->method = "none";
  if ((n > 0 && !offsets) || !(opt.time_limit >= 0) || isinf(opt.time_limit) ||
      (unsigned)opt.method >= HK_PLAN_METHOD__COUNT)
    return HK_EINVAL;
  int rc = check_request(bufs, n, opt.align, &res->bad_index);
  if (rc != HK_OK) return rc;

  hk__plan_prob p;
  if ((rc = hk__plan_prob_init(&p, bufs, n, opt.align)) != HK_OK) return rc;
  res->lower_bound = p.lb;
  size_t m = p.n ? p.n : 1;
  uint64_t *best = malloc(m * sizeof *best), *cur = malloc(m * sizeof *cur);
  uint32_t *order = malloc(m * sizeof *order), *prio = malloc(m * sizeof *prio);
  uint32_t *best_order = malloc(m * sizeof *best_order);
  bool best_fit = true;
  hk__plan_greedy *g = NULL;
  uint64_t best_peak = UINT64_MAX;
  rc = HK_ENOMEM;
  if (!best || !cur || !order || !prio || !best_order) goto out;
  if (p.n > 0) {
    if (!(g = hk__plan_greedy_new(&p))) goto out;
    /* which heuristics: one for the single-method requests, all otherwise */
    hk__plan_order first = HK__ORDER_SIZE, last = HK__ORDER__COUNT - 1;
    bool try_first_fit = true;
    if (opt.method == HK_PLAN_GREEDY_SIZE) first = last = HK__ORDER_SIZE;
    if (opt.method == HK_PLAN_GREEDY_LIFETIME) first = last = HK__ORDER_LIFETIME;
    if (opt.method == HK_PLAN_GREEDY_AREA) first = last = HK__ORDER_AREA;
    if (opt.method >= HK_PLAN_GREEDY_SIZE) try_first_fit = false; /* the single-method requests are best fit */
    /* Heuristics. In AUTO mode they share the time limit with the search: another one runs only
     * if, at the pace of the last one, it ends within 60% of the limit. Problems too big to
     * search run three fixed ones and leave the rest of the time to the squeaky wheel. A 62k-buffer trace takes 0.2-0.5 s per heuristic; small
     * problems run all of them in milliseconds. */
    static const struct { hk__plan_order o; bool best_fit; } plan[] = {
      /* first fit stops at the first gap, so it runs 3-4x faster than best fit on big traces and
       * is often as good: the cheap ones go first, so a short time limit still tries several */
      {HK__ORDER_SIZE, false}, {HK__ORDER_CONFLICT, false}, {HK__ORDER_LONG_FIRST, false}, {HK__ORDER_PEAK, false},
      {HK__ORDER_SIZE_LONG, false}, {HK__ORDER_SIZE, true}, {HK__ORDER_LONG_FIRST, true}, {HK__ORDER_SIZE_LONG, true},
      {HK__ORDER_PEAK, true}, {HK__ORDER_CONFLICT, true}, {HK__ORDER_LIFETIME, true}, {HK__ORDER_AREA, true},
      {HK__ORDER_LIFETIME, false}, {HK__ORDER_AREA, false},
    };
    if (hk__plan_make_order(&p, HK__ORDER_SIZE, prio) != HK_OK) goto out;
    /* With a time limit, heuristic runs stop at it; the skyline placement, O(n log n) whatever
     * the input, guarantees there is an answer when even the first one cannot finish. */
    bool timed = opt.method == HK_PLAN_AUTO && opt.time_limit > 0;
    double hdeadline = timed ? t0 + opt.time_limit : 0;
    if (timed) {
      if (hk__plan_skyline(&p, prio, best) != HK_OK) goto out;
      best_peak = hk__plan_peak(&p, best);
      memcpy(best_order, prio, p.n * sizeof *best_order);
      res->method = "skyline";
    }
    for (size_t h = 0; h < sizeof plan / sizeof *plan && best_peak > p.lb; h++) {
      hk__plan_order o = plan[h].o;
      if (o < first || o > last || (!plan[h].best_fit && !try_first_fit)) continue;
      double start = hk__plan_now();
      if (hk__plan_make_order(&p, o, order) != HK_OK) goto out;
      int gr = hk__plan_greedy_run(g, order, plan[h].best_fit, hdeadline, cur);
      if (gr < 0) goto out;
      if (gr == HK__PLAN_LATE) break; /* out of time: keep what we have */
      uint64_t pk = hk__plan_peak(&p, cur);
      if (pk < best_peak) {
        best_peak = pk;
        memcpy(best, cur, p.n * sizeof *best);
        memcpy(best_order, order, p.n * sizeof *best_order);
        best_fit = plan[h].best_fit;
        res->method = hk__plan_order_name(o, plan[h].best_fit);
      }
      if (best_peak <= p.lb || (opt.capacity && best_peak <= opt.capacity)) break;
      double now = hk__plan_now();
      /* big problems: the three first-fit orders that win on model traces (size, conflict,
       * long-first), then the squeaky wheel below does better than more orders */
      if (opt.method == HK_PLAN_AUTO && p.n > HK_PLAN_SEARCH_MAX) {
        if (h == 2) break;
        continue;
      }
      if (opt.method == HK_PLAN_AUTO && opt.time_limit > 0 && now - t0 + (now - start) > 0.6 * opt.time_limit) break;
    }
    /* Squeaky wheel, for problems too big to search: every buffer that ends above the bound in a
     * run gets one more point of blame, and the next run places buffers by decreasing blame,
     * ties in the best heuristic's order. Blame accumulates, so the order keeps moving instead of
     * settling on a fixed point. While time is left, keep the best. */
    if (opt.method == HK_PLAN_AUTO && opt.time_limit > 0 && p.n > HK_PLAN_SEARCH_MAX && best_peak > p.lb &&
        !(opt.capacity && best_peak <= opt.capacity)) {
      uint32_t *blame = calloc(p.n, sizeof *blame);
      hk__plan_kv *kv = malloc(p.n * sizeof *kv);
      uint64_t *load = calloc(p.nsec + 1, sizeof *load);
      if (!blame || !kv || !load) { free(blame); free(kv); free(load); goto out; }
      for (size_t i = 0; i < p.n; i++) { load[p.sl[i]] += p.size[i]; load[p.su[i]] -= p.size[i]; }
      for (size_t x = 1; x <= p.nsec; x++) load[x] += load[x - 1]; /* wraps back to exact sums */
      memcpy(cur, best, p.n * sizeof *cur);
      for (int round = 0; round < 1000; round++) {
        double start = hk__plan_now();
        /* the most loaded section in the lifetime of the buffer that sets the peak: everything
         * live there shares the blame (the waste that lifts the peak is usually there) */
        uint32_t top = 0;
        for (uint32_t i = 1; i < p.n; i++) if (cur[i] + p.size[i] > cur[top] + p.size[top]) top = i;
        uint32_t hot = p.sl[top];
        for (uint32_t x = p.sl[top]; x < p.su[top]; x++) if (load[x] > load[hot]) hot = x;
        for (size_t i = 0; i < p.n; i++) {
          uint32_t b = best_order[i];
          if (cur[b] + p.size[b] > p.lb) blame[b] += 2;
          if (p.sl[b] <= hot && hot < p.su[b]) blame[b]++;
          kv[i] = (hk__plan_kv){((uint64_t)(UINT32_MAX - blame[b]) << 32) | i, b};
        }
        hk__plan_sort_kv(kv, p.n);
        for (size_t i = 0; i < p.n; i++) order[i] = (uint32_t)kv[i].val;
        int gr = hk__plan_greedy_run(g, order, best_fit, hdeadline, cur);
        if (gr < 0) { free(blame); free(kv); free(load); goto out; }
        if (gr == HK__PLAN_LATE) break;
        uint64_t pk = hk__plan_peak(&p, cur);
        if (pk < best_peak) {
          best_peak = pk;
          memcpy(best, cur, p.n * sizeof *best);
          res->method = "greedy-squeaky";
        }
        double now = hk__plan_now();
        if (best_peak <= p.lb || (opt.capacity && best_peak <= opt.capacity) ||
            now - t0 + (now - start) > opt.time_limit)
          break;
      }
      free(blame);
      free(kv);
      free(load);
    }
    hk__plan_greedy_free(g);
    g = NULL;
    bool fits = opt.capacity && best_peak <= opt.capacity; /* the budget is met: stop */
    bool hopeless = opt.capacity && opt.capacity < p.lb;
    if (opt.method == HK_PLAN_AUTO && opt.time_limit > 0 && best_peak > p.lb && !fits && !hopeless &&
        p.n <= HK_PLAN_SEARCH_MAX) {
      uint64_t before = best_peak;
      if (search(&p, prio, &opt, t0, best, &best_peak, res) != HK_OK) goto out;
      if (best_peak < before) res->method = "search";
    }
  } else {
    best_peak = 0;
  }
  for (size_t i = 0; i < n; i++) offsets[i] = 0;
  for (size_t i = 0; i < p.n; i++) offsets[p.orig[i]] = best[i];
  res->peak = best_peak;
  if (best_peak <= p.lb) res->optimal = true;
  res->fits = !opt.capacity || best_peak <= opt.capacity;
  if (opt.capacity && opt.capacity < p.lb) res->capacity_refuted = true;
  rc = HK_OK;
out:
  hk__plan_greedy_free(g);
  free(best); free(cur); free(order); free(prio); free(best_order);
  hk__plan_prob_free(&p);
  res->seconds = hk__plan_now() - t0;
  return rc;
}
