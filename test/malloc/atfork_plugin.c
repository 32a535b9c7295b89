/* A plugin that links the static library (malloc.atfork_dlclose): its load registers the
 * allocator's fork handlers in its own copy of the code. */
#include <heapkit/malloc.h>

int atfork_plugin_use(void);
int atfork_plugin_use(void) {
  void *p = hk_malloc(100);
  hk_free(p);
  return p != 0;
}
