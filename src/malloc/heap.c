/* Heaps and threads: process and thread initialisation, thread exit (abandoning segments),
 * first-class heaps, periodic maintenance, fork handling. */
#include "malloc/malloc.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

hk_heap hk__heap_empty = {
    .direct = {[0 ... HK_DIRECT_SLOTS - 1] = &hk__page_empty},
    .seg_hint = {[0 ... HK__SEG_HINTS - 1] = HK__NO_SEG},
    .thread_id = 1, /* no segment ever has thread id 1, so the fast free path never matches it */
    .is_default = true,
};
/* Defined here rather than next to malloc: in the file that defines it, gcc addresses it as
 * %fs:0 plus an offset, which cost malloc's fast path a saved register (push/pop rbx). */
__thread hk_heap *hk__tls_heap = &hk__heap_empty;

/* What a thread's heap pointer becomes once its record is gone (thread exit): like hk__heap_empty,
 * but a remote free through it must not create a new record. */
hk_heap hk__heap_done = {
    .direct = {[0 ... HK_DIRECT_SLOTS - 1] = &hk__page_empty},
    .seg_hint = {[0 ... HK__SEG_HINTS - 1] = HK__NO_SEG},
    .thread_id = 1,
    .is_default = true,
};

typedef struct thread_rec {
  hk__tld tld;
  hk_heap heap;
} thread_rec;
_Static_assert(sizeof(thread_rec) <= 4096, "thread record must fit a meta slot");

static hk__tkey thread_key; /* unloaded with a plugin that links this copy (plugin_unload) */
static void key_set(void *value) { (void)hk__tkey_set(&thread_key, value); }
static _Atomic int process_state; /* 0 none, 1 initialising, 2 ready */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static hk__tld *live_first;

static void thread_done(void *arg);

void hk__process_init(void) {
  if (hk_likely(atomic_load_explicit(&process_state, memory_order_acquire) == 2)) return;
  int expected = 0;
  if (atomic_compare_exchange_strong(&process_state, &expected, 1)) {
    hk__options_init();
    hk__page_init();
    if (hk__tkey_create(&thread_key, thread_done) != 0) hk__fatal("cannot create the thread-exit key");
    atomic_store_explicit(&process_state, 2, memory_order_release);
  } else {
    while (atomic_load_explicit(&process_state, memory_order_acquire) != 2) {}
  }
}

void hk__heap_init(hk_heap *h, hk__tld *tld) {
  hk_assert(hk__bin_of(HK_DIRECT_MAX) == HK__HOT_FIRST_BIN - 1 && hk__bin_of(HK_DIRECT_MAX + 1) == HK__HOT_FIRST_BIN);
  for (size_t i = 0; i < HK_DIRECT_SLOTS; i++) h->direct[i] = &hk__page_empty;
  for (size_t i = 1; i <= HK_BIN_MAX; i++) h->queues[i].block_size = hk__bin_size(i);
  h->tld = tld;
  h->thread_id = tld->thread_id;
  h->magic = HK__HEAP_MAGIC;
  hk__seg_hints_clear(h);
}

static void live_add(hk__tld *tld) {
  hk__glock(&live_lock);
  tld->prev_live = NULL;
  tld->next_live = live_first;
  if (live_first) live_first->prev_live = tld;
  live_first = tld;
  hk__gunlock(&live_lock);
}

static void live_remove(hk__tld *tld) {
  hk__glock(&live_lock);
  if (tld->prev_live) tld->prev_live->next_live = tld->next_live;
  else live_first = tld->next_live;
  if (tld->next_live) tld->next_live->prev_live = tld->prev_live;
  hk__gunlock(&live_lock);
}

void hk__tld_foreach(void (*fn)(hk__tld *, void *), void *arg) {
  hk__glock(&live_lock);
  for (hk__tld *t = live_first; t; t = t->next_live) fn(t, arg);
  hk__gunlock(&live_lock);
}

/* The record that holds the first-class heaps made after the thread's exit (hk_heap_new from a
 * later key destructor), NULL otherwise. */
static __thread thread_rec *late_heaps_rec;

static thread_rec *record_new(void) {
  hk__process_init();
  thread_rec *r = hk__meta_alloc(sizeof *r);
  if (!r) return NULL;
  hk__tld *tld = &r->tld;
  tld->thread_id = hk__thread_id();
  tld->rbuf = &hk__rbuf_none;
  tld->purge.next_due = INT64_MAX;
  tld->now = hk__clock_ms();
  hk__heap_init(&r->heap, tld);
  r->heap.is_default = true;
  tld->heap_default = &r->heap;
  tld->heaps = &r->heap;
  hk__tls_heap = &r->heap;
  return r;
}

hk_heap *hk__heap_get(void) {
  hk_heap *h = hk__tls_heap;
  if (hk_likely(h->tld != NULL)) return h;
  thread_rec *r = record_new();
  if (!r) return NULL;
  /* after the TLS pointer is set: if pthread_setspecific allocates, it finds a working heap. (After
   * the thread's exit, from a later key destructor, this makes glibc run the destructors another
   * round if one is left: the malloc family does not come here then, see hk__heap_late_begin.) */
  key_set(r);
  live_add(&r->tld);
  return &r->heap;
}

/* Thread exit: give every page back or leave it for adoption, abandon the segments. */
static void thread_done(void *arg) {
  thread_rec *r = arg;
  hk__tld *tld = &r->tld;
  tld->now = hk__clock_ms();
  hk__rbuf_flush(tld);
  for (hk_heap *h = tld->heaps, *next; h; h = next) {
    next = h->next;
    hk__heap_release_pages(h, NULL);
    if (h != &r->heap) {
      /* blocks of a first-class heap outlive its thread; its large blocks just stop being tracked */
      hk__heap_disown_large_blocks(h);
      hk__stats_flush_heap(h);
      h->magic = 0;
      hk__meta_free(h);
    }
  }
  hk__tld_abandon_segments(tld);
  hk__rbuf_release(tld);
  live_remove(tld);
  hk__stats_flush(tld);
  hk__stats_sample_peak(tld->now);
  hk__tld_large_release(tld, false); /* (in case a large block was freed since the segments went) */
  r->heap.magic = 0;
  hk__tls_heap = &hk__heap_done;
  if (late_heaps_rec == r) late_heaps_rec = NULL;
  hk__meta_free(r);
}

/* A malloc after the thread's exit destructor ran (from another key's destructor, in the same
 * round or a later one) gets a record for that call alone, without the key: thread_done gives it
 * up as soon as the block is taken (hk__heap_late_end), so its segments are abandoned like any
 * exited thread's and other threads adopt them and free the block. Setting the key instead would
 * have glibc call thread_done in the next round, but there is none after the last
 * (PTHREAD_DESTRUCTOR_ITERATIONS): that record and its segments stayed for ever. */
hk_heap *hk__heap_late_begin(void) {
  thread_rec *r = record_new();
  if (!r) return NULL;
  live_add(&r->tld);
  return &r->heap;
}

void hk__heap_late_end(hk_heap *h) { thread_done((char *)h - offsetof(thread_rec, heap)); }

void hk__tld_periodic(hk__tld *tld) {
  if ((++tld->slow_calls & 7) != 0) return;
  int64_t now = hk__clock_ms();
  if (now == tld->now) return;
  tld->now = now;
  if (tld->large_kept && now - tld->large_kept_at >= hk__opt(HK_OPT_PURGE_DELAY)) hk__tld_large_release(tld, true);
  hk__rbuf_flush(tld);
  hk__purge_queue_run(&tld->purge, now, false);
  hk__tld_trim_tails(tld, now);
  hk__page_collect(now, false);
  hk__stats_flush(tld);
  hk__stats_sample_peak(now);
  if (hk__abandoned_count() > 0) hk__tld_sweep_abandoned(tld);
}

/* ---- first-class heaps ---------------------------------------------------------------------------- */

/* hk_heap_new after the thread's exit (from a later key destructor): the heap needs a record that
 * outlives the call, but a record whose key is set in glibc's last destructor round was never
 * given back. So the record holds only first-class heaps (the thread's malloc and
 * hk_heap_get_default keep the late path, hk__heap_done) and is given up when its last heap is
 * destroyed or deleted (heap_gone); the key is set as well, so that a heap left alive is
 * released at the next round as any thread's heaps are at its exit, when there is one. */
static hk_heap *late_heaps_default(void) {
  if (late_heaps_rec) return &late_heaps_rec->heap;
  hk_heap *def = hk__heap_late_begin();
  if (!def) return NULL;
  late_heaps_rec = (thread_rec *)((char *)def - offsetof(thread_rec, heap));
  hk__tls_heap = &hk__heap_done;
  key_set(late_heaps_rec);
  return def;
}

/* A first-class heap was destroyed or deleted: the last one of a late record gives it up. */
static void heap_gone(hk__tld *tld) {
  thread_rec *r = late_heaps_rec;
  if (!r || tld != &r->tld || tld->heaps != &r->heap || r->heap.next) return;
  key_set(NULL);
  hk__heap_late_end(&r->heap);
}

hk_heap *hk_heap_new(void) {
  hk_heap *def = hk__tls_heap == &hk__heap_done ? late_heaps_default() : hk__heap_get();
  if (!def) return NULL;
  hk_heap *h = hk__meta_alloc(sizeof *h);
  if (!h) { errno = ENOMEM; return NULL; }
  hk__heap_init(h, def->tld);
  h->next = def->tld->heaps;
  def->tld->heaps = h;
  return h;
}

static void heap_unlink(hk_heap *h) {
  for (hk_heap **pp = &h->tld->heaps; *pp; pp = &(*pp)->next)
    if (*pp == h) { *pp = h->next; break; }
}

static void check_owner(hk_heap *h, const char *who) {
  if (h == NULL) hk__fatal("%s: NULL heap", who);
  if (h == &hk__heap_done && hk__tls_heap == h) return; /* the default heap after exit: refused below */
  if (h->magic != HK__HEAP_MAGIC) hk__fatal("%s: %p is not a live heap (destroyed or deleted, or its thread has exited?)", who, (void *)h);
  if (h->thread_id != hk__thread_id()) hk__fatal("%s: heap %p belongs to another thread", who, (void *)h);
}

/* The end of destroy and delete, once the heap holds no pages or large blocks of its own. */
static void heap_retire(hk_heap *h) {
  hk__stats_flush_heap(h);
  heap_unlink(h);
  h->magic = 0;
  hk__tld *tld = h->tld;
  hk__meta_free(h);
  heap_gone(tld);
}

void hk_heap_destroy(hk_heap *h) {
  check_owner(h, "hk_heap_destroy");
  if (h->is_default) hk__fatal("hk_heap_destroy: cannot destroy a thread's default heap");
  h->destroying = true;
  hk__heap_release_pages(h, NULL);
  hk__heap_free_large_blocks(h);
  heap_retire(h);
}

void hk_heap_delete(hk_heap *h) {
  check_owner(h, "hk_heap_delete");
  if (h->is_default) hk__fatal("hk_heap_delete: cannot delete a thread's default heap");
  hk__heap_release_pages(h, h->tld->heap_default);
  hk__heap_disown_large_blocks(h);
  heap_retire(h);
}

/* After the thread's exit (a later key destructor) the handle is hk__heap_done, whose calls take
 * the late path as malloc does (hk__malloc_late): a record set up here, with the key, was never
 * given back when made in glibc's last destructor round. */
hk_heap *hk_heap_get_default(void) { return hk__tls_heap == &hk__heap_done ? &hk__heap_done : hk__heap_get(); }

bool hk_heap_contains(const hk_heap *h, const void *p) {
  if (!h || !hk_owns(p)) return false;
  /* The segment as hk_owns found it: past the first 4 MiB of a large block, p rounded down to 4 MiB
   * lies inside the block (its data read as a segment header: SIGSEGV; malloc.api.contains_large). */
  hk__mseg *seg = (hk__mseg *)hk__segment_find(p);
  if (seg->base.kind == HK__SEG_LARGE) return seg->base.owner == h || (h->is_default && seg->base.owner == NULL);
  hk__page *pg = hk__page_of(seg, p);
  hk_heap *ph = atomic_load_explicit(&pg->heap, memory_order_relaxed);
  if (ph == h) return true;
  /* The default heaps are one family, as for large blocks above: a thread's malloc may return a
   * block of another thread's page (the foreign-block cache, rfree.c), and an exited thread's
   * pages pass to whichever thread adopts them. First-class heaps stay exact. */
  return h->is_default && (ph == NULL || ph->is_default);
}

void hk_collect(bool force) {
  hk_heap *h = hk__tls_heap;
  int64_t now = hk__clock_ms();
  if (h->tld) {
    hk__tld *tld = h->tld;
    tld->now = now;
    hk__tld_large_release(tld, force);
    hk__rbuf_flush(tld);
    for (hk_heap *x = tld->heaps; x; x = x->next) {
      if (atomic_load_explicit(&x->delayed_free, memory_order_relaxed)) hk__heap_drain_delayed(x);
    }
    hk__purge_queue_run(&tld->purge, now, force);
    hk__stats_flush(tld);
    while (force && hk__tld_adopt_one(tld, -1)) {}
  }
  hk__page_collect(now, force);
}

/* ---- fork ---------------------------------------------------------------------------------------------- */

/* The calling thread's buffered remote frees go to their pages first, so the child starts without
 * any (the other threads' buffers are lost with those threads in the child, as their caches are). */
_Atomic int hk__fork_parent_pid;

static void fork_prepare(void) {
  atomic_store_explicit(&hk__fork_parent_pid, (int)getpid(), memory_order_relaxed);
  hk_heap *h = hk__tls_heap;
  if (h->tld) hk__rbuf_flush(h->tld);
  hk__meta_fork_prepare();
  hk__mseg_fork_prepare();
  pthread_mutex_lock(&live_lock);
  hk__page_fork_prepare();
  /* the handlers registered before ours run next, and may allocate: internal.h, hk__fork_holder */
  atomic_store_explicit(&hk__fork_holder, (uintptr_t)__builtin_thread_pointer(), memory_order_relaxed);
}
static void fork_parent(void) {
  atomic_store_explicit(&hk__fork_holder, 0, memory_order_relaxed);
  hk__page_fork_parent();
  pthread_mutex_unlock(&live_lock);
  hk__mseg_fork_parent();
  hk__meta_fork_parent();
}
/* A thread of the parent may have been handing a block to one of our full pages (state DELAYING)
 * when we forked; it does not exist in the child, so nobody would ever clear that state and the
 * owner would wait for it forever. Clear it (at worst one block of the parent's hand-off leaks). */
static void clear_stale_delaying(void) {
  hk_heap *def = hk__tls_heap;
  if (def->tld == NULL) return;
  for (hk_heap *h = def->tld->heaps; h; h = h->next)
    for (size_t i = 1; i <= HK_BIN_FULL; i++)
      for (hk__page *pg = h->queues[i].first; pg; pg = pg->next) {
        uintptr_t tf = atomic_load_explicit(&pg->xthread_free, memory_order_relaxed);
        if ((tf & HK__DELAY_MASK) == HK__DELAYING)
          atomic_store_explicit(&pg->xthread_free, (tf & ~HK__DELAY_MASK) | HK__NO_DELAY, memory_order_relaxed);
      }
}

/* The parent's other threads do not exist in the child, but a thread the child starts may get one
 * of their thread pointers (glibc reuses the stacks fork left behind), which is the thread id: it
 * then took the dead thread's segments for its own, freeing into their pages as their owner and
 * keeping hints to segments that the dead thread's structures gave back and another thread took
 * (a local free into that thread's page). Their segments get id 0, as an exited thread's, so
 * frees into them are remote ones; they are not adopted (their thread may have been halfway
 * through changing them), and the dead threads' heaps accept no call. */
static void disown_dead_threads(void) {
  hk__tld *self = hk__tls_heap->tld;
  for (hk__tld *t = live_first; t; t = t->next_live) {
    if (t == self) continue;
    for (int k = 0; k < 2; k++)
      for (int full = 0; full < 2; full++)
        for (hk__mseg *seg = full ? t->full_segs[k].first : t->free_segs[k].first; seg; seg = (hk__mseg *)seg->base.next)
          atomic_store_explicit(&seg->base.thread_id, 0, memory_order_relaxed);
    for (hk_heap *h = t->heaps; h; h = h->next) h->thread_id = 0;
    t->thread_id = 0;
    hk__tld_large_release(t, false);
  }
  /* The dead threads leave the live list, which is the statistics' list of threads (the child
   * counted the parent's threads for ever): their pending counters go to the globals first, so
   * what their blocks hold stays counted. Their records stay (their pages point to their heaps). */
  for (hk__tld *t = live_first; t; t = t->next_live)
    if (t != self)
      for (hk_heap *h = t->heaps; h; h = h->next) hk__stats_flush_heap(h);
  live_first = self;
  if (self) self->prev_live = self->next_live = NULL;
}

static void fork_child(void) {
  atomic_store_explicit(&hk__fork_holder, 0, memory_order_relaxed);
  hk__page_fork_child(); /* first: the dead threads' kept large segments go to the cache */
  clear_stale_delaying();
  disown_dead_threads();
  pthread_mutex_init(&live_lock, NULL);
  hk__mseg_fork_child();
  hk__meta_fork_child();
}

/* pthread_atfork is not in libc.so but in glibc's libc_nonshared.a, whose members the linker puts
 * after every object, at the very end of .text: its one call at load faulted in the last 64 KiB
 * window of the library's code (docs/architecture.md, "Start-up footprint"). It only forwards to
 * libc's exported __register_atfork with the caller's DSO handle: so does this, with the handle
 * (crtbegin's __dso_handle, data), since dlclose drops the handlers registered with it. The shared
 * library is never unloaded (-z nodelete), but the static one may be linked into a plugin: with no
 * handle, a fork after the plugin's dlclose called its unmapped prepare handler
 * (malloc.atfork_dlclose: SIGSEGV). */
#if defined(__GLIBC__)
#if !HK_UNLOADABLE
extern void *__dso_handle __attribute__((weak, visibility("hidden")));
#endif
extern int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso);
#define hk__atfork(p, pa, c) __register_atfork(p, pa, c, &__dso_handle == NULL ? NULL : __dso_handle)
#else
#define hk__atfork(p, pa, c) pthread_atfork(p, pa, c)
#endif

/* A plugin (a shared object that links libheapkit.a) being unloaded (dlclose): glibc would still call
 * the thread-exit key's destructor, thread_done, in the unmapped code at the exit of every thread
 * that used the plugin's allocator (malloc.key_dlclose: SIGSEGV). So the key goes with the code:
 * it is deleted (no destructor runs for it any more) and never set again, since its number may
 * become another library's. The threads' records, with the pages and segments their heaps hold,
 * stay as they are, leaked knowingly: only this object's code could free their blocks, and the
 * host may still use blocks the plugin handed it, so they cannot be given back, and nothing of
 * this copy runs any more to adopt them. Not even the unloading thread's record is given up: the
 * object's other destructors, which may run after this one, may still allocate or use a heap of
 * that thread. The empty segments of the segment cache, which nothing can take any more, go back
 * to the OS. dlclose requires that no thread runs the object's code, and a thread-exit destructor
 * is such code: a thread exiting during the dlclose is the caller's race. A destructor rather
 * than __cxa_atexit with __dso_handle: the same moment (dlclose, or exit for an object never
 * unloaded) with no call at load. Not in an executable (__dso_handle is NULL there: exit ends
 * every thread anyway), nor in libheapkit.so, which is never unloaded (-z nodelete,
 * HK_NODELETE). The pools', the region stack's and the collector's keys go the same way
 * (src/pool/pool.c, src/arena/region.c, src/gc/thread.c). */
#if HK_UNLOADABLE
__attribute__((destructor)) static void plugin_unload(void) {
  if (!hk__in_unloadable_object()) return;
  if (atomic_load_explicit(&process_state, memory_order_acquire) != 2) return;
  hk__tkey_unload(&thread_key);
  hk__page_collect(hk__clock_ms(), true);
}
#endif

/* The library's DT_FINI (-Wl,-fini=, CMakeLists.txt) instead of crti's empty _fini, which the
 * linker also places at the end of .text: at exit it faulted in that last window too. */
void hk__fini_none(void);
void hk__fini_none(void) {}

__attribute__((constructor)) static void heapkit_load(void) {
  hk__process_init();
  /* Without them a child forked while another thread held a lock would hang at its first malloc:
   * stop at once with the reason, as the pools, arenas and collector do (ENOMEM at load). */
  if (hk__atfork(fork_prepare, fork_parent, fork_child) != 0) hk__fatal("cannot register the allocator's fork handlers");
}
