/* The segment map: one bit per 4 MiB of the user address space (HK__VA_BITS: 4 MiB of
 * zero-initialised, lazily committed .bss on x86-64, 8 MiB elsewhere), set while a segment starts
 * there. It lets free() recognise any pointer heapkit never handed out, wild ones included, with
 * one load and no access to the pointer. */
#include "page/segment.h"
#include "os/os.h"

#define SEGMAP_BITS HK__SEGMAP_BITS
#define segmap hk__segmap
_Atomic uint64_t hk__segmap[SEGMAP_BITS / 64];
static _Atomic size_t segmap_max_chunks = 1; /* largest segment seen, in 4 MiB chunks */

HK_INTERNAL void hk__segmap_set(hk__segment *s, bool on);
void hk__segmap_set(hk__segment *s, bool on) {
  uintptr_t idx = (uintptr_t)s >> HK_SEGMENT_SHIFT;
  if (idx >= SEGMAP_BITS) hk__fatal("segment at %p is outside the %d-bit address space", (void *)s, HK__VA_BITS);
  uint64_t bit = (uint64_t)1 << (idx % 64);
  if (on) {
    atomic_fetch_or_explicit(&segmap[idx / 64], bit, memory_order_release);
    /* (rounded up: a large block's segment under an address-space limit is not a multiple of 4 MiB) */
    size_t chunks = (s->size + HK_SEGMENT_MASK) >> HK_SEGMENT_SHIFT, cur = atomic_load(&segmap_max_chunks);
    while (chunks > cur && !atomic_compare_exchange_weak(&segmap_max_chunks, &cur, chunks)) {}
  } else {
    atomic_fetch_and_explicit(&segmap[idx / 64], ~bit, memory_order_release);
  }
}

hk__segment *hk__segment_find(const void *p) {
  uintptr_t idx = (uintptr_t)p >> HK_SEGMENT_SHIFT;
  if (idx >= SEGMAP_BITS) return NULL;
  size_t max = atomic_load_explicit(&segmap_max_chunks, memory_order_relaxed);
  for (size_t back = 0; back < max && back <= idx; back++) {
    uintptr_t i = idx - back;
    if ((atomic_load_explicit(&segmap[i / 64], memory_order_acquire) >> (i % 64)) & 1) {
      hk__segment *s = (hk__segment *)(i << HK_SEGMENT_SHIFT);
      return (uintptr_t)p < (uintptr_t)s + s->size ? s : NULL;
    }
  }
  return NULL;
}

_Atomic(_Atomic uint64_t *) hk__segtag_dir[HK__SEGMAP_BITS >> HK__SEGTAG_LEAF_SHIFT];
static _Atomic uint64_t segtag_nowhere;

_Atomic uint64_t *hk__segtag_slot(const hk__segment *s) {
  uintptr_t idx = (uintptr_t)s >> HK_SEGMENT_SHIFT;
  _Atomic(_Atomic uint64_t *) *dir = &hk__segtag_dir[idx >> HK__SEGTAG_LEAF_SHIFT];
  _Atomic uint64_t *leaf = atomic_load_explicit(dir, memory_order_acquire);
  if (!leaf) {
    size_t bytes = HK__SEGTAG_LEAF * sizeof(uint64_t);
    void *p;
    bytes = hk__align_up(bytes, hk__os_page_size());
    if (hk__os_reserve(bytes, 0, false, &p) != HK_OK) return &segtag_nowhere;
    if (hk__os_commit(p, bytes) != HK_OK) {
      hk__os_release(p, bytes);
      return &segtag_nowhere;
    }
    _Atomic uint64_t *expected = NULL;
    /* (two threads may make the leaf at once: the loser gives its copy back) */
    if (atomic_compare_exchange_strong_explicit(dir, &expected, (_Atomic uint64_t *)p, memory_order_acq_rel, memory_order_acquire)) {
      leaf = p;
    } else {
      hk__os_release(p, bytes);
      leaf = expected;
    }
  }
  return &leaf[idx & (HK__SEGTAG_LEAF - 1)];
}
