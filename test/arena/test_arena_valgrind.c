/* Valgrind sees released arena memory and free pool blocks as inaccessible (client requests from
 * <valgrind/memcheck.h>). Run by arena_valgrind.sh under valgrind: "stale" must be reported,
 * "clean" must not. Outside valgrind the program only exercises the same paths. */
#include <heapkit.h>

#include <stdio.h>
#include <string.h>

static volatile char sink;

int main(int argc, char **argv) {
  int stale = argc > 1 && strcmp(argv[1], "stale") == 0;
  hk_arena *r = hk_region_push();
  char *p = hk_region_alloc(64);
  memset(p, 1, 64);
  hk_region_pop(r);
  hk_arena *a = hk_arena_new(NULL);
  hk_arena_mark m = hk_arena_save(a);
  char *q = hk_arena_alloc(a, 100);
  memset(q, 2, 100);
  hk_arena_restore(a, m);
  hk_pool *pl = hk_pool_new(48);
  char *b = hk_pool_alloc(pl);
  memset(b, 3, 48);
  hk_pool_free(pl, b);
  if (stale) {
    sink = p[0]; /* a region that was popped */
    sink = q[10]; /* memory after a restore */
    sink = b[20]; /* a freed pool block */
  }
  hk_pool_destroy(pl);
  hk_arena_destroy(a);
  printf("done\n");
  return 0;
}
