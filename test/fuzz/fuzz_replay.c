/* Driver for the fuzzer's replay target (test/fuzz/fuzz.py): runs one deterministic arena program
 * (nested save points, sizes from 0 to 8 KiB, some over-aligned allocations, cleanups), either
 * recording its trace or replaying a (possibly mutated) plan file, and checks that every live
 * allocation keeps its contents until it is released.
 *   fuzz_replay record TRACE.csv SEED
 *   fuzz_replay replay PLAN.csv SEED
 * Exit: 0 ran, 1 the arena refused the plan (errno EINVAL, heapkit printed why), 3 a live
 * allocation was overwritten (two served allocations overlapped), 4 anything else. */
#include <heapkit.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIVE 4096

typedef struct live { unsigned char *p; size_t n; unsigned char tag; } live;
static live stack[MAX_LIVE];
static size_t nlive;
static uint64_t rng;

static uint64_t next(void) { /* xorshift64*: the same program for the same seed */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

static int check_from(size_t from) {
  for (size_t i = from; i < nlive; i++)
    for (size_t k = 0; k < stack[i].n; k++)
      if (stack[i].p[k] != stack[i].tag) {
        fprintf(stderr, "fuzz_replay: live allocation %zu (%zu bytes) overwritten at byte %zu\n", i, stack[i].n, k);
        return 3;
      }
  return 0;
}

static void cleanup(void *arg) { (void)arg; }

static int run(hk_arena *a, int depth) {
  hk_arena_mark m = hk_arena_save(a);
  size_t base = nlive;
  int steps = 4 + (int)(next() % 24);
  for (int s = 0; s < steps; s++) {
    uint64_t r = next() % 100;
    if (r < 12 && depth < 6) {
      int rc = run(a, depth + 1);
      if (rc) return rc;
    } else if (r < 15) {
      if (hk_arena_defer(a, cleanup, NULL) != HK_OK) return 4;
    } else if (nlive < MAX_LIVE) {
      size_t n = (size_t)(next() % 100 < 90 ? next() % 512 : next() % 8192);
      size_t al = next() % 10 == 0 ? (size_t)64 << (next() % 11) : 0; /* 64 B to 64 KiB */
      unsigned char *p = al ? hk_arena_alloc_aligned(a, n, al) : hk_arena_alloc(a, n);
      if (!p) {
        fprintf(stderr, "fuzz_replay: allocation of %zu bytes failed\n", n);
        return 4;
      }
      if (al && (uintptr_t)p % al) {
        fprintf(stderr, "fuzz_replay: %zu-byte alignment not kept\n", al);
        return 4;
      }
      unsigned char tag = (unsigned char)(1 + nlive % 251);
      memset(p, tag, n);
      stack[nlive++] = (live){p, n, tag};
    }
  }
  int rc = check_from(base);
  if (rc) return rc;
  hk_arena_restore(a, m);
  nlive = base;
  return check_from(0);
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[1], "record") && strcmp(argv[1], "replay"))) {
    fprintf(stderr, "usage: fuzz_replay record|replay FILE SEED\n");
    return 4;
  }
  bool record = !strcmp(argv[1], "record");
  rng = strtoull(argv[3], NULL, 10) | 1;
  hk_arena_options o = {0};
  if (record) o.flags = HK_ARENA_TRACE;
  else o.replay_path = argv[2];
  errno = 0;
  hk_arena *a = hk_arena_new(&o);
  if (!a) {
    if (errno == EINVAL && !record) return 1;
    fprintf(stderr, "fuzz_replay: hk_arena_new: %s\n", strerror(errno));
    return 4;
  }
  int rc = 0;
  for (int round = 0; round < 3 && !rc; round++) rc = run(a, 0);
  /* allocations still live at the end: the recorder closes them at the current count */
  for (int i = 0; i < 8 && !rc; i++)
    if (!hk_arena_alloc(a, 24)) rc = 4;
  if (!rc && record && hk_arena_trace_write(a, argv[2]) != HK_OK) rc = 4;
  hk_arena_stats st;
  hk_arena_stats_get(a, &st);
  if (!record) printf("replay: %zu hits, %zu misses\n", st.replay_hits, st.replay_misses);
  hk_arena_destroy(a);
  return rc;
}
