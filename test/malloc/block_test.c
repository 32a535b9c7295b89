/* hk_free's one-compare block test (hk__page.div_check, hk__page_lim): for every size class, every
 * offset of a page and several carved counts, off * div_check < hk__page_lim(pg) must say exactly
 * whether off is the start of a carved block. With div_check = ceil(2^64 / size) (before
 * 2026-12-07) a power-of-two class had e = 0, so its limit was 0 and no block passed. Also: real
 * pages of every class get the limit as fast_lim, and a segment's descriptors outside its pages
 * (hk__mseg.guard, pages[page_count]) keep fast_lim 0, since hk_free reads them for pointers into
 * the header or a medium segment's last 64 KiB. Without an address-space limit each segment is
 * a whole HK_SEGMENT_SIZE.
 * Linked with the static library: it reads page descriptors. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include <string.h>

#include "testutil.h"

static void check_class(size_t bin) {
  size_t bs = hk__bin_size(bin);
  size_t page = bs <= HK_SMALL_MAX ? (size_t)1 << HK_SMALL_PAGE_SHIFT : (size_t)1 << HK_MEDIUM_PAGE_SHIFT;
  uint32_t reserved = (uint32_t)(page / bs);
  uint32_t caps[] = {0, 1, reserved / 2, reserved > 0 ? reserved - 1 : 0, reserved};
  static hk__page pg; /* (a descriptor with only the fields the test reads) */
  memset(&pg, 0, sizeof pg);
  pg.block_size = (uint32_t)bs;
  pg.div_check = hk__div_check(bs);
  uint64_t e = (uint64_t)bs * pg.div_check;
  CHECK(e >= 1 && e <= bs);
  for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
    pg.capacity = caps[c];
    size_t wrong = 0;
    for (size_t off = 0; off < page; off++) {
      bool want = off % bs == 0 && off / bs < caps[c];
      if (hk__page_is_block(&pg, off) != want) wrong++;
    }
    if (wrong) {
      printf("class %zu bytes, %u carved: %zu offsets misjudged\n", bs, caps[c], wrong);
      CHECK(wrong == 0);
    }
  }
}

int main(void) {
  tu_test_name = "malloc_block_test";
  for (size_t bin = 1; bin <= HK_BIN_MAX; bin++) check_class(bin);
  static void *keep[HK_BIN_MAX + 1];
  for (size_t bin = 1; bin <= HK_BIN_MAX; bin++) {
    size_t bs = hk__bin_size(bin);
    keep[bin] = hk_malloc(bs);
    CHECK(keep[bin] != NULL);
    hk__mseg *seg = hk__mseg_of(keep[bin]);
    /* without an address-space limit every small and medium segment is a whole one (a medium
     * one was 4032 KiB, its pages' bytes, and could not take a cached small segment) */
    CHECK(seg->base.size == HK_SEGMENT_SIZE);
    hk__page *pg = hk__page_of(seg, keep[bin]);
    CHECK(pg->block_size == bs);
    CHECK(pg->fast_lim == (pg->flags ? 0 : hk__page_lim(pg)));
    if (!pg->flags) CHECK(pg->fast_lim > 0);
    CHECK(seg->guard.fast_lim == 0);
    CHECK(seg->pages[seg->base.page_count].fast_lim == 0);
  }
  for (size_t bin = 1; bin <= HK_BIN_MAX; bin++) hk_free(keep[bin]);
  printf("ok\n");
  return 0;
}
