/* Anatomy of a generated perfect packing (issue 5; an investigation tool, not run by make bench).
 *
 *   plan_anatomy N SEED [BUDGET]
 *
 * Generates hkgen_perfect(N, SEED) as bench_plan's tight instances (T = 4N, C = 1000N) with the
 * generator's own offsets, and cuts that packing top down: the time cuts of the whole problem
 * (boundaries no buffer crosses), then, in its window with the most buffers (or the one starting
 * at HK_ANATOMY_WIN), the primitive strips (heights no buffer straddles; "*": the strip holding
 * b*, the largest buffer starting at the window's start). Then it runs the guillotine search
 * (hk__plan_guillotine, deterministic: BUDGET steps, default 2M, per round) on that window alone,
 * on each strip of 20 buffers or more alone, and on the window without each strip of 10 buffers
 * or more (or b*'s), for the rounds hk_plan uses. "OK@s": placed in s steps; "-": budget spent;
 * "EXH": no guillotine packing. HK_ANATOMY_ROUND=i runs only the i-th round of the list.
 * HK_ANATOMY_RAW=r runs round r (any combination of the round flags) instead of the list.
 * HK_ANATOMY_BAND=LO,HI solves only the window's buffers that the generator placed within [LO, HI)
 * (a union of adjacent strips, e.g. two); HK_ANATOMY_GROUP=1 merges the buffers of each lifetime of
 * what is solved into one (the packings that keep them together). Every
 * generated packing is guillotine by construction (each split cuts one piece in two); a window
 * with no cut at all would be reported as NON-GUILLOTINE. */
#define HK_INTERNAL_TEST 1
#include "plan/plan_internal.h"
#include "../../test/plan/gen.h"

#include <stdio.h>
#include <string.h>

static const unsigned rounds[] = {0, 1, 2, 3, HK_PLAN_GUILLOTINE_LARGE | HK_PLAN_GUILLOTINE_CUT, HK_PLAN_GUILLOTINE_CUT | 1,
                                  HK_PLAN_FLIP_CUT_ROUND, HK_PLAN_COARSE_FLIP_ROUND};
static hk_plan_buffer *B;
static uint64_t *O, budget = 2000000;

static int cmpu(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void solve_alone(const char *tag, const uint32_t *idx, size_t m) {
  hk_plan_buffer *b = malloc(m * sizeof *b);
  uint64_t *off = malloc(m * sizeof *off);
  hk__plan_prob p;
  for (size_t i = 0; i < m; i++) b[i] = B[idx[i]];
  if (getenv("HK_ANATOMY_GROUP")) {
    size_t g = 0;
    for (size_t i = 0; i < m; i++) {
      size_t j = 0;
      while (j < g && !(b[j].lower == b[i].lower && b[j].upper == b[i].upper)) j++;
      if (j == g) b[g++] = b[i]; else b[j].size += b[i].size;
    }
    printf("  [grouped %zu -> %zu]", m, g);
    m = g;
  }
  if (!b || !off || hk__plan_prob_init(&p, b, m, 0) != HK_OK) { printf("  %s: out of memory\n", tag); exit(1); }
  printf("  %s: %zu buffers, %zu sections, height %llu:", tag, m, p.nsec, (unsigned long long)p.lb);
  const char *only = getenv("HK_ANATOMY_ROUND"), *raw = getenv("HK_ANATOMY_RAW");
  for (size_t r = 0; r < sizeof rounds / sizeof *rounds; r++) {
    if (only && (size_t)atoi(only) != r) continue;
    if (raw && r > 0) break;
    unsigned round = raw ? (unsigned)atoi(raw) : rounds[r];
    uint64_t *tb = NULL, steps = 0;
    int g = hk__plan_guillotine(&p, round, budget, hk__plan_now() + 600, off, &steps, &tb);
    printf(" r%u=%s%llu", round, g == 1 ? "OK@" : g == 2 ? "EXH@" : "-", (unsigned long long)steps);
    free(tb);
  }
  printf("\n");
  fflush(stdout);
  free(off); free(b);
  hk__plan_prob_free(&p);
}

/* sorted distinct values v[0..n) that no buffer of idx[0..m) straddles (lo[i] < v < hi[i]) */
static size_t cuts(uint64_t *v, size_t n, const uint32_t *idx, size_t m, const uint64_t *lo, const uint64_t *hi) {
  qsort(v, n, sizeof *v, cmpu);
  size_t k = 0;
  for (size_t j = 0; j < n; j++) {
    if (j && v[j] == v[j - 1]) continue;
    bool cross = false;
    for (size_t i = 0; i < m && !cross; i++) cross = lo[idx[i]] < v[j] && v[j] < hi[idx[i]];
    if (!cross) v[k++] = v[j];
  }
  return k;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: plan_anatomy N SEED [BUDGET]\n"); return 2; }
  size_t n = (size_t)atol(argv[1]);
  uint64_t seed = (uint64_t)atoll(argv[2]);
  if (argc > 3) budget = (uint64_t)atoll(argv[3]);
  B = malloc(n * sizeof *B); O = malloc(n * sizeof *O);
  uint64_t *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi), *top = malloc(n * sizeof *top);
  uint64_t *v = malloc((n + 2) * sizeof *v);
  uint32_t *all = malloc(n * sizeof *all), *win = malloc(n * sizeof *win), *sub = malloc(n * sizeof *sub);
  if (!B || !O || !lo || !hi || !top || !v || !all || !win || !sub || hkgen_perfect(B, O, n, 4 * n, 1000 * n, 1, seed) != 0) return 1;
  for (size_t i = 0; i < n; i++) { all[i] = (uint32_t)i; lo[i] = B[i].lower; hi[i] = B[i].upper; top[i] = O[i] + B[i].size; }
  /* time cuts of the whole problem */
  for (size_t i = 0; i < n; i++) v[i] = hi[i];
  size_t nt = cuts(v, n, all, n, lo, hi);
  const char *want = getenv("HK_ANATOMY_WIN");
  uint64_t prev = 0, wa = 0, we = 0;
  size_t best = 0;
  printf("tight-%zu-%llu: time windows (start: buffers):", n, (unsigned long long)seed);
  for (size_t k = 0; k < nt; k++) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += lo[i] >= prev && hi[i] <= v[k];
    printf(" %llu: %zu", (unsigned long long)prev, c);
    if (want ? prev == (uint64_t)atoll(want) : c > best) { best = c; wa = prev; we = v[k]; }
    prev = v[k];
  }
  printf("\n");
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (lo[i] >= wa && hi[i] <= we) win[m++] = (uint32_t)i;
  /* its strips in the generator's packing */
  size_t nh = 0, bs = SIZE_MAX;
  for (size_t i = 0; i < m; i++) {
    v[nh++] = top[win[i]];
    if (lo[win[i]] == wa && (bs == SIZE_MAX || B[win[i]].size > B[win[bs]].size)) bs = i;
  }
  nh = cuts(v, nh, win, m, O, top); /* (ends with the window's top, C) */
  printf("window [%llu, %llu), %zu buffers: %zu strips from the bottom (buffers/height):", (unsigned long long)wa,
         (unsigned long long)we, m, nh);
  if (nh == 1) printf(" NON-GUILLOTINE (no memory cut, no time cut)");
  for (size_t k = 0, o = 0; k < nh; o = v[k++]) {
    size_t c = 0;
    bool has = false;
    for (size_t i = 0; i < m; i++)
      if (O[win[i]] >= o && O[win[i]] < v[k]) c++, has |= i == bs;
    printf(" %zu/%llu%s", c, (unsigned long long)(v[k] - o), has ? "*" : "");
  }
  printf("\n");
  const char *band = getenv("HK_ANATOMY_BAND"); /* "LO,HI": only the window's buffers placed in [LO, HI) */
  if (band) {
    uint64_t blo = (uint64_t)atoll(band), bhi = strchr(band, ',') ? (uint64_t)atoll(strchr(band, ',') + 1) : UINT64_MAX;
    size_t c = 0;
    for (size_t i = 0; i < m; i++)
      if (O[win[i]] >= blo && top[win[i]] <= bhi) sub[c++] = win[i];
    solve_alone("band", sub, c);
    nh = 0; /* (nothing else) */
  } else
    solve_alone("window", win, m);
  for (size_t k = 0, o = 0; k < nh && nh > 1; o = v[k++]) {
    size_t c = 0, d = 0;
    bool has = false;
    for (size_t i = 0; i < m; i++) {
      if (O[win[i]] >= o && O[win[i]] < v[k]) sub[c++] = win[i], has |= i == bs;
    }
    char tag[64];
    if (c >= 20) { snprintf(tag, sizeof tag, "strip %zu", k); solve_alone(tag, sub, c); }
    if (c >= 10 || has) {
      for (size_t i = 0; i < m; i++)
        if (!(O[win[i]] >= o && O[win[i]] < v[k])) sub[d++] = win[i];
      snprintf(tag, sizeof tag, "window without strip %zu", k);
      solve_alone(tag, sub, d);
    }
  }
  free(B); free(O); free(lo); free(hi); free(top); free(v); free(all); free(win); free(sub);
  return 0;
}
