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
  trail_ent *trail;
  size_t tn, tcap;
  hk__plan_kv *cand; /* candidate stack shared by all depths */
  size_t cn, ccap;
  uint64_t C, gran, cur_off;
  int64_t cur_sl;
  double deadline;
  uint64_t nodes;
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
static bool state_ok(const srch *s) {
  for (size_t x = 0; x < s->S; x++) {
    uint64_t r = s->rem[x];
    if (!r) continue;
    uint64_t f = s->floor_s[x], base;
    if (f > s->cur_off) base = f;
    else base = (int64_t)x <= s->cur_sl ? s->cur_off + s->gran : s->cur_off;
    if (base > s->C || r > s->C - base) return false;
  }
  return true;
}

/* Could any child at offset y survive? (monotone in y) */
static bool level_ok(const srch *s, uint64_t y) {
  for (size_t x = 0; x < s->S; x++) {
    uint64_t r = s->rem[x];
    if (r && s->floor_s[x] <= y && (y > s->C || r > s->C - y)) return false;
  }
  return true;
}

static int place(srch *s, uint32_t c, uint64_t y) {
  const hk__plan_prob *p = s->p;
  uint64_t top = y + p->size[c];
  s->off[c] = y;
  s->placed[c] = 1;
  for (uint32_t k = s->adj_start[c]; k < s->adj_start[c + 1]; k++) {
    uint32_t d = s->adj[k];
    if (!s->placed[d] && s->floor_b[d] < top) {
      if (trail_push(s, &s->floor_b[d]) != HK_OK) return HK_ENOMEM;
      s->floor_b[d] = top;
    }
  }
  for (uint32_t x = p->sl[c]; x < p->su[c]; x++) {
    if (trail_push(s, &s->floor_s[x]) != HK_OK) return HK_ENOMEM;
    s->floor_s[x] = top;
    s->rem[x] -= p->size[c];
  }
  return HK_OK;
}

static void unplace(srch *s, uint32_t c, size_t mark) {
  const hk__plan_prob *p = s->p;
  while (s->tn > mark) { s->tn--; *s->trail[s->tn].ptr = s->trail[s->tn].old; }
  for (uint32_t x = p->sl[c]; x < p->su[c]; x++) s->rem[x] += p->size[c];
  s->placed[c] = 0;
}

static void found(srch *s) {
  const hk__plan_prob *p = s->p;
  uint64_t peak = hk__plan_peak(p, s->off);
  if (peak < *s->best_peak) {
    *s->best_peak = peak;
    memcpy(s->best_off, s->off, p->n * sizeof *s->off);
  }
  if (*s->best_peak <= p->lb) { s->done = s->proved = true; return; }
  if (s->stop_at && *s->best_peak <= s->stop_at) { s->done = true; return; }
  if (s->C >= *s->best_peak) s->C = *s->best_peak - s->gran;
}

/* Returns HK_OK or HK_ENOMEM; s->done / s->timeout end the search. */
static int dfs(srch *s, size_t depth) {
  const hk__plan_prob *p = s->p;
  if (depth == p->n) { found(s); return HK_OK; }
  if ((++s->nodes & 255) == 0 && hk__plan_now() > s->deadline) { s->timeout = true; return HK_OK; }
  /* candidates: every unplaced buffer whose key (offset, first section) is past the cursor */
  size_t base = s->cn;
  for (size_t d = 0; d < p->n; d++) {
    if (s->placed[d]) continue;
    uint64_t y = align_up64(s->floor_b[d], p->align[d]);
    uint64_t lo = y;
    bool past = y > s->cur_off || (y == s->cur_off && (int64_t)p->sl[d] > s->cur_sl);
    if (!past) { /* it must wait for something under it; its offset will exceed the cursor */
      lo = align_up64(s->cur_off + ((int64_t)p->sl[d] > s->cur_sl ? 0 : s->gran), p->align[d]);
      if (lo < y) lo = y;
    }
    if (lo > s->C || p->size[d] > s->C - lo) { s->cn = base; return HK_OK; } /* d can never fit */
    if (!past) continue;
    if (s->cn == s->ccap) {
      size_t nc = s->ccap ? 2 * s->ccap : 4096;
      hk__plan_kv *v = realloc(s->cand, nc * sizeof *v);
      if (!v) return HK_ENOMEM;
      s->cand = v;
      s->ccap = nc;
    }
    s->cand[s->cn++] = (hk__plan_kv){y, ((uint64_t)p->sl[d] << 32) | s->rank[d]};
  }
  size_t end = s->cn;
  hk__plan_sort_kv(s->cand + base, end - base);
  uint64_t saved_off = s->cur_off, checked_y = UINT64_MAX;
  int64_t saved_sl = s->cur_sl;
  uint64_t C_at_entry = s->C;
  for (size_t k = base; k < end && !s->done && !s->timeout; k++) {
    if (s->C != C_at_entry) { /* a placement was found below: is this node still useful? */
      C_at_entry = s->C;
      s->cur_off = saved_off; s->cur_sl = saved_sl;
      if (!state_ok(s)) break;
    }
    uint64_t y = s->cand[k].key;
    uint32_t c = s->by_rank[s->cand[k].val & 0xffffffffu];
    if (y + p->size[c] > s->C) continue;
    if (y != checked_y) {
      if (!level_ok(s, y)) break;
      checked_y = y;
    }
    size_t mark = s->tn;
    if (place(s, c, y) != HK_OK) { s->cn = base; return HK_ENOMEM; }
    s->cur_off = y;
    s->cur_sl = p->sl[c];
    int rc = HK_OK;
    if (state_ok(s)) rc = dfs(s, depth + 1);
    unplace(s, c, mark);
    s->cur_off = saved_off;
    s->cur_sl = saved_sl;
    if (rc != HK_OK) { s->cn = base; return rc; }
  }
  s->cn = base;
  return HK_OK;
}

int hk__plan_search(const hk__plan_prob *p, const uint32_t *prio, double deadline, uint64_t stop_at,
                    uint64_t *best_off, uint64_t *best_peak, hk__plan_search_stats *st) {
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
  s.floor_s = calloc(s.S + 1, sizeof *s.floor_s);
  s.rem = calloc(s.S + 1, sizeof *s.rem);
  int rc = HK_ENOMEM;
  if (!s.floor_b || !s.off || !s.placed || !s.rank || !s.by_rank || !s.floor_s || !s.rem) goto out;
  if (build_adj(&s) != HK_OK) goto out;
  for (size_t i = 0; i < n; i++) { s.rank[prio[i]] = (uint32_t)i; s.by_rank[i] = prio[i]; }
  for (size_t i = 0; i < n; i++)
    for (uint32_t x = p->sl[i]; x < p->su[i]; x++) s.rem[x] += p->size[i];
  /* Two passes: first aim straight at the lower bound (maximal pruning; perfect packings are
   * found here), with a third of the time; then branch and bound down from the best known. */
  double now = hk__plan_now();
  double split = now + (deadline - now) / 3;
  for (int pass = 0; pass < 2 && !s.done; pass++) {
    s.C = pass == 0 ? p->lb : *best_peak - s.gran;
    s.deadline = pass == 0 ? split : deadline;
    s.cur_off = 0;
    s.cur_sl = -1;
    s.timeout = false;
    if (dfs(&s, 0) != HK_OK) goto out;
    if (pass == 1 && !s.timeout && !s.done) s.proved = true; /* exhausted below the best */
  }
  rc = s.proved ? 1 : 0;
out:
  if (st) st->nodes += s.nodes;
  free(s.floor_b); free(s.off); free(s.placed); free(s.rank); free(s.by_rank); free(s.floor_s);
  free(s.rem); free(s.adj_start); free(s.adj); free(s.trail); free(s.cand);
  return rc;
}
