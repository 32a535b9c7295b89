/* A deliberately broken allocator for the suite's self-test: every 50th malloc hands out again
 * the block it returned just before, which is still live. A suite that times this as a fast
 * allocator instead of reporting FAIL is broken itself. Built and used only by selftest.sh. */
#include <stddef.h>

extern void *__libc_malloc(size_t);

void *malloc(size_t n) {
  static __thread void *last;
  static __thread size_t lastn, count;
  if (++count % 50 == 0 && last && n <= lastn) return last;
  last = __libc_malloc(n);
  lastn = n;
  return last;
}
