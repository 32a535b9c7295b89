/* Anytime exact search: depth-first branch and bound over canonical placements.
 *
 * Canonical form. Take any placement and let every buffer fall down (to the lowest aligned offset
 * above the buffers under it that overlap it in time); the peak does not grow. In such a
 * placement, list the buffers by (offset, first section): two buffers with equal offsets cannot
 * overlap in time, so the order is strict. Placing buffers in that order, each one's offset is
 * exactly align_up(its floor), where the floor is the highest top of the already-placed buffers
 * overlapping it. So the search only chooses WHICH buffer comes next; its offset follows, and the
 * next buffer's key (offset, first section) must exceed the previous one's (the cursor). Every
 * placement is reached exactly once, which is what lets an exhausted search prove optimality.
 *
 * Pruning (C is the peak we are trying to reach):
 *   - section bound: every buffer still to place that covers section s sits at or above
 *     base(s) = max(floor(s), cursor offset), plus one granule when s lies at or left of the
 *     cursor's section (it cannot take the cursor's offset any more), so base(s) + rem(s) <= C,
 *     where rem(s) is the total size still to place over s. On a perfect packing (C = lower
 *     bound) this forbids any wasted cell and the search runs almost straight to the answer.
 *   - level bound: children are tried by increasing offset y; once some section with
 *     floor <= y has y + rem > C, every later child fails too, so the loop stops.
 *   - a buffer whose floor already puts its top above C kills the node.
 * Branching order: lowest key first (bottom-left), ties by the caller's priority (e.g. larger
 * buffers first), so the first dive is a good heuristic placement of its own.
 * Anytime: each placement found lowers C to its peak minus one granule and the search goes on
 * from where it is; the deadline is checked every 256 nodes. */
#include "plan/plan_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct trail_ent { uint64_t *ptr; uint64_t old; } trail_ent;

typedef struct srch {
  const hk__plan_prob *p;
  size_t n, S;
  uint32_t *adj_start, *adj; /* CSR: buffers overlapping each buffer in time */
  uint64_t *floor_b, *floor_s, *rem, *off;
  uint8_t *placed;
  uint32_t *rank, *by_rank;
  uint32_t *twin;     /* twin[d]: the identical buffer (same sections, size, alignment) that must
                       * be placed before d, or UINT32_MAX: identical buffers are interchangeable,
                       * so fixing their order removes symmetric duplicates of every placement */
  uint32_t *start_at, *starts; /* CSR: buffers by first section */
  uint32_t *end_at, *ends;     /* CSR: buffers by end section (su) */
  uint8_t *reach;              /* scratch for runs_ok */
  /* Nogoods. While no cell has been wasted (floor + rem == total in every section), the placed
   * SET determines every floor, so the state is (set, cursor) whatever order or stacking led to
   * it; permutations of stacked buffers reach the same state again and again. A Zobrist hash of
   * the set plus the cursor keys a table of states whose subtree failed under the current C
   * (failure at C implies failure below C; the table is cleared when C rises). */
  uint64_t *zob, hash, *total, *nogood;
  size_t nwaste, ng_mask;
  bool all_tight; /* set by state_ok */
  bool perfect;   /* every section's total is exactly C: no state can have slack or waste */
  /* Decomposition. When the unplaced buffers of the current window split into groups that
   * share no section, the groups are independent: the search finishes one window at a time
   * (its own cursor starts from the cursor at the split), and when a later window has no
   * completion, no choice inside an earlier one can help, so the search returns straight to the
   * node that split (abort_depth) instead of trying the earlier window's alternatives. */
  uint32_t wlo, whi;
  struct pending { uint32_t lo, hi; uint64_t cur_off; int64_t cur_sl; size_t split_depth, lb, le; } *pend;
  /* Stack of buffer lists: each node lists the unplaced buffers of its window, filtered from its
   * parent's list, so a node costs O(its window) rather than O(n). */
  uint32_t *wl;
  size_t wn, wcap;
  size_t npend, pcap;
  size_t abort_depth;
  int32_t *cross; /* scratch: difference array of buffers crossing section boundaries */
  /* Perfect mode keeps, per boundary x (between sections x - 1 and x), how many unplaced buffers
   * cross it, and how many unplaced buffers the current window holds: a child whose placement
   * makes no crossing count drop to zero has the same window as its parent (no new split can
   * appear elsewhere), so it reuses the parent's list instead of filtering it again, the bulk of
   * a node's cost on 400-500 buffers. */
  uint32_t *xc;
  size_t wleft;
  uint32_t last; /* the buffer the parent just placed */
  uint32_t *run_end; /* scratch: run_end[x] = first section after x with a different floor */
  /* Perfect mode's valleys (see pick_cell): per section, the valley starting (vl) or ending
   * (vr, at its last section) there, or -1; per valley its first section, end, and how many
   * unplaced buffers could cover its left and right bottom cells. */
  int32_t *vl, *vr;
  uint32_t *va, *ve, *cntl, *cntr;
  uint32_t valley_end; /* end of the valley whose cell perfect_cands chose */
  uint64_t node_limit; /* this restart gives up after so many nodes (UINT64_MAX = never) */
  bool limited;       /* the restart hit node_limit (so an empty result proves nothing) */
  trail_ent *trail;
  size_t tn, tcap;
  hk__plan_kv *cand; /* candidate stack shared by all depths */
  size_t cn, ccap;
  uint64_t C, gran, cur_off;
  int64_t cur_sl;
  double deadline;
  uint64_t nodes, solutions;
  bool timeout, done, proved;
  uint64_t *best_off, *best_peak, stop_at;
} srch;

static inline uint64_t align_up64(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

static int trail_push(srch *s, uint64_t *ptr) {
  if (s->tn == s->tcap) {
    size_t nc = s->tcap ? 2 * s->tcap : 1024;
    trail_ent *t = realloc(s->trail, nc * sizeof *t);
    if (!t) return HK_ENOMEM;
    s->trail = t;
    s->tcap = nc;
  }
  s->trail[s->tn++] = (trail_ent){ptr, *ptr};
  return HK_OK;
}

static int build_adj(srch *s) {
  const hk__plan_prob *p = s->p;
  size_t n = p->n;
  /* sweep by start section; the active list holds buffers still live */
  uint32_t *cnt = calloc(n + 1, sizeof *cnt);
  hk__plan_kv *byst = malloc((n ? n : 1) * sizeof *byst);
  uint32_t *active = malloc((n ? n : 1) * sizeof *active);
  if (!cnt || !byst || !active) { free(cnt); free(byst); free(active); return HK_ENOMEM; }
  for (size_t i = 0; i < n; i++) byst[i] = (hk__plan_kv){p->sl[i], i};
  hk__plan_sort_kv(byst, n);
  size_t na = 0, E = 0;
  for (int pass = 0; pass < 2; pass++) {
    na = 0;
    for (size_t k = 0; k < n; k++) {
      uint32_t b = (uint32_t)byst[k].val;
      size_t w = 0;
      for (size_t j = 0; j < na; j++) {
        uint32_t c = active[j];
        if (p->su[c] <= p->sl[b]) continue; /* ended: drop */
        active[w++] = c;
        if (pass == 0) { cnt[b]++; cnt[c]++; E += 2; }
        else { s->adj[s->adj_start[b] + cnt[b]++] = c; s->adj[s->adj_start[c] + cnt[c]++] = b; }
      }
      na = w;
      active[na++] = b;
    }
    if (pass == 0) {
      s->adj_start = malloc((n + 1) * sizeof *s->adj_start);
      s->adj = malloc((E ? E : 1) * sizeof *s->adj);
      if (!s->adj_start || !s->adj) { free(cnt); free(byst); free(active); return HK_ENOMEM; }
      s->adj_start[0] = 0;
      for (size_t i = 0; i < n; i++) s->adj_start[i + 1] = s->adj_start[i] + cnt[i];
      memset(cnt, 0, (n + 1) * sizeof *cnt);
    }
  }
  free(cnt); free(byst); free(active);
  return HK_OK;
}

/* The section bound for the current state and cursor. */
static bool state_ok(srch *s) {
  bool tight = true;
  for (size_t x = s->wlo; x < s->whi; x++) {
    uint64_t r = s->rem[x];
    if (!r) continue;
    uint64_t f = s->floor_s[x], base;
    if (f > s->cur_off) base = f;
    else base = (int64_t)x <= s->cur_sl ? s->cur_off + s->gran : s->cur_off;
    if (base > s->C || r > s->C - base) return false;
    tight &= base + r == s->C && base == f;
  }
  /* Every section left is full to C with no slack: then every floor is >= the cursor offset
   * (and above it left of the cursor), so the cursor forbids nothing the floors do not, and
   * the state no longer depends on it. */
  s->all_tight = tight;
  return true;
}

/* Children are tried by increasing offset y. A section s with something left to place forbids
 * every y with y >= floor(s) and y + rem(s) > C (the child's buffers and all the rest must stack
 * above y there), so the children that can survive are exactly those with y below
 * min over s of max(floor(s), C - rem(s) + 1). */
static uint64_t level_limit(const srch *s) {
  uint64_t lim = UINT64_MAX;
  for (size_t x = s->wlo; x < s->whi; x++) {
    uint64_t r = s->rem[x];
    if (!r) continue;
    uint64_t a = r > s->C ? 0 : s->C - r + 1;
    uint64_t b = s->floor_s[x] > a ? s->floor_s[x] : a;
    if (b < lim) lim = b;
  }
  return lim;
}

/* Tiling inference. A run is a maximal stretch of sections that all have zero slack
 * (base + rem == C) at the same level L, bounded by sections a buffer placed at L cannot enter
 * (a higher floor, or nothing left to place there; a lower floor may still rise to L before
 * the buffer is placed, so it does not close the run). No cell of the run may
 * be wasted, so the bottom row of the run must be tiled exactly, left to right, by unplaced
 * buffers lying inside it that can sit at L now: a chain of intervals from its first section to
 * its end. Checking reachability along the chain costs O(sections + buffers starting there).
 * Runs whose border could be crossed are not checked. */
static bool runs_ok_from(srch *s, size_t x, size_t stop) {
  const hk__plan_prob *p = s->p;
  size_t S = s->whi;
  while (x < S && x < stop) {
    uint64_t r = s->rem[x], f = s->floor_s[x];
    uint64_t base = f > s->cur_off ? f : ((int64_t)x <= s->cur_sl ? s->cur_off + s->gran : s->cur_off);
    if (!r || base + r != s->C || f != base) { x++; continue; }
    size_t a = x, e = x + 1;
    while (e < S && s->rem[e] && s->floor_s[e] == base && base + s->rem[e] == s->C) e++;
    x = e;
    /* borders: a buffer at level `base` must not be able to leave [a, e) */
    bool closed = true;
    if (a > s->wlo && s->rem[a - 1] && s->floor_s[a - 1] <= base) closed = false;
    if (e < S && s->rem[e] && s->floor_s[e] <= base) closed = false;
    if (!closed) continue;
    memset(s->reach + a, 0, e - a + 1);
    s->reach[a] = 1;
    for (size_t y = a; y < e && !s->reach[e]; y++) {
      if (!s->reach[y]) continue;
      for (uint32_t k = s->start_at[y]; k < s->start_at[y + 1]; k++) {
        uint32_t d = s->starts[k];
        if (s->placed[d] || p->su[d] > e || (base & (p->align[d] - 1))) continue;
        if (base == s->cur_off && (int64_t)y <= s->cur_sl) continue;
        s->reach[p->su[d]] = 1;
      }
    }
    if (!s->reach[e]) return false;
  }
  return true;
}
static bool runs_ok(srch *s) { return runs_ok_from(s, s->wlo, SIZE_MAX); }
/* Perfect mode, after placing c on a state whose runs all passed: only the runs from the one
 * left of c to the one holding its end changed (every section is full to C there, so a run is
 * a stretch of equal floors). */
static bool runs_ok_near(srch *s, uint32_t c) {
  const hk__plan_prob *p = s->p;
  uint64_t top = s->off[c] + p->size[c];
  uint32_t a = p->sl[c], e = p->su[c];
  size_t x, stop = e + 1;
  /* A neighbouring run higher than c's top had a lower neighbour before (c's valley) and still
   * has one: it stays open, and its buffers did not change. */
  if (a > s->wlo && s->rem[a - 1] && s->floor_s[a - 1] > top) {
    x = a;
  } else {
    x = a > s->wlo ? a - 1 : s->wlo;
    while (x > s->wlo && s->rem[x] && s->rem[x - 1] && s->floor_s[x - 1] == s->floor_s[x]) x--;
  }
  if (e < s->whi && s->rem[e] && s->floor_s[e] > top) stop = e;
  return runs_ok_from(s, x, stop);
}

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 27; x *= 0x94d049bb133111ebull; x ^= x >> 31;
  return x;
}
static inline uint64_t state_key(const srch *s) {
  uint64_t k = s->perfect || s->all_tight ? s->hash : s->hash ^ mix64(s->cur_off * 0x9E3779B97F4A7C15ull + (uint64_t)(s->cur_sl + 1));
  return k ? k : 1;
}
static bool nogood_has(const srch *s, uint64_t k) { return hk__plan_keyset_has(s->nogood, s->ng_mask, k); }
static void nogood_add(srch *s, uint64_t k) { hk__plan_keyset_add(s->nogood, s->ng_mask, k); }

static int place(srch *s, uint32_t c, uint64_t y) {
  const hk__plan_prob *p = s->p;
  uint64_t top = y + p->size[c];
  s->off[c] = y;
  s->placed[c] = 1;
  /* The perfect mode does not read floor_b: a valley's candidates lie inside it, and every
   * placement keeps floor + rem == C in each section, so no unplaced buffer can ever be pushed
   * above C (it shares a section with c, where rem >= its size). Skipping this loop saves a
   * fifth of a node there. */
  if (!s->perfect)
    for (uint32_t k = s->adj_start[c]; k < s->adj_start[c + 1]; k++) {
      uint32_t d = s->adj[k];
      if (!s->placed[d] && s->floor_b[d] < top) {
        if (trail_push(s, &s->floor_b[d]) != HK_OK) return HK_ENOMEM;
        s->floor_b[d] = top;
      }
    }
  for (uint32_t x = p->sl[c]; x < p->su[c]; x++) {
    if (trail_push(s, &s->floor_s[x]) != HK_OK) return HK_ENOMEM;
    bool wasted_before = s->floor_s[x] + s->rem[x] != s->total[x];
    s->floor_s[x] = top;
    s->rem[x] -= p->size[c];
    bool wasted_after = top + s->rem[x] != s->total[x];
    s->nwaste += (size_t)wasted_after - (size_t)wasted_before;
  }
  for (uint32_t x = p->sl[c] + 1; x < p->su[c]; x++) s->xc[x]--;
  s->hash ^= s->zob[c];
  return HK_OK;
}

static void unplace(srch *s, uint32_t c, size_t mark) {
  const hk__plan_prob *p = s->p;
  while (s->tn > mark) { s->tn--; *s->trail[s->tn].ptr = s->trail[s->tn].old; }
  for (uint32_t x = p->sl[c]; x < p->su[c]; x++) s->rem[x] += p->size[c];
  for (uint32_t x = p->sl[c] + 1; x < p->su[c]; x++) s->xc[x]++;
  s->placed[c] = 0;
  s->hash ^= s->zob[c];
}

/* Invariants of the search state (checked at debug level 3 on every node):
 *   rem[x]     == total[x] - sum of sizes of placed buffers covering section x;
 *   floor_s[x] == max top of placed buffers covering x (0 if none);
 *   floor_b[d] == max top of placed buffers overlapping unplaced d in time (outside the perfect
 *                 mode, which does not keep it; there every unplaced d still fits under C);
 *   nwaste     == number of sections with floor_s + rem != total;
 *   xc[x]      == number of unplaced buffers crossing boundary x (live in sections x - 1 and x). */
__attribute__((unused)) static bool srch_is_valid(const srch *s) {
  const hk__plan_prob *p = s->p;
  uint64_t *rem = calloc(s->S + 1, sizeof *rem), *fl = calloc(s->S + 1, sizeof *fl);
  if (!rem || !fl) { free(rem); free(fl); return true; }
  bool ok = true;
  memcpy(rem, s->total, (s->S + 1) * sizeof *rem);
  for (size_t i = 0; i < p->n; i++) {
    if (!s->placed[i]) continue;
    for (uint32_t x = p->sl[i]; x < p->su[i]; x++) {
      rem[x] -= p->size[i];
      if (s->off[i] + p->size[i] > fl[x]) fl[x] = s->off[i] + p->size[i];
    }
  }
  size_t waste = 0;
  for (size_t x = 0; x < s->S && ok; x++) {
    ok = rem[x] == s->rem[x] && fl[x] == s->floor_s[x];
    waste += fl[x] + rem[x] != s->total[x];
  }
  ok = ok && waste == s->nwaste;
  for (size_t d = 0; d < p->n && ok; d++) {
    if (s->placed[d]) continue;
    uint64_t f = 0;
    for (uint32_t x = p->sl[d]; x < p->su[d]; x++) if (fl[x] > f) f = fl[x];
    ok = s->perfect ? f + p->size[d] <= s->C : f == s->floor_b[d];
  }
  for (size_t x = 1; x < s->S && ok; x++) { /* xc: unplaced buffers crossing each boundary */
    uint32_t c = 0;
    for (size_t d = 0; d < p->n; d++) c += !s->placed[d] && p->sl[d] < x && x < p->su[d];
    ok = c == s->xc[x];
  }
  free(rem);
  free(fl);
  return ok;
}

static void found(srch *s) {
  const hk__plan_prob *p = s->p;
  s->solutions++;
  uint64_t peak = hk__plan_peak(p, s->off);
  if (peak < *s->best_peak) {
    *s->best_peak = peak;
    memcpy(s->best_off, s->off, p->n * sizeof *s->off);
  }
  if (*s->best_peak <= p->lb) { s->done = s->proved = true; return; }
  if (s->stop_at && *s->best_peak <= s->stop_at) { s->done = true; return; }
  if (s->C >= *s->best_peak) s->C = *s->best_peak - s->gran;
}

static bool stopped(const srch *s, size_t depth) {
  return s->done || s->timeout || s->limited || (s->abort_depth != SIZE_MAX && s->abort_depth <= depth);
}

static int pend_push(srch *s, struct pending e) {
  if (s->npend == s->pcap) {
    size_t nc = s->pcap ? 2 * s->pcap : 64;
    struct pending *v = realloc(s->pend, nc * sizeof *v);
    if (!v) return HK_ENOMEM;
    s->pend = v;
    s->pcap = nc;
  }
  s->pend[s->npend++] = e;
  return HK_OK;
}


static int cand_push(srch *s, hk__plan_kv kv) {
  if (s->cn == s->ccap) {
    size_t nc = s->ccap ? 2 * s->ccap : 4096;
    hk__plan_kv *v = realloc(s->cand, nc * sizeof *v);
    if (!v) return HK_ENOMEM;
    s->cand = v;
    s->ccap = nc;
  }
  s->cand[s->cn++] = kv;
  return HK_OK;
}

/* Branching of the perfect mode (every section full to C, nothing may be wasted). A valley is a
 * maximal run [a, e) of sections at one floor f < C whose neighbours are higher (or the window's
 * border). In any completion, the cell just above f at section a is covered by exactly one
 * buffer, and that buffer must sit at f (everything below f is already full), start at a (its
 * left neighbour is higher) and end by e; likewise the cell at section e - 1 by a buffer ending
 * at e. So any such cell gives a complete branching with no duplicates, not only the lowest
 * leftmost one that the canonical order uses: take the cell with the fewest candidates (fail
 * first, as exact-cover solvers do). A cell with none kills the node at once, wherever it is.
 * Pushes the chosen cell's candidates; returns 1, 0 (dead end) or HK_ENOMEM. */
/* Buffer d can fill the bottom of valley [a, e) at floor f: unplaced, within the valley, aligned
 * at f, and not a twin whose predecessor is still unplaced. */
static inline bool valley_cand(const srch *s, uint32_t d, uint32_t a, uint32_t e, uint64_t f) {
  const hk__plan_prob *p = s->p;
  if (s->placed[d] || p->sl[d] < a || p->su[d] > e || (f & (p->align[d] - 1))) return false;
  return s->twin[d] == UINT32_MAX || s->placed[s->twin[d]];
}

static int perfect_cands(srch *s) {
  uint32_t nv = 0;
  for (uint32_t x = s->wlo; x < s->whi;) {
    uint64_t f = s->floor_s[x];
    uint32_t e = x + 1;
    if (!s->rem[x]) { s->vl[x] = s->vr[x] = -1; x++; continue; }
    while (e < s->whi && s->rem[e] && s->floor_s[e] == f) e++;
    for (uint32_t y = x; y < e; y++) s->vl[y] = s->vr[y] = -1;
    bool lo_wall = x == s->wlo || !s->rem[x - 1] || s->floor_s[x - 1] > f;
    bool hi_wall = e == s->whi || !s->rem[e] || s->floor_s[e] > f;
    if (lo_wall && hi_wall) {
      s->va[nv] = x; s->ve[nv] = e; s->cntl[nv] = s->cntr[nv] = 0;
      s->vl[x] = (int32_t)nv; s->vr[e - 1] = (int32_t)nv;
      nv++;
    }
    x = e;
  }
  if (nv == 0) return 1; /* cannot happen with something left to place; let the caller decide */
  /* count each valley's candidates among the buffers starting at its first section and those
   * ending at its end (CSR lists): O(those) rather than O(window) per node */
  for (uint32_t v = 0; v < nv; v++) {
    uint32_t a = s->va[v], e = s->ve[v];
    uint64_t f = s->floor_s[a];
    for (uint32_t k = s->start_at[a]; k < s->start_at[a + 1]; k++) s->cntl[v] += valley_cand(s, s->starts[k], a, e, f);
    for (uint32_t k = s->end_at[e]; k < s->end_at[e + 1]; k++) s->cntr[v] += valley_cand(s, s->ends[k], a, e, f);
  }
  uint32_t bv = 0, bc = UINT32_MAX;
  bool right = false;
  for (uint32_t v = 0; v < nv; v++) {
    if (s->cntl[v] < bc) { bc = s->cntl[v]; bv = v; right = false; }
    if (s->cntr[v] < bc) { bc = s->cntr[v]; bv = v; right = true; }
  }
  if (bc == 0) return 0;
  uint32_t a = s->va[bv], e = s->ve[bv];
  s->valley_end = e;
  uint64_t f = s->floor_s[a];
  const uint32_t *list = right ? s->ends + s->end_at[e] : s->starts + s->start_at[a];
  uint32_t cnt = right ? s->end_at[e + 1] - s->end_at[e] : s->start_at[a + 1] - s->start_at[a];
  for (uint32_t k = 0; k < cnt; k++) {
    uint32_t d = list[k];
    if (!valley_cand(s, d, a, e, f)) continue;
    /* all at offset f: ordered by snug fit, then by the restart's tie-break rank (not by first
     * section as in the canonical order, which would put the longest first on the right side) */
    if (cand_push(s, (hk__plan_kv){f, s->rank[d]}) != HK_OK) return HK_ENOMEM;
  }
  return 1;
}

static int dfs(srch *s, size_t depth, size_t lb, size_t le, bool fast);

/* The current window is complete: go on with the next pending one. If that one is exhausted
 * without a completion, abort back to the node that split them. */
static int next_window(srch *s, size_t depth) {
  if (s->npend == 0) {
    if (depth == s->p->n) found(s);
    return HK_OK;
  }
  struct pending e = s->pend[--s->npend];
  uint32_t lo = s->wlo, hi = s->whi;
  uint64_t co = s->cur_off;
  int64_t cs = s->cur_sl;
  s->wlo = e.lo; s->whi = e.hi; s->cur_off = e.cur_off; s->cur_sl = e.cur_sl;
  int rc = HK_OK;
  uint64_t sols = s->solutions;
  if (state_ok(s) && runs_ok(s)) rc = dfs(s, depth, e.lb, e.le, false);
  /* Exhausted without any completion: hopeless whatever the earlier windows hold. (If it found
   * completions, the peak that lowered C may come from an earlier window, so no conclusion.) */
  bool exhausted = rc == HK_OK && !s->done && !s->timeout && !s->limited && s->solutions == sols &&
                   (s->abort_depth == SIZE_MAX || s->abort_depth > e.split_depth);
  s->wlo = lo; s->whi = hi; s->cur_off = co; s->cur_sl = cs;
  s->pend[s->npend++] = e; /* the slot is still there: popping never shrinks the array */
  if (exhausted) s->abort_depth = e.split_depth;
  return rc;
}

/* Returns HK_OK or HK_ENOMEM; done / timeout / limited / abort_depth end the search. */
static int dfs(srch *s, size_t depth, size_t lb, size_t le, bool fast) {
  const hk__plan_prob *p = s->p;
  hk_plan_assert_expensive(srch_is_valid(s));
  size_t wn0 = s->wn, nb, ne, cnt;
  if (fast) { /* perfect mode: a split can only open at a boundary the parent's placement touched */
    uint32_t c = s->last, x1 = p->su[c] < s->whi ? p->su[c] : s->whi - 1;
    for (uint32_t x = p->sl[c] > s->wlo ? p->sl[c] : s->wlo + 1; x <= x1 && fast; x++) fast = s->xc[x] != 0;
  }
  if (fast) { /* same window: the parent's list serves (placed buffers in it are skipped) */
    nb = lb;
    ne = le;
    cnt = s->wleft;
  } else {
    /* unplaced buffers of the window (from the parent's list), the boundaries they cross */
    if (s->wn + (le - lb) > s->wcap) {
      size_t nc = 2 * (s->wn + (le - lb));
      uint32_t *v = realloc(s->wl, nc * sizeof *v);
      if (!v) return HK_ENOMEM;
      s->wl = v;
      s->wcap = nc;
    }
    nb = s->wn;
    for (uint32_t x = s->wlo; x <= s->whi; x++) s->cross[x] = 0;
    for (size_t k = lb; k < le; k++) {
      uint32_t d = s->wl[k];
      if (s->placed[d] || p->sl[d] < s->wlo || p->su[d] > s->whi) continue;
      s->wl[s->wn++] = d;
      s->cross[p->sl[d] + 1]++;
      s->cross[p->su[d]]--;
    }
    ne = s->wn;
    cnt = ne - nb;
  }
  if (cnt == 0) { s->wn = wn0; return next_window(s, depth); }
  /* limits only here: never cut off a completed window */
  if ((++s->nodes & 255) == 0 && hk__plan_clock(s->p) > s->deadline) { s->timeout = true; s->wn = wn0; return HK_OK; }
  if (s->nodes >= s->node_limit) { s->limited = true; s->wn = wn0; return HK_OK; }
  uint64_t key = 0;
  if (s->nwaste == 0 && (s->perfect || s->npend == 0)) {
    key = state_key(s);
    if (nogood_has(s, key)) { s->wn = wn0; return HK_OK; }
  }
  /* split the window at boundaries no unplaced buffer crosses (sections with nothing left to
   * place are skipped: they belong to no group) */
  size_t pushed = 0;
  uint32_t lo0 = s->wlo, hi0 = s->whi;
  if (!fast) {
    uint32_t groups[2 * 64];
    size_t ng = 0;
    int32_t run = 0;
    uint32_t glo = UINT32_MAX;
    for (uint32_t x = s->wlo; x <= s->whi; x++) {
      run += s->cross[x];
      bool boundary = x == s->whi || (x > s->wlo && run == 0);
      if (boundary && glo != UINT32_MAX) {
        if (ng < 2 * 64) { groups[ng++] = glo; groups[ng++] = x; }
        else groups[ng - 1] = x; /* too many: the last group absorbs the rest (still independent) */
        glo = UINT32_MAX;
      }
      if (x < s->whi && glo == UINT32_MAX && s->rem[x]) glo = x;
    }
    if (ng > 2) { /* solve the first group now, push the others (rightmost deepest) */
      for (size_t g = ng; g > 2; g -= 2) {
        if (pend_push(s, (struct pending){groups[g - 2], groups[g - 1], s->cur_off, s->cur_sl, depth, nb, ne}) != HK_OK) {
          s->npend -= pushed;
          s->wn = wn0;
          return HK_ENOMEM;
        }
        pushed++;
      }
      s->wlo = groups[0];
      s->whi = groups[1];
      cnt = 0;
      for (size_t k = nb; k < ne; k++) cnt += p->su[s->wl[k]] <= s->whi && p->sl[s->wl[k]] >= s->wlo;
    }
  }
  size_t wleft = cnt; /* unplaced buffers in this node's window */
  int rc = HK_OK;
  /* candidates: unplaced buffers of the window whose key (offset, first section) is past the
   * cursor and whose offset passes the level bound (sorting only those is most of a node's work) */
  uint64_t ylim = s->perfect ? UINT64_MAX : level_limit(s);
  size_t base = s->cn;
  if (s->perfect) {
    int pc = perfect_cands(s);
    if (pc != 1) { s->cn = base; if (pc < 0) rc = pc; goto leave; }
  } else for (size_t k = nb; k < ne; k++) {
    uint32_t d = s->wl[k];
    if (p->sl[d] < s->wlo || p->su[d] > s->whi) continue; /* another group of a split */
    uint64_t y = align_up64(s->floor_b[d], p->align[d]);
    uint64_t lo = y;
    bool past = y > s->cur_off || (y == s->cur_off && (int64_t)p->sl[d] > s->cur_sl);
    if (!past) { /* it must wait for something under it; its offset will exceed the cursor */
      lo = align_up64(s->cur_off + ((int64_t)p->sl[d] > s->cur_sl ? 0 : s->gran), p->align[d]);
      if (lo < y) lo = y;
    }
    if (lo > s->C || p->size[d] > s->C - lo) { s->cn = base; goto leave; } /* d can never fit */
    if (!past || y >= ylim || (s->twin[d] != UINT32_MAX && !s->placed[s->twin[d]])) continue;
    if (s->cn == s->ccap) {
      size_t nc = s->ccap ? 2 * s->ccap : 4096;
      hk__plan_kv *v = realloc(s->cand, nc * sizeof *v);
      if (!v) { rc = HK_ENOMEM; goto leave; }
      s->cand = v;
      s->ccap = nc;
    }
    s->cand[s->cn++] = (hk__plan_kv){y, ((uint64_t)p->sl[d] << 32) | s->rank[d]};
  }
  size_t end = s->cn;
  /* Tie-break among candidates with the same key by how snugly they fit (TelaMalloc's idea of
   * contact): ending exactly where the floor steps, and a top flush with a neighbour's floor,
   * leave no sliver that nothing else could fill. */
  if (end - base > 1) {
    /* (in the perfect mode every candidate lies in one valley, whose floor runs to its end) */
    if (!s->perfect)
      for (uint32_t x = s->whi; x-- > s->wlo;)
        s->run_end[x] = (x + 1 < s->whi && s->floor_s[x + 1] == s->floor_s[x]) ? s->run_end[x + 1] : x + 1;
    for (size_t k = base; k < end; k++) {
      uint32_t d = s->by_rank[s->cand[k].val & 0x3fffffffu];
      uint64_t y = s->cand[k].key, top = y + p->size[d];
      uint32_t a = p->sl[d], e = p->su[d];
      unsigned score = 0;
      if (s->floor_s[a] == y && (s->perfect ? s->valley_end : s->run_end[a]) == e) score++;
      if (e < s->S && s->rem[e] && s->floor_s[e] == top) score++;
      if (a > 0 && s->rem[a - 1] && s->floor_s[a - 1] == top) score++;
      s->cand[k].val |= (uint64_t)(3 - score) << 30;
    }
  }
  hk__plan_sort_kv(s->cand + base, end - base);
  uint64_t saved_off = s->cur_off;
  int64_t saved_sl = s->cur_sl;
  uint64_t C_at_entry = s->C, C_before_loop = s->C;
  for (size_t k = base; k < end && !stopped(s, depth); k++) {
    if (s->C != C_at_entry) { /* a placement was found below: is this node still useful? */
      C_at_entry = s->C;
      s->cur_off = saved_off; s->cur_sl = saved_sl;
      if (!state_ok(s)) break;
    }
    uint64_t y = s->cand[k].key;
    uint32_t c = s->by_rank[s->cand[k].val & 0x3fffffffu];
    if (y + p->size[c] > s->C) continue;
    if (s->C != C_before_loop && y >= level_limit(s)) break; /* C dropped since ylim was computed */
    size_t mark = s->tn, nwaste = s->nwaste;
    /* the child looks its state up in the nogood table first: start loading that line now */
    if (s->perfect) __builtin_prefetch(&s->nogood[(s->hash ^ s->zob[c]) & s->ng_mask]);
    if (place(s, c, y) != HK_OK) { rc = HK_ENOMEM; break; }
    if (!s->perfect) { /* the perfect mode's branching does not follow the canonical order */
      s->cur_off = y;
      s->cur_sl = p->sl[c];
    }
    /* (in the perfect mode every placement keeps floor + rem == C: the section bound holds) */
    hk_plan_assert_expensive(!s->perfect || state_ok(s));
    s->last = c;
    s->wleft = wleft - 1;
    if (s->perfect ? (fast ? runs_ok_near(s, c) : runs_ok(s)) : state_ok(s) && runs_ok(s))
      rc = dfs(s, depth + 1, nb, ne, s->perfect);
    unplace(s, c, mark);
    s->nwaste = nwaste;
    s->cur_off = saved_off;
    s->cur_sl = saved_sl;
    if (rc != HK_OK) break;
  }
  s->cn = base;
leave:
  s->wn = wn0;
  s->npend -= pushed;
  s->wlo = lo0;
  s->whi = hi0;
  bool aborted_here = s->abort_depth == depth;
  if (aborted_here) s->abort_depth = SIZE_MAX;
  if (rc == HK_OK && key && !s->done && !s->timeout && !s->limited &&
      (s->abort_depth == SIZE_MAX || s->abort_depth > depth))
    nogood_add(s, key); /* no completion from this state */
  return rc;
}

/* The Luby sequence 1 1 2 1 1 2 4 1 1 2 1 1 2 4 8 ...: restart budgets that are within a log
 * factor of the best fixed budget for any heavy-tailed running time. */
static uint64_t luby(uint64_t i) {
  for (;;) {
    uint64_t k = 1;
    while (((uint64_t)1 << k) - 1 < i) k++;
    if (i == ((uint64_t)1 << k) - 1) return (uint64_t)1 << (k - 1);
    i -= ((uint64_t)1 << (k - 1)) - 1;
  }
}

int hk__plan_search(const hk__plan_prob *p, const uint32_t *prio, hk__plan_search_mode mode, unsigned turn,
                    double deadline, uint64_t stop_at, uint64_t *best_off, uint64_t *best_peak,
                    hk__plan_search_stats *st) {
  if (p->n == 0 || *best_peak <= p->lb) return 1;
  srch s;
  memset(&s, 0, sizeof s);
  s.p = p;
  s.n = p->n;
  s.S = p->nsec;
  s.gran = p->gran;
  s.deadline = deadline;
  s.best_off = best_off;
  s.best_peak = best_peak;
  s.stop_at = stop_at;
  size_t n = p->n;
  s.floor_b = calloc(n, sizeof *s.floor_b);
  s.off = calloc(n, sizeof *s.off);
  s.placed = calloc(n, 1);
  s.rank = malloc(n * sizeof *s.rank);
  s.by_rank = malloc(n * sizeof *s.by_rank);
  s.twin = malloc(n * sizeof *s.twin);
  s.start_at = calloc(s.S + 2, sizeof *s.start_at);
  s.starts = malloc(n * sizeof *s.starts);
  s.end_at = calloc(s.S + 2, sizeof *s.end_at);
  s.ends = malloc(n * sizeof *s.ends);
  s.reach = malloc(s.S + 1);
  s.zob = malloc(n * sizeof *s.zob);
  s.total = calloc(s.S + 1, sizeof *s.total);
  s.ng_mask = ((size_t)1 << 18) - 1;
  /* In the perfect mode a nogood says "this set of buffers, stacked without waste, has no
   * completion": true whatever the orientation, the restart or the call, so the caller's
   * successive LB calls (alternating the problem and its time reversal) share one table. */
  bool share_ng = st && mode == HK__SEARCH_LB && p->tight && !(stop_at > p->lb);
  if (share_ng && !st->nogoods) st->nogoods = calloc(s.ng_mask + 1, sizeof *st->nogoods);
  s.nogood = share_ng ? st->nogoods : calloc(s.ng_mask + 1, sizeof *s.nogood);
  s.cross = calloc(s.S + 2, sizeof *s.cross);
  s.xc = calloc(s.S + 2, sizeof *s.xc);
  s.run_end = calloc(s.S + 2, sizeof *s.run_end);
  s.vl = malloc((s.S + 1) * sizeof *s.vl);
  s.vr = malloc((s.S + 1) * sizeof *s.vr);
  s.va = malloc((s.S + 1) * sizeof *s.va);
  s.ve = malloc((s.S + 1) * sizeof *s.ve);
  s.cntl = malloc((s.S + 1) * sizeof *s.cntl);
  s.cntr = malloc((s.S + 1) * sizeof *s.cntr);
  s.wcap = 4 * n + 64;
  s.wl = malloc(s.wcap * sizeof *s.wl);
  if (s.wl) for (size_t i = 0; i < n; i++) s.wl[i] = (uint32_t)i;
  s.wn = n;
  s.abort_depth = SIZE_MAX;
  s.wlo = 0;
  s.whi = (uint32_t)s.S;
  hk__plan_kv *keys = malloc(n * sizeof *keys);
  s.floor_s = calloc(s.S + 1, sizeof *s.floor_s);
  s.rem = calloc(s.S + 1, sizeof *s.rem);
  int rc = HK_ENOMEM;
  if (!s.floor_b || !s.off || !s.placed || !s.rank || !s.by_rank || !s.floor_s || !s.rem || !s.twin || !keys || !s.start_at || !s.starts || !s.end_at || !s.ends || !s.reach || !s.zob || !s.total || !s.nogood || !s.cross || !s.xc || !s.run_end || !s.wl || !s.vl || !s.vr || !s.va || !s.ve || !s.cntl || !s.cntr) goto out;
  for (size_t i = 0; i < n; i++) s.zob[i] = mix64(i + 0x632BE59BD9B4E019ull);
  for (size_t i = 0; i < n; i++) s.start_at[p->sl[i] + 1]++;
  for (size_t x = 0; x <= s.S; x++) s.start_at[x + 1] += s.start_at[x];
  {
    uint32_t *fill = malloc((s.S + 1) * sizeof *fill);
    if (!fill) goto out;
    memcpy(fill, s.start_at, (s.S + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++) s.starts[fill[p->sl[i]]++] = (uint32_t)i;
    for (size_t i = 0; i < n; i++) s.end_at[p->su[i] + 1]++;
    for (size_t x = 0; x <= s.S; x++) s.end_at[x + 1] += s.end_at[x];
    memcpy(fill, s.end_at, (s.S + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++) s.ends[fill[p->su[i]]++] = (uint32_t)i;
    free(fill);
  }
  if (build_adj(&s) != HK_OK) goto out;
  /* twins: chain identical buffers in priority order */
  for (size_t i = 0; i < n; i++) s.twin[i] = UINT32_MAX;
  for (size_t i = 0; i < n; i++) {
    uint32_t d = prio[i];
    keys[i] = (hk__plan_kv){((uint64_t)p->sl[d] << 32) | p->su[d], (p->size[d] * 0x9E3779B97F4A7C15ull) ^ p->align[d]};
    keys[i].val = (keys[i].val & ~0xffffffffull) | i; /* keep priority order among equals */
  }
  hk__plan_sort_kv(keys, n);
  for (size_t i = 1; i < n; i++) {
    uint32_t a = prio[keys[i - 1].val & 0xffffffffu], b = prio[keys[i].val & 0xffffffffu];
    if (p->sl[a] == p->sl[b] && p->su[a] == p->su[b] && p->size[a] == p->size[b] && p->align[a] == p->align[b])
      s.twin[b] = a;
  }
  for (size_t i = 0; i < n; i++)
    for (uint32_t x = p->sl[i]; x < p->su[i]; x++) s.rem[x] += p->size[i];
  memcpy(s.total, s.rem, (s.S + 1) * sizeof *s.total);
  for (size_t i = 0; i < n; i++)
    for (uint32_t x = p->sl[i] + 1; x < p->su[i]; x++) s.xc[x]++;
  s.perfect = p->tight && !(stop_at > p->lb);
  /* Pass 0 aims straight at the lower bound, where pruning is strongest (perfect packings are
   * found here). Its running time is heavy-tailed, so it restarts with node budgets following
   * the Luby sequence (times 2n, about two dives) and a different tie-break among candidates
   * at the same key each time: longest first, largest first, then random (seeded by the turn,
   * so successive calls explore differently). Pass 1 is one complete branch and bound from the best known
   * peak down; finishing it proves optimality. Pass 0 gets half of the time. */
  double now = hk__plan_clock(p);
  double split = mode == HK__SEARCH_BOTH ? now + (deadline - now) / 2 : deadline;
  uint64_t rng = (0x2545F4914F6CDD1Dull ^ n) + 0x9E3779B97F4A7C15ull * turn;
  bool lb_refuted = false;
  for (int restart = 0; mode != HK__SEARCH_BB && !s.done && !lb_refuted && hk__plan_clock(p) < split; restart++) {
    for (size_t i = 0; i < n; i++) {
      uint64_t k;
      if (restart == 0 && turn < 2) k = ~p->len[i];
      else if (restart == 1 && turn < 2) k = (uint64_t)s.rank[i]; /* placeholder, replaced below */
      else { rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27; k = rng * 2685821657736338717ull; }
      keys[i] = (hk__plan_kv){k, i};
    }
    if (restart == 1 && turn < 2) for (size_t i = 0; i < n; i++) keys[prio[i]].key = i;
    hk__plan_sort_kv(keys, n);
    for (size_t i = 0; i < n; i++) { s.by_rank[i] = (uint32_t)keys[i].val; s.rank[keys[i].val] = (uint32_t)i; }
    s.C = stop_at > p->lb ? stop_at : p->lb;
    s.deadline = split;
    s.cur_off = 0;
    s.cur_sl = -1;
    s.timeout = s.limited = false;
    s.node_limit = s.nodes + luby((uint64_t)restart + 1) * 2 * (n + 100);
    if (!state_ok(&s)) { lb_refuted = true; break; }
    if (dfs(&s, 0, 0, n, false) != HK_OK) goto out;
    if (!s.timeout && !s.limited && !s.done) lb_refuted = true; /* exhausted: the bound is out of reach */
  }
  if (!s.done && mode != HK__SEARCH_LB) {
    for (size_t i = 0; i < n; i++) { s.rank[prio[i]] = (uint32_t)i; s.by_rank[i] = prio[i]; }
    memset(s.nogood, 0, (s.ng_mask + 1) * sizeof *s.nogood);
    s.perfect = false;
    s.C = *best_peak - s.gran;
    s.deadline = deadline;
    s.cur_off = 0;
    s.cur_sl = -1;
    s.timeout = s.limited = false;
    s.node_limit = UINT64_MAX;
    if (state_ok(&s) && dfs(&s, 0, 0, n, false) != HK_OK) goto out;
    if (!s.timeout && !s.done) s.proved = true; /* exhausted below the best */
  }
  rc = s.proved ? 1 : lb_refuted && mode == HK__SEARCH_LB ? 2 : 0;
out:
  if (st) st->nodes += s.nodes;
  free(s.floor_b); free(s.off); free(s.placed); free(s.rank); free(s.by_rank); free(s.floor_s);
  free(s.rem); free(s.twin); free(keys); free(s.start_at); free(s.starts); free(s.end_at); free(s.ends); free(s.reach); free(s.zob); free(s.total); if (!share_ng) free(s.nogood); free(s.cross); free(s.xc); free(s.pend); free(s.run_end); free(s.vl); free(s.vr); free(s.va); free(s.ve); free(s.cntl); free(s.cntr); free(s.wl); free(s.adj_start); free(s.adj); free(s.trail); free(s.cand);
  return rc;
}
