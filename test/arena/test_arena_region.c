/* The region stack (push/pop, nesting, popping through inner regions, thread exit) and scratch
 * scopes that never alias the arenas the caller names as in use. */
#include <heapkit.h>
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

static int cleaned;
static void count_cleanup(void *arg) { (void)arg; cleaned++; }

static void test_region_stack(void) {
  CHECK(hk_region_top() == NULL && hk_region_depth() == 0);
  errno = 0;
  CHECK(hk_region_alloc(16) == NULL && errno == EINVAL);
  hk_arena *r1 = hk_region_push();
  char *a = hk_region_alloc(32);
  strcpy(a, "outer");
  hk_arena *r2 = hk_region_push();
  CHECK(r1 && r2 && r1 != r2 && hk_region_top() == r2 && hk_region_depth() == 2);
  char *b = hk_region_alloc(32);
  CHECK(hk_arena_contains(r2, b) && !hk_arena_contains(r1, b));
  /* allocate into the outer region while the inner one is on top */
  char *c = hk_arena_alloc(r1, 32);
  CHECK(hk_arena_contains(r1, c));
  hk_arena_defer(r2, count_cleanup, NULL);
  cleaned = 0;
  hk_region_pop(r2);
  CHECK(cleaned == 1 && hk_region_top() == r1 && hk_region_depth() == 1);
  CHECK(strcmp(a, "outer") == 0);
  /* a region arena cannot be destroyed behind the stack's back */
  hk_arena_destroy(r1);
  CHECK(hk_region_top() == r1);
  /* popping an outer region pops the inner ones too */
  hk_arena *r3 = hk_region_push();
  hk_arena *r4 = hk_region_push();
  hk_arena_defer(r3, count_cleanup, NULL);
  hk_arena_defer(r4, count_cleanup, NULL);
  (void)r3;
  (void)r4;
  cleaned = 0;
  hk_region_pop(r1);
  CHECK(cleaned == 2 && hk_region_top() == NULL && hk_region_depth() == 0);
  /* popping something that is not on the stack is reported and ignored */
  hk_arena *plain = hk_arena_new(NULL);
  hk_region_pop(plain);
  hk_region_pop(NULL);
  hk_arena_destroy(plain);
  /* many pushes and pops reuse cached regions: no growth of the live arena count */
  hk_arena_stats g0, g1;
  for (int i = 0; i < 10; i++) hk_region_pop(hk_region_push());
  hk_arena_global_stats(&g0);
  for (int i = 0; i < 1000; i++) {
    hk_arena *r = hk_region_push();
    hk_region_alloc(100);
    hk_region_pop(r);
  }
  hk_arena_global_stats(&g1);
  CHECK(g1.arenas == g0.arenas);
}

static void *thread_leaves_regions(void *arg) {
  (void)arg;
  hk_arena *r = hk_region_push();
  hk_arena_defer(r, count_cleanup, NULL);
  hk_region_push();
  hk_scratch s = hk_scratch_begin(NULL, 0);
  hk_arena_alloc(s.arena, 100);
  return NULL; /* no pops: the thread-exit destructor runs the cleanups and frees the arenas */
}

static void test_thread_exit(void) {
  hk_arena_stats g0, g1;
  hk_arena_global_stats(&g0);
  cleaned = 0;
  pthread_t t;
  pthread_create(&t, NULL, thread_leaves_regions, NULL);
  pthread_join(t, NULL);
  hk_arena_global_stats(&g1);
  CHECK(cleaned == 1);
  CHECK(g1.arenas == g0.arenas);
}

/* A function that builds its result in `out` and uses scratch memory internally. */
static char *build(hk_arena *out, int depth) {
  hk_scratch s = hk_scratch_begin(&out, 1);
  CHECK_QUIET(s.arena != NULL && s.arena != out);
  char *tmp = hk_arena_alloc(s.arena, 64);
  memset(tmp, 'x', 64);
  char *res;
  if (depth > 0) {
    /* the recursive call's result goes to our scratch arena, so its own scratch must avoid it
     * and `out` too */
    hk_arena *conf[2] = {out, s.arena};
    hk_scratch s2 = hk_scratch_begin(conf, 2);
    CHECK_QUIET(s2.arena != out && s2.arena != s.arena);
    hk_scratch_end(s2);
    char *inner = build(s.arena, depth - 1);
    res = hk_arena_alloc(out, 64);
    strcpy(res, inner);
    res[0]++;
  } else {
    res = hk_arena_alloc(out, 64);
    strcpy(res, "a-result");
  }
  CHECK_QUIET(hk_arena_contains(out, res) && !hk_arena_contains(s.arena, res));
  hk_scratch_end(s);
  return res;
}

static void test_scratch(void) {
  hk_scratch s1 = hk_scratch_begin(NULL, 0);
  CHECK(s1.arena != NULL);
  hk_arena_stats st0, st;
  hk_arena_stats_get(s1.arena, &st0);
  char *r = build(s1.arena, 5);
  CHECK(strcmp(r, "f-result") == 0);
  hk_scratch_end(s1);
  hk_arena_stats_get(s1.arena, &st);
  CHECK(st.allocated == st0.allocated); /* everything the scope made is gone */
  /* a plain arena as conflict: any scratch arena will do */
  hk_arena *mine = hk_arena_new(NULL);
  hk_scratch s2 = hk_scratch_begin(&mine, 1);
  CHECK(s2.arena && s2.arena != mine);
  hk_scratch_end(s2);
  hk_arena_destroy(mine);
  /* every scratch arena in use: an error, not an alias */
  hk_scratch all[HK_SCRATCH_ARENAS];
  hk_arena *used[HK_SCRATCH_ARENAS];
  for (int i = 0; i < HK_SCRATCH_ARENAS; i++) {
    all[i] = hk_scratch_begin(used, (size_t)i);
    used[i] = all[i].arena;
    CHECK(used[i] != NULL);
    for (int k = 0; k < i; k++) CHECK_QUIET(used[k] != used[i]);
  }
  errno = 0;
  hk_scratch none = hk_scratch_begin(used, HK_SCRATCH_ARENAS);
  CHECK(none.arena == NULL && errno == EBUSY);
  hk_scratch_end(none);
  for (int i = HK_SCRATCH_ARENAS - 1; i >= 0; i--) hk_scratch_end(all[i]);
  /* scratch arenas belong to the thread */
  hk_arena_destroy(used[0]);
  CHECK(hk_arena_alloc(used[0], 16) != NULL);
}

/* Cleanups that use the region stack while a pop runs them: one that pops an outer region being
 * popped already (found the stack half popped: the pop went on below its region, a segfault in
 * review), one that pushes and pops a region of its own. */
static hk_arena *outer_region;
static int nested_ok;
static void pop_outer(void *arg) {
  (void)arg;
  hk_region_pop(outer_region); /* being popped: not on the stack any more, ignored */
}
static void push_pop(void *arg) {
  (void)arg;
  hk_arena *r = hk_region_push();
  nested_ok += r != NULL && hk_region_alloc(16) != NULL;
  hk_region_pop(r);
}
static void test_pop_from_cleanup(void) {
  hk_arena *base = hk_region_push();
  size_t d0 = hk_region_depth();
  outer_region = hk_region_push();
  hk_arena *inner = hk_region_push();
  CHECK(hk_arena_defer(inner, pop_outer, NULL) == HK_OK);
  CHECK(hk_arena_defer(inner, push_pop, NULL) == HK_OK);
  hk_region_pop(outer_region);
  CHECK(hk_region_depth() == d0 && hk_region_top() == base);
  CHECK(nested_ok == 1);
  hk_arena *a = hk_region_push(), *b = hk_region_push();
  CHECK(a != NULL && b != NULL && a != b && a != base && b != base);
  hk_region_pop(base);
  CHECK(hk_region_depth() == d0 - 1);
}

/* A reset of a scratch arena released the thread's own record, which lives in its first scratch
 * arena: the next scope read freed memory (ASan: use-after-poison; a debug build's fill made it
 * a segfault). A scratch arena's reset is refused, as its destroy is. */
static void test_scratch_reset(void) {
  hk_scratch s = hk_scratch_begin(NULL, 0);
  CHECK(s.arena != NULL);
  char *x = hk_arena_alloc(s.arena, 100);
  memset(x, 1, 100);
  hk_arena_reset(s.arena);
  CHECK(hk_arena_contains(s.arena, x));
  hk_scratch_end(s);
  for (int i = 0; i < 4; i++) {
    hk_scratch t = hk_scratch_begin(NULL, 0);
    CHECK(t.arena == s.arena);
    memset(hk_arena_alloc(t.arena, 4096), 0x55, 4096);
    hk_scratch u = hk_scratch_begin(&t.arena, 1);
    CHECK(u.arena != NULL && u.arena != t.arena);
    hk_scratch_end(u);
    hk_scratch_end(t);
  }
}

/* A child of a region outlived the region's pop when the popped region went to the cache (it was
 * destroyed, cleanups run, only when the cache was full): its cleanups ran at thread exit, and the
 * next push got a region that still had it. A pop now destroys the regions' children. */
static void test_region_child(void) {
  hk_arena *r = hk_region_push();
  hk_arena *c = hk_arena_new(&(hk_arena_options){.parent = r});
  CHECK(c != NULL && hk_arena_parent(c) == r);
  CHECK(hk_arena_defer(c, count_cleanup, NULL) == HK_OK);
  hk_arena_stats g0, g1;
  hk_arena_global_stats(&g0);
  cleaned = 0;
  hk_region_pop(r);
  CHECK(cleaned == 1);
  hk_arena_global_stats(&g1);
  CHECK(g1.arenas == g0.arenas - 1);
}

/* A cleanup run by a pop that makes a child of the region being popped: the pop destroyed the
 * children before the reset ran the cleanups, so that child stayed in the cached region and the
 * next push got a region that still had it (its cleanups ran at a later pop or thread exit). */
static void make_region_child(void *arg) {
  hk_arena *c = hk_arena_new(&(hk_arena_options){.parent = (hk_arena *)arg});
  CHECK(c != NULL);
  if (c) CHECK(hk_arena_defer(c, count_cleanup, NULL) == HK_OK);
}
static void test_region_child_from_cleanup(void) {
  hk_arena_stats g0, g1;
  hk_arena *r = hk_region_push();
  hk_arena_global_stats(&g0);
  CHECK(hk_arena_defer(r, make_region_child, r) == HK_OK);
  cleaned = 0;
  hk_region_pop(r);
  CHECK(cleaned == 1);
  hk_arena_global_stats(&g1);
  CHECK(g1.arenas == g0.arenas);
}

int main(void) {
  test_region_stack();
  test_pop_from_cleanup();
  test_scratch_reset();
  test_region_child();
  test_region_child_from_cleanup();
  test_thread_exit();
  test_scratch();
  return check_report("arena.region");
}
