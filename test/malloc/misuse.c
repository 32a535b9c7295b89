/* Deliberate misuse: frees of pointers heapkit never handed out, and double frees it can detect,
 * must end the process with SIGABRT and one line on stderr:
 *     heapkit: invalid free of 0x<address>      (never allocated, interior, stack, global)
 *     heapkit: double free of 0x<address>
 * Each case runs in a forked child whose stderr goes to a pipe; the parent checks the signal, that
 * stderr holds exactly one line, its prefix, and that the address printed is the one passed.
 *
 * Other bad input to the API (realloc or usable size of a foreign pointer, a heap used from another
 * thread, destroyed twice or NULL) must also end with one "heapkit: ..." line and SIGABRT.
 *
 * Usage: malloc_misuse [case|hardened]   (no argument: every case; hardened: the cases that need
 * HEAPKIT_HARDENED=1, which must be set in the environment)
 * Built with HK_TEST_OVERRIDE=1 when the library exports the libc names, to cover free() too. */
#define _GNU_SOURCE
#include <heapkit.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "../child.h"

/* The misuse below is the point of this file. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wuse-after-free"

#ifndef HK_TEST_OVERRIDE
#define HK_TEST_OVERRIDE 0
#endif

static long global_words[64];
static void *volatile sink;

/* Each case returns the pointer it passes to the bad call (set before the call so the parent can
 * compare it with the message), through a shared page. */
static uintptr_t *shared_addr;

static void bad_free(void *p) {
  *shared_addr = (uintptr_t)p;
  hk_free(p);
}

static void case_stack(void) { char buf[64]; sink = buf; bad_free(buf + 16); }
static void case_global(void) { bad_free(&global_words[8]); }
static void case_interior_small(void) { char *p = hk_malloc(100); bad_free(p + 16); }
static void case_interior_medium(void) { char *p = hk_malloc(100000); bad_free(p + 4096); }
static void case_interior_huge(void) { char *p = hk_malloc(12 << 20); bad_free(p + (5 << 20)); }
static void case_mmap(void) {
  char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bad_free(m + 4096);
}
static void case_wild(void) { bad_free((void *)(uintptr_t)0x5a5a5a5a5000ull); }
static void case_unaligned(void) { char *p = hk_malloc(64); bad_free(p + 1); }
/* The same checks when the block belongs to another thread: the freer validates the pointer with
 * the page's remote copies of its layout (start, carved, block size), never the owner's fields. */
static void *remote_arg;
static void *remote_bad_free(void *arg) { (void)arg; bad_free(remote_arg); return NULL; }
static void free_in_thread(void *p) {
  remote_arg = p;
  pthread_t t;
  pthread_create(&t, NULL, remote_bad_free, NULL);
  pthread_join(t, NULL);
}
static void case_interior_remote(void) { char *p = hk_malloc(100); free_in_thread(p + 16); }
static void case_unaligned_remote(void) { char *p = hk_malloc(64); free_in_thread(p + 1); }
static void case_uncarved_remote(void) {
  /* a block-aligned address in the page beyond what was carved so far is not a block yet */
  char *p = hk_malloc(96);
  free_in_thread(p + 96 * 1000);
}
/* Local frees of pointers outside any carved block of a segment this thread frees into (the second
 * free takes hk_free's fast path: the segment is among its hints after the first): hk_free finds
 * the page index of these without a bound compare (hk__mseg.guard). */
static uintptr_t hinted_segment(size_t size) {
  char *p = hk_malloc(size), *q = hk_malloc(size);
  sink = p;
  hk_free(q);
  return (uintptr_t)p & ~(uintptr_t)((4u << 20) - 1);
}
static void case_header_local(void) { bad_free((void *)(hinted_segment(48) + 4096)); }
static void case_header_medium_local(void) { bad_free((void *)(hinted_segment(20000) + 4096)); }
/* a medium segment holds 31.5 pages of 128 KiB: its last 64 KiB are no page's */
static void case_medium_tail_local(void) { bad_free((void *)(hinted_segment(20000) + (4u << 20) - (32u << 10))); }
static void case_uncarved_local(void) {
  char *p = hk_malloc(96);
  hk_free(hk_malloc(96));
  bad_free(p + 96 * 600); /* (a 64 KiB page holds 682 such blocks; 42 are carved at first) */
}
static void case_uncarved_pow2_local(void) {
  char *p = hk_malloc(64);
  hk_free(hk_malloc(64));
  bad_free(p + 64 * 900); /* (1024 in the page, 64 carved at first) */
}
static void case_interior_pow2_local(void) {
  char *p = hk_malloc(64);
  hk_free(hk_malloc(64));
  bad_free(p + 32);
}
/* an interior pointer of a block in a page of the full queue (its frees leave the fast path) */
static void case_interior_full_local(void) {
  char *first = hk_malloc(64);
  hk_free(hk_malloc(64));
  for (int i = 0; i < 1100; i++) sink = hk_malloc(64); /* (1024 blocks in a page) */
  bad_free(first + 16);
}
/* A thread frees another thread's block twice in a row: the second free finds it at the head of
 * its remote-free buffer (the first is not on the page's lists yet). */
static void *remote_double(void *arg) { (void)arg; hk_free(remote_arg); bad_free(remote_arg); return NULL; }
static void case_double_remote(void) {
  remote_arg = hk_malloc(48);
  pthread_t t;
  pthread_create(&t, NULL, remote_double, NULL);
  pthread_join(t, NULL);
}
/* The same with a block over 1 KiB, which the freeing thread keeps in its foreign-block cache
 * (rfree.c; once it has one, and has allocated blocks of that size since): the second free finds
 * it there, with a block freed in between. */
static void *remote_spare;
static void *remote_double_big(void *arg) {
  (void)arg;
  hk_free(remote_spare);
  void *other = hk_malloc(3000);
  hk_free(remote_arg);
  void *mine = hk_malloc(100);
  hk_free(mine);
  bad_free(remote_arg);
  return other;
}
static void case_double_remote_big(void) {
  remote_arg = hk_malloc(3000);
  remote_spare = hk_malloc(3000);
  void *spare = hk_malloc(3000); /* so that remote_arg's page does not empty */
  (void)spare;
  pthread_t t;
  pthread_create(&t, NULL, remote_double_big, NULL);
  pthread_join(t, NULL);
}
/* Hardened: another thread frees a block and stays alive; the owner's double free must be found,
 * so hardened pages never hold remote frees back in the freeing thread's buffer. */
static _Atomic int remote_step;
static void *remote_free_and_wait(void *arg) {
  (void)arg;
  hk_free(remote_arg);
  atomic_store(&remote_step, 1);
  while (atomic_load(&remote_step) != 2) usleep(1000);
  return NULL;
}
static void case_double_remote_hardened(void) {
  void *p = hk_malloc(48);
  remote_arg = p;
  pthread_t t;
  pthread_create(&t, NULL, remote_free_and_wait, NULL);
  while (atomic_load(&remote_step) != 1) usleep(1000);
  bad_free(p);
  atomic_store(&remote_step, 2);
  pthread_join(t, NULL);
}
/* Hardened: a block freed by its owner and then by another thread, or by two other threads, is found
 * when the owner collects the page's remote frees (its next allocations of that size). Before, the
 * block went on the free list twice and malloc handed it out again and again (a cycle). */
static void *remote_free_only(void *arg) { (void)arg; bad_free(remote_arg); return NULL; }
static void *remote_free_only_quiet(void *arg) { (void)arg; hk_free(remote_arg); return NULL; }
static void alloc_until_collected(void) {
  for (int i = 0; i < 100000; i++) sink = hk_malloc(48);
}
static void case_double_local_remote_hardened(void) {
  void *keep = hk_malloc(48), *p = hk_malloc(48); /* keep: the page stays in use */
  (void)keep;
  hk_free(p);
  remote_arg = p;
  pthread_t t;
  pthread_create(&t, NULL, remote_free_only, NULL);
  pthread_join(t, NULL);
  alloc_until_collected();
}
static void case_double_two_remote_hardened(void) {
  void *keep = hk_malloc(48), *p = hk_malloc(48);
  (void)keep;
  remote_arg = p;
  for (int k = 0; k < 2; k++) {
    pthread_t t;
    pthread_create(&t, NULL, remote_free_only, NULL);
    pthread_join(t, NULL);
  }
  alloc_until_collected();
}
/* The same when the page was full: the other thread's free goes to the owner's heap (delayed-free
 * list), which put it on the page's free list a second time. */
static void case_double_delayed_hardened(void) {
  static void *blocks[4000]; /* more than a 64 KiB page of 48-byte blocks: the first page is full */
  for (int i = 0; i < 4000; i++) blocks[i] = hk_malloc(48);
  hk_free(blocks[0]);
  remote_arg = blocks[0];
  pthread_t t;
  pthread_create(&t, NULL, remote_free_only, NULL);
  pthread_join(t, NULL);
  alloc_until_collected();
}
/* Hardened: another thread frees a block and stays alive (so nothing of it is handed over by its
 * exit), then a third thread frees the block again. Outside hardened mode the first free parks the
 * block in the first thread's remote-free buffer (48 bytes) or foreign-block cache (3000 bytes,
 * once that thread has a cache and wants the class), where neither the third thread nor the
 * owner looks: the owner collects the second free, finds the block on none of its lists, and hands
 * it out again while it is still parked. Hardened pages are never parked (remote.rbuf_limit is 0):
 * both frees reach the page, and the owner finds the second when it collects them. (Checked: with
 * hk__rbuf_limit ignoring HARDENED, both cases run to the end unreported.) */
static size_t parked_size;
static void *parked_spare;
static void *remote_park_and_wait(void *arg) {
  (void)arg;
  if (parked_size > 1024) {
    hk_free(parked_spare);                      /* the foreign-block cache is set up */
    void *mine = hk_malloc(parked_size);        /* a miss in it: the class is wanted */
    sink = mine;
  }
  hk_free(remote_arg);
  atomic_store(&remote_step, 1);
  while (atomic_load(&remote_step) != 2) usleep(1000);
  return NULL;
}
static void double_parked(size_t size) {
  parked_size = size;
  void *keep = hk_malloc(size); /* the page stays in use */
  (void)keep;
  remote_arg = hk_malloc(size);
  parked_spare = hk_malloc(size);
  pthread_t t, t2;
  pthread_create(&t, NULL, remote_park_and_wait, NULL);
  while (atomic_load(&remote_step) != 1) usleep(1000);
  pthread_create(&t2, NULL, remote_free_only, NULL); /* bad_free(remote_arg) */
  pthread_join(t2, NULL);
  for (int i = 0; i < 20000; i++) sink = hk_malloc(size); /* collects the page's remote frees */
  atomic_store(&remote_step, 2);
  pthread_join(t, NULL);
}
static void case_double_rbuf_hardened(void) { double_parked(48); }
static void case_double_fcache_hardened(void) { double_parked(3000); }
/* Hardened: the same hand-over to the owner's heap, then the owner frees the block itself. A class
 * over 1 KiB: the owner's free puts the block on its page's allocation list (a hot page), so the
 * next malloc hands it out. Before, the owner's search did not look at the heap's delayed-free
 * list: the free passed, overwrote the block's link in that list, and the drain at the next
 * allocation slow path followed it (SIGSEGV) or freed the live block. */
static void case_double_delayed_local_hardened(void) {
  static void *blocks[400]; /* 3000-byte blocks, 21 to a 64 KiB page: the first pages are full */
  for (int i = 0; i < 400; i++) blocks[i] = hk_malloc(3000);
  remote_arg = blocks[0];
  pthread_t t;
  pthread_create(&t, NULL, remote_free_only_quiet, NULL);
  pthread_join(t, NULL);
  bad_free(blocks[0]);
  for (int i = 0; i < 1000; i++) sink = hk_malloc(3000);
}
/* Hardened: a free block's link overwritten (a write after free; an overflow of the live block
 * before it). Blocks carry no header, so the link is what such a write reaches. Before, the pop
 * that took the block set the allocation list to the garbage it decoded, and the next malloc of
 * the class read it: a segfault, hardened or not. Now the hardened pop checks the link it follows
 * (page.c, page_pop) and reports it. The message names the page, not a block: no address check. */
static void *launder(void *p) { /* (so that the compiler sees no out-of-bounds write below) */
  __asm__("" : "+r"(p));
  return p;
}
static void case_link_after_free_hardened(void) {
  long *p = hk_malloc(64);
  sink = hk_malloc(64);
  hk_free(p);
  long *w = launder(p);
  w[0] = 0x4141414141414141; /* 16 bytes written into the freed block */
  w[1] = 0x4141414141414141;
  for (int i = 0; i < 100; i++) sink = hk_malloc(64);
}
static void case_link_overflow_hardened(void) {
  static char *b[256];
  for (int i = 0; i < 256; i++) b[i] = hk_malloc(48);
  int k = -1; /* a pair of neighbours */
  for (int i = 0; i + 1 < 256 && k < 0; i++) if (b[i + 1] == b[i] + 48) k = i;
  if (k < 0) { fprintf(stderr, "no two neighbouring blocks\n"); exit(1); }
  hk_free(b[k + 1]);
  memset(launder(b[k]), 'x', 48 + 16); /* 16 bytes past the live block, into its free neighbour */
  for (int i = 0; i < 4096; i++) sink = hk_malloc(48);
}
static void case_double_small(void) {
  void *p = hk_malloc(48);
  hk_free(p);
  bad_free(p);
}
static void case_double_after_other(void) {
  /* a double free with other traffic in between, detected at least in hardened mode */
  void *p = hk_malloc(200), *q = hk_malloc(200);
  hk_free(p);
  void *r = hk_malloc(1000);
  hk_free(q);
  (void)r;
  bad_free(p);
}
static void case_double_hardened(void) {
  void *p = hk_malloc(32);
  hk_free(p);
  bad_free(p);
}
static void case_double_huge(void) {
  void *p = hk_malloc(9 << 20);
  hk_free(p);
  bad_free(p);
}
/* A block of a segment the thread has given back (its blocks freed, the segment released): the
 * free fast path trusts the segments among the thread's hints, so a released one must not stay
 * there. (Here the released segment stays mapped in the segment cache, so a stale hint still ends
 * in this message; the HK_DEBUG=3 heap check finds one in malloc.api.* and malloc.random.*.) */
static void case_freed_segment(void) {
  enum { N = 1000 }; /* 16 KiB blocks: 4 per 64 KiB page, about 250 per segment */
  static char *blk[N];
  for (int i = 0; i < N; i++) blk[i] = hk_malloc(16 << 10);
  for (int i = 0; i < N; i++) hk_free(blk[i]);
  hk_collect(true); /* the segment cache gives its segments back to the OS */
  for (int i = 0; i < N; i++) {
    if (!hk_owns(blk[i])) {
      bad_free(blk[i]);
      return;
    }
  }
  fprintf(stderr, "no segment was given back\n");
  abort();
}

static void case_double_heap(void) {
  hk_heap *h = hk_heap_new();
  void *p = hk_heap_malloc(h, 64);
  hk_free(p);
  bad_free(p);
}
static void case_realloc_stack(void) {
  char buf[64];
  sink = buf;
  *shared_addr = (uintptr_t)buf;
  sink = hk_realloc(buf, 100);
}
static void case_realloc_interior(void) {
  char *p = hk_malloc(100);
  *shared_addr = (uintptr_t)(p + 8);
  sink = hk_realloc(p + 8, 200);
}
/* realloc of an interior pointer of a large block: it grew the block in place from that pointer
 * (the block's size now counted from its start, the caller told it may write that much from the
 * interior pointer, past the block's end) and returned the pointer as a success. */
static void case_realloc_interior_huge(void) {
  char *p = hk_malloc(10 << 20);
  *shared_addr = (uintptr_t)(p + 4096);
  sink = hk_realloc(p + 4096, 12 << 20);
}
/* ... and of a small block, to a size its remaining bytes hold: returned as it was. */
static void case_realloc_interior_fits(void) {
  char *p = hk_malloc(100);
  *shared_addr = (uintptr_t)(p + 16);
  sink = hk_realloc(p + 16, 90);
}
/* realloc of a block freed already, to a size it holds: returned, still free (the next malloc
 * hands it out a second time). */
static void case_realloc_freed(void) {
  char *p = hk_malloc(100);
  hk_free(p);
  *shared_addr = (uintptr_t)p;
  sink = hk_realloc(p, 100);
}
/* ... and of a block over 1 KiB (a hot page's, which realloc looks up through the segment hints) */
static void case_realloc_freed_big(void) {
  char *keep = hk_malloc(3000), *p = hk_malloc(3000);
  sink = keep;
  hk_free(p);
  *shared_addr = (uintptr_t)p;
  sink = hk_realloc(p, 2000);
}
static void case_usable_size_stack(void) {
  char buf[64];
  sink = buf;
  *shared_addr = (uintptr_t)buf;
  sink = (void *)hk_malloc_usable_size(buf);
}
static hk_heap *other_heap;
static void *use_other_heap(void *arg) {
  *shared_addr = (uintptr_t)other_heap;
  sink = hk_heap_malloc(other_heap, 10);
  return arg;
}
static void case_heap_other_thread(void) {
  /* a heap allocates only on the thread that created it */
  other_heap = hk_heap_new();
  pthread_t t;
  pthread_create(&t, NULL, use_other_heap, NULL);
  pthread_join(t, NULL);
}
static void case_heap_destroy_null(void) { hk_heap_destroy(NULL); }
static void case_heap_destroy_twice(void) {
  hk_heap *h = hk_heap_new();
  sink = hk_heap_malloc(h, 100);
  hk_heap_destroy(h);
  *shared_addr = (uintptr_t)h;
  hk_heap_destroy(h);
}
#if HK_TEST_OVERRIDE
static void case_libc_free_stack(void) {
  char buf[32];
  sink = buf;
  *shared_addr = (uintptr_t)buf;
  free(buf);
}
static void case_libc_double(void) {
  char *p = malloc(24);
  sink = p;
  free(p);
  *shared_addr = (uintptr_t)p;
  free(sink);
}
#endif

typedef struct mcase {
  const char *name;
  void (*fn)(void);
  const char *prefix;  /* the message must start with this */
  const char *alt;     /* or with this (NULL: no alternative) */
  int no_addr;         /* 1: the message need not name an address */
  int hardened;        /* 1: needs HEAPKIT_HARDENED=1 from the start (malloc.misuse_hardened); switching it on
                        * with hk_option_set after the first page is refused */
} mcase;

static const mcase cases[] = {
  {"stack", case_stack, "heapkit: invalid free of 0x", NULL},
  {"global", case_global, "heapkit: invalid free of 0x", NULL},
  {"interior_small", case_interior_small, "heapkit: invalid free of 0x", NULL},
  {"interior_medium", case_interior_medium, "heapkit: invalid free of 0x", NULL},
  {"interior_huge", case_interior_huge, "heapkit: invalid free of 0x", NULL},
  {"mmap", case_mmap, "heapkit: invalid free of 0x", NULL},
  {"wild", case_wild, "heapkit: invalid free of 0x", NULL},
  {"unaligned", case_unaligned, "heapkit: invalid free of 0x", NULL},
  {"header_local", case_header_local, "heapkit: invalid free of 0x", NULL},
  {"header_medium_local", case_header_medium_local, "heapkit: invalid free of 0x", NULL},
  {"medium_tail_local", case_medium_tail_local, "heapkit: invalid free of 0x", NULL},
  {"uncarved_local", case_uncarved_local, "heapkit: invalid free of 0x", NULL},
  {"uncarved_pow2_local", case_uncarved_pow2_local, "heapkit: invalid free of 0x", NULL},
  {"interior_pow2_local", case_interior_pow2_local, "heapkit: invalid free of 0x", NULL},
  {"interior_full_local", case_interior_full_local, "heapkit: invalid free of 0x", NULL},
  {"interior_remote", case_interior_remote, "heapkit: invalid free of 0x", NULL},
  {"unaligned_remote", case_unaligned_remote, "heapkit: invalid free of 0x", NULL},
  {"uncarved_remote", case_uncarved_remote, "heapkit: invalid free of 0x", NULL},
  {"double_remote", case_double_remote, "heapkit: double free of 0x", NULL},
  {"double_remote_big", case_double_remote_big, "heapkit: double free of 0x", NULL},
  {"double_remote_hardened", case_double_remote_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"double_local_remote_hardened", case_double_local_remote_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"double_two_remote_hardened", case_double_two_remote_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"double_delayed_hardened", case_double_delayed_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"double_rbuf_hardened", case_double_rbuf_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"double_fcache_hardened", case_double_fcache_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"double_delayed_local_hardened", case_double_delayed_local_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"link_after_free_hardened", case_link_after_free_hardened, "heapkit: corrupted free list in page 0x", NULL, 1, 1},
  {"link_overflow_hardened", case_link_overflow_hardened, "heapkit: corrupted free list in page 0x", NULL, 1, 1},
  {"double_small", case_double_small, "heapkit: double free of 0x", NULL},
  {"double_hardened", case_double_hardened, "heapkit: double free of 0x", NULL, 0, 1},
  {"double_after_other", case_double_after_other, "heapkit: double free of 0x", NULL, 0, 1},
  /* the segment of a freed huge block may already be gone: then the pointer is simply invalid */
  {"double_huge", case_double_huge, "heapkit: double free of 0x", "heapkit: invalid free of 0x"},
  {"double_heap", case_double_heap, "heapkit: double free of 0x", NULL},
  {"freed_segment", case_freed_segment, "heapkit: invalid free of 0x", NULL},
  {"realloc_stack", case_realloc_stack, "heapkit: ", NULL},
  {"realloc_interior", case_realloc_interior, "heapkit: ", NULL},
  {"realloc_interior_huge", case_realloc_interior_huge, "heapkit: realloc of 0x", NULL},
  {"realloc_interior_fits", case_realloc_interior_fits, "heapkit: realloc of 0x", NULL},
  {"realloc_freed", case_realloc_freed, "heapkit: realloc of 0x", NULL},
  {"realloc_freed_big", case_realloc_freed_big, "heapkit: realloc of 0x", NULL},
  {"usable_size_stack", case_usable_size_stack, "heapkit: ", NULL},
  {"heap_other_thread", case_heap_other_thread, "heapkit: ", NULL},
  {"heap_destroy_null", case_heap_destroy_null, "heapkit: ", NULL, 1},
  {"heap_destroy_twice", case_heap_destroy_twice, "heapkit: ", NULL},
#if HK_TEST_OVERRIDE
  {"libc_free_stack", case_libc_free_stack, "heapkit: invalid free of 0x", NULL},
  {"libc_double", case_libc_double, "heapkit: double free of 0x", NULL},
#endif
};

static int run_case(const mcase *c) {
  *shared_addr = 0;
  char out[4096], why[512];
  int st = check_child_run(c->fn, out, sizeof out);
  CHECK(st != -1);
  check_child_aborted(st, out, c->prefix, c->alt, why, sizeof why);
  if (why[0]) {
  } else if (c->no_addr) {
  } else if (!strstr(out, "0x")) snprintf(why, sizeof why, "message does not name the address");
  else {
    /* the first address in the message is the pointer that was passed */
    unsigned long long a = strtoull(strstr(out, "0x"), NULL, 16);
    if (a != (unsigned long long)*shared_addr)
      snprintf(why, sizeof why, "message names 0x%llx, the pointer passed was 0x%llx", a, (unsigned long long)*shared_addr);
  }
  char shown[200];
  snprintf(shown, sizeof shown, "%.*s", (int)(strcspn(out, "\n") < 150 ? strcspn(out, "\n") : 150), out);
  if (why[0]) {
    printf("FAIL %-20s %s; stderr: \"%s\"\n", c->name, why, shown);
    return 1;
  }
  printf("ok   %-20s %s\n", c->name, shown);
  return 0;
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_misuse";
  shared_addr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(shared_addr != MAP_FAILED);
  /* the library must be initialised in the parent too: children inherit it across fork */
  hk_free(hk_malloc(1));
  int fails = 0, ran = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bool hardened_only = argc > 1 && !strcmp(argv[1], "hardened");
    if (argc > 1 && !hardened_only && strcmp(argv[1], cases[i].name) != 0) continue;
    if (hardened_only && !cases[i].hardened) continue;
    if (cases[i].hardened && !hk_option_get(HK_OPT_HARDENED)) {
      printf("skip %-20s needs HEAPKIT_HARDENED=1 (malloc.misuse_hardened)\n", cases[i].name);
      continue;
    }
    fails += run_case(&cases[i]);
    ran++;
  }
  fflush(stdout);
  CHECKF(ran > 0, "no case named %s", argc > 1 ? argv[1] : "?");
  printf("malloc_misuse: %d of %d cases failed\n", fails, ran);
  return fails ? 1 : 0;
}
