/* The planner's working form of a request: non-zero buffers, lifetimes compressed to sections,
 * the lower bound. Everything else in src/plan/ reads this and never the caller's array. */
#include "plan/plan_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void hk__plan_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "heapkit: planner assertion failed: %s (%s:%d)\n", expr, file, line);
  abort();
}

/* The planner's clock. Built with -DHK_PLAN_CPU_CLOCK=1 (a knob for measurements, not for users)
 * it is the calling thread's CPU time divided by the environment's HK_PLAN_CPU_SHARE (default 1):
 * a run then behaves as on a machine where it gets that share of a core, whatever the real load
 * (docs/planner.md, *Under load*). */
#ifndef HK_PLAN_CPU_CLOCK
#define HK_PLAN_CPU_CLOCK 0
#endif
double hk__plan_now(void) {
  struct timespec ts;
#if HK_PLAN_CPU_CLOCK
  static double share; /* (measurement builds only: read once, racy but idempotent) */
  if (!share) {
    const char *e = getenv("HK_PLAN_CPU_SHARE");
    share = e && atof(e) > 0 ? atof(e) : 1.0;
  }
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9) / share;
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#endif
}

double hk__plan_cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double hk__plan_clock(const hk__plan_prob *p) { return p->cpu_clock ? hk__plan_cpu_now() : hk__plan_now(); }

/* Quicksort on (key, val) pairs, ascending by key then val. Hand-written because the greedy
 * placement sorts millions of tiny arrays and qsort's indirect comparator dominates there. */
static inline bool kv_less(const hk__plan_kv *a, const hk__plan_kv *b) {
  return a->key < b->key || (a->key == b->key && a->val < b->val);
}
void hk__plan_sort_kv(hk__plan_kv *a, size_t n) {
  while (n > 16) {
    size_t mid = n / 2;
    /* median of three into a[0] as the pivot */
    hk__plan_kv *x = &a[0], *y = &a[mid], *z = &a[n - 1], t;
    if (kv_less(y, x)) { t = *x; *x = *y; *y = t; }
    if (kv_less(z, y)) { t = *y; *y = *z; *z = t; if (kv_less(y, x)) { t = *x; *x = *y; *y = t; } }
    hk__plan_kv piv = *y;
    size_t i = 0, j = n - 1;
    for (;;) {
      while (kv_less(&a[i], &piv)) i++;
      while (kv_less(&piv, &a[j])) j--;
      if (i >= j) break;
      t = a[i]; a[i] = a[j]; a[j] = t;
      i++; j--;
    }
    /* recurse into the smaller half so the stack stays O(log n) */
    size_t left = j + 1;
    if (left < n - left) { hk__plan_sort_kv(a, left); a += left; n -= left; }
    else { hk__plan_sort_kv(a + left, n - left); n = left; }
  }
  for (size_t i = 1; i < n; i++) {
    hk__plan_kv v = a[i];
    size_t j = i;
    while (j > 0 && kv_less(&v, &a[j - 1])) { a[j] = a[j - 1]; j--; }
    a[j] = v;
  }
}

static uint64_t gcd64(uint64_t a, uint64_t b) {
  while (b) { uint64_t t = a % b; a = b; b = t; }
  return a;
}

static uint32_t find_time(const uint64_t *t, size_t nt, uint64_t v) {
  size_t lo = 0, hi = nt; /* first index with t[idx] >= v; v is present */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t[mid] < v) lo = mid + 1; else hi = mid;
  }
  return (uint32_t)lo;
}

void hk__plan_prob_free(hk__plan_prob *p) {
  free(p->orig); free(p->sl); free(p->su); free(p->size); free(p->align); free(p->len);
  memset(p, 0, sizeof *p);
}

int hk__plan_prob_init(hk__plan_prob *p, const hk_plan_buffer *bufs, size_t n, uint64_t default_align) {
  memset(p, 0, sizeof *p);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) m += bufs[i].size != 0;
  p->n = m;
  p->gran = 0;
  size_t cap = m ? m : 1;
  p->orig = malloc(cap * sizeof *p->orig);
  p->sl = malloc(cap * sizeof *p->sl);
  p->su = malloc(cap * sizeof *p->su);
  p->size = malloc(cap * sizeof *p->size);
  p->align = malloc(cap * sizeof *p->align);
  p->len = malloc(cap * sizeof *p->len);
  hk__plan_kv *times = malloc(2 * cap * sizeof *times);
  uint64_t *t = malloc(2 * cap * sizeof *t);
  if (!p->orig || !p->sl || !p->su || !p->size || !p->align || !p->len || !times || !t) {
    free(times); free(t); hk__plan_prob_free(p);
    return HK_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (bufs[i].size == 0) continue;
    uint64_t a = bufs[i].align ? bufs[i].align : (default_align ? default_align : 1);
    p->orig[k] = (uint32_t)i;
    p->size[k] = bufs[i].size;
    p->align[k] = a;
    p->len[k] = bufs[i].upper - bufs[i].lower;
    p->gran = gcd64(p->gran, bufs[i].size);
    if (a > 1) p->gran = gcd64(p->gran, a);
    times[2 * k] = (hk__plan_kv){bufs[i].lower, 0};
    times[2 * k + 1] = (hk__plan_kv){bufs[i].upper, 0};
    k++;
  }
  if (p->gran == 0) p->gran = 1;
  hk__plan_sort_kv(times, 2 * m);
  size_t nt = 0;
  for (size_t i = 0; i < 2 * m; i++)
    if (nt == 0 || t[nt - 1] != times[i].key) t[nt++] = times[i].key;
  free(times);
  p->nsec = nt ? nt - 1 : 0;
  for (size_t i = 0; i < m; i++) {
    const hk_plan_buffer *b = &bufs[p->orig[i]];
    p->sl[i] = find_time(t, nt, b->lower);
    p->su[i] = find_time(t, nt, b->upper);
  }
  free(t);
  /* lower bound: difference array over sections, then the running maximum */
  int64_t *diff = calloc(p->nsec + 1, sizeof *diff);
  if (!diff) { hk__plan_prob_free(p); return HK_ENOMEM; }
  for (size_t i = 0; i < m; i++) { diff[p->sl[i]] += (int64_t)p->size[i]; diff[p->su[i]] -= (int64_t)p->size[i]; }
  int64_t run = 0, best = 0, low = INT64_MAX;
  for (size_t s = 0; s < p->nsec; s++) {
    run += diff[s];
    if (run > best) best = run;
    if (run < low) low = run;
  }
  free(diff);
  p->lb = (uint64_t)best;
  p->tight = p->nsec > 0 && low == best;
  hk_plan_assert_expensive(hk__plan_prob_is_valid(p));
  return HK_OK;
}

int hk__plan_prob_reverse(const hk__plan_prob *p, hk__plan_prob *out) {
  *out = *p;
  size_t cap = p->n ? p->n : 1;
  out->orig = malloc(cap * sizeof *out->orig);
  out->sl = malloc(cap * sizeof *out->sl);
  out->su = malloc(cap * sizeof *out->su);
  out->size = malloc(cap * sizeof *out->size);
  out->align = malloc(cap * sizeof *out->align);
  out->len = malloc(cap * sizeof *out->len);
  if (!out->orig || !out->sl || !out->su || !out->size || !out->align || !out->len) {
    hk__plan_prob_free(out);
    return HK_ENOMEM;
  }
  memcpy(out->orig, p->orig, p->n * sizeof *p->orig);
  memcpy(out->size, p->size, p->n * sizeof *p->size);
  memcpy(out->align, p->align, p->n * sizeof *p->align);
  memcpy(out->len, p->len, p->n * sizeof *p->len);
  for (size_t i = 0; i < p->n; i++) {
    out->sl[i] = (uint32_t)(p->nsec - p->su[i]);
    out->su[i] = (uint32_t)(p->nsec - p->sl[i]);
  }
  hk_plan_assert_expensive(hk__plan_prob_is_valid(out));
  return HK_OK;
}

bool hk__plan_prob_is_valid(const hk__plan_prob *p) {
  uint64_t *live = calloc(p->nsec + 1, sizeof *live);
  if (!live) return true; /* cannot check without memory; not a violation */
  bool ok = true;
  for (size_t i = 0; i < p->n && ok; i++) {
    ok = p->sl[i] < p->su[i] && p->su[i] <= p->nsec && p->size[i] > 0 && p->align[i] &&
         (p->align[i] & (p->align[i] - 1)) == 0 && p->size[i] % p->gran == 0 &&
         (p->align[i] == 1 || p->align[i] % p->gran == 0);
    for (uint32_t s = p->sl[i]; ok && s < p->su[i]; s++) live[s] += p->size[i];
  }
  uint64_t mx = 0;
  bool flat = p->nsec > 0;
  for (size_t s = 0; s < p->nsec; s++) { if (live[s] > mx) mx = live[s]; }
  for (size_t s = 0; s < p->nsec; s++) flat &= live[s] == mx;
  free(live);
  return ok && mx == p->lb && flat == p->tight;
}

uint64_t hk__plan_peak(const hk__plan_prob *p, const uint64_t *off) {
  uint64_t peak = 0;
  for (size_t i = 0; i < p->n; i++) if (off[i] + p->size[i] > peak) peak = off[i] + p->size[i];
  return peak;
}

/* ---- greedy orders ------------------------------------------------------------------------- */

typedef struct ord_key { uint64_t k1, k2, k3; uint32_t idx; } ord_key;

static int ord_cmp(const void *va, const void *vb) {
  const ord_key *a = va, *b = vb;
  if (a->k1 != b->k1) return a->k1 > b->k1 ? -1 : 1; /* descending */
  if (a->k2 != b->k2) return a->k2 > b->k2 ? -1 : 1;
  if (a->k3 != b->k3) return a->k3 > b->k3 ? -1 : 1;
  return a->idx < b->idx ? -1 : a->idx > b->idx;
}

const char *hk__plan_order_name(hk__plan_order o, bool best_fit) {
  static const char *bf[] = {"greedy-size", "greedy-lifetime", "greedy-area", "greedy-conflict", "greedy-peak",
                             "greedy-size-long", "greedy-long-first"};
  static const char *ff[] = {"greedy-size-firstfit", "greedy-lifetime-firstfit", "greedy-area-firstfit",
                             "greedy-conflict-firstfit", "greedy-peak-firstfit", "greedy-size-long-firstfit",
                             "greedy-long-first-firstfit"};
  return (unsigned)o < HK__ORDER__COUNT ? (best_fit ? bf[o] : ff[o]) : "?";
}

/* Area as a saturating 64-bit product: ties beyond 2^64 are broken by size. */
static uint64_t sat_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* For the "conflict" and "peak" orders: the largest total live size over each buffer's lifetime, i.e. how
 * close to the peak the buffer lives. Buffers in the peak region are placed first, so the
 * critical sections pack tightly and the rest fill in around them. Sparse table: O(S log S). */
static int conflict_keys(const hk__plan_prob *p, uint64_t *out) {
  size_t S = p->nsec;
  uint64_t *live = calloc(S + 1, sizeof *live);
  if (!live) return HK_ENOMEM;
  int64_t *diff = calloc(S + 1, sizeof *diff);
  if (!diff) { free(live); return HK_ENOMEM; }
  for (size_t i = 0; i < p->n; i++) { diff[p->sl[i]] += (int64_t)p->size[i]; diff[p->su[i]] -= (int64_t)p->size[i]; }
  int64_t run = 0;
  for (size_t s = 0; s < S; s++) { run += diff[s]; live[s] = (uint64_t)run; }
  free(diff);
  size_t levels = 1;
  while (((size_t)1 << levels) <= S) levels++;
  uint64_t **tab = calloc(levels, sizeof *tab);
  if (!tab) { free(live); return HK_ENOMEM; }
  tab[0] = live;
  int rc = HK_OK;
  for (size_t l = 1; l < levels; l++) {
    size_t w = (size_t)1 << l, cnt = S - w + 1;
    tab[l] = malloc(cnt * sizeof **tab);
    if (!tab[l]) { rc = HK_ENOMEM; break; }
    for (size_t s = 0; s < cnt; s++) {
      uint64_t a = tab[l - 1][s], b = tab[l - 1][s + w / 2];
      tab[l][s] = a > b ? a : b;
    }
  }
  if (rc == HK_OK) {
    for (size_t i = 0; i < p->n; i++) {
      size_t a = p->sl[i], b = p->su[i], w = b - a, l = 0;
      while (((size_t)2 << l) <= w) l++;
      uint64_t x = tab[l][a], y = tab[l][b - ((size_t)1 << l)];
      out[i] = x > y ? x : y;
    }
  }
  for (size_t l = 0; l < levels; l++) free(tab[l]);
  free(tab);
  return rc;
}

int hk__plan_make_order(const hk__plan_prob *p, hk__plan_order o, uint32_t *order) {
  size_t n = p->n;
  ord_key *k = malloc((n ? n : 1) * sizeof *k);
  uint64_t *ck = NULL;
  if (!k) return HK_ENOMEM;
  if (o == HK__ORDER_CONFLICT || o == HK__ORDER_PEAK) {
    ck = malloc((n ? n : 1) * sizeof *ck);
    if (!ck || conflict_keys(p, ck) != HK_OK) { free(k); free(ck); return HK_ENOMEM; }
  }
  uint64_t span = 0;
  for (size_t i = 0; i < n; i++) if (p->len[i] > span) span = p->len[i];
  for (size_t i = 0; i < n; i++) {
    uint64_t s = p->size[i], l = p->len[i];
    switch (o) {
    case HK__ORDER_SIZE: k[i] = (ord_key){s, 0, 0, (uint32_t)i}; break; /* ties: input order, as TFLite */
    case HK__ORDER_SIZE_LONG: k[i] = (ord_key){s, l, 0, (uint32_t)i}; break; /* ties: longest first */
    /* long-first: buffers living at least half of the longest lifetime go first (by size), then
     * the rest by size. A tiny buffer that lives through most of the trace finds no hole common
     * to all its moments if it comes last, and lands on top of the peak (S_1: +2.5% -> +1%). */
    case HK__ORDER_LONG_FIRST: k[i] = (ord_key){2 * l >= span, s, l, (uint32_t)i}; break;
    case HK__ORDER_LIFETIME: k[i] = (ord_key){l, s, 0, (uint32_t)i}; break;
    case HK__ORDER_AREA: k[i] = (ord_key){sat_mul(s, l), s, l, (uint32_t)i}; break;
    case HK__ORDER_CONFLICT: k[i] = (ord_key){ck[i], s, l, (uint32_t)i}; break;
    /* peak: like conflict, but loads within 1/16 of the bound count as equal, so inside each
     * band the larger buffers still go first and the small long-lived ones do not splinter
     * the memory before them */
    default: k[i] = (ord_key){(uint64_t)((unsigned __int128)ck[i] * 16 / (p->lb + 1)), s, ck[i], (uint32_t)i}; break;
    }
  }
  qsort(k, n, sizeof *k, ord_cmp);
  for (size_t i = 0; i < n; i++) order[i] = k[i].idx;
  free(k);
  free(ck);
  return HK_OK;
}
