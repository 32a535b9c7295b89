/* Thread churn: thousands of short-lived threads (4 alive at a time), each allocating and freeing a
 * few hundred blocks and leaving a few behind for the main thread to free after it has exited, as a
 * thread-per-request server or a thread pool that recycles its workers does. Whatever per-thread
 * state the allocator keeps must be reclaimed or reused, and blocks freed after their owner exited
 * must be reusable: RSS should stay flat. Reports RSS once warm and at the end. The warm sample is
 * taken at the later of the first tenth of the threads and WARM_MS of wall time, the same for every
 * allocator, so that end / warm compares two steady states: an allocator that gives memory back
 * after a delay (heapkit's purge delay, 100 ms) reaches its plateau only after that delay, and
 * the first tenth of 10000 threads comes about 40 ms into the run (README.md, "Thread churn").
 * A run too short to reach WARM_MS takes the sample at the first tenth (warm_ms= tells which).
 * Usage: w_threads [scale] */
#include "wl.h"
#include <pthread.h>

#define WAVE 4       /* threads alive at once */
#define PER 256      /* blocks each thread allocates */
#define LEFT 8       /* of which it leaves this many behind */
#define WARM_MS 200  /* the warm sample comes no earlier than this: two of heapkit's purge delays */

typedef struct job { pthread_t t; uint64_t id; void *left[LEFT]; size_t leftn[LEFT]; uint64_t sum; } job;

static size_t pick_size(wl_rng *r) {
  unsigned k = (unsigned)(wl_next(r) % 100);
  return k < 80 ? wl_range(r, 16, 256) : k < 98 ? wl_range(r, 257, 4096) : wl_range(r, 4097, 65536);
}

static void *run(void *vp) {
  job *j = vp;
  wl_rng r = wl_rng_make(500 + j->id);
  void *p[PER];
  size_t n[PER];
  for (int i = 0; i < PER; i++) {
    n[i] = pick_size(&r);
    p[i] = wl_check_alloc(malloc(n[i]), n[i]);
    wl_fill(p[i], n[i], j->id * PER + (uint64_t)i);
  }
  for (int i = 0; i < PER; i++) {
    if (i % (PER / LEFT) == 0) {
      j->left[i / (PER / LEFT)] = p[i];
      j->leftn[i / (PER / LEFT)] = n[i];
      continue;
    }
    wl_verify(p[i], n[i], j->id * PER + (uint64_t)i);
    j->sum += n[i];
    free(p[i]);
  }
  return NULL;
}

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  long nthreads = wl_scaled(scale, 10000);
  long warm_at = nthreads / 10;
  long rss_warm = -1, rss_tenth = -1, rss_max = 0;
  double t0 = wl_now(), warm_ms = -1;
  uint64_t sum = 0;
  job jobs[WAVE];
  /* The blocks each wave leaves behind are freed by main one wave later, after their owners have
   * exited: those frees land on pages whose thread is gone. */
  job prev[WAVE];
  int have_prev = 0;
  for (long started = 0; started < nthreads; started += WAVE) {
    int k = (int)(nthreads - started < WAVE ? nthreads - started : WAVE);
    for (int i = 0; i < k; i++) {
      memset(&jobs[i], 0, sizeof jobs[i]);
      jobs[i].id = (uint64_t)(started + i);
      if (pthread_create(&jobs[i].t, NULL, run, &jobs[i])) wl_fail("pthread_create");
    }
    for (int i = 0; i < k; i++) pthread_join(jobs[i].t, NULL);
    for (int i = 0; have_prev && i < have_prev; i++)
      for (int m = 0; m < LEFT; m++) {
        wl_verify(prev[i].left[m], prev[i].leftn[m], prev[i].id * PER + (uint64_t)m * (PER / LEFT));
        free(prev[i].left[m]);
      }
    for (int i = 0; i < k; i++) { sum = wl_mix(sum, jobs[i].sum); prev[i] = jobs[i]; }
    have_prev = k;
    if (started + k >= warm_at) {
      if (rss_tenth < 0) rss_tenth = wl_rss_kb();
      double ms = (wl_now() - t0) * 1e3;
      if (rss_warm < 0 && ms >= WARM_MS) rss_warm = wl_rss_kb(), warm_ms = ms;
    }
    if (started % 256 == 0) { long r = wl_rss_kb(); if (r > rss_max) rss_max = r; }
  }
  for (int i = 0; i < have_prev; i++)
    for (int m = 0; m < LEFT; m++) {
      wl_verify(prev[i].left[m], prev[i].leftn[m], prev[i].id * PER + (uint64_t)m * (PER / LEFT));
      free(prev[i].left[m]);
    }
  long rss_end = wl_rss_kb();
  if (rss_warm < 0) rss_warm = rss_tenth; /* (warm_ms=-1: the run ended before WARM_MS) */
  printf("OK checksum=%016llx threads=%ld rss_warm_kb=%ld rss_end_kb=%ld rss_max_kb=%ld rss_tenth_kb=%ld warm_ms=%.0f\n",
         (unsigned long long)sum, nthreads, rss_warm, rss_end, rss_max > rss_end ? rss_max : rss_end, rss_tenth, warm_ms);
  return 0;
}
