/* Resident memory: what the collector itself keeps resident (its tables), and the heap's peak
 * under a limit when a full collection evacuates (docs/gc.md, "The quadtree RSS round").
 * usage: test_gc_rss resident */
#include "gc_test.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_UNRELIABLE 1 /* shadow memory moves with every access */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RSS_UNRELIABLE 1
#endif
#endif
#ifndef RSS_UNRELIABLE
#define RSS_UNRELIABLE 0
#endif

static hk_gc_mutator *m;

/* VmRSS in KiB, or -1 where /proc is not there. */
static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
  fclose(f);
  return kb;
}

/* A fresh heap makes resident what it writes, not its tables: the heap struct is 289 KiB (the type
 * table, the pause rings) and a block segment's tables 98 KiB, and the page layer used to clear
 * them whole as segment headers (360 KiB resident for an empty heap). Run first in its process,
 * so the segments come fresh from the OS (the count includes the page layer's first use). */
static void test_resident(void) {
  if (RSS_UNRELIABLE || rss_kb() < 0) return;
  hk_gc_heap *h;
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = (size_t)16 << 20;
  long before = rss_kb();
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_OK);
  register_test_types(h);
  CHECK(new_node(m, 1, 4, false) != NULL); /* a block segment and its first block */
  hk_gc_collect(m, HK_GC_MINOR);
  long grown = rss_kb() - before;
  printf("resident: a heap with one object and one collection: %ld KiB\n", grown);
  CHECK(grown < 320); /* a nursery buffer, a few table pages, libc's first use (164 KiB here) */
  CHECK(hk_gc_verify(m) == HK_OK);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
}

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "all";
  bool all = !strcmp(what, "all");
  if (all || !strcmp(what, "resident")) test_resident();
  return check_report(what);
}
