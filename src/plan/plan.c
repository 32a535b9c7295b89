/* hk_plan: check the request, build the problem, run the heuristics (heuristics.c), then the
 * search.
 *
 * Policy, in one place: the heuristics are cheap and run first (the best placement wins); the
 * search then spends what is left of the time limit trying to reach the lower bound and, failing
 * that, to lower the peak further. It is skipped when the heuristics already reach the bound or
 * fit the capacity, and on problems too large for its O(n + sections) cost per node, which get
 * the squeaky wheel instead. */
#include "plan/plan_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* Rounds of the guillotine search on the coarse problem (see search), per[i] steps per coarse
 * buffer for rounds[i], sharing one table (a fluid round has its own: nrounds 1). Returns 1 when best
 * holds a placement at the bound, HK_OK (0) when none was found, or HK_ENOMEM. */
static int coarse_rounds(const hk__plan_prob *p, const unsigned *rounds, unsigned nrounds, const uint64_t *per, double deadline,
                         uint64_t *best, uint64_t *nodes) {
  hk__plan_prob c;
  uint32_t *map = malloc((p->n ? p->n : 1) * sizeof *map);
  if (!map) return HK_ENOMEM;
  int rc = hk__plan_coarsen(p, &c, map);
  if (rc != HK_OK) { free(map); return rc == HK_ENOMEM ? rc : HK_OK; }
  c.cpu_clock = p->cpu_clock;
  uint64_t *off = malloc((c.n ? c.n : 1) * sizeof *off), *fail = NULL;
  rc = off ? HK_OK : HK_ENOMEM;
  for (unsigned i = 0; rc == HK_OK && c.n < p->n && i < nrounds && hk__plan_clock(p) < deadline; i++) {
    int gr = hk__plan_guillotine(&c, rounds[i], per[i] * (uint64_t)c.n, deadline, off, nodes, &fail);
    if (gr < 0) rc = gr;
    else if (gr == 1) {
      for (size_t i = 0; i < p->n; i++) best[i] = off[map[i]];
      rc = 1;
    } else if (gr == 2) break; /* no guillotine packing of the coarse problem */
  }
  free(off); free(fail); free(map);
  hk__plan_prob_free(&c);
  return rc;
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
  double deadline = t0 + opt->time_limit, now = hk__plan_clock(p);
  double aim_end = now + (deadline - now) * (p->tight ? 0.9 : 0.5);
  /* On tight problems the first slices are shorter: the running time there depends strongly on
   * the orientation (with slices of a quarter, many instances were placed at 0.26 s, just after
   * the first slice, by the reversed problem), and the slices share one nogood table, so
   * switching early loses little. Over 600 generated perfect packings of 200-500 buffers this
   * placed 541 instead of 531 at the bound in 1 s (docs/planner.md). */
  double first = opt->time_limit / (p->tight ? 16 : 4);
  double slice = first > 0.005 ? first : 0.005;
  uint64_t aim = opt->capacity > p->lb ? opt->capacity : p->lb;
  bool refuted = false;
  /* only when aiming at the bound of a tight problem (hk__plan_guillotine checks the rest) */
  bool guillotine = p->tight && aim == p->lb;
  uint64_t *gfail = NULL;
  int rc = HK_OK;
  /* First a short round of each of the guillotine search's four variants (guillotine.c): most of
   * the instances it places need a few thousand steps, and the slices below would otherwise
   * come first (its first round used to start after 0.125 s). Then one taking the larger subsets
   * first at each boundary and the strip's first time cut chosen before its buffers: alone it
   * places 127 of 400 buffers seeds 1-150 at this budget (round 0: 119; without the cut first 81),
   * after the four and the one below it adds 5 (seed 70, which nothing else placed in 4M steps
   * per round, and 46, which nothing placed before the cut first; without the cut first it added
   * 2). And the thin round with the larger subsets: 2 more of 500 seeds 1-150, and the thin one
   * with the larger subsets and the first cut first (400 seed 381: 16 steps per buffer; it took
   * 0.74 s of CPU before, docs/planner.md). */
  static const unsigned first_rounds[] = HK_PLAN_FIRST_ROUNDS;
  for (unsigned i = 0; guillotine && i < sizeof first_rounds / sizeof *first_rounds && *best_peak > aim && now < aim_end; i++) {
    if (i == 4) {
      /* Between the four plain rounds and the rest: a short slice of the bottom-up search on the
       * problem and on its reversal. The instances it places (500 seeds 1-150: 7 placed by the
       * first two slices, 1-19 ms each at load 10) used to wait for the two rounds below and the
       * coarse rounds, 0.1-0.2 s there; the rounds below place 4, the coarse rounds 0-1 (400: 1
       * and 3), which now wait 2 x 1/64 of the limit, at most 2 x 1/64 s (docs/planner.md). */
      double pre = opt->time_limit < 1 ? opt->time_limit / 64 : 1.0 / 64; /* (a probe: no longer with more time) */
      for (int turn = 0; turn < 2 && !refuted && *best_peak > aim && now < aim_end; turn++) {
        double d = now + pre < aim_end ? now + pre : aim_end;
        int sr = hk__plan_search(turn ? &rev : p, prio, HK__SEARCH_LB, (unsigned)turn, d, opt->capacity, best, best_peak, &st);
        if (sr < 0) { rc = sr; goto out; }
        refuted = sr == 2;
        now = hk__plan_clock(p);
      }
      if (refuted || *best_peak <= aim || now >= aim_end) break;
    }
    uint64_t per = i == 4 ? HK_PLAN_GUILLOTINE_CUT_FIRST : HK_PLAN_GUILLOTINE_FIRST;
    int gr = hk__plan_guillotine(p, first_rounds[i], per * (uint64_t)p->n, aim_end, best, &st.nodes, &gfail);
    if (gr < 0) { rc = gr; goto out; }
    if (gr == 1) { *best_peak = p->lb; res->method = "guillotine"; }
    if (gr == 2) guillotine = false;
    now = hk__plan_clock(p);
  }
  /* Then the same four on the coarse problem (coarsen.c: chains of equal-size buffers merged):
   * fewer buffers and boundaries, and so other strips to enumerate; at this budget they place 3
   * of the 9 instances of 400 buffers seeds 1-150 that the six rounds above miss (seed 38, which
   * nothing else placed with 24M steps, among them), none at 500 (docs/planner.md). It proves
   * nothing when it fails, so it runs once. */
  static const unsigned coarse_first[] = {0, 1, 2, 3}, coarse_fluid[] = {HK_PLAN_GUILLOTINE_FLUID};
  static const uint64_t first_per[] = {HK_PLAN_GUILLOTINE_FIRST, HK_PLAN_GUILLOTINE_FIRST, HK_PLAN_GUILLOTINE_FIRST,
                                       HK_PLAN_GUILLOTINE_FIRST},
                        fluid_per[] = {HK_PLAN_GUILLOTINE_FLUID_STEPS};
  if (guillotine && *best_peak > aim && now < aim_end &&
      (rc = coarse_rounds(p, coarse_first, 4, first_per, aim_end, best, &st.nodes)) != HK_OK) {
    if (rc < 0) goto out;
    rc = HK_OK;
    *best_peak = p->lb;
    res->method = "guillotine";
  }
  /* Then one fluid round on the coarse problem (the single-section buffers as amounts per
   * section, guillotine.c): it places 400 seed 121 (1.8M steps) and 500 seed 109 (2.1M), which
   * nothing else placed in 1 s (121: not in 30M steps of any round on the problem or its coarse
   * problem). Where it fails it costs its 7000 steps per coarse buffer, 0.2-0.4 s under load:
   * the instances the first rotation round places come that much later (400 seed 36 0.21 ->
   * 0.41-0.48 s, 500 seed 116 0.31 -> 0.63 s); after that round, 121 and 109 would wait for the
   * slices and it instead (docs/planner.md). */
  if (guillotine && *best_peak > aim && (now = hk__plan_clock(p)) < aim_end &&
      (rc = coarse_rounds(p, coarse_fluid, 1, fluid_per, aim_end, best, &st.nodes)) != HK_OK) {
    if (rc < 0) goto out;
    rc = HK_OK;
    *best_peak = p->lb;
    res->method = "guillotine";
  }
  now = hk__plan_clock(p);
  for (int turn = 0; !refuted && *best_peak > aim && now < aim_end; turn++) {
    double d = now + slice < aim_end ? now + slice : aim_end;
    int sr = hk__plan_search(turn & 1 ? &rev : p, prio, HK__SEARCH_LB, (unsigned)turn, d, opt->capacity, best,
                             best_peak, &st);
    if (sr < 0) { rc = sr; goto out; }
    refuted = sr == 2;
    /* (on tight problems the second pair stays as short as the first: the guillotine rounds after
     * the first pair take longer since the tier, and 500 seeds 319 and 320, which the second
     * rotation round places, came at 0.85 s of CPU instead of 0.7, docs/planner.md) */
    if ((turn & 1) && !(guillotine && turn == 1)) slice *= 2;
    now = hk__plan_clock(p);
    if ((turn & 1) && guillotine && *best_peak > aim && now < aim_end) {
      /* After each pair of slices: a round of the guillotine search (guillotine.c), with a work
       * budget doubling at each round (the rounds resume from the failures the earlier ones
       * recorded). Its enumeration already starts from either end, so one orientation serves.
       * The rounds alternate which strip it takes lowest (b*'s, the thinnest): on 400 and 500
       * buffers, seeds 1-150, 12M steps, either alone placed 140 + 134 and 139 + 140, alternating
       * 141 + 146 (docs/planner.md). */
      uint64_t work = (HK_PLAN_GUILLOTINE_WORK * (uint64_t)p->n) << (turn / 2 < 20 ? turn / 2 : 20);
      int gr = 0;
      /* Before the first: a tier of six variants with a modest budget each (HK_PLAN_TIER_ROUNDS;
       * round 0 is among them, and the rotation round gets what is left of its 5000 per buffer);
       * after it: b*'s strip from the other end with the larger subsets and the first cut first,
       * and the coarse problem's b* round from the other end with the larger subsets (each placed
       * by no other round: 400 seeds 253 and 342, not placed in 4 s before). A round's running
       * time is heavy-tailed and which variant is quick depends on the instance, so several
       * variants at 1000 steps per buffer place more than one at 5000: over 400 seeds 1-400, 500
       * seeds 1-350, 300 seeds 1-300, 100 and 200 seeds 1-150 and 400 seeds 1001-1100, 4 more
       * placed in 1 s of CPU and none lost. These replaced a round with the shorter-lived buffers
       * first (7000 steps per buffer), which placed 400 seed 145 before the coarse rounds did
       * (docs/planner.md). */
      /* First of all, the fluid cut round on the problem (HK_PLAN_FLUID_CUT_ROUND, a table of its
       * own): 300 seed 1130, which nothing else placed with 4 s of CPU, in 1199 steps per buffer.
       * Here, only the instances the first slices miss pay its 0.02-0.04 s of CPU (docs/planner.md). */
      if (turn == 1) {
        uint64_t *ffail = NULL;
        gr = hk__plan_guillotine(p, HK_PLAN_FLUID_CUT_ROUND, HK_PLAN_FLUID_CUT_STEPS * (uint64_t)p->n, aim_end, best, &st.nodes, &ffail);
        free(ffail);
      }
      if (turn == 1 && gr == 0) {
        static const unsigned tier[] = HK_PLAN_TIER_ROUNDS;
        for (unsigned i = 0; i < sizeof tier / sizeof *tier && gr == 0 && hk__plan_clock(p) < aim_end; i++)
          gr = hk__plan_guillotine(p, tier[i], HK_PLAN_TIER_STEPS * (uint64_t)p->n, aim_end, best, &st.nodes, &gfail);
      }
      if (gr == 0 && hk__plan_clock(p) < aim_end)
        gr = hk__plan_guillotine(p, (unsigned)turn / 2, turn == 1 ? work - HK_PLAN_TIER_STEPS * (uint64_t)p->n : work, aim_end, best,
                                 &st.nodes, &gfail);
      if (turn == 1 && gr == 0 && hk__plan_clock(p) < aim_end)
        gr = hk__plan_guillotine(p, HK_PLAN_FLIP_CUT_ROUND, HK_PLAN_FLIP_CUT_STEPS * (uint64_t)p->n, aim_end, best, &st.nodes,
                                 &gfail);
      if (turn == 1 && gr == 0 && hk__plan_clock(p) < aim_end) {
        static const unsigned coarse_flip[] = HK_PLAN_COARSE_FLIP_ROUNDS;
        static const uint64_t flip_per[] = HK_PLAN_COARSE_FLIP_PER;
        _Static_assert(sizeof coarse_flip / sizeof coarse_flip[0] == sizeof flip_per / sizeof flip_per[0], "one budget per round");
        int cr = coarse_rounds(p, coarse_flip, sizeof coarse_flip / sizeof coarse_flip[0], flip_per, aim_end, best, &st.nodes);
        if (cr < 0) { rc = cr; goto out; }
        if (cr == 1) { *best_peak = p->lb; res->method = "guillotine"; }
        else if (hk__plan_clock(p) < aim_end)
          /* the fewest-buffers round (HK_PLAN_FEW_ROUND): the strips of few buffers first */
          gr = hk__plan_guillotine(p, HK_PLAN_FEW_ROUND, HK_PLAN_FEW_STEPS * (uint64_t)p->n, aim_end, best, &st.nodes, &gfail);
        if (cr != 1 && gr == 0 && hk__plan_clock(p) < aim_end)
          /* the height round (HK_PLAN_HEIGHT_ROUND): the thinnest strips by height first */
          gr = hk__plan_guillotine(p, HK_PLAN_HEIGHT_ROUND, HK_PLAN_HEIGHT_STEPS * (uint64_t)p->n, aim_end, best, &st.nodes, &gfail);
      }
      if (gr < 0) { rc = gr; goto out; }
      if (gr == 1) { *best_peak = p->lb; res->method = "guillotine"; }
      if (gr == 2) guillotine = false; /* exhausted: there is no guillotine packing */
      now = hk__plan_clock(p);
    }
  }
  if (*best_peak > aim && !(refuted && opt->capacity)) {
    int sr = hk__plan_search(p, prio, HK__SEARCH_BB, 0, deadline, opt->capacity, best, best_peak, &st);
    if (sr < 0) { rc = sr; goto out; }
    if (sr == 1) res->optimal = true;
  }
  if (refuted && opt->capacity) res->capacity_refuted = true;
out:
  res->nodes = st.nodes;
  free(st.nogoods);
  free(gfail);
  hk__plan_prob_free(&rev);
  return rc;
}

/* The heuristics' work budget for a time limit. Saturates: past ~4.6e11 s the product does not
 * fit 64 bits, and the conversion gave 0 (a budget of 1 unit: the heuristics stopped after their
 * first run). */
static uint64_t work_budget(double time_limit) {
  double w = time_limit * HK_PLAN_WORK_PER_S;
  return w < 0x1p63 ? (uint64_t)w + 1 : UINT64_MAX;
}

int hk_plan(const hk_plan_buffer *bufs, size_t n, const hk_plan_options *opt_in, uint64_t *offsets,
            hk_plan_result *res) {
  double w0 = hk__plan_now(), c0 = hk__plan_cpu_now(); /* (res->seconds is wall time either way) */
  hk_plan_options opt;
  if (opt_in) opt = *opt_in; else hk_plan_options_init(&opt);
  double t0 = opt.cpu_time ? c0 : w0; /* the deadlines' clock (hk__plan_clock) */
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
  p.cpu_clock = opt.cpu_time;
  res->lower_bound = p.lb;
  size_t m = p.n ? p.n : 1;
  hk__plan_run r = {
    .p = &p, .opt = &opt, .t0 = t0, .best_peak = 0, .best_fit = true, .method = "none",
    .deadline = opt.method == HK_PLAN_AUTO && opt.time_limit > 0 ? t0 + opt.time_limit : 0,
    .big = p.n > HK_PLAN_SEARCH_MAX,
    .work_limit = opt.method == HK_PLAN_AUTO && opt.time_limit > 0 ? work_budget(opt.time_limit) : 0,
  };
  r.best = malloc(m * sizeof *r.best);
  r.cur = malloc(m * sizeof *r.cur);
  r.order = malloc(m * sizeof *r.order);
  r.prio = malloc(m * sizeof *r.prio);
  r.best_order = malloc(m * sizeof *r.best_order);
  rc = HK_ENOMEM;
  if (!r.best || !r.cur || !r.order || !r.prio || !r.best_order) goto out;
  if (p.n > 0) {
    if ((rc = hk__plan_heuristics(&r)) != HK_OK) goto out;
    rc = HK_ENOMEM;
    res->method = r.method;
    bool fits = opt.capacity && r.best_peak <= opt.capacity; /* the budget is met: stop */
    bool hopeless = opt.capacity && opt.capacity < p.lb;
    if (opt.method == HK_PLAN_AUTO && opt.time_limit > 0 && r.best_peak > p.lb && !fits && !hopeless && !r.big) {
      uint64_t before = r.best_peak;
      if (search(&p, r.prio, &opt, t0, r.best, &r.best_peak, res) != HK_OK) goto out;
      if (r.best_peak < before && res->method == r.method) res->method = "search";
    }
  }
  for (size_t i = 0; i < n; i++) offsets[i] = 0;
  for (size_t i = 0; i < p.n; i++) offsets[p.orig[i]] = r.best[i];
  res->peak = r.best_peak;
  if (r.best_peak <= p.lb) res->optimal = true;
  res->fits = !opt.capacity || r.best_peak <= opt.capacity;
  if (opt.capacity && opt.capacity < p.lb) res->capacity_refuted = true;
  rc = HK_OK;
out:
  free(r.best); free(r.cur); free(r.order); free(r.prio); free(r.best_order);
  hk__plan_prob_free(&p);
  res->seconds = hk__plan_now() - w0;
  return rc;
}
