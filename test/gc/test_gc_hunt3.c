/* API edges found in a hunt for misuse (2026-12-07, hunt3), one case per argument: usage
 * test_gc_hunt3 CASE.
 *   limit_min: hk_gc_heap_set_limit with a limit under the collector's minimum (now 6 blocks:
 *   a mature block, a nursery block and its copy reserve for each kind of object) was taken as it
 *   was, so an empty heap could allocate no small object at all (1 byte, 32 KiB) or a few hundred
 *   (64 KiB); it is raised to the minimum now, with a warning. The minimum of hk_gc_heap_create
 *   was 4 blocks, under which a program of both kinds with a few KiB alive got NULL (128 KiB:
 *   after 6902 rounds);
 *   oom_seesaw: an OOM callback that lowers the limit and raises it again by less, in turns (net
 *   downward), was called on and on: each raise counted as progress against the retry before. A
 *   callback that really progresses (releases memory piece by piece, or raises more than it
 *   lowers) is still called as often as it needs;
 *   pinned_evac: a program at its heap limit with pinned objects: the full collections that each
 *   failing allocation forces evacuated the blocks of the pinned objects again and again, into
 *   new blocks past the limit, and the heap grew without end;
 *   size_options: a nursery_size or initial_heap of SIZE_MAX (a garbage value) was taken: no
 *   minor collection ever ran, so the nursery took all the memory the process could get; over
 *   64 TiB they are refused now (HK_EINVAL, with a warning). */
#include "gc_test.h"

#include <stdio.h>

static hk_gc_heap *h;
static hk_gc_mutator *m;

static void setup(const hk_gc_options *o) {
  CHECK(hk_gc_heap_create(o, &h, &m) == HK_OK);
  register_test_types(h);
}

static void teardown(void) {
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
}

/* Garbage nodes and blobs, one node in 100 kept on a rooted list (a few KiB live): how many
 * rounds succeed out of n. */
static long churn(long n) {
  node *keep = NULL;
  HK_GC_ROOTS(m, keep);
  long i;
  for (i = 0; i < n; i++) {
    node *e = new_node(m, (uint64_t)i, 2, false);
    if (!e) break;
    HK_GC_ROOTS(m, e);
    blob *b = new_blob(m, (uint64_t)i, 24);
    if (!b) break;
    e->kids[1] = (node *)b;
    if (i % 100 == 0 && i < 10000) {
      e->kids[0] = keep;
      keep = e;
    }
  }
  return i;
}

static void test_limit_min(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = 64u << 10; /* refused at creation (documented) */
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_EINVAL && h == NULL);
  o.max_heap = 128u << 10; /* (accepted before: the minimum was 4 blocks) */
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_EINVAL && h == NULL);
  o.max_heap = 192u << 10;
  setup(&o);
  long at_min = churn(100000);
  teardown();
  CHECK(at_min == 100000);
  size_t limits[] = {1, 32u << 10, 64u << 10, 128u << 10, (192u << 10) - 1};
  for (size_t k = 0; k < sizeof limits / sizeof *limits; k++) {
    setup(NULL);
    hk_gc_heap_set_limit(h, limits[k]);
    long n = churn(100000);
    hk_gc_stats st;
    hk_gc_stats_get(h, &st);
    fprintf(stderr, "limit_min: set_limit(%zu): %ld of 100000 rounds, heap %zu KiB\n", limits[k], n, st.heap_size >> 10);
    CHECK(n == 100000); /* before: 0, 0, 0, 6902 and 100000 */
    CHECK(st.heap_size <= (192u << 10));
    teardown();
  }
}

static node *held; /* a global root */
static int oom_calls;
static size_t oom_limit;
/* Down 8 KiB, up 4 KiB, in turns: no progress, however many raises. */
static int oom_seesaw(hk_gc_heap *hh, size_t request, void *data) {
  (void)request, (void)data;
  oom_limit += (oom_calls & 1) ? 4u << 10 : -(size_t)(8u << 10);
  hk_gc_heap_set_limit(hh, oom_limit);
  return ++oom_calls < 1000;
}
/* Down 4 KiB, up 8 KiB, in turns: net upward, so it reaches a limit the request fits under. */
static int oom_seesaw_up(hk_gc_heap *hh, size_t request, void *data) {
  (void)request, (void)data;
  oom_limit += (oom_calls & 1) ? 8u << 10 : -(size_t)(4u << 10);
  hk_gc_heap_set_limit(hh, oom_limit);
  return ++oom_calls < 1000;
}
/* Drops one 32 KiB node of the held list per call (the heap shrinks by about a block). */
static int oom_release(hk_gc_heap *hh, size_t request, void *data) {
  (void)hh, (void)request, (void)data;
  if (held) held = held->kids[0];
  return ++oom_calls < 1000;
}

/* From an 8 MiB limit, an allocation of size with fn as the OOM callback: true if it succeeds
 * after more than 16 calls (and under 1000). */
static bool progressing_calls(hk_gc_oom_fn fn, size_t size, const char *what) {
  oom_limit = 8u << 20;
  hk_gc_heap_set_limit(h, oom_limit);
  hk_gc_set_oom_handler(h, fn, NULL);
  oom_calls = 0;
  bool ok = hk_gc_alloc_data(m, T_BLOB, size) != NULL;
  fprintf(stderr, "oom_seesaw: %s: %d calls\n", what, oom_calls);
  return ok && oom_calls > 16 && oom_calls < 1000;
}

static void test_oom_seesaw(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = oom_limit = 8u << 20;
  setup(&o);
  CHECK(hk_gc_root_add(h, (void **)&held) == HK_OK);
  int n = 0;
  for (node *e; n < 1000 && (e = new_node(m, (uint64_t)n, 4 * 1024, false)) != NULL; n++) {
    e->kids[0] = held;
    held = e;
  }
  CHECK(n > 100 && n < 1000);
  hk_gc_set_oom_handler(h, oom_seesaw, NULL);
  oom_calls = 0;
  CHECK(hk_gc_alloc_data(m, T_BLOB, 1u << 20) == NULL);
  fprintf(stderr, "oom_seesaw: down 8 KiB, up 4 KiB: %d calls\n", oom_calls);
  CHECK(oom_calls >= 16 && oom_calls < 100); /* before: 1000 (the callback's own cap) */
  /* callbacks that progress: called as often as they need, and the allocation succeeds */
  CHECK(progressing_calls(oom_seesaw_up, 1u << 20, "down 4 KiB, up 8 KiB"));
  CHECK(progressing_calls(oom_release, 2u << 20, "releasing a block per call"));
  held = NULL;
  CHECK(hk_gc_root_remove(h, (void **)&held) == HK_OK);
  teardown();
}

/* A table of 512 small objects (nodes and blobs, 26 KiB) replaced at random, one in 128 steps
 * pinning one of them, under the smallest limit: allocations fail now and then, and each failure
 * forces full collections. Those evacuated the blocks holding pinned objects: the copies took new
 * blocks past the limit and the pinned objects kept the old ones, so the heap grew with every few
 * hundred collections (3.4 MiB under 192 KiB after 20 000 steps, 18 793 of them failing). */
static node *pe_tab[512];

static void test_pinned_evac(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = 192u << 10;
  o.nursery_size = 256u << 10;
  setup(&o);
  for (int i = 0; i < 512; i++) CHECK(hk_gc_root_add(h, (void **)&pe_tab[i]) == HK_OK);
  long failed = 0;
  for (long it = 0; it < 20000; it++) {
    uint64_t r = rnd();
    node *n = ((r >> 20) & 3) == 0 ? (node *)new_blob(m, (uint64_t)it, (r >> 32) % 100)
                                   : new_node(m, (uint64_t)it + 1, (r >> 32) % 8, false);
    if (n) pe_tab[r % 512] = n;
    else failed++;
    if (((r >> 40) & 127) == 0 && pe_tab[(r >> 48) % 512]) hk_gc_pin(m, pe_tab[(r >> 48) % 512]);
  }
  hk_gc_stats st;
  hk_gc_stats_get(h, &st);
  fprintf(stderr, "pinned_evac: %ld of 20000 allocations failed, peak heap %zu KiB, heap %zu KiB, %llu full collections\n",
          failed, st.heap_peak >> 10, st.heap_size >> 10, (unsigned long long)st.full_collections);
  CHECK(st.heap_peak <= o.max_heap + o.max_heap / 8); /* (a forced collection's evacuation may pass it by that) */
  CHECK(failed < 200);
  for (int i = 0; i < 512; i++) CHECK(hk_gc_root_remove(h, (void **)&pe_tab[i]) == HK_OK);
  teardown();
}

static void test_size_options(void) {
  hk_gc_options o;
  size_t bad[] = {SIZE_MAX, ((size_t)1 << 46) + 1};
  for (int k = 0; k < 2; k++)
    for (int which = 0; which < 2; which++) {
      hk_gc_options_init(&o);
      if (which) o.initial_heap = bad[k];
      else o.nursery_size = bad[k];
      CHECK(hk_gc_heap_create(&o, &h, &m) == HK_EINVAL && h == NULL);
      if (h) teardown();
    }
  hk_gc_options_init(&o); /* the largest taken still works (nothing is reserved for it up front) */
  o.nursery_size = (size_t)1 << 46;
  o.initial_heap = (size_t)1 << 46;
  o.max_heap = 64u << 20; /* (clamps the nursery to an eighth) */
  setup(&o);
  CHECK(churn(20000) == 20000);
  teardown();
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = !strcmp(what, "all");
  if (all || !strcmp(what, "limit_min")) test_limit_min();
  if (all || !strcmp(what, "oom_seesaw")) test_oom_seesaw();
  if (all || !strcmp(what, "pinned_evac")) test_pinned_evac();
  if (all || !strcmp(what, "size_options")) test_size_options();
  return check_report("test_gc_hunt3");
}
