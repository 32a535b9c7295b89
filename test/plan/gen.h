/* Instance generators shared by the planner's tests and benchmark (header-only, deterministic).
 *
 * hkgen_perfect: a perfect packing cut from a rectangle [0, T) x [0, C): pieces are split
 * repeatedly, either in time (two pieces side by side) or in memory (two pieces stacked), until
 * there are n. Every moment is covered by pieces summing to exactly C, so the lower bound equals
 * C and a placement at the bound exists by construction; the planner is handed the pieces
 * shuffled and without their offsets. */
#ifndef HK_TEST_PLAN_GEN_H
#define HK_TEST_PLAN_GEN_H
#include <heapkit.h>
#include <stdlib.h>
#include <string.h>

typedef struct hkgen_rng { uint64_t s; } hkgen_rng;
static inline uint64_t hkgen_next(hkgen_rng *r) { /* xorshift64* */
  r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ull;
}
static inline uint64_t hkgen_below(hkgen_rng *r, uint64_t n) { return n ? hkgen_next(r) % n : 0; }

/* Fills out[0..n-1]; offs (optional) receives the packing's own offsets. T and C >= 2n keep
 * every cut possible. unit scales sizes (all sizes are multiples of unit). Returns 0 or -1. */
static inline int hkgen_perfect(hk_plan_buffer *out, uint64_t *offs, size_t n, uint64_t T, uint64_t C,
                                uint64_t unit, uint64_t seed) {
  hkgen_rng r = {seed * 0x9E3779B97F4A7C15ull + 1};
  typedef struct { uint64_t t0, t1, o0, o1; } piece;
  piece *pc = (piece *)malloc(n * sizeof *pc);
  if (!pc || n == 0) { free(pc); return -1; }
  size_t k = 1;
  pc[0] = (piece){0, T, 0, C};
  int stuck = 0;
  while (k < n && stuck < 100000) {
    size_t i = hkgen_below(&r, k);
    piece p = pc[i];
    int in_time = hkgen_below(&r, 2) == 0;
    if (in_time && p.t1 - p.t0 >= 2) {
      uint64_t c = p.t0 + 1 + hkgen_below(&r, p.t1 - p.t0 - 1);
      pc[i].t1 = c;
      pc[k++] = (piece){c, p.t1, p.o0, p.o1};
    } else if (!in_time && p.o1 - p.o0 >= 2) {
      uint64_t c = p.o0 + 1 + hkgen_below(&r, p.o1 - p.o0 - 1);
      pc[i].o1 = c;
      pc[k++] = (piece){p.t0, p.t1, c, p.o1};
    } else {
      stuck++;
    }
  }
  if (k < n) { free(pc); return -1; }
  for (size_t i = n; i-- > 1;) { /* shuffle so input order says nothing */
    size_t j = hkgen_below(&r, i + 1);
    piece t = pc[i]; pc[i] = pc[j]; pc[j] = t;
  }
  for (size_t i = 0; i < n; i++) {
    out[i] = (hk_plan_buffer){pc[i].t0, pc[i].t1, (pc[i].o1 - pc[i].o0) * unit, 0};
    if (offs) offs[i] = pc[i].o0 * unit;
  }
  free(pc);
  return 0;
}

/* Random "model-like" trace: mostly short-lived buffers, a few long-lived ones, sizes drawn
 * from a small set of powers of two times small factors. */
static inline void hkgen_random(hk_plan_buffer *out, size_t n, uint64_t T, uint64_t seed) {
  hkgen_rng r = {seed * 0x9E3779B97F4A7C15ull + 7};
  for (size_t i = 0; i < n; i++) {
    uint64_t lo = hkgen_below(&r, T);
    uint64_t len = hkgen_below(&r, 10) == 0 ? 1 + hkgen_below(&r, T / 4 + 1) : 1 + hkgen_below(&r, 8);
    uint64_t size = (1 + hkgen_below(&r, 3)) << (4 + hkgen_below(&r, 16));
    out[i] = (hk_plan_buffer){lo, lo + len, size, 0};
  }
}
/* Model-like trace (the shape of an inference graph): activations live a few steps, a tenth
 * live up to a few hundred steps (skip connections), sizes from a dozen tensor shapes. */
static inline void hkgen_model(hk_plan_buffer *out, size_t n, uint64_t seed) {
  static const uint64_t shapes[12] = {256, 1024, 4096, 12288, 16384, 65536, 98304, 262144,
                                      393216, 1048576, 1572864, 4194304};
  hkgen_rng r = {seed * 0x9E3779B97F4A7C15ull + 11};
  uint64_t T = n / 4 + 1;
  for (size_t i = 0; i < n; i++) {
    uint64_t lo = hkgen_below(&r, T);
    uint64_t len = hkgen_below(&r, 10) == 0 ? 1 + hkgen_below(&r, 300) : 1 + hkgen_below(&r, 8);
    out[i] = (hk_plan_buffer){lo, lo + len, shapes[hkgen_below(&r, 12)], 0};
  }
}
#endif
