/* The remote-free buffer: a thread that frees blocks of pages owned by other threads collects them
 * per page and hands each page a chain at once, one CAS on its xthread_free instead of one per
 * block (and one round trip of that cache line between the threads instead of many).
 *
 * Only pages of a default heap (remote flag IN_DEFAULT) are buffered: such a page is given back
 * only when its used count reaches zero, and a buffered block still counts as used, so the page
 * (and its segment) outlive the buffer whatever its owner does meanwhile: exit, abandon, adoption
 * by another thread. A first-class heap's pages are freed whole by hk_heap_destroy, which cannot
 * know about blocks sitting in other threads' buffers, so those frees go straight to the page.
 * Neither are pages of HEAPKIT_HARDENED buffered: there every free must be visible to the owner's
 * double-free search at once.
 *
 * Holding blocks back delays their reuse, so the buffer is bounded: less than RBUF_BYTES per page
 * (RBUF_MAX blocks; blocks over RBUF_BYTES / 2 are not held), RBUF_SLOTS pages (a slot taken by another page is flushed first), and it is
 * emptied when the thread's periodic work runs (allocation slow paths, at most once a millisecond),
 * by hk_collect, before fork and at thread exit. */
#include "malloc/malloc.h"

#define RBUF_SLOTS 128   /* power of two */
#define RBUF_BYTES 2048  /* a page's blocks held before they are handed over */
#define RBUF_MAX 32

typedef struct rslot {
  hk__page *pg;             /* NULL: free slot */
  hk__block *head, *tail;   /* chain linked (encoded with the page key) as xthread_free is */
  uint32_t count, bytes;
} rslot;

struct hk__rbuf {
  rslot slot[RBUF_SLOTS];
};
_Static_assert(sizeof(struct hk__rbuf) <= 4096, "the remote-free buffer must fit a meta slot");

/* A page's slot: one per page at a time, a page taking another's slot hands that one over first. */
static inline rslot *slot_of(hk__rbuf *rb, const hk__page *pg) {
  uintptr_t a = (uintptr_t)pg;
  return &rb->slot[((a >> 6) ^ (a >> 22)) & (RBUF_SLOTS - 1)];
}

static hk_noinline void slot_flush(rslot *s) {
  hk__free_remote_list(s->pg, s->head, s->tail, s->count);
  s->pg = NULL;
}

/* The first block of a page in its slot (after handing over the page that had the slot), the
 * buffer's first use, and a repeated free. */
static hk_noinline bool push_slow(hk__tld *tld, hk__page *pg, hk__block *b) {
  hk__rbuf *rb = tld->rbuf;
  if (rb == NULL) {
    rb = tld->rbuf = hk__meta_alloc(sizeof *rb);
    if (!rb) return false;
  }
  rslot *s = slot_of(rb, pg);
  if (s->pg == pg) hk__fatal("double free of %p", (void *)b); /* it is the slot's head */
  if (s->pg) slot_flush(s);
  b->next = pg->remote.key; /* hk__encode(pg, NULL) */
  s->pg = pg;
  s->head = s->tail = b;
  s->count = 1;
  s->bytes = pg->remote.block_size;
  return true;
}

bool hk__rbuf_push(hk__tld *tld, hk__page *pg, hk__block *b) {
  uint32_t bs = pg->remote.block_size;
  if (!(__atomic_load_n(&pg->remote.flags, __ATOMIC_RELAXED) & HK__PAGE_IN_DEFAULT) || bs > RBUF_BYTES / 2)
    return false; /* big blocks: the CAS is cheap next to the block */
  hk__rbuf *rb = tld->rbuf;
  rslot *s = rb ? slot_of(rb, pg) : NULL;
  if (hk_unlikely(s == NULL || s->pg != pg || s->head == b)) return push_slow(tld, pg, b);
  b->next = (uintptr_t)s->head ^ pg->remote.key; /* hk__encode, from the remote line */
  s->head = b;
  s->count++;
  s->bytes += bs;
  if (s->bytes >= RBUF_BYTES || s->count >= RBUF_MAX) slot_flush(s);
  return true;
}

void hk__rbuf_flush(hk__tld *tld) {
  hk__rbuf *rb = tld->rbuf;
  if (!rb) return;
  for (size_t i = 0; i < RBUF_SLOTS; i++)
    if (rb->slot[i].pg) slot_flush(&rb->slot[i]);
}

void hk__rbuf_release(hk__tld *tld) {
  hk__rbuf_flush(tld);
  if (tld->rbuf) hk__meta_free(tld->rbuf);
  tld->rbuf = NULL;
}
