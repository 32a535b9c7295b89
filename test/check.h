/* A tiny assertion helper shared by heapkit's C tests: CHECK records a failure with its line and
 * keeps going; check_report prints "N passed, N failed" and returns the exit status. */
#ifndef HK_TEST_CHECK_H
#define HK_TEST_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include "machine.h"

static int check_passed, check_failed;
#define CHECK(e)                                                                        \
  do {                                                                                  \
    if (e) check_passed++;                                                              \
    else { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #e); } \
  } while (0)
/* For checks inside loops: counts one pass or failure per call site and stops at the first failure. */
#define CHECK_QUIET(e)                                                                  \
  do { if (!(e)) { check_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #e); } } while (0)

static inline int check_report(const char *name) {
  printf("%s: %d checks passed, %d failed\n", name, check_passed, check_failed);
  return check_failed ? 1 : 0;
}
#endif
