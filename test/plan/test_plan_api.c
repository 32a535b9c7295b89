/* The planner's library API: lower bound, placement validity, optimality on instances whose
 * optimum is known (perfect packings cut from a rectangle; brute force on tiny instances),
 * alignment, zero-size buffers, capacity, errors. */
#include <heapkit.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "gen.h"

static hk_plan_result plan(const hk_plan_buffer *b, size_t n, uint64_t *off, double tl, uint64_t cap, uint64_t align) {
  hk_plan_options o;
  hk_plan_options_init(&o);
  o.time_limit = tl;
  o.capacity = cap;
  o.align = align;
  hk_plan_result r;
  int rc = hk_plan(b, n, &o, off, &r);
  CHECK_MSG(rc == HK_OK, "hk_plan returned %d", rc);
  char msg[256];
  rc = hk_plan_validate(b, n, off, 0, align, msg, sizeof msg);
  CHECK_MSG(rc == HK_OK, "invalid placement: %s", msg);
  return r;
}

static void test_lower_bound(void) {
  /* [0,4) 10, [2,6) 5, [4,8) 7, [6,7) 0: at t in [2,4) 15, [4,6) 12 -> 15 */
  hk_plan_buffer b[] = {{0, 4, 10, 0}, {2, 6, 5, 0}, {4, 8, 7, 0}, {6, 7, 0, 0}};
  uint64_t lb = 0;
  CHECK(hk_plan_lower_bound(b, 4, &lb) == HK_OK && lb == 15);
  /* half-open: [0,2) and [2,4) never overlap */
  hk_plan_buffer c[] = {{0, 2, 8, 0}, {2, 4, 8, 0}};
  CHECK(hk_plan_lower_bound(c, 2, &lb) == HK_OK && lb == 8);
  uint64_t off[2];
  hk_plan_result r = plan(c, 2, off, 1, 0, 0);
  CHECK(r.peak == 8 && r.optimal && off[0] == 0 && off[1] == 0);
  CHECK(hk_plan_lower_bound(NULL, 0, &lb) == HK_OK && lb == 0);
}

static void test_zero_and_empty(void) {
  hk_plan_buffer b[] = {{0, 5, 0, 0}, {1, 3, 0, 0}};
  uint64_t off[2] = {99, 99};
  hk_plan_result r = plan(b, 2, off, 1, 0, 0);
  CHECK(r.peak == 0 && r.lower_bound == 0 && off[0] == 0 && off[1] == 0 && r.optimal);
  r = plan(NULL, 0, NULL, 1, 0, 0);
  CHECK(r.peak == 0);
  /* zero-size buffers mixed in: they conflict with nothing */
  hk_plan_buffer m[] = {{0, 10, 4, 0}, {0, 10, 0, 0}, {0, 10, 4, 0}};
  uint64_t o3[3];
  r = plan(m, 3, o3, 1, 0, 0);
  CHECK(r.peak == 8 && o3[1] == 0);
}

static void test_alignment(void) {
  /* three overlapping buffers of 3 bytes aligned to 8: offsets 0, 8, 16 -> peak 19 */
  hk_plan_buffer b[] = {{0, 4, 3, 0}, {0, 4, 3, 0}, {0, 4, 3, 0}};
  uint64_t off[3];
  hk_plan_result r = plan(b, 3, off, 1, 0, 8);
  CHECK(r.peak == 19);
  for (int i = 0; i < 3; i++) CHECK(off[i] % 8 == 0);
  /* per-buffer alignment overrides the default */
  hk_plan_buffer c[] = {{0, 4, 5, 64}, {0, 4, 5, 0}, {0, 4, 5, 0}};
  r = plan(c, 3, off, 1, 0, 0);
  CHECK(off[0] % 64 == 0);
  CHECK(r.peak == 15); /* the 64-aligned one at 0, the others at 5 and 10 */
  /* the validator rejects a misaligned offset */
  uint64_t badoff[3] = {0, 8, 17};
  char msg[256];
  CHECK(hk_plan_validate(b, 3, badoff, 0, 8, msg, sizeof msg) == HK_EINVAL);
  CHECK_CONTAINS(msg, "not a multiple of its alignment");
  /* random instances with alignment stay valid */
  for (uint64_t seed = 1; seed <= 5; seed++) {
    hk_plan_buffer r5[300];
    uint64_t o5[300];
    hkgen_random(r5, 300, 200, seed);
    for (int i = 0; i < 300; i++) r5[i].align = (i % 3 == 0) ? 256 : 0;
    plan(r5, 300, o5, 0.05, 0, 16);
    for (int i = 0; i < 300; i++) CHECK(o5[i] % (r5[i].align ? r5[i].align : 16) == 0);
  }
}

static void test_errors(void) {
  uint64_t off[2];
  hk_plan_result r;
  hk_plan_buffer empty[] = {{0, 4, 8, 0}, {5, 5, 8, 0}};
  CHECK(hk_plan(empty, 2, NULL, off, &r) == HK_EINVAL && r.bad_index == 1);
  hk_plan_buffer back[] = {{9, 4, 8, 0}};
  CHECK(hk_plan(back, 1, NULL, off, &r) == HK_EINVAL && r.bad_index == 0);
  hk_plan_buffer al[] = {{0, 4, 8, 0}, {0, 4, 8, 12}};
  CHECK(hk_plan(al, 2, NULL, off, &r) == HK_EINVAL && r.bad_index == 1);
  hk_plan_buffer huge[] = {{0, 4, UINT64_MAX / 2, 0}, {0, 4, UINT64_MAX / 2, 0}};
  CHECK(hk_plan(huge, 2, NULL, off, &r) == HK_EOVERFLOW);
  uint64_t lb;
  CHECK(hk_plan_lower_bound(huge, 2, &lb) == HK_EOVERFLOW);
  CHECK(hk_plan_lower_bound(empty, 2, &lb) == HK_EINVAL);
  CHECK(hk_plan(NULL, 3, NULL, off, &r) == HK_EINVAL);
  CHECK(hk_plan(al, 1, NULL, NULL, &r) == HK_EINVAL);
  hk_plan_options o;
  hk_plan_options_init(&o);
  o.time_limit = -1;
  CHECK(hk_plan(al, 1, &o, off, &r) == HK_EINVAL);
  hk_plan_options_init(&o);
  o.align = 6;
  CHECK(hk_plan(al, 1, &o, off, &r) == HK_EINVAL);
  hk_plan_options_init(&o);
  o.method = (hk_plan_method)99;
  CHECK(hk_plan(al, 1, &o, off, &r) == HK_EINVAL);
}

static void test_validator(void) {
  hk_plan_buffer b[] = {{0, 4, 10, 0}, {2, 6, 10, 0}, {6, 9, 10, 0}};
  uint64_t good[] = {0, 10, 0}, bad[] = {0, 5, 0};
  char msg[256];
  CHECK(hk_plan_validate(b, 3, good, 0, 0, msg, sizeof msg) == HK_OK);
  CHECK(hk_plan_validate(b, 3, good, 20, 0, msg, sizeof msg) == HK_OK);
  CHECK(hk_plan_validate(b, 3, bad, 0, 0, msg, sizeof msg) == HK_EINVAL);
  CHECK_CONTAINS(msg, "buffers 0 and 1 overlap in time [2, 4) and in memory [5, 10)");
  CHECK(hk_plan_validate(b, 3, good, 19, 0, msg, sizeof msg) == HK_EINVAL);
  CHECK_CONTAINS(msg, "beyond the capacity 19");
  /* buffer 2 starts when buffer 1 ends: no conflict at the same offset */
  uint64_t touch[] = {0, 10, 10};
  CHECK(hk_plan_validate(b, 3, touch, 0, 0, NULL, 0) == HK_OK);
}

/* The validator against the obvious quadratic check, on random (mostly invalid) placements. */
static void test_validator_random(void) {
  hkgen_rng rng = {5};
  int invalid = 0;
  for (int t = 0; t < 20000; t++) {
    size_t n = 1 + hkgen_below(&rng, 12);
    hk_plan_buffer b[12];
    uint64_t off[12];
    for (size_t i = 0; i < n; i++) {
      uint64_t lo = hkgen_below(&rng, 8);
      b[i] = (hk_plan_buffer){lo, lo + 1 + hkgen_below(&rng, 5), hkgen_below(&rng, 5), 0};
      off[i] = hkgen_below(&rng, 12);
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++)
      for (size_t j = i + 1; j < n; j++)
        if (b[i].size && b[j].size && b[i].lower < b[j].upper && b[j].lower < b[i].upper && off[i] < off[j] + b[j].size &&
            off[j] < off[i] + b[i].size)
          ok = false;
    int rc = hk_plan_validate(b, n, off, 0, 0, NULL, 0);
    CHECK_MSG((rc == HK_OK) == ok, "trial %d: validator says %d, quadratic check %d", t, rc, ok);
    invalid += !ok;
  }
  CHECK(invalid > 1000);
}

/* Perfect packings: the lower bound equals the capacity by construction, so the optimum is
 * known. Small ones must be solved exactly (they take milliseconds even under sanitizers; the
 * generous time limit only guards against a slow machine). */
static void test_perfect_packings(void) {
  int exact = 0, total = 0;
  for (size_t n = 10; n <= 60; n += 10) {
    for (uint64_t seed = 1; seed <= 6; seed++) {
      hk_plan_buffer b[60];
      uint64_t own[60], off[60];
      CHECK(hkgen_perfect(b, own, n, 4 * n, 1000 * n, 1, seed) == 0);
      char msg[256];
      CHECK_MSG(hk_plan_validate(b, n, own, 1000 * n, 0, msg, sizeof msg) == HK_OK, "generator: %s", msg);
      uint64_t lb;
      CHECK(hk_plan_lower_bound(b, n, &lb) == HK_OK && lb == 1000 * n);
      hk_plan_result r = plan(b, n, off, 20, 0, 0);
      total++;
      exact += r.peak == lb;
      CHECK_MSG(r.peak == lb && r.optimal, "n=%zu seed=%llu: peak %llu, bound %llu", n, (unsigned long long)seed,
                (unsigned long long)r.peak, (unsigned long long)lb);
    }
  }
  printf("perfect packings placed at the bound: %d/%d\n", exact, total);
  { /* hk_plan runs short rounds of the guillotine search before the bottom-up search: this one
     * (which the bottom-up search places after 0.02-0.07 s) is placed by the guillotine search's
     * first round in 1635 of its 100000 steps */
    static hk_plan_buffer big[400];
    static uint64_t boff[400];
    CHECK(hkgen_perfect(big, NULL, 400, 1600, 400000, 1, 4) == 0);
    hk_plan_result r = plan(big, 400, boff, 20, 0, 0);
    CHECK_MSG(r.peak == 400000 && strcmp(r.method, "guillotine") == 0, "400 seed 4: peak %llu by %s",
              (unsigned long long)r.peak, r.method);
    /* and a short round taking the larger subsets first: 400 seed 70, which the other rounds did
     * not place (and the bottom-up search only sometimes, near 1 s), is placed in its 17k steps */
    CHECK(hkgen_perfect(big, NULL, 400, 1600, 400000, 1, 70) == 0);
    r = plan(big, 400, boff, 20, 0, 0);
    CHECK_MSG(r.peak == 400000 && strcmp(r.method, "guillotine") == 0, "400 seed 70: peak %llu by %s",
              (unsigned long long)r.peak, r.method);
    /* and one of the thin round so: 500 seed 132 in its 12.6k steps, within the six short rounds
     * (at most 250 steps per buffer each, 1000 for the one with the first cut first; the four
     * complete ones took 1.4M more steps, 0.5 s), plus the bottom-up search's two short slices
     * (2 x 1/64 s: well under 200k nodes) */
    static hk_plan_buffer b5[500];
    static uint64_t o5[500];
    CHECK(hkgen_perfect(b5, NULL, 500, 2000, 500000, 1, 132) == 0);
    r = plan(b5, 500, o5, 20, 0, 0);
    CHECK_MSG(r.peak == 500000 && strcmp(r.method, "guillotine") == 0 && r.nodes <= (5 * 250 + 1000) * 500 + 200000,
              "500 seed 132: peak %llu by %s after %llu steps", (unsigned long long)r.peak, r.method,
              (unsigned long long)r.nodes);
    /* a short slice of the bottom-up search comes before the guillotine search's rounds with
     * the first cut first and on the coarse problem: 500 seed 106, which only the bottom-up
     * search places (in a few hundred nodes), is placed after the four plain short rounds'
     * 4 x 125k steps (it took 1.49M steps when the slice came after all the short rounds). The
     * slice lasts 1/64 s of wall time and needs ~1 ms: up to three tries on a loaded machine (the
     * steps before it are deterministic, so the old order fails all three); not in debug builds,
     * whose search is far slower. */
#if !defined(HK_PLAN_TEST_SCALE)
    for (int tries = 0; tries < 3; tries++) {
      CHECK(hkgen_perfect(b5, NULL, 500, 2000, 500000, 1, 106) == 0);
      r = plan(b5, 500, o5, 20, 0, 0);
      CHECK_MSG(r.peak == 500000, "500 seed 106: peak %llu", (unsigned long long)r.peak);
      if (strcmp(r.method, "search") == 0 && r.nodes < 4 * 250 * 500 + 100000) break;
      CHECK_MSG(tries < 2, "500 seed 106: placed by %s after %llu steps", r.method, (unsigned long long)r.nodes);
    }
#endif
    /* the first rotation round (b*'s, 5000 steps per buffer) comes before the round with the
     * shorter-lived buffers first (7000 per buffer): 500 seed 116, which the rotation round places,
     * took 5.55M steps in all when that round came first, 1.95M then (plus the search's nodes in
     * its first slices), and with the fluid round on the coarse problem before them (at most
     * 7000 steps per coarse buffer, 412 here: it fails in all of them) 4.93M instead of 8.4M. At
     * the default limit: a saturated machine may not get there in 1 s. */
    CHECK(hkgen_perfect(b5, NULL, 500, 2000, 500000, 1, 116) == 0);
    r = plan(b5, 500, o5, 1, 0, 0);
    if (r.peak == 500000)
      CHECK_MSG(strcmp(r.method, "guillotine") != 0 || r.nodes < 6500000, "500 seed 116: placed by %s after %llu steps",
                r.method, (unsigned long long)r.nodes);
    else
      printf("500 seed 116 not placed in 1 s (a loaded machine): the round order not checked\n");
    /* and the round with the shorter-lived buffers first, after the first slices: 400 seed 145
     * (0.23 s; nothing else placed it in 1 s) */
    CHECK(hkgen_perfect(big, NULL, 400, 1600, 400000, 1, 145) == 0);
    r = plan(big, 400, boff, 20, 0, 0);
    CHECK_MSG(r.peak == 400000 && strcmp(r.method, "guillotine") == 0, "400 seed 145: peak %llu by %s",
              (unsigned long long)r.peak, r.method);
    /* and the fluid round on the coarse problem, after the coarse rounds: 400 seed 121, which
     * nothing placed in 1 s before (nor the guillotine rounds in 30M steps), in its 1.8M steps,
     * before the bottom-up search's slices and the rotation rounds: the six short rounds (at most
     * 5 x 250 + 1000 steps per buffer), the two probe slices (2 x 1/64 s), the coarse rounds (4 x
     * 250 per coarse buffer) and it (at most 7000 per coarse buffer) take well under 4.5M */
    CHECK(hkgen_perfect(big, NULL, 400, 1600, 400000, 1, 121) == 0);
    r = plan(big, 400, boff, 20, 0, 0);
    CHECK_MSG(r.peak == 400000 && strcmp(r.method, "guillotine") == 0 && r.nodes < 4500000,
              "400 seed 121: peak %llu by %s after %llu steps", (unsigned long long)r.peak, r.method, (unsigned long long)r.nodes);
  }
  /* sizes in units of 64 with 64-byte alignment: still perfect */
  hk_plan_buffer b[40];
  uint64_t off[40];
  hkgen_perfect(b, NULL, 40, 160, 400, 64, 9);
  hk_plan_result r = plan(b, 40, off, 20, 0, 64);
  CHECK(r.peak == r.lower_bound);
}

/* Brute force on tiny instances: the exact optimum, compared with the search's proven one. */
static uint64_t bf_best;
static void bf(const hk_plan_buffer *b, size_t n, size_t i, uint64_t *off, uint64_t ub, uint64_t peak) {
  if (peak >= bf_best) return;
  if (i == n) { bf_best = peak; return; }
  uint64_t a = b[i].align ? b[i].align : 1;
  for (uint64_t o = 0; o + b[i].size <= ub; o += a) {
    bool ok = true;
    for (size_t j = 0; j < i && ok; j++)
      if (b[j].lower < b[i].upper && b[i].lower < b[j].upper && off[j] < o + b[i].size && o < off[j] + b[j].size) ok = false;
    if (!ok) continue;
    off[i] = o;
    bf(b, n, i + 1, off, ub, peak > o + b[i].size ? peak : o + b[i].size);
  }
}

static void test_brute_force(void) {
  hkgen_rng rng = {12345};
  for (int t = 0; t < 300; t++) {
    size_t n = 3 + hkgen_below(&rng, 5);
    hk_plan_buffer b[8];
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
      uint64_t lo = hkgen_below(&rng, 6);
      b[i] = (hk_plan_buffer){lo, lo + 1 + hkgen_below(&rng, 4), 1 + hkgen_below(&rng, 5), 0};
      if (t % 3 == 0) b[i].align = (uint64_t)1 << hkgen_below(&rng, 3);
      sum += b[i].size + 4;
    }
    uint64_t off[8], tmp[8];
    bf_best = UINT64_MAX;
    bf(b, n, 0, tmp, sum, 0);
    hk_plan_result r = plan(b, n, off, 10, 0, 0);
    CHECK_MSG(r.peak == bf_best, "trial %d: planner %llu, brute force %llu", t, (unsigned long long)r.peak,
              (unsigned long long)bf_best);
    CHECK_MSG(r.optimal, "trial %d: optimum not proven", t);
  }
}

static void test_capacity(void) {
  hk_plan_buffer b[50];
  uint64_t off[50];
  hkgen_perfect(b, NULL, 50, 200, 50000, 1, 3);
  hk_plan_result r = plan(b, 50, off, 20, 50000, 0);
  CHECK(r.fits && r.peak <= 50000);
  r = plan(b, 50, off, 0, 1000000, 0); /* heuristics alone fit a loose budget */
  CHECK(r.fits && r.nodes == 0);
  r = plan(b, 50, off, 1, 49999, 0); /* below the bound: impossible, said at once */
  CHECK(!r.fits && r.capacity_refuted && r.peak > 49999);
  /* a small instance is solved to proven optimality */
  hk_plan_buffer c[] = {{0, 2, 6, 0}, {1, 4, 6, 0}, {3, 5, 5, 0}, {0, 5, 1, 0}};
  uint64_t o4[4];
  r = plan(c, 4, o4, 5, 0, 0);
  CHECK(r.optimal);
}

/* Debug builds (invariant checks on every allocation) divide the big instances by this. */
#ifndef HK_PLAN_TEST_SCALE
#define HK_PLAN_TEST_SCALE 1
#endif

static void test_large_and_deterministic(void) {
  size_t n = 100000 / HK_PLAN_TEST_SCALE;
  hk_plan_buffer *b = malloc(n * sizeof *b);
  uint64_t *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
  CHECK(b && o1 && o2);
  if (!b || !o1 || !o2) return;
  hkgen_model(b, n, 77);
  hk_plan_options o;
  hk_plan_options_init(&o);
  o.method = HK_PLAN_GREEDY_SIZE;
  hk_plan_result r1, r2;
  CHECK(hk_plan(b, n, &o, o1, &r1) == HK_OK);
  char msg[256];
  CHECK_MSG(hk_plan_validate(b, n, o1, 0, 0, msg, sizeof msg) == HK_OK, "%s", msg);
  CHECK(r1.peak >= r1.lower_bound);
  printf("%zu model-like buffers, greedy by size: %.3f s, peak/bound %.4f\n", n, r1.seconds,
         (double)r1.peak / (double)r1.lower_bound);
  CHECK(hk_plan(b, n, &o, o2, &r2) == HK_OK);
  CHECK(memcmp(o1, o2, n * sizeof *o1) == 0 && r1.peak == r2.peak);
  /* a fragmenting mix (sizes over five orders of magnitude): every heuristic stays valid */
  n = 20000 / HK_PLAN_TEST_SCALE;
  hkgen_random(b, n, n / 5, 5);
  o.method = HK_PLAN_HEURISTICS;
  CHECK(hk_plan(b, n, &o, o1, &r1) == HK_OK);
  CHECK_MSG(hk_plan_validate(b, n, o1, 0, 0, msg, sizeof msg) == HK_OK, "%s", msg);
  free(b);
  free(o1);
  free(o2);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#define RUN(f) do { double t_ = now(); f(); printf("  %-30s %.2f s\n", #f, now() - t_); } while (0)

/* A time limit past ~4.6e11 s overflowed the heuristics' work budget (time x 40M units, converted
 * to 64 bits: 1 unit), so the heuristics stopped after their first run and the search took over:
 * a "practically unlimited" time gave another placement than a long one, or searched for ever
 * for a capacity the heuristics reach. The budget now saturates. */
static void test_huge_time_limit(void) {
  size_t n = 2000;
  hk_plan_buffer *b = malloc(n * sizeof *b);
  uint64_t *off = malloc(n * sizeof *off);
  hkgen_rng g = {7};
  for (size_t i = 0; i < n; i++) {
    uint64_t l = hkgen_below(&g, 5000);
    b[i] = (hk_plan_buffer){l, l + 1 + hkgen_below(&g, 300), 16 * (1 + hkgen_below(&g, 1000)), 0};
  }
  hk_plan_result r0 = plan(b, n, off, 0, 0, 0); /* every heuristic, no search */
  double limits[] = {1e6, 1e12, 1e300};
  for (int k = 0; k < 3; k++) {
    hk_plan_result r = plan(b, n, off, limits[k], r0.peak, 0);
    CHECK_MSG(r.fits && r.peak == r0.peak && strcmp(r.method, r0.method) == 0,
              "time limit %g: peak %llu by %s, the heuristics alone %llu by %s", limits[k],
              (unsigned long long)r.peak, r.method, (unsigned long long)r0.peak, r0.method);
  }
  free(b);
  free(off);
}

int main(void) {
  RUN(test_lower_bound);
  RUN(test_zero_and_empty);
  RUN(test_alignment);
  RUN(test_errors);
  RUN(test_huge_time_limit);
  RUN(test_validator);
  RUN(test_validator_random);
  RUN(test_perfect_packings);
  RUN(test_brute_force);
  RUN(test_capacity);
  RUN(test_large_and_deterministic);
  TEST_DONE("test_plan_api");
}
