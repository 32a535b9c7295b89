/* What of [p, p + len) is resident, by mincore: the tests that check heapkit's resident memory
 * (churn_rss.c, ownerless.c) measure it the same way. Needs _GNU_SOURCE (mincore) and
 * testutil.h (CHECK) before it. */
#ifndef HK_TEST_MALLOC_RESIDENT_H
#define HK_TEST_MALLOC_RESIDENT_H

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t resident(const void *p, size_t len) {
  static unsigned char vec[1024];
  size_t os = (size_t)sysconf(_SC_PAGESIZE), r = 0;
  for (size_t off = 0; off < len; off += sizeof vec * os) {
    size_t n = (len - off) / os < sizeof vec ? (len - off) / os : sizeof vec;
    CHECK(mincore((uint8_t *)p + off, n * os, vec) == 0);
    for (size_t i = 0; i < n; i++) r += vec[i] & 1;
  }
  return r * os;
}

#endif
