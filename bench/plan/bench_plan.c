/* Planner benchmark driver, called by bench/plan/run.sh. Prints one whitespace-separated line
 * per measurement; run.sh turns them into the table and charts.
 *
 *   bench_plan traces REPS TIME_LIMIT FILE...   model traces: baseline vs heapkit
 *   bench_plan tight REPS TIME_LIMIT N SEEDS [FIRST]
 *                                               perfect packings of N buffers (bound == optimum),
 *                                               generator seeds FIRST..FIRST+SEEDS-1 (default 1)
 *   bench_plan speed REPS N                     greedy-by-size on N model-like buffers
 *
 * Lines: name n lower_bound baseline_peak baseline_s heapkit_peak heapkit_s method optimal
 * heapkit_cpu_s (medians over REPS; the times are of the planning call alone). HK_PLAN_BASELINE=0
 * skips the baseline (its columns are then 0): on Y_1 it takes 10-20 s. HK_PLAN_CPU_TIME=1 sets
 * hk_plan_options.cpu_time (the limit in CPU time).
 *
 * The baseline is a plain greedy-by-size planner written here, independent of the library:
 * buffers by decreasing size, each put in the smallest gap between the already-placed buffers
 * that overlap it in time (found by scanning all of them), as TFLite's planner does. */
#include <heapkit.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../test/plan/gen.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this process: on a loaded machine the wall time says more about the other
 * processes than about the planner. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const hk_plan_buffer *g_b;
static int by_size_desc(const void *x, const void *y) {
  const hk_plan_buffer *a = &g_b[*(const size_t *)x], *b = &g_b[*(const size_t *)y];
  if (a->size != b->size) return a->size > b->size ? -1 : 1;
  return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}
typedef struct span { uint64_t lo, hi; } span;
static int by_lo(const void *x, const void *y) {
  const span *a = x, *b = y;
  return a->lo < b->lo ? -1 : a->lo > b->lo;
}

static uint64_t baseline(const hk_plan_buffer *b, size_t n, uint64_t *off) {
  size_t *ord = malloc(n * sizeof *ord), *placed = malloc(n * sizeof *placed);
  span *sp = malloc(n * sizeof *sp);
  for (size_t i = 0; i < n; i++) ord[i] = i;
  g_b = b;
  qsort(ord, n, sizeof *ord, by_size_desc);
  size_t np = 0;
  uint64_t peak = 0;
  for (size_t k = 0; k < n; k++) {
    size_t i = ord[k];
    size_t m = 0;
    for (size_t j = 0; j < np; j++) {
      size_t c = placed[j];
      if (b[c].lower < b[i].upper && b[i].lower < b[c].upper && b[c].size) sp[m++] = (span){off[c], off[c] + b[c].size};
    }
    qsort(sp, m, sizeof *sp, by_lo);
    uint64_t cur = 0, best = UINT64_MAX, best_len = UINT64_MAX;
    for (size_t j = 0; j < m; j++) {
      if (sp[j].lo > cur && sp[j].lo - cur >= b[i].size && sp[j].lo - cur < best_len) { best_len = sp[j].lo - cur; best = cur; }
      if (sp[j].hi > cur) cur = sp[j].hi;
    }
    off[i] = b[i].size == 0 ? 0 : best != UINT64_MAX ? best : cur;
    if (off[i] + b[i].size > peak) peak = off[i] + b[i].size;
    placed[np++] = i;
  }
  free(ord); free(placed); free(sp);
  return peak;
}

static int cmp_d(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}
static int cmp_u(const void *x, const void *y) {
  uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
  return a < b ? -1 : a > b;
}
static double med_d(double *v, int n) { qsort(v, n, sizeof *v, cmp_d); return v[n / 2]; }
static uint64_t med_u(uint64_t *v, int n) { qsort(v, n, sizeof *v, cmp_u); return v[n / 2]; }

static int check(const hk_plan_buffer *b, size_t n, const uint64_t *off, const char *what) {
  char msg[256];
  if (hk_plan_validate(b, n, off, 0, 0, msg, sizeof msg) != HK_OK) {
    fprintf(stderr, "bench_plan: %s produced an invalid placement: %s\n", what, msg);
    return 1;
  }
  return 0;
}

/* Run baseline and heapkit REPS times each on one instance; print medians. */
static int measure(const char *name, const hk_plan_buffer *b, size_t n, int reps, double tl, int run_base) {
  uint64_t *off = malloc((n ? n : 1) * sizeof *off);
  uint64_t hp[32], bp[32], lb = 0;
  double ht[32], bt[32], hc[32];
  const char *method = "";
  int optimal = 0, bad = 0;
  hk_plan_lower_bound(b, n, &lb);
  for (int r = 0; r < reps; r++) {
    if (run_base) {
      double t0 = now();
      bp[r] = baseline(b, n, off);
      bt[r] = now() - t0;
      if (r == 0) bad |= check(b, n, off, "baseline");
    }
    hk_plan_options o;
    hk_plan_options_init(&o);
    o.time_limit = tl;
    const char *ct = getenv("HK_PLAN_CPU_TIME");
    o.cpu_time = ct && strcmp(ct, "1") == 0;
    hk_plan_result res;
    double t0 = now(), c0 = cpu_now();
    if (hk_plan(b, n, &o, off, &res) != HK_OK) { fprintf(stderr, "bench_plan: hk_plan failed on %s\n", name); return 1; }
    ht[r] = now() - t0;
    hc[r] = cpu_now() - c0;
    hp[r] = res.peak;
    method = res.method;
    optimal = res.optimal;
    if (r == 0) bad |= check(b, n, off, "heapkit");
  }
  uint64_t bpm = run_base ? med_u(bp, reps) : 0;
  double btm = run_base ? med_d(bt, reps) : 0;
  printf("%s %zu %llu %llu %.4f %llu %.4f %s %d %.4f\n", name, n, (unsigned long long)lb, (unsigned long long)bpm, btm,
         (unsigned long long)med_u(hp, reps), med_d(ht, reps), method, optimal, med_d(hc, reps));
  free(off);
  return bad;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: see bench/plan/bench_plan.c\n"); return 2; }
  int reps = atoi(argv[2]);
  if (reps < 1) reps = 1;
  if (reps > 31) reps = 31;
  int bad = 0;
  if (strcmp(argv[1], "traces") == 0 && argc >= 4) {
    double tl = atof(argv[3]);
    for (int i = 4; i < argc; i++) {
      hk_plan_trace t;
      hk_plan_csv_error e;
      if (hk_plan_csv_load(argv[i], &t, &e) != HK_OK) { fprintf(stderr, "%s:%zu: %s\n", argv[i], e.line, e.message); return 2; }
      const char *base = strrchr(argv[i], '/');
      const char *nb = getenv("HK_PLAN_BASELINE");
      bad |= measure(base ? base + 1 : argv[i], t.buffers, t.count, reps, tl, !(nb && strcmp(nb, "0") == 0));
      hk_plan_trace_free(&t);
      fflush(stdout);
    }
  } else if (strcmp(argv[1], "tight") == 0 && argc >= 6) {
    double tl = atof(argv[3]);
    size_t n = (size_t)atol(argv[4]);
    int seeds = atoi(argv[5]);
    int first = argc >= 7 ? atoi(argv[6]) : 1;
    hk_plan_buffer *b = malloc(n * sizeof *b);
    for (int s = first; s < first + seeds; s++) {
      char name[64];
      snprintf(name, sizeof name, "tight-%zu-%d", n, s);
      hkgen_perfect(b, NULL, n, 4 * n, 1000 * n, 1, (uint64_t)s);
      bad |= measure(name, b, n, reps, tl, 1);
      fflush(stdout);
    }
    free(b);
  } else if (strcmp(argv[1], "speed") == 0 && argc >= 4) {
    size_t n = (size_t)atol(argv[3]);
    hk_plan_buffer *b = malloc(n * sizeof *b);
    uint64_t *off = malloc(n * sizeof *off);
    hkgen_model(b, n, 1);
    double t[32];
    hk_plan_result res;
    for (int r = 0; r < reps; r++) {
      hk_plan_options o;
      hk_plan_options_init(&o);
      o.method = HK_PLAN_GREEDY_SIZE;
      double t0 = now();
      hk_plan(b, n, &o, off, &res);
      t[r] = now() - t0;
    }
    bad |= check(b, n, off, "heapkit greedy-size");
    printf("speed %zu %llu %.4f\n", n, (unsigned long long)res.peak, med_d(t, reps));
  } else {
    fprintf(stderr, "bench_plan: bad arguments\n");
    return 2;
  }
  return bad;
}
