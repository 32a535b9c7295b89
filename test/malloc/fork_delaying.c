/* A fork while another thread hands a block to one of the forking thread's full pages (its first
 * remote free into the page: state DELAYING from its first CAS until it has pushed the block on the
 * heap's delayed list; free.c, hk__free_remote). That thread does not exist in the child, so the
 * state stays DELAYING there until the allocator's child handler clears it (heap.c,
 * clear_stale_delaying). A child handler registered before the allocator's (a library initialised
 * before heapkit: here a constructor of higher priority) runs before that one; its frees emptied
 * the page, whose retirement waited for the hand-over to end (hk__page_set_delay), for ever.
 * The hand-over is made deterministic: the state is set as the other thread's first CAS sets it,
 * and finished in the parent after the fork as that thread would. alarm() in the child turns the
 * hang into a failure. Linked with the static library: it reads and sets page descriptors. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define SIZE 48
#define MAX 8192

static void *blocks[MAX];
static int nblocks;
static hk__page *full_page;
static int child_ran;

/* Frees every block of the full page: the page leaves the full queue, empties and retires. */
static void child_handler(void) {
  if (!full_page) return;
  alarm(10);
  for (int i = 0; i < nblocks; i++)
    if (blocks[i] && hk__page_at(blocks[i]) == full_page) {
      hk_free(blocks[i]);
      blocks[i] = NULL;
    }
  child_ran = 1;
}

__attribute__((constructor(101))) static void register_first(void) {
  CHECK(pthread_atfork(NULL, NULL, child_handler) == 0);
}

int main(void) {
  tu_test_name = "malloc_fork_delaying";
  blocks[nblocks++] = hk_malloc(SIZE);
  hk__page *p1 = hk__page_at(blocks[0]), *p2 = NULL;
  /* fill p1, and a block of a second page so that p1, once empty, is not its class's only page
   * (which would be kept, not retired) */
  while (nblocks < MAX && !p2) {
    blocks[nblocks] = hk_malloc(SIZE);
    CHECK(blocks[nblocks] != NULL);
    hk__page *pg = hk__page_at(blocks[nblocks++]);
    if (pg != p1) p2 = pg;
  }
  CHECK(p2 != NULL && (p1->flags & HK__PAGE_IN_FULL));
  uintptr_t tf = atomic_load(&p1->xthread_free);
  CHECK((tf & HK__DELAY_MASK) == HK__USE_DELAYED);
  /* another thread's first remote free into p1 has made its first CAS */
  CHECK(atomic_compare_exchange_strong(&p1->xthread_free, &tf, (tf & ~HK__DELAY_MASK) | HK__DELAYING));
  full_page = p1;
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(child_ran ? 0 : 3);
  full_page = NULL;
  /* the other thread ends its hand-over in the parent (its block is not needed here) */
  tf = atomic_load(&p1->xthread_free);
  CHECK((tf & HK__DELAY_MASK) == HK__DELAYING);
  atomic_store(&p1->xthread_free, (tf & ~HK__DELAY_MASK) | HK__NO_DELAY);
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status 0x%x (SIGALRM %d: it hung)", st, SIGALRM);
  for (int i = 0; i < nblocks; i++) hk_free(blocks[i]);
  printf("ok\n");
  return 0;
}
