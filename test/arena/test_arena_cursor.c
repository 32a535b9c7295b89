/* Arena cursors (arena.h): a cursor makes exactly the allocations hk_arena_alloc would make (same
 * statistics, growth across chunks, oversized requests), hands the position back at close, works on
 * slow-only arenas (tracing, concurrent, sanitizers), after a failure and after close. */
#include <heapkit.h>
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define MiB ((size_t)1 << 20)

static size_t size_at(int i) {
  if (i % 5000 == 4999) return 3 * MiB; /* forces chunk changes */
  if (i % 997 == 0) return 0;
  return 16 + (size_t)(i * 37) % 200;
}

/* The same sequence through a cursor and through hk_arena_alloc on two fresh arenas: same
 * statistics, every block 16-aligned, inside its arena, and intact at the end. */
static void test_same_as_alloc(void) {
  enum { N = 20000 };
  static unsigned char *blk[N];
  hk_arena *a = hk_arena_new(NULL), *b = hk_arena_new(NULL);
  CHECK(a && b);
  hk_arena_cursor c = hk_arena_cursor_open(a);
  for (int i = 0; i < N; i++) {
    size_t n = size_at(i);
    unsigned char *p = hk_arena_cursor_alloc(&c, n);
    CHECK_QUIET(p != NULL && (uintptr_t)p % 16 == 0);
    if (n) memset(p, i & 0xff, n < 64 ? n : 64);
    blk[i] = p;
    CHECK_QUIET(hk_arena_alloc(b, n) != NULL);
  }
  hk_arena_cursor_close(&c);
  CHECK(c.cur == NULL && c.end == NULL);
  int intact = 1, inside = 1;
  for (int i = 0; i < N; i++) {
    size_t n = size_at(i);
    for (size_t k = 0; k < (n < 64 ? n : 64); k++) intact &= blk[i][k] == (i & 0xff);
    if (n) inside &= hk_arena_contains(a, blk[i]) && hk_arena_contains(a, blk[i] + n - 1);
  }
  CHECK(intact && inside);
  hk_arena_stats sa, sb;
  hk_arena_stats_get(a, &sa);
  hk_arena_stats_get(b, &sb);
  CHECK(sa.allocated == sb.allocated && sa.allocated_peak == sb.allocated_peak);
  CHECK(sa.chunks == sb.chunks && sa.chunks >= 3 && sa.committed == sb.committed);
  /* After close the arena goes on right after the cursor's last block. */
  char *last = hk_arena_cursor_alloc(&(hk_arena_cursor){0}, 0); /* no arena: NULL */
  CHECK(last == NULL && errno == EINVAL);
  c = hk_arena_cursor_open(a);
  char *p = hk_arena_cursor_alloc(&c, 40);
  hk_arena_cursor_close(&c);
  char *q = hk_arena_alloc(a, 16);
  CHECK(p && q == p + 48);
  hk_arena_destroy(a);
  hk_arena_destroy(b);
}

/* On one arena, the cursor and hk_arena_alloc hand out the same addresses (commits included). */
static void test_same_addresses(void) {
  enum { N = 20000 };
  static char *via_cursor[N];
  hk_arena *a = hk_arena_new(NULL);
  hk_arena_cursor c = hk_arena_cursor_open(a);
  for (int i = 0; i < N; i++) via_cursor[i] = hk_arena_cursor_alloc(&c, size_at(i) % 250); /* < 2.5 MB */
  hk_arena_cursor_close(&c);
  hk_arena_reset(a);
  int same = 1;
  for (int i = 0; i < N; i++) same &= hk_arena_alloc(a, size_at(i) % 250) == via_cursor[i];
  CHECK(same);
  hk_arena_destroy(a);
}

/* Save points and reset see the cursor's allocations once it is closed. */
static void test_marks(void) {
  hk_arena *a = hk_arena_new(NULL);
  hk_arena_alloc(a, 100);
  hk_arena_stats st;
  hk_arena_stats_get(a, &st);
  size_t before = st.allocated;
  hk_arena_mark m = hk_arena_save(a);
  hk_arena_cursor c = hk_arena_cursor_open(a);
  for (int i = 0; i < 1000; i++) CHECK_QUIET(hk_arena_cursor_alloc(&c, 5000) != NULL); /* several commits */
  hk_arena_cursor_close(&c);
  hk_arena_stats_get(a, &st);
  CHECK(st.allocated == before + 1000 * 5008);
  hk_arena_restore(a, m);
  hk_arena_stats_get(a, &st);
  CHECK(st.allocated == before);
  c = hk_arena_cursor_open(a);
  char *p = hk_arena_cursor_alloc(&c, 16);
  hk_arena_cursor_close(&c);
  CHECK(p == (char *)m.pos);
  hk_arena_reset(a);
  hk_arena_stats_get(a, &st);
  CHECK(st.allocated == 0);
  hk_arena_destroy(a);
}

/* A closed cursor still allocates correctly (out of line), and the arena stays consistent. */
static void test_after_close(void) {
  hk_arena *a = hk_arena_new(NULL);
  hk_arena_cursor c = hk_arena_cursor_open(a);
  char *p1 = hk_arena_cursor_alloc(&c, 32);
  hk_arena_cursor_close(&c);
  char *p2 = hk_arena_cursor_alloc(&c, 32);
  char *p3 = hk_arena_alloc(a, 32);
  CHECK(p1 && p2 == p1 + 32 && p3 == p2 + 32);
  hk_arena_destroy(a);
}

/* Using the arena while a cursor is open: close warns (one line on stderr) and keeps the arena's
 * own position, so the arena's later allocations never overlap the ones it made. */
static void test_misuse(void) {
  hk_arena *a = hk_arena_new(NULL);
  hk_arena_cursor c = hk_arena_cursor_open(a);
  hk_arena_cursor_alloc(&c, 64);
  char *p = hk_arena_alloc(a, 4096); /* the misuse: outside slow-only mode, the cursor's block again */
  fprintf(stderr, "(a warning about the cursor is expected next)\n");
  hk_arena_cursor_close(&c);
  CHECK(hk_arena_alloc(a, 16) == p + 4096);
  hk_arena_destroy(a);
}

/* Failures: NULL with ENOMEM from the budget, or the oom handler's result; the cursor recovers
 * once memory is available again. */
static char oom_buf[64];
static void *oom_static(hk_arena *a, size_t size, void *arg) {
  (void)a, (void)size, (void)arg;
  return oom_buf;
}
static void test_failures(void) {
  hk_arena *a = hk_arena_new(&(hk_arena_options){.budget = 1 * MiB});
  hk_arena_cursor c = hk_arena_cursor_open(a);
  void *p = NULL;
  int n = 0;
  while ((p = hk_arena_cursor_alloc(&c, 4000)) != NULL) n++;
  CHECK(errno == ENOMEM && n > 100 && n < 300);
  CHECK(c.end == NULL); /* after a failure every call goes out of line until one succeeds again */
  hk_arena_cursor_close(&c);
  hk_arena_reset(a);
  c = hk_arena_cursor_open(a);
  CHECK(hk_arena_cursor_alloc(&c, 4000) != NULL);
  hk_arena_cursor_close(&c);
  hk_arena_destroy(a);

  /* The oom handler's result, then the same as hk_arena_alloc on a twin arena (in slow-only mode a
   * failed claim keeps its place until the next restore, so both keep failing there). */
  hk_arena *b = hk_arena_new(&(hk_arena_options){.budget = 1 * MiB, .oom = oom_static});
  hk_arena *b2 = hk_arena_new(&(hk_arena_options){.budget = 1 * MiB, .oom = oom_static});
  c = hk_arena_cursor_open(b);
  CHECK(hk_arena_cursor_alloc(&c, 2 * MiB) == oom_buf && hk_arena_alloc(b2, 2 * MiB) == oom_buf);
  char *q = hk_arena_cursor_alloc(&c, 16), *q2 = hk_arena_alloc(b2, 16);
  CHECK(q != NULL && q2 != NULL && (q == oom_buf) == (q2 == oom_buf));
  CHECK(q == oom_buf || hk_arena_contains(b, q));
  CHECK(hk_arena_cursor_alloc(&c, SIZE_MAX - 8) == oom_buf);
  hk_arena_cursor_close(&c);
  hk_arena_destroy(b);
  hk_arena_destroy(b2);
}

/* Slow-only arenas: tracing records every cursor allocation; concurrent arenas take one cursor
 * per thread. */
static void test_tracing(void) {
  hk_arena *a = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_TRACE});
  hk_arena_cursor c = hk_arena_cursor_open(a);
  CHECK(c.end == NULL);
  for (int i = 0; i < 100; i++) CHECK_QUIET(hk_arena_cursor_alloc(&c, 24) != NULL);
  hk_arena_cursor_close(&c);
  hk_arena_stats st;
  hk_arena_stats_get(a, &st);
  CHECK(st.allocated == 100 * 32);
  hk_arena_destroy(a);
}

#define THREADS 4
#define PER_THREAD 20000
static hk_arena *shared;
static unsigned char *tblk[THREADS][PER_THREAD];
static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  hk_arena_cursor c = hk_arena_cursor_open(shared);
  for (int i = 0; i < PER_THREAD; i++) {
    unsigned char *p = hk_arena_cursor_alloc(&c, i % 1000 == 999 ? 70000 : 48);
    CHECK_QUIET(p != NULL);
    memset(p, id + 1, 48);
    tblk[id][i] = p;
  }
  hk_arena_cursor_close(&c);
  return NULL;
}
static void test_concurrent(void) {
  shared = hk_arena_new(&(hk_arena_options){.flags = HK_ARENA_CONCURRENT});
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  int intact = 1;
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < PER_THREAD; i++)
      for (int k = 0; k < 48; k++) intact &= tblk[t][i][k] == t + 1;
  CHECK(intact);
  hk_arena_destroy(shared);
}

int main(void) {
  test_same_as_alloc();
  test_same_addresses();
  test_marks();
  test_after_close();
  test_misuse();
  test_failures();
  test_tracing();
  test_concurrent();
  return check_report("arena.cursor");
}
