/* HEAPKIT_HARDENED=1, classes over 1 KiB (a default heap's "hot" pages): the owner frees a block,
 * then another thread frees it again. Hardened pages keep the owner's frees on local_free so that
 * the owner finds the second free when it collects its page's remote frees:
 *     heapkit: double free of 0x<block> (freed by another thread, found when its page collected that free)
 * Before 2026-12-07 a hot page put the owner's free on its allocation list: the other thread's
 * free overwrote the block's link, malloc handed the block out twice, and a later pop reported
 * "corrupted free list ... (a free block's link was overwritten ...)" instead, or nothing.
 * Each case runs in a forked child; the parent checks SIGABRT, the message and the address.
 * Usage: malloc_hardened_hot   (HEAPKIT_HARDENED=1 must be set in the environment) */
#define _GNU_SOURCE
#include <heapkit.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "testutil.h"
#include "../child.h"

#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wuse-after-free"

static size_t block_size;
static int live, between; /* blocks allocated; whether the owner frees another block in between */
static volatile uintptr_t *shared_addr; /* the block freed twice, for the parent */

static void *free_it(void *p) {
  hk_free(p);
  return NULL;
}

static void child(void) {
  void *v[64];
  for (int i = 0; i < live; i++) v[i] = hk_malloc(block_size);
  *shared_addr = (uintptr_t)v[2];
  hk_free(v[2]);
  if (between) hk_free(v[3]);
  pthread_t t;
  if (pthread_create(&t, NULL, free_it, v[2]) != 0) _exit(3);
  pthread_join(t, NULL);
  /* the owner's mallocs drain its lists and collect the remote free; a block handed out twice is
   * a failure even if nothing is reported */
  static void *w[4000];
  for (int i = 0; i < 4000; i++) {
    w[i] = hk_malloc(block_size);
    for (int j = 0; j < i; j++)
      if (w[j] == w[i]) {
        fprintf(stderr, "block %p handed out twice (mallocs %d and %d)\n", w[i], j, i);
        _exit(2);
      }
  }
  _exit(0);
}

int main(void) {
  tu_test_name = "malloc_hardened_hot";
  CHECKF(hk_option_get(HK_OPT_HARDENED), "needs HEAPKIT_HARDENED=1 in the environment");
  shared_addr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(shared_addr != MAP_FAILED);
  hk_free(hk_malloc(1));
  static const size_t sizes[] = {48, 1024, 1100, 2048, 4096, 20000, 60000};
  int fails = 0, ran = 0;
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
    for (int l = 0; l < 2; l++)
      for (int b = 0; b < 2; b++) {
        /* (a page of 60000-byte blocks holds two: freeing both empties it, and the other thread's
         * free is then of a block in no allocated page, an invalid free) */
        if (b && sizes[s] > 32768) continue;
        block_size = sizes[s];
        live = l ? 64 : 6; /* 64: the first page is full when the frees come */
        between = b;
        char out[4096], why[512];
        int st = check_child_run(child, out, sizeof out);
        check_child_aborted(st, out, "heapkit: double free of 0x", NULL, why, sizeof why);
        if (!why[0] && !strstr(out, "(freed by another thread, found when its page collected that free)"))
          snprintf(why, sizeof why, "not reported as another thread's double free");
        if (!why[0] && strtoull(strstr(out, "0x"), NULL, 16) != (unsigned long long)*shared_addr)
          snprintf(why, sizeof why, "the message does not name the block freed twice (%p)", (void *)*shared_addr);
        out[strcspn(out, "\n")] = 0;
        printf("%s %6zu B, %2d live%s: %s%s%s\n", why[0] ? "FAIL" : "ok  ", block_size, live,
               between ? ", another freed between" : "", why, why[0] ? "; stderr: " : "", out);
        fails += why[0] != 0;
        ran++;
      }
  printf("malloc_hardened_hot: %d of %d cases failed\n", fails, ran);
  return fails ? 1 : 0;
}
