/* The OS layer under an address-space limit (RLIMIT_AS, `ulimit -v`): an aligned reservation whose
 * first, exact mapping came back unaligned must not need the alignment's worth of address space
 * beyond the segment. It did (map size + align, then trim): with room for the segment and half an
 * alignment more, hk__os_reserve(4 MiB, 4 MiB) failed with ENOMEM, so the last 4 MiB of a limit
 * could never be had. Now the aligned places around the kernel's choice are tried.
 * Not under sanitizers (their shadow memory needs the address space). */
#define _GNU_SOURCE
#include "os/os.h"
#include "page/segment.h"
#include "../check.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static size_t vm_size(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (!f || fscanf(f, "%lu", &pages) != 1) return 0;
  fclose(f);
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void set_limit(rlim_t cur) {
  struct rlimit rl;
  getrlimit(RLIMIT_AS, &rl);
  rl.rlim_cur = cur; /* (the hard limit stays: the soft one can be raised again) */
  CHECK_QUIET(setrlimit(RLIMIT_AS, &rl) == 0);
}

int main(void) {
  const size_t A = HK_SEGMENT_SIZE, ps = hk__os_page_size();
  struct rlimit orig;
  CHECK(getrlimit(RLIMIT_AS, &orig) == 0);
  int tried = 0;
  for (int round = 0; round < 32 && tried < 8; round++) {
    /* Where the kernel puts 4 MiB now, less its top page, taken by a spacer: the next 4 MiB go one
     * page lower, unaligned if they were aligned, with the room below them that the aligned place
     * needs (a top-down search stops at the first gap that fits). */
    void *probe = mmap(NULL, A, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK_QUIET(probe != MAP_FAILED);
    munmap(probe, A);
    void *at = (char *)probe + A - ps;
    void *spacer = mmap(at, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (spacer == MAP_FAILED) continue;
    if (spacer != at) {
      munmap(spacer, ps);
      continue;
    }
    void *q = mmap(NULL, A, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK_QUIET(q != MAP_FAILED);
    bool unaligned = ((uintptr_t)q & (A - 1)) != 0;
    munmap(q, A);
    if (!unaligned) continue;
    tried++;
    fflush(NULL);
    set_limit(vm_size() + A + A / 2);
    void *p = NULL;
    errno = 0;
    int rc = hk__os_reserve(A, A, false, &p);
    int e = errno;
    if (rc == HK_OK) {
      memset(p, 1, ps);
      memset((char *)p + A - ps, 1, ps);
      hk__os_release(p, A);
    }
    set_limit(orig.rlim_cur);
    CHECK_QUIET(rc == HK_OK);
    CHECK_QUIET(rc != HK_OK || ((uintptr_t)p & (A - 1)) == 0);
    CHECK_QUIET(rc != HK_OK || e == 0); /* errno as it was */
    if (rc != HK_OK) fprintf(stderr, "round %d: hk__os_reserve(4 MiB, 4 MiB) with room for 6 MiB: %d\n", round, rc);
  }
  CHECK(tried > 0);
  /* and with no room at all, a clean refusal */
  set_limit(vm_size() + A / 2);
  void *p = NULL;
  int rc = hk__os_reserve(A, A, false, &p);
  set_limit(orig.rlim_cur);
  CHECK(rc == HK_ENOMEM && p == NULL);
  printf("test_os_limit: %d unaligned first places\n", tried);
  return check_report("test_os_limit");
}
