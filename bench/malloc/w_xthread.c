/* Cross-thread frees through bounded queues: every block is allocated by one thread and freed by
 * another, the pattern of pipelines, work queues and message passing.
 *   pc    one producer allocates, one consumer verifies and frees, through a bounded FIFO;
 *   ring  4 threads in a ring: each allocates blocks for its successor and frees its predecessor's.
 * Usage: w_xthread [scale] [pc|ring] */
#include "wl.h"
#include <pthread.h>
#include <sched.h>

#define QCAP 1024 /* power of two */

/* Single-producer single-consumer ring. The two indices live on separate cache lines so that the
 * queue itself does not add false sharing on top of what the allocator does. */
typedef struct queue {
  _Alignas(64) _Atomic size_t head; /* next slot to pop; written by the consumer only */
  _Alignas(64) _Atomic size_t tail; /* next slot to push; written by the producer only */
  _Alignas(64) void *slot[QCAP];
} queue;

static int try_push(queue *q, void *p) {
  size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
  if (t - atomic_load_explicit(&q->head, memory_order_acquire) == QCAP) return 0;
  q->slot[t & (QCAP - 1)] = p;
  atomic_store_explicit(&q->tail, t + 1, memory_order_release);
  return 1;
}
static void *try_pop(queue *q) {
  size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
  if (h == atomic_load_explicit(&q->tail, memory_order_acquire)) return NULL;
  void *p = q->slot[h & (QCAP - 1)];
  atomic_store_explicit(&q->head, h + 1, memory_order_release);
  return p;
}
/* Spin briefly, then yield: on a 2-core machine with more threads than cores, pure spinning would
 * measure the scheduler rather than the allocator. */
static void backoff(int *spins) {
  if (++*spins < 64) __builtin_ia32_pause();
  else { sched_yield(); *spins = 0; }
}

/* mostly 16-256 bytes, 10% up to 4 KiB */
static size_t pick_size(wl_rng *r) {
  return (wl_next(r) % 10) ? wl_range(r, 16, 256) : wl_range(r, 257, 4096);
}

static long nobj;

/* ---- pc ---------------------------------------------------------------------------------------- */
static queue pcq;

static void *producer(void *arg) {
  wl_rng r = wl_rng_make(100);
  for (long i = 0; i < nobj; i++) {
    size_t n = pick_size(&r);
    void *p = wl_check_alloc(malloc(n), n);
    wl_fill(p, n, (uint64_t)i + 1);
    int spins = 0;
    while (!try_push(&pcq, p)) backoff(&spins);
  }
  return arg;
}

static void *consumer(void *arg) {
  /* the consumer replays the producer's random stream to know each block's size and tag */
  wl_rng r = wl_rng_make(100);
  uint64_t *sum = arg;
  for (long i = 0; i < nobj; i++) {
    void *p;
    int spins = 0;
    while (!(p = try_pop(&pcq))) backoff(&spins);
    size_t n = pick_size(&r);
    wl_verify(p, n, (uint64_t)i + 1);
    *sum = wl_mix(*sum, n);
    free(p);
  }
  return arg;
}

/* ---- ring -------------------------------------------------------------------------------------- */
#define RING 4
static queue ringq[RING]; /* ringq[i] carries blocks from thread i to thread i+1 */
static uint64_t ringsum[RING];

static void *ring_thread(void *arg) {
  int id = (int)(intptr_t)arg;
  queue *out = &ringq[id], *in = &ringq[(id + RING - 1) % RING];
  wl_rng mine = wl_rng_make(200 + (uint64_t)id);
  wl_rng theirs = wl_rng_make(200 + (uint64_t)((id + RING - 1) % RING));
  long sent = 0, got = 0;
  uint64_t sum = 0;
  void *pending = NULL;
  size_t pending_n = 0;
  int spins = 0;
  while (sent < nobj || got < nobj) {
    int progress = 0;
    /* send in small bursts, as a pipeline stage would */
    for (int b = 0; b < 16 && sent < nobj; b++) {
      if (!pending) {
        pending_n = pick_size(&mine);
        pending = wl_check_alloc(malloc(pending_n), pending_n);
        wl_fill(pending, pending_n, ((uint64_t)id << 40) + (uint64_t)sent + 1);
      }
      if (!try_push(out, pending)) break;
      pending = NULL;
      sent++;
      progress = 1;
    }
    /* never block on a full queue without draining ours first, or the ring could deadlock */
    void *p;
    while (got < nobj && (p = try_pop(in))) {
      size_t n = pick_size(&theirs);
      int from = (id + RING - 1) % RING;
      wl_verify(p, n, ((uint64_t)from << 40) + (uint64_t)got + 1);
      sum = wl_mix(sum, n);
      free(p);
      got++;
      progress = 1;
    }
    if (progress) spins = 0;
    else backoff(&spins);
  }
  ringsum[id] = sum;
  return NULL;
}

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  const char *mode = argc > 2 ? argv[2] : "pc";
  uint64_t sum = 0;
  if (strcmp(mode, "pc") == 0) {
    nobj = wl_scaled(scale, 2000000);
    pthread_t a, b;
    if (pthread_create(&b, NULL, consumer, &sum) || pthread_create(&a, NULL, producer, NULL))
      wl_fail("pthread_create");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
  } else if (strcmp(mode, "ring") == 0) {
    nobj = wl_scaled(scale, 2000000);
    pthread_t t[RING];
    for (int i = 0; i < RING; i++)
      if (pthread_create(&t[i], NULL, ring_thread, (void *)(intptr_t)i)) wl_fail("pthread_create");
    for (int i = 0; i < RING; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < RING; i++) sum = wl_mix(sum, ringsum[i]);
  } else {
    fprintf(stderr, "usage: w_xthread [scale] [pc|ring]\n");
    return 64;
  }
  printf("OK checksum=%016llx\n", (unsigned long long)sum);
  return 0;
}
