/* The allocator under an address-space limit (RLIMIT_AS, `ulimit -v`: batch schedulers, sandboxes).
 * The limit is set to the address space in use plus LIMIT_MIB, then:
 *   cache  10 blocks of 20 MiB are allocated, touched and freed, then 150 MiB is asked for: the
 *          freed blocks' segments, kept in the segment cache, held the address space, and the
 *          request failed (glibc's succeeds); now the cache is released when the OS refuses.
 *   large  blocks of 100 KiB until malloc fails: each took a 16 MiB segment (the spare room for
 *          realloc in place) while fewer than 64 were live, so 18 of them (1.8 MiB) exhausted
 *          300 MiB; now the spare room is taken only while it stays within a sixteenth of the
 *          limit, and a refused reservation is retried without it. Then each took a 4 MiB segment
 *          (72 blocks); under a limit a large block's segment was then its size rounded to 256 KiB
 *          (about 1100 blocks), and now, under 64 OS pages, to a page (104 KiB: about 2800;
 *          glibc about 2900).
 *   lookup interior pointers of a large block whose segment is not a multiple of 4 MiB.
 *   reuse  such a segment, cached, is not taken for a pool's or an arena's segment.
 *   grow   realloc growing one block by 2 MiB + 4 KiB a step until it fails: the block's segment
 *          had no spare room under a limit, so every step moved it (a copy of all of it, and the
 *          old and new blocks together stopped it near half the limit); now its reservation is
 *          extended in place when the address space after it is free. Most steps keep the pointer,
 *          the contents stay, and the step that passes the limit returns NULL with ENOMEM and the
 *          old block intact.
 * Usage: malloc_rlimit cache|large|lookup|reuse. Not under sanitizers (their shadow memory needs the address space). */
#include <heapkit.h>
#include <sys/resource.h>
#include <unistd.h>

#include "testutil.h"

#define LIMIT_MIB 300
#define MiB ((size_t)1 << 20)

static size_t vsize(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  CHECK(f != NULL);
  unsigned long pages = 0;
  CHECK(fscanf(f, "%lu", &pages) == 1);
  fclose(f);
  return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void limit(void) {
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = vsize() + LIMIT_MIB * MiB;
  CHECK(setrlimit(RLIMIT_AS, &rl) == 0);
}

static void sec_cache(void) {
  void *b[10];
  for (int i = 0; i < 10; i++) {
    b[i] = hk_malloc(20 * MiB);
    CHECKF(b[i] != NULL, "20 MiB block %d: errno %d", i, errno);
    memset(b[i], 1, 20 * MiB);
  }
  for (int i = 0; i < 10; i++) hk_free(b[i]);
  errno = 0;
  void *p = hk_malloc(150 * MiB);
  CHECKF(p != NULL, "150 MiB after freeing 200 MiB, with %d MiB of address space: errno %d", LIMIT_MIB, errno);
  memset(p, 2, 150 * MiB);
  hk_free(p);
}

#define MAXB 4096
static void *blocks[MAXB];

static void sec_large(void) {
  int n = 0;
  while (n < MAXB && (blocks[n] = hk_malloc(100 << 10)) != NULL) memset(blocks[n++], 3, 100 << 10);
  /* 104 KiB of address space each leaves room for about 2800 (256 KiB: 1100; 4 MiB: 72); glibc
   * fits ~2900 */
  CHECKF(n >= 2400, "only %d blocks of 100 KiB within %d MiB of address space", n, LIMIT_MIB);
  for (int i = 0; i < n; i++) hk_free(blocks[i]);
  /* and the memory is there again for one big block (the cache gives its segments back) */
  void *p = hk_malloc(200 * MiB);
  CHECKF(p != NULL, "200 MiB after freeing %d blocks: errno %d", n, errno);
  hk_free(p);
  printf("malloc_rlimit: %d blocks of 100 KiB within %d MiB\n", n, LIMIT_MIB);
}

/* A large block's segment that is not a multiple of 4 MiB: interior pointers past its last whole
 * 4 MiB were not found (hk_owns false, malloc_usable_size "not allocated by heapkit"). */
static void sec_lookup(void) {
  size_t n = 100 * MiB + 100 * 1024;
  unsigned char *p = hk_malloc(n);
  CHECK(p != NULL);
  for (size_t off = 0; off < n; off += 1 * MiB + 12345) {
    CHECKF(hk_owns(p + off), "hk_owns(p + %zu) false", off);
    CHECKF(hk_malloc_usable_size(p + off) >= n - off, "usable(p + %zu) = %zu", off, hk_malloc_usable_size(p + off));
  }
  CHECK(hk_owns(p + n - 1) && hk_malloc_usable_size(p + n - 1) >= 1);
  hk_free(p);
}

/* A freed large block's segment that is not a multiple of 4 MiB, in the cache, must not serve a
 * pool's or an arena's 4 MiB request (it did: a debug build stopped at the segment check). */
static void sec_reuse(void) {
  void *a = hk_malloc(5 * MiB), *b = hk_malloc(5 * MiB); /* the first may get a 16 MiB segment */
  CHECK(a && b);
  hk_free(a);
  hk_free(b);
  hk_pool *pool = hk_pool_new(64);
  CHECK(pool != NULL);
  for (int i = 0; i < 1000; i++) CHECK(hk_pool_alloc(pool) != NULL);
  hk_pool_destroy(pool);
  hk_arena *ar = hk_arena_new(NULL);
  CHECK(ar != NULL);
  for (int i = 0; i < 1000; i++) CHECK(hk_arena_alloc(ar, 1000) != NULL);
  hk_arena_destroy(ar);
}

/* one byte per 4 KiB page, from the page's offset: written as the block grows, checked at every step */
static unsigned char mark(size_t off) { return (unsigned char)((off >> 12) * 31 + 7); }
static void check_marks(const unsigned char *p, size_t n) {
  for (size_t off = 0; off < n; off += 4096) CHECKF(p[off] == mark(off), "byte %zu of %zu lost", off, n);
}

static void sec_grow(void) {
  size_t step = 2 * MiB + 4096, n = step;
  unsigned char *p = hk_malloc(n);
  CHECK(p != NULL);
  for (size_t off = 0; off < n; off += 4096) p[off] = mark(off);
  int steps = 0, moves = 0;
  for (;;) {
    errno = 0;
    unsigned char *q = hk_realloc(p, n + step);
    if (!q) {
      CHECKF(errno == ENOMEM, "realloc to %zu MiB failed with errno %d", (n + step) / MiB, errno);
      check_marks(p, n); /* the old block intact */
      break;
    }
    steps++;
    if (q != p) moves++;
    p = q;
    check_marks(p, n);
    for (size_t off = n; off < n + step; off += 4096) p[off] = mark(off);
    n += step;
    CHECK(steps < 1000);
  }
  printf("malloc_rlimit: grew to %zu MiB in %d steps, %d moves, within %d MiB\n", n / MiB, steps, moves, LIMIT_MIB);
  /* moving at every step, the old and new blocks together stopped it near half the limit */
  CHECKF(n > LIMIT_MIB * MiB * 2 / 3, "stopped at %zu MiB of %d", n / MiB, LIMIT_MIB);
  CHECKF(moves * 4 <= steps, "%d moves in %d steps", moves, steps);
  hk_free(p);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_rlimit";
  CHECK(argc > 1);
  hk_free(hk_malloc(16)); /* the thread's first segment before the limit */
  limit();
  if (strcmp(argv[1], "cache") == 0) sec_cache();
  else if (strcmp(argv[1], "large") == 0) sec_large();
  else if (strcmp(argv[1], "lookup") == 0) sec_lookup();
  else if (strcmp(argv[1], "reuse") == 0) sec_reuse();
  else if (strcmp(argv[1], "grow") == 0) sec_grow();
  else CHECKF(0, "unknown section %s", argv[1]);
  return 0;
}
