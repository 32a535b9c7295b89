/* Minimal assertions for the planner tests: print where and why, count failures, keep going. */
#ifndef HK_TEST_PLAN_CHECK_H
#define HK_TEST_PLAN_CHECK_H
#include <stdio.h>
#include <string.h>

static int hkt_failures;
#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
      hkt_failures++;                                                                 \
    }                                                                                 \
  } while (0)
#define CHECK_MSG(cond, ...)                                                          \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);        \
      fprintf(stderr, __VA_ARGS__);                                                   \
      fputc('\n', stderr);                                                            \
      hkt_failures++;                                                                 \
    }                                                                                 \
  } while (0)
#define CHECK_CONTAINS(hay, needle) CHECK_MSG(strstr((hay), (needle)) != NULL, "'%s' lacks '%s'", (hay), (needle))
#define TEST_DONE(name)                                                               \
  do {                                                                                \
    if (hkt_failures) { fprintf(stderr, "%s: %d checks failed\n", name, hkt_failures); return 1; } \
    printf("%s: all checks passed\n", name);                                          \
    return 0;                                                                         \
  } while (0)
#endif
