/* Finalizer-heavy: N objects ("handles", 32 bytes, each owning a pointer-free 64-byte buffer) get
 * a finalizer each, as a runtime does for file handles or foreign resources. A window of the
 * newest W handles stays reachable through a ring array; everything older is garbage whose
 * finalizer must run exactly once. At the end the ring is cleared and the heap collected until
 * every finalizer has run (Boehm may keep up to 8 through stale conservative roots). Finalizers check the handle's contents, so a finalizer that runs on a
 * clobbered or reused object is detected.
 * With finalize=0 the handles get no finalizer (the same objects, ring and allocation otherwise),
 * so that runner.py can report what finalization itself costs each collector (with - without);
 * the check is then that every handle still in the ring is intact.
 *   finalizers BUDGET|--live [count=1000000 window=100000 finalize=1] */
#include "gcb.h"

typedef struct handle { void *buffer; long id, magic, pad; } handle;
#define MAGIC 0x5eed5eedL
static gcb_type T_HANDLE, T_BUFFER, T_RING;
static long finalized, bad;

static void on_finalize(void *obj, void *data) {
  handle *h = obj;
  if (h->magic != MAGIC || h->id != (long)(intptr_t)data || !h->buffer || ((long *)h->buffer)[0] != h->id) bad++;
  h->magic = 0;
  finalized++;
}

int main(int argc, char **argv) {
  int a = gcb_start("finalizers", argc, argv);
  long count = gcb_arg(argc, argv, a, 1000000), window = gcb_arg(argc, argv, a + 1, 100000);
  int finalize = gcb_arg(argc, argv, a + 2, 1) != 0;
  if (count < 1 || window < 1) return 2;
  if (gcb_live_only) {
    gcb_print_live((size_t)window * (gcb_obj_bytes(sizeof(handle)) + gcb_obj_bytes(64)) +
                   gcb_obj_bytes(sizeof(void *) * (size_t)window));
    return 0;
  }
  T_HANDLE = gcb_type_new("handle", sizeof(handle), 0x1, GCB_NO_TAIL);
  T_BUFFER = gcb_type_new("buffer", 0, 0, GCB_NO_TAIL);
  T_RING = gcb_type_new("handle[]", 0, 0, 0); /* every word a pointer */
  gcb_finalizer = on_finalize;

  handle **ring = NULL, *h = NULL;
  void *buf = NULL;
  GCB_ROOTS(ring, h, buf);
  ring = GCB_ALLOC(T_RING, sizeof(void *) * (size_t)window);
  for (long i = 0; i < count; i++) {
    buf = GCB_ALLOC_ATOMIC(T_BUFFER, 64);
    ((long *)buf)[0] = i;
    h = finalize ? gcb_alloc_finalized(T_HANDLE, sizeof(handle), (void *)(intptr_t)i)
                 : GCB_ALLOC(T_HANDLE, sizeof(handle));
    h->buffer = buf;
    h->id = i;
    h->magic = MAGIC;
    GCB_WRITE_INDEX(ring, i % window, h);
  }
  h = NULL;
  buf = NULL;
  long intact = 0;
  if (!finalize) /* no finalizer checks the handles: check the window the ring still holds */
    for (long i = count > window ? count - window : 0; i < count; i++) {
      handle *x = ring[i % window];
      intact += x && x->magic == MAGIC && x->id == i && x->buffer && ((long *)x->buffer)[0] == i;
    }
  GCB_BARRIER(ring);
  memset(ring, 0, sizeof(void *) * (size_t)window);
  if (!finalize) { /* the same final collection, with nothing to finalize */
    gcb_collect();
    gcb_note("count=%ld finalize=0 intact=%ld", count, intact);
    return gcb_finish(intact == (count < window ? count : window));
  }
  for (int round = 0; round < 10 && finalized < count; round++) {
    gcb_collect();
    gcb_run_finalizers();
  }
  gcb_note("count=%ld finalized=%ld bad=%ld", count, finalized, bad);
  /* Boehm scans the stack conservatively: a stale copy of a handle pointer in a dead stack slot
   * or register can keep a few handles alive, so it is allowed a handful of stragglers. */
#ifdef GCB_BOEHM
  const long slack = 8;
#else
  const long slack = 0;
#endif
  return gcb_finish(finalized >= count - slack && finalized <= count && bad == 0);
}
