/* Internal to the static planner (src/plan/). The planner works on a "problem": the buffers of
 * non-zero size, renumbered 0..n-1, with their lifetimes compressed to section indices.
 *
 * Glossary
 *   section   an elementary time interval [t_j, t_{j+1}) between consecutive distinct lower/upper
 *             values; the set of live buffers is constant inside a section.
 *   floor     the lowest offset at which a buffer (or a section) can take more memory given what
 *             is already placed: the highest top (offset + size) of placed buffers overlapping it.
 *   peak      max(offset + size); lower bound = max over sections of the total size live there.
 *
 * Invariants of hk__plan_prob (checked by hk__plan_prob_is_valid):
 *   - for every buffer i: sl[i] < su[i] <= nsec, size[i] > 0, align[i] a power of two;
 *   - lb == max over sections s of the sum of size[i] with sl[i] <= s < su[i];
 *   - gran divides every size and every alignment > 1 (so every canonical offset is a multiple);
 *   - tight == (every section's total size equals lb).
 */
#ifndef HK_PLAN_INTERNAL_H
#define HK_PLAN_INTERNAL_H
#if !defined(HK_BUILDING_LIBRARY) && !defined(HK_BUILDING_TOOL) && !defined(HK_INTERNAL_TEST)
#error "src/ headers are internal to heapkit: include <heapkit.h> instead"
#endif

#include <heapkit.h>
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#ifndef HK_DEBUG
#define HK_DEBUG 0
#endif

/* The planner keeps its own assertion so that it stays pure computation on top of libc alone. */
void hk__plan_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn, visibility("hidden")));
#define hk__plan_check(e) ((e) ? (void)0 : hk__plan_assert_fail(#e, __FILE__, __LINE__))
#if HK_DEBUG >= 1
#define hk_plan_assert(e) hk__plan_check(e)
#else
#define hk_plan_assert(e) ((void)0)
#endif
#if HK_DEBUG >= 3
#define hk_plan_assert_expensive(e) hk__plan_check(e)
#else
#define hk_plan_assert_expensive(e) ((void)0)
#endif

#define HK_PLAN_HIDDEN __attribute__((visibility("hidden")))

typedef struct hk__plan_prob {
  size_t n;          /* buffers with size > 0 */
  size_t nsec;       /* sections */
  uint32_t *orig;    /* orig[i]: index in the caller's array */
  uint32_t *sl, *su; /* section range [sl, su) */
  uint64_t *size;
  uint64_t *align;   /* >= 1, power of two */
  uint64_t *len;     /* lifetime in original time units (upper - lower) */
  uint64_t lb;       /* lower bound */
  uint64_t gran;     /* gcd of sizes and alignments: offsets move in these steps */
  bool tight;        /* every section holds exactly lb: a placement at the bound wastes nothing */
  bool cpu_clock;    /* deadlines are in the calling thread's CPU time (hk_plan_options.cpu_time) */
} hk__plan_prob;

/* Build the problem from the caller's buffers (validated already). Returns HK_OK or HK_ENOMEM. */
HK_PLAN_HIDDEN int hk__plan_prob_init(hk__plan_prob *p, const hk_plan_buffer *bufs, size_t n,
                                      uint64_t default_align);
HK_PLAN_HIDDEN void hk__plan_prob_free(hk__plan_prob *p);
HK_PLAN_HIDDEN bool hk__plan_prob_is_valid(const hk__plan_prob *p);

/* Peak of offsets off[0..n-1] of the problem's buffers. */
HK_PLAN_HIDDEN uint64_t hk__plan_peak(const hk__plan_prob *p, const uint64_t *off);

/* Greedy orders. */
typedef enum hk__plan_order {
  HK__ORDER_SIZE, HK__ORDER_LIFETIME, HK__ORDER_AREA, HK__ORDER_CONFLICT, HK__ORDER_PEAK, HK__ORDER_SIZE_LONG,
  HK__ORDER_LONG_FIRST, HK__ORDER__COUNT
} hk__plan_order;
HK_PLAN_HIDDEN const char *hk__plan_order_name(hk__plan_order o, bool best_fit);
/* Fill order[0..n-1] with buffer indices sorted by the key (descending, deterministic ties). */
HK_PLAN_HIDDEN int hk__plan_make_order(const hk__plan_prob *p, hk__plan_order o, uint32_t *order);

/* Place buffers one by one in `order`, each in the gap of the already-placed buffers it overlaps
 * in time: the smallest gap that fits (best_fit) or the lowest one (first fit). O(n log n + K log K)
 * where K is the number of (placed, time-overlapping) pairs visited. Writes off[], returns HK_OK
 * or HK_ENOMEM. */
/* Every buffer on top of what is placed during its lifetime (no hole reuse): O(n log n) always.
 * The fallback when the greedy heuristics would overrun the time limit. */
HK_PLAN_HIDDEN int hk__plan_skyline(const hk__plan_prob *p, const uint32_t *order, uint64_t *off);

typedef struct hk__plan_greedy hk__plan_greedy;
HK_PLAN_HIDDEN hk__plan_greedy *hk__plan_greedy_new(const hk__plan_prob *p);
HK_PLAN_HIDDEN void hk__plan_greedy_free(hk__plan_greedy *g);
HK_PLAN_HIDDEN int hk__plan_greedy_run(hk__plan_greedy *g, const uint32_t *order, bool best_fit,
                                       double deadline, uint64_t *off);
/* The work done by every run of g so far (buffers placed plus occupied runs visited): a
 * deterministic clock, about proportional to the time (HK_PLAN_WORK_PER_S per second). */
HK_PLAN_HIDDEN uint64_t hk__plan_greedy_work(const hk__plan_greedy *g);
/* hk__plan_greedy_run returns this (positive) when it passed the deadline (0 = none) unfinished. */
#define HK__PLAN_LATE 1

/* Anytime exact search (branch and bound over canonical placements, see search.c).
 * On entry *best_peak is the peak of best_off (a valid placement); better placements found are
 * written there. Modes: HK__SEARCH_LB aims only at the lower bound (restarts until the deadline);
 * HK__SEARCH_BB runs one complete branch and bound below *best_peak; HK__SEARCH_BOTH splits the
 * time between the two. turn varies the random tie-breaks between calls. stop_at: stop once a placement with peak <= stop_at is known (0 = never).
 * Returns 1 if *best_peak is proven optimal, 2 if (LB mode) the lower bound is proven out of
 * reach, 0 if the deadline came first, or HK_ENOMEM. */
typedef enum hk__plan_search_mode { HK__SEARCH_BOTH, HK__SEARCH_LB, HK__SEARCH_BB } hk__plan_search_mode;
/* Carried from one call to the next: the node count, and the perfect mode's nogood table (the
 * first LB call on a tight problem allocates it; the caller frees it once done). */
typedef struct hk__plan_search_stats { uint64_t nodes; uint64_t *nogoods; } hk__plan_search_stats;
HK_PLAN_HIDDEN int hk__plan_search(const hk__plan_prob *p, const uint32_t *prio, hk__plan_search_mode mode,
                                   unsigned turn, double deadline, uint64_t stop_at, uint64_t *best_off, uint64_t *best_peak,
                                   hk__plan_search_stats *st);
/* The same problem with time reversed (section x becomes nsec - 1 - x). A placement is valid for
 * one iff it is valid for the other; the search's left-to-right order makes different mistakes
 * on each, so alternating them cuts the heavy tail of its running time. */
HK_PLAN_HIDDEN int hk__plan_prob_reverse(const hk__plan_prob *p, hk__plan_prob *out);
HK_PLAN_HIDDEN double hk__plan_now(void);
/* The calling thread's CPU time, and the clock p's deadlines are in: hk__plan_now(), or the
 * thread's CPU time when p->cpu_clock (hk_plan_options.cpu_time). */
HK_PLAN_HIDDEN double hk__plan_cpu_now(void);
HK_PLAN_HIDDEN double hk__plan_clock(const hk__plan_prob *p);

/* Top-down search for a guillotine packing at the lower bound of a tight problem (guillotine.c):
 * time cuts, full-width buffers, then the lowest strip's set by subset sums at each boundary. The
 * round picks which strip goes lowest (even: the one holding the largest buffer at the window's
 * end; odd: the thinnest first) and, in rounds 2 and 3 of every 4, enumerates from the window's
 * other end; with HK_PLAN_GUILLOTINE_LARGE, it tries the larger subsets at each boundary first,
 * with HK_PLAN_GUILLOTINE_SHORT the shorter-lived buffers, with HK_PLAN_GUILLOTINE_CUT the strip's first
 * time cut before its buffers; all are complete. Gives up after node_limit nodes or at the
 * deadline; adds its nodes to *nodes. Returns 1 (off[] holds a packing at the bound), 2
 * (exhausted: no guillotine packing exists), 0 (gave up or not applicable: an alignment above 1,
 * a problem that is not tight) or HK_ENOMEM. *fail is its table of failed states: NULL on the
 * first call (it is allocated then; the caller frees it), then passed again to later calls on the
 * same problem (same orientation) so that they skip what failed before. */
/* A round flag: at each boundary the strip's larger subsets first (complete too; on 400 buffers
 * seed 70 it places what the other rounds miss, but it is slower on most instances). */
#define HK_PLAN_GUILLOTINE_LARGE 8u
/* A round flag: a boundary's items by lifetime, then size (b* round only; complete too; on 400
 * buffers seed 145 it places what the other rounds miss). */
#define HK_PLAN_GUILLOTINE_SHORT 16u
/* A round flag: the lowest strip's first time cut is chosen before its buffers (complete too; on
 * 400 buffers seed 46 it places what the other rounds miss). */
#define HK_PLAN_GUILLOTINE_CUT 32u
/* A round flag: the single-section buffers taken as amounts per section, assigned at the end (b*
 * rounds only; on 400 buffers seed 121 it places what the other rounds miss). Its failures depend
 * on the other pieces of a section, so it never returns 2, and it needs a table of its own. */
#define HK_PLAN_GUILLOTINE_FLUID 64u
/* A round flag: the lowest strip is the one with the fewest buffers, by levels of a cap on their
 * count (complete: the last level has none). */
#define HK_PLAN_GUILLOTINE_FEW 128u
/* A round flag for the thin rounds: their levels cap the strip's height (1, 2, 4... then none; a
 * level takes only buffers up to its cap), not the number of smallest buffers it may take
 * (complete: the last level has no cap). */
#define HK_PLAN_GUILLOTINE_HEIGHT 256u
/* hk_plan's budget per coarse buffer for its fluid round on the coarse problem (400 seed 121
 * needs 5462, 500 seed 109 5635; a failing round, ~2.2M steps on 400 buffers, takes ~0.1 s of CPU). */
#ifndef HK_PLAN_GUILLOTINE_FLUID_STEPS
#define HK_PLAN_GUILLOTINE_FLUID_STEPS 7000
#endif
/* hk_plan's first budget for it, per buffer, in buffers chosen by its enumeration (about 0.12 s
 * on 400 buffers on the shared, loaded machine); it doubles at each round. */
#define HK_PLAN_GUILLOTINE_WORK 5000
/* hk_plan's budget per buffer for each of the four short rounds it runs before anything else. */
#ifndef HK_PLAN_GUILLOTINE_FIRST
#define HK_PLAN_GUILLOTINE_FIRST 250
#endif
/* ... and for the one with the first cut first (500 buffers seeds 226 and 228 need 789 and 437;
 * at 250, 500 seeds 151-250 gave 97/100 in hk_plan, at 1000 99/100, the other sizes and ranges
 * the same counts and times within the noise, docs/planner.md). */
#ifndef HK_PLAN_GUILLOTINE_CUT_FIRST
#define HK_PLAN_GUILLOTINE_CUT_FIRST 1000
#endif
/* hk_plan's short rounds, in this order, before anything else: HK_PLAN_GUILLOTINE_FIRST steps per
 * buffer each, but HK_PLAN_GUILLOTINE_CUT_FIRST for the fifth (the bottom-up search's probe slices
 * come before it). The last one (the thin strips with the larger subsets and the first cut first)
 * places 400 seed 381 in 16 steps per buffer, which waited 0.74 s of CPU for a rotation round. */
#define HK_PLAN_FIRST_ROUNDS                                                                                   \
  {0, 1, 2, 3, HK_PLAN_GUILLOTINE_LARGE | HK_PLAN_GUILLOTINE_CUT, HK_PLAN_GUILLOTINE_LARGE | 1,                 \
   HK_PLAN_GUILLOTINE_LARGE | HK_PLAN_GUILLOTINE_CUT | 1}
/* After the bottom-up search's first pair of slices: a tier of rounds with HK_PLAN_TIER_STEPS per
 * buffer each (one table), then the first rotation round (round 0, HK_PLAN_GUILLOTINE_WORK per
 * buffer less the tier's), then HK_PLAN_FLIP_CUT_ROUND with HK_PLAN_FLIP_CUT_STEPS per buffer, then
 * HK_PLAN_COARSE_FLIP_ROUND on the coarse problem with HK_PLAN_COARSE_FLIP_STEPS per coarse buffer
 * (a table of its own). The running time of one round is heavy-tailed and which variant is quick
 * differs from instance to instance (docs/planner.md: 400 seed 253 is placed by the flip-cut round
 * in 4190 steps per buffer alone, 1680 after the rounds before it, by no other round in 10000; 342 only by the coarse round, 8739 per
 * coarse buffer), so many variants with a modest budget each beat one variant with a large one. */
#define HK_PLAN_TIER_ROUNDS                                                                                    \
  {0, 1, 2, 3, HK_PLAN_GUILLOTINE_CUT | 1, HK_PLAN_GUILLOTINE_CUT | HK_PLAN_GUILLOTINE_LARGE | 2}
#ifndef HK_PLAN_TIER_STEPS
#define HK_PLAN_TIER_STEPS 1000
#endif
/* The first rotation round gets HK_PLAN_GUILLOTINE_WORK less the tier's share per buffer: an
 * override at build time must leave it something (a larger tier would wrap that budget around). */
_Static_assert(HK_PLAN_TIER_STEPS < HK_PLAN_GUILLOTINE_WORK, "HK_PLAN_TIER_STEPS must be below HK_PLAN_GUILLOTINE_WORK");
#define HK_PLAN_FLIP_CUT_ROUND (HK_PLAN_GUILLOTINE_CUT | HK_PLAN_GUILLOTINE_LARGE | 2)
#define HK_PLAN_FLIP_CUT_STEPS 2500
#define HK_PLAN_COARSE_FLIP_ROUND (HK_PLAN_GUILLOTINE_LARGE | 2)
#define HK_PLAN_COARSE_FLIP_STEPS 10000
/* ... and after it, in its table, HK_PLAN_FLIP_CUT_ROUND on the coarse problem: 400 seed 1065,
 * which nothing else placed with 8000-10000 steps per buffer, in 2084 steps per coarse buffer
 * (docs/planner.md). */
#ifndef HK_PLAN_COARSE_FLIP_CUT_STEPS
#define HK_PLAN_COARSE_FLIP_CUT_STEPS 2500
#endif
/* The coarse rounds hk_plan runs after the tier, in one table, with their steps per coarse
 * buffer: one list for plan.c and for test_plan_search, so that the test checks the schedule
 * hk_plan runs and not a copy of it. */
#define HK_PLAN_COARSE_FLIP_ROUNDS {HK_PLAN_COARSE_FLIP_ROUND, HK_PLAN_FLIP_CUT_ROUND}
#define HK_PLAN_COARSE_FLIP_PER {HK_PLAN_COARSE_FLIP_STEPS, HK_PLAN_COARSE_FLIP_CUT_STEPS}
/* ... and, when the coarse rounds fail too, the round with the fewest-buffers strips first
 * (HK_PLAN_GUILLOTINE_FEW) with HK_PLAN_FEW_STEPS per buffer. */
#define HK_PLAN_FEW_ROUND HK_PLAN_GUILLOTINE_FEW
/* Before the tier (after the bottom-up search's first pair of slices): a fluid round on the problem
 * with the first cut first and the larger subsets first, HK_PLAN_FLUID_CUT_STEPS per buffer, in a
 * table of its own (300 seed 1130 needs 1199; where it fails it costs 0.02-0.04 s of CPU on 400 and
 * 500 buffers). */
#define HK_PLAN_FLUID_CUT_ROUND (HK_PLAN_GUILLOTINE_FLUID | HK_PLAN_GUILLOTINE_CUT | HK_PLAN_GUILLOTINE_LARGE)
#ifndef HK_PLAN_FLUID_CUT_STEPS
#define HK_PLAN_FLUID_CUT_STEPS 1500
#endif
/* ... and, when that fails too, the thin round with height levels (HK_PLAN_GUILLOTINE_HEIGHT),
 * HK_PLAN_HEIGHT_STEPS per buffer. */
#define HK_PLAN_HEIGHT_ROUND (HK_PLAN_GUILLOTINE_HEIGHT | 1u)
#ifndef HK_PLAN_HEIGHT_STEPS
#define HK_PLAN_HEIGHT_STEPS 3000
#endif
#ifndef HK_PLAN_FEW_STEPS
#define HK_PLAN_FEW_STEPS 8000
#endif
HK_PLAN_HIDDEN int hk__plan_guillotine(const hk__plan_prob *p, unsigned round, uint64_t node_limit, double deadline, uint64_t *off,
                                       uint64_t *nodes, uint64_t **fail);

/* The problem with chains of equal-size buffers, each starting where the previous one ends (and
 * the only one of its size ending or starting there), merged into one buffer (coarsen.c). map[i]
 * (p->n entries) receives buffer i's buffer in *out; a placement of *out unfolds into one of p
 * (off[i] = coarse_off[map[i]]) with the same peak. Returns HK_OK, HK_ENOMEM or HK_EINVAL (too
 * many sections or buffers for its keys: not applied). */
HK_PLAN_HIDDEN int hk__plan_coarsen(const hk__plan_prob *p, hk__plan_prob *out, uint32_t *map);

/* Above this many non-zero buffers a search node costs too much to be worth it in a second. */
#define HK_PLAN_SEARCH_MAX 4000

/* The heuristics' work budget per second of time limit, in the greedy's units
 * (hk__plan_greedy_work): about two thirds of what one core of the machine it was measured on does
 * in a second (52-68M on the model traces' greedy runs), so that on a quiet or moderately loaded
 * machine the budget, not the clock, ends the heuristic phase and the result does not depend on
 * the load; the wall-clock limit stays the outer bound. */
#ifndef HK_PLAN_WORK_PER_S
#define HK_PLAN_WORK_PER_S 40000000.0
#endif

/* One hk_plan call's working state, shared by the heuristics driver and plan.c. */
typedef struct hk__plan_run {
  const hk__plan_prob *p;
  const hk_plan_options *opt;
  double t0, deadline;  /* deadline: when heuristic runs must stop (0 = never) */
  uint64_t work_limit;  /* the heuristics' budget in greedy work (0 = none): time_limit x HK_PLAN_WORK_PER_S */
  uint64_t work_extra;  /* work done outside the greedy runs (the squeaky wheel's sorts) */
  bool big;             /* too big to search */
  uint64_t *best, *cur; /* offsets: best so far, scratch */
  uint32_t *order, *prio, *best_order; /* scratch order, size order, order that gave best */
  bool best_fit;        /* the fit that gave best */
  uint64_t best_peak;
  const char *method;   /* what gave best */
} hk__plan_run;
/* Skyline fallback (when timed), the heuristic portfolio and, on big problems, the squeaky wheel.
 * Fills best, best_peak, method and prio (the size order). Returns HK_OK or HK_ENOMEM. */
HK_PLAN_HIDDEN int hk__plan_heuristics(hk__plan_run *r);

/* A lossy set of nonzero 64-bit keys (states known to fail): an open-addressed table of mask + 1
 * words, each key looked for in its home slot and the next three; a full run overwrites the home
 * slot (forgetting a failure only costs a repeated search). */
static inline bool hk__plan_keyset_has(const uint64_t *t, size_t mask, uint64_t k) {
  for (size_t i = 0; i < 4; i++)
    if (t[(k + i) & mask] == k) return true;
  return false;
}
static inline void hk__plan_keyset_add(uint64_t *t, size_t mask, uint64_t k) {
  size_t at = k & mask;
  for (size_t i = 0; i < 4; i++)
    if (!t[(k + i) & mask]) {
      at = (k + i) & mask;
      break;
    }
  t[at] = k;
}

/* Sorting helpers (no qsort context pointer in C11). */
typedef struct hk__plan_kv { uint64_t key; uint64_t val; } hk__plan_kv;
HK_PLAN_HIDDEN void hk__plan_sort_kv(hk__plan_kv *a, size_t n);

#endif
