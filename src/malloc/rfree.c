/* The remote-free buffer: a thread that frees blocks of pages owned by other threads collects them
 * per page and hands each page a chain at once, one CAS on its xthread_free instead of one per
 * block (and one round trip of that cache line between the threads instead of many).
 *
 * Only pages of a default heap (remote.rbuf_limit != 0) are buffered: such a page is given back
 * only when its used count reaches zero, and a buffered block still counts as used, so the page
 * (and its segment) outlive the buffer whatever its owner does meanwhile: exit, abandon, adoption
 * by another thread. A first-class heap's pages are freed whole by hk_heap_destroy, which cannot
 * know about blocks sitting in other threads' buffers, so those frees go straight to the page.
 * Neither are pages of HEAPKIT_HARDENED buffered: there every free must be visible to the owner's
 * double-free search at once.
 *
 * Holding blocks back delays their reuse, so the buffer is bounded: less than HK__RBUF_BYTES per
 * page (HK__RBUF_MAX blocks; blocks over HK__RBUF_BYTES / 2 are not held; the page's
 * remote.rbuf_limit says how many), RBUF_SLOTS pages (a slot taken by another page is flushed first), and it is
 * emptied when the thread's periodic work runs (allocation slow paths, at most once a millisecond),
 * by hk_collect, before fork and at thread exit. */
#include "malloc/malloc.h"

#define RBUF_SLOTS 256   /* power of two */

/* 16 bytes, so that 256 fit the 4 KiB meta record (128 slots of 32 bytes before). The chain's tail,
 * needed only at the hand-over, is kept in the head block (chain_tail). In real runs of w_server
 * the 128 slots were enough (chains of 7.7-8.3 blocks either way, docs/architecture.md); under
 * callgrind, whose slowed clock brings the periodic hand-over every few dozen frees, half of the
 * frees found their slot taken with 128. */
typedef struct rslot {
  uintptr_t tag;            /* page address + blocks held (pages are 64-aligned); 0: free slot */
  hk__block *head;          /* chain linked (encoded with the page key) as xthread_free is */
} rslot;

struct hk__rbuf {
  rslot slot[RBUF_SLOTS];
};
_Static_assert(sizeof(struct hk__rbuf) <= 4096, "the remote-free buffer must fit a meta slot");
_Static_assert(_Alignof(hk__page) >= 64 && HK__RBUF_MAX < 64, "the count must fit below the page address");

/* The buffer of a thread that has not freed into another thread's page yet: every slot free, so
 * that the fast path needs no test for a missing buffer. Never written. */
hk__rbuf hk__rbuf_none;

/* A page's slot: one per page at a time, a page taking another's slot hands that one over first. */
static inline rslot *slot_of(hk__rbuf *rb, const hk__page *pg) {
  uintptr_t a = (uintptr_t)pg;
  return &rb->slot[((a >> 6) ^ (a >> 22)) & (RBUF_SLOTS - 1)];
}

/* A chain's head keeps the chain's tail in its second word (blocks held here are at least 16
 * bytes, hk__rbuf_limit): walking the chain at the hand-over instead, through blocks freed a while
 * ago, was 1-2.5% of w_server's samples (perf record), nearly all on the walk's load. */
static inline hk__block *chain_tail(hk__block *head) { return ((hk__block **)head)[1]; }

static hk_noinline void slot_flush(rslot *s) {
  hk__page *pg = (hk__page *)(s->tag & ~(uintptr_t)63);
  uint32_t n = (uint32_t)(s->tag & 63);
  hk__free_remote_list(pg, s->head, chain_tail(s->head), n);
  s->tag = 0;
}

/* The first block of a page in its slot (after handing over the page that had the slot), the
 * buffer's first use, and a repeated free. */
static hk_noinline bool push_slow(hk__tld *tld, hk__page *pg, hk__block *b) {
  hk__rbuf *rb = tld->rbuf;
  if (rb == &hk__rbuf_none || rb == NULL) {
    rb = hk__meta_alloc(sizeof *rb);
    if (!rb) return false;
    tld->rbuf = rb;
  }
  rslot *s = slot_of(rb, pg);
  if (s->tag - (uintptr_t)pg < 64) hk__fatal("double free of %p", (void *)b); /* it is the slot's head */
  if (s->tag) slot_flush(s);
  b->next = pg->remote.key; /* hk__encode(pg, NULL) */
  ((hk__block **)b)[1] = b; /* the chain's tail */
  s->tag = (uintptr_t)pg + 1;
  s->head = b;
  return true;
}

/* The rare cases of hk__free_xthread, out of line so that its own path needs no stack frame
 * (this one is not declared _Noreturn so that the call to it is a jump, not a call that needs an
 * aligned stack). */
static hk_noinline void xthread_invalid(const void *p, bool aligned_start) {
  hk__invalid_free(p, aligned_start ? "not the start of a block" : "not an allocated block");
}

/* The caller has no thread record: a thread that only frees (a consumer) gets one now, so that it
 * counts in its own heap rather than with an atomic add on a global shared by every such thread;
 * after the thread's exit (hk__heap_done) the free counts globally and creates nothing. */
static hk_noinline void xthread_no_tld(hk__page *pg, void *p, hk_heap *h) {
  if (h == &hk__heap_empty && (h = hk__heap_get()) != NULL && h->tld != NULL) {
    hk__free_xthread(pg, p, h);
    return;
  }
  hk__stats_global_add(-(int64_t)pg->remote.block_size, 0, 1);
  hk__free_remote(pg, (hk__block *)p);
}

/* ---- the foreign-block cache (hk__fcache) ----
 * A block of 1-16 KiB freed into another thread's page is kept for this thread's next malloc of
 * its size class, as tcmalloc's thread caches keep every freed block: the freeing thread has just
 * read it (w_server verifies every block before freeing it), so it is in this core's cache, while
 * the owner would reuse it only later, maybe on the other core. It also spares the CAS on the
 * owner's page. Such a block stays counted as used on its page, which therefore stays in use (as
 * for the remote-free buffer). Only blocks over 1 KiB: smaller ones come through the inline malloc
 * path, where a test of the cache cost more than it saved (docs/architecture.md), while these come
 * through hk__malloc_generic anyway. */

_Static_assert(sizeof(hk__fcache) <= 4096, "the foreign-block cache must fit a meta slot");

static inline hk__page *page_of_block(hk__block *b) { return hk__page_at(b); }

/* Keeps b (of pg, whose blocks are over HK__RBUF_BYTES / 2) in the default heap h's cache; false
 * when it does not: no record to be had, a class this thread has not allocated since the last
 * hand-over, or the cache holds HK__FC_BYTES already. A full size class hands its oldest block
 * over. */
static bool fcache_push(hk_heap *h, hk__page *pg, hk__block *b) {
  hk__fcache *fc = h->fcache;
  if (fc == NULL) {
    fc = hk__meta_alloc(sizeof *fc);
    if (!fc) return false;
    h->fcache = fc;
  }
  uint32_t bs = pg->remote.block_size;
  size_t i = hk__bin_of(bs) - HK__FC_FIRST_BIN;
  hk_assert_internal(i < HK__FC_BINS && hk__bin_size(i + HK__FC_FIRST_BIN) == bs);
  if (!fc->want[i]) return false;
  hk__block **st = fc->b[i];
  for (uint32_t k = 0; k < fc->n[i]; k++)
    if (st[k] == b) hk__fatal("double free of %p", (void *)b);
  if (fc->n[i] == HK__FC_DEPTH) {
    hk__block *old = st[0];
    for (uint32_t k = 1; k < HK__FC_DEPTH; k++) st[k - 1] = st[k];
    fc->n[i]--;
    fc->bytes -= bs;
    hk__free_remote(page_of_block(old), old);
  } else if (fc->bytes + bs > HK__FC_BYTES) {
    return false;
  }
  st[fc->n[i]++] = b;
  fc->bytes += bs;
  return true;
}

/* Every block goes to its page (which may be this thread's own by now: adopted). */
static void fcache_flush(hk_heap *h) {
  hk__fcache *fc = h->fcache;
  if (fc == NULL) return;
  for (size_t i = 0; i < HK__FC_BINS; i++) {
    for (uint32_t k = 0; k < fc->n[i]; k++) hk__free_remote(page_of_block(fc->b[i][k]), fc->b[i][k]);
    fc->n[i] = 0;
    fc->want[i] = 0;
  }
  fc->bytes = 0;
}

/* A block that misses the buffer: the page's first block in its slot, the buffer's first use, a
 * repeated free, or a block the buffer does not take (first-class heaps, hardened pages; big
 * blocks go to the foreign-block cache, or to their page: for those the CAS is cheap next to the
 * block). */
static hk_noinline void xthread_unbuffered(hk__tld *tld, hk__page *pg, hk__block *b, uint32_t limit) {
  if (limit == HK__RBUF_FOREIGN) {
    if (!fcache_push(tld->heap_default, pg, b)) hk__free_remote(pg, b);
    return;
  }
  if (limit == 0 || !push_slow(tld, pg, b)) hk__free_remote(pg, b);
}

/* A thread freeing p that does not own its page (hk_free found another thread id in the segment):
 * h is the caller's default heap (or hk__heap_empty / hk__heap_done). One function, reading only
 * the page's remote line, so that a cross-thread free validates, counts and buffers the block
 * without a second look at the thread id or the TLS heap pointer; every call in it is a tail call,
 * so it needs no stack frame. A page not in use has remote.carved == 0 (its descriptor is
 * cleared), so the offset check rejects it too. */
void hk__free_xthread(hk__page *pg, void *p, hk_heap *h) {
  const hk__page_remote *r = &pg->remote;
  uint8_t *start = r->start;
  size_t off = (uintptr_t)p - (uintptr_t)start;
  if (hk_unlikely(off >= __atomic_load_n(&r->carved, __ATOMIC_RELAXED))) {
    xthread_invalid(p, false);
    return;
  }
  uint32_t bs = r->block_size;
  hk__block *b = (hk__block *)(start + (size_t)((off * r->div_magic) >> 40) * bs);
  uint8_t flags = __atomic_load_n(&r->flags, __ATOMIC_RELAXED);
  if (hk_unlikely((void *)b != p) && !(flags & HK__PAGE_HAS_ALIGNED)) {
    xthread_invalid(p, true);
    return;
  }
  hk__tld *tld = h->tld;
  if (hk_unlikely(tld == NULL)) {
    xthread_no_tld(pg, b, h);
    return;
  }
  hk__heap_count(h, inuse, -(int64_t)bs);
  hk__heap_count_op(h, frees);
  uint32_t limit = __atomic_load_n(&r->rbuf_limit, __ATOMIC_RELAXED);
  rslot *s = slot_of(tld->rbuf, pg); /* tld->rbuf is never NULL here: hk__rbuf_none at first */
  uintptr_t n; /* blocks of pg the slot holds */
  if (hk_unlikely(limit - 1 >= HK__RBUF_MAX || (n = s->tag - (uintptr_t)pg) >= 64 || s->head == b)) {
    xthread_unbuffered(tld, pg, b, limit);
    return;
  }
  b->next = (uintptr_t)s->head ^ r->key; /* hk__encode, from the remote line */
  ((hk__block **)b)[1] = chain_tail(s->head);
  s->head = b;
  s->tag++;
  if (++n >= limit) slot_flush(s);
}

void hk__rbuf_flush(hk__tld *tld) {
  if (tld->heap_default) fcache_flush(tld->heap_default);
  hk__rbuf *rb = tld->rbuf;
  if (rb == NULL || rb == &hk__rbuf_none) return;
  for (size_t i = 0; i < RBUF_SLOTS; i++)
    if (rb->slot[i].tag) slot_flush(&rb->slot[i]);
}

void hk__rbuf_release(hk__tld *tld) {
  hk__rbuf_flush(tld);
  if (tld->rbuf && tld->rbuf != &hk__rbuf_none) hk__meta_free(tld->rbuf);
  tld->rbuf = &hk__rbuf_none;
  hk_heap *h = tld->heap_default;
  if (h && h->fcache) {
    hk__meta_free(h->fcache);
    h->fcache = NULL;
  }
}
