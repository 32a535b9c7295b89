/* Malloc segments: pages inside small and medium segments, one-block large segments, and the
 * abandon/adopt cycle that hands the segments of exited threads to live ones. */
#include "malloc/malloc.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

/* ---- per-thread segment lists (doubly linked through base.next/prev) ------------------------------ */

enum { LIST_NONE = 0, LIST_FREE = 1, LIST_FULL = 2 };

static hk__seg_list *list_of(hk__tld *tld, hk__mseg *seg, uint32_t which) {
  int k = seg->base.kind == HK__SEG_MEDIUM;
  return which == LIST_FREE ? &tld->free_segs[k] : &tld->full_segs[k];
}

static void list_remove(hk__tld *tld, hk__mseg *seg) {
  if (seg->list == LIST_NONE) return;
  hk__seg_list *l = list_of(tld, seg, seg->list);
  hk__segment *s = &seg->base;
  if (s->prev) s->prev->next = s->next;
  else l->first = (hk__mseg *)s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  seg->list = LIST_NONE;
}

static void list_push(hk__tld *tld, hk__mseg *seg, uint32_t which) {
  list_remove(tld, seg);
  hk__seg_list *l = list_of(tld, seg, which);
  seg->base.prev = NULL;
  seg->base.next = l->first ? &l->first->base : NULL;
  if (l->first) l->first->base.prev = &seg->base;
  l->first = seg;
  seg->list = which;
}

/* ---- small and medium segments ----------------------------------------------------------------------- */

/* The units of page idx. */
static uint64_t page_units(const hk__mseg *seg, uint32_t idx) {
  hk_assert(seg->base.unit == HK_SEGMENT_SIZE / HK_SEGMENT_UNITS); /* the units below hold for that unit only (hk__seg_exact_size) */
  size_t page_size = (size_t)1 << seg->base.page_shift;
  size_t per = page_size / seg->base.unit, first_unit = HK_PAGES_OFFSET / seg->base.unit;
  uint64_t one = per >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << per) - 1);
  return one << (first_unit + idx * per);
}

static size_t header_size(uint32_t pages) {
  return hk__align_up(sizeof(hk__mseg) + (pages + 1) * sizeof(hk__page), 4096); /* + pages[pages]: hk__mseg.guard */
}

static void settle_free_pages(hk__tld *tld, hk__mseg *seg);

/* A small or medium segment of all its pages, or under an address-space limit (`ulimit -v`) of
 * the first half, quarter, ... of them (hk__segment_alloc_pages): the header is laid out for every
 * page, so the descriptors past page_count are zero, as the guards are, and a free of a pointer
 * there fails the block test as one into the header does. */
static hk__segment *mseg_reserve(int medium, uint32_t *pages) {
  *pages = medium ? HK_MEDIUM_PAGES : HK_SMALL_PAGES;
  return hk__segment_alloc_pages(HK_PAGES_OFFSET, (size_t)1 << (medium ? HK_MEDIUM_PAGE_SHIFT : HK_SMALL_PAGE_SHIFT), pages,
                                 medium ? HK__SEG_MEDIUM : HK__SEG_SMALL, header_size(*pages));
}

static hk__mseg *mseg_new(hk__tld *tld, int medium) {
  uint32_t pages;
  hk__segment *s = mseg_reserve(medium, &pages);
  if (!s) return NULL;
  hk__mseg *seg = (hk__mseg *)s;
  seg->base.page_shift = medium ? HK_MEDIUM_PAGE_SHIFT : HK_SMALL_PAGE_SHIFT;
  seg->base.page_count = pages;
  bool kept = s->from_cache == 2;
  /* the descriptors hk_free may read for a pointer outside the pages (hk__mseg.guard) */
  memset(&seg->guard, 0, sizeof seg->guard);
  memset(&seg->pages[pages], 0, sizeof seg->pages[pages]);
  if (kept) {
    /* Our header as the segment's last owner left it (segment.h, hk__seg_keeps_header): the
     * segment went to the cache empty, so every descriptor is cleared but for the records
     * page_clear keeps, which still say what may be resident (unless the cache decommitted it)
     * and since when each page is unused. */
    seg->used_pages = 0;
    seg->list = LIST_NONE;
    seg->large_block = NULL;
    seg->large_size = 0;
    seg->abandoned_next = NULL;
    seg->tails = 0;
    for (uint32_t i = 0; i < pages; i++) {
      hk_assert(!seg->pages[i].in_use);
      uint64_t m = page_units(seg, i);
      if ((s->commit_mask & m) != m) seg->pages[i].touched = 0;
    }
  } else {
    seg->used_pages = 0;
    /* a segment from the cache may still be resident where its earlier owners carved */
    for (uint32_t i = 0; i < pages; i++) {
      seg->pages[i].freed_at = seg->pages[i].deep_at = tld->now;
      if ((s->commit_mask & s->dirty_mask & page_units(seg, i)) != 0) seg->pages[i].touched = (uint32_t)((size_t)1 << seg->base.page_shift);
    }
  }
  s->owner = tld;
  atomic_store_explicit(&s->thread_id, tld->thread_id, memory_order_release);
  list_push(tld, seg, LIST_FREE);
  if (kept) settle_free_pages(tld, seg);
  return seg;
}

static uintptr_t page_key(const hk__mseg *seg, uint32_t idx) {
  uintptr_t k = seg->base.cookie ^ ((uintptr_t)idx * 0x9E3779B97F4A7C15ull);
  return (k ^ (k >> 31)) | 1; /* never 0, so a zero word never decodes to NULL */
}

/* How far pages of each size class were carved when they were last given back: an average over
 * all threads, updated without synchronisation (a lost update only makes it less accurate). */
static _Atomic uint32_t bin_depth[HK_BIN_MAX + 1];
#define EXTENSION 4096u /* what page.c carves at a time, so what any new owner of a page touches first */

/* A free page whose memory is still committed (freed recently, its purge pending) is taken before
 * one that was purged or never touched: reusing it costs no page faults, and the purge queue then
 * takes only the pages nobody wanted. Among committed pages, the one whose resident prefix
 * (touched) best fits how far pages of this size class are usually carved: the smallest that is
 * deep enough, else the deepest. Taken by whatever came first, every page's prefix grows to the
 * deepest any size class carves (w_threads: 28-36 KiB in most pages while 72 % of the pages given
 * back had carved 4 KiB), and trim_tail cannot give the excess back without faulting it in again
 * for the next deep size class. */
static uint32_t pick_free_page(const hk__mseg *seg, uint32_t need) {
  uint32_t first_free = UINT32_MAX, best = UINT32_MAX, best_excess = UINT32_MAX, best_short = UINT32_MAX;
  for (uint32_t idx = 0; idx < seg->base.page_count; idx++) {
    const hk__page *pg = &seg->pages[idx];
    if (pg->in_use) continue;
    uint64_t m = page_units(seg, idx);
    if ((seg->base.commit_mask & m) != m) {
      if (first_free == UINT32_MAX) first_free = idx;
      continue;
    }
    uint32_t t = pg->touched;
    if (t >= need) {
      if (t - need < best_excess) {
        best_excess = t - need;
        best = idx;
        if (best_excess < EXTENSION) break;
      }
    } else if (best_excess == UINT32_MAX && need - t < best_short) {
      best_short = need - t;
      best = idx;
    }
  }
  return best != UINT32_MAX ? best : first_free;
}

/* The units of the segment's free pages that have been free for a purge delay (all free pages
 * when force). */
static uint64_t idle_page_units(const hk__mseg *seg, int64_t now, bool force) {
  long delay = hk__opt(HK_OPT_PURGE_DELAY);
  uint64_t m = 0;
  if (delay < 0) return 0;
  for (uint32_t idx = 0; idx < seg->base.page_count; idx++) {
    const hk__page *pg = &seg->pages[idx];
    if (!pg->in_use && (force || now - pg->freed_at >= delay)) m |= page_units(seg, idx);
  }
  return m & seg->base.commit_mask;
}

/* Reset a page descriptor when the page goes back to its segment, keeping what the page layer
 * does not know: how much of the page may be resident (touched), and since when it is free. */
static void page_clear(hk__page *pg, int64_t now) {
  uint32_t touched = pg->touched;
  int64_t deep_at = pg->deep_at;
  if (pg->in_use && pg->bin <= HK_BIN_MAX) {
    uint32_t d = atomic_load_explicit(&bin_depth[pg->bin], memory_order_relaxed);
    atomic_store_explicit(&bin_depth[pg->bin], (d * 3 + hk__page_carved(pg)) / 4, memory_order_relaxed);
  }
  memset(pg, 0, sizeof *pg);
  pg->touched = touched;
  pg->deep_at = deep_at;
  pg->freed_at = now;
}

/* Give back the resident memory of a page past what its owner carved (past the first extension
 * when the page is free) once no owner has carved that far for a purge delay (deep_at). A page is
 * reused while committed, so without this its resident prefix is the most any owner ever carved
 * from it: under thread churn pages change hands every few microseconds and never wait out a
 * purge delay (w_threads: 1.3 MiB of the 1.6 MiB resident in in-use pages lay past their carved
 * blocks after 10000 threads). Trimming as soon as a page changes hands instead halves RSS there
 * but faults most of it in again (2 k -> 107 k page faults, 0.2 -> 0.5 s of system time). One system call
 * per trimmed page; called where pages change hands: thread exit, adoption, sweeping. */
static void trim_tail(hk__mseg *seg, hk__page *pg, int64_t now, size_t min_tail) {
  long delay = hk__opt(HK_OPT_PURGE_DELAY);
  if (delay < 0 || now - pg->deep_at < delay) return;
  size_t os = hk__page_size();
  size_t keep = hk__align_up(pg->in_use ? hk__page_carved(pg) : EXTENSION, os), end = hk__align_up(pg->touched, os);
  if (end <= keep || end - keep < min_tail) return;
  size_t off = HK_PAGES_OFFSET + (size_t)(pg - seg->pages) * ((size_t)1 << seg->base.page_shift);
  hk__segment_reset(&seg->base, off + keep, end - keep);
  pg->touched = (uint32_t)keep;
}

static void trim_tails(hk__mseg *seg, int64_t now) {
  for (uint32_t i = 0; i < seg->base.page_count; i++) trim_tail(seg, &seg->pages[i], now, 0);
}

/* A live thread's own pages, looked at every half purge delay: an in-use page gives back what is
 * resident past its carved blocks once no owner has carved that far for a purge delay, as pages
 * that change hands do (trim_tails), but only a tail of at least TAIL_MIN. Such a tail is what a
 * page keeps of a size class that used it before and carved deeper than the present one (a free
 * page is reused while committed, pick_free_page): w_churn, single-threaded, held 2.5 MiB past
 * carved blocks in in-use pages, of a 27 MiB peak, and nothing gave it back while the thread ran.
 * Trimming every tail costs page faults when the page's class grows into it again (w_churn 7 K ->
 * 26 K faults for -1.3 MiB); tails of half a small page or more kept most of the gain for fewer
 * (17 K faults, -0.8 MiB; docs/architecture.md). Free pages are left to the purge queue. */
#define TAIL_MIN ((size_t)32 << 10)
/* Such tails come only from a free page reused with its resident prefix (hk__mseg_page_alloc), which
 * marks its segment; the scan visits marked segments only and unmarks those left without one, so a
 * thread whose pages were all carved fresh (w_peakfree's 1 GiB) pays nothing for it. */
static void tails_mark(hk__tld *tld, hk__mseg *seg) {
  if (!seg->tails) seg->tails = 1, tld->tail_segs++;
}
static void tails_unmark(hk__tld *tld, hk__mseg *seg) {
  if (seg->tails) seg->tails = 0, tld->tail_segs--;
}

void hk__tld_trim_tails(hk__tld *tld, int64_t now) {
  long delay = hk__opt(HK_OPT_PURGE_DELAY);
  if (tld->tail_segs == 0 || delay < 0 || now - tld->tails_at < (delay + 1) / 2) return;
  tld->tails_at = now;
  size_t os = hk__page_size();
  uint32_t left = tld->tail_segs;
  for (int k = 0; k < 2 && left; k++) {
    for (int which = LIST_FREE; which <= LIST_FULL && left; which++) {
      hk__seg_list *l = which == LIST_FREE ? &tld->free_segs[k] : &tld->full_segs[k];
      for (hk__mseg *seg = l->first; seg && left; seg = (hk__mseg *)seg->base.next) {
        if (!seg->tails) continue;
        left--;
        bool more = false;
        for (uint32_t i = 0; i < seg->base.page_count; i++) {
          hk__page *pg = &seg->pages[i];
          if (!pg->in_use || pg->touched < TAIL_MIN) continue;
          trim_tail(seg, pg, now, TAIL_MIN);
          if (hk__align_up(pg->touched, os) >= hk__align_up(hk__page_carved(pg), os) + TAIL_MIN) more = true;
        }
        if (!more) tails_unmark(tld, seg);
      }
    }
  }
}

/* A segment that changes hands (adopted, or taken from the cache with its page records): free
 * pages unused for a purge delay go back to the OS now (under thread churn no owner lives long
 * enough to see a purge delay expire), the other free pages unless reused soon, and every page's
 * resident memory past what its owners carved lately goes back (trim_tail). */
static void settle_free_pages(hk__tld *tld, hk__mseg *seg) {
  size_t page_size = (size_t)1 << seg->base.page_shift;
  hk__segment_decommit_units(&seg->base, idle_page_units(seg, tld->now, false));
  trim_tails(seg, tld->now);
  for (uint32_t i = 0; i < seg->base.page_count; i++) {
    if (!seg->pages[i].in_use)
      hk__segment_purge_later(&tld->purge, &seg->base, HK_PAGES_OFFSET + i * page_size, page_size, tld->now);
  }
}

hk__page *hk__mseg_page_alloc(hk_heap *h, size_t block_size) {
  hk__tld *tld = h->tld;
  int medium = block_size > HK_SMALL_MAX;
  hk__mseg *seg = tld->free_segs[medium].first;
  if (!seg) {
    /* adopt abandoned segments before asking for a new one: thread churn must not grow memory */
    if (hk__tld_adopt_one(tld, medium)) seg = tld->free_segs[medium].first;
    if (!seg) seg = mseg_new(tld, medium);
    if (!seg) return NULL;
  }
  size_t bin = hk__bin_of(block_size);
  uint32_t need = atomic_load_explicit(&bin_depth[bin], memory_order_relaxed);
  need = (uint32_t)hk__align_up(need < EXTENSION ? EXTENSION : need, EXTENSION);
  uint32_t idx = pick_free_page(seg, need);
  hk_assert(idx < seg->base.page_count);
  hk__page *pg = &seg->pages[idx];
  size_t page_size = (size_t)1 << seg->base.page_shift;
  size_t off = HK_PAGES_OFFSET + (size_t)idx * page_size;
  bool is_zero = false;
  uint64_t units = page_units(seg, idx);
  uint32_t touched = (seg->base.commit_mask & units) == units ? pg->touched : 0;
  int64_t deep_at = pg->deep_at;
  if (hk__segment_commit(&seg->base, off, page_size, &is_zero) != HK_OK) return NULL;
  memset(pg, 0, sizeof *pg);
  pg->touched = touched;
  pg->deep_at = deep_at;
  if (touched >= TAIL_MIN + EXTENSION) tails_mark(tld, seg);
  pg->in_use = 1;
  pg->block_size = (uint32_t)block_size;
  pg->bin = (uint8_t)bin;
  pg->reserved = (uint32_t)(page_size / block_size);
  pg->start = (uint8_t *)seg + off;
  pg->key = page_key(seg, idx);
  pg->is_zero = is_zero;
  if (hk__opt_page_hardened()) hk__page_flag_set(pg, HK__PAGE_HARDENED);
  pg->div_check = hk__div_check(block_size);
  pg->remote.start = pg->start;
  pg->remote.key = pg->key;
  pg->remote.div_magic = hk__div_magic(block_size);
  pg->remote.block_size = pg->block_size;
  atomic_store_explicit(&pg->xthread_free, HK__NO_DELAY, memory_order_relaxed);
  hk__page_set_heap(pg, h);
  if (++seg->used_pages == seg->base.page_count) list_push(tld, seg, LIST_FULL);
  h->page_count++;
  hk__page_queue_push(h, &h->queues[bin], pg);
  return pg;
}

void hk__mseg_page_free(hk__tld *tld, hk__page *pg) {
  hk__mseg *seg = hk__mseg_of(pg);
  size_t idx = (size_t)(pg - seg->pages);
  size_t page_size = (size_t)1 << seg->base.page_shift;
  page_clear(pg, tld->now);
  hk__segment_purge_later(&tld->purge, &seg->base, HK_PAGES_OFFSET + idx * page_size, page_size, tld->now);
  seg->used_pages--;
  if (seg->used_pages == 0) {
    /* keep one empty segment per kind for reuse; its pages are purged by the delay anyway */
    hk__seg_list *fl = &tld->free_segs[seg->base.kind == HK__SEG_MEDIUM];
    if (!(seg->list == LIST_FREE && fl->first == seg && seg->base.next == NULL)) {
      list_remove(tld, seg);
      tails_unmark(tld, seg);
      hk__seg_hint_drop(tld->heap_default, seg);
      hk__segment_free(&seg->base);
      return;
    }
  }
  if (seg->list != LIST_FREE) list_push(tld, seg, LIST_FREE);
}

/* ---- abandoned segments --------------------------------------------------------------------------------- */

/* A FIFO, so that sweeping visits every abandoned segment in turn. */
static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static hk__mseg *abandoned, *abandoned_tail;
static _Atomic size_t abandoned_count;
/* What the free pages of the abandoned segments may hold resident: the sum of their idle fields.
 * A segment on the list changes only under the lock (remote frees touch its pages' thread-free
 * lists, never a page's in_use or the commit masks), so each idle stays exact while it is there. */
static _Atomic size_t abandoned_idle;

/* What the free pages of seg may hold resident: the touched prefix of each committed free page. */
static size_t idle_bytes(const hk__mseg *seg) {
  size_t n = 0;
  for (uint32_t i = 0; i < seg->base.page_count; i++) {
    const hk__page *pg = &seg->pages[i];
    uint64_t m = page_units(seg, i);
    if (!pg->in_use && (seg->base.commit_mask & m) == m) n += pg->touched;
  }
  return n;
}

static void abandoned_push(hk__mseg *seg) {
  seg->abandoned_next = NULL;
  seg->idle = idle_bytes(seg);
  hk__glock(&abandoned_lock);
  if (abandoned_tail) abandoned_tail->abandoned_next = seg;
  else abandoned = seg;
  abandoned_tail = seg;
  atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&abandoned_idle, seg->idle, memory_order_relaxed);
  hk__gunlock(&abandoned_lock);
}

/* Unlink the first abandoned segment accepted by `want` (kind < 0: any) among the first few. */
#define ADOPT_SCAN 32
static hk__mseg *abandoned_take(int kind, bool wait) {
  if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) == 0) return NULL;
  if (wait) hk__glock(&abandoned_lock);
  else if (hk__gtrylock(&abandoned_lock) != 0) return NULL;
  hk__mseg *prev = NULL, *seg = abandoned;
  for (int n = 0; seg && kind >= 0; n++, prev = seg, seg = seg->abandoned_next) {
    if (n == ADOPT_SCAN) { seg = NULL; break; }
    if ((seg->base.kind == HK__SEG_MEDIUM) == kind && seg->used_pages < seg->base.page_count) break;
  }
  if (seg) {
    if (prev) prev->abandoned_next = seg->abandoned_next;
    else abandoned = seg->abandoned_next;
    if (abandoned_tail == seg) abandoned_tail = prev;
    atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&abandoned_idle, seg->idle, memory_order_relaxed);
    seg->idle = 0;
  }
  hk__gunlock(&abandoned_lock);
  if (seg) seg->abandoned_next = NULL;
  return seg;
}

/* Ages in buckets of powers of two milliseconds: 0, 1, 2-3, 4-7, ... */
#define AGE_BUCKETS 24
static unsigned age_bucket(int64_t age) {
  if (age <= 0) return 0;
  unsigned b = 64 - (unsigned)__builtin_clzll((uint64_t)age);
  return b < AGE_BUCKETS ? b : AGE_BUCKETS - 1;
}

/* Segments looked at by one trim (from the oldest abandoned): bounds its cost when thousands of
 * segments are abandoned; sweeping moves the ones it visits to the end of the list. */
#define TRIM_SCAN 256

/* Whether page idx of seg is free, committed and unused for at least the grace period, and so
 * may be decommitted to keep the budget: pages given back in the last few milliseconds are those
 * the next threads take again (w_threads: a wave of 4 threads gives back 2.2-3.3 MiB that the next
 * wave reuses; decommitting them costs a page fault per 4 KiB for every wave). */
static bool trimmable(const hk__mseg *seg, uint32_t idx, int64_t now) {
  const hk__page *pg = &seg->pages[idx];
  uint64_t m = page_units(seg, idx);
  return !pg->in_use && pg->touched != 0 && (seg->base.commit_mask & m) == m && now - pg->freed_at >= hk__ownerless_grace();
}

/* One pass of the budget over the ownerless segments: first the ages of their trimmable pages,
 * then the decommit of the oldest, down to the budget. */
typedef struct trim_pass {
  int64_t now;
  size_t total;               /* what the free pages of the segments seen may hold resident */
  size_t hist[AGE_BUCKETS];   /* of that, trimmable, by age */
  unsigned cut;               /* pages of this age bucket and older go, */
  size_t partial;             /* and of the bucket below, this much (the first pages met) */
} trim_pass;

static void seg_hist(const hk__mseg *seg, trim_pass *t) {
  for (uint32_t i = 0; i < seg->base.page_count; i++)
    if (trimmable(seg, i, t->now)) t->hist[age_bucket(t->now - seg->pages[i].freed_at)] += seg->pages[i].touched;
}

/* Decommits the pages of seg that the pass chose; returns what they may have held resident. */
static size_t seg_trim(hk__mseg *seg, trim_pass *t) {
  uint64_t units = 0;
  size_t bytes = 0;
  for (uint32_t i = 0; i < seg->base.page_count; i++) {
    if (!trimmable(seg, i, t->now)) continue;
    const hk__page *pg = &seg->pages[i];
    unsigned b = age_bucket(t->now - pg->freed_at);
    if (b + 1 < t->cut) continue;
    if (b + 1 == t->cut) {
      if (t->partial == 0) continue;
      t->partial -= t->partial < pg->touched ? t->partial : pg->touched;
    }
    units |= page_units(seg, i);
    bytes += pg->touched;
  }
  if (units) hk__segment_decommit_units(&seg->base, units);
  return bytes;
}

/* Cached segments that were malloc's small or medium ones keep their page records (segment.h,
 * hk__seg_keeps_header); every page of one is free. */
static bool cached_mseg(const hk__segment *s) {
  return (s->cached_kind == HK__SEG_SMALL || s->cached_kind == HK__SEG_MEDIUM) && s->size == HK_SEGMENT_SIZE && s->page_count != 0;
}
static void cached_hist(hk__segment *s, void *arg) {
  if (!cached_mseg(s)) return;
  trim_pass *t = arg;
  t->total += idle_bytes((hk__mseg *)s);
  seg_hist((hk__mseg *)s, t);
}
static void cached_trim(hk__segment *s, void *arg) {
  if (cached_mseg(s)) seg_trim((hk__mseg *)s, arg);
}

/* The ownerless budget (HK__OWNERLESS_BUDGET, malloc.h): keeps the free pages of segments no live
 * thread owns (abandoned, and malloc's in the segment cache) within it, decommitting at once the
 * pages given back longest ago, but none given back within the grace period. Called at thread
 * exit, after the thread's segments were abandoned or cached. Before, such pages waited for a
 * purge delay: the adopters' settle_free_pages purges only the pages unused for a whole delay, so
 * under thread churn the resident free pages were the union of those that all threads of the last
 * delay had used (w_threads: 1-2 MiB older than 4 ms on top of the 2.2-3.3 MiB that each wave of
 * 4 threads gives back and the next wave reuses). */
static void ownerless_trim(int64_t now) {
  if (hk__opt(HK_OPT_PURGE_DELAY) < 0) return; /* memory is never purged */
  size_t budget = HK__OWNERLESS_BUDGET;
  trim_pass t = {.now = now};
  hk__glock(&abandoned_lock);
  hk__segment_cache_visit(cached_hist, &t);
  t.total += atomic_load_explicit(&abandoned_idle, memory_order_relaxed);
  if (t.total > budget) {
    size_t excess = t.total - budget;
    int n = 0;
    for (hk__mseg *seg = abandoned; seg && n < TRIM_SCAN; seg = seg->abandoned_next, n++)
      if (seg->idle) seg_hist(seg, &t);
    t.cut = AGE_BUCKETS;
    size_t older = 0;
    while (t.cut > 0 && older + t.hist[t.cut - 1] < excess) older += t.hist[--t.cut];
    t.partial = t.cut > 0 ? excess - older : 0;
    n = 0;
    for (hk__mseg *seg = abandoned; seg && n < TRIM_SCAN; seg = seg->abandoned_next, n++) {
      if (!seg->idle) continue;
      size_t bytes = seg_trim(seg, &t);
      seg->idle -= bytes;
      atomic_fetch_sub_explicit(&abandoned_idle, bytes, memory_order_relaxed);
    }
    hk__segment_cache_visit(cached_trim, &t);
  }
  hk__gunlock(&abandoned_lock);
}

/* Sweeping visits the oldest; it never waits for the lock. */
static hk__mseg *abandoned_pop(void) { return abandoned_take(-1, false); }

size_t hk__abandoned_count(void) { return atomic_load_explicit(&abandoned_count, memory_order_relaxed); }

/* Pending purges are cancelled, not forced: a thread that exits leaves its free pages committed
 * for the thread that adopts the segment (thread churn would otherwise pay an madvise and the page
 * faults after it for every thread). Adoption and sweeping purge the pages that have stayed free
 * for a purge delay. In-use pages lose their resident tail past their carved blocks (trim_tail):
 * whoever adopts them has no use for it before the blocks carved already are free. */
void hk__tld_abandon_segments(hk__tld *tld) {
  hk__tld_large_release(tld, false);
  if (tld->heap_default) hk__seg_hints_clear(tld->heap_default);
  for (int k = 0; k < 2; k++) {
    for (int which = LIST_FREE; which <= LIST_FULL; which++) {
      hk__seg_list *l = which == LIST_FREE ? &tld->free_segs[k] : &tld->full_segs[k];
      while (l->first) {
        hk__mseg *seg = l->first;
        list_remove(tld, seg);
        tails_unmark(tld, seg);
        if (seg->used_pages == 0) { hk__segment_free(&seg->base); continue; }
        hk__segment_purge_cancel(&seg->base);
        trim_tails(seg, tld->now);
        seg->base.owner = NULL;
        atomic_store_explicit(&seg->base.thread_id, 0, memory_order_release);
        abandoned_push(seg);
      }
    }
  }
  ownerless_trim(tld->now);
  /* The cache is aged on allocation slow paths and when a segment comes in; a process whose
   * threads exit and which then stays idle kept what the cache held resident (64 MiB of freed
   * 2 MiB blocks, a thread exiting 200 ms after the free: malloc.ownerless.cache_exit). */
  hk__page_collect(tld->now, false);
}

/* Sweeping: take one abandoned segment, collect the frees other threads made into its pages,
 * give empty pages back to the OS and the segment back when it is empty, and leave it abandoned
 * otherwise. Unlike adoption this moves no page into a heap, so a thread that does not need the
 * memory (say, the main thread of a server whose workers come and go) does not end up holding
 * pages of size classes it never allocates, where remote frees would never be collected. */
void hk__tld_sweep_abandoned(hk__tld *tld) {
  hk__mseg *seg = abandoned_pop();
  if (!seg) return;
  for (uint32_t i = 0; i < seg->base.page_count; i++) {
    hk__page *pg = &seg->pages[i];
    if (!pg->in_use) continue;
    hk__mpage_collect(pg);
    if (pg->used != 0) continue;
    page_clear(pg, tld->now);
    seg->used_pages--;
  }
  if (seg->used_pages == 0) { hk__segment_free(&seg->base); return; }
  /* Pages that have stayed free for a purge delay go back to the OS (one system call per run of
   * them): pages that empty one after another are not purged one by one. */
  hk__segment_decommit_units(&seg->base, idle_page_units(seg, tld->now, false));
  trim_tails(seg, tld->now);
  abandoned_push(seg);
}

bool hk__tld_adopt_one(hk__tld *tld, int medium) {
  hk__mseg *seg = abandoned_take(medium, true);
  if (!seg) return false;
  seg->base.owner = tld;
  atomic_store_explicit(&seg->base.thread_id, tld->thread_id, memory_order_release);
  list_push(tld, seg, seg->used_pages == seg->base.page_count ? LIST_FULL : LIST_FREE);
  /* Free pages may still be committed (settle_free_pages). In-use pages go to the default heap;
   * empty ones are freed by hk__page_place (which may free seg). */
  uint32_t n = seg->base.page_count;
  settle_free_pages(tld, seg);
  for (uint32_t i = 0; i < n; i++) {
    hk__page *pg = &seg->pages[i];
    if (!pg->in_use) continue;
    bool last = seg->used_pages == 1;
    hk__page_place(tld->heap_default, pg);
    /* The only in-use page left: placing it may have freed the segment, so pg must not be read
     * (it was: a segfault once the segment was unmapped, HEAPKIT_SEGMENT_CACHE=0; malloc.adopt_empty). */
    if (last) break;
  }
  return true;
}

/* The lists of first-class heaps' large blocks and those blocks' owner fields. One lock for all
 * heaps, not one in each: a thread freeing a large block reads its owner and must lock the list
 * while that heap may be deleted, or its thread exit, on another thread (which clear every owner
 * and free the heap): with the lock in the heap, the free locked and unlinked from a freed heap
 * record (maybe a new heap's by then), and the unlocked walk that cleared the owners could follow
 * the link of a segment being freed. Such frees are rare: large blocks of first-class heaps only. */
static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;

void hk__mseg_fork_prepare(void) { pthread_mutex_lock(&abandoned_lock); pthread_mutex_lock(&large_lock); }
void hk__mseg_fork_parent(void) { pthread_mutex_unlock(&large_lock); pthread_mutex_unlock(&abandoned_lock); }
void hk__mseg_fork_child(void) { pthread_mutex_init(&large_lock, NULL); pthread_mutex_init(&abandoned_lock, NULL); }

/* ---- large blocks: one segment each ----------------------------------------------------------------------
 * Not owned by any thread: any thread frees one by giving the segment back. The segment's spare
 * reservation lets realloc grow the block in place. */


/* How many large blocks may have a HK_LARGE_RESERVE segment at once: HK_LARGE_RESERVE_LIVE, fewer
 * under an address-space limit (RLIMIT_AS, read at the first large block), so that those segments
 * take at most a sixteenth of it: otherwise 18 blocks of 100 KiB exhausted a 300 MiB limit. */
static size_t reserve_live_max(void) {
  size_t limit = hk__page_as_limit();
  return limit == 0 || limit / 16 / HK_LARGE_RESERVE >= HK_LARGE_RESERVE_LIVE ? HK_LARGE_RESERVE_LIVE : limit / 16 / HK_LARGE_RESERVE;
}

/* The thread's last freed large block's segment, kept empty for its next large malloc: a program
 * that mallocs and frees one large block in a loop took the segment from the shared segment cache
 * and gave it back every time (its mutex, the cache's ageing, the header set up again, the commit
 * bookkeeping): 980 instructions a pair, glibc 330 (docs/architecture.md, "Performance cliffs
 * checked"). Only blocks of up to KEEP_MAX, so that what a thread pins is small: the block stays
 * committed while kept, until the thread's next large malloc, a purge delay (hk__tld_periodic),
 * hk_collect or malloc_trim, or its exit. Not with a purge delay of 0 (memory goes back at once),
 * without a segment cache, or under an address-space limit (a kept reservation would be missing
 * when the cache is emptied to retry a refused reservation). */
#define KEEP_MAX ((size_t)1 << 20)

static bool large_keep(hk__tld *tld, hk__mseg *seg) {
  if (seg->large_size > KEEP_MAX || hk__opt(HK_OPT_PURGE_DELAY) <= 0 || hk__opt(HK_OPT_SEGMENT_CACHE) <= 0 || hk__page_as_limit() != 0) return false;
  hk__mseg *old = tld->large_kept;
  hk__segment_park(&seg->base);
  tld->large_kept = seg;
  tld->large_kept_at = tld->now;
  if (old) {
    hk__segment_unpark(&old->base);
    hk__segment_free(&old->base);
  }
  return true;
}

void hk__tld_large_release(hk__tld *tld, bool idle) {
  hk__mseg *seg = tld->large_kept;
  if (!seg) return;
  long delay = hk__opt(HK_OPT_PURGE_DELAY);
  if (delay >= 0 && tld->now - tld->large_kept_at >= delay) idle = true;
  tld->large_kept = NULL;
  hk__segment_unpark(&seg->base);
  /* (the cache would keep it resident for a purge delay more) */
  if (idle) hk__segment_decommit_units(&seg->base, ~(uint64_t)0);
  hk__segment_free(&seg->base);
}

static void *large_hand_out(hk_heap *h, hk__mseg *seg);

/* A kept segment serves a request of at most its block's size and more than half of it, as
 * realloc keeps a block in place (the block keeps its size), and not one with spare room. For any
 * other request it goes to the cache first, where the request may take it as before (a 10 MiB
 * block reuses a freed 100 KiB block's 16 MiB segment: malloc.api.footprint). */
static void *large_reuse(hk_heap *h, size_t usable, size_t align, bool zero, bool room) {
  hk__tld *tld = h->tld;
  hk__mseg *seg = tld ? tld->large_kept : NULL;
  if (!seg) return NULL;
  if (room || usable > seg->large_size || usable <= seg->large_size / 2 || ((uintptr_t)seg->large_block & (align - 1)) != 0) {
    hk__tld_large_release(tld, false);
    return NULL;
  }
  tld->large_kept = NULL;
  hk__segment_unpark(&seg->base);
  if (zero) memset(seg->large_block, 0, usable);
  return large_hand_out(h, seg);
}

void *hk__large_alloc(hk_heap *h, size_t size, size_t align, bool zero, bool room) {
  size_t ps = hk__page_size();
  size_t off = HK_LARGE_OFFSET;
  if (align > off) off = align;
  size_t seg_align = align > HK_SEGMENT_SIZE ? align : 0;
  size_t usable = hk__align_up(size, ps);
  /* every failure sets errno: the segment layer's refusals (a block and header over 64 TiB)
   * do not, and the callers return NULL as they get it */
  if (usable < size || off + usable < usable) { errno = ENOMEM; return NULL; }
  void *kept = large_reuse(h, usable, align ? align : 1, zero, room);
  if (kept) return kept;
  /* In a HK_LARGE_RESERVE segment the block starts at the second commit unit (256 KiB): the first
   * one holds the header and is never decommitted, so a block inside it would stay resident while
   * the segment is cached. */
  size_t unit_off = HK_LARGE_RESERVE / HK_SEGMENT_UNITS, reserve = 0, plain_off = off;
  if (seg_align == 0 && (off > unit_off ? off : unit_off) + usable <= HK_LARGE_RESERVE &&
      atomic_load_explicit(&hk__huge_live, memory_order_relaxed) < reserve_live_max()) {
    reserve = HK_LARGE_RESERVE;
    if (off < unit_off) off = unit_off;
  }
  /* realloc moving a block to grow it: room to double in place (address space until touched).
   * Reserved up to the next 4 MiB only, a block grown in small steps moved every 4 MiB, each move
   * copying all of it (512 MiB in 64 KiB steps: 48 s, glibc 0.07 s). Under an address-space limit,
   * not: the room would be taken from the limit. */
  if (room && seg_align == 0 && hk__page_as_limit() == 0 && off + 2 * usable > reserve) reserve = off + 2 * usable;
  int saved_errno = errno;
  hk__segment *s = hk__segment_alloc_ex(off + usable, reserve, seg_align, HK__SEG_LARGE, sizeof(hk__mseg));
  if (!s && reserve) { /* the spare room refused (address space short): the block alone */
    off = plain_off;
    s = hk__segment_alloc_ex(off + usable, 0, seg_align, HK__SEG_LARGE, sizeof(hk__mseg));
    if (s) errno = saved_errno;
  }
  if (!s) { errno = ENOMEM; return NULL; }
  hk__mseg *seg = (hk__mseg *)s;
  bool is_zero = false;
  if (hk__segment_commit(s, off, usable, &is_zero) != HK_OK) { hk__segment_free(s); errno = ENOMEM; return NULL; }
  seg->base.page_shift = 63;
  seg->base.page_count = 0;
  seg->large_block = (uint8_t *)s + off;
  seg->large_size = usable;
  seg->large_tag = hk__segtag_slot(s);
  if (zero && !is_zero) memset(seg->large_block, 0, usable);
  return large_hand_out(h, seg);
}

static void *large_hand_out(hk_heap *h, hk__mseg *seg) {
  hk__segment *s = &seg->base;
  size_t usable = seg->large_size;
  /* a first-class heap keeps its large blocks on a list, so destroying it frees them too */
  if (!h->is_default) {
    hk__glock(&large_lock);
    __atomic_store_n(&s->owner, h, __ATOMIC_RELAXED);
    s->prev = NULL;
    s->next = h->large_first;
    if (h->large_first) h->large_first->prev = s;
    h->large_first = s;
    hk__gunlock(&large_lock);
  }
  atomic_store_explicit(seg->large_tag, hk__large_tag((size_t)(seg->large_block - (uint8_t *)seg), usable),
                        memory_order_relaxed);
  hk__heap_count(h, inuse, (int64_t)usable);
  hk__heap_count_op(h, mallocs);
  atomic_fetch_add_explicit(&hk__huge_live, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&hk__huge_bytes, usable, memory_order_relaxed);
  return seg->large_block;
}

/* Takes s off its heap's list if it is still on one. */
static void large_unlink(hk__segment *s) {
  hk__glock(&large_lock);
  hk_heap *owner = __atomic_load_n(&s->owner, __ATOMIC_RELAXED);
  if (owner) {
    if (s->prev) s->prev->next = s->next;
    else owner->large_first = s->next;
    if (s->next) s->next->prev = s->prev;
  }
  hk__gunlock(&large_lock);
}

/* hk_heap_delete and thread exit: the heap's large blocks live on, owned by no heap. */
void hk__heap_disown_large_blocks(hk_heap *h) {
  hk__glock(&large_lock);
  /* (release: a free that reads NULL skips the lock and then gives the segment back, so its link
   * is read before: a segment disowned may already be another owner's; malloc.heap_delete_remote) */
  for (hk__segment *s = h->large_first, *next; s; s = next) {
    next = s->next;
    __atomic_store_n(&s->owner, NULL, __ATOMIC_RELEASE);
  }
  h->large_first = NULL;
  hk__gunlock(&large_lock);
}

void hk__large_free(hk__mseg *seg, void *p) {
  (void)p;
  hk_heap *h = hk__tls_heap;
  atomic_store_explicit(seg->large_tag, 0, memory_order_relaxed);
  if (h->tld) {
    hk__heap_count(h, inuse, -(int64_t)seg->large_size);
    hk__heap_count_op(h, frees);
  } else {
    hk__stats_global_add(-(int64_t)seg->large_size, 0, 1);
  }
  /* (owner is set before the block is handed out and cleared only under the lock) */
  if (__atomic_load_n(&seg->base.owner, __ATOMIC_ACQUIRE)) large_unlink(&seg->base);
  atomic_fetch_sub_explicit(&hk__huge_live, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&hk__huge_bytes, seg->large_size, memory_order_relaxed);
  if (h->tld && large_keep(h->tld, seg)) return;
  hk__segment_free(&seg->base);
}

void hk__heap_free_large_blocks(hk_heap *h) {
  hk__glock(&large_lock);
  hk__segment *s = h->large_first;
  h->large_first = NULL;
  for (hk__segment *x = s; x; x = x->next) __atomic_store_n(&x->owner, NULL, __ATOMIC_RELAXED);
  hk__gunlock(&large_lock);
  while (s) {
    hk__segment *next = s->next;
    atomic_store_explicit(((hk__mseg *)s)->large_tag, 0, memory_order_relaxed);
    hk__heap_count(h, inuse, -(int64_t)((hk__mseg *)s)->large_size);
    hk__heap_count_op(h, frees);
    atomic_fetch_sub_explicit(&hk__huge_live, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&hk__huge_bytes, ((hk__mseg *)s)->large_size, memory_order_relaxed);
    hk__segment_free(s);
    s = next;
  }
}

void *hk__large_realloc_inplace(hk__mseg *seg, void *p, size_t size) {
  size_t off = (size_t)(seg->large_block - (uint8_t *)seg);
  size_t usable = hk__align_up(size, hk__page_size());
  /* (not off + usable > size: for a request near SIZE_MAX that sum wraps around) */
  if (usable < size) return NULL;
  /* Past the segment's end: under an address-space limit, where the segment has no spare room,
   * its reservation grows in place when the address space after it is free. */
  if (usable > seg->base.size - off && (hk__page_as_limit() == 0 || hk__segment_extend(&seg->base, off + usable) != HK_OK))
    return NULL;
  if (usable > seg->large_size) {
    if (hk__segment_commit(&seg->base, off + seg->large_size, usable - seg->large_size, NULL) != HK_OK) return NULL;
  } else if (usable < seg->large_size / 2) {
    hk__segment_decommit(&seg->base, off + usable, seg->large_size - usable);
  } else {
    return p;
  }
  hk_heap *h = hk__tls_heap;
  if (h->tld) hk__heap_count(h, inuse, (int64_t)usable - (int64_t)seg->large_size);
  else hk__stats_global_add((int64_t)usable - (int64_t)seg->large_size, 0, 0);
  /* (modular: the size_t sum comes out right whichever way the block changed) */
  atomic_fetch_add_explicit(&hk__huge_bytes, usable - seg->large_size, memory_order_relaxed);
  seg->large_size = usable;
  atomic_store_explicit(seg->large_tag, hk__large_tag(off, usable), memory_order_relaxed);
  return p;
}
