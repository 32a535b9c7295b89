/* The thread-local region stack and the per-thread scratch arenas.
 *
 * Regions: each region is an arena of its own (so code may allocate into any region on the stack,
 * not only the innermost, as with letregion). Popped regions are reset and kept in a small
 * per-thread cache, so a push costs no system call in steady state.
 *
 * Scratch: each thread owns up to HK_SCRATCH_ARENAS arenas. A scope takes the first one that is
 * not in the caller's conflict list and saves a mark on it; ending the scope restores the mark.
 * Because a function passes its own result arena (often a scratch arena of an outer scope) as a
 * conflict, nested scopes alternate between arenas and a scope's releases never free the
 * caller's results.
 *
 * At thread exit a destructor pops the regions the thread left on its stack (running their
 * cleanups) and destroys the cache and the scratch arenas.
 *
 * Thread-local storage is one pointer: the library is built with the initial-exec TLS model and
 * may be dlopen'ed, where static TLS is scarce. The per-thread record lives in the thread's first
 * scratch arena (allocated before any mark is saved there, so no scope ever releases it). */
#include "arena/arena_internal.h"

#include <errno.h>

#define REGION_CACHE 4

typedef struct thread_arenas {
  hk_arena *top;
  size_t depth;
  hk_arena *cache[REGION_CACHE];
  size_t ncache;
  hk_arena *scratch[HK_SCRATCH_ARENAS];
} thread_arenas;

static __thread thread_arenas *t_arenas;
static hk__tkey exit_key; /* unloaded with a plugin that links this copy (region_unload) */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void destroy_owned(hk_arena *a) {
  a->role = HK__ROLE_PLAIN;
  hk__arena_destroy_any(a);
}

static void region_release(thread_arenas *t, hk_arena *r) {
  /* A pop ends the region: its children go with it (a reset would leave them alive in the cached
   * region until thread exit, while a region destroyed because the cache was full took them). */
  while (r->first_child) hk__arena_destroy_any(r->first_child);
  if (t->ncache < REGION_CACHE) {
    hk_arena_reset(r);
    /* (a cleanup the reset ran may have made one: a region is cached without children) */
    while (r->first_child) {
      while (r->first_child) hk__arena_destroy_any(r->first_child);
      hk_arena_reset(r);
    }
    t->cache[t->ncache++] = r;
  } else {
    destroy_owned(r);
  }
}

static void thread_exit(void *arg) {
  thread_arenas *t = t_arenas;
  (void)arg;
  if (!t) return;
  while (t->top) {
    hk_arena *r = t->top;
    t->top = r->region_prev;
    destroy_owned(r);
  }
  t->depth = 0;
  while (t->ncache) destroy_owned(t->cache[--t->ncache]);
  hk_arena *home = t->scratch[0]; /* holds t itself: last */
  for (int i = 1; i < HK_SCRATCH_ARENAS; i++)
    if (t->scratch[i]) destroy_owned(t->scratch[i]);
  t_arenas = NULL;
  destroy_owned(home);
}

static void make_key(void) { (void)hk__tkey_create(&exit_key, thread_exit); }
#if HK_UNLOADABLE
/* A plugin that links libheapkit.a being unloaded: the key goes with the code, or a thread with
 * regions exiting afterwards called thread_exit in the unmapped code (malloc.key_dlclose). Its
 * regions and scratch arenas stay (src/malloc/heap.c, plugin_unload, explains why). */
__attribute__((destructor)) static void region_unload(void) {
  hk__tkey_unload(&exit_key);
}
#endif

/* This thread's record, created on first use (NULL if no memory). */
static thread_arenas *me(void) {
  thread_arenas *t = t_arenas;
  if (hk_likely(t != NULL)) return t;
  hk_arena *home = hk_arena_new(NULL);
  if (!home) return NULL;
  home->role = HK__ROLE_SCRATCH;
  t = hk_arena_calloc(home, 1, sizeof *t);
  if (!t) {
    destroy_owned(home);
    return NULL;
  }
  t->scratch[0] = home;
  pthread_once(&exit_once, make_key);
  (void)hk__tkey_set(&exit_key, (void *)1);
  t_arenas = t;
  return t;
}

hk_arena *hk_region_push(void) {
  thread_arenas *t = me();
  if (!t) return NULL;
  hk_arena *r = t->ncache ? t->cache[--t->ncache] : hk_arena_new(NULL);
  if (!r) return NULL;
  r->role = HK__ROLE_REGION;
  r->region_prev = t->top;
  t->top = r;
  t->depth++;
  return r;
}

void hk_region_pop(hk_arena *r) {
  thread_arenas *t = t_arenas;
  hk_arena *x = t ? t->top : NULL;
  while (x && x != r) x = x->region_prev;
  if (!r || !x) {
    hk__warning("hk_region_pop(%p): not a region on this thread's stack; ignored", (void *)r);
    return;
  }
  /* Off the stack first, then released: the cleanups a release runs may push and pop regions. They
   * found the stack half popped, and one that popped an outer region being popped made this loop
   * go on below r (a segfault in review); now such a pop finds its region gone and is ignored. */
  x = t->top;
  t->top = r->region_prev;
  for (hk_arena *y = x;; y = y->region_prev) {
    t->depth--;
    if (y == r) break;
  }
  for (;;) {
    hk_arena *next = x == r ? NULL : x->region_prev;
    x->region_prev = NULL;
    region_release(t, x);
    if (!next) break;
    x = next;
  }
}

hk_arena *hk_region_top(void) { return t_arenas ? t_arenas->top : NULL; }
size_t hk_region_depth(void) { return t_arenas ? t_arenas->depth : 0; }

void *hk_region_alloc(size_t size) {
  hk_arena *r = t_arenas ? t_arenas->top : NULL;
  if (!r) {
    errno = EINVAL;
    return NULL;
  }
  return hk_arena_alloc(r, size);
}

hk_scratch hk_scratch_begin(hk_arena *const *conflicts, size_t n) {
  thread_arenas *t = me();
  hk_scratch s = {0};
  if (!t) return s;
  for (int i = 0; i < HK_SCRATCH_ARENAS; i++) {
    hk_arena *a = t->scratch[i];
    bool clash = false;
    for (size_t k = 0; a && k < n && !clash; k++) clash = conflicts && conflicts[k] == a;
    if (clash) continue;
    if (!a) {
      a = hk_arena_new(NULL);
      if (!a) return s;
      a->role = HK__ROLE_SCRATCH;
      t->scratch[i] = a;
    }
    s.arena = a;
    s.mark = hk_arena_save(a);
    return s;
  }
  errno = EBUSY;
  return s;
}

void hk_scratch_end(hk_scratch s) {
  if (!s.arena) return;
  hk_arena_restore(s.arena, s.mark);
}
