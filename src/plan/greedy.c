/* Greedy placement: buffers in a given order, each put into a gap of the memory occupied, during
 * its lifetime, by the buffers already placed.
 *
 * Enumerating the time-overlapping buffers one by one costs O(overlapping pairs), 180 million on
 * a 62k-buffer model trace. Instead a segment tree over sections keeps, per node, two coalesced
 * sets of occupied offset ranges (sorted, disjoint, non-touching intervals):
 *   cov(x)   the union of buffers whose canonical decomposition contains x (they span x wholly);
 *   isect(x) the union of buffers that intersect x and either have x as a canonical node or have
 *            an end section below x (x is on one of their two leaf-to-root boundary paths).
 * For a query range [l, r) with canonical nodes C and boundary paths B (leaf l and leaf r-1 to
 * the root), the occupied memory is  U_{c in C} isect(c)  U  U_{a in B} cov(a):
 *   - a buffer d spanning a canonical node c wholly has a canonical node that is c or an ancestor
 *     of c (a maximal dyadic interval inside d), and every proper ancestor of c lies on B;
 *   - a buffer d meeting c partly has an end inside c, so c is on d's boundary path: d in isect(c).
 * Every set touched is one of O(log S) nodes, and a set holds occupied RUNS, not buffers: a
 * well-packed region is a handful of runs whatever the number of buffers in it. So a placement
 * costs O(log S * runs) instead of O(overlapping buffers). */
#include "plan/plan_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct ivset { hk__plan_kv *v; uint32_t n, cap; } ivset; /* key = start, val = end */
/* k-way merge cursor over the sorted sets of one query; key caches at->key, so that the heap
 * compares without loading the runs (that load was most of the sift's cost) */
typedef struct cursor { uint64_t key; const hk__plan_kv *at, *end; } cursor;

struct hk__plan_greedy {
  const hk__plan_prob *p;
  size_t P;       /* leaves: a power of two >= nsec */
  ivset *cov;     /* 2P nodes, heap layout, 1-based */
  ivset *isect;
  uint8_t *used;   /* used[x]: x is a canonical node of some buffer, so its isect set is read */
  uint32_t *nodes; /* scratch: node ids of one query */
  cursor *heap;    /* scratch: one cursor per non-empty set of one query */
  uint32_t *mark;  /* mark[x] == epoch: x is a canonical node of the buffer being placed */
  uint32_t epoch;
  uint64_t work;   /* placements (weighted) + runs taken from the merge, over every run: a
                    * clock that does not depend on the machine's speed or load */
};

/* A placement's fixed cost (its O(log S) set updates, the heap set-up) in visited runs: fitted on
 * pangu_2.6B's 14 greedy runs (18692 buffers, 0.3M-3.7M runs visited, 0.025-0.09 s), about 1.1 us
 * per buffer and 18 ns per run. */
#define HK__GREEDY_WORK_PER_BUFFER 64

uint64_t hk__plan_greedy_work(const hk__plan_greedy *g) { return g->work; }

void hk__plan_greedy_free(hk__plan_greedy *g) {
  if (!g) return;
  for (size_t i = 0; g->cov && i < 2 * g->P; i++) free(g->cov[i].v);
  for (size_t i = 0; g->isect && i < 2 * g->P; i++) free(g->isect[i].v);
  free(g->cov); free(g->isect); free(g->used); free(g->nodes); free(g->heap); free(g->mark);
  free(g);
}

hk__plan_greedy *hk__plan_greedy_new(const hk__plan_prob *p) {
  hk__plan_greedy *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->p = p;
  g->P = 1;
  while (g->P < p->nsec) g->P <<= 1;
  g->cov = calloc(2 * g->P, sizeof *g->cov);
  g->isect = calloc(2 * g->P, sizeof *g->isect);
  g->nodes = malloc(256 * sizeof *g->nodes);
  g->heap = malloc(256 * sizeof *g->heap);
  g->used = calloc(2 * g->P, 1);
  g->mark = calloc(2 * g->P, sizeof *g->mark);
  if (!g->cov || !g->isect || !g->nodes || !g->heap || !g->used || !g->mark) {
    hk__plan_greedy_free(g);
    return NULL;
  }
  /* isect sets nobody reads (the root's holds every buffer) need no upkeep */
  for (size_t i = 0; i < p->n; i++)
    for (size_t l = p->sl[i] + g->P, r = p->su[i] + g->P; l < r; l >>= 1, r >>= 1) {
      if (l & 1) g->used[l++] = 1;
      if (r & 1) g->used[--r] = 1;
    }
  return g;
}

/* Invariant of an ivset: intervals sorted, non-empty, disjoint and not touching
 * (v[i].key < v[i].val < v[i+1].key). */
__attribute__((unused)) static bool ivset_is_valid(const ivset *s) {
  for (uint32_t i = 0; i < s->n; i++)
    if (s->v[i].key >= s->v[i].val || (i + 1 < s->n && s->v[i].val >= s->v[i + 1].key)) return false;
  return true;
}

/* Add [a, b) to the set, merging with every interval it overlaps or touches. */
static int ivset_add(ivset *s, uint64_t a, uint64_t b) {
  uint32_t lo = 0, hi = s->n;
  while (lo < hi) { /* first interval with end >= a */
    uint32_t mid = (lo + hi) / 2;
    if (s->v[mid].val < a) lo = mid + 1; else hi = mid;
  }
  uint32_t i = lo, j = lo;
  while (j < s->n && s->v[j].key <= b) j++;
  if (i < j) {
    uint64_t na = s->v[i].key < a ? s->v[i].key : a;
    uint64_t nb = s->v[j - 1].val > b ? s->v[j - 1].val : b;
    s->v[i] = (hk__plan_kv){na, nb};
    memmove(&s->v[i + 1], &s->v[j], (s->n - j) * sizeof *s->v);
    s->n -= j - i - 1;
    hk_plan_assert_expensive(ivset_is_valid(s));
    return HK_OK;
  }
  if (s->n == s->cap) {
    uint32_t nc = s->cap ? 2 * s->cap : 4;
    hk__plan_kv *v = realloc(s->v, nc * sizeof *v);
    if (!v) return HK_ENOMEM;
    s->v = v;
    s->cap = nc;
  }
  memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
  s->v[i] = (hk__plan_kv){a, b};
  s->n++;
  hk_plan_assert_expensive(ivset_is_valid(s));
  return HK_OK;
}

/* (moves the hole down instead of swapping: one write per level) */
static inline void sift_down(cursor *h, size_t n, size_t i) {
  cursor t = h[i];
  for (;;) {
    size_t l = 2 * i + 1, m = l;
    if (l >= n) break;
    if (l + 1 < n && h[l + 1].key < h[l].key) m = l + 1;
    if (h[m].key >= t.key) break;
    h[i] = h[m];
    i = m;
  }
  h[i] = t;
}

static inline uint64_t align_up64(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

int hk__plan_greedy_run(hk__plan_greedy *g, const uint32_t *order, bool best_fit, double deadline, uint64_t *off) {
  const hk__plan_prob *p = g->p;
  for (size_t i = 0; i < 2 * g->P; i++) g->cov[i].n = g->isect[i].n = 0;
  for (size_t oi = 0; oi < p->n; oi++) {
    if (deadline > 0 && (oi & 255) == 255 && hk__plan_clock(p) > deadline) return HK__PLAN_LATE;
    uint32_t b = order[oi];
    uint64_t size = p->size[b], a = p->align[b];
    size_t lq = p->sl[b] + g->P, rq = p->su[b] + g->P;
    size_t ncan = 0, nh = 0;
    /* canonical nodes: their isect sets */
    if (++g->epoch == 0) { /* (wrapped: forget the old marks) */
      memset(g->mark, 0, 2 * g->P * sizeof *g->mark);
      g->epoch = 1;
    }
    for (size_t l = lq, r = rq; l < r; l >>= 1, r >>= 1) {
      if (l & 1) { g->mark[l] = g->epoch; g->nodes[ncan++] = (uint32_t)l++; }
      if (r & 1) { g->mark[--r] = g->epoch; g->nodes[ncan++] = (uint32_t)r; }
    }
    for (size_t c = 0; c < ncan; c++) {
      const ivset *st = &g->isect[g->nodes[c]];
      if (st->n) g->heap[nh++] = (cursor){st->v[0].key, st->v, st->v + st->n};
    }
    /* boundary paths: their cov sets (the two paths share their upper part) */
    for (size_t x = lq, y = rq - 1; x >= 1; x >>= 1, y >>= 1) {
      const ivset *sx = &g->cov[x], *sy = &g->cov[y];
      if (sx->n) g->heap[nh++] = (cursor){sx->v[0].key, sx->v, sx->v + sx->n};
      if (y != x && sy->n) g->heap[nh++] = (cursor){sy->v[0].key, sy->v, sy->v + sy->n};
    }
    for (size_t i = nh; i-- > 0;) sift_down(g->heap, nh, i);
    /* sweep the gaps between occupied ranges, in offset order */
    uint64_t cur = 0, best = UINT64_MAX, best_len = UINT64_MAX;
    g->work += HK__GREEDY_WORK_PER_BUFFER;
    while (nh) {
      g->work++;
      uint64_t o = g->heap[0].at->key, t = g->heap[0].at->val;
      /* Runs ending at or below the frontier `cur` cannot open or extend a gap. Where the
       * occupied memory is dense, most runs of every set are such; skip them by galloping to
       * the first run ending above the frontier (ends are sorted within a set too). */
      uint64_t frontier = t > cur ? t : cur;
      cursor *h = &g->heap[0];
      h->at++;
      if (h->at < h->end && h->at->val <= frontier) {
        size_t step = 1, lo = 0, avail = (size_t)(h->end - h->at);
        while (step < avail && h->at[step].val <= frontier) { lo = step; step *= 2; }
        size_t hi = step < avail ? step : avail; /* at[lo] <= frontier, at[hi] > frontier or end */
        while (hi - lo > 1) {
          size_t mid = lo + (hi - lo) / 2;
          if (h->at[mid].val <= frontier) lo = mid; else hi = mid;
        }
        h->at += hi;
      }
      if (h->at == h->end) g->heap[0] = g->heap[--nh];
      else h->key = h->at->key;
      sift_down(g->heap, nh, 0);
      if (o > cur) {
        uint64_t xo = align_up64(cur, a);
        if (xo + size <= o) {
          if (!best_fit) { best = xo; break; }
          if (o - cur < best_len) { best_len = o - cur; best = xo; }
        }
      }
      if (t > cur) cur = t;
    }
    uint64_t at = best != UINT64_MAX ? best : align_up64(cur, a);
    off[b] = at;
    /* record b: cov + isect on its canonical nodes, isect on its boundary paths */
    for (size_t c = 0; c < ncan; c++)
      if (ivset_add(&g->cov[g->nodes[c]], at, at + size) != HK_OK) return HK_ENOMEM;
    for (size_t c = 0; c < ncan; c++)
      if (ivset_add(&g->isect[g->nodes[c]], at, at + size) != HK_OK) return HK_ENOMEM;
    for (size_t x = lq, y = rq - 1; x >= 1; x >>= 1, y >>= 1) {
      bool xc = g->mark[x] == g->epoch, yc = g->mark[y] == g->epoch; /* canonical nodes already got theirs */
      if (!xc && g->used[x] && ivset_add(&g->isect[x], at, at + size) != HK_OK) return HK_ENOMEM;
      if (y != x && !yc && g->used[y] && ivset_add(&g->isect[y], at, at + size) != HK_OK) return HK_ENOMEM;
    }
  }
  return HK_OK;
}
