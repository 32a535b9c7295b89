/* Cross-thread frees through bounded queues: every block is allocated by one thread and freed by
 * another, the pattern of pipelines, work queues and message passing.
 *   pc    one producer allocates, one consumer verifies and frees, through a bounded FIFO;
 *   ring  4 threads in a ring: each allocates blocks for its successor and frees its predecessor's.
 * Usage: w_xthread [scale] [pc|ring] */
#include "wl.h"
#include <pthread.h>
#include <sched.h>

#include <linux/futex.h>
#include <sys/syscall.h>

#define QCAP 1024   /* power of two */
#define BATCH 64    /* a side publishes its index every BATCH blocks (and before it waits) */
#define WAKE_AT 512 /* a sleeping side is woken once this many blocks (or free slots) wait for it */
#define SPIN 64     /* polls of the other side's index before going to sleep */

/* Why the handoff looks like this (bench/malloc/README.md has the measurements): with a per-block
 * handoff and a pause-then-sched_yield backoff, the run had two stable states on 2 cores. Either
 * both threads shared one core and took turns a full queue at a time (fast, cache-hot), or each
 * spun on its own core, handing blocks over one by one through sched_yield (3-30x slower, most of
 * the CPU time in the backoff). Which state a run fell into was luck, the same for every allocator.
 * Here the indices are published in batches and a side with nothing to do sleeps on a futex after
 * a short spin, woken only when half a queue is ready for it, so a wait costs no CPU and the
 * handoffs are few whatever the placement: CPU time measures the allocator's work (including its
 * cross-thread frees), and wall time no longer depends on a spinning thread's luck. */

static long futex(_Atomic unsigned *w, int op, unsigned val) {
  return syscall(SYS_futex, (unsigned *)w, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

/* A sleeper's flag: 1 while it is (about to be) asleep. The sleeper sets it, then re-checks its
 * condition; a waker publishes its index, then reads the flag; the seq_cst fences on both sides
 * make sure at least one of them sees the other, so no wake-up is lost. */
typedef struct bell { _Alignas(64) _Atomic unsigned asleep; } bell;

static _Atomic long n_sleeps; /* reported as sleeps=N: how often a side really went to sleep */

static void bell_wait(bell *b, int (*ready)(void *), void *arg) {
  for (int i = 0; i < SPIN; i++) {
    if (ready(arg)) return;
    __builtin_ia32_pause();
  }
  atomic_store(&b->asleep, 1);
  atomic_thread_fence(memory_order_seq_cst);
  if (ready(arg)) { atomic_store(&b->asleep, 0); return; }
  atomic_fetch_add_explicit(&n_sleeps, 1, memory_order_relaxed);
  while (atomic_load(&b->asleep)) futex(&b->asleep, FUTEX_WAIT, 1);
}
/* After publishing an index: true if the other side sleeps on b (then the caller decides whether
 * there is enough for it and calls bell_wake). */
static int bell_sleeping(bell *b) {
  atomic_thread_fence(memory_order_seq_cst);
  return atomic_load_explicit(&b->asleep, memory_order_relaxed);
}
static void bell_wake(bell *b) {
  if (atomic_exchange(&b->asleep, 0)) futex(&b->asleep, FUTEX_WAKE, 1);
}

/* Single-producer single-consumer ring. The two indices live on separate cache lines so that the
 * queue itself does not add false sharing on top of what the allocator does; each side works on a
 * private copy of its own index and a cached copy of the other's, and publishes its own in
 * batches, so the queue's lines move between cores once per batch, not once per block. */
typedef struct queue {
  _Alignas(64) _Atomic size_t head; /* next slot to pop; written by the consumer only */
  _Alignas(64) _Atomic size_t tail; /* next slot to push; written by the producer only */
  _Alignas(64) size_t ptail, phead; /* producer's private tail and cached head */
  _Atomic int pcpu;                 /* the CPU the producer last published from */
  _Alignas(64) size_t chead, ctail; /* consumer's private head and cached tail */
  long handoffs, crossed;           /* consumer's publishes, and those made on another CPU than pcpu */
  _Alignas(64) void *slot[QCAP];
} queue;

static int try_push(queue *q, void *p) {
  if (q->ptail - q->phead == QCAP) {
    q->phead = atomic_load_explicit(&q->head, memory_order_acquire);
    if (q->ptail - q->phead == QCAP) return 0;
  }
  q->slot[q->ptail & (QCAP - 1)] = p;
  q->ptail++;
  return 1;
}
static void *try_pop(queue *q) {
  if (q->chead == q->ctail) {
    q->ctail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (q->chead == q->ctail) return NULL;
  }
  return q->slot[q->chead++ & (QCAP - 1)];
}
/* Publish the producer's tail; wake a sleeping consumer once WAKE_AT blocks wait for it, or when
 * `last` (nothing more will come). */
static void publish_tail(queue *q, bell *consumer, int last) {
  atomic_store_explicit(&q->pcpu, sched_getcpu(), memory_order_relaxed);
  atomic_store_explicit(&q->tail, q->ptail, memory_order_release);
  if (bell_sleeping(consumer)) {
    q->phead = atomic_load_explicit(&q->head, memory_order_acquire);
    if (last || q->ptail - q->phead >= WAKE_AT) bell_wake(consumer);
  }
}
/* Publish the consumer's head; wake a sleeping producer once WAKE_AT slots are free, or `last`. */
static void publish_head(queue *q, bell *producer, int last) {
  q->handoffs++;
  q->crossed += sched_getcpu() != atomic_load_explicit(&q->pcpu, memory_order_relaxed);
  atomic_store_explicit(&q->head, q->chead, memory_order_release);
  if (bell_sleeping(producer)) {
    q->ctail = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (last || QCAP - (q->ctail - q->chead) >= WAKE_AT) bell_wake(producer);
  }
}
static int can_pop(void *q) {
  return atomic_load_explicit(&((queue *)q)->tail, memory_order_acquire) != ((queue *)q)->chead;
}
static int can_push(void *q) {
  return ((queue *)q)->ptail - atomic_load_explicit(&((queue *)q)->head, memory_order_acquire) < QCAP;
}

/* mostly 16-256 bytes, 10% up to 4 KiB */
static size_t pick_size(wl_rng *r) {
  return (wl_next(r) % 10) ? wl_range(r, 16, 256) : wl_range(r, 257, 4096);
}

static long nobj;

/* ---- pc ---------------------------------------------------------------------------------------- */
static queue pcq;
static bell pc_producer, pc_consumer;

static void *producer(void *arg) {
  wl_rng r = wl_rng_make(100);
  for (long i = 0; i < nobj; i++) {
    size_t n = pick_size(&r);
    void *p = wl_check_alloc(malloc(n), n);
    wl_fill(p, n, (uint64_t)i + 1);
    while (!try_push(&pcq, p)) {
      publish_tail(&pcq, &pc_consumer, 0);
      bell_wait(&pc_producer, can_push, &pcq);
    }
    if ((pcq.ptail & (BATCH - 1)) == 0) publish_tail(&pcq, &pc_consumer, 0);
  }
  publish_tail(&pcq, &pc_consumer, 1);
  return arg;
}

static void *consumer(void *arg) {
  /* the consumer replays the producer's random stream to know each block's size and tag */
  wl_rng r = wl_rng_make(100);
  uint64_t *sum = arg;
  for (long i = 0; i < nobj; i++) {
    void *p;
    while (!(p = try_pop(&pcq))) {
      publish_head(&pcq, &pc_producer, 0);
      bell_wait(&pc_consumer, can_pop, &pcq);
    }
    size_t n = pick_size(&r);
    wl_verify(p, n, (uint64_t)i + 1);
    *sum = wl_mix(*sum, n);
    free(p);
    if ((pcq.chead & (BATCH - 1)) == 0) publish_head(&pcq, &pc_producer, 0);
  }
  publish_head(&pcq, &pc_producer, 1);
  return arg;
}

/* ---- ring -------------------------------------------------------------------------------------- */
#define RING 4
static queue ringq[RING]; /* ringq[i] carries blocks from thread i to thread i+1 */
static bell ringbell[RING]; /* thread i sleeps on ringbell[i], woken by either neighbour */
static uint64_t ringsum[RING];

/* what a ring thread waits for: blocks in its input, or room in its output for the block it holds */
typedef struct ring_state {
  queue *in, *out;
  long sent, got;
} ring_state;
static int ring_ready(void *arg) {
  ring_state *s = arg;
  return (s->got < nobj && can_pop(s->in)) || (s->sent < nobj && can_push(s->out));
}

static void *ring_thread(void *arg) {
  int id = (int)(intptr_t)arg;
  queue *out = &ringq[id], *in = &ringq[(id + RING - 1) % RING];
  bell *next = &ringbell[(id + 1) % RING], *prev = &ringbell[(id + RING - 1) % RING];
  wl_rng mine = wl_rng_make(200 + (uint64_t)id);
  wl_rng theirs = wl_rng_make(200 + (uint64_t)((id + RING - 1) % RING));
  long sent = 0, got = 0;
  uint64_t sum = 0;
  void *pending = NULL;
  size_t pending_n = 0;
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
    if (progress) publish_tail(out, next, sent == nobj);
    /* never block on a full queue without draining ours first, or the ring could deadlock */
    void *p;
    int popped = 0;
    while (got < nobj && (p = try_pop(in))) {
      size_t n = pick_size(&theirs);
      int from = (id + RING - 1) % RING;
      wl_verify(p, n, ((uint64_t)from << 40) + (uint64_t)got + 1);
      sum = wl_mix(sum, n);
      free(p);
      got++;
      popped = 1;
      if ((in->chead & (BATCH - 1)) == 0 && got < nobj) publish_head(in, prev, 0);
    }
    if (popped) publish_head(in, prev, got == nobj);
    progress |= popped;
    if (!progress) {
      ring_state st = { in, out, sent, got };
      bell_wait(&ringbell[id], ring_ready, &st);
    }
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
  /* Scheduling facts, which vary from run to run and so stay out of the checksum: how often a side
   * went to sleep, and the share of handoffs where producer and consumer were on different CPUs
   * (0 = the threads took turns on one core, 1 = they ran side by side; the cost of a cross-thread
   * free differs between the two, and the runner records this next to the time). */
  long handoffs = pcq.handoffs, crossed = pcq.crossed;
  for (int i = 0; i < RING; i++) handoffs += ringq[i].handoffs, crossed += ringq[i].crossed;
  printf("OK checksum=%016llx sleeps=%ld cross=%.2f\n", (unsigned long long)sum, (long)atomic_load(&n_sleeps),
         handoffs ? (double)crossed / (double)handoffs : 0.0);
  return 0;
}
