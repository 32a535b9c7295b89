/* malloc_usable_size over many large blocks (over 64 KiB, a segment each; docs/architecture.md,
 * "Performance cliffs checked", bench/malloc/cliffs usable) read each block's segment header, at a
 * 4 MiB-aligned address, so all of them in one cache set: 0.66 s for 20 M calls over 1000 blocks,
 * glibc 0.12. Now it reads the block's segment tag (segment.h, hk__segtag_get). Checked by what
 * heapkit touches, not by time:
 *   usable   the header page of large blocks' segments (of 100 KiB, 1 MiB, 3 MiB, and 64 KiB
 *            aligned to 1 MiB) made inaccessible: malloc_usable_size of each, and of a pointer 8 KiB
 *            inside (a page start: other pointers read the header), still answers (before: a
 *            segmentation fault, reported as such here); a freed block leaves no tag.
 * Linked with the static library to read the tags. */
#define _GNU_SOURCE
#include "malloc/malloc.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

#define KiB ((size_t)1 << 10)

static void on_segv(int sig) {
  (void)sig;
  static const char msg[] = "malloc.large_cliffs: malloc_usable_size of a large block read its segment's header page\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(1);
}

static void sec_usable(void) {
  static const size_t sizes[] = {100 * KiB, 1024 * KiB, 3072 * KiB, 64 * KiB + 1};
  enum { N = sizeof sizes / sizeof sizes[0] };
  char *p[N];
  for (int i = 0; i < N; i++) {
    if (i == N - 1) CHECK((p[i] = hk_aligned_alloc(1024 * KiB, sizes[i])) != NULL);
    else CHECK((p[i] = hk_malloc(sizes[i])) != NULL);
    CHECK(hk_malloc_usable_size(p[i]) >= sizes[i]);
  }
  size_t want[N];
  for (int i = 0; i < N; i++) want[i] = hk_malloc_usable_size(p[i]);
  size_t ps = (size_t)sysconf(_SC_PAGESIZE);
  signal(SIGSEGV, on_segv);
  for (int i = 0; i < N; i++) {
    void *header = (void *)((uintptr_t)p[i] & ~(uintptr_t)HK_SEGMENT_MASK);
    CHECK(mprotect(header, ps, PROT_NONE) == 0);
    size_t whole = hk_malloc_usable_size(p[i]), inside = hk_malloc_usable_size(p[i] + 8192);
    CHECK(mprotect(header, ps, PROT_READ | PROT_WRITE) == 0);
    EXPECTF(whole == want[i] && inside == want[i] - 8192, "block of %zu: usable %zu and %zu from 8 KiB in, want %zu", sizes[i], whole, inside, want[i]);
  }
  signal(SIGSEGV, SIG_DFL);
  for (int i = 0; i < N; i++) hk_free(p[i]);
  /* a freed block has no tag: its look-up reads the segment (and reports it) as before */
  char *q = hk_malloc(100 * KiB);
  CHECK(q != NULL);
  uint64_t tag = hk__segtag_get(q);
  EXPECTF(tag != 0, "a live large block has no segment tag");
  hk_free(q);
  EXPECTF(hk__segtag_get(q) == 0, "a freed large block's segment keeps its tag %#llx", (unsigned long long)hk__segtag_get(q));
}

int main(int argc, char **argv) {
  tu_test_name = "malloc.large_cliffs";
  const char *sec = argc > 1 ? argv[1] : "";
  if (!strcmp(sec, "usable")) sec_usable();
  else { fprintf(stderr, "usage: %s usable\n", argv[0]); return 2; }
  return tu_failures != 0;
}
