/* Peak, then free most of it, then keep working: allocate about 1 GiB (times scale) in mixed small
 * and medium blocks, free the oldest 90%, and carry on with light allocate/free activity for 1.5 s,
 * sampling RSS from /proc/self/statm every 100 ms. This is the shape of a compiler between phases,
 * a server after a load spike, or a batch job between stages: does the memory go back to the OS?
 * Reports the peak RSS, the RSS right after the free, 1 s after it and at the end, the fraction of
 * the peak still resident 1 s after the free, and time_s = the time of the allocate and free phases
 * (the 1.5 s of activity is fixed wall time and says nothing about speed).
 * Usage: w_peakfree [scale] */
#include "wl.h"

typedef struct blk { unsigned char *p; uint32_t n; } blk;

static size_t pick_size(wl_rng *r) {
  unsigned k = (unsigned)(wl_next(r) % 100);
  return k < 60 ? wl_range(r, 16, 256) : k < 90 ? wl_range(r, 257, 4096) : wl_range(r, 4097, 65536);
}

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  size_t target = (size_t)((double)(1ull << 30) * scale);
  size_t cap = 1 << 16, nblk = 0, total = 0;
  blk *b = malloc(cap * sizeof *b);
  wl_rng r = wl_rng_make(8);
  uint64_t sum = 0;

  double t0 = wl_now();
  while (total < target) {
    if (nblk == cap) {
      cap *= 2;
      b = wl_check_alloc(realloc(b, cap * sizeof *b), cap * sizeof *b);
    }
    size_t n = pick_size(&r);
    b[nblk].p = wl_check_alloc(malloc(n), n);
    b[nblk].n = (uint32_t)n;
    wl_fill(b[nblk].p, n, nblk + 1);
    nblk++;
    total += n;
  }
  long peak = wl_rss_kb();
  size_t nfree = nblk / 10 * 9;
  for (size_t i = 0; i < nfree; i++) {
    wl_verify(b[i].p, b[i].n, i + 1);
    sum = wl_mix(sum, b[i].n);
    free(b[i].p);
  }
  double t1 = wl_now();
  long after_free = wl_rss_kb();

  /* light activity: a small working set churned in short bursts, with RSS sampled every 100 ms */
  enum { NWORK = 8192 };
  blk *w = calloc(NWORK, sizeof *w);
  long samples[32];
  int ns = 0;
  long rss_1s = -1;
  double next = t1 + 0.1;
  uint64_t tag = 1ull << 40;
  for (;;) {
    for (int i = 0; i < 2000; i++) {
      blk *x = &w[wl_next(&r) % NWORK];
      if (x->p) { wl_verify(x->p, x->n, x->n ^ tag); free(x->p); }
      x->n = (uint32_t)wl_range(&r, 16, 1024);
      x->p = wl_check_alloc(malloc(x->n), x->n);
      wl_fill(x->p, x->n, x->n ^ tag);
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    double t = wl_now();
    if (t >= next) {
      if (ns < 32) samples[ns++] = wl_rss_kb();
      if (rss_1s < 0 && t - t1 >= 1.0) rss_1s = samples[ns - 1];
      next += 0.1;
    }
    if (t - t1 >= 1.5) break;
  }
  for (int i = 0; i < NWORK; i++)
    if (w[i].p) { wl_verify(w[i].p, w[i].n, w[i].n ^ tag); free(w[i].p); }
  free(w);
  for (size_t i = nfree; i < nblk; i++) {
    wl_verify(b[i].p, b[i].n, i + 1);
    sum = wl_mix(sum, b[i].n);
    free(b[i].p);
  }
  free(b);
  long rss_end = samples[ns - 1];
  printf("OK checksum=%016llx time_s=%.4f peak_rss_kb=%ld rss_after_free_kb=%ld rss_1s_kb=%ld "
         "rss_end_kb=%ld frac_1s=%.4f frac_end=%.4f samples_kb=",
         (unsigned long long)sum, t1 - t0, peak, after_free, rss_1s, rss_end,
         (double)rss_1s / (double)peak, (double)rss_end / (double)peak);
  for (int i = 0; i < ns; i++) printf("%s%ld", i ? "," : "", samples[i]);
  printf("\n");
  return 0;
}
