/* hk_plan_validate: the independent checker that tests and the CLI trust. Deliberately shares
 * no code with the planner beyond the sort: a sweep over time keeps the live buffers ordered by
 * offset and checks each newcomer against its two neighbours, O(n log n). */
#include "plan/plan_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t len, const char *fmt, ...) {
  if (msg && len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
  }
  return HK_EINVAL;
}

/* A treap of live buffers keyed by (offset, index); node i + 1 is buffer i, 0 is null. */
typedef struct vnode { uint32_t l, r, pri; } vnode;
typedef struct vt { const hk_plan_buffer *bufs; const uint64_t *off; vnode *nd; uint32_t seed; } vt;

static inline bool vt_less(const vt *t, uint32_t a, uint32_t b) {
  uint64_t oa = t->off[a - 1], ob = t->off[b - 1];
  return oa < ob || (oa == ob && a < b);
}
/* split by key: left gets nodes < k (or <= k when le) */
static void vt_split(vt *t, uint32_t x, uint32_t k, bool le, uint32_t *l, uint32_t *r) {
  if (!x) { *l = *r = 0; return; }
  bool goes_left = le ? !vt_less(t, k, x) : vt_less(t, x, k);
  if (goes_left) { vt_split(t, t->nd[x].r, k, le, &t->nd[x].r, r); *l = x; }
  else { vt_split(t, t->nd[x].l, k, le, l, &t->nd[x].l); *r = x; }
}
static uint32_t vt_merge(vt *t, uint32_t a, uint32_t b) {
  if (!a || !b) return a ? a : b;
  if (t->nd[a].pri > t->nd[b].pri) { t->nd[a].r = vt_merge(t, t->nd[a].r, b); return a; }
  t->nd[b].l = vt_merge(t, a, t->nd[b].l);
  return b;
}
static uint32_t vt_insert(vt *t, uint32_t root, uint32_t x) {
  t->seed = t->seed * 1664525u + 1013904223u;
  t->nd[x] = (vnode){0, 0, t->seed};
  uint32_t l, r;
  vt_split(t, root, x, false, &l, &r);
  return vt_merge(t, vt_merge(t, l, x), r);
}
static uint32_t vt_erase(vt *t, uint32_t root, uint32_t x) {
  uint32_t l, m, r;
  vt_split(t, root, x, false, &l, &r);
  vt_split(t, r, x, true, &m, &r);
  return vt_merge(t, l, r); /* m is x alone */
}
static uint32_t vt_pred(const vt *t, uint32_t x, uint32_t k) {
  uint32_t best = 0;
  while (x) { if (vt_less(t, x, k)) { best = x; x = t->nd[x].r; } else x = t->nd[x].l; }
  return best;
}
static uint32_t vt_succ(const vt *t, uint32_t x, uint32_t k) {
  uint32_t best = 0;
  while (x) { if (vt_less(t, k, x)) { best = x; x = t->nd[x].l; } else x = t->nd[x].r; }
  return best;
}

int hk_plan_validate(const hk_plan_buffer *bufs, size_t n, const uint64_t *offsets, uint64_t capacity,
                     uint64_t default_align, char *msg, size_t msglen) {
  if (msg && msglen) msg[0] = 0;
  if (n > 0 && (!bufs || !offsets)) return fail(msg, msglen, "NULL buffers or offsets");
  if (default_align & (default_align - 1)) return fail(msg, msglen, "default alignment %" PRIu64 " is not a power of two", default_align);
  for (size_t i = 0; i < n; i++) {
    const hk_plan_buffer *b = &bufs[i];
    uint64_t a = b->align ? b->align : (default_align ? default_align : 1);
    if (b->lower >= b->upper)
      return fail(msg, msglen, "buffer %zu has an empty interval [%" PRIu64 ", %" PRIu64 ")", i, b->lower, b->upper);
    if (a & (a - 1)) return fail(msg, msglen, "buffer %zu: alignment %" PRIu64 " is not a power of two", i, a);
    if (offsets[i] % a) return fail(msg, msglen, "buffer %zu: offset %" PRIu64 " is not a multiple of its alignment %" PRIu64, i, offsets[i], a);
    if (offsets[i] > UINT64_MAX - b->size) return fail(msg, msglen, "buffer %zu: offset + size overflows", i);
    if (capacity && offsets[i] + b->size > capacity)
      return fail(msg, msglen, "buffer %zu ends at %" PRIu64 ", beyond the capacity %" PRIu64, i, offsets[i] + b->size, capacity);
  }
  /* Sweep over time with the live buffers in a treap ordered by (offset, index). If the live
   * buffers are pairwise disjoint in memory, a newcomer overlaps one of them iff it overlaps its
   * neighbour below or above in that order: O(n log n) whatever the overlap count. Ends sort
   * before starts at the same time (half-open intervals). */
  hk__plan_kv *ev = malloc((2 * n + 1) * sizeof *ev);
  vt t = {bufs, offsets, calloc(n + 1, sizeof *t.nd), 0x9E3779B9u};
  if (!ev || !t.nd) { free(ev); free(t.nd); fail(msg, msglen, "out of memory"); return HK_ENOMEM; }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (!bufs[i].size) continue;
    ev[m++] = (hk__plan_kv){bufs[i].lower, ((uint64_t)1 << 32) | i};
    ev[m++] = (hk__plan_kv){bufs[i].upper, i};
  }
  hk__plan_sort_kv(ev, m);
  uint32_t root = 0;
  int rc = HK_OK;
  for (size_t k = 0; k < m && rc == HK_OK; k++) {
    uint32_t b = (uint32_t)(ev[k].val & 0xffffffffu) + 1;
    if (!(ev[k].val >> 32)) { root = vt_erase(&t, root, b); continue; }
    uint32_t nb[2] = {vt_pred(&t, root, b), vt_succ(&t, root, b)};
    for (int j = 0; j < 2 && rc == HK_OK; j++) {
      if (!nb[j]) continue;
      size_t x = b - 1, c = nb[j] - 1;
      uint64_t lo = offsets[x] > offsets[c] ? offsets[x] : offsets[c];
      uint64_t hx = offsets[x] + bufs[x].size, hc = offsets[c] + bufs[c].size;
      uint64_t hi = hx < hc ? hx : hc;
      if (lo < hi) {
        size_t p = c < x ? c : x, q = c < x ? x : c;
        uint64_t tl = bufs[x].lower > bufs[c].lower ? bufs[x].lower : bufs[c].lower;
        uint64_t tu = bufs[x].upper < bufs[c].upper ? bufs[x].upper : bufs[c].upper;
        rc = fail(msg, msglen, "buffers %zu and %zu overlap in time [%" PRIu64 ", %" PRIu64 ") and in memory [%" PRIu64 ", %" PRIu64 ")",
                  p, q, tl, tu, lo, hi);
      }
    }
    root = vt_insert(&t, root, b);
  }
  free(ev);
  free(t.nd);
  return rc;
}
