/* The ownerless budget (src/malloc/mseg.c, HK__OWNERLESS_BUDGET): once a thread has exited, the
 * free pages of the segments no live thread owns (abandoned ones, and malloc's in the segment
 * cache) keep at most the budget resident, but for pages given back within the grace period.
 * Before it, they stayed resident for a whole purge delay after the last thread that used them
 * (under thread churn, the union of the pages all threads of the last 100 ms had used).
 *
 * Sections (one per run, argument 1):
 *   abandoned  a thread touches 6 MiB of 1 KiB blocks and frees them but for one block per
 *              segment, so its segments are abandoned with their free pages resident; after the
 *              grace period another thread starts and exits, and then the free pages of the
 *              abandoned segments hold at most the budget;
 *   cached     the same with every block freed, so the segments go to the segment cache;
 *   young      nothing is decommitted within the grace period: right after the first thread
 *              exits, its free pages are all still resident (the next threads reuse them);
 *   cache_exit a thread exit also ages the segment cache: an 8 MiB block freed into it, and a
 *              thread that exits once the cache's purge is due (purge delay 50 ms here: due
 *              after 100 ms) leaving a block behind, leave none of the 8 MiB resident. Before,
 *              the cache was aged only on allocation slow paths (every 8th) and when a segment
 *              came into it, so an idle process kept such memory (64 MiB of freed 2 MiB blocks,
 *              with a thread exiting 200 ms after the free).
 * The purge delay is set to 16 s so that nothing here is purged by the delay itself; the checks
 * are on heapkit's own records (commit masks and page records) and on mincore, never on timing
 * (the only wait is a sleep that makes the pages at least as old as the grace period).
 * Linked with the static library: it reads the segments' and pages' records. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "resident.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define BLOCK KiB
#define TOUCH (6 * MiB)
#define DELAY_MS 16000 /* a grace period of 1 s: longer than the first thread takes, even at HK_DEBUG=3 */

/* Over the segments no live thread owns: what their free pages hold resident (mincore) and what
 * heapkit's records say they may hold (the touched prefix of each committed free page). */
static void ownerless(size_t *res, size_t *recorded, size_t *segs) {
  *res = *recorded = *segs = 0;
  for (size_t w = 0; w < HK__SEGMAP_BITS / 64; w++) {
    for (uint64_t m = atomic_load(&hk__segmap[w]); m; m &= m - 1) {
      hk__segment *s = (hk__segment *)((uintptr_t)(w * 64 + (size_t)__builtin_ctzll(m)) << HK_SEGMENT_SHIFT);
      bool abandoned = (s->kind == HK__SEG_SMALL || s->kind == HK__SEG_MEDIUM) && atomic_load(&s->thread_id) == 0;
      bool cached = s->kind == HK__SEG_NONE && (s->cached_kind == HK__SEG_SMALL || s->cached_kind == HK__SEG_MEDIUM);
      if (!abandoned && !cached) continue;
      (*segs)++;
      hk__mseg *seg = (hk__mseg *)s;
      size_t page_size = (size_t)1 << s->page_shift;
      for (uint32_t i = 0; i < s->page_count; i++) {
        const hk__page *pg = &seg->pages[i];
        if (pg->in_use) continue;
        size_t off = HK_PAGES_OFFSET + (size_t)i * page_size;
        *res += resident((uint8_t *)s + off, page_size);
        uint64_t units = (page_size / s->unit >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << (page_size / s->unit)) - 1)) << (off / s->unit);
        if ((s->commit_mask & units) == units) *recorded += pg->touched;
      }
    }
  }
}

/* One block kept per segment (abandoned), or none (cached). */
typedef struct first { bool keep; void *kept[64]; int nkept; } first;

static void *first_thread(void *arg) {
  first *f = arg;
  size_t n = TOUCH / BLOCK;
  void **b = hk_malloc(n * sizeof *b);
  CHECK(b != NULL);
  for (size_t i = 0; i < n; i++) {
    CHECK((b[i] = hk_malloc(BLOCK)) != NULL);
    tu_fill(b[i], BLOCK);
  }
  for (size_t i = 0; i < n; i++) {
    uintptr_t seg = (uintptr_t)b[i] & ~(uintptr_t)HK_SEGMENT_MASK;
    bool seen = false;
    for (int k = 0; k < f->nkept; k++) seen |= ((uintptr_t)f->kept[k] & ~(uintptr_t)HK_SEGMENT_MASK) == seg;
    if (f->keep && !seen && f->nkept < 64) f->kept[f->nkept++] = b[i];
    else hk_free(b[i]);
  }
  hk_free(b);
  return NULL;
}

static void *second_thread(void *arg) {
  (void)arg;
  void *p = hk_malloc(16);
  CHECK(p != NULL);
  hk_free(p);
  return NULL;
}

static void run(const char *sec) {
  bool keep = strcmp(sec, "cached") != 0, young = strcmp(sec, "young") == 0;
  hk_collect(true); /* no abandoned or cached segment left from before */
  first f = {.keep = keep};
  size_t res, rec, segs;
  double t0 = tu_now();
  tu_run_thread(first_thread, &f);
  double took_ms = (tu_now() - t0) * 1e3;
  ownerless(&res, &rec, &segs);
  printf("ownerless %s: after the first thread: %zu segments, free pages %zu KiB resident, %zu KiB recorded\n", sec, segs,
         res / KiB, rec / KiB);
  if (took_ms >= (double)hk__ownerless_grace()) {
    /* (its first pages were older than the grace period at its exit: not the setting wanted) */
    printf("ownerless %s: skipped: the first thread took %.0f ms, longer than the grace period\n", sec, took_ms);
    for (int k = 0; k < f.nkept; k++) hk_free(f.kept[k]);
    return;
  }
  /* the setting is what it must be: the thread's pages are in ownerless segments, resident */
  CHECKF(res >= TOUCH / 2, "the first thread's free pages are not resident in ownerless segments (%zu KiB)", res / KiB);
  if (young) {
    /* all of them younger than the grace period: none decommitted */
    CHECKF(res >= TOUCH - TOUCH / 8, "free pages given back just now were decommitted (%zu KiB of %zu left)", res / KiB,
           TOUCH / KiB);
  } else {
    usleep((useconds_t)(hk__ownerless_grace() * 1000 + 20000));
    tu_run_thread(second_thread, NULL);
    ownerless(&res, &rec, &segs);
    printf("ownerless %s: after the second thread: %zu segments, free pages %zu KiB resident, %zu KiB recorded (budget %zu KiB)\n",
           sec, segs, res / KiB, rec / KiB, HK__OWNERLESS_BUDGET / KiB);
    /* the second thread's own page (a 16-byte block's, given back just now) may come on top */
    CHECKF(rec <= HK__OWNERLESS_BUDGET + 64 * KiB, "ownerless segments' free pages may hold %zu KiB (budget %zu KiB)",
           rec / KiB, HK__OWNERLESS_BUDGET / KiB);
    CHECKF(res <= HK__OWNERLESS_BUDGET + 64 * KiB, "ownerless segments' free pages hold %zu KiB resident (budget %zu KiB)",
           res / KiB, HK__OWNERLESS_BUDGET / KiB);
  }
  for (int k = 0; k < f.nkept; k++) {
    CHECKF(tu_verify(f.kept[k], BLOCK) == (size_t)-1, "a live block in an abandoned segment lost its contents");
    hk_free(f.kept[k]);
  }
}

static void *leaving_thread(void *arg) {
  CHECK((*(void **)arg = hk_malloc(16)) != NULL);
  return NULL;
}

static void cache_exit(void) {
  CHECK(hk_option_set(HK_OPT_PURGE_DELAY, 50) == HK_OK);
  hk_collect(true);
  size_t n = 8 * MiB;
  uint8_t *p = hk_malloc(n);
  CHECK(p != NULL);
  memset(p, 0x5a, n);
  hk_free(p); /* its segment goes to the cache, resident */
  size_t before = resident(p, n);
  CHECKF(before >= n / 2, "the freed block's segment is not resident in the cache (%zu KiB)", before / KiB);
  usleep(150 * 1000); /* the cache purges a segment 100 ms after it came in (purge delay 50 ms) */
  /* a thread that leaves its block behind: its segment is abandoned, not cached (putting a segment
   * into the cache ages it too) */
  void *left = NULL;
  tu_run_thread(leaving_thread, &left);
  size_t after = resident(p, n);
  printf("ownerless cache_exit: a freed 8 MiB block: %zu KiB resident in the cache, %zu KiB after a thread's exit 150 ms later\n",
         before / KiB, after / KiB);
  CHECKF(after == 0, "%zu KiB of a segment cached for longer than its purge delay still resident after a thread exit", after / KiB);
  hk_free(left);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_ownerless";
  const char *sec = argc > 1 ? argv[1] : "abandoned";
  CHECK(strcmp(sec, "abandoned") == 0 || strcmp(sec, "cached") == 0 || strcmp(sec, "young") == 0 ||
        strcmp(sec, "cache_exit") == 0);
  void *warm = hk_malloc(16); /* the allocator is set up, so the option can be set */
  if (strcmp(sec, "cache_exit") == 0) {
    cache_exit();
  } else {
    CHECK(hk_option_set(HK_OPT_PURGE_DELAY, DELAY_MS) == HK_OK);
    run(sec);
  }
  hk_free(warm);
  return 0;
}
