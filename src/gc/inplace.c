/* Block promotion: a minor collection that makes the young blocks mature where they are instead
 * of copying their live objects out.
 *
 * While nearly everything a minor collection finds survives (a large structure being built: the
 * nursery is kept small for short pauses, so a tree of a few MiB outlives many nurseries), the
 * copying is the whole cost of the collection and the copies are promoted anyway. Promoting the
 * blocks themselves costs a walk over their headers (to arm the barrier bits) and no copy, at the
 * price of promoting the few dead objects too: the next full (or sticky) collection finds them
 * unmarked and the sweep gives their lines back. minor.c decides when: at the minor collection
 * that starts a full one (everything is promoted and then marked anyway), and while the last
 * copying minor collection kept at least seven eighths of its nursery, for at most
 * GC_INPLACE_RUN collections in a row (a copying one then measures survival again, so a structure
 * that has just died costs at most that many nurseries of garbage promoted; up to
 * GC_INPLACE_RUN_MAX for nurseries full of finalizable objects that all survive, minor.c's
 * next_inplace_run).
 *
 * A young block's objects are contiguous from its start and end at a zero word: the allocation
 * buffer is zeroed ahead of its cursor, and closing it writes a zero word at the cursor when that
 * is where the zeroed part ended (alloc.c, buffer_close), so the walk stops at the first zero
 * header. Survivor
 * blocks are not zeroed: with any of them in the young generation, minor collections copy.
 *
 * Young finalizable objects are promoted with their blocks (their records go to the old list
 * unread): a finalizer-heavy program whose finalizable objects outlive the nursery (handles to
 * resources) was copying every nursery because of them. One that was already dead waits for a
 * full collection; a copying minor collection still finalizes the young ones itself. */
#include "gc/gc_internal.h"

bool hk__gc_promote_blocks_ok(const hk_gc_heap *h) {
  if ((h->opts.flags & HK_GC_OPT_NO_BLOCK_PROMOTION) || h->survivor_blocks) return false;
  /* Blocks a full collection made young for finalizers (full.c) are former mature blocks: their
   * objects are not contiguous from the start, so they cannot be walked by headers. */
  if (h->kept_young_blocks) return false;
  return true;
}

/* An old object that was remembered: whatever young objects it pointed to are old now. */
static void rearm(hk_gc_heap *h, void *o) {
  gc_sticky_note(h, o);
  if (!in_blocks(o)) {
    gc_large *l = large_of(o);
    if (l->cards) memset(l->cards, 0, l->card_words * sizeof(uint64_t));
    l->queued = 0;
  }
  if (!(*hdr_of(o) & HK_GC_HDR_NOSCAN)) *hdr_of(o) = gc_hdr_rearm(*hdr_of(o));
}

static uint64_t data_walk(char *start) {
  char *p = start, *end = start + GC_BLOCK_SIZE;
  for (uintptr_t hd; p < end && (hd = *(uintptr_t *)p) != 0;) p += hdr_total(hd);
  return (uint64_t)(p - start);
}

/* Arms the barrier bits of a young block's objects; returns the bytes they take. A pointer-free
 * block has no bits to arm: its bytes are what its buffer used (alloc.c, buffer_close), and only
 * a block whose close was not noted is walked. Walking them read a header per object of a block
 * nobody touches again before the next full collection: 60% of promote_walk's time, 3% of the
 * finalizer workload's CPU (docs/gc.md, The finalizer round, eleventh session). */
static uint64_t walk_block(gc_block *b) {
  char *start = block_start(b), *p = start, *end = start + GC_BLOCK_SIZE;
  if (!(b->flags & F_DATA)) {
    for (uintptr_t hd; p < end && (hd = *(uintptr_t *)p) != 0; p += hdr_total(hd))
      if (!(hd & HK_GC_HDR_NOSCAN)) *(uintptr_t *)p = gc_hdr_rearm(hd);
    return (uint64_t)(p - start);
  }
  if (b->fill) {
    hk_assert_expensive(data_walk(start) == (uint64_t)b->fill * HK_GC_GRANULE);
    return (uint64_t)b->fill * HK_GC_GRANULE;
  }
  return data_walk(start);
}

/* The walk is the whole cost of a promotion in place (a header per object of every thread's
 * nursery), so with other threads parked it is a parallel phase. Each participant first walks the
 * blocks its own thread zeroed and filled, whose lines are in its core's cache, then any left: a
 * header rewritten by the other core has to travel there and back again when its thread next
 * reads the object. Blocks are claimed one by one (gc_block.walked); the young list does not
 * change meanwhile. */
typedef struct promote_job {
  gc_par par;      /* first: helpers get this */
  gc_block *first; /* the young list */
  uint64_t bytes;  /* atomic */
} promote_job;
#define GC_PROMOTE_PAR_BLOCKS 8 /* fewer blocks are walked faster than a helper joins */

static uint64_t serial_walk(gc_block *first) {
  uint64_t bytes = 0;
  for (gc_block *b = first; b; b = b->next) bytes += walk_block(b);
  return bytes;
}

static void promote_walk(promote_job *j, uint32_t own, bool helper) {
  uint64_t bytes = 0, walked = 0, inversions = 0;
  bool foreign = false;
  for (int pass = own ? 0 : 1; pass < 2; pass++)
    for (gc_block *b = j->first; b; b = b->next) {
      if (pass == 0 && b->owner != own) continue;
      if (__atomic_load_n(&b->walked, __ATOMIC_RELAXED) || __atomic_exchange_n(&b->walked, 1, __ATOMIC_ACQ_REL))
        continue;
      if (b->owner != own) foreign = true;
      else inversions += foreign;
      bytes += walk_block(b);
      walked++;
    }
  __atomic_fetch_add(&j->bytes, bytes, __ATOMIC_RELAXED);
  hk_gc_heap *h = j->par.heap;
  if (helper && walked) __atomic_fetch_add(&h->walk_helper_blocks, walked, __ATOMIC_RELAXED);
  if (inversions) __atomic_fetch_add(&h->walk_inversions, inversions, __ATOMIC_RELAXED);
}

/* Nothing is left to claim once a participant's walk returns: the phase is over (else the helper,
 * back in hk__gc_park, would join it again and again until the collector's last block is done). */
static void promote_help(gc_par *p, hk_gc_mutator *self) {
  promote_walk((promote_job *)p, self ? gc_nursery_tag(self) : 0, true);
  gc_lock(p->heap);
  p->done = true;
  gc_unlock(p->heap);
}

/* Walks every young block (in parallel when there are helpers); returns the bytes of objects. */
static uint64_t walk_young(hk_gc_heap *h) {
  promote_job job;
  size_t n = 0;
  for (gc_block *b = h->young; b && n < GC_PROMOTE_PAR_BLOCKS; b = b->next) n++;
  bool par = n >= GC_PROMOTE_PAR_BLOCKS && hk__gc_par_open(h, &job.par, promote_help);
  if (!par) return serial_walk(h->young);
  job.first = h->young; /* (helpers start once the lock is released) */
  job.bytes = 0;
  gc_unlock(h);
  promote_walk(&job, h->collector ? gc_nursery_tag(h->collector) : 0, false);
  gc_lock(h);
  job.par.done = true;
  hk__gc_par_close(&job.par);
  return job.bytes;
}

void hk__gc_promote_blocks(hk_gc_heap *h, bool promote_all) {
  void *o;
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) {
    while ((o = hk__gc_stack_pop(h, &m->remset))) rearm(h, o);
    hk__gc_stack_clear(h, &m->remset);
  }
  while ((o = hk__gc_stack_pop(h, &h->remset))) rearm(h, o);
  hk__gc_stack_clear(h, &h->remset);

  size_t nursery_bytes = h->young_since_gc * GC_BLOCK_SIZE;
  uint64_t bytes = walk_young(h);
  for (gc_block *b = h->young, *next; b; b = next) {
    next = b->next;
    b->next = NULL;
    b->fill = 0; /* (a block full.c makes young again is not walkable: no stale fill for it) */
    b->walked = 0;
    if (*(uintptr_t *)(void *)block_start(b) == 0) hk__gc_block_release(h, b); /* never used */
    else gc_block_retype(h, b, B_MATURE);
  }
  h->young = NULL;
  /* Every young object is old now, the finalizable ones too: their records go to the old list as
   * they are (nothing moved). One that was already dead is found by the next full collection. */
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) hk__gc_flist_splice(&h->final_old, &m->fin_local);
  hk__gc_flist_splice(&h->final_old, &h->final_young);
  h->young_since_gc = 0;
  h->bytes_promoted += bytes;
  h->mature_estimate += bytes;
  h->minor_count++;
  if (h->trace >= 2)
    hk__message("gc: minor %lu%s: nursery %zu KiB, promoted %lu KiB in place, next nursery %zu KiB, "
                "estimate %zu / %zu KiB", (unsigned long)h->minor_count, promote_all ? " (of a full)" : "",
                nursery_bytes >> 10, (unsigned long)(bytes >> 10), h->nursery_blocks * GC_BLOCK_SIZE >> 10,
                h->mature_estimate >> 10, h->full_threshold >> 10);
}
