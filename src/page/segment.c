/* Segments: reservation, commit bookkeeping, purging, and a small cache of empty segments.
 * See segment.h for the model and the invariants. */
#include "page/segment.h"
#include "page/stats.h"
#include "os/os.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A plain bit count rather than __builtin_popcountll, which without -mpopcnt calls libgcc's
 * __popcountdi2: that is linked after every object, at the end of .text, and its one call at
 * start-up faulted in the last 64 KiB window of the library's code (docs/architecture.md,
 * "Start-up footprint"). */
static inline unsigned popcount64(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555u);
  x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
  return (unsigned)((x * 0x0101010101010101u) >> 56);
}

HK_INTERNAL void hk__segmap_set(hk__segment *s, bool on);

/* ---- units ---------------------------------------------------------------------------------- */

/* A segment's commit unit: a 64th of it (HK_SEGMENT_UNITS) rounded up to whole OS pages. For a
 * multiple of 64 pages (every segment without an address-space limit) that is the 64th; a segment
 * sized to its contents under a limit (a large block's or the metadata's, segment_alloc) has up to
 * 64 units of that size: one page under 64 pages. Rounding such a segment to 64 pages instead cost a
 * 1 MiB block 1.25 MiB of the limit. */
static size_t unit_for(size_t size) {
  size_t ps = hk__os_page_size(), pages = (size + ps - 1) / ps;
  return (pages + HK_SEGMENT_UNITS - 1) / HK_SEGMENT_UNITS * ps;
}

/* Kinds whose segment is sized to what it holds under an address-space limit: a large block's and
 * the thread records' (whose 4 MiB was most of what a small program's malloc took of the limit). */
static bool sized_to_fit(int kind) { return kind == HK__SEG_LARGE || kind == HK__SEG_META; }

/* Malloc's small and medium segments (hk__seg_exact_size) compute their pages' units for 64 KiB
 * ones, so theirs are 64 KiB whatever the size: 4 MiB, or under an address-space limit a prefix of
 * it, a multiple of 64 KiB (mseg.c asks for one when the OS refuses a whole segment). */
#define FIXED_UNIT (HK_SEGMENT_SIZE / HK_SEGMENT_UNITS)
static size_t kind_unit(int kind, size_t size) { return hk__seg_exact_size(kind) ? FIXED_UNIT : unit_for(size); }

/* The size steps of a segment of this kind and size. */
static size_t size_step(hk__seg_kind kind, size_t size) {
  if (hk__seg_exact_size(kind)) return size < HK_SEGMENT_SIZE ? FIXED_UNIT : HK_SEGMENT_SIZE;
  return sized_to_fit(kind) ? unit_for(size) : HK_SEGMENT_SIZE;
}

static inline uint64_t units_mask(size_t first, size_t count) {
  if (count == 0) return 0;
  uint64_t m = count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1);
  return m << first;
}

/* Units touched by [off, off+len): rounded outward. */
static uint64_t mask_out(const hk__segment *s, size_t off, size_t len) {
  if (len == 0) return 0;
  size_t first = off / s->unit, last = (off + len - 1) / s->unit;
  return units_mask(first, last - first + 1);
}

/* Units wholly inside [off, off+len): rounded inward. */
static uint64_t mask_in(const hk__segment *s, size_t off, size_t len) {
  size_t first = (off + s->unit - 1) / s->unit, end = (off + len) / s->unit;
  return end > first ? units_mask(first, end - first) : 0;
}

static uint64_t header_mask(const hk__segment *s) { return mask_out(s, 0, s->header_size); }

static hk__os_decommit_mode decommit_mode(void) {
  return hk__opt(HK_OPT_PURGE_FREE) ? HK__OS_FREE : HK__OS_DONTNEED;
}

/* Decommit the units in m, in maximal runs so each run is one system call. */
static void decommit_units(hk__segment *s, uint64_t m) {
  m &= s->commit_mask & ~header_mask(s);
  if (!m) return;
  hk__os_decommit_mode mode = decommit_mode();
  uint64_t left = m;
  while (left) {
    int first = __builtin_ctzll(left);
    uint64_t shifted = left >> first;
    int count = (~shifted == 0) ? 64 - first : __builtin_ctzll(~shifted);
    hk__os_decommit((uint8_t *)s + (size_t)first * s->unit, (size_t)count * s->unit, mode);
    left &= ~units_mask((size_t)first, (size_t)count);
  }
  size_t bytes = (size_t)popcount64(m) * s->unit;
  s->commit_mask &= ~m;
  s->purge_mask &= ~m;
  if (mode == HK__OS_DONTNEED) s->dirty_mask &= ~m;
  hk__pstat_committed(-(ptrdiff_t)bytes);
  hk__pstat_add(&hk__pstats.purged, (ptrdiff_t)bytes);
}

int hk__segment_commit(hk__segment *s, size_t off, size_t len, bool *is_zero) {
  hk_assert(off + len <= s->size);
  uint64_t m = mask_out(s, off, len);
  if (is_zero) {
    /* the header unit is dirty because of the header itself; past it, a fresh segment is zero */
    uint64_t dirty = s->dirty_mask;
    if (s->header_tail_clean && off >= s->header_size) dirty &= ~header_mask(s);
    *is_zero = (dirty & m) == 0;
  }
  if ((m & header_mask(s)) && off + len > s->header_size) s->header_tail_clean = 0;
  uint64_t fresh = m & ~s->commit_mask;
  if (fresh) {
    /* Commit is bookkeeping on Linux; the OS call stays for other platforms. */
    int first = __builtin_ctzll(fresh);
    int last = 63 - __builtin_clzll(fresh);
    int rc = hk__os_commit((uint8_t *)s + (size_t)first * s->unit, (size_t)(last - first + 1) * s->unit);
    if (rc != HK_OK) return rc;
    s->commit_mask |= fresh;
    hk__pstat_committed((ptrdiff_t)((size_t)popcount64(fresh) * s->unit));
  }
  s->purge_mask &= ~m;
  s->dirty_mask |= m;
  if (s->purge_mask == 0 && s->purge_queue) hk__segment_purge_cancel(s);
  return HK_OK;
}

void hk__segment_decommit(hk__segment *s, size_t off, size_t len) {
  hk_assert(off + len <= s->size);
  decommit_units(s, mask_in(s, off, len));
  if (s->purge_mask == 0 && s->purge_queue) hk__segment_purge_cancel(s);
}

/* The units of m (of old_unit bytes) as units of new_unit bytes, rounded outward. */
static uint64_t remask(uint64_t m, size_t old_unit, size_t new_unit) {
  uint64_t r = 0;
  for (; m; m &= m - 1) {
    size_t lo = (size_t)__builtin_ctzll(m) * old_unit, hi = lo + old_unit - 1;
    r |= units_mask(lo / new_unit, hi / new_unit - lo / new_unit + 1);
  }
  return r;
}

/* Realloc of a large block under an address-space limit, where its segment has no spare room:
 * before, every growth past the segment's end moved (copied) the block, and the old and new blocks
 * together stopped it near half the limit (malloc.rlimit.grow). */
int hk__segment_extend(hk__segment *s, size_t size) {
  hk_assert_internal(hk__segment_is_valid(s));
  if (size <= s->size) return HK_OK;
  if (s->kind != HK__SEG_LARGE || s->purge_mask != 0 || size > ((size_t)1 << 46)) return HK_ENOMEM;
  size = hk__round_up(size, size_step(s->kind, size));
  size_t unit = kind_unit(s->kind, size);
  if (hk__os_extend(s, s->size, size - s->size, true) != HK_OK) return HK_ENOMEM;
  uint64_t commit = remask(s->commit_mask, s->unit, unit);
  hk__pstat_committed((ptrdiff_t)((size_t)popcount64(commit) * unit) - (ptrdiff_t)((size_t)popcount64(s->commit_mask) * s->unit));
  hk__pstat_add(&hk__pstats.reserved, (ptrdiff_t)(size - s->size));
  s->commit_mask = commit;
  s->dirty_mask = remask(s->dirty_mask, s->unit, unit);
  /* (the header's units grow with the unit: past header_size they may now hold the block) */
  if (unit != s->unit) s->header_tail_clean = 0;
  if (hk__opt(HK_OPT_HUGE_PAGES)) hk__os_huge_hint((uint8_t *)s + s->size, size - s->size, 1);
  s->unit = unit;
  s->size = size;
  hk__segmap_set(s, true); /* (the largest segment's size, for interior lookups) */
  hk_assert_internal(hk__segment_is_valid(s));
  return HK_OK;
}

void hk__segment_reset(hk__segment *s, size_t off, size_t len) {
  size_t ps = hk__os_page_size();
  size_t lo = hk__align_up(off, ps), hi = (off + len) & ~(ps - 1);
  hk_assert(off + len <= s->size);
  if (hi <= lo || lo < s->header_size) return;
  hk__os_decommit((uint8_t *)s + lo, hi - lo, decommit_mode());
  hk__pstat_add(&hk__pstats.purged, (ptrdiff_t)(hi - lo));
}

void hk__segment_decommit_units(hk__segment *s, uint64_t units) {
  decommit_units(s, units);
  if (s->purge_mask == 0 && s->purge_queue) hk__segment_purge_cancel(s);
}

/* ---- purge queues ---------------------------------------------------------------------------- */

void hk__segment_purge_cancel(hk__segment *s) {
  hk__purge_queue *q = s->purge_queue;
  if (!q) return;
  for (hk__segment **pp = &q->first; *pp; pp = &(*pp)->purge_next) {
    if (*pp == s) { *pp = s->purge_next; break; }
  }
  s->purge_next = NULL;
  s->purge_queue = NULL;
  s->purge_mask = 0;
}

void hk__segment_purge_later(hk__purge_queue *q, hk__segment *s, size_t off, size_t len, int64_t now) {
  long delay = hk__opt(HK_OPT_PURGE_DELAY);
  if (delay < 0) return;
  uint64_t m = mask_in(s, off, len) & s->commit_mask & ~header_mask(s);
  if (!m) return;
  if (delay == 0) { decommit_units(s, m); return; }
  s->purge_mask |= m;
  s->purge_expire = now + delay;
  if (s->purge_queue != q) {
    if (s->purge_queue) hk__segment_purge_cancel(s), s->purge_mask = m;
    s->purge_queue = q;
    s->purge_next = q->first;
    q->first = s;
  }
  if (s->purge_expire < q->next_due || q->first == s) q->next_due = s->purge_expire < q->next_due ? s->purge_expire : q->next_due;
}

void hk__purge_queue_run(hk__purge_queue *q, int64_t now, bool force) {
  if (!force && now < q->next_due) return;
  int64_t next = INT64_MAX;
  hk__segment **pp = &q->first;
  while (*pp) {
    hk__segment *s = *pp;
    if (force || s->purge_expire <= now) {
      decommit_units(s, s->purge_mask);
      *pp = s->purge_next;
      s->purge_next = NULL;
      s->purge_queue = NULL;
      s->purge_mask = 0;
    } else {
      if (s->purge_expire < next) next = s->purge_expire;
      pp = &s->purge_next;
    }
  }
  q->next_due = next;
}

/* ---- the segment cache ------------------------------------------------------------------------
 * Empty segments of at most CACHE_MAX_SIZE are kept here (not released) so that threads that come
 * and go, and large blocks that are freed and allocated again, cost no system call. A cached
 * segment's memory is decommitted after ten purge delays (a freed segment is often reused at once,
 * and re-faulting a whole segment costs more than ten pages would), and the segment itself released
 * after a second or when the cache is full.
 *
 * A burst of frees that empties more segments than the cache keeps (a program freeing most of a
 * large peak) does not give them back one by one inside the free: the surplus stays in the slots,
 * up to CACHE_SLOTS and CACHE_BURST_DIRTY resident bytes, and is released by the aging a cache
 * purge delay (100 ms by default) after the burst (or at most CACHE_HOLD_DELAYS delays into it,
 * cache_age), as the rest of the cache is purged. Releasing 900 MiB
 * in the free itself was most of heapkit's time in w_peakfree's free phase (the kernel's unmapping;
 * docs/architecture.md, *`peakfree` and `server` at the edge of 1.2x*). Not with a purge delay of 0
 * or -1: there the cache's bound holds at once, as before. */

#define CACHE_SLOTS 256
#define CACHE_MAX_SIZE ((size_t)64 << 20)
#define CACHE_DIRTY_PER_SLOT ((size_t)4 << 20)
#define CACHE_BURST_DIRTY ((size_t)CACHE_SLOTS * CACHE_DIRTY_PER_SLOT)

typedef struct cache_entry { hk__segment *seg; int64_t freed_at; bool purged; } cache_entry;
static cache_entry cache[CACHE_SLOTS];
static int cache_count;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t cookie_seed;

static void release(hk__segment *s) {
  size_t size = s->size;
  hk__pstat_committed(-(ptrdiff_t)((size_t)popcount64(s->commit_mask) * s->unit));
  hk__pstat_add(&hk__pstats.reserved, -(ptrdiff_t)size);
  hk__segmap_set(s, false);
  hk__os_release(s, size);
}

static void cache_remove_at(int i) {
  int n = cache_count - 1;
  cache[i] = cache[n];
  __atomic_store_n(&cache_count, n, __ATOMIC_RELAXED);
  hk__pstat_add(&hk__pstats.cached, -1);
}

/* How long a cached segment stays resident: a whole segment is worth keeping resident a little
 * longer than a page, but not much: freeing most of a large peak must show in the RSS well within a
 * second. */
static int64_t cache_purge_after(void) {
  long delay = hk__opt(HK_OPT_PURGE_DELAY);
  return delay < 0 ? INT64_MAX : (delay * 10 < 100 ? delay * 10 : (delay < 100 ? 100 : delay));
}

/* The cache's bound on segments (HEAPKIT_SEGMENT_CACHE, at most CACHE_SLOTS; 0: no cache). */
static long cache_limit(void) {
  long limit = hk__opt(HK_OPT_SEGMENT_CACHE);
  return limit <= 0 ? 0 : limit > CACHE_SLOTS ? CACHE_SLOTS : limit;
}

static int cache_oldest(void) {
  int oldest = -1;
  for (int i = 0; i < cache_count; i++)
    if (oldest < 0 || cache[i].freed_at < cache[oldest].freed_at) oldest = i;
  return oldest;
}

/* Release the oldest segments beyond the cache's bound once they are purge_after old (a burst's
 * surplus, see above); the cache lock is held. */
static void cache_trim_surplus(int64_t now, int64_t purge_after) {
  long limit = cache_limit();
  while (cache_count > limit) {
    int oldest = cache_oldest();
    if (now - cache[oldest].freed_at < purge_after) break;
    hk__segment *s = cache[oldest].seg;
    cache_remove_at(oldest);
    release(s);
  }
}

/* When the last segment came into the cache, and when the aging last ran to the end. */
static int64_t cache_last_put, cache_last_full_age;

/* How long a burst may hold off the aging: CACHE_HOLD_DELAYS cache purge delays (500 ms by
 * default) since the aging last ran, that is at most since the burst began (a segment coming into
 * a cache within its bound runs it). A burst is told from a steady stream of frees only by how long
 * it lasts: w_peakfree's free of 1 GiB takes 0.05-0.13 s of wall time, also on a machine loaded
 * 15 deep, while a server freeing a segment every 50 ms held the surplus for as long as it ran (up
 * to 1 GiB resident; malloc.api.cache_stream). With the cap, the aging runs at least once every hold, so a cached
 * segment is purged at most a hold plus a cache purge delay after it came in, and what a steady
 * stream keeps resident is what it frees in that time. */
#define CACHE_HOLD_DELAYS 5

/* Purge and release what has aged; the cache lock is held. While a burst is on (the cache over its
 * bound, the last segment in less than a cache purge delay ago, and the aging last run less than a
 * hold ago) nothing is aged: by wall time alone, a burst of frees that outlasts the delay (a loaded
 * machine, a large peak) gave its first segments back inside the free again. The hard bounds of
 * cache_put still hold. */
static void cache_age(int64_t now, bool force) {
  long delay = hk__opt(HK_OPT_PURGE_DELAY);
  int64_t purge_after = cache_purge_after();
  int64_t hold = purge_after > INT64_MAX / CACHE_HOLD_DELAYS ? INT64_MAX : purge_after * CACHE_HOLD_DELAYS;
  if (!force && cache_count > cache_limit() && now - cache_last_put < purge_after && now - cache_last_full_age < hold) return;
  cache_last_full_age = now;
  int64_t release_after = delay < 0 ? INT64_MAX : (delay * 10 < 1000 ? 1000 : delay * 10);
  for (int i = 0; i < cache_count;) {
    cache_entry *e = &cache[i];
    if (force || now - e->freed_at >= release_after) {
      hk__segment *s = e->seg;
      cache_remove_at(i);
      release(s);
      continue;
    }
    if (!e->purged && now - e->freed_at >= purge_after) {
      decommit_units(e->seg, ~(uint64_t)0);
      e->purged = true;
    }
    i++;
  }
  cache_trim_surplus(now, purge_after);
}

static int64_t cache_last_age;

/* Called from clients' slow paths: ages the cache at most once per millisecond. */
void hk__page_collect(int64_t now, bool force) {
  if (!force && (now == __atomic_load_n(&cache_last_age, __ATOMIC_RELAXED) || __atomic_load_n(&cache_count, __ATOMIC_RELAXED) == 0)) return;
  if (force) hk__glock(&cache_lock);
  else if (hk__gtrylock(&cache_lock) != 0) return;
  __atomic_store_n(&cache_last_age, now, __ATOMIC_RELAXED);
  cache_age(now, force);
  hk__gunlock(&cache_lock);
}

/* Releases every cached segment; false if there was none. */
static bool cache_release_all(void) {
  if (__atomic_load_n(&cache_count, __ATOMIC_RELAXED) == 0) return false;
  hk__glock(&cache_lock);
  bool any = cache_count > 0;
  cache_age(hk__clock_ms(), true);
  hk__gunlock(&cache_lock);
  return any;
}

/* large: the request is a LARGE segment's; only those take a cached segment that is not a
 * multiple of 4 MiB (a large block's under an address-space limit): for a pool or an arena one
 * broke the segment invariant (size % 4 MiB), and a debug build's check stopped the process. */
static hk__segment *cache_take(size_t size, size_t need, size_t align, bool exact, bool large, int kind) {
  if (__atomic_load_n(&cache_count, __ATOMIC_RELAXED) == 0) return NULL;
  hk__glock(&cache_lock);
  /* Best fit by size; among equal sizes, the one whose resident memory best matches the request
   * (resident memory beyond the request would be pinned by the new block, and memory short of it
   * costs page faults); then the most recently freed. */
  int best = -1;
  size_t best_miss = SIZE_MAX;
  for (int i = 0; i < cache_count; i++) {
    hk__segment *s = cache[i].seg;
    if (s->size < size || s->size > (exact ? size : size * 2 + HK_SEGMENT_SIZE) || ((uintptr_t)s & (align - 1))) continue;
    if (!large && (s->size & HK_SEGMENT_MASK) && !exact) continue;
    /* (a part of a small or medium segment has 64 KiB units whatever its size; a large block's of
     * the same size would not, and the segment's commit mask would mean other bytes) */
    if (s->unit != kind_unit(kind, s->size)) continue;
    size_t resident = (size_t)popcount64(s->commit_mask) * s->unit;
    size_t miss = resident > need ? resident - need : need - resident;
    if (best < 0 || s->size < cache[best].seg->size ||
        (s->size == cache[best].seg->size && (miss < best_miss || (miss == best_miss && cache[i].freed_at > cache[best].freed_at)))) {
      best = i;
      best_miss = miss;
    }
  }
  hk__segment *s = NULL;
  if (best >= 0) {
    s = cache[best].seg;
    cache_remove_at(best);
  }
  hk__gunlock(&cache_lock);
  return s;
}

static bool cache_put(hk__segment *s) {
  long limit = hk__opt(HK_OPT_SEGMENT_CACHE);
  if (s->size > CACHE_MAX_SIZE || limit <= 0) return false;
  /* (saturated: from 2^42 slots up the product wrapped around, to 0 at 2^42, and the cache
   * purged every segment as it came in) */
  size_t dirty_max = (unsigned long)limit > SIZE_MAX / CACHE_DIRTY_PER_SLOT ? SIZE_MAX : (size_t)limit * CACHE_DIRTY_PER_SLOT;
  if (limit > CACHE_SLOTS) limit = CACHE_SLOTS;
  /* a burst's surplus waits for the aging (see above), with a finite, non-zero purge delay only */
  int64_t purge_after = cache_purge_after();
  bool burst = purge_after > 0 && purge_after != INT64_MAX;
  if (burst) {
    limit = CACHE_SLOTS;
    if (dirty_max < CACHE_BURST_DIRTY) dirty_max = CACHE_BURST_DIRTY;
  }
  int64_t now = hk__clock_ms();
  hk__glock(&cache_lock);
  cache_age(now, false);
  if (cache_count >= limit) { /* evict the oldest */
    int oldest = cache_oldest();
    hk__segment *old = cache[oldest].seg;
    cache_remove_at(oldest);
    release(old);
  }
  cache[cache_count] = (cache_entry){s, now, false};
  cache_last_put = now;
  __atomic_store_n(&cache_count, cache_count + 1, __ATOMIC_RELAXED);
  /* Bound the resident memory the cache holds: beyond CACHE_DIRTY_MAX, purge the oldest now. */
  for (;;) {
    size_t dirty = 0;
    int oldest = -1;
    for (int i = 0; i < cache_count; i++) {
      if (cache[i].purged) continue;
      dirty += (size_t)popcount64(cache[i].seg->commit_mask) * cache[i].seg->unit;
      if (oldest < 0 || cache[i].freed_at < cache[oldest].freed_at) oldest = i;
    }
    if (dirty <= dirty_max || oldest < 0) break;
    decommit_units(cache[oldest].seg, ~(uint64_t)0);
    cache[oldest].purged = true;
  }
  hk__pstat_add(&hk__pstats.cached, 1);
  if (hk__opt(HK_OPT_PURGE_DELAY) == 0) { decommit_units(s, ~(uint64_t)0); cache[cache_count - 1].purged = true; }
  hk__gunlock(&cache_lock);
  return true;
}

void hk__segment_cache_visit(void (*fn)(hk__segment *s, void *arg), void *arg) {
  if (__atomic_load_n(&cache_count, __ATOMIC_RELAXED) == 0) return;
  hk__glock(&cache_lock);
  for (int i = 0; i < cache_count; i++)
    if (hk__seg_keeps_header(cache[i].seg->cached_kind)) fn(cache[i].seg, arg);
  hk__gunlock(&cache_lock);
}

/* ---- alloc / free ----------------------------------------------------------------------------- */

/* Returns whether the client header was kept (hk__seg_keeps_header). */
static bool init_header(hk__segment *s, size_t size, hk__seg_kind kind, size_t header_size) {
  uint64_t commit = s->commit_mask, dirty = s->dirty_mask;
  size_t old_header = s->header_size;
  size_t clear = header_size > old_header ? header_size : old_header;
  bool keep = hk__seg_keeps_header(kind) && s->cached_kind == kind && old_header == header_size;
  if (!keep && clear > sizeof *s) memset((uint8_t *)s + sizeof *s, 0, clear - sizeof *s);
  memset(s, 0, sizeof *s);
  s->size = size;
  s->unit = kind_unit(kind, size);
  s->header_size = header_size;
  s->commit_mask = commit;
  s->dirty_mask = dirty;
  s->kind = (uint8_t)kind;
  s->cookie = ((uintptr_t)s ^ cookie_seed) * 0x9E3779B97F4A7C15ull;
  s->cookie ^= s->cookie >> 29;
  s->purge_expire = 0;
  return keep;
}

hk__segment *hk__segment_alloc(size_t size, size_t align, hk__seg_kind kind, size_t header_size) {
  return hk__segment_alloc_ex(size, 0, align, kind, header_size);
}

size_t hk__page_as_limit(void) {
  static _Atomic size_t limit; /* the limit + 1; 0 unread */
  size_t l = atomic_load_explicit(&limit, memory_order_relaxed);
  if (hk_likely(l != 0)) return l - 1;
  struct rlimit rl;
  l = getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (size_t)rl.rlim_cur : 0;
  atomic_store_explicit(&limit, l + 1, memory_order_relaxed);
  return l;
}

size_t hk__page_as_limit_now(void) {
  struct rlimit rl;
  return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (size_t)rl.rlim_cur : 0;
}

/* cached_only: a segment from the cache or NULL, no reservation. */
static hk__segment *segment_alloc(size_t size, size_t reserve, size_t align, hk__seg_kind kind, size_t header_size,
                                  bool accounted, bool cached_only) {
  hk__page_init();
  if (size == 0 || size > ((size_t)1 << 46)) return NULL;
  size_t need = size;
  if (reserve > size) size = reserve;
  /* Under an address-space limit a large block's segment (and the metadata's) reserves what it
   * needs, rounded to its commit unit (a 64th of it in whole pages: unit_for), still 4 MiB-aligned:
   * the rest of its 4 MiB is left unreserved. Rounded to 4 MiB, every block just over 64 KiB cost
   * 4 MiB of the limit (a 1 GiB limit failed python's 1700 blocks of 100-200 KiB); rounded to 64
   * pages, 256 KiB (2.5x glibc's address space for blocks of 100 KiB), and a 1 MiB block 1.25 MiB.
   * Without a limit, 4 MiB: consecutive reservations of such sizes come back aligned from the OS,
   * with no realignment. */
  size_t step = HK_SEGMENT_SIZE;
  /* (the metadata and malloc's small and medium segments ask for less than 4 MiB only under a
   * limit, which their clients read when they reserve: hk__page_as_limit, read at the first large
   * block, is not read here for them) */
  if (kind == HK__SEG_META || hk__seg_exact_size(kind) || (kind == HK__SEG_LARGE && hk__page_as_limit() != 0))
    step = size_step(kind, size);
  size = hk__round_up(size, step);
  if (align < HK_SEGMENT_SIZE) align = HK_SEGMENT_SIZE;
  if (!hk__is_pow2(align) || header_size == 0 || header_size > size) return NULL;
  hk__segment *s = cache_take(size, need, align, hk__seg_exact_size(kind), kind == HK__SEG_LARGE, kind);
  if (s) {
    size = s->size;
    s->from_cache = init_header(s, size, kind, header_size) ? 2 : 1;
  } else if (cached_only) {
    return NULL;
  } else {
    void *p;
    /* Refused by the OS while the cache holds segments: their address space may be what is missing
     * (a process under RLIMIT_AS that freed 200 MiB of large blocks could not get 150 MiB back, as
     * the cached segments kept it reserved): release them all and ask once more. */
    int saved_errno = errno;
    if (hk__os_reserve(size, align, accounted, &p) != HK_OK) {
      if (!cache_release_all() || hk__os_reserve(size, align, accounted, &p) != HK_OK) return NULL;
      errno = saved_errno; /* (the allocation succeeds: errno as it was) */
    }
    s = p;
    s->commit_mask = 0;
    s->dirty_mask = 0;
    s->header_size = 0;
    init_header(s, size, kind, header_size);
    s->header_tail_clean = 1;
    hk__pstat_add(&hk__pstats.reserved, (ptrdiff_t)size);
    if (hk__opt(HK_OPT_HUGE_PAGES)) hk__os_huge_hint(s, size, 1);
    hk__segmap_set(s, true);
  }
  if (hk__segment_commit(s, 0, header_size, NULL) != HK_OK) {
    hk__segment_free(s);
    return NULL;
  }
  hk__pstat_add(&hk__pstats.segments, 1);
  hk_assert_internal(hk__segment_is_valid(s));
  return s;
}

/* A large block's segment is accounted even with spare room (realloc's, hk__large_alloc), so the
 * OS still refuses a block it could never back. For the 16 MiB segments of small large blocks it
 * changes nothing: the heuristic (mode 0) refuses only one mapping beyond RAM + swap, mode 1
 * never refuses, and mode 2 ignores MAP_NORESERVE. */
hk__segment *hk__segment_alloc_ex(size_t size, size_t reserve, size_t align, hk__seg_kind kind, size_t header_size) {
  return segment_alloc(size, reserve, align, kind, header_size, kind == HK__SEG_LARGE, false);
}

hk__segment *hk__segment_alloc_block(size_t size, size_t align, hk__seg_kind kind, size_t header_size) {
  return segment_alloc(size, 0, align, kind, header_size, true, false);
}

/* Whole segments only, under an address-space limit the last up to 4 MiB of it could not be had,
 * and a program holding a few pages' worth of blocks still took 4 MiB per segment: python3 building
 * a list of 100 000 strings holds 2-3 MiB of blocks in one small and one medium segment, 8 MiB of a
 * limit it runs under at 20 MB with glibc. The limit is read here, when a segment is reserved (a
 * system call next to the reservation's), not from the cache of hk__page_as_limit: a program that
 * sets it after its first malloc gets what it set. */
/* All the pages: the whole HK_SEGMENT_SIZE, also when the pages leave its end unused (a medium
 * segment's last 64 KiB). Sized to its pages, every medium segment was 4032 KiB without any limit:
 * it no longer took a cached small segment nor gave its own to one, and each reservation came back
 * from the OS unaligned (the aligning over-reservation, three more system calls). */
static size_t pages_bytes(size_t head, size_t page, uint32_t n, uint32_t all) {
  return n == all ? HK_SEGMENT_SIZE : head + (size_t)n * page;
}

hk__segment *hk__segment_alloc_pages(size_t head, size_t page, uint32_t *pages, hk__seg_kind kind, size_t header_size) {
  uint32_t all = *pages, n = all;
  hk__segment *s = segment_alloc(HK_SEGMENT_SIZE, 0, 0, kind, header_size, false, true);
  if (s) return s;
  size_t limit = hk__page_as_limit_now();
  while (limit != 0 && n > 1 && pages_bytes(head, page, n, all) > limit / 16) n /= 2;
  int saved = errno;
  for (;; n /= 2) {
    s = segment_alloc(pages_bytes(head, page, n, all), 0, 0, kind, header_size, false, false);
    if (s || n == 1) break;
  }
  if (s) {
    errno = saved; /* (a refusal on the way does not show in a successful malloc's errno) */
    *pages = n;
  }
  return s;
}

/* A segment leaves its client (freed or parked): off its purge queue and the live count, and its
 * kind cleared (kept in cached_kind), so a lookup of an address inside sees a freed segment. */
static void leave_client(hk__segment *s) {
  hk_assert_internal(hk__segtag_get(s) == 0); /* (its client cleared its tag) */
  hk__segment_purge_cancel(s);
  hk__pstat_add(&hk__pstats.segments, -1);
  s->cached_kind = s->kind;
  s->kind = HK__SEG_NONE;
  s->owner = NULL;
}

void hk__segment_free(hk__segment *s) {
  hk_assert_internal(hk__segment_is_valid(s));
  atomic_store_explicit(&s->thread_id, 0, memory_order_relaxed);
  leave_client(s);
  if (!cache_put(s)) release(s);
}

void hk__segment_park(hk__segment *s) {
  leave_client(s);
  hk__pstat_add(&hk__pstats.cached, 1);
}

void hk__segment_unpark(hk__segment *s) {
  s->kind = s->cached_kind;
  hk__pstat_add(&hk__pstats.cached, -1);
  hk__pstat_add(&hk__pstats.segments, 1);
}

bool hk__segment_is_valid(const hk__segment *s) {
  if (!s || ((uintptr_t)s & HK_SEGMENT_MASK)) return false;
  if (s->size == 0 || s->size % size_step(s->kind, s->size) || s->unit != kind_unit(s->kind, s->size)) return false;
  if (hk__seg_exact_size(s->kind) && s->size > HK_SEGMENT_SIZE) return false;
  if (!hk__segmap_contains((uintptr_t)s)) return false;
  if ((s->purge_mask & ~s->commit_mask) != 0) return false;
  if ((s->purge_mask != 0) != (s->purge_queue != NULL) && s->purge_mask != 0) return false;
  if ((header_mask(s) & ~s->commit_mask) != 0) return false;
  return true;
}

/* ---- process-wide ------------------------------------------------------------------------------ */

static pthread_once_t page_once = PTHREAD_ONCE_INIT;

static void page_init_once(void) {
  hk__options_init();
  int x;
  cookie_seed = ((uintptr_t)&x) ^ ((uintptr_t)hk__clock_ms() << 17) ^ ((uintptr_t)getpid() << 40) ^ (uintptr_t)&cookie_seed;
  cookie_seed = cookie_seed * 0xbf58476d1ce4e5b9ull;
  cookie_seed ^= cookie_seed >> 31;
  hk__os_page_size();
}

static _Atomic int page_inited;
void hk__page_init(void) {
  if (hk_likely(atomic_load_explicit(&page_inited, memory_order_acquire))) return;
  pthread_once(&page_once, page_init_once);
  atomic_store_explicit(&page_inited, 1, memory_order_release);
}

size_t hk__page_size(void) { return hk__os_page_size(); }
size_t hk__page_rss(void) { return hk__os_rss(); }

void hk__page_fork_prepare(void) { pthread_mutex_lock(&cache_lock); }
void hk__page_fork_parent(void) { pthread_mutex_unlock(&cache_lock); }
void hk__page_fork_child(void) { pthread_mutex_init(&cache_lock, NULL); }
