/* Save points, cleanups (LIFO, at restore/reset/destroy), memory reuse, stale and foreign marks,
 * child arenas, and the retention limit of reset. */
#include <heapkit.h>
#include "check.h"

#include <string.h>

static char log_buf[256];
static size_t log_len;
static void note(void *arg) { log_buf[log_len++] = *(const char *)arg; log_buf[log_len] = 0; }
static void log_clear(void) { log_len = 0; log_buf[0] = 0; }

static void test_nested_save_points(void) {
  hk_arena *a = hk_arena_new(NULL);
  char *p0 = hk_arena_alloc(a, 100);
  strcpy(p0, "outer");
  hk_arena_mark m1 = hk_arena_save(a);
  char *p1 = hk_arena_alloc(a, 64);
  hk_arena_mark m2 = hk_arena_save(a);
  char *p2 = hk_arena_alloc(a, 64);
  hk_arena_mark m3 = hk_arena_save(a);
  hk_arena_alloc(a, 5000);
  hk_arena_restore(a, m3);
  CHECK(hk_arena_alloc(a, 64) == p2 + 64); /* memory after m3 is reused */
  hk_arena_restore(a, m2);
  CHECK(hk_arena_alloc(a, 64) == p2);
  hk_arena_restore(a, m1);
  CHECK(hk_arena_alloc(a, 64) == p1);
  CHECK(strcmp(p0, "outer") == 0);
  hk_arena_restore(a, m1);
  /* m2 lies after m1, which was just restored: a stale mark is reported and ignored. */
  hk_arena_stats before, after;
  hk_arena_stats_get(a, &before);
  hk_arena_alloc(a, 16);
  hk_arena_restore(a, m3);
  hk_arena_stats_get(a, &after);
  CHECK(after.allocated == before.allocated + 16);
  /* A mark of another arena is reported and ignored. */
  hk_arena *b = hk_arena_new(NULL);
  hk_arena_restore(b, m1);
  hk_arena_stats_get(b, &after);
  CHECK(after.allocated == 0);
  hk_arena_destroy(b);
  hk_arena_destroy(a);
}

/* Save points across chunk boundaries: restoring into an earlier chunk keeps later chunks as
 * spares, and the pointers after the restore come from the same memory again. */
static void test_save_across_chunks(void) {
  hk_arena *a = hk_arena_new(&(hk_arena_options){.retain = (size_t)64 << 20});
  hk_arena_alloc(a, 1000);
  hk_arena_mark m = hk_arena_save(a);
  char *first_after = hk_arena_alloc(a, 1 << 20);
  for (int i = 0; i < 20; i++) hk_arena_alloc(a, 1 << 20);
  hk_arena_stats s1, s2;
  hk_arena_stats_get(a, &s1);
  CHECK(s1.chunks >= 3);
  hk_arena_restore(a, m);
  hk_arena_stats_get(a, &s2);
  CHECK(s2.allocated == 1008);
  CHECK(s2.allocated_peak >= s1.allocated);
  CHECK(s2.chunks == s1.chunks); /* retained as spares (retain is 64 MiB) */
  CHECK(hk_arena_alloc(a, 1 << 20) == first_after);
  for (int i = 0; i < 20; i++) hk_arena_alloc(a, 1 << 20);
  hk_arena_stats_get(a, &s2);
  CHECK(s2.chunks == s1.chunks && s2.reserved == s1.reserved); /* no new reservation */
  hk_arena_destroy(a);
}

static void test_cleanups(void) {
  static const char A = 'a', B = 'b', C = 'c', D = 'd', E = 'e';
  hk_arena *a = hk_arena_new(NULL);
  log_clear();
  CHECK(hk_arena_defer(a, note, (void *)&A) == HK_OK);
  hk_arena_mark m1 = hk_arena_save(a);
  hk_arena_defer(a, note, (void *)&B);
  hk_arena_mark m2 = hk_arena_save(a);
  hk_arena_defer(a, note, (void *)&C);
  hk_arena_defer(a, note, (void *)&D);
  hk_arena_stats st;
  hk_arena_stats_get(a, &st);
  CHECK(st.cleanups == 4);
  hk_arena_restore(a, m2);
  CHECK(strcmp(log_buf, "dc") == 0); /* LIFO, only those after the mark */
  hk_arena_restore(a, m1);
  CHECK(strcmp(log_buf, "dcb") == 0);
  hk_arena_defer(a, note, (void *)&E);
  hk_arena_reset(a);
  CHECK(strcmp(log_buf, "dcbea") == 0);
  hk_arena_stats_get(a, &st);
  CHECK(st.cleanups == 0 && st.allocated == 0);
  hk_arena_defer(a, note, (void *)&A);
  hk_arena_defer(a, note, (void *)&B);
  CHECK(hk_arena_defer(a, NULL, NULL) == HK_EINVAL);
  hk_arena_destroy(a);
  CHECK(strcmp(log_buf, "dcbeaba") == 0);
}

static void test_children(void) {
  static const char P = 'P', C1 = '1', C2 = '2', G = 'G';
  log_clear();
  hk_arena *p = hk_arena_new(NULL);
  hk_arena *c1 = hk_arena_new(&(hk_arena_options){.parent = p});
  hk_arena *c2 = hk_arena_new(&(hk_arena_options){.parent = p});
  hk_arena *g = hk_arena_new(&(hk_arena_options){.parent = c1});
  CHECK(c1 && c2 && g && hk_arena_parent(g) == c1 && hk_arena_parent(c1) == p);
  hk_arena_defer(p, note, (void *)&P);
  hk_arena_defer(c1, note, (void *)&C1);
  hk_arena_defer(c2, note, (void *)&C2);
  hk_arena_defer(g, note, (void *)&G);
  hk_arena_alloc(c1, 1000);
  hk_arena_alloc(g, 1000);
  hk_arena_stats g0, g1;
  hk_arena_global_stats(&g0);
  hk_arena *c3 = hk_arena_new(&(hk_arena_options){.parent = p});
  hk_arena_destroy(c3); /* a child may also go first */
  hk_arena_reset(p);    /* reset keeps children */
  CHECK(strcmp(log_buf, "P") == 0);
  hk_arena_destroy(p);
  hk_arena_global_stats(&g1);
  CHECK(g1.arenas + 4 == g0.arenas);
  /* Children go first (newest first), each after its own children. */
  CHECK(strcmp(log_buf, "P2G1") == 0);
}

/* Reset keeps committed memory below the high-water mark plus one retention step and returns the
 * rest: checked exactly through the statistics. */
static void test_retention(void) {
  const size_t retain = (size_t)1 << 20, step = (size_t)64 << 10;
  hk_arena *a = hk_arena_new(&(hk_arena_options){.retain = retain, .commit_step = step});
  for (int i = 0; i < 3; i++) {
    for (int k = 0; k < 24 * 1024; k++) hk_arena_alloc(a, 1000); /* ~24 MiB */
    hk_arena_stats full, after;
    hk_arena_stats_get(a, &full);
    hk_arena_reset(a);
    hk_arena_stats_get(a, &after);
    CHECK(full.committed >= (size_t)24000 * 1024);
    CHECK(after.allocated == 0);
    CHECK(after.allocated_peak >= full.allocated);
    /* metadata (one header unit of the first chunk) + retain, rounded to one step */
    CHECK(after.committed <= retain + step + step);
    CHECK(after.committed >= retain);
    CHECK(after.committed <= after.allocated_peak + step);
    CHECK(after.chunks == 1);
  }
  /* Small use: reset keeps what was committed, never more than high-water + one step. */
  hk_arena *b = hk_arena_new(&(hk_arena_options){.retain = retain, .commit_step = step});
  for (int k = 0; k < 300; k++) hk_arena_alloc(b, 1000);
  hk_arena_reset(b);
  hk_arena_stats sb;
  hk_arena_stats_get(b, &sb);
  CHECK(sb.committed <= sb.allocated_peak + step + step);
  hk_arena_destroy(b);
  hk_arena_destroy(a);
}

/* At debug levels >= 1 released memory is filled with 0xDE (arenas) and 0xDF (pools), so stale
 * data never survives a restore. */
static void test_debug_fill(void) {
#if defined(HK_TEST_DEBUG) && HK_TEST_DEBUG >= 1
  hk_arena *a = hk_arena_new(NULL);
  hk_arena_mark m = hk_arena_save(a);
  unsigned char *p = hk_arena_alloc(a, 256);
  memset(p, 0x11, 256);
  hk_arena_restore(a, m);
  unsigned char *q = hk_arena_alloc(a, 256);
  int filled = q == p;
  for (int i = 0; i < 256; i++) filled &= q[i] == 0xDE;
  CHECK(filled);
  hk_arena_destroy(a);
  hk_pool *pl = hk_pool_new(64);
  unsigned char *b = hk_pool_alloc(pl);
  memset(b, 0x22, 64);
  hk_pool_free(pl, b);
  unsigned char *c = hk_pool_alloc(pl);
  filled = c == b;
  for (int i = 16; i < 64; i++) filled &= c[i] == 0xDF; /* the first two words held the link and the mark */
  CHECK(filled);
  hk_pool_destroy(pl);
#endif
}

/* A stale mark whose position the arena has reached again: m2 was released by the restore of m1,
 * then a cleanup was registered past m2's position. Restoring m2 would keep that cleanup's record
 * while releasing its memory: the next allocation overwrote it and destroy called garbage (a
 * segfault in review). It is refused as stale, and the cleanup runs once, at destroy. */
static int stale_ran[3];
static void stale_note(void *arg) { stale_ran[(long)arg]++; }
static void test_stale_mark_reached_again(void) {
  hk_arena *a = hk_arena_new(NULL);
  hk_arena_mark m1 = hk_arena_save(a);
  hk_arena_defer(a, stale_note, (void *)1);
  hk_arena_mark m2 = hk_arena_save(a);
  hk_arena_restore(a, m1);
  CHECK(stale_ran[1] == 1);
  hk_arena_alloc(a, 64);
  CHECK(hk_arena_defer(a, stale_note, (void *)2) == HK_OK);
  hk_arena_stats before, after;
  hk_arena_stats_get(a, &before);
  hk_arena_restore(a, m2); /* stale: reported and ignored */
  hk_arena_stats_get(a, &after);
  CHECK(after.allocated == before.allocated && after.cleanups == 1);
  memset(hk_arena_alloc(a, 256), 0x41, 256);
  CHECK(stale_ran[2] == 0);
  hk_arena_destroy(a);
  CHECK(stale_ran[1] == 1 && stale_ran[2] == 1);
}

/* A cleanup that runs while its arena is destroyed and makes a child of that arena (a logger
 * taking a scratch child, say): destroy ran the children first and the cleanups after, so that
 * child was never destroyed: its cleanups never ran, its memory leaked and its parent pointer
 * dangled (a later destroy of it locked the freed parent's mutex). Destroy now repeats until
 * neither children nor cleanups are left. */
static int late_child_cleaned;
static void late_child_note(void *arg) { (void)arg; late_child_cleaned++; }
static void make_late_child(void *arg) {
  hk_arena *c = hk_arena_new(&(hk_arena_options){.parent = (hk_arena *)arg});
  CHECK(c != NULL);
  if (!c) return;
  CHECK(hk_arena_alloc(c, 100) != NULL);
  CHECK(hk_arena_defer(c, late_child_note, NULL) == HK_OK);
}
static void test_child_made_by_cleanup(void) {
  hk_arena_stats g0, g1;
  hk_arena_global_stats(&g0);
  hk_arena *a = hk_arena_new(NULL);
  CHECK(hk_arena_defer(a, make_late_child, a) == HK_OK);
  late_child_cleaned = 0;
  hk_arena_destroy(a);
  hk_arena_global_stats(&g1);
  CHECK(late_child_cleaned == 1);
  CHECK(g1.arenas == g0.arenas);
  /* the same through a restore: the child made by the cleanup is a's and lives on; destroy takes it */
  a = hk_arena_new(NULL);
  hk_arena_mark m = hk_arena_save(a);
  CHECK(hk_arena_defer(a, make_late_child, a) == HK_OK);
  late_child_cleaned = 0;
  hk_arena_restore(a, m);
  CHECK(late_child_cleaned == 0);
  hk_arena_destroy(a);
  hk_arena_global_stats(&g1);
  CHECK(late_child_cleaned == 1);
  CHECK(g1.arenas == g0.arenas);
}

int main(void) {
  test_debug_fill();
  test_nested_save_points();
  test_stale_mark_reached_again();
  test_save_across_chunks();
  test_cleanups();
  test_children();
  test_retention();
  test_child_made_by_cleanup();
  return check_report("arena.scope");
}
