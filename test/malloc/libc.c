/* The libc malloc names as exported by the preload library, with glibc's semantics.
 *
 * Usage: LD_PRELOAD=<lib.so> malloc_libc <lib.so>
 * This program is not linked with heapkit. It first checks that every libc name resolves into the
 * preloaded library (so the test cannot pass against glibc by accident), then runs the same
 * conformance rules as the hk_ API test through the libc names, and checks that memory glibc
 * allocates internally (strdup, asprintf, getline, fopen) comes from the preloaded library and can
 * be freed with its free. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdbool.h>
#include <unistd.h>

#include "testutil.h"

#pragma GCC diagnostic ignored "-Walloc-size-larger-than="

static size_t opaque(size_t x) {
  volatile size_t v = x;
  return v;
}

static const char *names[] = {"malloc", "free", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign",
                              "valloc", "pvalloc", "malloc_usable_size", "reallocarray"};

static bool (*owns)(const void *);

static void check_resolves(const char *lib) {
  const char *base = strrchr(lib, '/') ? strrchr(lib, '/') + 1 : lib;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    void *f = dlsym(RTLD_DEFAULT, names[i]);
    Dl_info di;
    CHECKF(f && dladdr(f, &di) && di.dli_fname, "%s not found", names[i]);
    CHECKF(strstr(di.dli_fname, base) != NULL, "%s resolves to %s, not the preloaded %s", names[i], di.dli_fname, lib);
  }
  owns = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "hk_owns");
}

static void check_block(void *p, size_t align, size_t n, const char *what) {
  CHECKF(p != NULL, "%s(%zu) failed", what, n);
  CHECKF(align == 0 || (uintptr_t)p % align == 0, "%s(%zu) = %p not aligned to %zu", what, n, p, align);
  CHECKF(malloc_usable_size(p) >= n, "%s(%zu): usable %zu", what, n, malloc_usable_size(p));
  if (owns) CHECKF(owns(p), "%s(%zu) = %p not owned by heapkit", what, n, p);
  tu_fill(p, n);
  CHECK(tu_verify(p, n) == (size_t)-1);
}

static const size_t sizes[] = {0, 1, 8, 15, 16, 17, 100, 1000, 4096, 10000, 65536, 100000, 300000, 1 << 20,
                               (4 << 20) + 1, 20 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])

int main(int argc, char **argv) {
  tu_test_name = "malloc_libc";
  CHECKF(argc > 1, "usage: LD_PRELOAD=<lib> %s <lib>", argv[0]);
  check_resolves(argv[1]);
  double t0 = tu_now();

  /* basic sizes, alignment 16 for n >= 16 */
  for (size_t i = 0; i < NSIZES; i++) {
    size_t n = sizes[i];
    void *p = malloc(opaque(n));
    check_block(p, n >= 16 ? 16 : 0, n, "malloc");
    free(p);
    p = calloc(1, opaque(n));
    CHECK(p && tu_all_zero(p, n));
    free(p);
  }
  free(NULL);
  CHECK(malloc_usable_size(NULL) == 0);

  /* huge sizes and overflow: NULL + ENOMEM */
  const size_t huge[] = {SIZE_MAX, SIZE_MAX / 2, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4095};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    size_t n = opaque(huge[i]);
    errno = 0; CHECKF(malloc(n) == NULL && errno == ENOMEM, "malloc(%zu) errno %d", n, errno);
    errno = 0; CHECKF(calloc(1, n) == NULL && errno == ENOMEM, "calloc(1, %zu) errno %d", n, errno);
    errno = 0; CHECKF(aligned_alloc(64, n) == NULL && errno == ENOMEM, "aligned_alloc(64, %zu) errno %d", n, errno);
    errno = 0; CHECKF(memalign(64, n) == NULL && errno == ENOMEM, "memalign(64, %zu) errno %d", n, errno);
    errno = 0; CHECKF(valloc(n) == NULL && errno == ENOMEM, "valloc(%zu) errno %d", n, errno);
    errno = 0; CHECKF(pvalloc(n) == NULL && errno == ENOMEM, "pvalloc(%zu) errno %d", n, errno);
    void *o = (void *)0x99;
    CHECKF(posix_memalign(&o, 64, n) == ENOMEM && o == (void *)0x99, "posix_memalign(64, %zu)", n);
    char *p = malloc(10);
    tu_fill(p, 10);
    errno = 0; CHECKF(realloc(p, n) == NULL && errno == ENOMEM, "realloc(p, %zu) errno %d", n, errno);
    CHECK(tu_verify(p, 10) == (size_t)-1);
    free(p);
  }
  errno = 0; CHECKF(calloc(opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM, "calloc overflow errno %d", errno);
  errno = 0; CHECKF(calloc(opaque((size_t)1 << 32), (size_t)1 << 32) == NULL && errno == ENOMEM, "calloc overflow errno %d", errno);
  errno = 0; CHECKF(reallocarray(NULL, opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM, "reallocarray overflow errno %d", errno);

  /* zero sizes */
  void *z;
  CHECK((z = malloc(opaque(0))) != NULL); free(z);
  CHECK((z = calloc(opaque(0), 0)) != NULL); free(z);
  CHECK((z = realloc(NULL, opaque(0))) != NULL); free(z);
  z = NULL; CHECK(posix_memalign(&z, 16, opaque(0)) == 0 && z); free(z);
  CHECK((z = valloc(opaque(0))) != NULL); free(z);
  CHECK((z = pvalloc(opaque(0))) != NULL); free(z);
  /* realloc(p, 0) frees p and returns NULL (glibc) */
  z = malloc(50);
  CHECK(realloc(z, opaque(0)) == NULL);

  /* alignments 1 .. 1 MiB */
  for (size_t a = 1; a <= (1 << 20); a *= 2) {
    void *p = (void *)0x99;
    int rc = posix_memalign(&p, a, 100);
    if (a < sizeof(void *)) CHECKF(rc == EINVAL && p == (void *)0x99, "posix_memalign(%zu)", a);
    else { CHECKF(rc == 0, "posix_memalign(%zu)", a); check_block(p, a, 100, "posix_memalign"); free(p); }
    p = aligned_alloc(a, a * 3);
    check_block(p, a, a * 3, "aligned_alloc");
    free(p);
    p = memalign(a, 7);
    check_block(p, a, 7, "memalign");
    free(p);
  }
  const size_t bad[] = {3, 24, 100, 4097, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t a = opaque(bad[i]);
    void *p = (void *)0x99;
    CHECKF(posix_memalign(&p, a, 10) == EINVAL && p == (void *)0x99, "posix_memalign(%zu) bad alignment", a);
    errno = 0; CHECKF(aligned_alloc(a, 10) == NULL && errno == EINVAL, "aligned_alloc(%zu) errno %d", a, errno);
    errno = 0;
    void *m = memalign(a, 10); /* glibc rounds a non-power-of-two alignment up */
    if (m) {
      CHECKF((uintptr_t)m % ((size_t)1 << (64 - __builtin_clzll(a))) == 0, "memalign(%zu) = %p misaligned", a, m);
      free(m);
    } else {
      CHECKF(errno == EINVAL, "memalign(%zu) errno %d", a, errno);
    }
  }
  long pg = sysconf(_SC_PAGESIZE);
  for (size_t i = 0; i < NSIZES; i++) {
    void *p = valloc(sizes[i]);
    check_block(p, (size_t)pg, sizes[i], "valloc");
    free(p);
    p = pvalloc(sizes[i]);
    check_block(p, (size_t)pg, sizes[i], "pvalloc");
    CHECK(malloc_usable_size(p) % (size_t)pg == 0 || malloc_usable_size(p) >= (sizes[i] + (size_t)pg - 1) / (size_t)pg * (size_t)pg);
    free(p);
  }

  /* realloc across classes, contents preserved */
  for (size_t i = 0; i < NSIZES; i++)
    for (size_t j = 0; j < NSIZES; j++) {
      if (!sizes[j]) continue;
      char *p = malloc(sizes[i]);
      tu_fill(p, sizes[i]);
      char *q = realloc(p, sizes[j]);
      CHECKF(q != NULL, "realloc %zu -> %zu", sizes[i], sizes[j]);
      size_t keep = sizes[i] < sizes[j] ? sizes[i] : sizes[j];
      CHECKF(tu_verify_as(q, p, keep, sizes[i]) == (size_t)-1, "realloc %zu -> %zu lost contents", sizes[i], sizes[j]);
      CHECK(malloc_usable_size(q) >= sizes[j]);
      free(q);
    }
  int *arr = reallocarray(NULL, 1000, sizeof(int));
  CHECK(arr);
  for (int i = 0; i < 1000; i++) arr[i] = i;
  arr = reallocarray(arr, 100000, sizeof(int));
  CHECK(arr);
  for (int i = 0; i < 1000; i++) CHECK(arr[i] == i);
  free(arr);

  /* calloc zeroes reused dirty memory */
  for (size_t n = 24; n <= (8 << 20); n *= 5) {
    void *ps[16];
    for (int i = 0; i < 16; i++) { ps[i] = malloc(n); memset(ps[i], 0xCC, n); }
    for (int i = 0; i < 16; i++) free(ps[i]);
    for (int i = 0; i < 16; i++) { ps[i] = calloc(n, 1); CHECKF(ps[i] && tu_all_zero(ps[i], n), "calloc(%zu) reuse not zeroed", n); }
    for (int i = 0; i < 16; i++) free(ps[i]);
  }

  /* memory glibc allocates for us comes from the same allocator */
  char *s = strdup("interposed");
  CHECK(s && strcmp(s, "interposed") == 0);
  if (owns) CHECKF(owns(s), "glibc strdup did not allocate through the preloaded malloc");
  free(s);
  char *a = NULL;
  CHECK(asprintf(&a, "%d-%s", 42, "x") > 0 && strcmp(a, "42-x") == 0);
  if (owns) CHECK(owns(a));
  free(a);
  FILE *f = fopen("/proc/self/maps", "r");
  CHECK(f != NULL);
  char *line = NULL;
  size_t cap = 0;
  int lines = 0;
  while (getline(&line, &cap, f) > 0) lines++;
  CHECK(lines > 0 && line != NULL);
  if (owns) CHECK(owns(line));
  free(line);
  fclose(f);

  printf("malloc_libc: libc names from %s%s: ok (%.2f s)\n", argv[1], owns ? " (ownership checked with hk_owns)" : "",
         tu_now() - t0);
  return 0;
}
