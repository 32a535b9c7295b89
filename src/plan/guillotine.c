/* Guillotine search for tight problems (every section holds exactly the lower bound C).
 *
 * A placement of a set B of buffers inside a rectangle (a window of sections [a, e) times a band
 * of memory [o, o + H), every section of the window holding exactly H) is a guillotine packing
 * when it is one buffer filling the rectangle, or when a straight cut splits the rectangle into
 * two guillotine packings: a cut in time (a boundary no buffer of B crosses) or a cut in memory (a
 * subset B1 of B whose total is the same c in every section goes below o + c, the rest above).
 * Perfect packings built by cutting a rectangle (the benchmark's generator, and stacked layers of
 * side-by-side tensors in general) are of this kind; the bottom-up search of search.c finds them
 * hard when there are few sections and large groups of same-lifetime buffers. This search looks
 * for one top down:
 *
 *   - time cuts are taken at once: the parts are independent (a guillotine packing of B restricted
 *     to one part is a guillotine packing of that part), so a part without one fails B;
 *   - buffers spanning the whole window are stacked at the bottom: in a window without a time
 *     cut, such a buffer is a strip of its own, and strips can be reordered freely;
 *   - otherwise some memory cut exists; strips can be reordered, so let the one holding buffer b*
 *     (the largest buffer starting at a) be the lowest. Its set B1 is enumerated from left to
 *     right (or from right to left when fewer buffers end at e than start at a): a subset of the
 *     buffers starting at a, containing b*, of total c < H, c tried from the highest; then at each
 *     boundary where chosen buffers ending there free E bytes, a subset of the buffers starting
 *     there of total exactly E (subset sums over the few buffers starting at one boundary, largest
 *     first, identical buffers taken in order). Each complete B1 is solved as a rectangle of
 *     height c, and B \ B1 above it.
 *
 * The search is complete for guillotine packings: an exhausted search proves there is none (not
 * that no perfect packing exists). Sets that failed are remembered by a Zobrist hash (a set
 * determines its window and height; the base offset does not matter). Work is bounded by a node
 * budget and the deadline. Buffers with an alignment above 1 are not handled (the caller skips
 * the search then), nor bounds above 2^23 granules (the bitsets span the bound). */
#include "plan/plan_internal.h"

#include <stdlib.h>
#include <string.h>

enum { G_FAIL = 0, G_OK = 1, G_STOP = -2 };
#define GUILLOTINE_TABLE ((size_t)1 << 18)
#define REACH_WORDS ((size_t)1 << 22) /* 32 MB */

typedef struct gsrch {
  const hk__plan_prob *p;
  uint64_t *off, *zob, *fail;
  uint32_t *rsl, *rsu; /* sections of the time reversal (nsec - su, nsec - sl) */
  size_t fmask;
  uint64_t limit, steps, evals; /* work budget, work done (steps), complete sets B1 tried */
  bool stop; /* the budget or the deadline ran out */
  double deadline;
  size_t depth, max_depth;
  size_t reach_words; /* words held by the strips' subset-sum bitsets (see reachable) */
  bool nomem;
} gsrch;

static inline uint64_t gmix(uint64_t x) {
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 27; x *= 0x94d049bb133111ebull; x ^= x >> 31;
  return x;
}
static bool fail_has(const gsrch *g, uint64_t k) { return hk__plan_keyset_has(g->fail, g->fmask, k); }
static void fail_add(gsrch *g, uint64_t k) { hk__plan_keyset_add(g->fail, g->fmask, k); }

static int solve(gsrch *g, const uint32_t *L, size_t m, uint32_t a, uint32_t e, uint64_t o, uint64_t H);

/* The enumeration of the lowest strip's set B1 (see the file comment), over the window's buffers
 * sorted by (first section, size descending). */
typedef struct strip {
  gsrch *g;
  const uint32_t *ord; /* the window's buffers, by (first section, size descending, end) */
  size_t m;
  uint32_t a, e;       /* the window, in the enumeration's orientation */
  uint32_t sa, se;     /* the window as solve sees it */
  const uint32_t *sl, *su; /* sections: the problem's, or mirrored (see solve) */
  const uint32_t *lo; /* lo[x - a] .. lo[x - a + 1]: positions in ord starting at section x */
  uint8_t *ch;        /* chosen, by position */
  uint64_t *endsum;   /* endsum[x - a]: total of chosen buffers ending at x */
  uint64_t *endhash;  /* endhash[x - a]: Zobrist hash of the chosen buffers ending at x */
  uint64_t *suf;      /* suf[k]: total size of positions k.. up to the end of k's section */
  uint64_t **reach;   /* reach[x - a]: bitset of the subset sums of the buffers starting at x
                       * (made on first use, within REACH_WORDS for the whole search) */
  size_t words;       /* bitsets over [0, H) in units of the granule u (every size is a multiple) */
  uint64_t u;
  uint32_t *l1, *l2;  /* scratch for B1 and B \ B1 */
  uint64_t o, H, c, setkey, hall;
} strip;

static inline bool same_item(const strip *t, size_t j, size_t k) {
  const hk__plan_prob *p = t->g->p;
  uint32_t u = t->ord[j], v = t->ord[k];
  return p->size[u] == p->size[v] && t->su[u] == t->su[v];
}

static int sweep(strip *t, uint32_t x, uint64_t gone);
static void or_shift(uint64_t *d, const uint64_t *s, size_t words, uint64_t sh);

/* Work is counted in chosen buffers (the enumeration's unit) as well as in solved sets. */
static bool spent(gsrch *g) {
  if (g->stop) return true;
  if (++g->steps > g->limit || ((g->steps & 4095) == 0 && hk__plan_now() > g->deadline)) g->stop = true;
  return g->stop;
}

static void choose(strip *t, size_t k, bool on) {
  const hk__plan_prob *p = t->g->p;
  uint32_t b = t->ord[k];
  t->ch[k] = on;
  if (on) t->endsum[t->su[b] - t->a] += p->size[b];
  else t->endsum[t->su[b] - t->a] -= p->size[b];
  t->endhash[t->su[b] - t->a] ^= t->g->zob[b];
  t->hall ^= t->g->zob[b];
}

/* B1 is complete: solve it below, the rest above. */
static int evaluate(strip *t) {
  t->g->evals++;
  size_t n1 = 0, n2 = 0;
  for (size_t k = 0; k < t->m; k++) {
    if (t->ch[k]) t->l1[n1++] = t->ord[k];
    else t->l2[n2++] = t->ord[k];
  }
  /* the set above first: with the heights tried from the highest it is the smaller one, the
   * quicker to refute (l1 and l2 are this frame's: the calls below have their own scratch) */
  int r = solve(t->g, t->l2, n2, t->sa, t->se, t->o + t->c, t->H - t->c);
  if (r == G_OK) r = solve(t->g, t->l1, n1, t->sa, t->se, t->o, t->c);
  return r;
}

/* Can the buffers starting at x total exactly v? (true when the bitsets are not kept) */
static bool reachable(strip *t, uint32_t x, uint64_t v) {
  if (!t->reach) return true;
  uint64_t **r = &t->reach[x - t->a];
  if (!*r) {
    const hk__plan_prob *p = t->g->p;
    /* all the search's bitsets together stay under REACH_WORDS (the nested enumerations each
     * hold theirs); past it the test is skipped, which only prunes less */
    if (t->g->reach_words + t->words > REACH_WORDS || !(*r = calloc(t->words, sizeof **r))) return true;
    t->g->reach_words += t->words;
    (*r)[0] = 1;
    for (size_t k = t->lo[x - t->a]; k < t->lo[x - t->a + 1]; k++) or_shift(*r, *r, t->words, p->size[t->ord[k]] / t->u);
  }
  v /= t->u;
  return v < t->words * 64 && ((*r)[v >> 6] >> (v & 63) & 1);
}

/* Can positions k.. of x's range total exactly need? A subset-sum question asked again and again
 * by the enumeration below (the same boundary, the same remainder); the answers "no" are kept in
 * the table of failures, keyed by the set, the boundary, the position and the remainder. */
static bool can(strip *t, uint32_t x, size_t k, uint64_t need) {
  const hk__plan_prob *p = t->g->p;
  if (need == 0) return true;
  size_t hi = t->lo[x - t->a + 1];
  if (k >= hi || t->suf[k] < need) return false;
  uint64_t key = gmix(t->setkey ^ gmix(need * 0x9E3779B97F4A7C15ull ^ ((uint64_t)x << 40) ^ ((uint64_t)k << 8) ^ 0x5bd1e995u));
  key = key ? key : 1;
  if (fail_has(t->g, key)) return false;
  for (size_t j = k; j < hi && t->suf[j] >= need; j++) {
    if (t->ch[j] || (j > k && same_item(t, j, j - 1) && !t->ch[j - 1])) continue;
    uint64_t s = p->size[t->ord[j]];
    if (s > need) continue;
    if (spent(t->g)) return true; /* the caller sees the stop */
    if (can(t, x, j + 1, need - s)) return true;
  }
  fail_add(t->g, key);
  return false;
}

/* Subsets of the buffers starting at x (positions k.. of x's range) totalling exactly need: only
 * along positions from which the rest of need can still be made up. */
static int subset(strip *t, uint32_t x, size_t k, uint64_t need, uint64_t gone) {
  const hk__plan_prob *p = t->g->p;
  if (need == 0) return sweep(t, x + 1, gone);
  size_t hi = t->lo[x - t->a + 1];
  for (size_t j = k; j < hi; j++) {
    if (t->suf[j] < need) break;
    /* (b*, chosen already, is skipped; an item identical to one left out at this level too) */
    if (t->ch[j] || (j > k && same_item(t, j, j - 1) && !t->ch[j - 1])) continue;
    uint64_t s = p->size[t->ord[j]];
    if (s > need) continue;
    if (spent(t->g)) return G_STOP;
    if (!can(t, x, j + 1, need - s)) continue;
    if (t->g->stop) return G_STOP;
    choose(t, j, true);
    int r = subset(t, x, j + 1, need - s, gone);
    choose(t, j, false);
    if (r != G_FAIL) return r;
  }
  return G_FAIL;
}

/* Boundaries from x on: the next one where chosen buffers end needs starters of the same total.
 * gone: hash of the chosen buffers that ended before x. What follows depends only on x and the
 * chosen buffers still live there, so a state from which no set B1 could be completed (not one
 * whose sets failed to solve) is remembered and not explored again. */
static int sweep(strip *t, uint32_t x, uint64_t gone) {
  while (x < t->e && t->endsum[x - t->a] == 0) x++;
  if (x >= t->e) return evaluate(t);
  uint64_t E = t->endsum[x - t->a];
  if (!reachable(t, x, E)) return G_FAIL;
  uint64_t key = gmix(t->setkey ^ gmix((t->hall ^ gone) + x * 0x9E3779B97F4A7C15ull));
  key = key ? key : 1;
  if (fail_has(t->g, key)) return G_FAIL;
  uint64_t ev = t->g->evals;
  int r = subset(t, x, t->lo[x - t->a], E, gone ^ t->endhash[x - t->a]);
  if (r == G_FAIL && t->g->evals == ev) fail_add(t->g, key);
  return r;
}

/* Heights the lowest strip can have. Its total c is the same in every section, so c is a subset
 * sum of the buffers live there; at section a it is b*'s size plus a subset sum of the other
 * buffers starting there. Bitsets over [0, H) (bit c: possible), intersected over up to
 * HEIGHT_SECTIONS sections with the fewest live buffers (any sections give a necessary condition;
 * the fewest are the cheapest and the most selective). Returns a calloc'ed bitset or NULL. */
#define HEIGHT_SECTIONS 24
#define HEIGHT_LIVE 24
static void or_shift(uint64_t *d, const uint64_t *s, size_t words, uint64_t sh) {
  size_t ws = (size_t)(sh >> 6);
  unsigned bs = (unsigned)(sh & 63);
  if (ws >= words) return;
  for (size_t i = words; i-- > ws;) {
    uint64_t v = s[i - ws] << bs;
    if (bs && i - ws > 0) v |= s[i - ws - 1] >> (64 - bs);
    d[i] |= v;
  }
}
static uint64_t *heights(strip *t, const uint32_t *L, size_t m, size_t bpos) {
  const hk__plan_prob *p = t->g->p;
  size_t W = t->e - t->a, words = t->words;
  uint64_t h = t->H / t->u;
  uint64_t *A = calloc(words, sizeof *A), *S = calloc(words, sizeof *S);
  uint32_t *live = calloc(W + 1, sizeof *live);
  hk__plan_kv *sec = malloc(W * sizeof *sec);
  if (!A || !S || !live || !sec) { free(A); free(S); free(live); free(sec); return NULL; }
  uint64_t top = h & 63 ? ~0ull >> (64 - (h & 63)) : 0; /* bits c < H of the last word */
  /* section a: b* plus subset sums of the other starters */
  A[0] = 1;
  for (size_t k = 0; k < t->lo[1]; k++)
    if (k != bpos) or_shift(A, A, words, p->size[t->ord[k]] / t->u);
  memset(S, 0, words * sizeof *S);
  or_shift(S, A, words, p->size[t->ord[bpos]] / t->u);
  memcpy(A, S, words * sizeof *A);
  A[words - 1] &= top;
  for (size_t i = 0; i < m; i++) for (uint32_t x = t->sl[L[i]]; x < t->su[L[i]]; x++) live[x - t->a]++;
  for (size_t x = 1; x < W; x++) sec[x - 1] = (hk__plan_kv){live[x], x};
  hk__plan_sort_kv(sec, W - 1);
  for (size_t q = 0; q < W - 1 && q < HEIGHT_SECTIONS && sec[q].key <= HEIGHT_LIVE; q++) {
    uint32_t x = t->a + (uint32_t)sec[q].val;
    memset(S, 0, words * sizeof *S);
    S[0] = 1;
    for (size_t i = 0; i < m; i++)
      if (t->sl[L[i]] <= x && x < t->su[L[i]]) { or_shift(S, S, words, p->size[L[i]] / t->u); t->g->steps += words >> 4; }
    bool any = false;
    for (size_t w = 0; w < words; w++) { A[w] &= S[w]; any |= A[w] != 0; }
    if (!any) break;
  }
  free(S); free(live); free(sec);
  return A;
}

static int solve(gsrch *g, const uint32_t *L, size_t m, uint32_t a, uint32_t e, uint64_t o, uint64_t H) {
  const hk__plan_prob *p = g->p;
  if (spent(g) || g->depth >= g->max_depth) { g->stop = true; return G_STOP; }
  if (m == 1) {
    uint32_t b = L[0];
    if (p->sl[b] != a || p->su[b] != e || p->size[b] != H) return G_FAIL;
    g->off[b] = o;
    return G_OK;
  }
  uint64_t key = 0;
  for (size_t i = 0; i < m; i++) key ^= g->zob[L[i]];
  key = key ? key : 1;
  if (fail_has(g, key)) return G_FAIL;
  size_t W = e - a;
  /* one allocation for this frame: crossing counts, the sorted list, section starts, flags... */
  size_t words = (W + 2) + m + (W + 2) + 2 * m + (W + 2);
  uint32_t *u32 = malloc(words * sizeof *u32);
  uint64_t *u64 = malloc((2 * (W + 1) + m + 1) * sizeof *u64); /* endsum, suf, endhash */
  uint8_t *ch = calloc(m + 1, 1);
  if (!u32 || !u64 || !ch) { free(u32); free(u64); free(ch); g->nomem = true; return G_STOP; }
  uint32_t *cnt = u32, *ord = u32 + (W + 2), *lo = ord + m, *l1 = lo + (W + 2), *l2 = l1 + m;
  int r = G_FAIL;
  g->depth++;
  /* time cuts: boundaries inside the window that no buffer crosses */
  memset(cnt, 0, (W + 2) * sizeof *cnt);
  for (size_t i = 0; i < m; i++) { cnt[p->sl[L[i]] - a + 1]++; cnt[p->su[L[i]] - a]--; }
  {
    int32_t run = 0;
    bool cut = false;
    for (size_t x = 1; x < W && !cut; x++) { run += (int32_t)cnt[x]; cut = run == 0; }
    if (cut) {
      /* solve each part [x0, x1) between cuts; a part that fails fails the whole */
      int32_t acc = 0;
      uint32_t x0 = a;
      for (size_t x = 1; x <= W; x++) {
        if (x < W) acc += (int32_t)cnt[x];
        if (x < W && acc != 0) continue;
        uint32_t x1 = a + (uint32_t)x;
        size_t k = 0;
        for (size_t i = 0; i < m; i++)
          if (p->sl[L[i]] >= x0 && p->su[L[i]] <= x1) l1[k++] = L[i];
        r = solve(g, l1, k, x0, x1, o, H);
        if (r != G_OK) break;
        x0 = x1;
      }
      goto leave;
    }
  }
  /* buffers spanning the window: strips of their own, stacked at the bottom */
  {
    uint64_t s = 0;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
      uint32_t b = L[i];
      if (p->sl[b] == a && p->su[b] == e) { g->off[b] = o + s; s += p->size[b]; }
      else l1[k++] = b;
    }
    if (k < m) {
      r = k == 0 ? (s == H ? G_OK : G_FAIL) : s >= H ? G_FAIL : solve(g, l1, k, a, e, o + s, H - s);
      goto leave;
    }
  }
  /* the lowest strip holds b*: enumerate its set, from the end of the window with fewer buffers
   * (mirrored: sections read from the time reversal, so the code below only goes rightwards) */
  {
    size_t nl = 0, nr = 0;
    for (size_t i = 0; i < m; i++) { nl += p->sl[L[i]] == a; nr += p->su[L[i]] == e; }
    /* (on the 48 hard 400- and 500-buffer instances, 4M steps: 25 placed; always from the left,
     * in the problem and in its reversal with 2M each: 21; from the end with more buffers: 13) */
    bool mir = nr < nl;
    const uint32_t *SL = mir ? g->rsl : p->sl, *SU = mir ? g->rsu : p->su;
    uint32_t wa = mir ? (uint32_t)p->nsec - e : a, we = mir ? (uint32_t)p->nsec - a : e;
    hk__plan_kv *kv = malloc(m * sizeof *kv);
    if (!kv) { g->nomem = true; r = G_STOP; goto leave; }
    /* by size descending, then end (identical buffers adjacent), then index */
    for (size_t i = 0; i < m; i++) kv[i] = (hk__plan_kv){~p->size[L[i]], ((uint64_t)SU[L[i]] << 32) | L[i]};
    hk__plan_sort_kv(kv, m);
    /* counting sort by first section keeps the size order inside a section */
    uint32_t *pos = l2 + m;
    memset(lo, 0, (W + 2) * sizeof *lo);
    for (size_t i = 0; i < m; i++) lo[SL[(uint32_t)(kv[i].val & 0xffffffffu)] - wa + 1]++;
    for (size_t x = 0; x < W; x++) lo[x + 1] += lo[x];
    memcpy(pos, lo, (W + 1) * sizeof *pos);
    for (size_t i = 0; i < m; i++) { uint32_t b = (uint32_t)(kv[i].val & 0xffffffffu); ord[pos[SL[b] - wa]++] = b; }
    free(kv);
    uint64_t *endsum = u64, *suf = u64 + (W + 1), *endhash = suf + m;
    memset(endsum, 0, (W + 1) * sizeof *endsum);
    memset(endhash, 0, (W + 1) * sizeof *endhash);
    for (size_t x = 0; x < W; x++) {
      uint64_t acc = 0;
      for (size_t k = lo[x + 1]; k-- > lo[x];) { acc += p->size[ord[k]]; suf[k] = acc; }
    }
    strip t = {.g = g, .ord = ord, .m = m, .a = wa, .e = we, .sa = a, .se = e, .sl = SL, .su = SU, .lo = lo, .ch = ch, .endsum = endsum,
               .endhash = endhash, .suf = suf, .words = (size_t)((H / p->gran) >> 6) + 1, .u = p->gran, .l1 = l1, .l2 = l2, .o = o,
               .H = H, .setkey = mir ? gmix(key) : key};
    if (lo[1] == 0 || p->size[ord[0]] >= H) { r = G_FAIL; goto leave; } /* ord[0]: the largest */
    /* the per-boundary subset-sum bitsets, made on first use */
    t.reach = calloc(W + 1, sizeof *t.reach);
    size_t bpos = 0; /* b*: the largest (the smallest placed 10 of 22 hard instances instead of 11) */
    uint64_t *A = heights(&t, L, m, bpos);
    if (!A) { free(t.reach); g->nomem = true; r = G_STOP; goto leave; }
    choose(&t, bpos, true);
    uint64_t sz0 = p->size[ord[bpos]];
    /* each possible height, highest first (placed 11 of 22 hard 400-buffer instances against 8
     * lowest first): the sets of starters at a with that total, then on to the right */
    for (size_t w = t.words; w-- > 0 && r == G_FAIL;) {
      for (uint64_t bits = A[w]; bits && r == G_FAIL; bits &= ~(1ull << (63 - __builtin_clzll(bits)))) {
        uint64_t c = ((uint64_t)w * 64 + (uint64_t)(63 - __builtin_clzll(bits))) * p->gran;
        if (c < sz0 || c >= H) continue;
        t.c = c;
        r = subset(&t, t.a, 0, c - sz0, 0);
      }
    }
    free(A);
    if (t.reach)
      for (size_t x = 0; x <= W; x++)
        if (t.reach[x]) { free(t.reach[x]); g->reach_words -= t.words; }
    free(t.reach);
  }
leave:
  g->depth--;
  if (r == G_FAIL) fail_add(g, key);
  free(u32); free(u64); free(ch);
  return r;
}

int hk__plan_guillotine(const hk__plan_prob *p, uint64_t node_limit, double deadline, uint64_t *off,
                        uint64_t *nodes, uint64_t **fail) {
  /* (its bitsets span the bound in granules: declined past 8M of them, 1 MB a bitset) */
  if (!p->tight || p->n == 0 || p->lb / p->gran > ((uint64_t)1 << 23)) return 0;
  for (size_t i = 0; i < p->n; i++)
    if (p->align[i] > 1) return 0;
  gsrch g;
  memset(&g, 0, sizeof g);
  g.p = p;
  g.limit = node_limit;
  g.deadline = deadline;
  g.max_depth = 4096; /* each level holds a few small frames: bounded C stack */
  g.fmask = GUILLOTINE_TABLE - 1;
  if (!*fail) *fail = calloc(GUILLOTINE_TABLE, sizeof **fail);
  g.fail = *fail;
  g.off = malloc(p->n * sizeof *g.off);
  g.zob = malloc(p->n * sizeof *g.zob);
  g.rsl = malloc(p->n * sizeof *g.rsl);
  g.rsu = malloc(p->n * sizeof *g.rsu);
  uint32_t *all = malloc(p->n * sizeof *all);
  int rc = HK_ENOMEM;
  if (g.off && g.zob && g.fail && all && g.rsl && g.rsu) {
    for (size_t i = 0; i < p->n; i++) { g.rsl[i] = (uint32_t)p->nsec - p->su[i]; g.rsu[i] = (uint32_t)p->nsec - p->sl[i]; }
    for (size_t i = 0; i < p->n; i++) { all[i] = (uint32_t)i; g.zob[i] = gmix(i * 0x9E3779B97F4A7C15ull + 0x1234567ull); }
    int r = solve(&g, all, p->n, 0, (uint32_t)p->nsec, 0, p->lb);
    if (g.nomem) rc = HK_ENOMEM;
    else if (r == G_OK) { memcpy(off, g.off, p->n * sizeof *off); rc = 1; }
    else rc = r == G_FAIL ? 2 : 0;
  }
  if (nodes) *nodes += g.steps;
  free(g.off); free(g.zob); free(g.rsl); free(g.rsu); free(all);
  return rc;
}
