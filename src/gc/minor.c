/* Minor collections: copy the live objects of the FROM blocks (the whole young generation) into
 * survivor blocks or, once old enough (or at once while survival is high), into the mature space.
 * Roots are those of collect.c plus the remembered sets; a work list (not Cheney order, since
 * copies go to two places) scans the copies. Pinned young objects stay and their block becomes
 * mature. Then weak references and young finalizable objects are processed.
 *
 * When other mutators are parked, the tracing runs in parallel (thread.c's gc_par): each thread
 * copies with allocators of its own, objects are forwarded with a compare-and-swap on the header
 * (a thread that loses the race drops its copy), and a thread out of work takes some of another's. */
#include "gc/gc_internal.h"

#include <stddef.h>

typedef struct minor_ctx {
  hk_gc_visitor v;
  hk_gc_heap *h;
  gc_stack work;
  gc_stack *remset;     /* where old objects that keep young fields go */
  gc_bump *survivor, *mature, *overflow; /* [2] each: the heap's, or a helper's own */
  gc_par *par;          /* in a parallel phase: the heap lock is not held */
  bool atomic;          /* another thread may copy the same objects: forward by compare-and-swap */
  unsigned promote_age; /* 0: promote everything */
  bool frames;          /* mutators' frames may be left unclaimed: claim them before taking work */
  bool young_found;     /* a visited slot points to a young object after the visit */
  size_t fin_alive;     /* young finalizable objects found alive (minor_finalizers) */
  bool fin_died;        /* and some found dead */
  uint64_t copied, promoted;
  uint64_t cas; /* objects forwarded by compare-and-swap */
} minor_ctx;

typedef struct minor_job {
  gc_par par; /* first: helpers get this */
  unsigned promote_age;
  uint64_t copied, promoted;
} minor_job;

/* Work items are payload addresses (8-byte aligned), so the low bits can say what the item is:
 * a copy this collection made knows where it went, and its scan skips the checks a general item
 * needs (pinned objects, remembered old objects). */
#define WORK_SURVIVOR ((uintptr_t)1) /* a survivor copy: young after this collection */
#define WORK_PROMOTED ((uintptr_t)2) /* a promoted copy: mature, in a block, barrier bit clear */
#define WORK_TAGS (WORK_SURVIVOR | WORK_PROMOTED)

/* Other threads may set F_CUR or F_RETAIN on a block while this one reads its flags. */
static inline uint8_t block_flags(const gc_block *b) { return __atomic_load_n(&b->flags, __ATOMIC_RELAXED); }

/* Young after this collection: a survivor copy (young block not being evacuated). */
static inline bool young_survivor(const void *obj) {
  if (!in_blocks(obj)) return false;
  gc_block *b = block_of_obj(obj);
  return b->state == B_YOUNG && !(block_flags(b) & F_FROM);
}

/* The slow paths of the collector's stacks and allocators take the heap lock in a parallel phase. */
static void ctx_lock(minor_ctx *c) {
  if (c->par) gc_lock(c->h);
}
static void ctx_unlock(minor_ctx *c) {
  if (c->par) gc_unlock(c->h);
}
static inline void ctx_push(minor_ctx *c, gc_stack *s, void *p) {
  gc_chunk *ch = s->top;
  if (hk_likely(ch && ch->n < GC_CHUNK_CAP)) {
    ch->items[ch->n++] = p;
    s->count++;
    return;
  }
  ctx_lock(c);
  push_or_die(c->h, s, p);
  ctx_unlock(c);
}
static inline void *ctx_pop(minor_ctx *c) {
  void *p = gc_stack_pop(&c->work);
  if (p || !c->work.top || !c->work.top->prev) return p;
  ctx_lock(c);
  p = hk__gc_stack_pop(c->h, &c->work);
  ctx_unlock(c);
  return p;
}
static char *ctx_alloc(minor_ctx *c, bool mature, size_t total, bool data) {
  ctx_lock(c);
  char *p = mature ? hk__gc_mature_alloc_in(c->h, &c->mature[data], &c->overflow[data], total, data)
                   : hk__gc_survivor_alloc_in(c->h, &c->survivor[data], total, data);
  ctx_unlock(c);
  return p;
}

static inline __attribute__((always_inline)) void minor_visit(hk_gc_visitor *v, void **slot) {
  minor_ctx *c = (minor_ctx *)v;
  void *p = *slot;
  if (!in_blocks(p)) return; /* large: old */
  gc_block *b = block_of_obj(p);
  if (!(block_flags(b) & F_FROM)) {
    if (b->state == B_YOUNG) c->young_found = true;
    return;
  }
  uintptr_t hd = __atomic_load_n(hdr_of(p), __ATOMIC_ACQUIRE);
  if (hd & HK_GC_HDR_FORWARDED) {
    void *n = fwd_of(hd);
    *slot = n;
    if (young_survivor(n)) c->young_found = true;
    return;
  }
  size_t total = hdr_total(hd);
  if (hd & HK_GC_HDR_PINNED) {
    /* Pinned: stays where it is; its block will become a mature block. */
    uint64_t bit, *w = mark_word(p, &bit);
    if (!(__atomic_fetch_or(w, bit, __ATOMIC_RELAXED) & bit)) {
      __atomic_fetch_or(&b->flags, (uint8_t)F_RETAIN, __ATOMIC_RELAXED);
      c->promoted += total;
      if (!(hd & HK_GC_HDR_NOSCAN)) ctx_push(c, &c->work, p);
    }
    return;
  }
  bool data = (hd & HK_GC_HDR_NOSCAN) != 0;
  bool refs = !data && gc_has_refs(c->h, p, hd); /* else nothing to scan in the copy */
  unsigned age = hdr_age(hd) + 1;
  char *dst;
  uintptr_t nh;
  bool promote = c->promote_age == 0 || age >= c->promote_age;
  if (promote) {
    dst = bump_fast(&c->mature[data], total);
    if (!dst) dst = ctx_alloc(c, true, total, data);
    /* An old object without young fields has its barrier armed (as scan_old would do). */
    nh = hdr_with_age(hd, 0) | (data || refs ? 0 : HK_GC_HDR_BARRIER | GC_HDR_LEAF);
  } else {
    dst = bump_fast(&c->survivor[data], total);
    if (!dst) dst = ctx_alloc(c, false, total, data);
    nh = hdr_with_age(hd, age);
  }
  copy_payload(dst + HK_GC_GRANULE, p, total - HK_GC_GRANULE);
  *(uintptr_t *)dst = nh;
  uintptr_t fwd = (uintptr_t)dst | HK_GC_HDR_FORWARDED;
  if (c->atomic) {
    c->cas++;
    if (!__atomic_compare_exchange_n(hdr_of(p), &hd, fwd, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      hk_assert_internal(hd & HK_GC_HDR_FORWARDED);
      /* Another thread copied it first: ours stays behind as a dead object (in a young block it
       * goes with the next minor collection, in a mature one with the next sweep). */
      void *n = fwd_of(hd);
      *slot = n;
      if (young_survivor(n)) c->young_found = true;
      return;
    }
  } else {
    *hdr_of(p) = fwd;
  }
  if (promote) {
    c->promoted += total;
  } else {
    c->copied += total;
    c->young_found = true;
  }
  *slot = dst + HK_GC_GRANULE;
  if (refs) ctx_push(c, &c->work, (void *)((uintptr_t)(dst + HK_GC_GRANULE) | (promote ? WORK_PROMOTED : WORK_SURVIVOR)));
}

static void minor_visit_v(hk_gc_visitor *v, void **slot) { minor_visit(v, slot); }

/* GC_TRACE_WITH's visitor in this file: minor_visit inlined. */
#define MINOR_VISIT(v, slot) minor_visit((v), (slot))

/* Only the dirty cards of a carded large object: a card that still points to a young object
 * stays dirty, and the object stays on the heap's remembered set (its barrier bit stays set, so
 * later stores keep marking cards). */
static void scan_cards(minor_ctx *c, void *o, gc_large *l) {
  hk_gc_heap *h = c->h;
  const hk_gc_type_desc *d = &h->types[hdr_type(*hdr_of(o))].d;
  void **w = (void **)o;
  size_t words = (l->total - HK_GC_GRANULE) / sizeof(void *);
  bool tail = (d->flags & HK_GC_TYPE_TAIL_POINTERS) != 0, any = false;
  for (size_t wi = 0; wi < l->card_words; wi++) {
    for (uint64_t bits = l->cards[wi]; bits; bits &= bits - 1) {
      size_t card = wi * 64 + (size_t)__builtin_ctzll(bits);
      size_t lo = card * (GC_CARD_SIZE / sizeof(void *)), hi = lo + GC_CARD_SIZE / sizeof(void *);
      if (hi > words) hi = words;
      c->young_found = false;
      for (size_t i = lo; i < hi; i++) {
        bool ptr = (tail && i >= d->tail_start) || (i < 64 && ((d->pointer_mask >> i) & 1));
        if (ptr && w[i] && !((uintptr_t)w[i] & 7)) minor_visit(&c->v, &w[i]);
      }
      if (c->young_found) any = true;
      else l->cards[wi] &= ~((uint64_t)1 << (card % 64));
    }
  }
  if (any) ctx_push(c, c->remset, o);
  else l->queued = 0;
}

static void scan_old(minor_ctx *c, void *o) {
  if (!in_blocks(o)) {
    gc_large *l = large_of(o);
    if (l->cards) {
      if ((*hdr_of(o) & HK_GC_HDR_BARRIER) && l->queued) {
        scan_cards(c, o, l);
        return;
      }
      /* Remembered whole (a store through the plain barrier): the scan below covers the cards. */
      memset(l->cards, 0, l->card_words * sizeof(uint64_t));
      l->queued = 0;
    }
  }
  c->young_found = false;
  GC_TRACE_WITH(c->h, o, &c->v, MINOR_VISIT);
  if (*hdr_of(o) & HK_GC_HDR_NOSCAN) return;
  if (c->young_found) {
    *hdr_of(o) &= ~HK_GC_HDR_BARRIER; /* the world is stopped: no atomics needed */
    ctx_push(c, c->remset, o);
  } else {
    *hdr_of(o) = gc_hdr_rearm(*hdr_of(o));
  }
}

/* An entry of a remembered set: noted for the next sticky collection, then scanned. */
static void scan_remembered(minor_ctx *c, void *o) {
  gc_sticky_note(c->h, o);
  scan_old(c, o);
}

/* Visits the frames of self (when unclaimed) or else of a mutator nobody has claimed; false
 * when none is left. */
static bool minor_frames(minor_ctx *c, hk_gc_mutator *self) {
  if (hk__gc_frames_visit_next(c->h, self, &c->v)) return true;
  c->frames = false;
  return false;
}

/* The collector of a minor phase copies alone until a helper asks to join: the compare-and-swap
 * that makes a copy safe against another copier cost a quarter of minor_drain's time in 2-thread
 * profiles, and a helper that is not on a core when the phase opens joins late or never (docs/gc.md,
 * "The collector copies alone until a helper arrives"). From the grant on (a release store after
 * all its plain forwarding stores) it forwards by compare-and-swap like the helpers. */
static void minor_grant(minor_ctx *c) {
  c->atomic = true;
  __atomic_store_n(&c->par->granted, 1, __ATOMIC_RELEASE);
}

static void minor_drain(minor_ctx *c) {
  for (;;) {
    void *item;
    while ((item = ctx_pop(c))) {
      uintptr_t tag = (uintptr_t)item & WORK_TAGS;
      void *o = (void *)((uintptr_t)item & ~WORK_TAGS);
      if (tag == WORK_PROMOTED) {
        /* scan_old's last part, specialised for a fresh copy in a block (its barrier bit is
         * clear and it is not pointer-free): sharing it with scan_old measured 1% more
         * instructions on gcbench. */
        c->young_found = false;
        GC_TRACE_WITH(c->h, o, &c->v, MINOR_VISIT);
        if (c->young_found) ctx_push(c, c->remset, o);
        else *hdr_of(o) |= HK_GC_HDR_BARRIER;
      } else if (tag == WORK_SURVIVOR || young_survivor(o)) {
        GC_TRACE_WITH(c->h, o, &c->v, MINOR_VISIT);
      } else {
        scan_old(c, o);
      }
      if (c->par) {
        if (!c->atomic && hk_unlikely(__atomic_load_n(&c->par->join_req, __ATOMIC_RELAXED))) minor_grant(c);
        if (hk_unlikely(gc_par_wanted(c->par, &c->work))) hk__gc_par_share(c->par, &c->work);
      }
    }
    if (c->frames && minor_frames(c, NULL)) continue;
    if (!c->par) return;
    if (!c->atomic) minor_grant(c); /* (a late helper may still take the frames of its own) */
    if (!hk__gc_par_take(c->par, &c->work)) return;
  }
}

/* A parked mutator's part of a parallel minor collection: its own frames first (the objects it
 * allocated, in its core's cache; nothing to wait for), then whatever is left. */
static void minor_help(gc_par *p, hk_gc_mutator *self) {
  minor_job *j = (minor_job *)p;
  hk_gc_heap *h = p->heap;
  gc_bump survivor[2] = {{0}}, mature[2] = {{0}}, overflow[2] = {{0}};
  gc_stack remset = {0};
  minor_ctx c = {.v = {minor_visit_v}, .h = h, .remset = &remset, .survivor = survivor, .mature = mature,
                 .overflow = overflow, .par = p, .atomic = true, .promote_age = j->promote_age, .frames = true};
  hk__gc_par_join(p);
  minor_frames(&c, self);
  minor_drain(&c);
  gc_lock(h);
  for (int i = 0; i < 2; i++) {
    /* The survivor blocks are on the young list already; the rest of a mature hole waits for the
     * next sweep. */
    hk__gc_bump_reset(&survivor[i]);
    hk__gc_bump_reset(&mature[i]);
    hk__gc_bump_reset(&overflow[i]);
  }
  void *o;
  while ((o = hk__gc_stack_pop(h, &remset))) push_or_die(h, &h->remset, o);
  hk__gc_stack_clear(h, &remset);
  hk__gc_stack_clear(h, &c.work);
  j->copied += c.copied;
  j->promoted += c.promoted;
  gc_unlock(h);
}

/* Where a young object stands after tracing: moved (slot updated), kept in place, or dead. */
static bool minor_alive(void **slot) {
  void *p = *slot;
  if (!in_blocks(p) || !(block_of_obj(p)->flags & F_FROM)) return true;
  uintptr_t hd = *hdr_of(p);
  if (hd & HK_GC_HDR_FORWARDED) {
    *slot = fwd_of(hd);
    return true;
  }
  return (hd & HK_GC_HDR_PINNED) && mark_test(p);
}

static void minor_weaks(hk_gc_heap *h) {
  for (hk_gc_weak *w = h->weaks; w; w = w->next) {
    if (!w->target || ((uintptr_t)w->target & 7)) continue;
    if (!minor_alive(&w->target)) {
      w->target = NULL;
      h->weak_cleared++;
    }
  }
}

static bool is_young_obj(const void *p) { return in_blocks(p) && block_of_obj(p)->state == B_YOUNG && !(block_of_obj(p)->flags & F_RETAIN); }

/* ---- card marking of large arrays ---------------------------------------------------------------- */

/* Heap lock held. Tables up to 512 bytes (objects up to 2 MiB) are small records, larger ones a
 * chunk; beyond a chunk's reach the object is remembered whole. */
static uint64_t *cards_make(hk_gc_heap *h, gc_large *l) {
  if (l->cards) return l->cards;
  size_t ncards = (l->total - HK_GC_GRANULE + GC_CARD_SIZE - 1) >> GC_CARD_SHIFT;
  size_t words = (ncards + 63) / 64, bytes = words * sizeof(uint64_t);
  uint64_t *t = NULL;
  if (bytes <= 512) {
    t = hk__gc_meta_alloc(h, bytes);
  } else if (bytes <= sizeof(((gc_chunk *)0)->items)) {
    gc_chunk *c = hk__gc_chunk_alloc(h);
    if (c) {
      t = (uint64_t *)c->items;
      memset(t, 0, bytes);
    }
  }
  if (!t) return NULL;
  l->card_words = words;
  __atomic_store_n(&l->cards, t, __ATOMIC_RELEASE);
  return t;
}

void hk__gc_cards_free(hk_gc_heap *h, gc_large *l) {
  if (!l->cards) return;
  size_t bytes = l->card_words * sizeof(uint64_t);
  if (bytes <= 512) hk__gc_meta_free(h, l->cards, bytes);
  else hk__gc_chunk_free(h, (gc_chunk *)((char *)l->cards - offsetof(gc_chunk, items)));
  l->cards = NULL;
  l->card_words = 0;
  l->queued = 0;
}

static __attribute__((noinline)) void barrier_slot_mark(hk_gc_mutator *m, void *obj, void *slot);

/* A store into an old object whose slot is known. A large array traced by its layout keeps its
 * barrier bit and gets the slot's card marked (the object is queued once per minor cycle);
 * anything else is remembered whole, as by hk_gc_write_barrier. The usual call (a loop filling
 * an old array: 63 stores of 64 find their card dirty and the array queued) returns here, before
 * the register saves of the rest (52 instructions per store on the finalizer benchmark's ring,
 * where every store is such a call). A card table exists only for a layout-traced large object
 * (cards_make), and only a collection frees it. */
void hk_gc_write_barrier_slot_slow(hk_gc_mutator *m, void *obj, void *slot) {
  if (gc_reentered("hk_gc_write_barrier_slot", "nothing remembered")) return;
  if (gc_mutator_dead(m, "hk_gc_write_barrier_slot", "nothing remembered")) return;
  if (!in_blocks(obj)) {
    gc_large *l = large_of(obj);
    const uint64_t *cards = __atomic_load_n(&l->cards, __ATOMIC_ACQUIRE);
    size_t off = (size_t)((char *)slot - (char *)obj), card = off >> GC_CARD_SHIFT;
    if (cards && off < l->total - HK_GC_GRANULE &&
        ((__atomic_load_n(&cards[card / 64], __ATOMIC_RELAXED) >> (card % 64)) & 1) &&
        __atomic_load_n(&l->queued, __ATOMIC_RELAXED))
      return;
  }
  barrier_slot_mark(m, obj, slot);
}

static __attribute__((noinline)) void barrier_slot_mark(hk_gc_mutator *m, void *obj, void *slot) {
  hk_gc_heap *h = m->heap;
  if (in_blocks(obj) || h->types[hdr_type(*hdr_of(obj))].d.trace) {
    hk_gc_write_barrier_slow(m, obj);
    return;
  }
  gc_large *l = large_of(obj);
  size_t off = (size_t)((char *)slot - (char *)obj);
  uint64_t *cards = __atomic_load_n(&l->cards, __ATOMIC_ACQUIRE);
  if (!cards && off < l->total - HK_GC_GRANULE) {
    gc_lock(h);
    cards = cards_make(h, l);
    gc_unlock(h);
  }
  if (!cards || off >= l->total - HK_GC_GRANULE) {
    hk_gc_write_barrier_slow(m, obj);
    return;
  }
  size_t card = off >> GC_CARD_SHIFT;
  uint64_t bit = (uint64_t)1 << (card % 64);
  if (!(__atomic_load_n(&cards[card / 64], __ATOMIC_RELAXED) & bit)) __atomic_fetch_or(&cards[card / 64], bit, __ATOMIC_RELAXED);
  if (__atomic_load_n(&l->queued, __ATOMIC_RELAXED) || __atomic_exchange_n(&l->queued, 1, __ATOMIC_RELAXED)) return;
  gc_chunk *c = m->remset.top;
  if (c && c->n < GC_CHUNK_CAP) {
    c->items[c->n++] = obj;
    m->remset.count++;
    return;
  }
  gc_lock(h);
  if (!hk__gc_stack_push(h, &m->remset, obj)) hk__fatal("gc: out of memory for the remembered set");
  gc_unlock(h);
}

/* Ordered finalization over the young finalizable objects (see final.c for the rule). */
static void minor_finalizers(minor_ctx *c) {
  hk_gc_heap *h = c->h;
  gc_flist src = h->final_young, dead = {0};
  h->final_young = (gc_flist){0};
  gc_final f;
  /* The young list plus the records the mutators registered since the last collection. */
  hk_gc_mutator *m = h->mutators;
  for (;;) {
    if (!flist_pop(h, &src, &f)) {
      while (m && !m->fin_local.top) m = m->next;
      if (!m) break;
      src = m->fin_local;
      m->fin_local = (gc_flist){0};
      m = m->next;
      continue;
    }
    if (minor_alive(&f.obj)) {
      flist_push_or_die(h, is_young_obj(f.obj) ? &h->final_young : &h->final_old, &f);
      c->fin_alive++;
    } else {
      flist_push_or_die(h, &dead, &f);
    }
  }
  if (!dead.top) return;
  c->fin_died = true;
  /* What is kept for a finalizer dies right after it runs: copy it within the young generation
   * even while survival is high, so it is freed by a minor collection, not promoted. */
  if (c->promote_age) c->promote_age = 3;
  /* Phase 1: everything reachable from a dead finalizable object must outlive its finalizer. */
  FLIST_FOR(&dead, d) {
    if (minor_alive(&d->obj)) continue; /* reached from an earlier one: its copy gets scanned */
    hk__gc_trace_object(h, d->obj, &c->v);
    minor_drain(c);
  }
  /* Phase 2: the ones still unreached are ready; they live on until their finalizer has run. */
  while (flist_pop(h, &dead, &f)) {
    if (minor_alive(&f.obj)) {
      flist_push_or_die(h, is_young_obj(f.obj) ? &h->final_young : &h->final_old, &f);
      continue;
    }
    minor_visit(&c->v, &f.obj);
    minor_drain(c);
    flist_push_or_die(h, &h->final_ready, &f);
  }
}

/* The pause of a minor collection is its survivors (roots and remembered sets are small next to
 * them), so the nursery follows what survives: cut in proportion when a minor collection copied
 * more than GC_PAUSE_SURVIVORS (a big structure being built), doubled back towards the configured
 * size while it copies less than half of that. A survival *rate* would not do: a small nursery
 * makes everything in it look long-lived and would never grow again. Collections forced early
 * (heap limit, explicit calls) saw too small a nursery to judge by. */
static void adapt_nursery(hk_gc_heap *h, size_t nursery_bytes, uint64_t survived) {
  if (!nursery_bytes || nursery_bytes * 2 < h->nursery_blocks * GC_BLOCK_SIZE) return;
  size_t want = h->nursery_blocks;
  if (survived > GC_PAUSE_SURVIVORS)
    want = (size_t)((double)want * (double)GC_PAUSE_SURVIVORS / (double)survived);
  else if (survived < GC_PAUSE_SURVIVORS / 2)
    want *= 2;
  if (want < GC_NURSERY_MIN_BLOCKS) want = GC_NURSERY_MIN_BLOCKS;
  if (want > h->nursery_max) want = h->nursery_max;
  h->nursery_blocks = want;
}

/* The run of promotions in place after a copying minor collection that kept at least seven eighths
 * of its nursery (0 when it kept less). A run is GC_INPLACE_RUN, then a copying collection
 * measures survival again, so a structure that has just died costs at most that many nurseries
 * of garbage promoted. When the nursery was full of finalizable objects (one per KiB at least)
 * and none of them died, the run doubles, up to GC_INPLACE_RUN_MAX: such objects stand for
 * resources (handles, buffers) that outlive many nurseries, and each copying collection copies
 * them all only to promote them (the finalizer benchmark: 109 copying minor collections of 424,
 * 11% of its instructions). Doubling every run regardless also raised GCBench's peak heap
 * 18.3 -> 19.9 MB (its temporary trees promoted in place after a long-lived one was built). */
static unsigned next_inplace_run(hk_gc_heap *h, const minor_ctx *c, size_t nursery_bytes, uint64_t kept_young) {
  if (!nursery_bytes || kept_young * 8 < (uint64_t)nursery_bytes * 7) return 0;
  if (!h->inplace_run || c->fin_died || c->fin_alive < nursery_bytes / 1024) return GC_INPLACE_RUN;
  return h->inplace_run * 2 < GC_INPLACE_RUN_MAX ? h->inplace_run * 2 : GC_INPLACE_RUN_MAX;
}

void hk__gc_minor(hk_gc_heap *h, bool promote_all) {
  if ((promote_all || h->inplace_left > 0) && hk__gc_promote_blocks_ok(h)) {
    if (!promote_all) h->inplace_left--;
    hk__gc_promote_blocks(h, promote_all);
    return;
  }
  h->survivor_blocks = 0;
  /* When most of the nursery survives (a big structure being built), aging only copies it twice:
   * promote at once until survival drops again. */
  unsigned age = h->high_survival ? 1 : h->opts.promote_age;
  minor_ctx c = {.v = {minor_visit_v}, .h = h, .remset = &h->remset, .survivor = h->survivor, .mature = h->mature,
                 .overflow = h->overflow, .promote_age = promote_all ? 0 : age};
  size_t nursery_bytes = h->young_since_gc * GC_BLOCK_SIZE;
  gc_block *from = h->young;
  h->young = NULL;
  for (gc_block *b = from; b; b = b->next) b->flags |= F_FROM;

  /* The collector's frames first, then the other roots and the remembered sets (the order of a
   * serial collection, which decides where copies go); the other mutators' frames in the parallel
   * phase when there is one, each thread starting with its own. */
  hk__gc_frames_begin(h);
  c.frames = true;
  if (h->collector) minor_frames(&c, h->collector);
  hk__gc_visit_other_roots(h, &c.v);
  /* Remembered objects: old objects that may point into the young generation. */
  gc_stack old_sets[1] = {h->remset};
  h->remset = (gc_stack){0};
  void *o;
  for (hk_gc_mutator *m = h->mutators; m; m = m->next)
    while ((o = hk__gc_stack_pop(h, &m->remset))) scan_remembered(&c, o);
  while ((o = hk__gc_stack_pop(h, &old_sets[0]))) scan_remembered(&c, o);
  hk__gc_stack_clear(h, &old_sets[0]);
  minor_job job = {.promote_age = c.promote_age};
  if ((c.work.count > 0 || hk__gc_frames_pending(h)) && hk__gc_par_open(h, &job.par, minor_help)) {
    c.par = &job.par;
    gc_unlock(h);
    minor_drain(&c);
    gc_lock(h);
    hk__gc_par_close(&job.par);
    if (!job.par.helped) h->par_cas_unhelped += c.cas;
    c.par = NULL;
    c.atomic = false;
    c.copied += job.copied;
    c.promoted += job.promoted;
  } else {
    minor_drain(&c);
  }
  hk_assert(!c.frames);
  minor_weaks(h);
  minor_finalizers(&c);
  hk__gc_stack_clear(h, &c.work);

  /* The evacuated blocks are free; those holding pinned objects become mature in place. */
  while (from) {
    gc_block *b = from;
    from = b->next;
    b->next = NULL;
    if (b->flags & F_RETAIN) {
      gc_block_retype(h, b, B_MATURE);
      memset(seg_of_block(b)->marks[block_no(b)], 0, sizeof seg_of_block(b)->marks[0]);
    } else {
      hk__gc_block_release(h, b);
    }
  }
  for (int i = 0; i < 2; i++) {
    if (h->survivor[i].block) h->survivor[i].block->flags &= (uint8_t)~F_CUR;
    h->survivor[i] = (gc_bump){0};
  }
  uint64_t kept = c.copied + c.promoted, aged = h->last_copied;
  h->high_survival = nursery_bytes && kept * 3 > nursery_bytes;
  /* Seven eighths of the nursery kept: the next ones promote the young blocks in place
   * (inplace.c). What the last collection copied into survivor blocks was copied again (or
   * promoted) by this one without being the nursery's: at most the rest is (GCBench's long-lived
   * tree, copied once then promoted out of its survivor blocks, made the next nurseries look
   * alive and cost its 3x run the nursery size that kept it from full collections). */
  uint64_t kept_young = kept > aged ? kept - aged : 0;
  h->last_copied = c.copied;
  if (!promote_all) {
    h->inplace_left = h->inplace_run = next_inplace_run(h, &c, nursery_bytes, kept_young);
    /* Per thread: the nursery is that many times the adapted size, and its copying is shared. */
    size_t k = hk__gc_nursery_target(h) / h->nursery_blocks;
    if (k < 1) k = 1;
    adapt_nursery(h, nursery_bytes / k, kept / k);
  }
  h->young_since_gc = 0;
  h->kept_young_blocks = 0;
  h->bytes_copied += c.copied;
  h->bytes_promoted += c.promoted;
  h->mature_estimate += c.promoted;
  h->minor_count++;
  if (h->trace >= 2)
    hk__message("gc: minor %lu%s: nursery %zu KiB, copied %lu KiB, promoted %lu KiB, next nursery %zu KiB, "
                 "estimate %zu / %zu KiB", (unsigned long)h->minor_count, promote_all ? " (of a full)" : "",
                 nursery_bytes >> 10, (unsigned long)(c.copied >> 10), (unsigned long)(c.promoted >> 10),
                 h->nursery_blocks * GC_BLOCK_SIZE >> 10, h->mature_estimate >> 10, h->full_threshold >> 10);
}
