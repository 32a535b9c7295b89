/* Heaps: creation with options, destruction, limits, types and global roots. */
#include "gc/gc_internal.h"

#define MiB ((size_t)1 << 20)
/* The smallest heap limit: for each kind of object (with pointers, pointer-free) a mature block,
 * a nursery block and its copy reserve. (It was 4 blocks: a program of both kinds keeping a few
 * KiB alive got NULL after 6902 rounds under 128 KiB, and runs on under 160 and 192 KiB.) */
#define GC_MIN_LIMIT (6 * GC_BLOCK_SIZE)
/* The largest nursery_size and initial_heap taken: 64 TiB, as malloc's largest block. SIZE_MAX
 * (a garbage value) meant no minor collection ever, and the nursery's block count times the
 * threads could wrap. */
#define GC_SIZE_OPTION_MAX ((size_t)1 << 46)

void hk_gc_options_init(hk_gc_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->initial_heap = 8 * MiB;
  o->nursery_size = 4 * MiB;
  o->growth_percent = 70; /* see docs/gc.md: peak RSS against CPU */
  o->promote_age = 2;
}

/* Zero fields mean "default", so a partly filled struct works. */
static int normalize(const hk_gc_options *in, hk_gc_options *o) {
  hk_gc_options d;
  hk_gc_options_init(&d);
  *o = in ? *in : d;
  if (!o->initial_heap) o->initial_heap = d.initial_heap;
  if (!o->nursery_size) o->nursery_size = d.nursery_size;
  if (!o->growth_percent) o->growth_percent = d.growth_percent;
  if (!o->promote_age) o->promote_age = d.promote_age;
  if (o->promote_age > 3) return HK_EINVAL;
  if (o->nursery_size > GC_SIZE_OPTION_MAX || o->initial_heap > GC_SIZE_OPTION_MAX) {
    hk__warning("gc: hk_gc_heap_create: %s %zu is over the largest taken, %zu bytes",
                o->nursery_size > GC_SIZE_OPTION_MAX ? "nursery_size" : "initial_heap",
                o->nursery_size > GC_SIZE_OPTION_MAX ? o->nursery_size : o->initial_heap, (size_t)GC_SIZE_OPTION_MAX);
    return HK_EINVAL;
  }
  if (o->nursery_size < GC_BLOCK_SIZE) o->nursery_size = GC_BLOCK_SIZE;
  if (o->max_heap && o->max_heap < GC_MIN_LIMIT) {
    hk__warning("gc: hk_gc_heap_create: max_heap %zu is under the collector's minimum of %zu bytes", o->max_heap,
                (size_t)GC_MIN_LIMIT);
    return HK_EINVAL;
  }
  if (o->growth_percent > 10000) return HK_EINVAL;
  unsigned known = HK_GC_OPT_MANUAL_FINALIZERS | HK_GC_OPT_NO_EVACUATION | HK_GC_OPT_NO_STICKY | HK_GC_OPT_NO_BLOCK_PROMOTION;
  if (o->flags & ~known) {
    hk__warning("gc: hk_gc_heap_create: unknown flags 0x%x", o->flags & ~known);
    return HK_EINVAL;
  }
  return HK_OK;
}

/* The growth policy's floor: initial_heap, or half the heap limit when that is more, but at most
 * GC_FLOOR_LIVE times the most live data a complete full collection has reached. A limit says how
 * much memory the embedder accepts for this heap; collecting while the mature heap is a small part
 * of it only marks the same live data again and again (mtbintrees at 3x, whose live data is 3-8
 * MiB per thread most of the run and 26 MiB at its end, took a full collection every 4.5 MiB
 * promoted and spent 60% of its time collecting; see docs/gc.md, "The growth round"). The cap
 * keeps a limit set far above what the program ever uses (a safety net) from becoming its heap
 * size. Where live * growth is above the floor, the floor changes nothing. */
size_t hk__gc_threshold_floor(const hk_gc_heap *h) {
  size_t f = h->max_heap / GC_FLOOR_DIV, cap = h->live_peak * GC_FLOOR_LIVE;
  if (f > cap) f = cap;
  return f > h->opts.initial_heap ? f : h->opts.initial_heap;
}

static size_t nursery_blocks_for(const hk_gc_options *o) {
  size_t n = o->nursery_size / GC_BLOCK_SIZE;
  if (o->max_heap && n > o->max_heap / GC_BLOCK_SIZE / 8) n = o->max_heap / GC_BLOCK_SIZE / 8;
  return n ? n : 1;
}

int hk_gc_heap_create(const hk_gc_options *opts, hk_gc_heap **heap_out, hk_gc_mutator **mutator_out) {
  if (!heap_out) return HK_EINVAL;
  *heap_out = NULL;
  if (mutator_out) *mutator_out = NULL;
  if (gc_reentered("hk_gc_heap_create", "returns HK_EBUSY")) return HK_EBUSY;
  hk_gc_options o;
  int rc = normalize(opts, &o);
  if (rc != HK_OK) return rc;
  hk__options_init();
  size_t hsize = hk__align_up(sizeof(hk_gc_heap), 4096);
  hk_gc_heap *h = (hk_gc_heap *)hk__gc_seg_alloc(NULL, hk__align_up(hsize, HK_SEGMENT_SIZE), ROLE_HEAP, hsize);
  if (!h) return HK_ENOMEM;
  h->h.heap = h;
  h->h.base.owner = h;
  pthread_mutex_init(&h->lock, NULL);
  pthread_cond_init(&h->cond, NULL);
  h->opts = o;
  h->max_heap = o.max_heap;
  h->nursery_blocks = h->nursery_max = nursery_blocks_for(&o);
  h->full_threshold = hk__gc_threshold_floor(h);
  h->stress = hk_option_get(HK_OPT_GC_STRESS); /* HEAPKIT_GC_STRESS, read at heap creation */
  h->trace = hk_option_get(HK_OPT_GC_TRACE);
  h->parallel = hk_option_get(HK_OPT_GC_PARALLEL) != 0;
  h->epoch = 1;
  h->ntypes = 1;
  hk__gc_fork_track(h);
  *heap_out = h;
  if (mutator_out) {
    *mutator_out = hk_gc_thread_register(h);
    if (!*mutator_out) {
      hk_gc_heap_destroy(h);
      *heap_out = NULL;
      return HK_ENOMEM;
    }
  }
  return HK_OK;
}

static bool heap_ok(const hk_gc_heap *h, const char *fn) {
  if (h && h->h.magic == GC_MAGIC && h->h.role == ROLE_HEAP) return true;
  hk__warning("gc: %s: not a heap", fn);
  return false;
}

int hk_gc_heap_destroy(hk_gc_heap *h) {
  if (!heap_ok(h, "hk_gc_heap_destroy")) return HK_EINVAL;
  if (gc_reentered("hk_gc_heap_destroy", "nothing destroyed (HK_EBUSY)")) return HK_EBUSY;
  if (gc_fork_owns(h)) { /* (its lock and its stopped world belong to the fork until it is done) */
    hk__warning("gc: hk_gc_heap_destroy: called from a fork handler during a fork that holds heap %p; nothing destroyed",
                (void *)h);
    return HK_EBUSY;
  }
  /* off fork's list first: fork takes the list's lock before the heaps' locks */
  hk__gc_fork_untrack(h);
  hk__gc_lock_aside(h);
  pthread_t self = pthread_self();
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) {
    if (!pthread_equal(m->thread, self)) {
      gc_unlock(h);
      hk__gc_fork_track(h);
      hk__warning("gc: hk_gc_heap_destroy: another thread is still registered");
      return HK_EBUSY;
    }
    /* (the finalizer loop would go on walking the destroyed heap's records, the allocation that
     * called the OOM callback with the destroyed heap) */
    if (m->in_finalizers || m->in_oom) {
      gc_unlock(h);
      hk__gc_fork_track(h);
      hk__warning("gc: hk_gc_heap_destroy: called from %s of this heap; nothing destroyed",
                  m->in_finalizers ? "a finalizer" : "the OOM callback");
      return HK_EBUSY;
    }
  }
  hk__gc_self_forget(h);
  /* (their records go with the metadata below: a stale handle's inline allocation bumped on in
   * the freed nursery block, whose segment the page layer may hand to another client) */
  for (hk_gc_mutator *m = h->mutators; m; m = m->next) {
    m->fast.cursor = NULL;
    hk__gc_mutator_disarm(m);
  }
  while (h->large) hk__gc_large_free(h, h->large);
  while (h->segs) {
    gc_seg *s = h->segs;
    h->segs = s->next;
    for (size_t i = GC_SEG_META_BLOCKS; i < GC_BLOCKS_PER_SEG; i++)
      if (s->blocks[i].state != B_FREE) hk__page_inuse_add(-(ptrdiff_t)GC_BLOCK_SIZE);
    gc_unpoison(s, HK_SEGMENT_SIZE);
    hk__segment_free(&s->h.base);
  }
  hk__gc_meta_release_all(h);
  gc_unlock(h);
  pthread_mutex_destroy(&h->lock);
  pthread_cond_destroy(&h->cond);
  h->h.magic = 0;
  hk__segment_free(&h->h.base);
  return HK_OK;
}

void hk_gc_heap_set_limit(hk_gc_heap *h, size_t max_heap) {
  if (!heap_ok(h, "hk_gc_heap_set_limit") || gc_reentered("hk_gc_heap_set_limit", "ignored")) return;
  /* Raised, not refused as by hk_gc_heap_create: there is no result to report a refusal with,
   * and keeping the old limit (perhaps none) would be further from what the caller asked for.
   * (Taken as it was, a 64 KiB limit let 819 small objects be allocated in an empty heap, 1 byte
   * or 32 KiB none: test_gc_hunt3 limit_min.) */
  if (max_heap && max_heap < GC_MIN_LIMIT) {
    hk__warning("gc: hk_gc_heap_set_limit: a limit of %zu bytes is under the collector's minimum of %zu bytes; "
                "the minimum is used", max_heap, (size_t)GC_MIN_LIMIT);
    max_heap = GC_MIN_LIMIT;
  }
  hk__gc_lock_aside(h);
  h->max_heap = max_heap;
  h->opts.max_heap = max_heap;
  h->nursery_max = nursery_blocks_for(&h->opts);
  if (h->nursery_blocks > h->nursery_max) h->nursery_blocks = h->nursery_max;
  size_t floor = hk__gc_threshold_floor(h);
  if (h->full_threshold < floor) h->full_threshold = floor;
  gc_unlock(h);
}

void hk_gc_set_oom_handler(hk_gc_heap *h, hk_gc_oom_fn fn, void *data) {
  if (!heap_ok(h, "hk_gc_set_oom_handler") || gc_reentered("hk_gc_set_oom_handler", "ignored")) return;
  hk__gc_lock_aside(h);
  h->opts.oom = fn;
  h->opts.oom_data = data;
  gc_unlock(h);
}

int hk_gc_type_register(hk_gc_heap *h, const hk_gc_type_desc *d, hk_gc_type *out) {
  if (!heap_ok(h, "hk_gc_type_register") || !d || !out) return HK_EINVAL;
  if ((d->flags & HK_GC_TYPE_NO_POINTERS) && (d->trace || d->pointer_mask || (d->flags & HK_GC_TYPE_TAIL_POINTERS))) {
    hk__warning("gc: type '%s': HK_GC_TYPE_NO_POINTERS with a trace function or a pointer layout", d->name ? d->name : "?");
    return HK_EINVAL;
  }
  /* an unknown bit is a flag of a newer heapkit or garbage: registering as if it were absent
   * would trace the type differently from what the caller asked */
  unsigned known = HK_GC_TYPE_NO_POINTERS | HK_GC_TYPE_TAIL_POINTERS;
  if (d->flags & ~known) {
    hk__warning("gc: type '%s': unknown flags 0x%x", d->name ? d->name : "?", d->flags & ~known);
    return HK_EINVAL;
  }
  if (d->size > HK_GC_MAX_SMALL * 1024) {
    hk__warning("gc: type '%s': size %zu is over the limit of %zu bytes for a fixed-size type", d->name ? d->name : "?",
                d->size, (size_t)HK_GC_MAX_SMALL * 1024);
    return HK_EINVAL;
  }
  if (gc_reentered("hk_gc_type_register", "returns HK_EBUSY")) return HK_EBUSY;
  hk__gc_lock_aside(h);
  if (h->ntypes >= HK_GC_MAX_TYPES) {
    gc_unlock(h);
    return HK_ENOMEM;
  }
  uint32_t id = h->ntypes;
  h->types[id].d = *d;
  h->types[id].used = true;
  __atomic_store_n(&h->ntypes, id + 1, __ATOMIC_RELEASE);
  gc_unlock(h);
  *out = (hk_gc_type)id;
  return HK_OK;
}

int hk_gc_root_add(hk_gc_heap *h, void **slot) {
  if (!heap_ok(h, "hk_gc_root_add") || !slot) return HK_EINVAL;
  if (gc_reentered("hk_gc_root_add", "returns HK_EBUSY")) return HK_EBUSY;
  hk__gc_lock_aside(h);
  gc_root *r = hk__gc_meta_alloc(h, sizeof *r);
  if (r) {
    r->slot = slot;
    r->next = h->roots;
    h->roots = r;
  }
  gc_unlock(h);
  return r ? HK_OK : HK_ENOMEM;
}

int hk_gc_root_remove(hk_gc_heap *h, void **slot) {
  if (!heap_ok(h, "hk_gc_root_remove") || !slot) return HK_EINVAL;
  if (gc_reentered("hk_gc_root_remove", "returns HK_EBUSY")) return HK_EBUSY;
  int rc = HK_EINVAL;
  hk__gc_lock_aside(h);
  for (gc_root **pp = &h->roots; *pp; pp = &(*pp)->next)
    if ((*pp)->slot == slot) {
      gc_root *r = *pp;
      *pp = r->next;
      hk__gc_meta_free(h, r, sizeof *r);
      rc = HK_OK;
      break;
    }
  gc_unlock(h);
  return rc;
}

void hk_gc_set_root_callback(hk_gc_heap *h, hk_gc_roots_fn fn, void *data) {
  if (!heap_ok(h, "hk_gc_set_root_callback") || gc_reentered("hk_gc_set_root_callback", "ignored")) return;
  hk__gc_lock_aside(h);
  h->root_fn = fn;
  h->root_data = data;
  gc_unlock(h);
}

void hk_gc_collect(hk_gc_mutator *m, hk_gc_kind kind) {
  if (gc_reentered("hk_gc_collect", "ignored")) return;
  if (!m || (kind != HK_GC_MINOR && kind != HK_GC_FULL)) {
    hk__warning("gc: hk_gc_collect: %s (ignored)", m ? "unknown kind (HK_GC_MINOR or HK_GC_FULL)" : "NULL mutator");
    return;
  }
  if (gc_mutator_dead(m, "hk_gc_collect", "ignored")) return;
  if (gc_mutator_blocking(m, "hk_gc_collect", "ignored")) return;
  hk_gc_heap *h = m->heap;
  gc_lock(h);
  hk__gc_collect_locked(m, kind);
  gc_unlock(h);
  if (!(h->opts.flags & HK_GC_OPT_MANUAL_FINALIZERS) && !m->in_finalizers) hk__gc_run_finalizers(m);
}

/* ---- pinning ------------------------------------------------------------------------------------ */

/* The pin bit is in the word before obj: a pointer that is not an object of the heap (checked
 * through the segment map, as for finalizers and weak references) or not an object's start
 * (gc_hdr_plausible) is refused, not written. */
static bool pin_ok(hk_gc_mutator *m, void *obj, const char *fn) {
  if (!obj || gc_mutator_dead(m, fn, "ignored") || gc_mutator_blocking(m, fn, "ignored")) return false;
  if (hk__gc_is_object(m->heap, obj)) return true;
  hk__warning("gc: %s: %p is not an object of this heap (or not an object's start)", fn, obj);
  return false;
}

/* From a callback during a collection the object may be a forwarded copy (its header word the new
 * address): refused, as the other entry points are. */
void hk_gc_pin(hk_gc_mutator *m, void *obj) {
  if (gc_reentered("hk_gc_pin", "ignored")) return;
  if (pin_ok(m, obj, "hk_gc_pin")) __atomic_fetch_or(hdr_of(obj), HK_GC_HDR_PINNED, __ATOMIC_RELAXED);
}

void hk_gc_unpin(hk_gc_mutator *m, void *obj) {
  if (gc_reentered("hk_gc_unpin", "ignored")) return;
  if (pin_ok(m, obj, "hk_gc_unpin")) __atomic_fetch_and(hdr_of(obj), ~HK_GC_HDR_PINNED, __ATOMIC_RELAXED);
}

bool hk_gc_is_pinned(const void *obj) {
  return obj && (__atomic_load_n(hdr_of(obj), __ATOMIC_RELAXED) & HK_GC_HDR_PINNED) != 0;
}
