/* Page layer: segments, lookup, commit/decommit bookkeeping, purge queues, the cache, accounting. */
#include "page/segment.h"
#include "os/os.h"
#include "../check.h"

#include <errno.h>
#include <string.h>

static void test_alloc_lookup(void) {
  hk_stats before, after;
  hk__page_stats(&before);
  hk__segment *s = hk__segment_alloc(1, 0, HK__SEG_ARENA, 4096);
  CHECK(s != NULL);
  CHECK(((uintptr_t)s & HK_SEGMENT_MASK) == 0);
  CHECK(s->size == HK_SEGMENT_SIZE && s->kind == HK__SEG_ARENA);
  CHECK(hk__segment_is_valid(s));
  CHECK(hk__segment_of((uint8_t *)s + 12345) == s);
  CHECK(hk__segment_find((uint8_t *)s + HK_SEGMENT_SIZE - 1) == s);
  int local;
  CHECK(hk__segment_of(&local) == NULL);
  CHECK(hk__segment_find(&local) == NULL);
  CHECK(hk__segment_of((void *)0x1000) == NULL);
  CHECK(hk__segment_of((void *)~(uintptr_t)0) == NULL);

  /* a multi-chunk segment is found from any interior pointer */
  hk__segment *big = hk__segment_alloc(3 * HK_SEGMENT_SIZE + 1, 0, HK__SEG_GC_LARGE, 4096);
  CHECK(big && big->size == 4 * HK_SEGMENT_SIZE && big->unit == big->size / 64);
  CHECK(hk__segment_find((uint8_t *)big + 3 * HK_SEGMENT_SIZE + 77) == big);
  CHECK(hk__segment_of((uint8_t *)big + 3 * HK_SEGMENT_SIZE + 77) == NULL);

  hk__page_stats(&after);
  CHECK(after.reserved >= before.reserved + 5 * HK_SEGMENT_SIZE - (before.segments_cached * HK_SEGMENT_SIZE));
  CHECK(after.segments == before.segments + 2);
  hk__segment_free(big);
  hk__segment_free(s);
}

static void test_commit_zero_purge(void) {
  hk__segment *s = hk__segment_alloc(HK_SEGMENT_SIZE, 0, HK__SEG_POOL, 8192);
  CHECK(s);
  size_t unit = s->unit;
  bool zero = false;
  hk_stats a, b;
  hk__page_stats(&a);
  CHECK(hk__segment_commit(s, 4 * unit, 2 * unit, &zero) == HK_OK);
  hk__page_stats(&b);
  CHECK(b.committed == a.committed + 2 * unit);
  uint8_t *p = (uint8_t *)s + 4 * unit;
  for (size_t i = 0; i < 2 * unit; i++) CHECK_QUIET(!zero || p[i] == 0);
  memset(p, 0xAB, 2 * unit);
  /* committing again: not zero any more */
  CHECK(hk__segment_commit(s, 4 * unit, unit, &zero) == HK_OK && !zero);
  /* decommit now: contents read zero again and accounting drops */
  hk__segment_decommit(s, 4 * unit, 2 * unit);
  hk__page_stats(&b);
  CHECK(b.committed == a.committed);
  CHECK(hk__segment_commit(s, 4 * unit, 2 * unit, &zero) == HK_OK && zero);
  CHECK(p[0] == 0 && p[2 * unit - 1] == 0);
  memset(p, 0xCD, 2 * unit);

  /* purge later: nothing happens before the delay, everything after */
  hk__purge_queue q = {NULL, INT64_MAX};
  int64_t now = 1000;
  hk_option_set(HK_OPT_PURGE_DELAY, 10);
  hk__segment_purge_later(&q, s, 4 * unit, 2 * unit, now);
  CHECK(q.first == s && s->purge_mask != 0);
  CHECK(hk__segment_is_valid(s));
  hk__purge_queue_run(&q, now + 5, false);
  CHECK(p[0] == 0xCD);
  hk__purge_queue_run(&q, now + 11, false);
  CHECK(q.first == NULL && s->purge_mask == 0);
  CHECK(p[0] == 0 && p[unit] == 0);

  /* reuse before the delay cancels the purge */
  CHECK(hk__segment_commit(s, 8 * unit, unit, &zero) == HK_OK);
  memset((uint8_t *)s + 8 * unit, 0x11, unit);
  hk__segment_purge_later(&q, s, 8 * unit, unit, now);
  CHECK(hk__segment_commit(s, 8 * unit, unit, &zero) == HK_OK && !zero);
  CHECK(q.first == NULL);
  hk__purge_queue_run(&q, now + 100, true);
  CHECK(((uint8_t *)s)[8 * unit] == 0x11);
  /* the header is never purged */
  hk__segment_purge_later(&q, s, 0, s->size, now);
  hk__purge_queue_run(&q, now, true);
  CHECK((s->commit_mask & 1) == 1);
  hk__segment_free(s);
}

static void test_cache_reuse(void) {
  hk_option_set(HK_OPT_PURGE_DELAY, 10000);
  hk__segment *s = hk__segment_alloc(HK_SEGMENT_SIZE, 0, HK__SEG_ARENA, 4096);
  CHECK(s);
  hk__segment_free(s);
  hk_stats st;
  hk__page_stats(&st);
  CHECK(st.segments_cached >= 1);
  hk__segment *t = hk__segment_alloc(HK_SEGMENT_SIZE, 0, HK__SEG_POOL, 4096);
  CHECK(t == s && t->kind == HK__SEG_POOL && t->from_cache);
  /* the header region of a reused segment is zero again */
  CHECK(((uint8_t *)t)[sizeof(hk__segment) + 10] == 0);
  hk__segment_free(t);
  hk__page_collect(hk__clock_ms() + 1000000, true);
  hk__page_stats(&st);
  CHECK(st.segments_cached == 0);
}

static void test_alignment(void) {
  hk__segment *s = hk__segment_alloc(HK_SEGMENT_SIZE, 16 * HK_SEGMENT_SIZE, HK__SEG_ARENA, 4096);
  CHECK(s && ((uintptr_t)s % (16 * HK_SEGMENT_SIZE)) == 0);
  hk__segment_free(s);
  CHECK(hk__segment_alloc(HK_SEGMENT_SIZE, 3 * HK_SEGMENT_SIZE, HK__SEG_ARENA, 4096) == NULL);
  CHECK(hk__segment_alloc(0, 0, HK__SEG_ARENA, 4096) == NULL);
  CHECK(hk__segment_alloc((size_t)1 << 62, 0, HK__SEG_ARENA, 4096) == NULL);
}

static void test_os(void) {
  void *p;
  size_t ps = hk__os_page_size();
  CHECK(ps >= 4096 && hk__is_pow2(ps));
  CHECK(hk__os_reserve(ps * 3, 0, false, &p) == HK_OK && p);
  CHECK(hk__os_reserve(0, 0, false, &p) == HK_EINVAL);
  CHECK(hk__os_reserve(ps * 3, 1 << 21, true, &p) == HK_OK && ((uintptr_t)p & ((1 << 21) - 1)) == 0);
  memset(p, 1, ps * 3);
  CHECK(hk__os_decommit(p, ps, HK__OS_DONTNEED) == HK_OK && ((uint8_t *)p)[0] == 0);
  CHECK(hk__os_protect(p, ps, HK__OS_READ) == HK_OK);
  CHECK(hk__os_protect(p, ps, HK__OS_READWRITE) == HK_OK);
  CHECK(hk__os_decommit(p, ps, HK__OS_FREE) == HK_OK);
  CHECK(hk__os_release(p, ps * 3) == HK_OK);
  CHECK(hk__os_rss() > 0);
  /* populate is a hint: a refusal (here an unaligned address, EINVAL) keeps the caller's errno and
   * switches the call off for good, as an old kernel's or a sandbox's answer would */
  CHECK(hk__os_reserve(ps * 2, 0, true, &p) == HK_OK);
  errno = 1234;
  CHECK(hk__os_populate((char *)p + 1, ps) == HK_EINVAL && errno == 1234);
  CHECK(hk__os_populate(p, ps) == HK_EINVAL && errno == 1234);
  CHECK(hk__os_release(p, ps * 2) == HK_OK);
}

int main(void) {
  test_os();
  test_alloc_lookup();
  test_commit_zero_purge();
  test_cache_reuse();
  test_alignment();
  return check_report("page");
}
