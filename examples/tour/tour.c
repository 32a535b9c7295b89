/* The README's API tour, compiled and run as a test (examples.tour), so the snippets there stay
 * true. Each section checks what it claims and exits non-zero when it does not hold. */
#include <heapkit.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPECT(c)                                                           \
  do {                                                                      \
    if (!(c)) { fprintf(stderr, "tour: %s:%d: %s\n", __FILE__, __LINE__, #c); exit(1); } \
  } while (0)

static void tour_malloc(void) {
  void *p = hk_malloc(100); /* also: hk_calloc, hk_realloc, hk_aligned_alloc, ... */
  EXPECT(p && hk_malloc_usable_size(p) >= 100);
  hk_free(p);

  hk_heap *h = hk_heap_new(); /* a first-class heap */
  for (int i = 0; i < 1000; i++) EXPECT(hk_heap_malloc(h, 64));
  hk_heap_destroy(h); /* frees all 1000 blocks at once */

  hk_stats s;
  hk_stats_get(&s);
  EXPECT(s.committed >= s.in_use);
  hk_collect(true); /* give unused memory back to the OS now */
}

static int closed;
static void close_file(void *arg) { (void)arg; closed++; }

static void tour_arena(void) {
  hk_arena *a = hk_arena_new(NULL);
  EXPECT(a);
  char *name = hk_arena_strdup(a, "module");
  hk_arena_mark m = hk_arena_save(a);
  for (int i = 0; i < 100; i++) EXPECT(hk_arena_alloc(a, 48)); /* a pass's temporaries */
  hk_arena_defer(a, close_file, NULL);                          /* runs at restore, LIFO */
  hk_arena_restore(a, m);                                       /* frees them all, runs the cleanup */
  EXPECT(closed == 1 && strcmp(name, "module") == 0);

  hk_arena_cursor c = hk_arena_cursor_open(a); /* hot loops: the bump pointer in registers */
  for (int i = 0; i < 1000; i++) EXPECT(hk_arena_cursor_alloc(&c, 24));
  hk_arena_cursor_close(&c);

  hk_arena *r = hk_region_push(); /* lexical lifetimes: a thread-local region stack */
  EXPECT(r && hk_region_alloc(32));
  hk_region_pop(r);

  hk_scratch s = hk_scratch_begin(&a, 1); /* never aliases the arenas passed in */
  EXPECT(s.arena != a && hk_arena_alloc(s.arena, 1024));
  hk_scratch_end(s);
  hk_arena_destroy(a);

  hk_pool *pool = hk_pool_new(40); /* fixed-size blocks; the last freed is reused first */
  void *x = hk_pool_alloc(pool);
  hk_pool_free(pool, x);
  EXPECT(hk_pool_alloc(pool) == x);
  hk_pool_destroy(pool);
}

/* A cons cell for the collector: two pointer fields, found by a layout mask. */
typedef struct cell { struct cell *car, *cdr; } cell;

static void tour_gc(void) {
  hk_gc_heap *heap;
  hk_gc_mutator *m;
  EXPECT(hk_gc_heap_create(NULL, &heap, &m) == HK_OK);
  hk_gc_type cons;
  hk_gc_type_desc d = {.name = "cons", .size = sizeof(cell), .pointer_mask = 0x3};
  EXPECT(hk_gc_type_register(heap, &d, &cons) == HK_OK);
  {
    cell *list = NULL, *c = NULL;
    HK_GC_ROOTS(m, list, c); /* precise roots until the end of the block */
    for (int i = 0; i < 100000; i++) {
      c = hk_gc_alloc(m, cons, sizeof(cell));
      HK_GC_WRITE(m, c, cdr, i % 100 == 0 ? list : NULL); /* keep every 100th cell */
      if (i % 100 == 0) list = c;
    }
    hk_gc_collect(m, HK_GC_FULL); /* objects may move; roots are updated */
    int n = 0;
    for (cell *p = list; p; p = p->cdr) n++;
    EXPECT(n == 1000);
    EXPECT(hk_gc_verify(m) == HK_OK);
  }
  hk_gc_stats st;
  hk_gc_stats_get(heap, &st);
  EXPECT(hk_gc_heap_destroy(heap) == HK_OK);
}

static void tour_plan(void) {
  /* three buffers: a and b live together, c reuses a's memory */
  hk_plan_buffer b[3] = {{.lower = 0, .upper = 2, .size = 64}, {.lower = 1, .upper = 3, .size = 32},
                         {.lower = 2, .upper = 4, .size = 64}};
  uint64_t off[3];
  hk_plan_result res;
  EXPECT(hk_plan(b, 3, NULL, off, &res) == HK_OK);
  EXPECT(res.peak == 96 && res.optimal);
  EXPECT(hk_plan_validate(b, 3, off, 0, 0, NULL, 0) == HK_OK);
}

int main(void) {
  tour_malloc();
  tour_arena();
  tour_gc();
  tour_plan();
  puts("tour: ok");
  return 0;
}
