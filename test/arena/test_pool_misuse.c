/* Bad frees into pools must end the process with SIGABRT and one line on stderr:
 *     heapkit: invalid free of 0x<address> to pool 0x<pool> (<why>)
 *     heapkit: double free of 0x<address> to pool 0x<pool> (<why>)
 * naming first the pointer passed. Each case runs in a forked child whose stderr goes to a pipe.
 * The cases cover the default (checked) pool's inline checks (window: foreign, other pool, malloc,
 * stack segment, interior, beyond the carved blocks; slot: double frees), its out-of-line checks
 * (blocks of an older segment, a stack moved to a segment larger than 4 MiB), shared pools, and
 * pools that asked for .unchecked under HEAPKIT_HARDENED. In debug and ASan builds every pool
 * takes the listed mode: the same cases, the same messages. The survivors check the other side:
 * user data equal to a stack slot's address, stale slot addresses after a pop, a reset or in a
 * reused segment, frees in older segments, are not bad frees (pool.single covers the moved stack).
 *
 * Usage: test_pool_misuse [case]   (no argument: every case) */
#define _GNU_SOURCE
#include <heapkit.h>
#include "check.h"
#include "child.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

static uintptr_t *shared_addr; /* the pointer each case passes, for the parent to compare */
static void *volatile sink;

static void bad(hk_pool *p, void *q) {
  *shared_addr = (uintptr_t)q;
  hk_pool_free(p, q);
}

static hk_pool *pool48(void) { return hk_pool_new(48); }

static void case_stack(void) {
  hk_pool *p = pool48();
  char buf[64];
  sink = buf;
  hk_pool_free(p, hk_pool_alloc(p));
  bad(p, buf + 16);
}
static void case_other_pool(void) {
  hk_pool *p = pool48(), *q = pool48();
  hk_pool_free(p, hk_pool_alloc(p));
  bad(p, hk_pool_alloc(q));
}
static void case_malloc(void) {
  hk_pool *p = pool48();
  void *m = malloc(48);
  sink = m;
  hk_pool_free(p, hk_pool_alloc(p));
  bad(p, m);
}
static void case_mmap(void) {
  hk_pool *p = pool48();
  char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bad(p, m + 4096);
}
static void case_wild(void) { bad(pool48(), (void *)(uintptr_t)0x5a5a5a5a5000ull); }
static void case_arena(void) {
  hk_pool *p = pool48();
  hk_arena *a = hk_arena_new(NULL);
  bad(p, hk_arena_alloc(a, 48));
}
/* The word just below a live pool block, and the pool's own free stack. */
static void case_stack_segment(void) {
  hk_pool *p = pool48();
  void *a = hk_pool_alloc(p), *b = hk_pool_alloc(p);
  hk_pool_free(p, a);
  (void)b;
  /* a free stack entry holds a; find the stack by scanning is not possible from outside, so
   * free a pointer into the stack segment through the pool head's top pointer */
  void **top = *(void ***)p;
  bad(p, (void *)(top - 1));
}
static void case_interior(void) {
  hk_pool *p = pool48();
  char *a = hk_pool_alloc(p);
  hk_pool_alloc(p);
  bad(p, a + 8);
}
static void case_unaligned(void) {
  hk_pool *p = pool48();
  char *a = hk_pool_alloc(p);
  hk_pool_alloc(p);
  bad(p, a + 1);
}
static void case_beyond(void) {
  hk_pool *p = pool48();
  char *a = hk_pool_alloc(p);
  hk_pool_free(p, hk_pool_alloc(p));
  bad(p, a + 48 * 100);
}
static void case_below_base(void) {
  hk_pool *p = pool48();
  char *a = hk_pool_alloc(p);
  bad(p, a - 48);
}
static void case_double(void) {
  hk_pool *p = pool48();
  void *a = hk_pool_alloc(p);
  hk_pool_free(p, a);
  bad(p, a);
}
static void case_double_among_live(void) {
  hk_pool *p = pool48();
  void *x = hk_pool_alloc(p), *y = hk_pool_alloc(p), *z = hk_pool_alloc(p);
  sink = y;
  hk_pool_free(p, x);
  hk_pool_free(p, z);
  bad(p, x);
}
static void case_double_after_reuse(void) {
  hk_pool *p = pool48();
  void *x = hk_pool_alloc(p);
  hk_pool_free(p, x);
  void *again = hk_pool_alloc(p); /* x again: its slot is above top now */
  hk_pool_free(p, again);
  bad(p, x);
}
static void case_double_all_free(void) {
  hk_pool *p = pool48();
  enum { N = 1001 }; /* (1000 would put the stack top on a page boundary: an out-of-line push) */
  void *b[N];
  for (int i = 0; i < N; i++) b[i] = hk_pool_alloc(p);
  for (int i = 0; i < N; i++) hk_pool_free(p, b[i]);
  bad(p, b[7]);
}
/* The deepest slot of a deep stack (262,000 entries, half a 4 MiB stack segment): the inline slot
 * test must still send its block out of line. The block is of the current segment, so the inline
 * window passes it; freed first, it holds slot 0. */
enum { DEEP = 262000 }; /* top not on a page boundary: the free is inline */
static void case_double_deep_slot(void) {
  hk_pool *p = hk_pool_new(16);
  void **b = malloc(DEEP * sizeof *b);
  for (int i = 0; i < DEEP; i++) b[i] = hk_pool_alloc(p);
  for (int i = DEEP - 1; i >= 0; i--) hk_pool_free(p, b[i]);
  bad(p, b[DEEP - 1]);
}
/* Blocks of an older segment are outside the inline window: the out-of-line checks catch them. */
enum { MANY = 100000 }; /* 4.8 MB of 48-byte blocks: two segments */
static void **many(hk_pool *p) {
  void **b = malloc(MANY * sizeof *b);
  for (int i = 0; i < MANY; i++) b[i] = hk_pool_alloc(p);
  return b;
}
static void case_old_segment_double(void) {
  hk_pool *p = pool48();
  void **b = many(p);
  hk_pool_free(p, b[10]);
  bad(p, b[10]);
}
static void case_old_segment_interior(void) {
  hk_pool *p = pool48();
  void **b = many(p);
  bad(p, (char *)b[10] + 16);
}
/* More blocks free at once than a 4 MiB stack segment holds: the stack moves to a larger
 * segment, the inline slot test no longer covers it, and every checked free goes out of line. */
enum { BIG = 600000 }; /* 524,256 entries fit in the first stack segment */
static void case_double_big_stack(void) {
  hk_pool *p = hk_pool_new(16);
  void **b = malloc(BIG * sizeof *b);
  for (int i = 0; i < BIG; i++) b[i] = hk_pool_alloc(p);
  for (int i = 0; i < BIG; i++) hk_pool_free(p, b[i]);
  bad(p, b[BIG / 3]);
}
/* Through a cursor (pool.h): the same inline checks on the cursor's copy of the head. */
static void case_cursor_double(void) {
  hk_pool *p = pool48();
  hk_pool_cursor c = hk_pool_cursor_open(p);
  void *keep = hk_pool_cursor_alloc(&c), *b = hk_pool_cursor_alloc(&c);
  sink = keep;
  hk_pool_cursor_free(&c, b);
  *shared_addr = (uintptr_t)b;
  hk_pool_cursor_free(&c, b);
}
static void case_cursor_double_deep(void) {
  hk_pool *p = pool48();
  hk_pool_cursor c = hk_pool_cursor_open(p);
  enum { N = 3000 };
  static void *v[N];
  for (int i = 0; i < N; i++) v[i] = hk_pool_cursor_alloc(&c);
  for (int i = 0; i < N; i++) hk_pool_cursor_free(&c, v[i]);
  *shared_addr = (uintptr_t)v[0];
  hk_pool_cursor_free(&c, v[0]);
}
static void case_cursor_interior(void) {
  hk_pool *p = pool48();
  hk_pool_cursor c = hk_pool_cursor_open(p);
  char *b = hk_pool_cursor_alloc(&c);
  hk_pool_cursor_free(&c, hk_pool_cursor_alloc(&c));
  *shared_addr = (uintptr_t)(b + 16);
  hk_pool_cursor_free(&c, b + 16);
}
static void case_cursor_closed_double(void) {
  hk_pool *p = pool48();
  hk_pool_cursor c = hk_pool_cursor_open(p);
  void *b = hk_pool_cursor_alloc(&c);
  hk_pool_cursor_free(&c, b);
  hk_pool_cursor_close(&c);
  *shared_addr = (uintptr_t)b;
  hk_pool_cursor_free(&c, b);
}
static void case_shared_double(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 40, .shared = true});
  void *a = hk_pool_alloc(p);
  hk_pool_free(p, a);
  bad(p, a);
}
static void case_shared_foreign(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 40, .shared = true});
  long local[4];
  sink = local;
  bad(p, &local[1]);
}
/* Shared pools keep free blocks in per-thread caches and a depot: a double free is caught wherever
 * the block is (another thread's cache, the depot after a flush, a batch carved into a cache and
 * never handed out is not a live block either). */
static hk_pool *xt_pool;
static void *xt_block;
static pthread_mutex_t xt_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t xt_cv = PTHREAD_COND_INITIALIZER;
static int xt_freed;
static void *free_in_thread(void *arg) {
  hk_pool_free(xt_pool, xt_block);
  pthread_mutex_lock(&xt_m);
  xt_freed = 1;
  pthread_cond_broadcast(&xt_cv);
  while (arg) pthread_cond_wait(&xt_cv, &xt_m); /* arg: stay alive, the block in this thread's cache */
  pthread_mutex_unlock(&xt_m);
  return NULL;
}
static void double_from_thread(int stay) {
  xt_pool = hk_pool_new_ex(&(hk_pool_options){.block_size = 40, .shared = true});
  xt_block = hk_pool_alloc(xt_pool);
  pthread_t t;
  pthread_create(&t, NULL, free_in_thread, stay ? (void *)1 : NULL);
  pthread_mutex_lock(&xt_m);
  while (!xt_freed) pthread_cond_wait(&xt_cv, &xt_m);
  pthread_mutex_unlock(&xt_m);
  if (!stay) pthread_join(t, NULL); /* its cache went back to the depot at its exit */
  bad(xt_pool, xt_block);
}
static void case_shared_double_other_cache(void) { double_from_thread(1); }
static void case_shared_double_exited(void) { double_from_thread(0); }
static void case_shared_double_depot(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 40, .shared = true});
  enum { N = 1000 }; /* more than a thread cache holds: most go to the depot */
  static void *b[N];
  for (int i = 0; i < N; i++) b[i] = hk_pool_alloc(p);
  for (int i = 0; i < N; i++) hk_pool_free(p, b[i]);
  bad(p, b[3]);
}
static void case_shared_double_cached(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 40, .shared = true});
  void *a = hk_pool_alloc(p), *c = hk_pool_alloc(p);
  sink = c;
  hk_pool_free(p, a);
  hk_pool_free(p, hk_pool_alloc(p)); /* a again, from the cache */
  bad(p, a);
}
static void case_shared_never_handed(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 48, .shared = true});
  char *a = hk_pool_alloc(p); /* its neighbours were carved into this thread's cache */
  sink = a;
  bad(p, a + 48);
}

/* HEAPKIT_HARDENED=1 overrides .unchecked (pool.misuse_hardened sets it: hk_option_set refuses to
 * switch it on once the allocator has set up a page). */
static void case_hardened_unchecked(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 32, .unchecked = true});
  void *a = hk_pool_alloc(p), *b = hk_pool_alloc(p);
  sink = b;
  hk_pool_free(p, a);
  bad(p, a);
}
/* Strides with and without odd factors, large alignments: interior pointers at the first byte,
 * the middle and the last byte of a block. */
static void interior_at(size_t size, size_t align, int which) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = size, .align = align});
  size_t stride = hk_pool_block_size(p);
  char *b[4];
  for (int i = 0; i < 4; i++) b[i] = hk_pool_alloc(p);
  hk_pool_free(p, b[3]);
  size_t off = which == 0 ? 1 : which == 1 ? stride / 2 + 1 : stride - 1;
  bad(p, b[1] + off);
}
#define INTERIOR(name, size, align, which) static void name(void) { interior_at(size, align, which); }
INTERIOR(case_interior_16_last, 16, 8, 2)
INTERIOR(case_interior_24_first, 24, 8, 0)
INTERIOR(case_interior_100_mid, 100, 16, 1)
INTERIOR(case_interior_112_last, 112, 8, 2)
INTERIOR(case_interior_1000_mid, 1000, 8, 1)
INTERIOR(case_interior_4096_first, 4096, 4096, 0)
INTERIOR(case_interior_12288_mid, 3 * 4096, 8, 1)
INTERIOR(case_interior_200000_last, 200000, 4096, 2)

typedef struct mcase {
  const char *name;
  void (*fn)(void);
  const char *prefix;
} mcase;

#define INV "heapkit: invalid free of 0x"
#define DBL "heapkit: double free of 0x"
static const mcase cases[] = {
  {"stack", case_stack, INV},
  {"other_pool", case_other_pool, INV},
  {"malloc", case_malloc, INV},
  {"mmap", case_mmap, INV},
  {"wild", case_wild, INV},
  {"arena", case_arena, INV},
  {"stack_segment", case_stack_segment, INV},
  {"interior", case_interior, INV},
  {"unaligned", case_unaligned, INV},
  {"beyond", case_beyond, INV},
  {"below_base", case_below_base, INV},
  {"double", case_double, DBL},
  {"double_among_live", case_double_among_live, DBL},
  {"double_after_reuse", case_double_after_reuse, DBL},
  {"double_all_free", case_double_all_free, DBL},
  {"old_segment_double", case_old_segment_double, DBL},
  {"old_segment_interior", case_old_segment_interior, INV},
  {"double_big_stack", case_double_big_stack, DBL},
  {"double_deep_slot", case_double_deep_slot, DBL},
  {"cursor_double", case_cursor_double, DBL},
  {"cursor_double_deep", case_cursor_double_deep, DBL},
  {"cursor_interior", case_cursor_interior, INV},
  {"cursor_closed_double", case_cursor_closed_double, DBL},
  {"shared_double", case_shared_double, DBL},
  {"shared_foreign", case_shared_foreign, INV},
  {"shared_double_other_cache", case_shared_double_other_cache, DBL},
  {"shared_double_exited", case_shared_double_exited, DBL},
  {"shared_double_depot", case_shared_double_depot, DBL},
  {"shared_double_cached", case_shared_double_cached, DBL},
  {"shared_never_handed", case_shared_never_handed, DBL},
  {"hardened_unchecked", case_hardened_unchecked, DBL},
  {"interior_16_last", case_interior_16_last, INV},
  {"interior_24_first", case_interior_24_first, INV},
  {"interior_100_mid", case_interior_100_mid, INV},
  {"interior_112_last", case_interior_112_last, INV},
  {"interior_1000_mid", case_interior_1000_mid, INV},
  {"interior_4096_first", case_interior_4096_first, INV},
  {"interior_12288_mid", case_interior_12288_mid, INV},
  {"interior_200000_last", case_interior_200000_last, INV},
};

static int run_case(const mcase *c) {
  *shared_addr = 0;
  char out[4096], why[512];
  int st = check_child_run(c->fn, out, sizeof out);
  check_child_aborted(st, out, c->prefix, NULL, why, sizeof why);
  if (why[0]) {
  } else if (!strstr(out, " to pool 0x")) snprintf(why, sizeof why, "message does not name the pool");
  else {
    unsigned long long a = strtoull(strstr(out, "0x"), NULL, 16);
    if (a != (unsigned long long)*shared_addr)
      snprintf(why, sizeof why, "message names 0x%llx, the pointer passed was 0x%llx", a, (unsigned long long)*shared_addr);
  }
  int n = (int)strcspn(out, "\n");
  if (why[0]) {
    printf("FAIL %-22s %s; stderr: \"%.*s\"\n", c->name, why, n < 200 ? n : 200, out);
    return 1;
  }
  printf("ok   %-22s %.*s\n", c->name, n < 160 ? n : 160, out);
  return 0;
}

/* ---- survivors: what must not be reported -------------------------------------------------- */

/* A free block's first word names its stack slot. A block popped and not written keeps that
 * word, and user data may equal a slot's address: both send the free out of line (when the slot
 * is below top), which finds the slot holding another block: not a double free. */
static void test_slot_lookalike(void) {
  hk_pool *p = pool48();
  void *a = hk_pool_alloc(p), *b = hk_pool_alloc(p), *c = hk_pool_alloc(p);
  hk_pool_free(p, c);
  CHECK(hk_pool_alloc(p) == c); /* c keeps its word: the slot it was in */
  uintptr_t look;
  memcpy(&look, c, sizeof look);
  memcpy(a, &look, sizeof look); /* a's data equals that slot's address */
  hk_pool_free(p, b);            /* b takes the slot */
  hk_pool_free(p, c);            /* not a double free */
  hk_pool_free(p, a);            /* not a double free */
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.free_blocks == 3 && st.in_use == 0);
  CHECK(hk_pool_alloc(p) == a && hk_pool_alloc(p) == c && hk_pool_alloc(p) == b);
  hk_pool_destroy(p);
}

/* Blocks freed before a reset keep the slot addresses in their first words, and carving hands
 * them out again as they are; a destroyed pool's segment reused by a new pool: the same. None of
 * those frees is a double free. Blocks of other segments free out of line. */
static void test_stale_slots(void) {
  enum { N = 100000 };
  void **b = malloc(N * sizeof *b);
  for (int round = 0; round < 3; round++) {
    hk_pool *p = pool48();
    for (int k = 0; k < 2; k++) {
      int ok = 1;
      for (int i = 0; i < N; i++) ok &= (b[i] = hk_pool_alloc(p)) != NULL;
      for (int i = 0; i < N; i += 2) hk_pool_free(p, b[i]);   /* both segments, some out of line */
      for (int i = 0; i < N; i += 2) ok &= (b[i] = hk_pool_alloc(p)) != NULL;
      for (int i = N - 1; i >= 0; i--) hk_pool_free(p, b[i]);
      CHECK(ok);
      hk_pool_stats st;
      hk_pool_stats_get(p, &st);
      CHECK(st.in_use == 0 && st.free_blocks == N && st.segments == 2 && st.bad_frees == 0);
      hk_pool_reset(p);
    }
    hk_pool_destroy(p);
  }
  free(b);
}

/* An unchecked pool behaves like a checked one for good frees. */
static void test_unchecked(void) {
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 48, .unchecked = true});
  void *a = hk_pool_alloc(p), *b = hk_pool_alloc(p);
  hk_pool_free(p, a);
  hk_pool_free(p, b);
  hk_pool_free(p, NULL);
  CHECK(hk_pool_alloc(p) == b && hk_pool_alloc(p) == a);
  hk_pool_destroy(p);
}

int main(int argc, char **argv) {
  shared_addr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(shared_addr != MAP_FAILED);
  hk_pool_destroy(hk_pool_new(16)); /* initialise the library before forking */
  int fails = 0, ran = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
    if (cases[i].fn == case_hardened_unchecked && !hk_option_get(HK_OPT_HARDENED)) {
      printf("skip %s: needs HEAPKIT_HARDENED=1 (pool.misuse_hardened)\n", cases[i].name);
      continue;
    }
    fails += run_case(&cases[i]);
    ran++;
  }
  CHECK(ran > 0);
  CHECK(fails == 0);
  if (argc == 1) {
    test_slot_lookalike();
    test_stale_slots();
    test_unchecked();
  }
  return check_report("pool.misuse");
}
