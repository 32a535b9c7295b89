/* glibc's extensions to the malloc surface, as exported by the preload library: mallinfo/mallinfo2,
 * malloc_trim's answer, the __libc_* entry points, malloc_stats and malloc_info.
 *
 * Usage: LD_PRELOAD=<lib.so> malloc_glibc_ext <lib.so> mallinfo|trim|libc|info
 * This program is not linked with heapkit: without the preload (or with a library that leaves a
 * name to glibc) every name below resolves into glibc and the checks fail. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <malloc.h>
#include <stdbool.h>
#include <unistd.h>

#include "heapkit/common.h"
#include "testutil.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* mallinfo: its int form is tested too */

/* glibc exports these but declares none of them */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern struct mallinfo __libc_mallinfo(void);
extern int __libc_mallopt(int, int);

static const char *lib_base;
static bool (*owns)(const void *);

static void *resolve(const char *name) {
  void *f = dlsym(RTLD_DEFAULT, name);
  Dl_info di;
  CHECKF(f && dladdr(f, &di) && di.dli_fname, "%s not found", name);
  CHECKF(strstr(di.dli_fname, lib_base) != NULL, "%s resolves to %s, not the preloaded library", name, di.dli_fname);
  return f;
}

static void check_ours(void *p, size_t n, const char *what) {
  CHECKF(p != NULL, "%s(%zu) failed", what, n);
  CHECKF(owns(p), "%s(%zu) = %p is not a heapkit block", what, n, p);
  memset(p, 0xab, n);
}

static bool stats_counted(void) {
  void (*get)(hk_stats *) = (void (*)(hk_stats *))resolve("hk_stats_get");
  hk_stats s;
  get(&s);
  return s.counters;
}

static void consistent(struct mallinfo2 m) {
  CHECKF(m.arena == m.uordblks + m.fordblks, "arena %zu != uordblks %zu + fordblks %zu", m.arena, m.uordblks, m.fordblks);
  CHECK(m.usmblks == 0);
}

static void test_mallinfo(void) {
  resolve("mallinfo");
  resolve("mallinfo2");
  resolve("__libc_mallinfo");
  enum { N = 20000, SZ = 200 };
  static void *blocks[N];
  struct mallinfo2 m0 = mallinfo2();
  consistent(m0);
  for (int i = 0; i < N; i++) check_ours(blocks[i] = malloc(SZ), SZ, "malloc");
  struct mallinfo2 m1 = mallinfo2();
  consistent(m1);
  CHECKF(m1.arena >= (size_t)N * SZ, "arena %zu after allocating %d x %d bytes", m1.arena, N, SZ);
  if (stats_counted()) {
    size_t grew = m1.uordblks - m0.uordblks;
    /* block sizes: 200 bytes round up to a size class at most 25% larger */
    CHECKF(m1.uordblks > m0.uordblks && grew >= (size_t)N * SZ && grew <= (size_t)N * SZ * 5 / 4,
           "uordblks grew by %zu after allocating %d x %d bytes", grew, N, SZ);
  }
  /* a block served by its own segment counts in hblks/hblkhd only */
  size_t big = (size_t)64 << 20;
  void *b = malloc(big);
  check_ours(b, 4096, "malloc");
  struct mallinfo2 m2 = mallinfo2();
  consistent(m2);
  CHECKF(m2.hblks == m1.hblks + 1, "hblks %zu -> %zu after a 64 MiB block", m1.hblks, m2.hblks);
  CHECKF(m2.hblkhd >= m1.hblkhd + big && m2.hblkhd <= m1.hblkhd + big + 65536, "hblkhd %zu -> %zu after a 64 MiB block",
         m1.hblkhd, m2.hblkhd);
  CHECKF(m2.uordblks < m1.uordblks + big / 4, "uordblks %zu -> %zu: the 64 MiB block was counted there", m1.uordblks,
         m2.uordblks);
  /* the int form: the same figures while they fit */
  struct mallinfo mi = mallinfo(), ml = __libc_mallinfo();
  CHECK(mi.hblks == (int)m2.hblks && mi.hblkhd == (int)m2.hblkhd && ml.hblkhd == mi.hblkhd);
  CHECK(mi.arena > 0 && mi.uordblks > 0 && mi.usmblks == 0);
  /* growing and shrinking it (in place or moved) keeps hblkhd its page-rounded size */
  b = realloc(b, big + big / 2);
  check_ours(b, 4096, "realloc");
  CHECKF(mallinfo2().hblkhd == m1.hblkhd + malloc_usable_size(b), "hblkhd %zu, usable %zu", mallinfo2().hblkhd, malloc_usable_size(b));
  b = realloc(b, big / 4);
  check_ours(b, 4096, "realloc");
  CHECKF(mallinfo2().hblkhd == m1.hblkhd + malloc_usable_size(b), "hblkhd %zu, usable %zu", mallinfo2().hblkhd, malloc_usable_size(b));
  free(b);
  /* past INT_MAX mallinfo keeps the low 32 bits, as glibc 2.36's does (not touched: only reserved
   * and committed, which overcommit allows; skipped when the system refuses) */
  void *h1 = malloc((size_t)3 << 30), *h2 = h1 ? malloc((size_t)3 << 30) : NULL;
  if (h2) {
    struct mallinfo2 w2 = mallinfo2();
    struct mallinfo w = mallinfo();
    CHECKF(w2.hblkhd > (size_t)INT_MAX && w.hblkhd == (int)(uint32_t)w2.hblkhd, "hblkhd %zu in mallinfo2, %d in mallinfo",
           w2.hblkhd, w.hblkhd);
  }
  else fprintf(stderr, "malloc_glibc_ext: two 3 GiB blocks refused, the int wrap is not checked\n");
  free(h2);
  free(h1);
  for (int i = 0; i < N; i++) free(blocks[i]);
  struct mallinfo2 m3 = mallinfo2();
  consistent(m3);
  CHECK(m3.hblks == m1.hblks && m3.hblkhd == m1.hblkhd);
  if (stats_counted()) CHECKF(m3.uordblks < m1.uordblks - (size_t)N * SZ / 2, "uordblks %zu after freeing (%zu before)", m3.uordblks, m1.uordblks);
}

static void test_trim(void) {
  resolve("malloc_trim");
  malloc_trim(0);
  CHECKF(malloc_trim(0) == 0, "malloc_trim returned 1 with nothing to release");
  enum { N = 16384, SZ = 4000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) check_ours(blocks[i] = malloc(SZ), SZ, "malloc");
  for (int i = 0; i < N; i++) free(blocks[i]);
  CHECKF(malloc_trim(0) == 1, "malloc_trim returned 0 after freeing %d x %d bytes", N, SZ);
  CHECKF(malloc_trim(0) == 0, "malloc_trim returned 1 twice in a row");
}

static void test_libc(void) {
  const char *names[] = {"__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
                         "__libc_valloc", "__libc_pvalloc", "__libc_reallocarray", "__libc_mallinfo", "__libc_mallopt"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) resolve(names[i]);
  /* (__libc_mallopt was left to glibc's before review, 2026-12-07: harmless, it set glibc's unused
   * heap's options, but the only __libc_ name not heapkit's) */
  CHECK(__libc_mallopt(M_ARENA_MAX, 2) == 1);
  long ps = sysconf(_SC_PAGESIZE);
  const size_t sizes[] = {1, 100, 5000, 300000, (size_t)8 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    /* each __libc_ block freed by free, and each plain block freed by __libc_free */
    void *p = __libc_malloc(n);
    check_ours(p, n, "__libc_malloc");
    free(p);
    p = malloc(n);
    check_ours(p, n, "malloc");
    __libc_free(p);
    p = __libc_calloc(n, 1);
    CHECK(p != NULL && ((unsigned char *)p)[n - 1] == 0);
    check_ours(p, n, "__libc_calloc");
    free(p);
    p = calloc(1, n);
    check_ours(p, n, "calloc");
    p = __libc_realloc(p, n * 2);
    check_ours(p, n * 2, "__libc_realloc");
    __libc_free(p);
    p = __libc_memalign(256, n);
    check_ours(p, n, "__libc_memalign");
    CHECK((uintptr_t)p % 256 == 0);
    free(p);
    p = __libc_valloc(n);
    check_ours(p, n, "__libc_valloc");
    CHECK((uintptr_t)p % (uintptr_t)ps == 0);
    free(p);
    p = __libc_pvalloc(n);
    check_ours(p, n, "__libc_pvalloc");
    CHECK((uintptr_t)p % (uintptr_t)ps == 0 && malloc_usable_size(p) % (size_t)ps == 0);
    free(p);
    void *(*rarr)(void *, size_t, size_t) = (void *(*)(void *, size_t, size_t))resolve("__libc_reallocarray");
    p = rarr(NULL, n, 2);
    check_ours(p, n * 2, "__libc_reallocarray");
    __libc_free(p);
    p = malloc(16);
    CHECK(rarr(p, SIZE_MAX / 2, 3) == NULL); /* overflow: p stays valid */
    __libc_free(p);
  }
}

/* malloc_stats and malloc_info describe heapkit's heap (glibc's, under the preload, had nothing in
 * it: every figure 0). */
static size_t xml_size(const char *xml, const char *key) {
  const char *k = strstr(xml, key);
  CHECKF(k != NULL, "malloc_info: no %s in %s", key, xml);
  const char *v = strstr(k, "size=\"");
  CHECK(v != NULL);
  return strtoull(v + 6, NULL, 10);
}

static void test_info(void) {
  resolve("malloc_stats");
  resolve("malloc_info");
  enum { N = 5000, SZ = 1000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) check_ours(blocks[i] = malloc(SZ), SZ, "malloc");
  void *big = malloc((size_t)32 << 20);
  check_ours(big, 4096, "malloc");
  struct mallinfo2 m = mallinfo2();
  /* malloc_info: XML in glibc's layout, to a FILE */
  char *xml = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&xml, &len);
  CHECK(f != NULL);
  CHECK(malloc_info(0, f) == 0);
  fclose(f);
  CHECKF(strncmp(xml, "<malloc version=\"1\">\n", strlen("<malloc version=\"1\">\n")) == 0 && strstr(xml, "</malloc>\n") != NULL, "malloc_info: %s", xml);
  size_t cur = xml_size(xml, "<system type=\"current\"");
  CHECKF(cur >= (size_t)N * SZ && cur <= m.arena * 2, "malloc_info: system current %zu, mallinfo2 arena %zu", cur, m.arena);
  size_t mm = xml_size(xml, "<total type=\"mmap\"");
  CHECKF(mm >= ((size_t)32 << 20), "malloc_info: mmap size %zu with a 32 MiB block live", mm);
  free(xml);
  errno = 0;
  CHECK(malloc_info(1, stdout) == EINVAL);
  /* malloc_stats: glibc's lines on stderr, through a pipe */
  int fds[2];
  CHECK(pipe(fds) == 0);
  int saved = dup(2);
  dup2(fds[1], 2);
  malloc_stats();
  dup2(saved, 2);
  close(fds[1]);
  char out[2048] = {0};
  ssize_t got = read(fds[0], out, sizeof out - 1);
  close(fds[0]);
  CHECKF(got > 0 && strncmp(out, "Arena 0:\nsystem bytes     = ", strlen("Arena 0:\nsystem bytes     = ")) == 0, "malloc_stats printed: %s", out);
  const char *t = strstr(out, "Total (incl. mmap):\nsystem bytes     = ");
  CHECKF(t != NULL, "malloc_stats printed: %s", out);
  size_t total = strtoull(t + strlen("Total (incl. mmap):\nsystem bytes     = "), NULL, 10);
  CHECKF(total >= (size_t)N * SZ + ((size_t)32 << 20), "malloc_stats: total system bytes %zu", total);
  const char *u = strstr(out, "in use bytes     = ");
  CHECKF(u != NULL && strtoull(u + strlen("in use bytes     = "), NULL, 10) > 0, "malloc_stats printed: %s", out);
  free(big);
  for (int i = 0; i < N; i++) free(blocks[i]);
}

int main(int argc, char **argv) {
  tu_test_name = "malloc_glibc_ext";
  CHECKF(argc > 2, "usage: LD_PRELOAD=<lib> %s <lib> mallinfo|trim|libc|info", argv[0]);
  lib_base = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
  owns = (bool (*)(const void *))resolve("hk_owns");
  if (!strcmp(argv[2], "mallinfo")) test_mallinfo();
  else if (!strcmp(argv[2], "trim")) test_trim();
  else if (!strcmp(argv[2], "libc")) test_libc();
  else if (!strcmp(argv[2], "info")) test_info();
  else CHECKF(false, "unknown section %s", argv[2]);
  return 0;
}
