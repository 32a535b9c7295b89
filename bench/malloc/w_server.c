/* Server-like: many worker threads (default 8) that each keep a private working set (request-local
 * objects, as in larson) and exchange objects through a table of shared slots (connections, caches,
 * queues, as in xmalloc-test): a worker swaps its new object into a random shared slot and frees
 * whatever it took out, which some other worker usually allocated. Half the frees are cross-thread.
 * Usage: w_server [scale] [threads] */
#include "wl.h"
#include <pthread.h>

#define NSHARED 4096
#define NPRIVATE 1024

/* Blocks carry their size and a sequence number in a header, because the thread that frees a
 * shared block does not know who made it; the fill tag is derived from both. */
typedef struct hdr { uint32_t n, seq; } hdr;

static _Atomic(hdr *) shared_slot[NSHARED];
static long ops_per_thread;
static _Atomic uint64_t total_freed;

static uint64_t tag_of(uint32_t n, uint32_t seq) { return wl_mix(n, seq) | 1; }

static hdr *make(wl_rng *r, uint32_t seq, uint64_t *bytes) {
  unsigned k = (unsigned)(wl_next(r) % 100);
  size_t n = k < 70 ? wl_range(r, 16, 128) : k < 95 ? wl_range(r, 129, 1024) : wl_range(r, 1025, 8192);
  hdr *h = wl_check_alloc(malloc(n), n);
  h->n = (uint32_t)n;
  h->seq = seq;
  wl_fill(h + 1, n - sizeof *h, tag_of(h->n, seq));
  *bytes += n;
  return h;
}
static void destroy(hdr *h) {
  wl_verify(h + 1, h->n - sizeof *h, tag_of(h->n, h->seq));
  free(h);
}

typedef struct worker { pthread_t t; int id; uint64_t bytes, freed; } worker;

static void *work(void *arg) {
  worker *w = arg;
  wl_rng r = wl_rng_make(300 + (uint64_t)w->id);
  hdr **priv = calloc(NPRIVATE, sizeof *priv);
  if (!priv) wl_fail("calloc");
  uint32_t seq = 0;
  for (long i = 0; i < ops_per_thread; i++) {
    hdr *h = make(&r, ++seq, &w->bytes);
    if (wl_next(&r) & 1) {
      hdr **s = &priv[wl_next(&r) % NPRIVATE];
      if (*s) { destroy(*s); w->freed++; }
      *s = h;
    } else {
      hdr *old = atomic_exchange_explicit(&shared_slot[wl_next(&r) % NSHARED], h, memory_order_acq_rel);
      if (old) { destroy(old); w->freed++; }
    }
  }
  /* a finished request frees its private state; shared objects outlive the worker */
  for (int i = 0; i < NPRIVATE; i++)
    if (priv[i]) { destroy(priv[i]); w->freed++; }
  free(priv);
  atomic_fetch_add(&total_freed, w->freed);
  return NULL;
}

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  int nt = argc > 2 ? atoi(argv[2]) : 8;
  if (nt < 1 || nt > 256) { fprintf(stderr, "threads must be 1..256\n"); return 64; }
  ops_per_thread = wl_scaled(scale, 8000000) / nt;
  worker *w = calloc((size_t)nt, sizeof *w);
  for (int i = 0; i < nt; i++) {
    w[i].id = i;
    if (pthread_create(&w[i].t, NULL, work, &w[i])) wl_fail("pthread_create");
  }
  uint64_t bytes = 0;
  for (int i = 0; i < nt; i++) {
    pthread_join(w[i].t, NULL);
    bytes += w[i].bytes;
  }
  uint64_t freed = atomic_load(&total_freed);
  for (int i = 0; i < NSHARED; i++) {
    hdr *h = atomic_load(&shared_slot[i]);
    if (h) { destroy(h); freed++; }
  }
  if (freed != (uint64_t)ops_per_thread * (uint64_t)nt) wl_fail("freed %llu of %llu objects",
      (unsigned long long)freed, (unsigned long long)ops_per_thread * (unsigned long long)nt);
  free(w);
  printf("OK checksum=%016llx\n", (unsigned long long)wl_mix(bytes, freed));
  return 0;
}
