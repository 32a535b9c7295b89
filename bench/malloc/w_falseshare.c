/* False sharing: threads allocate small objects and write them hard. If the allocator gives
 * neighbouring blocks (one cache line) to different threads, every write bounces the line between
 * cores and the run slows down many times over.
 *   active   each thread mallocs its own small objects, writes each one hard, frees it
 *            (Hoard's cache-thrash);
 *   passive  the main thread mallocs one small object per worker, back to back, and hands them out;
 *            each worker frees the one it was given and then mallocs, writes and frees its own of
 *            the same size: an allocator that recycles the handed-over block for the worker puts
 *            the workers on one cache line again (Hoard's cache-scratch).
 * Both phases run in one program; each has the same amount of work.
 * Usage: w_falseshare [scale] [threads (default: cores, 2..16)] */
#include "wl.h"
#include <pthread.h>

#define OBJ 24     /* bytes: a few of these share one 64-byte line */
#define WRITES 500 /* writes per object before it is freed */

static long iters;
typedef struct arg { pthread_t t; int id; void *given; uint64_t sum; } arg;

/* volatile so that every write really reaches memory, as in code that updates a shared counter */
static uint64_t hammer(unsigned char *p) {
  volatile unsigned char *v = p;
  memset(p, 0, OBJ);
  for (int j = 0; j < WRITES; j++) v[j % OBJ]++;
  uint64_t s = 0;
  for (int j = 0; j < OBJ; j++) s += v[j];
  return s;
}

static void *worker(void *vp) {
  arg *a = vp;
  if (a->given) {
    if (((unsigned char *)a->given)[0] != (unsigned char)a->id) wl_fail("handed-over block corrupted");
    free(a->given);
  }
  for (long i = 0; i < iters; i++) {
    unsigned char *p = wl_check_alloc(malloc(OBJ), OBJ);
    uint64_t s = hammer(p);
    if (s != WRITES) wl_fail("object written by another thread (sum %llu)", (unsigned long long)s);
    a->sum += s;
    free(p);
  }
  return NULL;
}

static uint64_t phase(int nt, int passive) {
  arg *a = calloc((size_t)nt, sizeof *a);
  if (passive)
    for (int i = 0; i < nt; i++) {
      a[i].given = wl_check_alloc(malloc(OBJ), OBJ);
      ((unsigned char *)a[i].given)[0] = (unsigned char)i;
    }
  for (int i = 0; i < nt; i++) {
    a[i].id = i;
    if (pthread_create(&a[i].t, NULL, worker, &a[i])) wl_fail("pthread_create");
  }
  uint64_t sum = 0;
  for (int i = 0; i < nt; i++) {
    pthread_join(a[i].t, NULL);
    sum += a[i].sum;
  }
  free(a);
  return sum;
}

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  /* default: one thread per core, at least 2: false sharing needs threads running at the same time */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int nt = argc > 2 ? atoi(argv[2]) : (int)(ncpu < 2 ? 2 : ncpu > 16 ? 16 : ncpu);
  if (nt < 1 || nt > 256) { fprintf(stderr, "threads must be 1..256\n"); return 64; }
  iters = wl_scaled(scale, 1600000) / nt;
  uint64_t sum = phase(nt, 0);
  sum = wl_mix(sum, phase(nt, 1));
  printf("OK checksum=%016llx\n", (unsigned long long)sum);
  return 0;
}
