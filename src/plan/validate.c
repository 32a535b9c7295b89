/* hk_plan_validate: the independent checker that tests and the CLI trust. Deliberately shares
 * no code with the planner beyond the sort: a sweep over time keeps the buffers alive at the
 * current moment and compares each newcomer with all of them, O(n log n + overlapping pairs). */
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
  hk__plan_kv *ev = malloc((n ? n : 1) * sizeof *ev);
  uint32_t *active = malloc((n ? n : 1) * sizeof *active);
  if (!ev || !active) { free(ev); free(active); fail(msg, msglen, "out of memory"); return HK_ENOMEM; }
  size_t m = 0;
  for (size_t i = 0; i < n; i++) if (bufs[i].size) ev[m++] = (hk__plan_kv){bufs[i].lower, i};
  hk__plan_sort_kv(ev, m);
  size_t na = 0;
  int rc = HK_OK;
  for (size_t k = 0; k < m && rc == HK_OK; k++) {
    size_t b = ev[k].val;
    size_t w = 0;
    for (size_t j = 0; j < na && rc == HK_OK; j++) {
      size_t c = active[j];
      if (bufs[c].upper <= bufs[b].lower) continue;
      active[w++] = (uint32_t)c;
      uint64_t lo = offsets[b] > offsets[c] ? offsets[b] : offsets[c];
      uint64_t hb = offsets[b] + bufs[b].size, hc = offsets[c] + bufs[c].size;
      uint64_t hi = hb < hc ? hb : hc;
      if (lo < hi) {
        size_t x = c < b ? c : b, y = c < b ? b : c;
        uint64_t tl = bufs[b].lower > bufs[c].lower ? bufs[b].lower : bufs[c].lower;
        uint64_t tu = bufs[b].upper < bufs[c].upper ? bufs[b].upper : bufs[c].upper;
        rc = fail(msg, msglen, "buffers %zu and %zu overlap in time [%" PRIu64 ", %" PRIu64 ") and in memory [%" PRIu64 ", %" PRIu64 ")",
                  x, y, tl, tu, lo, hi);
      }
    }
    if (rc != HK_OK) break;
    na = w;
    active[na++] = (uint32_t)b;
  }
  free(ev);
  free(active);
  return rc;
}
