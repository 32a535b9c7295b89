/* Thread churn: thousands of short-lived threads (4 alive at a time), each allocating and freeing a
 * few hundred blocks and leaving a few behind for the main thread to free after it has exited, as a
 * thread-per-request server or a thread pool that recycles its workers does. Whatever per-thread
 * state the allocator keeps must be reclaimed or reused, and blocks freed after their owner exited
 * must be reusable: RSS should stay flat. Reports RSS once warm and at the end. The warm level is
 * taken from the later of the first tenth of the threads and WARM_MS of wall time, the same for every
 * allocator, so that end / warm compares two steady states: an allocator that gives memory back
 * after a delay (heapkit's purge delay, 100 ms) reaches its plateau only after that delay, and
 * the first tenth of 10000 threads comes about 40 ms into the run (README.md, "Thread churn").
 * A run too short to reach WARM_MS takes the warm window at the first tenth (warm_ms= tells which).
 * Both levels are medians of one sample per wave over a window of WINDOW_DIV-th of the threads:
 * with threads exiting every few tens of microseconds, RSS read at one instant swings by a third
 * from one wave to the next (how much sits in caches at that instant), so a single pair of samples
 * could not tell 1.12 from 1.00. The end window is the last WINDOW_DIV-th of the threads and ends
 * with the sample after the last frees; that final sample is printed too (rss_final_kb).
 * Usage: w_threads [scale] */
#include "wl.h"
#include <pthread.h>

#define WAVE 4       /* threads alive at once */
#define PER 256      /* blocks each thread allocates */
#define LEFT 8       /* of which it leaves this many behind */
#define WARM_MS 200  /* the warm sample comes no earlier than this: two of heapkit's purge delays */
#define WINDOW_DIV 20 /* each level is the median over this fraction of the threads */
#define MAXS 4096

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

static long median(long *v, int n) {
  if (n <= 0) return -1;
  qsort(v, (size_t)n, sizeof *v, cmp_long);
  return v[n / 2];
}

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
  long window = nthreads / WINDOW_DIV > WAVE ? nthreads / WINDOW_DIV : WAVE;
  long end_from = nthreads - window;
  static long warm_s[MAXS], tenth_s[MAXS], end_s[MAXS];
  int warm_n = 0, tenth_n = 0, end_n = 0;
  long warm_started = -1, rss_max = 0;
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
      long r = wl_rss_kb();
      if (started + k < warm_at + window && tenth_n < MAXS) tenth_s[tenth_n++] = r;
      double ms = (wl_now() - t0) * 1e3;
      if (warm_started < 0 && ms >= WARM_MS) warm_started = started, warm_ms = ms;
      if (warm_started >= 0 && started < warm_started + window && warm_n < MAXS) warm_s[warm_n++] = r;
      if (started + k > end_from && end_n < MAXS - 1) end_s[end_n++] = r;
      if (r > rss_max) rss_max = r;
    } else if (started % 256 == 0) {
      long r = wl_rss_kb();
      if (r > rss_max) rss_max = r;
    }
  }
  for (int i = 0; i < have_prev; i++)
    for (int m = 0; m < LEFT; m++) {
      wl_verify(prev[i].left[m], prev[i].leftn[m], prev[i].id * PER + (uint64_t)m * (PER / LEFT));
      free(prev[i].left[m]);
    }
  long rss_final = wl_rss_kb();
  end_s[end_n++] = rss_final;
  /* A warm window cut short by the end of the run keeps what it has; none at all (warm_ms=-1: the
   * run ended before WARM_MS) falls back to the tenth's window. */
  int use_tenth = warm_n == 0;
  long rss_tenth = median(tenth_s, tenth_n);
  long rss_warm = use_tenth ? rss_tenth : median(warm_s, warm_n);
  long rss_end = median(end_s, end_n);
  if (use_tenth) warm_ms = -1;
  printf("OK checksum=%016llx threads=%ld rss_warm_kb=%ld rss_end_kb=%ld rss_final_kb=%ld rss_max_kb=%ld "
         "rss_tenth_kb=%ld warm_ms=%.0f samples=%d/%d\n",
         (unsigned long long)sum, nthreads, rss_warm, rss_end, rss_final,
         rss_max > rss_final ? rss_max : rss_final, rss_tenth, warm_ms, use_tenth ? tenth_n : warm_n, end_n);
  return 0;
}
