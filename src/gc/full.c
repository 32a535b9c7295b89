/* Full collections: a minor collection that promotes everything (so the young generation and the
 * remembered sets are empty), then mark-region marking of the mature and large spaces (side mark
 * bitmaps, line marks stamped with the collection's epoch) with opportunistic evacuation of sparse
 * blocks, weak references, ordered finalization, and a sweep by lines that frees empty blocks,
 * lists the holes of the others and frees dead large objects.
 *
 * Marking runs in parallel when other mutators are parked (thread.c's gc_par): mark bits are set
 * with atomic or, large objects are claimed with an exchange of their mark, an evacuated object
 * is forwarded with a compare-and-swap (the loser's copy is left unmarked for the sweep), and the
 * evacuation budget is handed out to the threads in slices. */
#include "gc/gc_internal.h"
#include <stdlib.h>

typedef struct mark_ctx {
  hk_gc_visitor v;
  hk_gc_heap *h;
  gc_stack work;
  size_t live, evacuated, evac_budget;
  gc_bump *mature, *overflow; /* [2] each: the heap's, or a helper's own */
  gc_par *par;                /* in a parallel phase: the heap lock is not held */
  gc_stack *kept;             /* finalization: objects with pointers it marks (see keep_young) */
  gc_stack *reached;          /* finalization: finalizable objects found already marked (see full_finalizers) */
  size_t held;                /* finalization: kept bytes left mature for an old kept object */
  size_t fin_live;            /* finalization: estimated bytes of the live old finalizable objects */
  bool held_whole;            /* finalization: a block of objects kept unread stayed mature (hold_lines) */
  bool frames;                /* mutators' frames may be left unclaimed: claim them before taking work */
  gc_stack aside;             /* long tails tail_obj met, until the outer tail is done */
} mark_ctx;

typedef struct mark_job {
  gc_par par; /* first: helpers get this */
  bool evac;        /* there are candidate blocks (their budget may be spent already): see mark_drain */
  size_t evac_left; /* budget not yet handed out (atomic) */
  size_t live, evacuated;
} mark_job;

#define EVAC_SLICE ((size_t)256 << 10)

static void ctx_lock(mark_ctx *c) {
  if (c->par) gc_lock(c->h);
}
static void ctx_unlock(mark_ctx *c) {
  if (c->par) gc_unlock(c->h);
}
/* The slow halves out of line: inlined or not at the compiler's choice, one more variant of the
 * marking (mark_drain_par_plain) changed that choice in the others, and their code with it. */
static __attribute__((noinline)) void ctx_push_slow(mark_ctx *c, void *p) {
  ctx_lock(c);
  push_or_die(c->h, &c->work, p);
  ctx_unlock(c);
}
static __attribute__((noinline)) void *ctx_pop_slow(mark_ctx *c) {
  ctx_lock(c);
  void *p = hk__gc_stack_pop(c->h, &c->work);
  ctx_unlock(c);
  return p;
}
static inline __attribute__((always_inline)) void ctx_push(mark_ctx *c, void *p) {
  gc_chunk *ch = c->work.top;
  if (hk_likely(ch && ch->n < GC_CHUNK_CAP)) {
    ch->items[ch->n++] = p;
    c->work.count++;
    return;
  }
  ctx_push_slow(c, p);
}
static inline __attribute__((always_inline)) void *ctx_pop(mark_ctx *c) {
  void *p = gc_stack_pop(&c->work);
  if (p || !c->work.top || !c->work.top->prev) return p;
  return ctx_pop_slow(c);
}

/* Whether total more bytes may be evacuated; in a parallel phase the budget comes in slices. */
static bool evac_allowed(mark_ctx *c, size_t total) {
  if (total <= c->evac_budget) return true;
  if (!c->par) return false;
  mark_job *j = (mark_job *)c->par;
  size_t left = __atomic_load_n(&j->evac_left, __ATOMIC_RELAXED);
  for (;;) {
    if (left == 0) return false;
    size_t take = left < EVAC_SLICE ? left : EVAC_SLICE;
    if (__atomic_compare_exchange_n(&j->evac_left, &left, left - take, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
      c->evac_budget += take;
      return total <= c->evac_budget;
    }
  }
}

/* In a parallel phase other threads set mark bits (mark_claim) while this one reads them. */
static inline bool mark_test_shared(const void *obj) {
  uint64_t bit, *w = mark_word(obj, &bit);
  return (__atomic_load_n(w, __ATOMIC_RELAXED) & bit) != 0;
}

static inline bool mark_claim(mark_ctx *c, const void *obj) { /* true if newly marked */
  if (!c->par) return mark_set(obj);
  uint64_t bit, *w = mark_word(obj, &bit);
  if (__atomic_load_n(w, __ATOMIC_RELAXED) & bit) return false;
  return !(__atomic_fetch_or(w, bit, __ATOMIC_RELAXED) & bit);
}

/* Line marks are bytes other threads may store the same value to at the same time. */
static inline void lines_mark_shared(const void *obj, size_t total, uint8_t epoch) {
  const char *hp = (const char *)hdr_of(obj);
  gc_seg *s = (gc_seg *)seghdr_of(hp);
  size_t bi = block_index(hp);
  size_t off = (uintptr_t)hp & (GC_BLOCK_SIZE - 1);
  size_t first = off >> GC_LINE_SHIFT, last = (off + total - 1) >> GC_LINE_SHIFT;
  uint8_t *lm = s->lines[bi];
  /* Most objects touch one or two lines: no loop for them. */
  __atomic_store_n(&lm[first], epoch, __ATOMIC_RELAXED);
  __atomic_store_n(&lm[last], epoch, __ATOMIC_RELAXED);
  if (hk_unlikely(last > first + 1))
    for (size_t l = first + 1; l < last; l++) __atomic_store_n(&lm[l], epoch, __ATOMIC_RELAXED);
}

/* The work list holds slots, not objects: a newly marked object's non-empty pointer slots are
 * queued (their targets' headers prefetched), and a slot's target is marked when the slot is taken,
 * a few items after a second prefetch (mark_drain's FIFO). Marking an object as it is found instead
 * stalled on each child's header: on a tree every node is a cache miss nobody overlapped. Two kinds
 * of object are queued whole, tagged, and handled when taken: one traced by a function (it may
 * visit a copy of a slot, which must be visited at once) and one with tail pointers, whose tail is
 * marked in place, element by element with the next ones prefetched (queuing every slot of a large
 * array of leaves would take a word of mark stack per element). */
#define ITEM_OBJ ((uintptr_t)1)
#define MARK_FIFO 8
#define TAIL_AHEAD 8

/* mark_scan's pushes when the top chunk may not hold all of the object's slots. */
static __attribute__((noinline)) void mark_scan_slow(mark_ctx *c, void **w, uint64_t m) {
  for (; m; m &= m - 1) {
    unsigned i = (unsigned)__builtin_ctzll(m);
    uintptr_t r = (uintptr_t)w[i];
    if (gc_is_ref(r)) {
      __builtin_prefetch((void *)(r - HK_GC_GRANULE));
      ctx_push(c, &w[i]);
    }
  }
}

static inline __attribute__((always_inline)) void mark_scan(mark_ctx *c, void *p, uintptr_t hd) {
  const hk_gc_type_desc *d = &c->h->types[hdr_type(hd)].d;
  if (d->trace) {
    ctx_push(c, (void *)((uintptr_t)p | ITEM_OBJ));
    return;
  }
  void **w = (void **)p;
  uint64_t m = gc_layout_mask(d, hd);
  /* A layout names at most 64 slots: with that much room in the top chunk the loop pushes with
   * no capacity test and no call, so nothing in it is kept across one (the call in ctx_push's
   * slow path made the compiler save and restore six registers around the loop for every object
   * scanned). */
  gc_chunk *ch = c->work.top;
  if (hk_likely(ch && ch->n + 64 <= GC_CHUNK_CAP)) {
    size_t n0 = ch->n, k = n0;
    for (; m; m &= m - 1) {
      unsigned i = (unsigned)__builtin_ctzll(m);
      uintptr_t r = (uintptr_t)w[i];
      if (gc_is_ref(r)) {
        __builtin_prefetch((void *)(r - HK_GC_GRANULE));
        ch->items[k++] = &w[i];
      }
    }
    if (k != n0) {
      c->work.count += k - n0;
      ch->n = k;
    }
  } else if (m) {
    mark_scan_slow(c, w, m);
  }
  if (d->flags & HK_GC_TYPE_TAIL_POINTERS) ctx_push(c, (void *)((uintptr_t)p | ITEM_OBJ));
}

/* A block's kept count (F_UNREACHED blocks, granules the finalization passes marked) with this bit:
 * the passes also kept objects there without reading or marking them. Only a pointer-free block
 * holding no finalizable object gets it (mark_ref_t): nothing in it can reach anything or be
 * finalized, so its objects need no mark for the ordering rule, and the block either becomes young
 * whole (keep_young: the next minor collection frees what no finalizer resurrected) or stays
 * mature with all its lines used (hold_lines) until the next complete collection. Their bytes are
 * estimated by the block's used lines (kept_bytes). */
#define KEPT_UNREAD 0x8000u

/* Finalization notes what it keeps alive in the mature space that may hold pointers (see
 * keep_young). What it keeps in an F_UNREACHED block becomes young: the block counts it, and its
 * barrier bit goes now, while the header is in the cache (keep_young read every such header
 * again: 4% of the finalizer benchmark's time). The passes are serial: plain stores. */
static inline __attribute__((always_inline)) void note_kept(mark_ctx *c, void *p, uintptr_t hd, gc_block *b,
                                                            size_t total) {
  if (b && (b->flags & F_UNREACHED)) {
    b->kept = (uint16_t)(b->kept + total / HK_GC_GRANULE);
    if (hd & (HK_GC_HDR_BARRIER | GC_HDR_LEAF)) *hdr_of(p) = hd & ~(HK_GC_HDR_BARRIER | GC_HDR_LEAF);
    return;
  }
  if (!(hd & HK_GC_HDR_NOSCAN) && !gc_stack_push(c->h, c->kept, p))
    hk__fatal("gc: out of memory for the collector's work list");
}

/* Mark the object *slot refers to (evacuating it first when its block is a candidate); scan: queue
 * its slots (false: its children are known to be marked). fin: the finalization passes, which note
 * what they mark (a compile-time constant: the main marking pays nothing for it). */
static inline __attribute__((always_inline)) void mark_ref_t(mark_ctx *c, void **slot, bool scan, bool fin,
                                                              bool ser, bool evac) {
  hk_gc_heap *h = c->h;
  const bool serial = ser || fin; /* known at compile time: no other thread marks */
  void *p = *slot;
  if (fin && in_blocks(p)) {
    /* A pointer-free block nothing live reached, holding no finalizable object (F_FINAL): what
     * the pass keeps there needs no mark, only the block (see KEPT_UNREAD). The object itself is
     * not read: on the finalizer benchmark each dead handle's buffer was a cache miss here. Not
     * in an evacuated block: its live objects moved out (so nothing is marked there), and a slot
     * to one of them is updated below. */
    gc_block *b = block_of_obj(p);
    if ((b->flags & (F_DATA | F_UNREACHED | F_FINAL | F_EVAC)) == (F_DATA | F_UNREACHED)) {
      b->kept |= KEPT_UNREAD;
      return;
    }
  }
  uintptr_t hd = __atomic_load_n(hdr_of(p), __ATOMIC_ACQUIRE);
  if (!in_blocks(p)) {
    gc_large *l = large_of(p);
    if (__atomic_load_n(&l->mark, __ATOMIC_RELAXED) != h->epoch &&
        __atomic_exchange_n(&l->mark, h->epoch, __ATOMIC_RELAXED) != h->epoch) {
      c->live += l->total;
      if (fin) note_kept(c, p, hd, NULL, 0);
      if (scan && !(hd & HK_GC_HDR_NOSCAN)) mark_scan(c, p, hd);
    } else if (fin && (hd & HK_GC_HDR_FINALIZABLE)) {
      push_or_die(h, c->reached, p);
    }
    return;
  }
  if (hd & HK_GC_HDR_FORWARDED) {
    *slot = fwd_of(hd);
    return;
  }
  size_t total = hdr_total(hd);
  gc_block *b = block_of_obj(p);
  /* (The finalization passes are serial and evacuate nothing: no budget, no other thread.) */
  if (!fin && evac && (__atomic_load_n(&b->flags, __ATOMIC_RELAXED) & F_EVAC) && !(hd & HK_GC_HDR_PINNED)) {
    /* An object of an evacuated block either moves or stays, for every slot that refers to it: a
     * marked one (in place before the phase, or by a serial pass) or a gray one (kept in place by
     * a thread of this phase) stays. */
    if (!(hd & HK_GC_HDR_GRAY) && !mark_test_shared(p) && evac_allowed(c, total)) {
      /* Opportunistic evacuation: move out of a sparsely used block while marking. */
      bool data = (hd & HK_GC_HDR_NOSCAN) != 0;
      char *dst = bump_fast(&c->mature[data], total);
      if (!dst) {
        ctx_lock(c);
        dst = hk__gc_mature_alloc_in(h, &c->mature[data], &c->overflow[data], total, data);
        ctx_unlock(c);
      }
      memcpy(dst, hdr_of(p), total);
      uintptr_t fwd = (uintptr_t)dst | HK_GC_HDR_FORWARDED;
      if (serial || !c->par) {
        *hdr_of(p) = fwd;
      } else if (!__atomic_compare_exchange_n(hdr_of(p), &hd, fwd, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        /* Another thread moved it first, or keeps it in place (gray): ours is left unmarked,
         * the sweep takes it back. */
        if (hd & HK_GC_HDR_FORWARDED) {
          *slot = fwd_of(hd);
          return;
        }
        goto in_place;
      }
      c->evac_budget -= total;
      p = dst + HK_GC_GRANULE;
      *slot = p;
      c->evacuated += total;
    } else if (!serial && c->par && !(hd & HK_GC_HDR_GRAY) &&
               !__atomic_compare_exchange_n(hdr_of(p), &hd, hd | HK_GC_HDR_GRAY, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE) &&
               (hd & HK_GC_HDR_FORWARDED)) {
      /* This thread cannot move it (its budget is spent) and says so on the header, so that no
       * other thread moves it either once this one has marked it and queued its slots; here
       * another thread moved it first. (Gray is free during a complete full collection's marking:
       * the sticky log's gray bits were cleared before it; unstick_evac clears these.) */
      *slot = fwd_of(hd);
      return;
    }
  }
in_place:
  if (serial ? !mark_set(p) : !mark_claim(c, p)) {
    /* A finalizable object already marked may be a dead one this pass kept for its own finalizer
     * before something else dead reached it: full_finalizers takes it off the ready list. */
    if (fin && (hd & HK_GC_HDR_FINALIZABLE)) push_or_die(h, c->reached, p);
    return;
  }
  /* A block the finalization passes found unreached usually becomes young, where line marks mean
   * nothing: stamp_lines marks them for the few that stay mature. */
  if (!fin || !(b->flags & F_UNREACHED)) lines_mark_shared(p, total, h->epoch);
  c->live += total;
  if (fin) note_kept(c, p, hd, b, total); /* (nothing moves in the finalization passes: p is in b) */
  if (scan && !(hd & HK_GC_HDR_NOSCAN) && !gc_hdr_leaf(hd)) mark_scan(c, p, hd);
}

#define mark_ref(c, slot, scan) mark_ref_t((c), (slot), (scan), false, false, true)

static inline __attribute__((always_inline)) void mark_visit(hk_gc_visitor *v, void **slot) {
  mark_ref((mark_ctx *)v, slot, true);
}
static inline __attribute__((always_inline)) void mark_visit_fin(hk_gc_visitor *v, void **slot) {
  mark_ref_t((mark_ctx *)v, slot, true, true, true, false);
}

static void mark_visit_v(hk_gc_visitor *v, void **slot) { mark_visit(v, slot); }
static void mark_visit_fin_v(hk_gc_visitor *v, void **slot) { mark_visit_fin(v, slot); }
#define MARK_VISIT(v, slot) mark_visit((v), (slot))
#define MARK_VISIT_FIN(v, slot) mark_visit_fin((v), (slot))

#define TAIL_DRAIN 64
/* A whole-object item: a traced object has its trace function run here (true); otherwise the
 * pointer tail to mark is words [*start, *n) of o (false). */
static inline __attribute__((always_inline)) bool obj_trace_or_tail(mark_ctx *c, void *o, size_t *start, size_t *n) {
  uintptr_t hd = *hdr_of(o);
  const hk_gc_type_desc *d = &c->h->types[hdr_type(hd)].d;
  if (d->trace) {
    d->trace(o, &c->v);
    return true;
  }
  *start = d->tail_start;
  *n = (hdr_total(hd) - HK_GC_GRANULE) / sizeof(void *);
  return false;
}

/* An object item tail_drain met: a traced object is traced, a tail of at most TAIL_DRAIN elements
 * marked, both here (they only queue slots: this never recurses); a longer tail is set aside on
 * c->aside, given back to the work list when the outer tail is done (its own drains run then). */
static void tail_obj(mark_ctx *c, void *item) {
  void *o = (void *)((uintptr_t)item & ~ITEM_OBJ);
  size_t start, n;
  if (obj_trace_or_tail(c, o, &start, &n)) return;
  void **w = (void **)o;
  if (n > start + TAIL_DRAIN) {
    ctx_lock(c);
    push_or_die(c->h, &c->aside, item);
    ctx_unlock(c);
    return;
  }
  for (size_t i = start; i < n; i++)
    if (gc_is_ref((uintptr_t)w[i])) mark_ref_t(c, &w[i], true, false, false, true);
}

/* tail_drain's rare cases, out of line: item is NULL at an emptied chunk (the pop is taken below
 * it), or an object item (tail_obj). Pushing an object item back and stopping, as tail_drain did,
 * left every slot below it queued: with an array of nodes pointing to small arrays each drain
 * marked two slots per run of 64 elements. Returns a slot above base, or NULL. */
static __attribute__((noinline)) void *tail_drain_slow(mark_ctx *c, void *item, size_t base) {
  for (;;) {
    if (!item) {
      ctx_lock(c);
      item = hk__gc_stack_pop(c->h, &c->work);
      ctx_unlock(c);
      if (!item) return NULL;
    }
    if (!((uintptr_t)item & ITEM_OBJ)) return item;
    tail_obj(c, item);
    if (c->work.count <= base) return NULL;
    item = gc_stack_pop(&c->work);
  }
}

/* The slots the last TAIL_DRAIN elements of a tail queued (above base), marked while the
 * prefetches mark_scan started for them are fresh. ser, evac: as mark_drain_t's. */
static inline __attribute__((always_inline)) void tail_drain(mark_ctx *c, size_t base, bool ser, bool evac) {
  while (c->work.count > base) {
    void *item = gc_stack_pop(&c->work);
    if (hk_unlikely(!item || ((uintptr_t)item & ITEM_OBJ))) {
      item = tail_drain_slow(c, item, base);
      if (!item) return;
    }
    mark_ref_t(c, (void **)item, true, false, ser, evac);
  }
}

/* Gives the long tails tail_obj set aside back to the work list. */
static __attribute__((noinline)) void tail_unaside(mark_ctx *c) {
  ctx_lock(c);
  void *item;
  while ((item = hk__gc_stack_pop(c->h, &c->aside))) push_or_die(c->h, &c->work, item);
  hk__gc_stack_clear(c->h, &c->aside);
  ctx_unlock(c);
}

/* A whole-object item (see ITEM_OBJ): run its trace function, or mark its tail. Each element is
 * marked at once (a leaf needs no work item at all) and only queues its own slots, so this never
 * recurses. ser, evac: as mark_drain_t's, one copy per variant of the marking (the tail of a large
 * array is most of the marking on some heaps: the finalizer benchmark's ring). */
static inline __attribute__((always_inline)) void mark_obj_item_t(mark_ctx *c, void *o, bool fin, bool ser,
                                                                   bool evac) {
  size_t start, n;
  if (obj_trace_or_tail(c, o, &start, &n)) return;
  void **w = (void **)o;
  size_t base = c->work.count;
  for (size_t i = start; i < n; i++) {
    if (i + TAIL_AHEAD < n && gc_is_ref((uintptr_t)w[i + TAIL_AHEAD])) __builtin_prefetch(hdr_of(w[i + TAIL_AHEAD]));
    if (gc_is_ref((uintptr_t)w[i])) mark_ref_t(c, &w[i], true, fin, ser, evac);
    if (!fin && (i & (TAIL_DRAIN - 1)) == TAIL_DRAIN - 1) tail_drain(c, base, ser, evac);
  }
  if (!fin && hk_unlikely(c->aside.top)) tail_unaside(c);
}

static __attribute__((noinline)) void mark_obj_item(mark_ctx *c, void *o) { mark_obj_item_t(c, o, false, false, true); }
static __attribute__((noinline)) void mark_obj_item_p(mark_ctx *c, void *o) { mark_obj_item_t(c, o, false, false, false); }
static __attribute__((noinline)) void mark_obj_item_se(mark_ctx *c, void *o) {
  mark_obj_item_t(c, o, false, true, true);
}
static __attribute__((noinline)) void mark_obj_item_s(mark_ctx *c, void *o) {
  mark_obj_item_t(c, o, false, true, false);
}
static void mark_obj_item_fin(mark_ctx *c, void *o) { mark_obj_item_t(c, o, true, true, false); }

/* The finalization pass's trace of a dead finalizable object it has just marked: its children
 * are marked at once (prefetch_children started their misses records ahead), without
 * GC_TRACE_WITH's own prefetch loop or a trip through the work list (this pass ran 290
 * instructions per dead object of the finalizer workload). */
static inline __attribute__((always_inline)) void fin_trace(mark_ctx *c, void *o) {
  uintptr_t hd = *hdr_of(o);
  if (hd & HK_GC_HDR_NOSCAN) return;
  const hk_gc_type_desc *d = &c->h->types[hdr_type(hd)].d;
  if (hk_unlikely(d->trace != NULL)) {
    mark_obj_item_fin(c, o);
    return;
  }
  void **w = (void **)o;
  for (uint64_t m = gc_layout_mask(d, hd); m; m &= m - 1) {
    unsigned i = (unsigned)__builtin_ctzll(m);
    if (gc_is_ref((uintptr_t)w[i])) mark_ref_t(c, &w[i], true, true, true, false);
  }
  if (hk_unlikely(d->flags & HK_GC_TYPE_TAIL_POINTERS)) mark_obj_item_fin(c, o); /* (the tail) */
}

/* Marks from the frames of self (when unclaimed) or else of a mutator nobody has claimed; false
 * when none is left. */
static bool mark_frames(mark_ctx *c, hk_gc_mutator *self) {
  if (hk__gc_frames_visit_next(c->h, self, &c->v)) return true;
  c->frames = false;
  return false;
}

/* ser: no parallel phase (known at compile time; the finalization passes are always serial);
 * evac: there may be objects to evacuate (else no block's F_EVAC flag is read). */
static inline __attribute__((always_inline)) void mark_drain_t(mark_ctx *c, bool fin, bool ser, bool evac) {
  void **fifo[MARK_FIFO];
  unsigned head = 0, n = 0;
  for (;;) {
    void *item;
    while ((item = ctx_pop(c))) {
      if ((uintptr_t)item & ITEM_OBJ) {
        void *o = (void *)((uintptr_t)item & ~ITEM_OBJ);
        if (fin) mark_obj_item_fin(c, o);
        else if (!ser && evac) mark_obj_item(c, o);
        else if (!ser) mark_obj_item_p(c, o);
        else if (evac) mark_obj_item_se(c, o);
        else mark_obj_item_s(c, o);
      } else {
        void **s = (void **)item;
        __builtin_prefetch(hdr_of(*s));
        if (n < MARK_FIFO) {
          fifo[(head + n++) % MARK_FIFO] = s;
          continue;
        }
        void **t = fifo[head];
        fifo[head] = s;
        head = (head + 1) % MARK_FIFO;
        mark_ref_t(c, t, true, fin, ser, evac);
      }
      if (!ser && c->par && hk_unlikely(gc_par_wanted(c->par, &c->work))) hk__gc_par_share(c->par, &c->work);
    }
    if (n) {
      void **t = fifo[head];
      head = (head + 1) % MARK_FIFO;
      n--;
      mark_ref_t(c, t, true, fin, ser, evac);
      continue;
    }
    if (c->frames && mark_frames(c, NULL)) continue;
    if (!c->par || !hk__gc_par_take(c->par, &c->work)) return;
  }
}

/* A collection with one mutator (or none parked to help) marks without the parallel phase's
 * atomics and checks, and without looking for candidate blocks when it has no budget to copy
 * their objects (a serial marker without budget leaves them in place anyway): a sticky
 * collection, or one due by the growth policy under a limit its copies would not fit below.
 * A parallel phase of a collection without candidate blocks (choose_candidates flags none, or
 * gives at least an eighth of the heap) skips the block test too, and the gray compare-and-swap
 * that test led to. Not one whose budget the roots marked before it spent: it has candidates. */
static __attribute__((noinline)) void mark_drain_par_plain(mark_ctx *c) { mark_drain_t(c, false, false, false); }

static void mark_drain(mark_ctx *c) {
  if (c->par) mark_drain_t(c, false, false, true);
  else if (c->evac_budget) mark_drain_t(c, false, true, true);
  else mark_drain_t(c, false, true, false);
}
static void mark_drain_fin(mark_ctx *c) { mark_drain_t(c, true, true, false); }

/* A parallel phase's marking: without the evacuation tests when the phase has no budget (see
 * mark_drain). Chosen here, by the callers, so that mark_drain's serial cases stay as they were. */
static void mark_drain_par(mark_ctx *c, const mark_job *j) {
  __atomic_fetch_add(j->evac ? &c->h->par_mark_evac : &c->h->par_mark_plain, 1, __ATOMIC_RELAXED);
  if (j->evac) mark_drain(c);
  else mark_drain_par_plain(c);
}

/* A parked mutator's part of a parallel mark: its own frames first, then whatever is left. */
static void mark_help(gc_par *p, hk_gc_mutator *self) {
  mark_job *j = (mark_job *)p;
  hk_gc_heap *h = p->heap;
  gc_bump mature[2] = {{0}}, overflow[2] = {{0}};
  mark_ctx c = {.v = {mark_visit_v}, .h = h, .mature = mature, .overflow = overflow, .par = p, .frames = true};
  mark_frames(&c, self);
  mark_drain_par(&c, j);
  gc_lock(h);
  for (int i = 0; i < 2; i++) {
    hk__gc_bump_reset(&mature[i]);
    hk__gc_bump_reset(&overflow[i]);
  }
  hk__gc_stack_clear(h, &c.work);
  j->live += c.live;
  j->evacuated += c.evacuated;
  j->evac_left += c.evac_budget; /* (unused slices) */
  gc_unlock(h);
}

static inline __attribute__((always_inline)) bool full_alive(hk_gc_heap *h, void **slot) {
  void *p = *slot;
  if (!in_blocks(p)) return large_of(p)->mark == h->epoch;
  /* The side bitmap first: only an object of an evacuated block needs its header read. */
  if (mark_test(p)) return true;
  if (!(block_of_obj(p)->flags & F_EVAC)) return false;
  uintptr_t hd = *hdr_of(p);
  if (hd & HK_GC_HDR_FORWARDED) {
    *slot = fwd_of(hd);
    return true;
  }
  return mark_test(p);
}

static void full_weaks(hk_gc_heap *h) {
  for (hk_gc_weak *w = h->weaks; w; w = w->next) {
    if (!w->target || ((uintptr_t)w->target & 7)) continue;
    if (!full_alive(h, &w->target)) {
      w->target = NULL;
      h->weak_cleared++;
    }
  }
}

/* Read an object's pointer slots and prefetch their targets' headers (layout types only): the
 * finalization passes visit dead objects in record order, so the misses can be started ahead. */
static inline void prefetch_children(hk_gc_heap *h, const void *obj) {
  uintptr_t hd = *hdr_of(obj);
  if (hd & (HK_GC_HDR_NOSCAN | HK_GC_HDR_FORWARDED)) return;
  const hk_gc_type_desc *d = &h->types[hdr_type(hd)].d;
  if (d->trace) return;
  void *const *w = (void *const *)obj;
  for (uint64_t m = gc_layout_mask(d, hd); m; m &= m - 1) {
    uintptr_t r = (uintptr_t)w[__builtin_ctzll(m)];
    if (gc_is_ref(r)) __builtin_prefetch((void *)(r - HK_GC_GRANULE));
  }
}

#define FIN_AHEAD 16 /* records ahead whose object is prefetched; children at half that */

/* Mature blocks in which marking from the roots found nothing: what finalization marks in them is
 * kept only for finalizers (see keep_young). */
static void flag_unreached(hk_gc_heap *h) {
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
      if (s->blocks[i].state != B_MATURE) continue;
      uint64_t any = 0;
      for (size_t w = 0; w < GC_GRANULES / 64; w++) any |= s->marks[i][w];
      if (!any) s->blocks[i].flags |= F_UNREACHED;
    }
}

static inline bool unreached_block(const void *obj) {
  return in_blocks(obj) && (block_of_obj(obj)->flags & F_UNREACHED);
}

/* Remember an old object that may point into blocks made young (the world is stopped). */
static inline void remember_old(hk_gc_heap *h, void *o) {
  if (*hdr_of(o) & HK_GC_HDR_BARRIER) {
    *hdr_of(o) &= ~HK_GC_HDR_BARRIER;
    push_or_die(h, &h->remset, o);
  }
}

/* How many blocks may become young under the heap limit. Young blocks count twice there (a
 * collection may copy them all): with automatic finalizers alloc.c's room_for runs the pending
 * finalizers, then a minor collection frees these blocks, before it would collect the mature
 * space again, so they need no room. With manual ones the finalizers may wait across minor
 * collections, which would copy all of it: then the room must be there, next nursery included. */
static size_t young_budget(const hk_gc_heap *h) {
  if (!h->max_heap || !(h->opts.flags & HK_GC_OPT_MANUAL_FINALIZERS)) return SIZE_MAX;
  size_t used = hk__gc_heap_bytes(h) / GC_BLOCK_SIZE + h->blocks_young + 2 * hk__gc_nursery_target(h) + 1;
  size_t cap = h->max_heap / GC_BLOCK_SIZE;
  return cap > used ? cap - used : 0;
}

/* The line marks of an F_UNREACHED block that stays mature after all: everything marked there was
 * marked by the finalization passes, which left its lines unmarked (see mark_ref_t). */
static void stamp_lines(hk_gc_heap *h, gc_block *b) {
  gc_seg *s = seg_of_block(b);
  size_t i = block_no(b);
  char *start = block_start(b);
  for (size_t w = 0; w < GC_GRANULES / 64; w++)
    for (uint64_t bits = s->marks[i][w]; bits; bits &= bits - 1) {
      void *o = start + (w * 64 + (size_t)__builtin_ctzll(bits) + 1) * HK_GC_GRANULE;
      lines_mark_shared(o, hdr_total(*hdr_of(o)), h->epoch);
    }
}

/* The bytes finalization kept in an F_UNREACHED block: the granules it marked, or for objects it
 * kept unread (KEPT_UNREAD) the block's used lines as the last sweep counted them (all of them for
 * a block promoted in place since), an upper bound; *unread gets that estimate. */
static size_t kept_bytes(const gc_block *b, size_t *unread) {
  size_t n = (size_t)(b->kept & ~KEPT_UNREAD) * HK_GC_GRANULE;
  if (b->kept & KEPT_UNREAD) {
    size_t e = (GC_LINES - (size_t)(b->free_lines < GC_LINES ? b->free_lines : GC_LINES - 1)) * GC_LINE_SIZE;
    *unread += e;
    n += e;
  }
  return n;
}

/* The line marks of an F_UNREACHED block that stays mature: from its mark bits (stamp_lines), or
 * all of them when it holds objects kept unread, which have none: the block is held whole until
 * the next complete collection (*whole: hk__gc_full makes the next one complete). */
static void hold_lines(hk_gc_heap *h, gc_block *b, bool *whole) {
  if (b->kept & KEPT_UNREAD) {
    memset(seg_of_block(b)->lines[block_no(b)], h->epoch, GC_LINES);
    *whole = true;
  } else {
    stamp_lines(h, b);
  }
}

typedef struct hold_ctx {
  hk_gc_visitor v;
  hk_gc_heap *h;
  bool young_target; /* a slot points into a block of objects with pointers that may become young */
  bool held;         /* a pointer-free block stays mature */
  size_t held_bytes; /* what finalization kept in those blocks */
  size_t unread;     /* of which estimated (kept_bytes) */
  bool whole;        /* a block of objects kept unread among them (hold_lines) */
} hold_ctx;

/* A slot of a kept object that stays old. A pointer-free block it points into stays mature: that
 * block would only become young for the next minor collection to copy (promote) what the
 * remembered object reaches there, a copy of garbage that the next full collection frees anyway
 * (on the finalizer benchmark 0.5 MB of buffers per full collection, whose handles shared blocks
 * with live ones). A pointer block may hold more than the object reaches: it becomes young. */
static inline __attribute__((always_inline)) void hold_visit(hk_gc_visitor *v, void **slot) {
  void *p = *slot;
  if (!in_blocks(p)) return;
  gc_block *b = block_of_obj(p);
  if (!(b->flags & F_UNREACHED)) return;
  if (b->flags & F_DATA) {
    b->flags &= (uint8_t)~F_UNREACHED;
    hold_lines(((hold_ctx *)v)->h, b, &((hold_ctx *)v)->whole);
    ((hold_ctx *)v)->held = true;
    ((hold_ctx *)v)->held_bytes += kept_bytes(b, &((hold_ctx *)v)->unread);
    b->kept = 0;
  } else {
    ((hold_ctx *)v)->young_target = true;
  }
}
static void hold_visit_v(hk_gc_visitor *v, void **slot) { hold_visit(v, slot); }
#define HOLD_VISIT(v, slot) hold_visit((v), (slot))

/* What finalization keeps alive is garbage once the finalizers have run, but in the mature space
 * only the next full collection would reclaim it: on a finalizer-heavy program it took about
 * half the room the growth policy allows, so full collections came twice as often. Objects made
 * together tend to die together, so most of what is kept sits in blocks where the roots reached
 * nothing (F_UNREACHED): those blocks become young, in place, and the next minor
 * collection frees them, copying out only what a finalizer resurrected. For that the young
 * invariants must hold: their objects' barrier bits are cleared (note_kept did it), their mark
 * bits too (minor collections use them for pinned objects), and every kept object left in the
 * mature space that may point into them (kept, so reached from nothing live) is remembered,
 * unless all it reaches there is pointer-free (hold_visit). Nothing live points into them.
 * Returns the bytes of kept objects made young; *held_bytes gets those left in pointer-free
 * blocks held mature (garbage too once the finalizers have run). Both include the estimates for
 * objects kept unread, which *unread gets as well (kept_bytes). */
static size_t keep_young(hk_gc_heap *h, gc_stack *kept, size_t *held_bytes, size_t *unread, bool *whole) {
  size_t bytes = 0, budget = young_budget(h);
  bool skipped = false, held = false;
  /* The kept objects that stay old (note_kept): those pointing into pointer blocks that may
   * become young are remembered below; the pointer-free blocks they point into stay mature. */
  gc_stack remember = {0};
  void *o;
  while ((o = GC_POP(h, kept))) {
    hold_ctx hc = {.v = {hold_visit_v}, .h = h};
    GC_TRACE_WITH(h, o, &hc.v, HOLD_VISIT);
    held |= hc.held;
    *held_bytes += hc.held_bytes;
    *unread += hc.unread;
    *whole |= hc.whole;
    if (hc.young_target) push_or_die(h, &remember, o);
  }
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
      gc_block *b = &s->blocks[i];
      if (!(b->flags & F_UNREACHED)) continue;
      if (!budget && b->kept) { /* stays mature: handled below */
        skipped = true;
        continue;
      }
      b->flags &= (uint8_t)~F_UNREACHED;
      size_t n = kept_bytes(b, unread);
      bool any = b->kept != 0;
      b->kept = 0;
      if (!any) continue; /* garbage only: the sweep frees it */
      memset(s->marks[i], 0, sizeof s->marks[i]);
      gc_block_retype(h, b, B_YOUNG);
      b->next = h->young;
      h->young = b;
      bytes += n;
      budget--;
      h->kept_young_blocks++;
    }
  /* Kept objects left old in F_UNREACHED blocks (note_kept cleared their barrier bits and did not
   * note them) may point into them: their barrier bits come back, and they are remembered. */
  if (skipped)
    for (gc_seg *s = h->segs; s; s = s->next)
      for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
        gc_block *b = &s->blocks[i];
        if (!(b->flags & F_UNREACHED)) continue;
        b->flags &= (uint8_t)~F_UNREACHED;
        kept_bytes(b, unread); /* (counted live: it stays) */
        hold_lines(h, b, whole);
        b->kept = 0;
        if (b->flags & F_DATA) continue;
        char *start = block_start(b);
        for (size_t w = 0; w < GC_GRANULES / 64; w++)
          for (uint64_t bits = s->marks[i][w]; bits; bits &= bits - 1) {
            void *o = start + (w * 64 + (size_t)__builtin_ctzll(bits) + 1) * HK_GC_GRANULE;
            if (*hdr_of(o) & HK_GC_HDR_NOSCAN) continue;
            *hdr_of(o) = gc_hdr_rearm(*hdr_of(o));
            if (bytes) remember_old(h, o);
          }
      }
  while (bytes && (o = GC_POP(h, &remember))) remember_old(h, o);
  hk__gc_stack_clear(h, &remember);
  if (skipped || held) {
    /* Records put on the young list for blocks that stayed mature go back to the old one. */
    gc_flist young = h->final_young;
    gc_final f;
    h->final_young = (gc_flist){0};
    while (flist_pop(h, &young, &f))
      flist_push_or_die(h, in_blocks(f.obj) && block_of_obj(f.obj)->state == B_YOUNG ? &h->final_young : &h->final_old, &f);
  }
  return bytes;
}

/* A mark bit of an object in place (the finalization passes move nothing), set or cleared. */
static inline void fin_mark_put(hk_gc_heap *h, const void *obj, bool on) {
  if (!in_blocks(obj)) {
    large_of(obj)->mark = on ? h->epoch : 0;
    return;
  }
  uint64_t bit, *w = mark_word(obj, &bit);
  *w = on ? *w | bit : *w & ~bit;
}
static inline bool fin_marked(hk_gc_heap *h, const void *obj) {
  return in_blocks(obj) ? mark_test(obj) : large_of(obj)->mark == h->epoch;
}

/* Ordered finalization of the old finalizable objects (see final.c for the rule), in one pass over
 * the dead ones in record order, with their headers and children prefetched ahead (each is
 * typically a cache miss: this was half of a full collection's time on the finalizer workload).
 * A dead object already marked when its turn comes was reached from an earlier one: it waits.
 * One still unmarked is marked and traced at once and goes on the ready list: what it reaches
 * must outlive its finalizer, and it is kept alive either way. If something traced later (or the
 * object itself, through a cycle) reaches it, mark_ref_t finds a marked finalizable object and
 * notes it in c->reached; those come off the ready list at the end. This replaced a second pass
 * that re-read every dead header (phase 1 traced, phase 2 marked the unreached ones). */
static size_t full_finalizers(mark_ctx *c) {
  hk_gc_heap *h = c->h;
  gc_flist dead = {0};
  gc_chunk *src = h->final_old.top;
  h->final_old = (gc_flist){0};
  /* The records were registered together and their objects tend to die together: a chunk whose
   * records are all live (or all dead) moves to its list as a whole, without copying them (the
   * copy of every record was 9% of the finalizer workload's instructions). Only a mixed chunk is
   * split, and freed once read: the records are never held twice. */
  for (gc_chunk *ch = src, *prev; ch; ch = prev) {
    prev = ch->prev;
    gc_final *r = flist_recs(ch);
    size_t n = ch->n, live = 0;
    for (size_t i = 0; i < n; i++) {
      bool alive = full_alive(h, &r[i].obj);
      live += alive;
      /* (for the finalization pass: a block that may hold a finalizable object it must mark) */
      if (!alive && in_blocks(r[i].obj)) block_of_obj(r[i].obj)->flags |= F_FINAL;
    }
    /* One header per chunk (its records' objects were made together and tend to be alike): an
     * estimate of the finalizable bytes still live, for the sticky decision (hk__gc_full). */
    if (live == n && n) c->fin_live += live * hdr_total(*hdr_of(r[0].obj));
    else if (live) c->fin_live += live * 2 * HK_GC_GRANULE; /* (a mixed chunk: the smallest object) */
    if (n && (live == n || live == 0)) {
      gc_flist *to = live ? &h->final_old : &dead;
      ch->prev = to->top;
      to->top = ch;
      to->count += n;
      continue;
    }
    /* (full_alive again: a forwarded record points to the marked copy now) */
    for (size_t i = 0; i < n; i++) flist_push_or_die(h, full_alive(h, &r[i].obj) ? &h->final_old : &dead, &r[i]);
    hk__gc_chunk_free(h, ch);
  }
  if (!dead.top) return 0;
  flag_unreached(h);
  gc_stack kept = {0}, reached = {0};
  gc_flist ready = {0};
  c->kept = &kept;
  c->reached = &reached;
  c->v.visit = mark_visit_fin_v; /* (for types traced by a function) */
  /* Nothing moves from here: what is kept dies soon, and keep_young turns blocks in place. */
  c->evac_budget = 0;
  while (dead.top) {
    gc_chunk *ch = dead.top;
    gc_final *r = flist_recs(ch);
    size_t nready = 0; /* the ready records are packed in place at the chunk's start (below) */
    for (size_t i = 0; i < ch->n; i++) {
      if (i + FIN_AHEAD < ch->n) __builtin_prefetch(hdr_of(r[i + FIN_AHEAD].obj), 1);
      if (i + FIN_AHEAD / 2 < ch->n) prefetch_children(h, r[i + FIN_AHEAD / 2].obj);
      void *p = r[i].obj;
      /* Only a mark test: nothing moves in this pass, and the split updated forwarded records. A
       * dead object in a block is marked here with the bit found (the common case, not through
       * mark_ref_t, which would find the word again). */
      bool marked;
      if (in_blocks(p)) {
        uint64_t bit, *w = mark_word(p, &bit);
        marked = (*w & bit) != 0;
        if (!marked) {
          *w |= bit;
          uintptr_t hd = *hdr_of(p);
          size_t total = hdr_total(hd);
          gc_block *b = block_of_obj(p);
          if (!(b->flags & F_UNREACHED)) lines_mark_shared(p, total, h->epoch);
          c->live += total;
          note_kept(c, p, hd, b, total);
        }
      } else {
        marked = large_of(p)->mark == h->epoch;
        if (!marked) mark_ref_t(c, &r[i].obj, false, true, true, false);
      }
      if (marked) { /* kept for another's finalizer: young if its block becomes young */
        flist_push_or_die(h, unreached_block(p) ? &h->final_young : &h->final_old, &r[i]);
        continue;
      }
      fin_trace(c, p);
      if (c->work.count) mark_drain_fin(c);
      if (nready != i) r[nready] = r[i];
      nready++;
    }
    dead.top = ch->prev;
    /* The chunk becomes a chunk of the ready list: most dead records are ready, and copying each
     * to a new chunk wrote 24 bytes per finalized object into lines not in the cache. */
    if (nready) {
      ch->n = nready;
      ch->prev = ready.top;
      ready.top = ch;
      ready.count += nready;
    } else {
      hk__gc_chunk_free(h, ch);
    }
  }
  if (reached.count) {
    /* Rare (a dead object reaching a finalizable one): the reached objects' marks are cleared for
     * a moment to find their records among the ready ones (mark bits, not headers: no misses). */
    gc_flist all = ready;
    ready = (gc_flist){0};
    for (gc_chunk *ch = reached.top; ch; ch = ch->prev)
      for (size_t i = 0; i < ch->n; i++) fin_mark_put(h, ch->items[i], false);
    gc_final f;
    while (flist_pop(h, &all, &f)) {
      if (fin_marked(h, f.obj)) flist_push_or_die(h, &ready, &f);
      else flist_push_or_die(h, unreached_block(f.obj) ? &h->final_young : &h->final_old, &f);
    }
    for (gc_chunk *ch = reached.top; ch; ch = ch->prev)
      for (size_t i = 0; i < ch->n; i++) fin_mark_put(h, ch->items[i], true);
  }
  hk__gc_stack_clear(h, &reached);
  hk__gc_flist_splice(&h->final_ready, &ready);
  c->kept = NULL;
  c->reached = NULL;
  c->v.visit = mark_visit_v;
  size_t unread = 0;
  size_t young = keep_young(h, &kept, &c->held, &unread, &c->held_whole);
  c->live += unread; /* (estimated as kept, so that live_bytes stays what the roots reached) */
  hk__gc_stack_clear(h, &kept);
  return young;
}

/* Evacuation candidates, Immix style: the sparsest mature blocks (by the free lines the last sweep
 * counted) first, as many as the copy budget can empty, never blocks more than three quarters
 * used. The budget is what the free blocks hold, but at least an eighth of the heap: at a tight
 * heap limit the copies may overshoot it by that much during the collection, because evacuation
 * is what brings a fragmented heap back under the limit. A collection due by the growth policy
 * (sparse_only) takes no block more than half used: the copies go to fresh blocks while the old
 * ones are still held, so they raise the peak, and with room left the holes of denser blocks are
 * refilled by promotion anyway (quadtree at 3x: peak heap 11.9 -> 10.0 MB, as many full
 * collections); under a limit, none at all unless the budget fits below it (below). Returns the
 * budget (0: none chosen). */
/* Does block i of s hold an object that was pinned when the last full collection marked it? Read
 * through that collection's mark bits (object starts; their memory is not reused before the
 * next complete sweep, which comes after this). Evacuating such a block frees nothing: its pinned
 * object keeps it, and the copies take new blocks. Under a heap limit, where every failing
 * allocation forces full collections, each one evacuated such blocks again, past the limit, and
 * the heap grew without end (26 KiB live, some of it pinned, under a 192 KiB limit: 11.6 MiB
 * after 115 000 failing allocations; test_gc_hunt3 pinned_evac). */
static bool holds_pinned(gc_seg *s, size_t i) {
  const char *start = block_start(&s->blocks[i]);
  for (size_t w = 0; w < GC_GRANULES / 64; w++)
    for (uint64_t bits = s->marks[i][w]; bits; bits &= bits - 1)
      if (*(const uintptr_t *)(const void *)(start + (w * 64 + (size_t)__builtin_ctzll(bits)) * HK_GC_GRANULE) &
          HK_GC_HDR_PINNED)
        return true;
  return false;
}

static size_t choose_candidates(hk_gc_heap *h, bool sparse_only) {
  if (h->opts.flags & HK_GC_OPT_NO_EVACUATION) return 0;
  size_t heap = hk__gc_heap_bytes(h), budget = h->nfree * GC_BLOCK_SIZE, floor = heap / 8;
  if (budget < floor) budget = floor;
  /* Under a limit, a collection due by the growth policy evacuates only if its copies fit below
   * the limit: they are a peak above the heap, and the limit is the memory the embedder accepts.
   * Not a budget cut to the room: copies are counted by the lines the last sweep saw, promotion
   * has refilled holes since, so a short budget half-empties its candidates, holds both copies and
   * blocks, and the heap grows into collections forced by the limit (quadtree 2x: 129 -> 187 full
   * collections, peak heap 10.3 -> 11.4 MiB; skipping: 132, 9.3 MiB, see docs/gc.md). A collection
   * forced by the limit still evacuates: that is what brings a fragmented heap back under it. */
  if (sparse_only && h->max_heap) {
    size_t room = h->max_heap > heap ? h->max_heap - heap : 0;
    if (budget > room) return 0;
  }
  size_t hist[GC_LINES + 1] = {0};
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++)
      if (s->blocks[i].state == B_MATURE) hist[s->blocks[i].free_lines]++;
  size_t want = 0;
  unsigned threshold = GC_LINES + 1;
  for (unsigned f = GC_LINES; f >= (sparse_only ? GC_LINES / 2 : GC_LINES / 4); f--) {
    size_t live = hist[f] * (GC_LINES - f) * GC_LINE_SIZE;
    if (hist[f] && want + live > budget) break;
    want += live;
    threshold = f;
  }
  if (threshold > GC_LINES) return 0;
  /* A collection due by the growth policy evacuates only when its candidates' free lines (what
   * emptying them gives back) are a sixteenth of the heap or more. Below that the gain is a few
   * blocks, while marking takes the slower path that tests every object's block for evacuation,
   * and the candidates' counts are those of the last sweep: promotion has filled their holes
   * since, with young objects that are then copied (the finalizer workload at 3x: 25-60 KiB
   * expected, 600-800 KiB copied per collection without finalizers; docs/gc.md, *The finalizer
   * round, fifteenth session*). */
  if (sparse_only) {
    size_t gain = 0;
    for (unsigned f = threshold; f <= GC_LINES; f++) gain += hist[f] * f * GC_LINE_SIZE;
    if (gain < heap / 16) return 0;
  }
  size_t n = 0;
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
      gc_block *b = &s->blocks[i];
      if (b->state == B_MATURE && b->free_lines >= threshold && b->free_lines > 0 && !holds_pinned(s, i)) {
        b->flags |= F_EVAC;
        n++;
      }
    }
  return n ? budget : 0;
}

static void sweep(hk_gc_heap *h) {
  h->recyclable[0] = h->recyclable[1] = NULL;
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
      gc_block *b = &s->blocks[i];
      if (b->state != B_MATURE) continue;
      b->flags &= (uint8_t)~(F_EVAC | F_CUR | F_FINAL);
      unsigned live = 0, holes = 0;
      bool in_hole = false;
      /* Eight line marks at a time: most runs are all used or all free. */
      const uint64_t ones = 0x0101010101010101u, epochs = ones * h->epoch;
      for (unsigned l = 0; l < GC_LINES; l += 8) {
        uint64_t x;
        memcpy(&x, &s->lines[i][l], sizeof x);
        x ^= epochs; /* a used line's byte is now 0 */
        if (x == 0) {
          live += 8;
          in_hole = false;
        } else if (!((x - ones) & ~x & (ones << 7))) { /* no zero byte: eight free lines */
          holes += !in_hole;
          in_hole = true;
        } else {
          for (unsigned k = l; k < l + 8; k++) {
            bool used = s->lines[i][k] == h->epoch;
            live += used;
            holes += !used && !in_hole;
            in_hole = !used;
          }
        }
      }
      if (live == 0) {
        hk__gc_block_release(h, b);
        continue;
      }
      b->free_lines = (uint16_t)(GC_LINES - live);
      b->holes = (uint16_t)holes;
      if (b->free_lines) {
        bool data = (b->flags & F_DATA) != 0;
        b->next = h->recyclable[data];
        h->recyclable[data] = b;
      }
    }
  for (gc_large *l = h->large, *next; l; l = next) {
    next = l->next;
    if (l->mark != h->epoch) {
      hk__gc_cards_free(h, l);
      hk__gc_large_free(h, l);
    }
  }
}

/* Sticky marks. A collection due by the growth policy right after a full one need not mark the
 * mature space again: what the last full collection marked is taken as live (its mark bits, line
 * marks and large objects' marks are kept), and only what was promoted or allocated large since is
 * marked, from the roots and from the marked objects remembered since (sticky_log: a pointer from
 * a marked object to a newer one was stored through the barrier, so a minor collection saw the
 * object). No evacuation (an unscanned marked object may point to anything), and what the last
 * full collection marked but is dead now waits for the next complete one. On GCBench most of a
 * full collection is re-marking the long-lived tree; a sticky one marks only the tree being built.
 * Whatever a sticky collection marks sticks too, so the estimate left after it only grows: once
 * it has used half of the room the growth policy gave (full_live to full_threshold), the next
 * collection is complete again. */
static void sticky_log_drain(mark_ctx *c, bool trace) {
  hk_gc_heap *h = c->h;
  void *o;
  while ((o = hk__gc_stack_pop(h, &h->sticky_log))) {
    *hdr_of(o) &= ~HK_GC_HDR_GRAY;
    if (trace) GC_TRACE_WITH(h, o, &c->v, MARK_VISIT);
  }
  hk__gc_stack_clear(h, &h->sticky_log);
}

/* After a parallel phase: the objects its threads kept in place in evacuated blocks (gray, see
 * mark_ref_t) are the marked objects of those blocks; their gray bits go, since the sticky log
 * relies on gray meaning "logged". */
static void unstick_evac(hk_gc_heap *h) {
  for (gc_seg *s = h->segs; s; s = s->next)
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++) {
      if (!(s->blocks[i].flags & F_EVAC)) continue;
      char *start = block_start(&s->blocks[i]);
      for (size_t w = 0; w < GC_GRANULES / 64; w++)
        for (uint64_t bits = s->marks[i][w]; bits; bits &= bits - 1)
          *(uintptr_t *)(void *)(start + (w * 64 + (size_t)__builtin_ctzll(bits)) * HK_GC_GRANULE) &= ~HK_GC_HDR_GRAY;
    }
}

void hk__gc_full(hk_gc_heap *h, bool compact) {
  double t0 = h->trace ? hk__gc_now_ms() : 0;
  size_t heap_before = hk__gc_heap_bytes(h), estimate_before = h->mature_estimate;
  hk__gc_minor(h, true);
  h->minor_count--; /* counted as part of this full collection */
  bool sticky = !compact && h->sticky_ok && !(h->opts.flags & HK_GC_OPT_NO_STICKY);
  mark_ctx c = {.v = {mark_visit_v}, .h = h, .mature = h->mature, .overflow = h->overflow};

  if (!sticky) {
    /* The log's objects may move below: their gray bits go first. */
    sticky_log_drain(&c, false);
    if (++h->epoch == 0) {
      for (gc_seg *s = h->segs; s; s = s->next) memset(s->lines, 0, sizeof s->lines);
      for (gc_large *l = h->large; l; l = l->next) l->mark = 0;
      h->epoch = 1;
    }
  }
  /* Holes from the last sweep are meaningless under the new epoch (and a sticky collection
   * recounts them): copies go to fresh blocks. */
  for (int i = 0; i < 2; i++) {
    hk__gc_bump_reset(&h->mature[i]);
    hk__gc_bump_reset(&h->overflow[i]);
  }
  h->recyclable[0] = h->recyclable[1] = NULL;
  c.evac_budget = sticky ? 0 : choose_candidates(h, !compact);
  /* (after choose_candidates, which reads the last collection's marks: holds_pinned) */
  if (!sticky)
    for (gc_seg *s = h->segs; s; s = s->next) memset(s->marks, 0, sizeof s->marks);
  /* (read now: the roots below may spend all of the budget, the candidates stay) */
  const bool candidates = c.evac_budget != 0;

  /* The collector's frames, the other roots and the sticky log here; the other mutators' frames
   * in the parallel phase when there is one, each thread starting with its own (as in minor.c). */
  hk__gc_frames_begin(h);
  c.frames = true;
  if (h->collector) mark_frames(&c, h->collector);
  hk__gc_visit_other_roots(h, &c.v);
  if (sticky) sticky_log_drain(&c, true);
  mark_job job = {.evac_left = 0};
  if ((c.work.count > 0 || hk__gc_frames_pending(h)) && hk__gc_par_open(h, &job.par, mark_help)) {
    job.evac_left = c.evac_budget; /* (helpers run once the lock is released) */
    /* The evacuating variant whenever there are candidate blocks, even with the budget spent by
     * the roots: a thread that marks an object there through the visitor (its frames, a trace
     * function) leaves it gray, which unstick_evac clears. The plain variant skipped that, and a
     * gray object is never logged for a sticky collection (gc_sticky_note): the young object
     * stored into it since was freed while reachable (gc.threads_noevac, spent budget). */
    job.evac = candidates;
    c.evac_budget = 0;
    c.par = &job.par;
    gc_unlock(h);
    mark_drain_par(&c, &job);
    gc_lock(h);
    hk__gc_par_close(&job.par);
    c.par = NULL;
    if (job.evac) unstick_evac(h);
    c.live += job.live;
    c.evacuated += job.evacuated;
    c.evac_budget += job.evac_left;
  } else {
    mark_drain(&c);
  }
  hk_assert(!c.frames);
  full_weaks(h);
  /* What finalization keeps alive below is garbage once its finalizers have run: it holds memory
   * until the next full collection, which is what reclaims it, so the heap is not grown for it
   * (the next full collection may then come after one minor collection, when it is most of the
   * heap). */
  size_t live_reached = c.live;
  size_t kept_young = full_finalizers(&c);
  hk__gc_stack_clear(h, &c.work);

  for (int i = 0; i < 2; i++) {
    hk__gc_bump_reset(&h->mature[i]);
    hk__gc_bump_reset(&h->overflow[i]);
  }
  sweep(h);
  h->bytes_evacuated += c.evacuated;
  if (sticky) {
    /* c.live is only what this collection marked: the last full one's marks still count. */
    h->live_bytes += c.live - kept_young - c.held;
    h->mature_estimate = h->live_bytes;
    h->sticky_count++;
  } else {
    /* What finalization kept in blocks made young is no longer in the mature space, and what it
     * kept in blocks held mature is garbage once the finalizers have run: neither is live. */
    h->live_bytes = c.live - kept_young - c.held;
    h->mature_estimate = h->live_bytes;
    h->full_live = live_reached;
    if (live_reached > h->live_peak) h->live_peak = live_reached;
    size_t next = (size_t)((double)live_reached * (100.0 + h->opts.growth_percent) / 100.0);
    size_t floor = hk__gc_threshold_floor(h);
    h->full_threshold = next > floor ? next : floor;
  }
  /* The next one is sticky only if at least half the room the growth policy gives is left (else
   * it would be due again at once, and complete then); a sticky collection that left less makes
   * the next ones complete for a while, longer each time (old objects die between full
   * collections on this heap: a sticky one cannot free them). */
  size_t room = h->full_threshold - h->full_live;
  bool roomy = h->mature_estimate <= h->full_live + room / 2;
  if (sticky && !roomy) h->sticky_backoff = h->sticky_backoff < 32 ? h->sticky_backoff * 2 + 1 : 64;
  else if (sticky) h->sticky_backoff = 0;
  if (!sticky && h->sticky_skip > 0) {
    h->sticky_skip--;
    h->sticky_ok = false;
  } else {
    h->sticky_ok = roomy;
    if (sticky && !roomy) h->sticky_skip = h->sticky_backoff;
  }
  /* Finalizable objects dying steadily (an eighth of the room kept for finalizers here): only a
   * complete collection finds the old ones dead, a sticky one takes them as live (finalizers 3x:
   * 3 of 17 full collections were sticky and found nothing to finalize, 4.5% of the instructions). */
  if (c.live - live_reached > room / 8) h->sticky_ok = false;
  /* Live old finalizable objects taking as much (a runtime's handles outliving the nursery): they
   * die old too, so the next sticky collection would find none of them (finalizers 3x: the one
   * sticky attempt, after the first complete collection, marked 9.4 MB, freed nothing and cost a
   * full collection more: 15 -> 14 without it, -2.6% instructions). */
  if (!sticky && c.fin_live > room / 8) h->sticky_ok = false;
  /* A block of objects kept unread held mature has no mark bits: a sticky collection would take it
   * as unreached, though an object a finalizer resurrected may point into it (the resurrected
   * object was marked here, so a sticky collection would not trace it), and could make it young
   * for what it keeps there, the next minor collection freeing the resurrected object's child. A
   * complete collection traces the resurrected object from the roots. (The finalizer benchmark
   * holds some each time, but its collections are complete anyway: fin_live above.) */
  if (c.held_whole) h->sticky_ok = false;
  hk__gc_release_free_segments(h, hk__gc_free_reserve(h));
  h->full_count++;
  if (h->trace)
    hk__message("gc: full %lu (%s): %lu us, heap %zu -> %zu KiB, estimate %zu KiB, reached %zu KiB, "
                 "kept for finalizers %zu KiB (young %zu), evacuated %zu KiB, next at %zu KiB, free blocks %zu",
                 (unsigned long)h->full_count, sticky ? "sticky" : compact ? "forced" : "growth",
                 (unsigned long)((hk__gc_now_ms() - t0) * 1000), heap_before >> 10, hk__gc_heap_bytes(h) >> 10,
                 estimate_before >> 10, live_reached >> 10, (c.live - live_reached) >> 10, kept_young >> 10, c.evacuated >> 10,
                 h->full_threshold >> 10, h->nfree);
}
