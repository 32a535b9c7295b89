/* Tagged blocks for the general allocator's stress, churn and fork tests (testutil.h's fill
 * pattern behind a header that names the block's size and address). */
#ifndef HK_TEST_MALLOC_BLOCK_H
#define HK_TEST_MALLOC_BLOCK_H
#include <heapkit.h>
#include "testutil.h"

/* A tagged block of the stress and churn tests: word 0 holds its size, word 1 the size's
 * complement xored with its address (a block handed out twice, moved or overrun from below fails
 * this), the rest the fill pattern. n >= 16. */
static inline uint64_t *tu_block_new(size_t n) {
  uint64_t *b = (uint64_t *)hk_malloc(n);
  CHECKF(b != NULL, "malloc(%zu)", n);
  b[0] = n;
  b[1] = ~(uint64_t)n ^ (uint64_t)(uintptr_t)b;
  tu_fill(b + 2, n - 16);
  return b;
}
static inline void tu_block_check(const uint64_t *b, const char *why) {
  size_t n = b[0];
  CHECKF(b[1] == (~(uint64_t)n ^ (uint64_t)(uintptr_t)b), "block %p header corrupt before %s (size word %zu)", (void *)b,
         why, n);
  size_t bad = tu_verify(b + 2, n - 16);
  CHECKF(bad == (size_t)-1, "block %p (%zu bytes) corrupt at offset %zu before %s", (void *)b, n, bad + 16, why);
}
static inline void tu_block_free(uint64_t *b) {
  tu_block_check(b, "free");
  hk_free(b);
}
#endif
