/* API edges found in review, one case per argument: usage test_gc_review CASE.
 *   objsize: the largest object the header's size field can describe;
 *   collect_args: hk_gc_collect with a NULL mutator (segfault) or an unknown kind (ran a minor
 *   collection) is ignored with a warning;
 *   destroy_in_roots, unregister_in_roots: hk_gc_heap_destroy / hk_gc_thread_unregister inside
 *   the caller's HK_GC_ROOTS blocks (the blocks' pops wrote into the freed mutator record);
 *   oom_stalled: an OOM callback that always answers "retry" without releasing anything, or
 *   that lowers the limit a little per call (called for ever);
 *   unregister_other: a thread's mutator unregistered by another thread, then the thread exits
 *   (its exit unregistered the freed record again: SIGSEGV, or another thread's mutator that
 *   had reused the record);
 *   oom_unregister: the OOM callback unregisters the allocating mutator or destroys its heap
 *   (documented: it "may call hk_gc_* functions"): the allocation went on with the freed mutator
 *   or heap (SIGSEGV, or a silent use of the destroyed heap);
 *   weak_free_foreign: hk_gc_weak_free with a mutator of another heap than the handle's (it
 *   was unlinked from the wrong heap's list: the next collection looped for ever);
 *   weak_free_other_record: hk_gc_weak_free of a pointer that is no handle but another record of
 *   the same heap's metadata (a mutator: SIGSEGV), or of a freed handle whose record a global
 *   root took (the root was unlinked as a handle; SIGSEGV);
 *   unregistered_use: the calls of a mutator unregistered already (an allocation through it
 *   returned a pointer into another freed mutator record, writing a header over its free-list
 *   link; hk_gc_blocking_begin/end and the other slow paths followed its NULL heap: SIGSEGV);
 *   destroyed_use: an allocation through the mutator of a destroyed heap (it went on bumping in
 *   the freed nursery block);
 *   blocking_misuse: hk_gc_* calls through a mutator inside hk_gc_blocking_begin/end (counted as
 *   stopped): its collection ran without stopping the other threads (SIGSEGV), its allocations
 *   bumped in a buffer another thread's collection was evacuating (that thread's list came back
 *   corrupt), its safepoint poll parked it and left it counted as blocking while it ran
 *   (hk_gc_blocking_end then refused);
 *   blocking_close: another thread's collection closes the buffers of a mutator inside a blocking
 *   region: the inline allocation path, which reads the cursor and the limit with two plain
 *   loads, found room in a mix of the values before and after the close (the old cursor with the
 *   new NULL limit: 2^64 - cursor bytes), so an allocation in the region could bump in the closed
 *   buffer, and every later one too, with no limit (a probe: 100-549 of 20 M);
 *   beyond_memory: a large object bigger than RAM + swap (handed out, where malloc fails; its first
 *   touch brought the OOM killer). */
#include "gc_test.h"
#include "../child.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static hk_gc_heap *h;
static hk_gc_mutator *m;

static void setup(void) {
  CHECK(hk_gc_heap_create(NULL, &h, &m) == HK_OK);
  register_test_types(h);
}

static void teardown(void) {
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
}

/* A header holds the size in 40 bits of 8-byte granules (header included): at most 8 TiB - 8.
 * The limit was 16 TiB, so an object from 8 TiB on was allocated (the address space is reserved,
 * not committed) with a size field that wrapped: hk_gc_object_size 0, hk_gc_verify failed, and a
 * collection scanned none of its slots. Such requests return NULL now. The largest size that
 * fits may still be refused by the system (a sanitizer's or a strict overcommit's, and, since
 * large objects are reserved with accounting, the default heuristic's on a machine with less than
 * 8 TiB of RAM + swap: beyond_memory): NULL is accepted for it, a wrong size is not. */
static void test_objsize(void) {
  setup();
  hk_gc_type raw, arr;
  hk_gc_type_desc rd = {.name = "raw", .flags = HK_GC_TYPE_NO_POINTERS};
  hk_gc_type_desc ad = {.name = "array", .flags = HK_GC_TYPE_TAIL_POINTERS};
  CHECK(hk_gc_type_register(h, &rd, &raw) == HK_OK && hk_gc_type_register(h, &ad, &arr) == HK_OK);
  size_t max = ((size_t)1 << 43) - 2 * HK_GC_GRANULE;
  {
    void *big = NULL;
    HK_GC_ROOTS(m, big);
    big = hk_gc_alloc_data(m, raw, max + 1);
    CHECK(big == NULL);
    big = hk_gc_alloc(m, arr, (size_t)1 << 43);
    CHECK(big == NULL);
    big = hk_gc_alloc_data(m, raw, max);
    if (big) {
      CHECK(hk_gc_object_size(big) == max);
      CHECK(hk_gc_verify(m) == HK_OK);
      big = NULL;
      hk_gc_collect(m, HK_GC_FULL);
    }
  }
  teardown();
}

static void test_collect_args(void) {
  setup();
  hk_gc_stats before, after;
  hk_gc_stats_get(h, &before);
  hk_gc_collect(NULL, HK_GC_FULL);
  hk_gc_collect(m, (hk_gc_kind)7);
  hk_gc_stats_get(h, &after);
  CHECK(after.minor_collections == before.minor_collections && after.full_collections == before.full_collections);
  hk_gc_collect(m, HK_GC_MINOR);
  hk_gc_stats_get(h, &after);
  CHECK(after.minor_collections == before.minor_collections + 1);
  teardown();
}

/* Destroy inside two nested HK_GC_ROOTS blocks. The inner block's pop stored its previous frame
 * into the destroyed heap's mutator record. Segments are cached, so a heap created right after
 * takes the same memory and usually the same record: its new mutator found a dead heap's frame
 * as its innermost one (and under ASan without reuse, the store is a use after free). */
static void test_destroy_in_roots(void) {
  hk_gc_heap *h1, *h2 = NULL;
  hk_gc_mutator *m1, *m2 = NULL;
  CHECK(hk_gc_heap_create(NULL, &h1, &m1) == HK_OK);
  {
    void *a = NULL;
    HK_GC_ROOTS(m1, a);
    {
      void *b = NULL;
      HK_GC_ROOTS(m1, b);
      CHECK(hk_gc_heap_destroy(h1) == HK_OK);
      CHECK(hk_gc_heap_create(NULL, &h2, &m2) == HK_OK);
    }
    if (m2 != m1) fprintf(stderr, "destroy_in_roots: the new mutator is not the old record (%p, %p)\n", (void *)m2, (void *)m1);
    CHECK(hk_gc_frames_save(m2) == NULL);
    void *c = NULL;
    HK_GC_ROOTS(m2, c);
    register_test_types(h2);
    c = new_node(m2, 1, 0, false);
    hk_gc_collect(m2, HK_GC_FULL);
    CHECK(c && ((node *)c)->id == 1);
  }
  CHECK(hk_gc_frames_save(m2) == NULL);
  CHECK(hk_gc_verify(m2) == HK_OK);
  CHECK(hk_gc_heap_destroy(h2) == HK_OK);
}

/* The same with hk_gc_thread_unregister: the record went back to the heap's free list and the next
 * registration took it, so the pending pop wrote a dead frame into a live mutator. */
static void test_unregister_in_roots(void) {
  setup();
  hk_gc_mutator *m1 = m, *m2 = NULL;
  {
    void *a = NULL;
    HK_GC_ROOTS(m1, a);
    {
      void *b = NULL;
      HK_GC_ROOTS(m1, b);
      hk_gc_thread_unregister(m1);
      m2 = hk_gc_thread_register(h);
      CHECK(m2 != NULL);
    }
    if (m2 != m1) fprintf(stderr, "unregister_in_roots: the new mutator is not the old record\n");
    CHECK(hk_gc_frames_save(m2) == NULL);
  }
  CHECK(hk_gc_frames_save(m2) == NULL);
  m = m2;
  teardown();
}

/* A full heap and an OOM callback that asks to retry without releasing anything: it was called
 * for ever (about 4400 calls a second). The callback gives up by itself at its 1000th call, so the
 * old code fails here instead of hanging. A callback that raises the limit a little per call
 * makes progress: it is called as often as it needs. */
static node *held; /* a global root */
static int oom_calls;
static size_t oom_limit;
static int oom_stall(hk_gc_heap *hh, size_t request, void *data) {
  (void)hh, (void)request, (void)data;
  return ++oom_calls < 1000;
}
/* Lowering the limit is no progress: it counted as a change of the limit, so a callback that
 * lowered it by a byte per call was called for ever (about a million calls here). */
static int oom_lower(hk_gc_heap *hh, size_t request, void *data) {
  (void)request, (void)data;
  hk_gc_heap_set_limit(hh, --oom_limit);
  return ++oom_calls < 1000;
}
static int oom_raise(hk_gc_heap *hh, size_t request, void *data) {
  (void)request, (void)data;
  oom_limit += 64u << 10;
  hk_gc_heap_set_limit(hh, oom_limit);
  return ++oom_calls < 1000;
}

static void test_oom_stalled(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = oom_limit = 8u << 20;
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_OK);
  register_test_types(h);
  CHECK(hk_gc_root_add(h, (void **)&held) == HK_OK);
  int n = 0;
  for (node *e; n < 100 && (e = new_node(m, (uint64_t)n, 32 * 1024, false)) != NULL; n++) {
    e->kids[0] = held;
    held = e;
  }
  CHECK(n > 8 && n < 100);
  hk_gc_set_oom_handler(h, oom_stall, NULL);
  oom_calls = 0;
  CHECK(hk_gc_alloc_data(m, T_BLOB, 1u << 20) == NULL); /* a large object */
  fprintf(stderr, "oom_stalled: large request: %d calls\n", oom_calls);
  CHECK(oom_calls >= 16 && oom_calls < 1000);
  /* Small objects, rooted, until the blocks run out. */
  oom_calls = 0;
  for (long i = 0; i < 10000000; i++) {
    node *e = new_node(m, 1, 1, false);
    if (!e) break;
    e->kids[0] = held;
    held = e;
  }
  fprintf(stderr, "oom_stalled: small requests: %d calls\n", oom_calls);
  CHECK(oom_calls >= 16 && oom_calls < 1000);
  hk_gc_set_oom_handler(h, oom_lower, NULL);
  oom_calls = 0;
  CHECK(hk_gc_alloc_data(m, T_BLOB, 1u << 20) == NULL);
  fprintf(stderr, "oom_stalled: lowering the limit: %d calls\n", oom_calls);
  CHECK(oom_calls >= 16 && oom_calls < 1000);
  oom_limit = 8u << 20;
  hk_gc_heap_set_limit(h, oom_limit);
  /* Progress: 2 MiB more in 64 KiB steps. */
  hk_gc_set_oom_handler(h, oom_raise, NULL);
  oom_calls = 0;
  CHECK(hk_gc_alloc_data(m, T_BLOB, 2u << 20) != NULL);
  fprintf(stderr, "oom_stalled: raising the limit: %d calls\n", oom_calls);
  CHECK(oom_calls > 16 && oom_calls < 1000);
  held = NULL;
  CHECK(hk_gc_root_remove(h, (void **)&held) == HK_OK);
  teardown();
}

/* Another thread's mutator unregistered (documented: "an unregister by another thread than the
 * mutator's does not touch its frames"). The record stayed on its owner thread's list of
 * mutators, which that thread's exit walks: the exit read the freed record and locked a NULL heap
 * (SIGSEGV), or, once a third thread's registration had reused the record, silently unregistered
 * that thread's live mutator. Both orders are checked: the worker exits before and after the
 * reuse. */
static int uo_phase; /* 1: worker registered and blocking; 2: worker may exit; 3: reuser may go on */
static hk_gc_mutator *uo_worker_m, *uo_reuser_m;
static void uo_wait(int phase) {
  while (__atomic_load_n(&uo_phase, __ATOMIC_ACQUIRE) < phase) usleep(500);
}
static void *uo_worker(void *arg) {
  (void)arg;
  uo_worker_m = hk_gc_thread_register(h);
  CHECK_QUIET(uo_worker_m != NULL);
  for (int i = 0; i < 1000; i++) (void)new_node(uo_worker_m, (uint64_t)i, 1, false);
  hk_gc_blocking_begin(uo_worker_m); /* idle: the main thread unregisters it meanwhile */
  __atomic_store_n(&uo_phase, 1, __ATOMIC_RELEASE);
  uo_wait(2);
  return NULL; /* exits with no mutator of its own left */
}
static void *uo_reuser(void *arg) {
  (void)arg;
  uo_reuser_m = hk_gc_thread_register(h); /* usually the record the worker had */
  CHECK_QUIET(uo_reuser_m != NULL);
  hk_gc_blocking_begin(uo_reuser_m);
  __atomic_store_n(&uo_phase, 2, __ATOMIC_RELEASE);
  uo_wait(3);
  hk_gc_blocking_end(uo_reuser_m);
  node *keep = NULL;
  HK_GC_ROOTS(uo_reuser_m, keep);
  for (int i = 0; i < 20000; i++) {
    node *n = new_node(uo_reuser_m, (uint64_t)i, 1, false);
    n->kids[0] = i % 100 ? keep : NULL;
    keep = n;
  }
  CHECK_QUIET(keep && keep->id == 19999);
  return NULL;
}

static void test_unregister_other(void) {
  for (int reuse = 0; reuse < 2; reuse++) {
    setup();
    uo_phase = 0;
    pthread_t w, r;
    CHECK(pthread_create(&w, NULL, uo_worker, NULL) == 0);
    uo_wait(1);
    hk_gc_thread_unregister(uo_worker_m);
    hk_gc_stats st;
    hk_gc_stats_get(h, &st);
    CHECK(st.mutators == 1);
    if (reuse) {
      CHECK(pthread_create(&r, NULL, uo_reuser, NULL) == 0);
      uo_wait(2);
      if (uo_reuser_m != uo_worker_m) fprintf(stderr, "unregister_other: the record was not reused\n");
    } else {
      __atomic_store_n(&uo_phase, 2, __ATOMIC_RELEASE);
    }
    hk_gc_blocking_begin(m);
    CHECK(pthread_join(w, NULL) == 0); /* the worker's exit */
    hk_gc_blocking_end(m);
    hk_gc_stats_get(h, &st);
    CHECK(st.mutators == (reuse ? 2u : 1u)); /* the reuser's mutator is still registered */
    if (reuse) {
      __atomic_store_n(&uo_phase, 3, __ATOMIC_RELEASE);
      hk_gc_blocking_begin(m);
      CHECK(pthread_join(r, NULL) == 0); /* exits registered: unregistered then, with a warning */
      hk_gc_blocking_end(m);
    }
    hk_gc_collect(m, HK_GC_FULL);
    teardown();
  }
}

/* The OOM callback runs in the middle of an allocation's slow path, which goes on with the
 * mutator and the heap when it returns: unregistering that mutator or destroying the heap from it
 * is refused (with a warning), as from a finalizer. */
static int ou_calls, ou_destroy_rc;
static int oom_unregister(hk_gc_heap *hh, size_t request, void *data) {
  (void)request, (void)data;
  ou_calls++;
  hk_gc_thread_unregister(m); /* ignored */
  ou_destroy_rc = hk_gc_heap_destroy(hh); /* HK_EBUSY */
  return 0;
}

static void test_oom_unregister(void) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = 2u << 20;
  o.oom = oom_unregister;
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_OK);
  register_test_types(h);
  held = NULL;
  CHECK(hk_gc_root_add(h, (void **)&held) == HK_OK);
  bool failed = false;
  for (int i = 0; i < 1000000 && !failed; i++) {
    node *e = new_node(m, (uint64_t)i, 1, false);
    if (!e) failed = true;
    else {
      e->kids[0] = held;
      held = e;
    }
  }
  CHECK(failed && ou_calls == 1);
  CHECK(ou_destroy_rc == HK_EBUSY);
  hk_gc_stats st;
  hk_gc_stats_get(h, &st);
  CHECK(st.mutators == 1);
  CHECK(held && held->kids[0] && held->kids[0]->id + 1 == held->id);
  held = NULL;
  CHECK(hk_gc_root_remove(h, (void **)&held) == HK_OK);
  hk_gc_collect(m, HK_GC_FULL);
  CHECK(new_node(m, 1, 1, false) != NULL); /* the heap works on */
  teardown();
}

/* Two heaps, a handle of heap 1 freed with heap 2's mutator: the handle was unlinked through heap
 * 2's list head and its record put on heap 2's free list, so heap 1's list kept the freed record
 * and heap 2's next handle reused it: the collections of heap 1 then walked a cycle for ever. The
 * free is refused with a warning now, and the handle stays valid. (An alarm ends the old code's
 * endless loop: the test fails instead of hanging.) */
static void alarm_fail(int sig) {
  (void)sig;
  static const char msg[] = "weak_free_foreign: a collection did not finish in 30 s\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(1);
}

static void test_weak_free_foreign(void) {
  hk_gc_heap *h1, *h2;
  hk_gc_mutator *m1, *m2;
  CHECK(hk_gc_heap_create(NULL, &h1, &m1) == HK_OK);
  CHECK(hk_gc_heap_create(NULL, &h2, &m2) == HK_OK);
  register_test_types(h1);
  register_test_types(h2);
  signal(SIGALRM, alarm_fail);
  alarm(30);
  {
    node *a = NULL, *b = NULL;
    HK_GC_ROOTS(m1, a);
    HK_GC_ROOTS(m2, b);
    a = new_node(m1, 1, 0, false);
    b = new_node(m2, 2, 0, false);
    hk_gc_weak *w1 = hk_gc_weak_new(m1, a), *w2 = hk_gc_weak_new(m2, b);
    CHECK(w1 && w2);
    hk_gc_weak_free(m2, w1); /* the wrong heap's mutator: refused */
    hk_gc_weak *w3 = hk_gc_weak_new(m2, b); /* (took w1's record on the old code) */
    CHECK(w3 != w1);
    hk_gc_collect(m1, HK_GC_FULL);
    hk_gc_collect(m2, HK_GC_FULL);
    CHECK(hk_gc_weak_get(w1) == a && hk_gc_weak_get(w2) == b && hk_gc_weak_get(w3) == b);
    CHECK(hk_gc_verify(m1) == HK_OK && hk_gc_verify(m2) == HK_OK);
    a = b = NULL;
    hk_gc_collect(m1, HK_GC_FULL);
    hk_gc_collect(m2, HK_GC_FULL);
    CHECK(hk_gc_weak_get(w1) == NULL && hk_gc_weak_get(w2) == NULL && hk_gc_weak_get(w3) == NULL);
    hk_gc_weak_free(m1, w1);
    hk_gc_weak_free(m2, w2);
    hk_gc_weak_free(m2, w3);
    hk_gc_stats st;
    hk_gc_collect(m1, HK_GC_FULL);
    hk_gc_collect(m2, HK_GC_FULL);
    hk_gc_stats_get(h1, &st);
    CHECK(st.weak_cleared == 1);
    hk_gc_stats_get(h2, &st);
    CHECK(st.weak_cleared == 2);
  }
  alarm(0);
  CHECK(hk_gc_heap_destroy(h1) == HK_OK);
  CHECK(hk_gc_heap_destroy(h2) == HK_OK);
}

/* hk_gc_weak_free checked only that the pointer lies in the heap's metadata segments, which also
 * hold its mutators, global roots and finalizer chunks: such a record was unlinked as a handle.
 * A mutator's buffer pointers were taken for list links (SIGSEGV in the free); a freed handle
 * whose record a global root had reused (both 32-byte records) was unlinked again, its root's
 * link taken for the handle's next, and the heap's weak list then began with the root record
 * (each of the two crashed the old code with SIGSEGV, alone). Both are refused with a warning now. */
static void test_weak_free_other_record(void) {
  setup();
  signal(SIGALRM, alarm_fail);
  alarm(30);
  {
    node *a = NULL, *g = NULL;
    HK_GC_ROOTS(m, a);
    a = new_node(m, 1, 0, false);
    hk_gc_weak *keep = hk_gc_weak_new(m, a);
    hk_gc_weak_free(m, (hk_gc_weak *)m); /* the mutator record: refused */
    hk_gc_weak *gone = hk_gc_weak_new(m, a);
    CHECK(keep && gone);
    hk_gc_weak_free(m, gone);
    CHECK(hk_gc_root_add(h, (void **)&g) == HK_OK); /* takes gone's record */
    hk_gc_weak_free(m, gone);                         /* stale: refused */
    g = new_node(m, 2, 0, false);
    hk_gc_collect(m, HK_GC_FULL);
    CHECK(hk_gc_weak_get(keep) == a && g && g->id == 2);
    CHECK(hk_gc_verify(m) == HK_OK);
    a = NULL;
    hk_gc_collect(m, HK_GC_FULL);
    CHECK(hk_gc_weak_get(keep) == NULL);
    CHECK(g->id == 2);
    hk_gc_stats st;
    hk_gc_stats_get(h, &st);
    CHECK(st.weak_cleared == 1);
    hk_gc_weak_free(m, keep);
    CHECK(hk_gc_root_remove(h, (void **)&g) == HK_OK);
  }
  alarm(0);
  teardown();
}

/* A mutator in a blocking region counts as stopped, so its calls into the collector are refused
 * (docs/gc.md, Errors). Single-threaded first: each refused call leaves the heap as it was. Then
 * two threads, each case in a child (the old code crashed): a worker builds and checks lists
 * while the main thread, in a blocking region, collects and allocates (bm_collect); the main
 * thread polls safepoints in a blocking region while another thread collects (bm_poll). */
static void bm_fin(hk_gc_mutator *mm, void *obj, void *data) {
  (void)mm, (void)obj;
  ++*(int *)data;
}

static volatile int bm_stop;
static int bm_bad;
static void *bm_worker(void *arg) {
  hk_gc_mutator *wm = hk_gc_thread_register((hk_gc_heap *)arg);
  while (!__atomic_load_n(&bm_stop, __ATOMIC_RELAXED)) {
    node *list = NULL;
    HK_GC_ROOTS(wm, list);
    for (uint64_t i = 0; i < 20000; i++) {
      node *n = new_node(wm, i, 1, false);
      n->kids[0] = list;
      list = n;
    }
    uint64_t i = 20000;
    for (node *n = list; n; n = n->kids[0])
      if (n->id != --i) bm_bad++;
    if (i != 0) bm_bad++;
  }
  hk_gc_thread_unregister(wm);
  return NULL;
}

static void bm_collect(void) {
  setup();
  pthread_t t;
  pthread_create(&t, NULL, bm_worker, h);
  hk_gc_blocking_begin(m);
  int got = 0;
  for (int i = 0; i < 300; i++) {
    hk_gc_collect(m, i % 2 ? HK_GC_FULL : HK_GC_MINOR);
    if (i % 10 == 0) got += new_node(m, (uint64_t)i, 1, false) != NULL; /* (a warning each: not many) */
  }
  __atomic_store_n(&bm_stop, 1, __ATOMIC_RELAXED);
  pthread_join(t, NULL);
  hk_gc_blocking_end(m);
  _exit(bm_bad || got || hk_gc_verify(m) != HK_OK ? 2 : 0);
}

/* A collection waits for the running threads with the heap lock let go and the stop flag up:
 * a third thread, registered and running, that polls only every half millisecond, keeps that
 * window open long enough for the main thread's polls to see it at every collection. */
static volatile int bm_done;
static void *bm_collector(void *arg) {
  hk_gc_mutator *wm = hk_gc_thread_register((hk_gc_heap *)arg);
  for (int i = 0; i < 20; i++) {
    if (!new_node(wm, (uint64_t)i, 0, false)) _exit(3);
    hk_gc_collect(wm, HK_GC_FULL);
  }
  hk_gc_thread_unregister(wm);
  __atomic_store_n(&bm_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static void *bm_sleeper(void *arg) {
  hk_gc_mutator *sm = hk_gc_thread_register((hk_gc_heap *)arg);
  while (!__atomic_load_n(&bm_done, __ATOMIC_ACQUIRE)) {
    usleep(500);
    hk_gc_safepoint(sm);
  }
  hk_gc_thread_unregister(sm);
  return NULL;
}

static void bm_poll(void) {
  alarm(60); /* (the old code could hang here: the counts went wrong) */
  setup();
  pthread_t t, u;
  hk_gc_blocking_begin(m);
  pthread_create(&u, NULL, bm_sleeper, h);
  pthread_create(&t, NULL, bm_collector, h);
  while (!__atomic_load_n(&bm_done, __ATOMIC_ACQUIRE)) hk_gc_safepoint(m);
  pthread_join(t, NULL);
  pthread_join(u, NULL);
  hk_gc_blocking_end(m); /* (refused on the old code: a poll had parked it) */
  _exit(hk_gc_verify(m) != HK_OK ? 2 : 0);
}

static void test_blocking_misuse(void) {
  setup();
  {
    node *a = NULL;
    HK_GC_ROOTS(m, a);
    a = new_node(m, 7, 1, false);
    int ran = 0;
    hk_gc_stats before, after;
    hk_gc_stats_get(h, &before);
    hk_gc_blocking_begin(m);
    CHECK(new_node(m, 1, 0, false) == NULL);
    CHECK(hk_gc_alloc_data(m, T_BLOB, 40000) == NULL);
    CHECK(hk_gc_set_finalizer(m, a, bm_fin, &ran) == HK_EBUSY);
    CHECK(hk_gc_weak_new(m, a) == NULL);
    CHECK(hk_gc_verify(m) == HK_EBUSY);
    CHECK(hk_gc_run_finalizers(m) == 0);
    hk_gc_collect(m, HK_GC_FULL);
    hk_gc_pin(m, a);
    for (int i = 0; i < 1000; i++) hk_gc_safepoint(m);
    hk_gc_blocking_end(m);
    hk_gc_stats_get(h, &after);
    CHECK(after.full_collections == before.full_collections && after.minor_collections == before.minor_collections);
    CHECK(!hk_gc_is_pinned(a));
    CHECK(after.bytes_allocated == before.bytes_allocated);
    /* the mutator runs on as before */
    node *b = new_node(m, 8, 1, false);
    CHECK(b != NULL);
    if (b) b->kids[0] = a;
    a = b;
    CHECK(hk_gc_set_finalizer(m, a, bm_fin, &ran) == HK_OK);
    hk_gc_collect(m, HK_GC_FULL);
    CHECK(a->id == 8 && a->kids[0]->id == 7);
    a = NULL;
    hk_gc_collect(m, HK_GC_FULL);
    CHECK(ran == 1);
  }
  teardown();
  static char out[1 << 17];
  int st = check_child_run(bm_collect, out, sizeof out);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK(strstr(out, "hk_gc_collect: mutator ") && strstr(out, "is in a blocking region"));
  if (!WIFEXITED(st) || WEXITSTATUS(st)) fprintf(stderr, "bm_collect: status 0x%x\n", st);
  st = check_child_run(bm_poll, out, sizeof out);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK(!strstr(out, "not in a blocking region"));
  if (!WIFEXITED(st) || WEXITSTATUS(st) || out[0]) fprintf(stderr, "bm_poll: status 0x%x, %s\n", st, out);
}

/* A mutator in a blocking region may read its buffer's cursor and limit (an allocation there, the
 * misuse refused above) while another thread's collection closes the buffers: both reads are
 * plain loads, so any mix of the values before and after the close must leave no room. Before,
 * the close set both to NULL after blocking_begin had set them equal (X, X): the old cursor
 * with the new limit, (X, NULL), gave 2^64 - X bytes of room. Now the close leaves the pair as
 * blocking_begin left it; blocking_end clears it. Checked for both buffers, then: the mutator
 * allocates again after the region, the bytes allocated are counted once, verify passes. */
static void *bc_collect(void *arg) {
  hk_gc_mutator *w = hk_gc_thread_register((hk_gc_heap *)arg);
  if (!w) return NULL;
  hk_gc_collect(w, HK_GC_MINOR);
  hk_gc_collect(w, HK_GC_FULL);
  hk_gc_thread_unregister(w);
  return (void *)1;
}

static bool no_room(const char *c0, const char *l0, const char *c1, const char *l1) {
  const char *cs[2] = {c0, c1}, *ls[2] = {l0, l1};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++)
      if ((size_t)(ls[j] - cs[i]) >= 2 * HK_GC_GRANULE) return false; /* (the smallest object) */
  return true;
}

static void test_blocking_close(void) {
  setup();
  CHECK(new_node(m, 1, 1, false) && new_blob(m, 2, 8)); /* (both buffers open) */
  hk_gc_stats before, after;
  hk_gc_stats_get(h, &before);
  const hk_gc_mutator_fast *f = (const hk_gc_mutator_fast *)m;
  hk_gc_blocking_begin(m);
  hk_gc_mutator_fast in = *f;
  CHECK(in.cursor && in.data_cursor);
  pthread_t t;
  void *ok = NULL;
  CHECK(pthread_create(&t, NULL, bc_collect, h) == 0);
  pthread_join(t, &ok);
  CHECK(ok != NULL);
  hk_gc_mutator_fast closed = *f;
  hk_gc_stats_get(h, &after); /* (counts this thread's open buffers: none may be counted now) */
  hk_gc_blocking_end(m);
  CHECK(no_room(in.cursor, in.limit, closed.cursor, closed.limit));
  CHECK(no_room(in.data_cursor, in.data_limit, closed.data_cursor, closed.data_limit));
  /* (nothing was allocated meanwhile: a buffer counted as cursor - NULL would add about 2^47) */
  CHECK(after.bytes_allocated - before.bytes_allocated < 4096);
  node *n = new_node(m, 3, 1, false);
  blob *b = new_blob(m, 4, 8);
  CHECK(n && b && n->id == 3 && blob_ok(b));
  teardown();
}

static hk_gc_mutator *exiting_mutator;
static void *register_and_exit(void *arg) {
  exiting_mutator = hk_gc_thread_register((hk_gc_heap *)arg);
  return NULL; /* (its exit unregisters it: the first record on the free list) */
}

static void test_unregistered_use(void) {
  setup();
  pthread_t t;
  CHECK(pthread_create(&t, NULL, register_and_exit, h) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(exiting_mutator != NULL);
  hk_gc_thread_unregister(m); /* its record's first word now links to exiting_mutator's */
  CHECK(hk_gc_alloc(m, T_NODE, sizeof(node)) == NULL);
  CHECK(hk_gc_alloc(m, T_NODE, 4 * HK_GC_LARGE_THRESHOLD) == NULL);
  CHECK(hk_gc_alloc_data(m, T_BLOB, 64) == NULL);
  hk_gc_blocking_begin(m);
  hk_gc_blocking_end(m);
  hk_gc_blocking_begin(NULL);
  hk_gc_blocking_end(NULL);
  hk_gc_safepoint(m);
  hk_gc_collect(m, HK_GC_FULL);
  CHECK(hk_gc_verify(m) == HK_EINVAL);
  CHECK(hk_gc_weak_new(m, NULL) == NULL);
  CHECK(hk_gc_run_finalizers(m) == 0);
  CHECK(hk_gc_mutator_heap(m) == NULL);
  /* The heap is intact: two registrations take the two freed records, in order. */
  hk_gc_mutator *m1 = hk_gc_thread_register(h);
  CHECK(m1 == m);
  hk_gc_thread_unregister(m1);
  m1 = hk_gc_thread_register(h);
  hk_gc_mutator *m2 = NULL;
  CHECK(pthread_create(&t, NULL, register_and_exit, h) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  m2 = exiting_mutator;
  CHECK(m1 != NULL && m2 != NULL && m2 != m1);
  m = m1;
  {
    node *a = NULL;
    HK_GC_ROOTS(m, a);
    for (int i = 0; i < 20000; i++) a = new_node(m, (uint64_t)i, 0, false);
    hk_gc_collect(m, HK_GC_FULL);
    CHECK(a && a->id == 19999);
  }
  teardown();
}

static void test_destroyed_use(void) {
  setup();
  CHECK(new_node(m, 1, 0, false) != NULL); /* a nursery buffer is open */
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
  /* The record is in the destroyed heap's metadata: still mapped here (the page layer caches
   * freed segments), and nothing reused it. */
  CHECK(hk_gc_alloc(m, T_NODE, sizeof(node)) == NULL);
  CHECK(hk_gc_alloc_data(m, T_BLOB, 64) == NULL);
  hk_gc_safepoint(m);
}

static void test_beyond_memory(void) {
  size_t mem = check_memory_to_exceed("beyond_memory", (size_t)1 << 42);
  if (!mem) return;
  setup();
  CHECK(hk_gc_alloc_data(m, T_BLOB, mem * 2) == NULL);
  CHECK(hk_gc_alloc(m, T_NODE, mem * 2) == NULL);
  blob *b = hk_gc_alloc_data(m, T_BLOB, sizeof(blob) + (64 << 20)); /* one the machine can back */
  CHECK(b != NULL);
  if (b) {
    b->len = 64 << 20;
    memset(b->bytes, 1, 64 << 20);
  }
  teardown();
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = !strcmp(what, "all");
  if (all || !strcmp(what, "objsize")) test_objsize();
  if (all || !strcmp(what, "collect_args")) test_collect_args();
  if (all || !strcmp(what, "destroy_in_roots")) test_destroy_in_roots();
  if (all || !strcmp(what, "unregister_in_roots")) test_unregister_in_roots();
  if (all || !strcmp(what, "oom_stalled")) test_oom_stalled();
  if (all || !strcmp(what, "unregister_other")) test_unregister_other();
  if (all || !strcmp(what, "oom_unregister")) test_oom_unregister();
  if (all || !strcmp(what, "weak_free_foreign")) test_weak_free_foreign();
  if (all || !strcmp(what, "weak_free_other_record")) test_weak_free_other_record();
  if (all || !strcmp(what, "unregistered_use")) test_unregistered_use();
  if (all || !strcmp(what, "destroyed_use")) test_destroyed_use();
  if (all || !strcmp(what, "beyond_memory")) test_beyond_memory();
  if (all || !strcmp(what, "blocking_misuse")) test_blocking_misuse();
  if (all || !strcmp(what, "blocking_close")) test_blocking_close();
  return check_report("test_gc_review");
}
