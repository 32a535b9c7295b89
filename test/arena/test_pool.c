/* Pools, single-threaded: LIFO reuse, the free stack (growth, moves, trimming), a randomized
 * churn against a shadow model in checked and unchecked pools, bulk release with retention,
 * statistics and the typed helpers. Bad frees end the process: test_pool_misuse.c. */
#include <heapkit.h>
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void test_basic(void) {
  hk_pool *p = hk_pool_new(48);
  CHECK(p != NULL && hk_pool_block_size(p) == 48);
  char *a = hk_pool_alloc(p), *b = hk_pool_alloc(p), *c = hk_pool_alloc(p);
  CHECK(a && b && c && a != b && b != c);
  CHECK((uintptr_t)a % 16 == 0 && (uintptr_t)b % 16 == 0);
  CHECK(hk_pool_contains(p, a) && hk_pool_contains(p, c + 47));
  hk_pool_free(p, b);
  hk_pool_free(p, a);
  CHECK(!hk_pool_contains(p, a));
  CHECK(hk_pool_alloc(p) == a); /* most recently freed first */
  CHECK(hk_pool_alloc(p) == b);
  char *z = hk_pool_zalloc(p);
  int zero = 1;
  for (int i = 0; i < 48; i++) zero &= z[i] == 0;
  CHECK(zero);
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.in_use == 4 && st.free_blocks == 0 && st.carved == 4 && st.block_size == 48);
  hk_pool_destroy(p);
}

/* Debug builds and ASan keep free blocks on a list through the blocks (valgrind too, but it is
 * detected at run time). */
#if (defined(HK_TEST_DEBUG) && HK_TEST_DEBUG >= 1) || defined(__SANITIZE_ADDRESS__)
#define ALL_LISTED 1
#else
#define ALL_LISTED 0
#endif

/* The pool's own invariant check (src/pool/pool.c; hidden, reached through the static library):
 * debug builds run it inside the library, but their pools are all listed, so the checked and
 * unchecked modes' invariants (the stack, the inline free's window) are checked here. */
bool hk__pool_is_valid(hk_pool *p);

static void test_bad_input(void) {
  hk_pool *p = hk_pool_new(40);
  hk_pool_free(p, NULL); /* ignored silently */
  hk_pool_free(NULL, NULL);
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.bad_frees == 0 && st.in_use == 0);
  hk_pool_stats_get(p, NULL); /* ignored (it was written through) */
  errno = 0;
  CHECK(hk_pool_new(0) == NULL && errno == EINVAL);
  CHECK(hk_pool_new(HK_POOL_MAX_BLOCK + 1) == NULL);
  CHECK(hk_pool_new_ex(&(hk_pool_options){.block_size = 16, .align = 3}) == NULL);
  CHECK(hk_pool_alloc(NULL) == NULL && errno == EINVAL);
  hk_pool_destroy(p);
  hk_pool_destroy(NULL);
}

/* stderr into a pipe (opened before the pool is made: nothing may allocate memory between the
 * destroy and the calls, or the page layer could hand the dead pool's segment to malloc). */
static int stderr_saved, stderr_pipe[2];
static void stderr_capture(void) {
  fflush(stderr);
  CHECK(pipe(stderr_pipe) == 0);
  stderr_saved = dup(2);
  dup2(stderr_pipe[1], 2);
}
static bool stderr_release_has(const char *want) {
  dup2(stderr_saved, 2);
  close(stderr_saved);
  close(stderr_pipe[1]);
  char buf[4096];
  ssize_t n = read(stderr_pipe[0], buf, sizeof buf - 1);
  close(stderr_pipe[0]);
  buf[n > 0 ? n : 0] = 0;
  return strstr(buf, want) != NULL;
}

/* A destroyed pool refuses every call while its memory is still mapped (the page layer keeps the
 * segment cached): before 2026-12-07 its head kept the stack's top and window, so in release
 * builds hk_pool_alloc handed out a block of the dead pool from its freed stack, and a free of one
 * of its live blocks was pushed into that freed stack without a word. Debug and sanitizer builds
 * list every pool, whose calls always went out of line. */
static void test_destroyed(void) {
  for (int unchecked = 0; unchecked < 2; unchecked++) {
    stderr_capture();
    hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 48, .unchecked = unchecked});
    void *a = hk_pool_alloc(p), *b = hk_pool_alloc(p), *c = hk_pool_alloc(p);
    hk_pool_free(p, a);
    hk_pool_free(p, b);
    hk_pool_destroy(p);
    errno = 0;
    void *x = hk_pool_alloc(p);
    int e = errno;
    hk_pool_free(p, c); /* warned about and ignored */
    errno = 0;
    void *y = hk_pool_alloc(p);
    int e2 = errno;
    bool warned = stderr_release_has("not a live pool; ignored");
    CHECK(a && b && c);
    CHECK(x == NULL && e == EINVAL);
    CHECK(warned);
    CHECK(y == NULL && e2 == EINVAL);
  }
}

/* NULL and shared pools run the inline paths on this thread's dummy head (pool.h,
 * hk__pool_head_of), which every call writes back: it must stay a head that sends every call out
 * of line (top at a page boundary after a NULL word, the unchecked flag alone). */
static void test_thread_head(void) {
  hk_option_set(HK_OPT_VERBOSE, 0); /* hk_pool_free(NULL, ..) warns */
  hk_pool *s = hk_pool_new_ex(&(hk_pool_options){.block_size = 48, .shared = true});
  CHECK(s != NULL);
  void *b[600];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 600; i++) CHECK_QUIET((b[i] = hk_pool_alloc(s)) != NULL);
    for (int i = 0; i < 600; i++) hk_pool_free(s, b[i]);
    errno = 0;
    CHECK(hk_pool_alloc(NULL) == NULL && errno == EINVAL);
    hk_pool_free(NULL, b[0]);
  }
  CHECK(hk_pool_alloc(s) == b[599]); /* LIFO per thread */
  CHECK(hk_pool_block_size(s) == 48 && hk_pool_contains(s, b[599]) && !hk_pool_contains(s, b[598]));
  CHECK(hk__pool_is_valid(s));
  const hk_pool_head *h = &hk__pool_thread_head;
  CHECK(h->top % 4096 == 0 && ((void **)h->top)[-1] == NULL && h->win == HK__POOL_UNCHECKED);
  hk_pool_destroy(s);
  errno = 0;
  CHECK(hk_pool_alloc(s) == NULL && errno == EINVAL); /* a dead shared pool too */
  CHECK(h->top % 4096 == 0 && ((void **)h->top)[-1] == NULL && h->win == HK__POOL_UNCHECKED);
  hk_option_set(HK_OPT_VERBOSE, 1);
}

/* Absurd growth steps and retention are taken (the step is at most a segment): a commit step near
 * SIZE_MAX wrapped around to 0 when rounded up to the commit unit, and the first carve past the
 * first unit looped for ever (alarm turns that into a failure). */
static void test_absurd_options(void) {
  const size_t steps[] = {SIZE_MAX, SIZE_MAX - 5000, SIZE_MAX / 2 + 1, (size_t)1 << 40, 1};
  alarm(30);
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    for (int shared = 0; shared < 2; shared++) {
      hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .commit_step = steps[i], .retain = SIZE_MAX, .shared = shared});
      CHECK(p != NULL);
      if (!p) continue;
      char *last = NULL;
      for (int k = 0; k < 100000; k++) { /* 6.4 MB: two segments */
        char *b = hk_pool_alloc(p);
        CHECK(b != NULL);
        if (!b) break;
        memset(b, 0x5a, 64);
        if (last) hk_pool_free(p, last);
        last = k % 2 ? b : NULL;
      }
      hk_pool_stats st;
      hk_pool_stats_get(p, &st);
      CHECK(st.in_use + st.free_blocks == st.carved && st.committed <= st.reserved);
      hk_pool_reset(p);
      hk_pool_destroy(p);
    }
  }
  alarm(0);
}

/* Random alloc/free against a shadow: every live block keeps its stamp, no block is handed out
 * twice. Block sizes that are not powers of two exercise the reciprocal division. */
static void churn(size_t size, size_t align, int ops, bool unchecked) {
  enum { LIVE = 3000 };
  static unsigned char *live[LIVE];
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = size, .align = align, .commit_step = 4096, .unchecked = unchecked});
  CHECK(p != NULL);
  memset(live, 0, sizeof live);
  uint32_t x = (uint32_t)size * 2654435761u;
  size_t n_live = 0, max_live = 0;
  int ok = 1;
  for (int i = 0; i < ops; i++) {
    x = x * 1103515245u + 12345u;
    int slot = (int)((x >> 8) % LIVE);
    if (live[slot]) {
      for (size_t k = 0; k < size; k += 5) ok &= live[slot][k] == (unsigned char)slot;
      hk_pool_free(p, live[slot]);
      live[slot] = NULL;
      n_live--;
    } else {
      unsigned char *b = hk_pool_alloc(p);
      ok &= b != NULL && (uintptr_t)b % (align ? align : 8) == 0;
      memset(b, (unsigned char)slot, size);
      live[slot] = b;
      if (++n_live > max_live) max_live = n_live;
    }
    if (i % 4096 == 0) ok &= hk__pool_is_valid(p);
  }
  CHECK(ok);
  CHECK(hk__pool_is_valid(p));
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.in_use == n_live && st.in_use_peak == max_live && st.bad_frees == 0);
  CHECK(st.carved == max_live); /* LIFO reuse: never carves while a freed block is waiting */
  hk_pool_destroy(p);
}

/* Bulk release: many segments, then reset; memory kept is bounded by the retention. */
static void test_reset(void) {
  const size_t retain = 256 << 10;
  hk_pool *p = hk_pool_new_ex(&(hk_pool_options){.block_size = 1000, .retain = retain});
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 20000; i++) CHECK_QUIET(hk_pool_alloc(p) != NULL); /* ~20 MB: several segments */
    hk_pool_stats full, st;
    hk_pool_stats_get(p, &full);
    CHECK(full.segments >= 5 && full.in_use == 20000);
    hk_pool_reset(p);
    hk_pool_stats_get(p, &st);
    CHECK(st.in_use == 0 && st.free_blocks == 0 && st.carved == 0 && st.segments == 1);
    CHECK(st.committed <= retain + 2 * (64 << 10));
    CHECK(st.committed_peak >= full.committed);
  }
  hk_pool_destroy(p);
}

typedef struct point { double x, y, z; int tag; } point;

static void test_typed(void) {
  hk_pool *p = HK_POOL_NEW(point);
  point *a = HK_POOL_ALLOC(p, point);
  point *b = HK_POOL_ZALLOC(p, point);
  CHECK(a && b && b->tag == 0 && b->z == 0.0);
  CHECK(hk_pool_block_size(p) >= sizeof(point));
  a->tag = 7;
  HK_POOL_FREE(p, a);
  HK_POOL_FREE(p, b);
  hk_pool_destroy(p);
  /* tiny blocks still hold a free-list link and a mark */
  hk_pool *t = hk_pool_new(1);
  CHECK(t && hk_pool_block_size(t) == 16);
  char *c = hk_pool_alloc(t);
  hk_pool_free(t, c);
  hk_pool_destroy(t);
}

/* Free blocks are kept on a stack: it grows by units, then moves to a larger segment with its
 * entries, and LIFO order survives both (pushes cross many page boundaries, where the inline
 * push hands over to the out-of-line one); contains() sees which blocks are free. */
static void test_stack(void) {
  enum { N = 700000 }; /* 5.6 MB of stack entries: past one 4 MiB stack segment */
  static void *blk[N];
  hk_stats g0, g1;
  hk_stats_get(&g0);
  hk_pool *p = hk_pool_new(16);
  int ok = 1;
  for (int i = 0; i < N; i++) ok &= (blk[i] = hk_pool_alloc(p)) != NULL;
  CHECK(ok);
  hk_pool_stats st0, st;
  hk_pool_stats_get(p, &st0);
  for (int i = 0; i < N; i++) hk_pool_free(p, blk[i]);
  hk_pool_stats_get(p, &st);
  CHECK(st.free_blocks == N && st.in_use == 0 && st.bad_frees == 0);
#if ALL_LISTED
  CHECK(st.reserved == st0.reserved); /* a free list through the blocks: no stack */
#else
  CHECK(st.reserved >= st0.reserved + ((size_t)8 << 20)); /* the stack moved to an 8 MiB segment */
  CHECK(st.committed >= st0.committed + (size_t)N * sizeof(void *));
#endif
  CHECK(!hk_pool_contains(p, blk[5]) && !hk_pool_contains(p, (char *)blk[N - 1] + 3));
  for (int i = N - 1; i >= 0; i--) ok &= hk_pool_alloc(p) == blk[i]; /* most recently freed first */
  CHECK(ok);
  CHECK(hk_pool_contains(p, blk[5]) && hk_pool_contains(p, (char *)blk[5] + 15));
  hk_pool_stats_get(p, &st);
  CHECK(st.free_blocks == 0 && st.carved == N);
  /* reset: the stack is trimmed with the blocks, and works again afterwards */
  hk_pool_reset(p);
  hk_pool_stats_get(p, &st);
  CHECK(st.committed <= ((size_t)1 << 20) + 3 * (64 << 10));
  void *a = hk_pool_alloc(p), *b = hk_pool_alloc(p);
  hk_pool_free(p, a);
  hk_pool_free(p, b);
  CHECK(hk_pool_alloc(p) == b && hk_pool_alloc(p) == a);
  hk_pool_stats_get(p, &st);
  CHECK(st.bad_frees == 0 && st.in_use == 2 && st.carved == 2);
  hk_pool_destroy(p);
  /* what the pool counted in the page layer's in_use as it grew, moved and trimmed its stack
   * (header units, entry units) it took back exactly */
  hk_stats_get(&g1);
  CHECK(g1.in_use == g0.in_use);
}

/* The inline free of a checked pool pushes without a capacity test: its window admits a free only
 * while the stack has a slot for it. The stack is committed for the blocks carved, so frees past
 * the stack's first unit (8 K entries) and blocks carved after the stack was made all go on it, in
 * LIFO order; the stack's commit shows in the statistics (a push past it would not). */
static void test_stack_room(void) {
  enum { N = 40000 };
  static void *blk[N];
  hk_pool *p = hk_pool_new(16);
  int ok = 1;
  for (int i = 0; i < N / 2; i++) ok &= (blk[i] = hk_pool_alloc(p)) != NULL;
  hk_pool_free(p, blk[0]); /* the stack is made here */
  ok &= hk_pool_alloc(p) == blk[0];
  for (int i = N / 2; i < N; i++) ok &= (blk[i] = hk_pool_alloc(p)) != NULL; /* carved with a stack */
  CHECK(ok);
  CHECK(hk__pool_is_valid(p));
  hk_pool_stats st0;
  hk_pool_stats_get(p, &st0);
#if !ALL_LISTED
  /* the stack's commit follows the blocks carved, not the blocks free (none are): the window
   * covers them all */
  CHECK(st0.committed >= (size_t)N * (16 + sizeof(void *)));
#endif
  for (int i = 0; i < N; i++) hk_pool_free(p, blk[i]);
  CHECK(hk__pool_is_valid(p));
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.free_blocks == N && st.in_use == 0 && st.carved == N);
#if !ALL_LISTED
  CHECK(st.committed >= (size_t)N * (16 + sizeof(void *))); /* the blocks and a slot for each */
#endif
  for (int i = N - 1; i >= 0; i--) ok &= hk_pool_alloc(p) == blk[i];
  CHECK(ok);
  hk_pool_destroy(p);
}

/* A pool with more blocks than a 4 MiB stack segment has slots (524,256): the window of the
 * segment carved from last is cut to the slots left above the stack's height, so a run of inline
 * frees that fills the segment's stack hands over to the out-of-line free, which moves the stack;
 * without the cut the inline push would write past the stack's segment. */
static void test_stack_window_cut(void) {
  enum { N = 600000, H = 500000 }; /* 16-byte blocks: about 262,100 per 4 MiB segment */
  static void *blk[N];
  static int order[N];
  hk_pool *p = hk_pool_new(16);
  int ok = 1;
  for (int i = 0; i < N; i++) ok &= (blk[i] = hk_pool_alloc(p)) != NULL;
  CHECK(ok);
  int s3 = 0, segs = 1; /* the first block of the third segment: where the addresses jump */
  for (int i = 1; i < N; i++)
    if ((char *)blk[i] != (char *)blk[i - 1] + 16 && ++segs == 3) s3 = i;
  CHECK(segs == 3 && s3 > H);
  /* H blocks of the first two segments (outside the window: out of line), then the third
   * segment's from its first block up: inline while the stack has room, out of line after */
  int k = 0;
  for (int i = 0; i < H; i++) order[k++] = i;
  for (int i = s3; i < N; i++) order[k++] = i;
  for (int i = 0; i < k; i++) {
    hk_pool_free(p, blk[order[i]]);
    if (i >= H - 2 && i % 4096 == 0) ok &= hk__pool_is_valid(p); /* the window never exceeds the stack's room */
  }
  CHECK(ok && hk__pool_is_valid(p));
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.free_blocks == (size_t)k && st.in_use == (size_t)(N - k));
#if !ALL_LISTED
  CHECK(st.reserved >= ((size_t)3 * 4 + 8) << 20); /* the stack moved to an 8 MiB segment */
#endif
  CHECK(hk_pool_contains(p, blk[H + 10]) && !hk_pool_contains(p, blk[N - 1]) && !hk_pool_contains(p, blk[3]));
  for (int i = k - 1; i >= 0; i--) ok &= hk_pool_alloc(p) == blk[order[i]]; /* most recently freed first */
  CHECK(ok);
  hk_pool_stats_get(p, &st);
  CHECK(st.free_blocks == 0 && st.carved == N);
  hk_pool_destroy(p);
}

/* The checked free writes the slot word into the block through a type of its own (pool.h,
 * HK__POOL_SET_SLOT, under gcc), right next to the program's own accesses to the block when the
 * calls are inlined: a value read before the free must be the program's, and a value written after
 * the block comes back (LIFO: the same block) must be what memory holds, whatever its type. A
 * compiler that moved the slot store across either access would fail here. */
struct two_ptrs {
  void *next, *prev;
};
static __attribute__((noinline)) uint64_t word_at(const void *b) {
  uint64_t w;
  memcpy(&w, b, sizeof w);
  return w;
}
static void test_slot_word_types(void) {
  hk_pool *p = hk_pool_new(48);
  int ok = 1;
  void *keep = hk_pool_alloc(p); /* one live block, so the stack is not empty below */
  for (uint64_t i = 1; i <= 100000; i++) {
    uint64_t *u = hk_pool_alloc(p);
    *u = i;
    uint64_t seen = *u;                 /* read before the free */
    hk_pool_free(p, u);
    ok &= seen == i;
    double *d = hk_pool_alloc(p);       /* the same block */
    ok &= (void *)d == (void *)u;
    *d = (double)i + 0.5;               /* another type, written right after the slot store */
    double dd;
    memcpy(&dd, d, sizeof dd);
    ok &= dd == (double)i + 0.5;
    uint64_t raw;
    memcpy(&raw, &dd, sizeof raw);
    ok &= word_at(d) == raw;
    hk_pool_free(p, d);
    struct two_ptrs *t = hk_pool_alloc(p);
    t->next = keep;                     /* a pointer-typed first word */
    t->prev = NULL;
    ok &= word_at(t) == (uint64_t)(uintptr_t)keep;
    uint32_t *h = (uint32_t *)t;
    hk_pool_free(p, t);
    uint32_t *h2 = hk_pool_alloc(p);
    ok &= h2 == h;
    h2[0] = (uint32_t)i;                /* half the word: the other half keeps the slot's bits */
    ok &= (uint32_t)word_at(h2) == (uint32_t)i;
    hk_pool_free(p, h2);
  }
  CHECK(ok);
  hk_pool_stats st;
  hk_pool_stats_get(p, &st);
  CHECK(st.in_use == 1 && st.free_blocks == st.carved - 1);
  hk_pool_free(p, keep);
  hk_pool_destroy(p);
}

int main(void) {
  test_basic();
  test_slot_word_types();
  hk_option_set(HK_OPT_VERBOSE, 0); /* hk_pool_free(NULL, ..) warns */
  test_bad_input();
  hk_option_set(HK_OPT_VERBOSE, 1);
  for (int unchecked = 0; unchecked < 2; unchecked++) {
    churn(48, 0, 200000, unchecked);
    churn(24, 8, 200000, unchecked);
    churn(100, 16, 100000, unchecked);
    churn(1000, 64, 50000, unchecked);
    churn(200000, 4096, 200, unchecked);
  }
  test_stack();
  test_stack_room();
  test_stack_window_cut();
  test_reset();
  test_typed();
  test_absurd_options();
  test_destroyed();
  test_thread_head();
  return check_report("pool.single");
}
