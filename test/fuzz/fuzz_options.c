/* Driver for the fuzzer's options target (test/fuzz/fuzz.py): prints the value of every option as
 * the library read it from the HEAPKIT_* environment (one "NAME=value" line each, in hk_option
 * order), then exercises each layer that reads them: the allocator (small, large, huge blocks, a
 * first-class heap, hk_collect), an arena and a collector heap. Exit 0 unless a layer fails. */
#include <heapkit.h>

#include <stdio.h>
#include <string.h>

static const char *const names[HK_OPT__COUNT] = {
    "SHOW_STATS", "VERBOSE", "PURGE_DELAY", "PURGE_FREE", "HUGE_PAGES",
    "SEGMENT_CACHE", "HARDENED", "GC_STRESS", "GC_TRACE", "GC_PARALLEL"};

typedef struct cell { struct cell *car, *cdr; } cell;

int main(void) {
  for (int i = 0; i < HK_OPT__COUNT; i++) printf("%s=%ld\n", names[i], hk_option_get((hk_option)i));
  fflush(stdout);
  static void *p[512];
  for (int r = 0; r < 4; r++) {
    for (int i = 0; i < 512; i++)
      if (!(p[i] = hk_malloc((size_t)(i % 7 == 0 ? 70000 : 16 + i * 8)))) return 1;
    for (int i = 0; i < 512; i++) hk_free(p[i]);
  }
  void *big = hk_malloc((size_t)9 << 20);
  if (!big) return 1;
  memset(big, 1, 4096);
  hk_free(big);
  hk_heap *h = hk_heap_new();
  if (!h) return 1;
  for (int i = 0; i < 1000; i++)
    if (!hk_heap_malloc(h, 64)) return 1;
  hk_heap_destroy(h);
  hk_collect(true);
  hk_arena *a = hk_arena_new(NULL);
  if (!a) return 1;
  for (int i = 0; i < 1000; i++)
    if (!hk_arena_alloc(a, 100)) return 1;
  hk_arena_destroy(a);

  hk_gc_heap *heap;
  hk_gc_mutator *m;
  if (hk_gc_heap_create(NULL, &heap, &m) != HK_OK) return 1;
  hk_gc_type cons;
  hk_gc_type_desc d = {.name = "cons", .size = sizeof(cell), .pointer_mask = 0x3};
  if (hk_gc_type_register(heap, &d, &cons) != HK_OK) return 1;
  {
    cell *list = NULL, *c = NULL;
    HK_GC_ROOTS(m, list, c);
    for (int i = 0; i < 20000; i++) {
      c = hk_gc_alloc(m, cons, sizeof(cell));
      if (!c) return 1;
      if (i % 4 == 0) {
        HK_GC_WRITE(m, c, cdr, list);
        list = c;
      }
    }
    hk_gc_collect(m, HK_GC_FULL);
    size_t n = 0;
    for (cell *x = list; x; x = x->cdr) n++;
    if (n != 5000) return 1;
  }
  hk_gc_heap_destroy(heap);
  return 0;
}
