/* Large allocations: buffers of 64 KiB to 8 MiB (log-uniform) in a small live set, one byte written
 * per page as a program filling its buffer would, and a third of the steps growing a buffer with
 * realloc by 1.5x, as a vector or string builder does. Measures how the allocator maps, reuses and
 * returns large blocks, and whether realloc can grow in place or by remapping instead of copying.
 * Usage: w_large [scale] */
#include "wl.h"

#define NSLOTS 12
#define MINSZ ((size_t)64 << 10)
#define MAXSZ ((size_t)8 << 20)

typedef struct slot { unsigned char *p; size_t n; uint64_t tag; } slot;

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  long steps = wl_scaled(scale, 6000);
  slot s[NSLOTS] = {0};
  wl_rng r = wl_rng_make(4);
  uint64_t sum = 0, tag = 0x1000;
  for (long i = 0; i < steps; i++) {
    slot *x = &s[wl_next(&r) % NSLOTS];
    tag++;
    if (x->p && x->n < MAXSZ && wl_next(&r) % 3 == 0) {
      size_t n = x->n + x->n / 2;
      if (n > MAXSZ) n = MAXSZ;
      unsigned char *q = wl_check_alloc(realloc(x->p, n), n);
      wl_verify_touch(q, x->n, x->tag); /* the old contents must have moved with it */
      x->p = q;
      x->n = n;
    } else {
      if (x->p) {
        wl_verify_touch(x->p, x->n, x->tag);
        sum = wl_mix(sum, x->n);
        free(x->p);
      }
      x->n = wl_logrange(&r, MINSZ, MAXSZ);
      x->p = wl_check_alloc(malloc(x->n), x->n);
    }
    x->tag = tag;
    wl_touch(x->p, x->n, tag);
  }
  for (int i = 0; i < NSLOTS; i++)
    if (s[i].p) {
      wl_verify_touch(s[i].p, s[i].n, s[i].tag);
      sum = wl_mix(sum, s[i].n);
      free(s[i].p);
    }
  printf("OK checksum=%016llx\n", (unsigned long long)sum);
  return 0;
}
