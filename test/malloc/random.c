/* Randomized operation sequences over the whole hk_ API.
 *
 * Usage: malloc_random [ops] [seed] [max_size]   (env HK_TEST_OPS, HK_TEST_SEED, HK_TEST_MAXSIZE)
 *
 * A seeded mix of every call works on a table of live blocks. Each block holds the pattern of the
 * address and size it was filled at; it is verified before every free, realloc and heap destroy, so
 * a block handed out twice, overlapping another, or moved without its contents shows up as a
 * pattern mismatch naming the operation number (rerun with the same seed to reproduce). In the
 * HK_DEBUG=3 build the library also checks its own invariants on every operation. */
#define _GNU_SOURCE
#include <heapkit.h>
#include <unistd.h>

#include "testutil.h"

#define NSLOTS 4096
#define NHEAPS 8

typedef struct slot {
  char *p;       /* NULL when empty */
  size_t size;   /* requested size */
  void *pat_p;   /* address the pattern was computed for (differs from p after a moving realloc) */
  size_t pat_n;  /* size the pattern was computed for */
  size_t align;  /* requested alignment, 0 for none */
  int heap;      /* index into heaps[], or -1 for the default heap */
} slot;

static slot slots[NSLOTS];
static hk_heap *heaps[NHEAPS];
static long op;
static unsigned long long seed;

#define FAIL_IF(cond, ...)                                                                         \
  do {                                                                                             \
    if (cond) {                                                                                    \
      fprintf(stderr, "malloc_random: seed %llu op %ld: ", seed, op);                              \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static void verify(const slot *s, const char *why) {
  size_t keep = s->size < s->pat_n ? s->size : s->pat_n;
  size_t bad = tu_verify_as(s->p, s->pat_p, keep, s->pat_n);
  FAIL_IF(bad != (size_t)-1, "block %p (%zu bytes, align %zu, heap %d) corrupt at offset %zu before %s", (void *)s->p,
          s->size, s->align, s->heap, bad, why);
}

static void set(slot *s, void *p, size_t n, size_t align, int heap) {
  FAIL_IF(p == NULL, "allocation of %zu bytes (align %zu, heap %d) failed", n, align, heap);
  FAIL_IF(align && (uintptr_t)p % align, "block %p not aligned to %zu", p, align);
  FAIL_IF(hk_malloc_usable_size(p) < n, "usable size %zu < %zu", hk_malloc_usable_size(p), n);
  FAIL_IF(!hk_owns(p), "hk_owns(%p) false for a live block", p);
  FAIL_IF(heap >= 0 && !hk_heap_contains(heaps[heap], p), "heap %d does not contain its block %p", heap, p);
  s->p = p;
  s->size = n;
  s->align = align;
  s->heap = heap;
  s->pat_p = p;
  s->pat_n = n;
  tu_fill(p, n);
}

static void release(slot *s) {
  if (!s->p) return;
  verify(s, "free");
  if (op % 3 == 0) hk_free_sized(s->p, s->size);
  else hk_free(s->p);
  s->p = NULL;
}

static size_t pick_size(tu_rng *r, size_t max) {
  uint64_t k = tu_below(r, 1000);
  if (k == 0) return max * 4 + tu_below(r, max); /* rare huge block */
  if (k < 600) return tu_below(r, 256);           /* most objects are small */
  return tu_powerlaw_size(r, max);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_random";
  long ops = tu_arg(argc, argv, 1, "HK_TEST_OPS", 300000);
  seed = (unsigned long long)tu_arg(argc, argv, 2, "HK_TEST_SEED", 1);
  size_t max = (size_t)tu_arg(argc, argv, 3, "HK_TEST_MAXSIZE", 1 << 20);
  tu_rng r;
  tu_seed(&r, seed);
  double t0 = tu_now();
  size_t counts[24] = {0};

  for (op = 0; op < ops; op++) {
    slot *s = &slots[tu_below(&r, NSLOTS)];
    int kind = (int)tu_below(&r, 24);
    counts[kind]++;
    size_t n = pick_size(&r, max);
    int hi = (int)tu_below(&r, NHEAPS);
    switch (kind) {
    case 0: case 1: case 2: case 3: /* malloc */
      release(s);
      set(s, hk_malloc(n), n, 0, -1);
      break;
    case 4: /* calloc, count * size split */
      release(s);
      {
        size_t c = 1 + tu_below(&r, 8);
        size_t each = n / c;
        char *p = hk_calloc(c, each);
        FAIL_IF(p == NULL, "calloc(%zu, %zu)", c, each);
        FAIL_IF(!tu_all_zero(p, c * each), "calloc(%zu, %zu) = %p not zeroed", c, each, (void *)p);
        set(s, p, c * each, 0, -1);
      }
      break;
    case 5: case 6: case 7: /* realloc a live block (or NULL) */
      if (s->p) verify(s, "realloc");
      {
        char *q = hk_realloc(s->p, n);
        if (n == 0 && s->p) { /* realloc(p, 0) frees */
          FAIL_IF(q != NULL, "realloc(p, 0) returned %p, glibc returns NULL", (void *)q);
          s->p = NULL;
          break;
        }
        FAIL_IF(q == NULL, "realloc(%p, %zu) failed", (void *)s->p, n);
        if (s->p) {
          size_t keep = n < s->size ? n : s->size;
          size_t bad = tu_verify_as(q, s->pat_p, keep < s->pat_n ? keep : s->pat_n, s->pat_n);
          FAIL_IF(bad != (size_t)-1, "realloc(%p, %zu -> %zu) = %p lost contents at %zu", (void *)s->p, s->size, n,
                  (void *)q, bad);
        }
        int heap = s->p ? s->heap : -1;
        if (heap >= 0 && !hk_heap_contains(heaps[heap], q)) heap = -1; /* realloc may move it to the default heap */
        set(s, q, n, 0, heap);
      }
      break;
    case 8: /* reallocarray */
      if (s->p) verify(s, "reallocarray");
      {
        size_t c = 1 + tu_below(&r, 4), each = n / c + 1;
        char *q = hk_reallocarray(s->p, c, each);
        FAIL_IF(q == NULL, "reallocarray(%zu, %zu)", c, each);
        if (s->p) {
          size_t keep = c * each < s->size ? c * each : s->size;
          FAIL_IF(tu_verify_as(q, s->pat_p, keep < s->pat_n ? keep : s->pat_n, s->pat_n) != (size_t)-1, "reallocarray lost contents");
        }
        int heap = s->p ? s->heap : -1;
        if (heap >= 0 && !hk_heap_contains(heaps[heap], q)) heap = -1;
        set(s, q, c * each, 0, heap);
      }
      break;
    case 9: case 10: /* free */
      release(s);
      break;
    case 11: /* posix_memalign */
      release(s);
      {
        size_t a = (size_t)8 << tu_below(&r, 15);
        void *p = NULL;
        int rc = hk_posix_memalign(&p, a, n);
        FAIL_IF(rc != 0, "posix_memalign(%zu, %zu) = %d", a, n, rc);
        set(s, p, n, a, -1);
      }
      break;
    case 12: /* aligned_alloc / memalign */
      release(s);
      {
        size_t a = (size_t)1 << tu_below(&r, 18);
        set(s, op % 2 ? hk_aligned_alloc(a, n) : hk_memalign(a, n), n, a, -1);
      }
      break;
    case 13: /* valloc / pvalloc (rare: they waste a page) */
      release(s);
      if (tu_below(&r, 2)) set(s, hk_valloc(n), n, 4096, -1);
      else set(s, hk_pvalloc(n), n, 4096, -1);
      break;
    case 14: /* strdup / strndup */
      release(s);
      {
        size_t len = n % 2000;
        char *tmp = hk_malloc(len + 1);
        memset(tmp, 'a' + (int)(op % 26), len);
        tmp[len] = 0;
        char *d = tu_below(&r, 2) ? hk_strdup(tmp) : hk_strndup(tmp, len / 2);
        size_t dl = strlen(d);
        FAIL_IF(dl != len && dl != len / 2, "strdup length %zu of %zu", dl, len);
        FAIL_IF(memcmp(d, tmp, dl) != 0, "strdup contents");
        hk_free(tmp);
        set(s, d, dl + 1, 0, -1);
      }
      break;
    case 15: case 16: case 17: /* heap allocation (creating the heap if needed) */
      release(s);
      if (!heaps[hi]) heaps[hi] = hk_heap_new();
      FAIL_IF(heaps[hi] == NULL, "hk_heap_new failed");
      if (kind == 15) set(s, hk_heap_malloc(heaps[hi], n), n, 0, hi);
      else if (kind == 16) {
        char *p = hk_heap_calloc(heaps[hi], 1, n);
        FAIL_IF(p == NULL || !tu_all_zero(p, n), "heap_calloc(%zu) not zeroed", n);
        set(s, p, n, 0, hi);
      } else {
        size_t a = (size_t)1 << tu_below(&r, 14);
        set(s, hk_heap_malloc_aligned(heaps[hi], a, n), n, a, hi);
      }
      break;
    case 18: /* heap realloc of a heap block */
      if (s->p && s->heap >= 0 && n > 0) {
        verify(s, "heap_realloc");
        int h = s->heap;
        char *q = hk_heap_realloc(heaps[h], s->p, n);
        FAIL_IF(q == NULL, "heap_realloc(%zu)", n);
        size_t keep = n < s->size ? n : s->size;
        FAIL_IF(tu_verify_as(q, s->pat_p, keep < s->pat_n ? keep : s->pat_n, s->pat_n) != (size_t)-1, "heap_realloc lost contents");
        set(s, q, n, 0, h);
      }
      break;
    case 19: /* destroy or delete a whole heap (rare) */
      if (tu_below(&r, 20) == 0 && heaps[hi]) {
        int destroy = (int)tu_below(&r, 2);
        for (int i = 0; i < NSLOTS; i++)
          if (slots[i].p && slots[i].heap == hi) {
            verify(&slots[i], destroy ? "heap_destroy" : "heap_delete");
            if (destroy) slots[i].p = NULL;
            else slots[i].heap = -1; /* survives as a default-heap block */
          }
        if (destroy) hk_heap_destroy(heaps[hi]);
        else hk_heap_delete(heaps[hi]);
        heaps[hi] = NULL;
        for (int i = 0; i < NSLOTS; i++)
          if (slots[i].p) FAIL_IF(!hk_owns(slots[i].p), "live block %p lost by destroying heap %d", (void *)slots[i].p, hi);
      }
      break;
    case 20: /* verify a random block in place and its usable size */
      if (s->p) {
        verify(s, "check");
        FAIL_IF(hk_malloc_usable_size(s->p) < s->size, "usable size shrank");
        FAIL_IF(!hk_owns(s->p + (s->size ? s->size - 1 : 0)), "interior pointer not owned");
      }
      break;
    case 21: /* statistics stay consistent */
      {
        hk_stats st;
        hk_stats_get(&st);
        /* reported once and not fatal: the memory checks go on */
        static int stats_reported;
        if ((st.committed < st.in_use || st.committed_peak < st.committed || st.in_use_peak < st.in_use) && !stats_reported++) {
          fprintf(stderr, "malloc_random: seed %llu op %ld: inconsistent stats: committed %zu (peak %zu), in_use %zu (peak %zu)\n",
                  seed, op, st.committed, st.committed_peak, st.in_use, st.in_use_peak);
          tu_failures++;
        }
      }
      break;
    case 22: /* collect now and then */
      if (tu_below(&r, 50) == 0) hk_collect(tu_below(&r, 2));
      break;
    default: /* a burst of short-lived small blocks, like a tokenizer */
      {
        void *burst[64];
        for (int i = 0; i < 64; i++) {
          burst[i] = hk_malloc(8 + (size_t)i * 3);
          FAIL_IF(burst[i] == NULL, "burst malloc");
          memset(burst[i], i, 8 + (size_t)i * 3);
        }
        for (int i = 63; i >= 0; i--) {
          FAIL_IF(((unsigned char *)burst[i])[7 + i * 3] != (unsigned char)i, "burst block %d overwritten", i);
          hk_free(burst[i]);
        }
      }
      break;
    }
  }
  /* Tear down: verify everything, free half, destroy the heaps with the rest. */
  for (int i = 0; i < NSLOTS; i++)
    if (slots[i].p) {
      verify(&slots[i], "final");
      if (slots[i].heap < 0 || i % 2) release(&slots[i]);
    }
  for (int h = 0; h < NHEAPS; h++)
    if (heaps[h]) hk_heap_destroy(heaps[h]);
  hk_collect(true);
  printf("malloc_random: %ld ops, seed %llu, max %zu: %s (%.2f s)\n", ops, seed, max, tu_failures ? "FAILED" : "ok", tu_now() - t0);
  return tu_failures ? 1 : 0;
}
