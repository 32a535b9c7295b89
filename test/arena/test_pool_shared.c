/* A shared pool under a threaded stress: threads allocate, stamp, verify and free blocks, and
 * hand some blocks to other threads to free. Runs under TSan. */
#include <heapkit.h>
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define THREADS 4
#define OPS 100000
#define LIVE 256
#define SIZE 40

static hk_pool *pool;
static _Atomic(unsigned char *) handoff[THREADS];
static atomic_int failures;

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned char *live[LIVE] = {0};
  uint32_t x = 777u * (uint32_t)(id + 1);
  int bad = 0;
  for (int i = 0; i < OPS; i++) {
    x = x * 1103515245u + 12345u;
    int slot = (int)((x >> 8) % LIVE);
    if (live[slot]) {
      for (int k = 0; k < SIZE; k++) bad |= live[slot][k] != (unsigned char)(id * 64 + slot % 64);
      if (i % 16 == 0) {
        /* give it to the next thread; free whatever it left us */
        unsigned char *old = atomic_exchange(&handoff[(id + 1) % THREADS], live[slot]);
        if (old) hk_pool_free(pool, old);
      } else {
        hk_pool_free(pool, live[slot]);
      }
      live[slot] = NULL;
    } else {
      unsigned char *b = hk_pool_alloc(pool);
      if (!b) { bad = 1; break; }
      memset(b, id * 64 + slot % 64, SIZE);
      live[slot] = b;
    }
  }
  for (int s = 0; s < LIVE; s++) hk_pool_free(pool, live[s]);
  if (bad) atomic_fetch_add(&failures, 1);
  return NULL;
}

int main(void) {
  pool = hk_pool_new_ex(&(hk_pool_options){.block_size = SIZE, .shared = true});
  CHECK(pool != NULL);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < THREADS; i++) hk_pool_free(pool, atomic_load(&handoff[i]));
  CHECK(atomic_load(&failures) == 0);
  hk_pool_stats st;
  hk_pool_stats_get(pool, &st);
  CHECK(st.in_use == 0 && st.bad_frees == 0);
  CHECK(st.free_blocks == st.carved && st.in_use_peak <= THREADS * LIVE + THREADS);
  hk_pool_reset(pool);
  hk_pool_destroy(pool);
  return check_report("pool.shared");
}
