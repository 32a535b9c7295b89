/* Longer soak for the planner (run by test/plan/stress.sh, not by ctest): random instances of
 * every kind until the time is up; every placement validated, every proven optimum checked
 * against brute force or the known optimum, capacities and CSV round trips exercised.
 * Usage: test_plan_stress SECONDS [SEED] */
#include <heapkit.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "gen.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t bf_best;
static void bf(const hk_plan_buffer *b, size_t n, size_t i, uint64_t *off, uint64_t ub, uint64_t peak, uint64_t dal) {
  if (peak >= bf_best) return;
  if (i == n) { bf_best = peak; return; }
  uint64_t a = b[i].align ? b[i].align : (dal ? dal : 1);
  for (uint64_t o = 0; o + b[i].size <= ub; o += a) {
    bool ok = true;
    for (size_t j = 0; j < i && ok; j++)
      if (b[j].size && b[i].size && b[j].lower < b[i].upper && b[i].lower < b[j].upper && off[j] < o + b[i].size &&
          o < off[j] + b[j].size)
        ok = false;
    if (!ok) continue;
    off[i] = o;
    bf(b, n, i + 1, off, ub, peak > o + b[i].size ? peak : o + b[i].size, dal);
    if (b[i].size == 0) break;
  }
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 60;
  hkgen_rng rng = {argc > 2 ? strtoull(argv[2], NULL, 10) : 99};
  double end = now() + secs;
  unsigned long rounds[4] = {0}, at_bound = 0, perfect = 0;
  static hk_plan_buffer b[5000];
  static uint64_t off[5000], tmp[16];
  char msg[256];
  while (now() < end && hkt_failures < 20) {
    int kind = (int)hkgen_below(&rng, 4);
    rounds[kind]++;
    hk_plan_options o;
    hk_plan_options_init(&o);
    hk_plan_result r;
    if (kind == 0) { /* tiny: brute force */
      size_t n = 2 + hkgen_below(&rng, 6);
      uint64_t sum = 0;
      o.align = hkgen_below(&rng, 4) == 0 ? 2 : 0;
      for (size_t i = 0; i < n; i++) {
        uint64_t lo = hkgen_below(&rng, 6);
        b[i] = (hk_plan_buffer){lo, lo + 1 + hkgen_below(&rng, 4), hkgen_below(&rng, 6), 0};
        if (hkgen_below(&rng, 5) == 0) b[i].align = 4;
        sum += b[i].size + 4;
      }
      o.time_limit = 10;
      CHECK(hk_plan(b, n, &o, off, &r) == HK_OK);
      CHECK_MSG(hk_plan_validate(b, n, off, 0, o.align, msg, sizeof msg) == HK_OK, "%s", msg);
      bf_best = UINT64_MAX;
      bf(b, n, 0, tmp, sum, 0, o.align);
      CHECK_MSG(r.optimal && r.peak == bf_best, "planner %llu (optimal %d), brute force %llu", (unsigned long long)r.peak,
                r.optimal, (unsigned long long)bf_best);
    } else if (kind == 1) { /* perfect packing */
      size_t n = 20 + hkgen_below(&rng, 380);
      uint64_t unit = hkgen_below(&rng, 3) == 0 ? 16 : 1;
      hkgen_perfect(b, NULL, n, 2 * n + hkgen_below(&rng, 4 * n), 1000 * n, unit, hkgen_next(&rng));
      o.time_limit = 0.5;
      o.align = unit;
      CHECK(hk_plan(b, n, &o, off, &r) == HK_OK);
      CHECK_MSG(hk_plan_validate(b, n, off, 0, o.align, msg, sizeof msg) == HK_OK, "%s", msg);
      CHECK(r.lower_bound == 1000 * n * unit && r.peak >= r.lower_bound);
      CHECK_MSG(!r.optimal || r.peak == r.lower_bound, "claims optimal at %llu above the known optimum %llu",
                (unsigned long long)r.peak, (unsigned long long)r.lower_bound);
      perfect++;
      at_bound += r.peak == r.lower_bound;
      /* a capacity at the bound: fits or not, never a wrong claim */
      o.capacity = r.lower_bound;
      o.time_limit = 0.1;
      CHECK(hk_plan(b, n, &o, off, &r) == HK_OK);
      CHECK(!r.capacity_refuted);
      if (r.fits) CHECK(hk_plan_validate(b, n, off, o.capacity, o.align, NULL, 0) == HK_OK);
    } else if (kind == 2) { /* random mixes with alignment and zero sizes */
      size_t n = 1 + hkgen_below(&rng, 5000);
      if (hkgen_below(&rng, 2)) hkgen_model(b, n, hkgen_next(&rng)); else hkgen_random(b, n, 1 + n / 5, hkgen_next(&rng));
      for (size_t i = 0; i < n; i++) {
        if (hkgen_below(&rng, 20) == 0) b[i].size = 0;
        if (hkgen_below(&rng, 10) == 0) b[i].align = (uint64_t)1 << hkgen_below(&rng, 12);
      }
      o.align = hkgen_below(&rng, 2) ? 8 : 0;
      o.time_limit = 0.2;
      o.method = (hk_plan_method)hkgen_below(&rng, HK_PLAN_METHOD__COUNT);
      CHECK(hk_plan(b, n, &o, off, &r) == HK_OK);
      CHECK_MSG(hk_plan_validate(b, n, off, 0, o.align, msg, sizeof msg) == HK_OK, "%s", msg);
      uint64_t lb;
      CHECK(hk_plan_lower_bound(b, n, &lb) == HK_OK && lb == r.lower_bound && r.peak >= lb);
    } else { /* CSV round trip */
      size_t n = 1 + hkgen_below(&rng, 2000);
      hkgen_model(b, n, hkgen_next(&rng));
      hk_plan_trace t = {b, NULL, NULL, n, false}, u;
      char **ids = malloc(n * sizeof *ids);
      for (size_t i = 0; i < n; i++) { ids[i] = malloc(24); snprintf(ids[i], 24, "b%zu", i); off[i] = i * 3; }
      t.ids = ids;
      char *buf = NULL;
      size_t len = 0;
      FILE *w = open_memstream(&buf, &len);
      CHECK(hk_plan_csv_write(w, &t, off) == HK_OK);
      fclose(w);
      FILE *rd = fmemopen(buf, len, "r");
      hk_plan_csv_error e;
      CHECK(hk_plan_csv_read(rd, &u, &e) == HK_OK && u.count == n);
      fclose(rd);
      for (size_t i = 0; i < n && i < u.count; i++)
        CHECK(u.buffers[i].lower == b[i].lower && u.buffers[i].upper == b[i].upper && u.buffers[i].size == b[i].size &&
              u.offsets[i] == off[i] && strcmp(u.ids[i], ids[i]) == 0);
      hk_plan_trace_free(&u);
      for (size_t i = 0; i < n; i++) free(ids[i]);
      free(ids);
      free(buf);
    }
  }
  printf("rounds: %lu brute-force, %lu perfect packings (%lu at the bound), %lu random, %lu csv\n", rounds[0], rounds[1],
         at_bound, rounds[2], rounds[3]);
  (void)perfect;
  TEST_DONE("test_plan_stress");
}
