/* A first-class heap its thread never destroyed or deleted: at the thread's exit it is deleted (its
 * blocks stay allocated, any thread may read and free them) and its handle is dead. A call through
 * the handle ends the process with
 *     heapkit: hk_heap_…: 0x<heap> is not a live heap (destroyed or deleted, or its thread has exited?)
 * (before 2026-12-07 the message said "(destroyed already?)" only, which sent a user looking for a
 * hk_heap_destroy the program never made). The same for another thread's default heap once that
 * thread has exited. Each misuse runs in a forked child. */
#define _GNU_SOURCE
#include <heapkit.h>
#include <pthread.h>
#include <stdint.h>

#include "testutil.h"
#include "../child.h"

static hk_heap *heap;   /* made by a thread that has exited */
static hk_heap *dead_default;
static void *blocks[64];

static size_t size_of(int i) { return (size_t)i * 997 + 1; } /* 1 B to 62 KiB, and one large block */

static void *make_and_exit(void *arg) {
  (void)arg;
  heap = hk_heap_new();
  for (int i = 0; i < 63; i++) {
    blocks[i] = hk_heap_malloc(heap, size_of(i));
    memset(blocks[i], i, size_of(i));
  }
  blocks[63] = hk_heap_malloc(heap, 300000);
  memset(blocks[63], 63, 300000);
  return NULL;
}

static void *default_and_exit(void *arg) {
  (void)arg;
  dead_default = hk_heap_get_default();
  hk_free(hk_heap_malloc(dead_default, 10));
  return NULL;
}

static void use_heap(void) { (void)!hk_heap_malloc(heap, 16); }
static void destroy_heap(void) { hk_heap_destroy(heap); }
static void use_dead_default(void) { (void)!hk_heap_calloc(dead_default, 1, 16); }

static void expect_dead(const char *what, void (*fn)(void), const char *call) {
  char out[4096], why[512];
  int st = check_child_run(fn, out, sizeof out);
  check_child_aborted(st, out, "heapkit: ", NULL, why, sizeof why);
  char want[160];
  snprintf(want, sizeof want, "heapkit: %s: %p is not a live heap (destroyed or deleted, or its thread has exited?)", call,
           what[0] == 'd' ? (void *)dead_default : (void *)heap);
  CHECKF(!why[0], "%s: %s; stderr: %s", what, why, out);
  CHECKF(strncmp(out, want, strlen(want)) == 0, "%s: expected \"%s\", got: %s", what, want, out);
  printf("ok   %s: %s", what, out);
}

int main(void) {
  tu_test_name = "malloc_heap_thread_exit";
  pthread_t t;
  CHECK(pthread_create(&t, NULL, make_and_exit, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  CHECK(pthread_create(&t, NULL, default_and_exit, NULL) == 0);
  CHECK(pthread_join(t, NULL) == 0);
  /* the blocks outlive the heap's thread, intact */
  for (int i = 0; i < 64; i++) {
    size_t n = i < 63 ? size_of(i) : 300000;
    const unsigned char *b = blocks[i];
    CHECKF(b[0] == (unsigned char)i && b[n - 1] == (unsigned char)i, "block %d changed after its heap's thread exited", i);
    CHECK(hk_owns(b));
  }
  expect_dead("the exited thread's heap, hk_heap_malloc", use_heap, "hk_heap_malloc");
  expect_dead("the exited thread's heap, hk_heap_destroy", destroy_heap, "hk_heap_destroy");
  expect_dead("dead thread's default heap, hk_heap_calloc", use_dead_default, "hk_heap_calloc");
  /* and any thread frees them */
  for (int i = 0; i < 64; i++) hk_free(blocks[i]);
  printf("malloc_heap_thread_exit: ok\n");
  return 0;
}
