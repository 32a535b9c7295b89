/* A fragmenting workload for choosing the mature-space policy (docs/gc.md): a large table of
 * long-lived objects of mixed sizes whose entries are replaced at random (old objects die in
 * random places), with short-lived garbage in between. Prints CPU time, live and heap sizes.
 * Not a test (it measures); test/gc/stress.sh runs it as a soak with hk_gc_verify at the end.
 * usage: gc_frag [steps] [slots] [noevac] */
#include "gc_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  long steps = argc > 1 ? atol(argv[1]) : 3000000;
  long slots = argc > 2 ? atol(argv[2]) : 200000;
  bool noevac = argc > 3 && atoi(argv[3]);
  hk_gc_options o;
  hk_gc_options_init(&o);
  if (noevac) o.flags |= HK_GC_OPT_NO_EVACUATION;
  hk_gc_heap *h;
  hk_gc_mutator *m;
  if (hk_gc_heap_create(&o, &h, &m) != HK_OK) return 2;
  register_test_types(h);
  clock_t t0 = clock();
  size_t peak = 0;
  {
    node *table = new_node(m, 0, (uint64_t)slots, false); /* a large object */
    HK_GC_ROOTS(m, table);
    for (long i = 0; i < steps + slots; i++) {
      long k = i < slots ? i : (long)(rnd() % (uint64_t)slots);
      uint64_t r = rnd();
      void *obj = (r & 3) == 0 ? (void *)new_blob(m, (uint64_t)k, r % 300) : (void *)new_node(m, (uint64_t)k, (r >> 8) % 24, false);
      hk_gc_write_barrier(m, table);
      table->kids[k] = obj;
      for (int g = 0; g < 2; g++) (void)new_node(m, 0, 2, false); /* short-lived */
      if ((i & 0xffff) == 0) {
        hk_gc_stats s;
        hk_gc_stats_get(h, &s);
        if (s.heap_size > peak) peak = s.heap_size;
      }
    }
    hk_gc_collect(m, HK_GC_FULL);
    long bad = 0;
    for (long k = 0; k < slots; k++)
      if (!table->kids[k] || ((node *)table->kids[k])->id != (uint64_t)k) bad++;
    CHECK(bad == 0);
    CHECK(hk_gc_verify(m) == HK_OK);
  }
  double cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
  hk_gc_stats s;
  hk_gc_stats_get(h, &s);
  printf("%s: cpu %.2f s, live %zu KiB, heap %zu KiB, peak heap %zu KiB, evacuated %lu KiB, full p95 %.1f ms\n",
         noevac ? "mark-region, no evacuation" : "mark-region + evacuation", cpu, s.live_bytes >> 10, s.heap_size >> 10,
         (peak > s.heap_peak ? peak : s.heap_peak) >> 10, (unsigned long)(s.bytes_evacuated >> 10), s.full.p95_ms);
  hk_gc_heap_destroy(h);
  return check_report("gc_frag");
}
