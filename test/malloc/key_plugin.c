/* A plugin that links the static library (malloc.key_dlclose): each thread that calls it gets a
 * thread record of the plugin's own copy of the allocator, with the thread-exit key set; with
 * keep, also a cache of a shared pool, a region stack and a mutator of a collected heap (left
 * registered), whose thread-exit keys are set too. */
#include <heapkit.h>
#include <string.h>

int key_plugin_use(int keep);
/* keep: leave live blocks behind (small, medium, large, and a first-class heap holding some), as a
 * plugin that hands memory to its host or caches it would. */
int key_plugin_use(int keep) {
  char *p = hk_malloc(100);
  if (!p) return 0;
  memset(p, 1, 100);
  hk_free(p);
  if (keep) {
    static void *kept[64];
    static int n;
    hk_heap *h = hk_heap_new();
    if (!h) return 0;
    for (int i = 0; i < 8 && n < 60; i++) {
      kept[n++] = hk_malloc(48);
      kept[n++] = hk_malloc(20000);
      kept[n++] = hk_heap_malloc(h, 64);
    }
    kept[n++] = hk_malloc(1 << 20);
    for (int i = 0; i < n; i++) if (!kept[i]) return 0;
    static hk_pool *pool;
    if (!pool) pool = hk_pool_new_ex(&(hk_pool_options){.block_size = 64, .shared = true});
    void *b = pool ? hk_pool_alloc(pool) : NULL; /* binds this thread's cache of the pool */
    if (!b) return 0;
    hk_pool_free(pool, b);
    hk_arena *r = hk_region_push();              /* this thread's region stack */
    if (!r || !hk_region_alloc(32)) return 0;
    hk_region_pop(r);
    /* registered with a collected heap, and left registered: the collector's thread-exit key */
    hk_gc_heap *gh;
    hk_gc_mutator *m;
    if (hk_gc_heap_create(NULL, &gh, &m) != HK_OK || !m) return 0;
  }
  return 1;
}
