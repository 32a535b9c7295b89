/* Blocks: the collector's 32 KiB units, carved from 4 MiB segments of the page layer. A segment's
 * first GC_SEG_META_BLOCKS blocks hold its tables (block descriptors, line marks, mark bits), so
 * the blocks themselves carry no metadata. Callers hold the heap lock. */
#include "gc/gc_internal.h"
#include "os/os.h"

#define USABLE_PER_SEG (GC_BLOCKS_PER_SEG - GC_SEG_META_BLOCKS)

size_t hk__gc_heap_bytes(const hk_gc_heap *h) {
  return (h->blocks_young + h->blocks_mature) * GC_BLOCK_SIZE + h->large_bytes;
}

static gc_seg *seg_new(hk_gc_heap *h) {
  /* The tables are touched a block at a time as blocks are used (hk__gc_seg_alloc). */
  gc_seg *s = (gc_seg *)hk__gc_seg_alloc(h, HK_SEGMENT_SIZE, ROLE_BLOCKS, sizeof(gc_seg));
  if (!s) return NULL;
  for (size_t i = 0; i < GC_SEG_META_BLOCKS; i++) s->blocks[i].state = B_META;
  for (size_t i = GC_BLOCKS_PER_SEG; i-- > GC_SEG_META_BLOCKS;) {
    gc_block *b = &s->blocks[i];
    b->state = B_FREE;
    b->free_lines = GC_LINES;
    b->owner = 0;
    b->next = h->free_blocks;
    h->free_blocks = b;
  }
  s->nfree = USABLE_PER_SEG;
  h->nfree += USABLE_PER_SEG;
  s->next = h->segs;
  h->segs = s;
  h->nsegs++;
  return s;
}

/* A free block made young or mature, not zeroed (nursery buffers are zeroed by their taker,
 * copies fill the rest). Returns NULL when the OS refuses. */
gc_block *hk__gc_block_take(hk_gc_heap *h, int state, bool data) {
  if (!h->free_blocks && !seg_new(h)) return NULL;
  gc_block *b = h->free_blocks;
  gc_seg *s = seg_of_block(b);
  size_t off = block_no(b) * GC_BLOCK_SIZE;
  bool fresh = false;
  if (hk__segment_commit(&s->h.base, off, GC_BLOCK_SIZE, &fresh) != HK_OK) return NULL;
  /* A block is written whole soon after it is taken (a nursery's zeroing, promotion's copies): on
   * memory the process never touched (or gave back), fault in the page layer's unit around it
   * (64 KiB, this block and its neighbour) in one call rather than a page fault per 4 KiB. The
   * finalizer benchmark faulted in 29 MB page by page: 8-10% of its CPU time in the kernel. */
  if (fresh) {
    size_t unit = s->h.base.unit, at = off & ~(unit - 1);
    (void)hk__os_populate((char *)s + at, unit);
  }
  gc_unpoison((char *)s + off, GC_BLOCK_SIZE);
  hk_assert_internal(hk__gc_block_is_valid(b) && b->state == B_FREE);
  h->free_blocks = b->next;
  h->nfree--;
  s->nfree--;
  b->next = NULL;
  b->state = (uint8_t)state;
  b->flags = data ? F_DATA : 0;
  b->free_lines = 0;
  b->holes = 0;
  b->fill = 0;
  memset(s->marks[block_no(b)], 0, sizeof s->marks[0]);
  if (state == B_YOUNG) h->blocks_young++;
  else h->blocks_mature++;
  hk__page_inuse_add((ptrdiff_t)GC_BLOCK_SIZE);
  size_t bytes = hk__gc_heap_bytes(h);
  if (bytes > h->heap_peak) h->heap_peak = bytes;
  return b;
}

/* Move to the head of the free list one of its first few blocks that the given mutator last used
 * as a nursery block. A copying minor collection frees both threads' nursery blocks onto one
 * LIFO list, so without this each thread's next nursery is half the other core's cached lines. */
void hk__gc_block_prefer(hk_gc_heap *h, uint32_t owner) {
  gc_block **pp = &h->free_blocks;
  for (int i = 0; i < 8 && *pp; i++, pp = &(*pp)->next) {
    gc_block *b = *pp;
    if (b->owner != owner) continue;
    if (i == 0) return;
    *pp = b->next;
    b->next = h->free_blocks;
    h->free_blocks = b;
    return;
  }
}

void hk__gc_block_release(hk_gc_heap *h, gc_block *b) {
  hk_assert(b->state == B_YOUNG || b->state == B_MATURE);
  if (b->state == B_YOUNG) h->blocks_young--;
  else h->blocks_mature--;
  b->state = B_FREE;
  b->flags = 0;
  b->free_lines = GC_LINES;
  b->holes = 1;
  b->next = h->free_blocks;
  h->free_blocks = b;
  h->nfree++;
  seg_of_block(b)->nfree++;
  hk__page_inuse_add(-(ptrdiff_t)GC_BLOCK_SIZE);
  gc_poison(block_start(b), GC_BLOCK_SIZE);
}

size_t hk__gc_free_reserve(const hk_gc_heap *h) {
  /* Every allocating thread's nursery: counting one thread's made each minor collection of a
   * multi-threaded run give the others' nursery blocks back to the OS, to fault them in again
   * (mtbintrees, 2 threads: 5x the page faults of one thread, 13% more CPU). */
  size_t keep = hk__gc_nursery_reserve(h);
  if (h->full_threshold > h->mature_estimate) keep += (h->full_threshold - h->mature_estimate) / GC_BLOCK_SIZE;
  if (h->max_heap) {
    size_t used = hk__gc_heap_bytes(h) / GC_BLOCK_SIZE, cap = h->max_heap / GC_BLOCK_SIZE;
    size_t room = cap > used ? cap - used : 0;
    if (keep > room) keep = room;
  }
  /* Evacuation copies up to an eighth of the heap into free blocks even at the limit (full.c):
   * the peak includes them anyway, so keeping them committed costs no resident memory. */
  return keep + hk__gc_heap_bytes(h) / 8 / GC_BLOCK_SIZE;
}

/* Give wholly free segments back to the page layer, keeping keep_blocks free blocks for the next
 * nursery. The free list is rebuilt from the segments that stay. */
void hk__gc_release_free_segments(hk_gc_heap *h, size_t keep_blocks) {
  size_t nfree = h->nfree;
  gc_seg **pp = &h->segs;
  while (*pp) {
    gc_seg *s = *pp;
    if (s->nfree == USABLE_PER_SEG && nfree - USABLE_PER_SEG >= keep_blocks) {
      *pp = s->next;
      nfree -= USABLE_PER_SEG;
      h->nsegs--;
      gc_unpoison(s, HK_SEGMENT_SIZE);
      /* The page layer may cache the segment for a while: give its memory back now, so resident
       * memory follows the heap at once. */
      hk__segment_decommit(&s->h.base, GC_SEG_META_BLOCKS * GC_BLOCK_SIZE,
                           HK_SEGMENT_SIZE - GC_SEG_META_BLOCKS * GC_BLOCK_SIZE);
      hk__segment_free(&s->h.base);
      continue;
    }
    pp = &s->next;
  }
  if (nfree != h->nfree) {
    h->nfree = 0;
    h->free_blocks = NULL;
    for (gc_seg *s = h->segs; s; s = s->next)
      for (size_t i = GC_BLOCKS_PER_SEG; i-- > GC_SEG_META_BLOCKS;)
        if (s->blocks[i].state == B_FREE) {
          s->blocks[i].next = h->free_blocks;
          h->free_blocks = &s->blocks[i];
          h->nfree++;
        }
  }
  /* Free blocks beyond the reserve give their memory back (whole page-layer units only). */
  size_t n = 0;
  for (gc_block *b = h->free_blocks; b; b = b->next)
    if (n++ >= keep_blocks) b->flags |= F_COLD;
  for (gc_seg *s = h->segs; s; s = s->next) {
    size_t per_unit = s->h.base.unit / GC_BLOCK_SIZE;
    for (size_t i = GC_SEG_META_BLOCKS; i + per_unit <= GC_BLOCKS_PER_SEG; i += per_unit) {
      bool cold = true;
      for (size_t j = i; j < i + per_unit; j++) cold = cold && s->blocks[j].state == B_FREE && (s->blocks[j].flags & F_COLD);
      if (cold) hk__segment_decommit(&s->h.base, i * GC_BLOCK_SIZE, per_unit * GC_BLOCK_SIZE);
      for (size_t j = i; j < i + per_unit; j++) s->blocks[j].flags &= (uint8_t)~F_COLD;
    }
  }
}

bool hk__gc_block_is_valid(const gc_block *b) {
  gc_seg *s = seg_of_block(b);
  if (s->h.magic != GC_MAGIC || s->h.role != ROLE_BLOCKS) return false;
  if (block_no(b) < GC_SEG_META_BLOCKS) return b->state == B_META;
  if (b->state != B_FREE && b->state != B_YOUNG && b->state != B_MATURE) return false;
  if (b->free_lines > GC_LINES) return false;
  if (b->state == B_FREE && b->flags != 0) return false;
  return true;
}

static bool buffer_ok(const char *start, const char *cursor, const char *limit, const char *fast_limit,
                      const char *zeroed, bool data) {
  /* (closed in a blocking region: the pair stays, with no room; alloc.c, buffer_close) */
  if (!cursor || !start) return !start && !limit && !zeroed && (!cursor || fast_limit == cursor);
  if (!start || cursor < start || cursor > limit || fast_limit > zeroed || cursor > zeroed || zeroed > limit) return false;
  if ((size_t)(limit - start) != GC_BLOCK_SIZE || ((uintptr_t)start & (GC_BLOCK_SIZE - 1))) return false;
  const gc_block *b = &((gc_seg *)seghdr_of(start))->blocks[block_index(start)];
  return b->state == B_YOUNG && ((b->flags & F_DATA) != 0) == data;
}

bool hk__gc_mutator_is_valid(const hk_gc_mutator *m) {
  if (!m || !m->heap || m->heap->h.magic != GC_MAGIC || m->fast.stop != &m->heap->stop) return false;
  if (m->state != MUT_RUNNING && m->state != MUT_BLOCKING && m->state != MUT_STOPPED) return false;
  return buffer_ok(m->tlab_start, m->fast.cursor, m->real_limit, m->fast.limit, m->zero_limit, false) &&
         buffer_ok(m->data_start, m->fast.data_cursor, m->real_data_limit, m->fast.data_limit, m->zero_data_limit, true);
}
