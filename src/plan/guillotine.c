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
 *   - otherwise the window is a stack of primitive strips (sets whose total is the same in every
 *     section and that have a time cut of their own), which can be reordered freely; the lowest
 *     strip's set B1 is enumerated boundary by boundary, from left to right (or from right to left
 *     when fewer buffers end at e than start at a): B1's total is the same in every section iff at
 *     every boundary x the chosen buffers ending at x total the same as the chosen ones starting
 *     at x. A buffer starting at x is decided at x; a buffer starting at a is decided where it
 *     ends (its first boundary: deciding the whole subset at a, and so the height, up front left
 *     ~2^37 subsets to try on 38 starters). At x: sum(U) + D = sum(S), U the chosen buffers from a
 *     ending at x, S the chosen starters, D the total of the earlier-chosen starters that end at x.
 *     The side with fewer items is enumerated, smaller subsets first, the other side by exact
 *     subset sums (memoised; identical buffers taken in order). B1 must have a time cut (a
 *     boundary that no chosen buffer crosses) and leave out some buffer from a (so c < H). Which
 *     strip is the lowest alternates between calls (rounds): even rounds take the one holding b*
 *     (the largest buffer starting at a), odd rounds the thinnest first (only strips made of the
 *     4, 8, 16... smallest buffers of the window, then all): dense windows hold many thin strips
 *     of tiny buffers whose subset sums match almost anywhere, and b*'s strip has to decide every
 *     one of them. A complete B1 (height c) is solved below c and B \ B1 above it. A round flag
 *     (HK_PLAN_GUILLOTINE_LARGE) tries the larger subsets of a boundary's free side first; another
 *     (HK_PLAN_GUILLOTINE_SHORT) orders a boundary's items by lifetime first (b* is then the
 *     shortest-lived of the largest buffers at a; any strip can be the lowest). A third
 *     (HK_PLAN_GUILLOTINE_CUT) chooses B1's first time cut xc before its buffers: those crossing
 *     xc are left out from the start, B1 must cross every boundary before xc, and the cuts share
 *     the work (each gets a budget, doubling, so that a wrong cut whose sets are slow to refute
 *     does not take it all).
 *
 * The search is complete for guillotine packings: an exhausted search proves there is none (not
 * that no perfect packing exists). Sets that failed are remembered by a Zobrist hash (a set
 * determines its window and height; the base offset does not matter), and so are enumeration
 * states from which no set B1 could be completed (the boundary, the chosen starters still live
 * there, whether a buffer from a was left out) and failed subset-sum questions. Work is bounded
 * by a node budget and the deadline. Buffers with an alignment above 1 are not handled (the
 * caller skips the search then). */
#include "plan/plan_internal.h"

#include <stdlib.h>
#include <string.h>

enum { G_FAIL = 0, G_OK = 1, G_STOP = -2 };
#define GUILLOTINE_TABLE ((size_t)1 << 18)
/* cut-first rounds: the first work budget of each cut, per buffer of the window (see solve) */
#ifndef GUILLOTINE_CUT_STEPS
#define GUILLOTINE_CUT_STEPS 128
#endif

typedef struct gsrch {
  const hk__plan_prob *p;
  uint64_t *off, *zob, *fail;
  uint32_t *rsl, *rsu; /* sections of the time reversal (nsec - su, nsec - sl) */
  size_t fmask;
  uint64_t limit, steps, evals; /* work budget, work done (steps), complete sets B1 tried */
  uint64_t calls;                /* calls to spent */
  bool stop; /* the budget or the deadline ran out */
  bool thin; /* the lowest strip: the thinnest first, not the one holding b* */
  bool flip; /* enumerate from the end with more buffers */
  bool large; /* at each boundary, the larger subsets of the free side first (see freely) */
  bool shortf; /* a boundary's items by lifetime, then size: the shortest first, b* too */
  bool cutfirst; /* the strip's first time cut is chosen before its buffers (see lowest) */
  bool fluid; /* single-section buffers as per-section amounts (see the fluid section below) */
  bool few; /* the lowest strip: the one with the fewest buffers first (levels of a cap on its count) */
  bool height; /* thin rounds: levels of a cap on the strip's height, not of the buffers' count */
  /* fluid rounds: section s's single-section buffers are pb[pst[s]..pst[s+1]) (size descending),
   * its current pieces pc[pst[s]..pst[s] + pcn[s]) (amounts, each to be made of some of them); a
   * trail of the changes to undo (tr), the slots of the packing found so far (sl), and lazily the
   * subset sums of each section's singles (sums) */
  uint32_t *pst, *pb, *pcn;
  uint64_t *pc, **sums, *rcache;
  struct gtrail { uint32_t s, i; uint64_t old; } *tr;
  struct gslot { uint32_t s; uint64_t off, amt; } *sl;
  size_t ntr, ctr, nsl, csl;
  double deadline;
  size_t depth, max_depth;
  bool nomem;
} gsrch;

static inline uint64_t gmix(uint64_t x) {
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 27; x *= 0x94d049bb133111ebull; x ^= x >> 31;
  return x;
}
static bool fail_has(const gsrch *g, uint64_t k) { return hk__plan_keyset_has(g->fail, g->fmask, k); }
static void fail_add(gsrch *g, uint64_t k) { hk__plan_keyset_add(g->fail, g->fmask, k); }

static int solve(gsrch *g, const uint32_t *L, size_t m, const uint64_t *fl, uint32_t a, uint32_t e, uint64_t o, uint64_t H);

/* Fluid rounds (HK_PLAN_GUILLOTINE_FLUID). A buffer living in one section only crosses no
 * boundary, so the strip equations never need to know which of a section's single-section
 * buffers a strip takes, only their total: in a fluid round they are not items; each window
 * carries per section an amount of them (a piece), a strip takes part of it (decided where the
 * equation of its boundary leaves it: the starters' side is made up by the section's piece), and
 * a one-section window of pieces alone is a slot. Which buffers make which piece is decided only
 * at the end (part_dfs, largest first into the pieces, run on every split so that the pieces
 * stay realisable together). On 400 seed 121 the dense window holds 167 such buffers, whose
 * subsets matched the equations in a huge number of ways (docs/planner.md). A frame's failure
 * then depends on the other pieces of its sections, so a fluid round keeps its own table and
 * never claims exhaustion. */
static void or_shift(uint64_t *d, const uint64_t *s, size_t words, uint64_t sh);
static const uint64_t *fl_sums(gsrch *g, uint32_t s);
static uint64_t fl_hash(uint32_t x, uint64_t v) { return gmix(((uint64_t)(x + 1) << 44) ^ v ^ 0x7f4a7c159e3779b9ull); }

/* Section s's singles pb[j..k) (size descending) into the pieces' room rem[0..np) exactly
 * (their totals agree); two pieces with the same room are interchangeable, one is tried. asg
 * (optional) receives each single's piece. Gives up (false) after *budget assignments. */
static bool part_dfs(const hk__plan_prob *p, const uint32_t *pb, size_t j, size_t k, uint64_t *rem, size_t np, uint32_t *asg,
                     uint64_t *budget) {
  if (j == k) return true;
  uint64_t z = p->size[pb[j]], zmin = p->size[pb[k - 1]];
  size_t fit = np;
  for (size_t i = 0; i < np; i++) {
    if (rem[i] && rem[i] < zmin) return false; /* room no single can fill */
    if (rem[i] == z) fit = i;
  }
  /* a single that fills a piece's room exactly goes there: in any assignment the singles filling
   * that room (all no larger) can swap with it */
  for (size_t i = fit < np ? fit : 0; i < np; i++) {
    if (rem[i] < z || (fit < np && i != fit)) continue;
    size_t i2 = 0;
    while (fit == np && i2 < i && rem[i2] != rem[i]) i2++;
    if (fit == np && i2 < i) continue;
    if (!*budget) return false;
    --*budget;
    rem[i] -= z;
    if (asg) asg[j] = (uint32_t)i;
    bool ok = part_dfs(p, pb, j + 1, k, rem, np, asg, budget);
    rem[i] += z;
    if (ok) return true;
  }
  return false;
}
/* (with 20000, 400 seed 121's coarse problem was placed after 2.37M steps, 3-4x slower in time;
 * with 500, after 1.38M) */
#define FLUID_PART_BUDGET 500
/* the partition answers: a direct-mapped cache of this many words (256 KB, to stay in cache) */
#define FLUID_CACHE ((size_t)1 << 15)
/* at most this many words of subset-sum bitsets (16 MB): above, no fluid round */
#define FLUID_SUMS_WORDS ((uint64_t)1 << 21)

/* The answers are kept in a cache (keyed by the section and its pieces as a multiset: the same
 * splits come back again and again); the assignments made count as work, one step per 4.
 * With asg (the final assignment) the budget is large and nothing is kept. */
static bool fl_realisable(gsrch *g, uint32_t s, uint32_t *asg) {
  uint32_t b0 = g->pst[s], k = g->pst[s + 1] - b0, np = g->pcn[s];
  uint64_t *rem = g->pc + g->pst[g->p->nsec] + b0; /* scratch beside the pieces */
  uint64_t h = gmix(s + 0x51ed2701u), budget = asg ? (uint64_t)1 << 20 : FLUID_PART_BUDGET;
  for (uint32_t i = 0; i < np; i++) h += gmix(g->pc[b0 + i] ^ 0x2545f4914f6cdd1dull);
  uint64_t *slot = &g->rcache[h & (FLUID_CACHE - 1)]; /* low bit: the answer */
  if (!asg && (*slot | 1) == (h | 1)) return *slot & 1;
  memcpy(rem, g->pc + b0, np * sizeof *rem);
  uint64_t b1 = budget;
  bool ok = part_dfs(g->p, g->pb + b0, 0, k, rem, np, asg, &budget);
  if (!asg) {
    g->steps += (b1 - budget) / 4;
    *slot = (h & ~(uint64_t)1) | ok;
  }
  return ok;
}

static void fl_undo(gsrch *g, size_t h) {
  while (g->ntr > h) {
    struct gtrail e = g->tr[--g->ntr];
    g->pcn[e.s]--;
    g->pc[g->pst[e.s] + e.i] = e.old;
  }
}

/* Section s's piece f splits into v and f - v (nothing to do when one is empty); false when the
 * pieces could no longer be made of the section's singles. */
static bool fl_split(gsrch *g, uint32_t s, uint64_t f, uint64_t v) {
  if (v == 0 || v == f) return true;
  uint32_t b0 = g->pst[s], k = g->pst[s + 1] - b0, n = g->pcn[s];
  if (n >= k) return false; /* every piece needs a single of its own */
  const uint64_t *bs = fl_sums(g, s); /* each part alone must be a subset sum (most are not) */
  if (!bs || !(bs[v >> 6] >> (v & 63) & 1) || !(bs[(f - v) >> 6] >> ((f - v) & 63) & 1)) return false;
  uint64_t *pc = g->pc + b0;
  uint32_t i = 0;
  while (i < n && pc[i] != f) i++;
  if (i == n) return false; /* (cannot happen: the frame's piece is there) */
  g->tr[g->ntr++] = (struct gtrail){s, i, f};
  pc[i] = v;
  pc[n] = f - v;
  g->pcn[s] = n + 1;
  if (n == 1 || fl_realisable(g, s, NULL)) return true; /* (two pieces: v a subset sum is enough) */
  fl_undo(g, g->ntr - 1);
  return false;
}

/* The subset sums of section s's singles, a bitset over [0, their total] (built on first use). */
static const uint64_t *fl_sums(gsrch *g, uint32_t s) {
  if (g->sums[s]) return g->sums[s];
  uint32_t b0 = g->pst[s], k = g->pst[s + 1] - b0;
  uint64_t tot = 0;
  for (uint32_t j = 0; j < k; j++) tot += g->p->size[g->pb[b0 + j]];
  size_t w = (size_t)(tot >> 6) + 1;
  uint64_t *r = calloc(w, sizeof *r);
  if (!r) { g->nomem = true; return NULL; }
  r[0] = 1;
  for (uint32_t j = 0; j < k; j++) or_shift(r, r, w, g->p->size[g->pb[b0 + j]]);
  return g->sums[s] = r;
}

/* The enumeration of the lowest strip's set B1 (see the file comment). Two kinds of items per
 * boundary x of the window (positions relative to its start a): the buffers starting at x (side
 * S), decided at x; and the buffers starting at a that end at x (side U), also decided at x, their
 * first boundary (not at a, where nothing constrains them). At x the chosen buffers must satisfy
 * sum(U chosen) + D = sum(S chosen), D the total of the S-side buffers chosen earlier that end at
 * x. The side with fewer items is enumerated freely, the other by exact subset sums. */
typedef struct strip {
  gsrch *g;
  uint32_t W;              /* sections of the window */
  uint32_t a;              /* the window's start, in the enumeration's orientation */
  uint32_t sa, se;         /* the window as solve sees it */
  const uint32_t *sl, *su; /* sections: the problem's, or mirrored (see solve) */
  const uint32_t *it[2];   /* items by side (0: S, 1: U), grouped by boundary, size descending */
  const uint32_t *lo[2];   /* lo[s][x] .. lo[s][x + 1]: positions of side s's items at boundary x */
  uint64_t *suf[2];        /* suf[s][k]: total size of positions k.. up to the end of k's group */
  uint8_t *ch[2];          /* chosen, by side and position */
  uint64_t *endsum;        /* endsum[x]: total of chosen S items ending at x */
  uint64_t *endhash;       /* endhash[x]: Zobrist hash of the chosen S items ending at x */
  uint32_t *endcnt;        /* endcnt[x]: how many chosen S items end at x */
  uint32_t bpos;           /* b*: its position on side U (always chosen), or UINT32_MAX */
  uint64_t Q;              /* only buffers of at most this size may be chosen */
  uint64_t **rb;           /* rb[s * (W + 1) + x]: the group's suffix subset sums (see suffix_sums) */
  size_t *rw;              /* their words per position; SIZE_MAX: not kept (too large) */
  uint32_t *l1, *l2;       /* scratch for B1 and B \ B1 */
  const uint32_t *L;
  size_t m;
  uint64_t o, H, setkey, hall; /* hall: hash of every chosen S item */
  uint32_t xc;             /* the strip's first time cut (0: not fixed); the buffers crossing it */
  const uint32_t *exc;     /* were taken out of the items: exc[0..nexc) go above with the rest */
  size_t nexc;
  /* fluid rounds (NULL otherwise): per section x of the window (enumeration orientation), the
   * window's piece fl[x], the part gv[x] the strip takes, the section's number fs[x]; section 0's
   * part is decided at boundary 1 with the U side, section x's (x >= 1) at x with the starters */
  const uint64_t *fl;
  uint64_t *gv;
  const uint32_t *fs;
  bool mir;
  uint32_t nch, kcap; /* buffers chosen, and at most this many (the few rounds' level) */
  uint64_t usum, hcap;     /* the chosen U items' total (B1's height so far), at most hcap */
} strip;

static inline bool same_item(const strip *t, int s, size_t j, size_t k) {
  const hk__plan_prob *p = t->g->p;
  uint32_t u = t->it[s][j], v = t->it[s][k];
  return p->size[u] == p->size[v] && t->su[u] == t->su[v];
}

/* The first position of side s's group at x whose buffer is at most Q (groups are by size,
 * descending). */
static size_t first(const strip *t, int s, uint32_t x) {
  size_t k = t->lo[s][x], hi = t->lo[s][x + 1];
  while (k < hi && t->g->p->size[t->it[s][k]] > t->Q) k++;
  return k;
}

/* d |= s << sh, over bitsets of the given words (d may be s). */
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

/* Work is counted in chosen buffers (the enumeration's unit) as well as in solved sets. */
static bool spent(gsrch *g) {
  if (g->stop) return true;
  /* (the clock every 4096 calls: steps also grows by the fluid rounds' partition work) */
  if (++g->steps > g->limit || ((++g->calls & 4095) == 0 && hk__plan_clock(g->p) > g->deadline)) g->stop = true;
  return g->stop;
}

static void choose(strip *t, int s, size_t k, bool on) {
  t->ch[s][k] = on;
  t->nch += on ? 1u : (uint32_t)-1;
  if (s == 1) { uint64_t z = t->g->p->size[t->it[1][k]]; if (on) t->usum += z; else t->usum -= z; return; }
  const hk__plan_prob *p = t->g->p;
  uint32_t b = t->it[0][k], x = t->su[b] - t->a;
  if (x < t->W) {
    if (on) t->endsum[x] += p->size[b], t->endcnt[x]++;
    else t->endsum[x] -= p->size[b], t->endcnt[x]--;
    t->endhash[x] ^= t->g->zob[b];
  }
  t->hall ^= t->g->zob[b];
}

/* B1 is complete: solve it below, the rest above. */
static int evaluate(strip *t) {
  const hk__plan_prob *p = t->g->p;
  t->g->evals++;
  size_t n1 = 0, n2 = 0;
  uint64_t c = 0;
  for (int s = 0; s < 2; s++)
    for (size_t k = 0; k < t->lo[s][t->W]; k++) {
      uint32_t b = t->it[s][k];
      if (t->ch[s][k]) { t->l1[n1++] = b; if (s == 1) c += p->size[b]; }
      else t->l2[n2++] = b;
    }
  for (size_t i = 0; i < t->nexc; i++) t->l2[n2++] = t->exc[i];
  uint64_t *f1 = NULL, *f2 = NULL;
  if (t->fl) {
    c += t->gv[0];
    f1 = malloc(2 * t->W * sizeof *f1);
    if (!f1) { t->g->nomem = t->g->stop = true; return G_STOP; }
    f2 = f1 + t->W;
    for (uint32_t x = 0; x < t->W; x++) {
      uint32_t xs = t->mir ? t->W - 1 - x : x;
      f1[xs] = t->gv[x];
      f2[xs] = t->fl[x] - t->gv[x];
    }
  }
  if (c == 0 || c >= t->H || (n2 == 0 && !t->fl)) { free(f1); return G_FAIL; }
  /* the set above first (l1 and l2 are this frame's: the calls below have their own scratch) */
  size_t h = t->g->ntr, hs = t->g->nsl;
  int r = solve(t->g, t->l2, n2, f2, t->sa, t->se, t->o + c, t->H - c);
  if (r == G_OK) r = solve(t->g, t->l1, n1, f1, t->sa, t->se, t->o, c);
  if (r != G_OK) { fl_undo(t->g, h); t->g->nsl = hs; }
  free(f1);
  return r;
}

static int sweep(strip *t, uint32_t x, uint64_t gone, uint64_t st);

/* Can positions k.. of side s's group at x total exactly need? Asked again and again (the same
 * boundary, the same remainder); the answers "no" are kept in the table of failures (keyed by the
 * round's parity too: b*, chosen from the start, is skipped in even rounds only). */
/* For a group of small total (the groups of tiny buffers where the subset sums match almost
 * anywhere and the memoised search below spent most of the time): one bitset of the subset sums of
 * positions k.. per position k, over [0, total], built on first use. b*, chosen throughout, is
 * left out; the other positions from k on are unchosen whenever can is asked. NULL when the group
 * is too large for it (more than SUFFIX_WORDS words) or memory is short. */
#define SUFFIX_WORDS 4096
static const uint64_t *suffix_sums(strip *t, int s, uint32_t x, size_t *words) {
  size_t i = (size_t)s * (t->W + 1) + x, lo = t->lo[s][x], hi = t->lo[s][x + 1];
  if (!t->rb || t->rw[i] == SIZE_MAX) return NULL;
  *words = t->rw[i];
  if (t->rb[i]) return t->rb[i];
  size_t w = (size_t)(t->suf[s][lo] >> 6) + 1;
  if (t->suf[s][lo] >= ((uint64_t)SUFFIX_WORDS << 6) || (hi - lo + 1) * w > SUFFIX_WORDS) { t->rw[i] = SIZE_MAX; return NULL; }
  uint64_t *r = calloc((hi - lo + 1) * w, sizeof *r);
  if (!r) { t->rw[i] = SIZE_MAX; return NULL; }
  uint64_t *cur = r + (hi - lo) * w; /* position hi: the empty set */
  cur[0] = 1;
  for (size_t k = hi; k-- > lo;) {
    uint64_t *d = r + (k - lo) * w;
    memcpy(d, cur, w * sizeof *d);
    if (!(s == 1 && k == t->bpos)) or_shift(d, cur, w, t->g->p->size[t->it[s][k]]);
    cur = d;
  }
  t->rb[i] = r;
  *words = t->rw[i] = w;
  return r;
}

static bool can(strip *t, int s, uint32_t x, size_t k, uint64_t need) {
  const hk__plan_prob *p = t->g->p;
  if (need == 0) return true;
  size_t hi = t->lo[s][x + 1], w;
  if (k >= hi || t->suf[s][k] < need) return false;
  const uint64_t *r = suffix_sums(t, s, x, &w);
  if (r) {
    r += (k - t->lo[s][x]) * w;
    return need < (uint64_t)w * 64 && (r[need >> 6] >> (need & 63) & 1);
  }
  uint64_t key = gmix(t->setkey ^ gmix(need * 0x9E3779B97F4A7C15ull ^ ((uint64_t)x << 40) ^ ((uint64_t)k << 8) ^ (0x5bd1e995u + (unsigned)s + 2u * (t->bpos == UINT32_MAX))));
  key = key ? key : 1;
  if (fail_has(t->g, key)) return false;
  for (size_t j = k; j < hi && t->suf[s][j] >= need; j++) {
    if (t->ch[s][j] || (j > k && same_item(t, s, j, j - 1) && !t->ch[s][j - 1])) continue;
    uint64_t z = p->size[t->it[s][j]];
    if (z > need) continue;
    if (spent(t->g)) return true; /* the caller sees the stop */
    if (can(t, s, x, j + 1, need - z)) return true;
  }
  fail_add(t->g, key);
  return false;
}

/* The state carried along the sweep (st): whether a buffer from a was left out (B1 must not be
 * all of B), whether B1 has a time cut already, whether a cut was passed up and some buffer from
 * a that crosses it must be chosen, and how many chosen starters are live (shifted by ST_LIVE). */
enum { ST_EXCL = 1, ST_CUT = 2, ST_PEND = 4, ST_ANY = 8, ST_LIVE = 16 };

/* The boundary is settled: on to the next. B1 is taken primitive, i.e. with a time cut of its own
 * (a window without a time cut or a full-width buffer is a stack of such strips, and any can be
 * the lowest): where no chosen starter crosses x and b* has ended, either B1 is cut there (every
 * buffer from a still live is left out) or it is not, and then one of those must be chosen. */
static int next(strip *t, uint32_t x, uint64_t gone, uint64_t st) {
  size_t u0 = t->lo[1][x], u1 = t->lo[1][x + 1], uend = t->lo[1][t->W], chosen = 0, sn = 0;
  for (size_t k = u0; k < u1; k++) chosen += t->ch[1][k];
  if (chosen < u1 - u0) st |= ST_EXCL;
  if (t->fl && x == 1 && t->fl[0]) { /* section 0's piece: part of it left out, or part chosen */
    if (t->gv[0] < t->fl[0]) st |= ST_EXCL;
    chosen += t->gv[0] > 0;
  }
  if (chosen) st = (st & ~(uint64_t)ST_PEND) | ST_ANY;
  for (size_t k = t->lo[0][x]; k < t->lo[0][x + 1]; k++) sn += t->ch[0][k];
  if (t->fl && t->gv[x]) sn++; /* section x's part starts here */
  uint64_t cross = (st / ST_LIVE) - t->endcnt[x]; /* chosen starters crossing x */
  st = (st % ST_LIVE) + (cross + sn) * ST_LIVE;
  if (u1 == uend && (st & ST_PEND)) return G_FAIL; /* none left to cross the passed cut */
  if (!(st & ST_CUT) && cross == 0 && (t->bpos == UINT32_MAX ? (st & ST_ANY) != 0 : t->bpos < u1)) {
    if (t->xc && x < t->xc) { /* the first cut is at xc: B1 must cross x */
      if (u1 == uend) return G_FAIL;
      st |= ST_PEND;
    } else if (u1 == uend) st |= ST_CUT; /* nothing from a crosses x: B1 is cut there */
    else if (!(st & ST_PEND)) {
      int r = sweep(t, x + 1, gone, st | ST_CUT | ST_EXCL);
      if (r != G_FAIL) return r;
      st |= ST_PEND;
    }
  }
  return sweep(t, x + 1, gone, st);
}

/* Subsets of side s's items at x (positions k..) totalling exactly need. */
static int exact(strip *t, int s, uint32_t x, size_t k, uint64_t need, uint64_t gone, uint64_t st) {
  const hk__plan_prob *p = t->g->p;
  if (need == 0) return next(t, x, gone, st);
  if (t->nch >= t->kcap) return G_FAIL;
  size_t hi = t->lo[s][x + 1];
  for (size_t j = k; j < hi; j++) {
    if (t->suf[s][j] < need) break;
    if (t->ch[s][j] || (j > k && same_item(t, s, j, j - 1) && !t->ch[s][j - 1])) continue;
    uint64_t z = p->size[t->it[s][j]];
    if (z > need) continue;
    if (s == 1 && t->usum + z > t->hcap) continue;
    if (spent(t->g)) return G_STOP;
    if (!can(t, s, x, j + 1, need - z)) continue;
    if (t->g->stop) return G_STOP;
    choose(t, s, j, true);
    int r = exact(t, s, x, j + 1, need - z, gone, st);
    choose(t, s, j, false);
    if (r != G_FAIL) return r;
  }
  return G_FAIL;
}

/* Fluid rounds: section x's part is v (a starter at x ending at x + 1); then the next boundary. */
static int fluid_at(strip *t, uint32_t x, uint64_t v, uint64_t gone, uint64_t st) {
  gsrch *g = t->g;
  size_t h = g->ntr;
  if (!fl_split(g, t->fs[x], t->fl[x], v)) return G_FAIL;
  uint64_t z = v ? fl_hash(x, v) : 0;
  t->gv[x] = v;
  if (v && x + 1 < t->W) { t->endsum[x + 1] += v; t->endcnt[x + 1]++; t->endhash[x + 1] ^= z; }
  t->hall ^= z;
  int r = next(t, x, gone, st);
  t->hall ^= z;
  if (v && x + 1 < t->W) { t->endsum[x + 1] -= v; t->endcnt[x + 1]--; t->endhash[x + 1] ^= z; }
  t->gv[x] = 0;
  if (r != G_OK) fl_undo(g, h);
  return r;
}

/* Fluid rounds, where section x has a piece: the subsets of side s's items at x (positions k..),
 * with acc their total so far, each completed by section x's part v = base + acc (neg: base -
 * acc), which must lie in [0, fl[x]]. */
static int range(strip *t, int s, uint32_t x, size_t k, uint64_t acc, int64_t base, bool neg, uint64_t gone, uint64_t st) {
  const hk__plan_prob *p = t->g->p;
  int64_t v = neg ? base - (int64_t)acc : base + (int64_t)acc, f = (int64_t)t->fl[x];
  if (neg ? v < 0 : v > f) return G_FAIL; /* more items only go further */
  size_t hi = t->lo[s][x + 1];
  int64_t rest = k < hi ? (int64_t)t->suf[s][k] : 0;
  if (neg ? v - rest > f : v + rest < 0) return G_FAIL; /* all the rest would not be enough */
  bool ok = v >= 0 && v <= f, large = t->g->large;
  if (ok && !large) {
    int r = fluid_at(t, x, (uint64_t)v, gone, st);
    if (t->g->stop) return G_STOP;
    if (r != G_FAIL) return r;
  }
  for (size_t j = k; j < hi; j++) {
    if (t->ch[s][j] || (j > k && same_item(t, s, j, j - 1) && !t->ch[s][j - 1])) continue;
    int64_t z = (int64_t)p->size[t->it[s][j]];
    if (neg ? v - z < 0 : v + z > f) continue;
    if (s == 1 && t->usum + (uint64_t)z > t->hcap) continue;
    if (t->nch >= t->kcap) break;
    if (spent(t->g)) return G_STOP;
    choose(t, s, j, true);
    int r = range(t, s, x, j + 1, acc + (uint64_t)z, base, neg, gone, st);
    choose(t, s, j, false);
    if (r != G_FAIL) return r;
  }
  if (ok && large) {
    int r = fluid_at(t, x, (uint64_t)v, gone, st);
    if (t->g->stop) return G_STOP;
    return r;
  }
  return G_FAIL;
}

/* Every subset of side s's items at x (positions k..), the smaller ones first (the subsets
 * extending this one after it; before it in the large-first rounds), each completed by an exact
 * subset of the other side: sum(U) + D = sum(S). sum: the chosen ones' total so far (with b* when
 * it is on this side); fixed: what the other side holds already (b* there). */
static int freely(strip *t, int s, uint32_t x, size_t k, uint64_t sum, uint64_t D, uint64_t fixed, uint64_t gone, uint64_t st) {
  const hk__plan_prob *p = t->g->p;
  int o = 1 - s;
  size_t of = first(t, o, x);
  uint64_t avail = of < t->lo[o][x + 1] ? t->suf[o][of] : 0; /* the other side, all of it */
  /* the other side must make up: S free -> sum(U) = sum - D; U free -> sum(S) = sum + D */
  uint64_t lhs = s == 0 ? sum : sum + D, rhs = s == 0 ? D + fixed : fixed;
  bool done = t->g->large; /* this subset itself: tried first, or after the loop below */
  bool fx = t->fl && x > 0 && t->fl[x]; /* section x's piece makes up part of the starters */
  uint64_t fmore = fx && s == 1 ? t->fl[x] : 0;
  if (!done && (fx || (lhs >= rhs && lhs - rhs <= avail - fixed))) {
  this_one:;
    int r = fx ? range(t, o, x, of, 0, s == 0 ? (int64_t)rhs - (int64_t)lhs : (int64_t)lhs - (int64_t)rhs, s == 1, gone, st)
            : lhs == rhs ? next(t, x, gone, st) : can(t, o, x, of, lhs - rhs) ? exact(t, o, x, of, lhs - rhs, gone, st) : G_FAIL;
    if (t->g->stop) return G_STOP;
    if (r != G_FAIL || done) return r;
  }
  size_t hi = t->lo[s][x + 1];
  for (size_t j = k; j < hi; j++) {
    if (t->ch[s][j] || (j > k && same_item(t, s, j, j - 1) && !t->ch[s][j - 1])) continue;
    uint64_t z = p->size[t->it[s][j]];
    if (lhs + z > rhs + avail - fixed + fmore) continue; /* the other side cannot make up that much */
    if (s == 1 && t->usum + z > t->hcap) continue;
    if (t->nch >= t->kcap) break;
    if (spent(t->g)) return G_STOP;
    choose(t, s, j, true);
    int r = freely(t, s, x, j + 1, sum + z, D, fixed, gone, st);
    choose(t, s, j, false);
    if (r != G_FAIL) return r;
  }
  if (done && (fx || (lhs >= rhs && lhs - rhs <= avail - fixed))) goto this_one;
  return G_FAIL;
}

/* Boundaries from x on. What follows depends only on x, the chosen S items still live there and
 * whether a buffer from a was left out, so a state from which no set B1 could be completed (not
 * one whose sets failed to solve) is remembered and not explored again. */
static int sweep(strip *t, uint32_t x, uint64_t gone, uint64_t st) {
  for (; x < t->W; x++) {
    bool items = t->lo[0][x] < t->lo[0][x + 1] || t->lo[1][x] < t->lo[1][x + 1];
    if (t->fl && (t->fl[x] || (x == 1 && t->fl[0]))) items = true;
    if (items) break;
    if (t->endsum[x]) return G_FAIL; /* chosen buffers end here and nothing can replace them */
  }
  if (x >= t->W) return (st & ST_EXCL) && (st & ST_CUT) ? evaluate(t) : G_FAIL;
  uint64_t key = gmix(t->setkey ^ gmix((t->hall ^ gone) + x * 0x9E3779B97F4A7C15ull + (st % ST_LIVE)) ^ gmix(t->Q));
  if (t->hcap != UINT64_MAX) /* (what B1 may still take from a depends on its height so far) */
    key = gmix(key ^ gmix(t->usum + 0x3c6ef372fe94f82bull));
  if (t->g->few) /* (b* is not chosen, and the count left bounds what follows) */
    key = gmix(key ^ ((uint64_t)(t->kcap == UINT32_MAX ? 0 : t->kcap - t->nch + 1) << 20) ^ 0x6a09e667f3bcc909ull);
  key = key ? key : 1;
  if (fail_has(t->g, key)) return G_FAIL;
  uint64_t ev = t->g->evals;
  uint64_t D = t->endsum[x], fixed = 0;
  gone ^= t->endhash[x];
  size_t ns = t->lo[0][x + 1] - t->lo[0][x], nu = t->lo[1][x + 1] - t->lo[1][x];
  bool bhere = t->bpos >= t->lo[1][x] && t->bpos < t->lo[1][x + 1];
  int r;
  if ((st & ST_CUT) && t->fl && t->fl[x]) /* ... with section x's part */
    r = range(t, 0, x, first(t, 0, x), 0, (int64_t)D, true, gone, st);
  else if (st & ST_CUT) /* past B1's cut every buffer from a is left out: the starters make up D */
    r = D == 0 ? next(t, x, gone, st) : can(t, 0, x, first(t, 0, x), D) ? exact(t, 0, x, first(t, 0, x), D, gone, st) : G_FAIL;
  else {
    if (bhere) nu--;
    int s = nu < ns; /* enumerate the side with fewer items */
    uint64_t sum = 0;
    if (bhere) { if (s == 1) sum = t->g->p->size[t->it[1][t->bpos]]; else fixed = t->g->p->size[t->it[1][t->bpos]]; }
    if (t->fl && x == 1 && t->fl[0]) {
      /* section 0's part v, on the U side: each total its singles can make (folded into D, which
       * stands on the U side of the equation) */
      const uint64_t *bs = fl_sums(t->g, t->fs[0]);
      uint64_t f0 = t->fl[0], nw = (f0 >> 6) + 1;
      r = bs ? G_FAIL : G_STOP;
      for (uint64_t i = 0; bs && i < nw && r == G_FAIL; i++) { /* a word of the bitset at a time */
        uint64_t w = t->g->large ? nw - 1 - i : i, bits = bs[w];
        if (w == nw - 1 && (f0 & 63) != 63) bits &= ((uint64_t)2 << (f0 & 63)) - 1; /* (up to f0) */
        if (spent(t->g)) { r = G_STOP; break; }
        while (bits && r == G_FAIL) {
          unsigned b = t->g->large ? 63 - (unsigned)__builtin_clzll(bits) : (unsigned)__builtin_ctzll(bits);
          bits &= ~((uint64_t)1 << b);
          uint64_t v = w * 64 + b;
          if (spent(t->g)) { r = G_STOP; break; }
          size_t h = t->g->ntr;
          if (!fl_split(t->g, t->fs[0], f0, v)) continue;
          t->gv[0] = v;
          r = freely(t, s, x, first(t, s, x), sum, D + v, fixed, gone, st);
          t->gv[0] = 0;
          if (r != G_OK) fl_undo(t->g, h);
        }
      }
    } else
      r = freely(t, s, x, first(t, s, x), sum, D, fixed, gone, st);
  }
  if (r == G_FAIL && t->g->evals == ev) fail_add(t->g, key);
  return r;
}

/* The lowest strip's set B1 among L[0..m) (the frame's buffers but those crossing xc, which are
 * in Lx[0..mx) and go above with the rest; xa: one of them starts at the window's start), from
 * the window's start wa in the orientation SL/SU; the scratch is solve's (sized for its fm
 * buffers). */
static int lowest(gsrch *g, const uint32_t *L, size_t m, const uint32_t *Lx, size_t mx, bool xa, size_t fm, uint32_t a,
                  uint32_t e, uint64_t o, uint64_t H, uint64_t key, const uint32_t *SL, const uint32_t *SU, uint32_t wa,
                  uint32_t xc, uint32_t *u32, uint64_t *u64, uint8_t *ch, const uint64_t *fl) {
  const hk__plan_prob *p = g->p;
  size_t W = e - a;
  uint32_t *cnt = u32, *ord = u32 + (W + 2), *lo = ord + fm, *l1 = lo + (W + 2), *l2 = l1 + fm;
  int r = G_FAIL;
  hk__plan_kv *kv = malloc(m * sizeof *kv);
  if (!kv) { g->nomem = true; return G_STOP; }
  /* by size descending, then end (identical buffers adjacent), then index */
  for (size_t i = 0; i < m; i++) { /* (any order keeping identical buffers adjacent is sound) */
    uint64_t len = SU[L[i]] - SL[L[i]], z = p->size[L[i]], k = ~z;
    if (g->shortf && z < ((uint64_t)1 << 40)) k = (len << 44) | (((uint64_t)1 << 44) - 1 - z);
    kv[i] = (hk__plan_kv){k, ((uint64_t)SU[L[i]] << 32) | L[i]};
  }
  hk__plan_sort_kv(kv, m);
  /* counting sort by boundary keeps the size order: S items by their start, U items (those
   * starting at a) by their end */
  uint32_t *its = ord, *itu = l2 + fm, *los = lo, *lou = l2 + 2 * fm, *pos = cnt;
  memset(los, 0, (W + 2) * sizeof *los);
  memset(lou, 0, (W + 2) * sizeof *lou);
  for (size_t i = 0; i < m; i++) {
    uint32_t b = (uint32_t)(kv[i].val & 0xffffffffu);
    if (SL[b] == wa) lou[SU[b] - wa + 1]++;
    else los[SL[b] - wa + 1]++;
  }
  for (size_t x = 0; x < W; x++) { los[x + 1] += los[x]; lou[x + 1] += lou[x]; }
  memcpy(pos, los, (W + 1) * sizeof *pos);
  for (size_t i = 0; i < m; i++) { uint32_t b = (uint32_t)(kv[i].val & 0xffffffffu); if (SL[b] != wa) its[pos[SL[b] - wa]++] = b; }
  memcpy(pos, lou, (W + 1) * sizeof *pos);
  uint32_t bpos = UINT32_MAX;
  for (size_t i = 0; i < m; i++) {
    uint32_t b = (uint32_t)(kv[i].val & 0xffffffffu);
    if (SL[b] != wa) continue;
    if (bpos == UINT32_MAX) bpos = pos[SU[b] - wa]; /* b*: the largest buffer at a */
    itu[pos[SU[b] - wa]++] = b;
  }
  free(kv);
  if (bpos == UINT32_MAX) return G_FAIL;
  uint64_t *endsum = u64, *endhash = u64 + (W + 1), *sufs = endhash + (W + 1), *sufu = sufs + m;
  memset(endsum, 0, (W + 1) * sizeof *endsum);
  memset(endhash, 0, (W + 1) * sizeof *endhash);
  uint32_t *endcnt = lou + (W + 2);
  memset(endcnt, 0, (W + 1) * sizeof *endcnt);
  for (size_t x = 0; x < W; x++) {
    uint64_t acc = 0;
    for (size_t k = los[x + 1]; k-- > los[x];) { acc += p->size[its[k]]; sufs[k] = acc; }
    acc = 0;
    for (size_t k = lou[x + 1]; k-- > lou[x];) { acc += p->size[itu[k]]; sufu[k] = acc; }
  }
  strip t = {.g = g, .W = (uint32_t)W, .a = wa, .sa = a, .se = e, .sl = SL, .su = SU, .it = {its, itu}, .lo = {los, lou},
           .suf = {sufs, sufu}, .ch = {ch, ch + m}, .endsum = endsum, .endhash = endhash, .endcnt = endcnt, .bpos = bpos, .l1 = l1,
           .l2 = l2, .L = L, .m = m, .o = o, .H = H, .setkey = xc ? gmix(key ^ (0x9e3779b97f4a7c15ull * xc)) : key,
           .xc = xc, .exc = Lx, .nexc = mx};
  /* the subset-sum answers are keyed by positions, and the enumeration states assume b* chosen:
   * another order, another key */
  if (g->shortf) t.setkey = gmix(t.setkey ^ 0x243f6a8885a308d3ull);
  if (g->thin || g->few) bpos = UINT32_MAX;
  t.bpos = bpos;
  t.kcap = UINT32_MAX;
  t.hcap = UINT64_MAX;
  uint64_t *fbuf = NULL;
  if (fl) { /* the pieces in the enumeration's orientation */
    fbuf = malloc(2 * W * sizeof *fbuf + W * sizeof(uint32_t));
    if (!fbuf) { g->nomem = true; return G_STOP; }
    uint32_t *fs = (uint32_t *)(fbuf + 2 * W);
    t.mir = SL != p->sl;
    for (size_t x = 0; x < W; x++) {
      size_t xs = t.mir ? W - 1 - x : x;
      fbuf[x] = fl[xs];
      fbuf[W + x] = 0;
      fs[x] = a + (uint32_t)xs;
    }
    t.fl = fbuf;
    t.gv = fbuf + W;
    t.fs = fs;
  }
  t.rb = calloc(2 * (W + 1), sizeof *t.rb);
  t.rw = calloc(2 * (W + 1), sizeof *t.rw);
  if (!t.rb || !t.rw) { free(t.rb); free(t.rw); t.rb = NULL; t.rw = NULL; } /* (only a slower can) */
  if (bpos != UINT32_MAX) ch[m + bpos] = 1;
  if (g->thin && g->height) {
    /* levels: strips at most 1, 2, 4... high first (of buffers up to that size), then any (the
     * last level's Q is H, no limit: UINT64_MAX would key its states as a b* round's) */
    for (uint64_t cap = 1; r == G_FAIL; cap *= 2) {
      bool last = cap >= H;
      t.Q = last ? H : cap;
      t.hcap = last ? UINT64_MAX : cap;
      r = sweep(&t, 1, 0, xa ? ST_EXCL : 0);
      if (last) break;
    }
  } else if (g->thin) {
    /* levels: strips of the smallest 4, 8, 16... buffers first */
    hk__plan_kv *sz = malloc(m * sizeof *sz);
    if (!sz) { g->nomem = true; r = G_STOP; }
    else {
      for (size_t i = 0; i < m; i++) sz[i] = (hk__plan_kv){p->size[L[i]], i};
      hk__plan_sort_kv(sz, m);
    }
    for (size_t cnt = 4; sz && r == G_FAIL; cnt *= 2) {
      if (cnt > m) cnt = m;
      t.Q = sz[cnt - 1].key;
      r = sweep(&t, 1, 0, xa ? ST_EXCL : 0);
      if (cnt == m) break;
    }
    free(sz);
  } else if (g->few) {
    /* levels: strips of at most 2, 3, 4, 6, 8, 12... buffers first, then any */
    t.Q = UINT64_MAX;
    for (uint32_t cap = 2; r == G_FAIL; cap = cap < 4 ? cap + 1 : cap + cap / 2) {
      t.kcap = cap >= m ? UINT32_MAX : cap;
      t.nch = 0;
      r = sweep(&t, 1, 0, xa ? ST_EXCL : 0);
      if (t.kcap == UINT32_MAX) break;
    }
  } else {
    t.Q = UINT64_MAX;
    r = sweep(&t, 1, 0, xa ? ST_EXCL : 0);
  }
  if (t.rb)
    for (size_t i = 0; i < 2 * (W + 1); i++) free(t.rb[i]);
  free(fbuf);
  free(t.rb);
  free(t.rw);
  return r;
}

static int solve(gsrch *g, const uint32_t *L, size_t m, const uint64_t *fl, uint32_t a, uint32_t e, uint64_t o, uint64_t H) {
  const hk__plan_prob *p = g->p;
  if (spent(g) || g->depth >= g->max_depth) { g->stop = true; return G_STOP; }
  size_t W = e - a;
  uint64_t fkey = 0;
  if (fl) { /* fluid rounds: the window's pieces */
    for (size_t x = 0; x < W; x++)
      if (fl[x]) fkey ^= fl_hash(a + (uint32_t)x, fl[x]);
    if (!fkey) fl = NULL;
  }
  if (m == 0) { /* pieces alone: one slot per section, each of the whole height */
    if (!fl) return G_FAIL;
    for (size_t x = 0; x < W; x++)
      if (fl[x] != H) return G_FAIL;
    for (size_t x = 0; x < W; x++) g->sl[g->nsl++] = (struct gslot){a + (uint32_t)x, o, H};
    return G_OK;
  }
  if (m == 1 && !fl) {
    uint32_t b = L[0];
    if (p->sl[b] != a || p->su[b] != e || p->size[b] != H) return G_FAIL;
    g->off[b] = o;
    return G_OK;
  }
  uint64_t key = fkey;
  for (size_t i = 0; i < m; i++) key ^= g->zob[L[i]];
  key = key ? key : 1;
  if (fail_has(g, key)) return G_FAIL;
  size_t h = g->ntr, hs = g->nsl;
  /* one allocation for this frame: crossing counts, the sorted list, section starts, flags... */
  size_t words = 4 * (W + 2) + 6 * m;
  uint32_t *u32 = malloc(words * sizeof *u32);
  uint64_t *u64 = malloc((2 * (W + 1) + 2 * m) * sizeof *u64); /* endsum, endhash, suffix sums */
  uint8_t *ch = calloc(2 * m + 1 + W, 1);
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
        r = solve(g, l1, k, fl ? fl + (x0 - a) : NULL, x0, x1, o, H);
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
      r = k == 0 && !fl ? (s == H ? G_OK : G_FAIL) : s >= H ? G_FAIL : solve(g, l1, k, fl, a, e, o + s, H - s);
      goto leave;
    }
  }
  /* the lowest strip holds b*: enumerate its set (mirrored: sections read from the time reversal,
   * so the code below only goes rightwards) */
  {
    size_t nl = 0, nr = 0;
    for (size_t i = 0; i < m; i++) { nl += p->sl[L[i]] == a; nr += p->su[L[i]] == e; }
    /* from the end with fewer buffers (on seeds 1-150 of 400 and 500 buffers with 4M steps each:
     * 138 + 131 placed; from the end with more: 130 + 121; always the left end: 134 + 127), the
     * other one in rounds 2 and 3 of every 4 (a restart that makes other mistakes: with 12M steps
     * 144 + 148 instead of 141 + 146, with 24M 144 + 149 instead of 141 + 148) */
    bool mir = (nr < nl) ^ g->flip;
    const uint32_t *SL = mir ? g->rsl : p->sl, *SU = mir ? g->rsu : p->su;
    uint32_t wa = mir ? (uint32_t)p->nsec - e : a;
    /* In the cut-first rounds the strip's first time cut xc is chosen before its buffers, nearest
     * the enumeration's start first: the buffers crossing xc are left out from the start, and B1
     * must cross every boundary before it (each strip has one first cut, so this is complete and
     * enumerates no strip twice). Without it, the choices at the boundaries before the cut do not
     * see that their buffers must end by it: on 400 seed 46 the enumeration died at the boundary
     * after 20 multi-section and 24 single-section starters whose subsets matched the equation
     * there, and the generator's strip takes none of the 20 (they cross its cut). */
    uint32_t *Lf = l2 + 2 * m + 2 * (W + 2), *Lx = Lf + m;
    uint8_t *done = ch + 2 * m + 1; /* xc exhausted */
    uint64_t limit = g->limit, sub = GUILLOTINE_CUT_STEPS * (uint64_t)m;
    for (bool again = true; again && r == G_FAIL;) {
      /* The cuts share the work: a wrong cut can sink any budget (on 400 seed 46, B1 cut at the
       * first boundary is b* alone, whose complement took 9M steps without being refuted, while
       * the generator's cut, the sixth, places the instance in 84k), so each cut gets sub
       * steps, then those cut short twice as many, and so on. */
      again = false;
      for (uint32_t xc = g->cutfirst ? 1 : 0; r == G_FAIL && xc < (g->cutfirst ? W : 1); xc++) {
        if (done[xc]) continue;
        size_t mf = 0, mx = 0;
        bool xa = false; /* a buffer from the enumeration's start crosses xc */
        for (size_t i = 0; i < m; i++) {
          uint32_t b = L[i];
          if (xc && SL[b] - wa < xc && SU[b] - wa > xc) { Lx[mx++] = b; xa |= SL[b] == wa; }
          else Lf[mf++] = b;
        }
        memset(ch, 0, 2 * m + 1);
        if (g->cutfirst && W > 2 && g->steps + sub < limit) g->limit = g->steps + sub;
        r = lowest(g, Lf, mf, Lx, mx, xa, m, a, e, o, H, mir ? gmix(key) : key, SL, SU, wa, xc, u32, u64, ch, fl);
        bool local = r == G_STOP && g->limit < limit && g->steps > g->limit && !g->nomem && g->depth < g->max_depth &&
                     hk__plan_clock(p) <= g->deadline;
        g->limit = limit;
        if (local) { g->stop = false; again = true; r = G_FAIL; }
        else if (r == G_FAIL) done[xc] = 1;
      }
      sub *= 2;
    }
  }
leave:
  g->depth--;
  if (r == G_FAIL) fail_add(g, key);
  if (r != G_OK) { fl_undo(g, h); g->nsl = hs; }
  free(u32); free(u64); free(ch);
  return r;
}

/* Fluid rounds: the single-section buffers leave the list (all[0..*m) keeps the others) and
 * become each section's first piece (*fl, by section). Returns 0, HK_ENOMEM, or 3 (none: not
 * worth a fluid round; the caller returns 0). */
static int fluid_init(gsrch *g, uint32_t *all, size_t *m, uint64_t **fl) {
  const hk__plan_prob *p = g->p;
  size_t ns = p->nsec, k = 0, nsing = 0;
  for (size_t i = 0; i < p->n; i++) {
    nsing += p->su[i] - p->sl[i] == 1;
    if (p->size[i] >= ((uint64_t)1 << 40) || p->lb >= ((uint64_t)1 << 24)) return 3; /* (sort keys, subset-sum bitsets) */
  }
  if (nsing == 0) return 3;
  g->pst = calloc(ns + 1, sizeof *g->pst);
  g->pb = malloc(nsing * sizeof *g->pb);
  g->pcn = calloc(ns, sizeof *g->pcn);
  g->pc = calloc(2 * nsing, sizeof *g->pc);
  g->tr = malloc((nsing + 1) * sizeof *g->tr);
  g->sl = malloc((nsing + 1) * sizeof *g->sl);
  g->sums = calloc(ns, sizeof *g->sums);
  g->rcache = calloc(FLUID_CACHE, sizeof *g->rcache);
  *fl = calloc(ns, sizeof **fl);
  hk__plan_kv *kv = malloc(nsing * sizeof *kv);
  if (!g->pst || !g->pb || !g->pcn || !g->pc || !g->tr || !g->sl || !g->sums || !g->rcache || !*fl || !kv) {
    free(kv);
    return HK_ENOMEM;
  }
  size_t j = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (p->su[i] - p->sl[i] != 1) { all[k++] = all[i]; continue; }
    g->pst[p->sl[i] + 1]++;
    (*fl)[p->sl[i]] += p->size[i];
    /* by section, then size descending (ties by index: deterministic) */
    kv[j++] = (hk__plan_kv){((uint64_t)p->sl[i] << 40) | (((uint64_t)1 << 40) - 1 - p->size[i]), i};
  }
  hk__plan_sort_kv(kv, nsing);
  for (size_t s = 0; s < ns; s++) g->pst[s + 1] += g->pst[s];
  for (size_t i = 0; i < nsing; i++) g->pb[i] = (uint32_t)(kv[i].val & 0xffffffffu);
  free(kv);
  uint64_t words = 0; /* the subset-sum bitsets, if every section's were built */
  for (size_t s = 0; s < ns; s++) {
    if ((*fl)[s]) { g->pcn[s] = 1; g->pc[g->pst[s]] = (*fl)[s]; }
    words += ((*fl)[s] >> 6) + 1;
  }
  if (words > FLUID_SUMS_WORDS) return 3;
  *m = k;
  return 0;
}

/* The packing found: each section's singles into its slots (the final pieces, which passed
 * part_dfs when last split; run again for the assignment), stacked in each slot. */
static bool fluid_place(gsrch *g) {
  const hk__plan_prob *p = g->p;
  size_t nsing = g->pst[p->nsec];
  uint32_t *asg = malloc((nsing + 1) * sizeof *asg);
  uint8_t *used = calloc(g->nsl + 1, 1);
  bool ok = asg && used;
  for (uint32_t s = 0; ok && s < p->nsec; s++) {
    uint32_t b0 = g->pst[s], k = g->pst[s + 1] - b0;
    if (!k) continue;
    ok = fl_realisable(g, s, asg);
    uint64_t *top = g->pc + nsing + b0; /* per piece: the next single's offset */
    for (uint32_t i = 0; ok && i < g->pcn[s]; i++) {
      size_t q = 0; /* the slot of this piece: one of s's with its amount */
      while (q < g->nsl && (used[q] || g->sl[q].s != s || g->sl[q].amt != g->pc[b0 + i])) q++;
      if (q == g->nsl) { ok = false; break; }
      used[q] = 1;
      top[i] = g->sl[q].off;
    }
    for (uint32_t j = 0; ok && j < k; j++) {
      uint32_t b = g->pb[b0 + j];
      g->off[b] = top[asg[j]];
      top[asg[j]] += p->size[b];
    }
  }
  free(asg); free(used);
  hk_plan_assert(ok);
  return ok;
}

int hk__plan_guillotine(const hk__plan_prob *p, unsigned round, uint64_t node_limit, double deadline, uint64_t *off,
                        uint64_t *nodes, uint64_t **fail) {
  if (!p->tight || p->n == 0) return 0;
  for (size_t i = 0; i < p->n; i++)
    if (p->align[i] > 1) return 0;
  gsrch g;
  memset(&g, 0, sizeof g);
  g.p = p;
  g.limit = node_limit;
  g.thin = round & 1;
  g.flip = round >> 1 & 1;
  g.large = round & HK_PLAN_GUILLOTINE_LARGE;
  g.shortf = round & HK_PLAN_GUILLOTINE_SHORT;
  g.cutfirst = round & HK_PLAN_GUILLOTINE_CUT;
  g.fluid = round & HK_PLAN_GUILLOTINE_FLUID;
  g.few = round & HK_PLAN_GUILLOTINE_FEW;
  g.height = round & HK_PLAN_GUILLOTINE_HEIGHT;
  if (g.few) g.thin = false;
  if (g.shortf || g.fluid) g.thin = false; /* (the thin levels need the size order and every item) */
  g.deadline = deadline;
  g.max_depth = 4096; /* each level holds a few small frames: bounded C stack */
  /* a fluid round has a table of its own (see above), smaller: 512 KB instead of 2 MB, it stays
   * in cache (400 seeds 36 and 46, failing: 0.10 and 0.12 s of CPU instead of 0.15 and 0.21, the
   * same steps; the same instances placed of 400 and 500 seeds 1-150) */
  size_t tsize = g.fluid ? GUILLOTINE_TABLE >> 2 : GUILLOTINE_TABLE;
  g.fmask = tsize - 1;
  if (!*fail) *fail = calloc(tsize, sizeof **fail);
  g.fail = *fail;
  g.off = malloc(p->n * sizeof *g.off);
  g.zob = malloc(p->n * sizeof *g.zob);
  g.rsl = malloc(p->n * sizeof *g.rsl);
  g.rsu = malloc(p->n * sizeof *g.rsu);
  uint32_t *all = malloc(p->n * sizeof *all);
  int rc = HK_ENOMEM;
  uint64_t *fl = NULL;
  if (g.off && g.zob && g.fail && all && g.rsl && g.rsu) {
    for (size_t i = 0; i < p->n; i++) { g.rsl[i] = (uint32_t)p->nsec - p->su[i]; g.rsu[i] = (uint32_t)p->nsec - p->sl[i]; }
    for (size_t i = 0; i < p->n; i++) { all[i] = (uint32_t)i; g.zob[i] = gmix(i * 0x9E3779B97F4A7C15ull + 0x1234567ull); }
    size_t m = p->n;
    rc = g.fluid ? fluid_init(&g, all, &m, &fl) : 0;
    if (rc == 0) {
      int r = solve(&g, all, m, fl, 0, (uint32_t)p->nsec, 0, p->lb);
      if (g.nomem) rc = HK_ENOMEM;
      else if (r == G_OK && (!g.fluid || fluid_place(&g))) { memcpy(off, g.off, p->n * sizeof *off); rc = 1; }
      else rc = r == G_FAIL && !g.fluid ? 2 : 0; /* (a fluid round's failures depend on the context) */
    } else if (rc == 3)
      rc = 0;
  }
  if (nodes) *nodes += g.steps;
  if (g.sums)
    for (size_t s = 0; s < p->nsec; s++) free(g.sums[s]);
  free(g.sums); free(g.rcache); free(g.pst); free(g.pb); free(g.pcn); free(g.pc); free(g.tr); free(g.sl); free(fl);
  free(g.off); free(g.zob); free(g.rsl); free(g.rsu); free(all);
  return rc;
}
