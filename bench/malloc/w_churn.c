/* Single-thread churn over a live set: a table of slots, each holding one block; every step replaces a
 * random slot's block (free + malloc, or realloc, or calloc) with one of a realistic size: mostly
 * 16-256 bytes with a tail up to 64 KiB, as in compilers, interpreters and servers' request handling.
 * Usage: w_churn [scale] */
#include "wl.h"

typedef struct slot { unsigned char *p; size_t n; uint64_t tag; } slot;

/* 60% 16-64, 25% 65-256, 10% 257-2K, 4% 2K-16K, 1% 16K-64K */
static size_t pick_size(wl_rng *r) {
  unsigned k = (unsigned)(wl_next(r) % 100);
  if (k < 60) return wl_range(r, 16, 64);
  if (k < 85) return wl_range(r, 65, 256);
  if (k < 95) return wl_range(r, 257, 2048);
  if (k < 99) return wl_range(r, 2049, 16384);
  return wl_range(r, 16385, 65536);
}

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  const size_t nslots = 16384;
  long steps = wl_scaled(scale, 12000000);
  slot *s = calloc(nslots, sizeof *s);
  wl_rng r = wl_rng_make(1);
  uint64_t sum = 0, tag = 1;
  for (long i = 0; i < steps; i++) {
    slot *x = &s[wl_next(&r) % nslots];
    size_t n = pick_size(&r);
    unsigned op = (unsigned)(wl_next(&r) % 100);
    tag++;
    if (x->p && op < 8) {
      /* realloc keeps the old prefix: check it survived the move */
      wl_verify(x->p, x->n, x->tag);
      unsigned char *q = wl_check_alloc(realloc(x->p, n), n);
      size_t keep = n < x->n ? n : x->n;
      if (keep >= 8) {
        uint64_t h;
        memcpy(&h, q, 8);
        if (h != x->tag) wl_fail("realloc lost the contents of a %zu-byte block", x->n);
      }
      x->p = q;
    } else {
      if (x->p) {
        wl_verify(x->p, x->n, x->tag);
        sum = wl_mix(sum, x->p[0] ^ x->n);
        free(x->p);
      }
      if (op < 13) {
        x->p = wl_check_alloc(calloc(1, n), n);
        if (x->p[n - 1] != 0 || x->p[n / 2] != 0) wl_fail("calloc returned non-zero memory");
      } else {
        x->p = wl_check_alloc(malloc(n), n);
      }
    }
    x->n = n;
    x->tag = tag;
    wl_fill(x->p, n, tag);
  }
  for (size_t i = 0; i < nslots; i++) {
    if (!s[i].p) continue;
    wl_verify(s[i].p, s[i].n, s[i].tag);
    sum = wl_mix(sum, s[i].n);
    free(s[i].p);
  }
  free(s);
  printf("OK checksum=%016llx\n", (unsigned long long)sum);
  return 0;
}
