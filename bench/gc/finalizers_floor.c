/* The finalizer workload (finalizers.c) without a collector: the same 1M handles (32 bytes) each
 * owning a 64-byte buffer, the same window of the newest 100k kept in a ring, but every handle is
 * "finalized" (the same check) and freed with malloc's free when the ring overwrites it. It
 * measures what the work itself costs with explicit memory management, a floor for any collector
 * (docs/gc.md, the finalizer figures). Not run by runner.py.
 *   gcb_finalizers_floor [count=1000000 window=100000] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

typedef struct handle { void *buffer; long id, magic, pad; } handle;
#define MAGIC 0x5eed5eedL
static long finalized, bad;

static void finalize(handle *h, long id) {
  if (h->magic != MAGIC || h->id != id || !h->buffer || ((long *)h->buffer)[0] != h->id) bad++;
  h->magic = 0;
  finalized++;
}

static void *alloc0(size_t n) { /* zeroed, as a collector's allocation is */
  void *p = calloc(1, n);
  if (!p) exit(3);
  return p;
}

int main(int argc, char **argv) {
  long count = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000, window = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
  if (count < 1 || window < 1) return 2;
  handle **ring = alloc0(sizeof(void *) * (size_t)window);
  for (long i = 0; i < count; i++) {
    long *buf = alloc0(64);
    buf[0] = i;
    handle *h = alloc0(sizeof(handle));
    h->buffer = buf;
    h->id = i;
    h->magic = MAGIC;
    handle *old = ring[i % window];
    if (old) {
      finalize(old, old->id);
      free(old->buffer);
      free(old);
    }
    ring[i % window] = h;
  }
  for (long i = 0; i < window; i++)
    if (ring[i]) {
      finalize(ring[i], ring[i]->id);
      free(ring[i]->buffer);
      free(ring[i]);
    }
  free(ring);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  printf("gcb workload=finalizers gc=malloc status=%s cpu_s=%.4f count=%ld finalized=%ld bad=%ld\n",
         finalized == count && bad == 0 ? "ok" : "fail", cpu, count, finalized, bad);
  return finalized == count && bad == 0 ? 0 : 1;
}
