/* malloc.text_rss: the start-up footprint of the library's code. A program that only mallocs should
 * fault in little of heapkit's text: the kernel maps up to 64 KiB around each fault of a file-backed
 * page (fault-around), so what counts is how many 64 KiB windows the code it runs is spread over.
 * The general allocator's files link first (CMakeLists.txt), so its code sits right after .plt, and
 * nothing it runs lies at the end of .text (libgcc's __popcountdi2, libc_nonshared's pthread_atfork,
 * crti's _fini; src/page/segment.c, src/malloc/heap.c): this program then has one window resident,
 * 64 of the 220 KiB (docs/architecture.md, "Start-up footprint"). Before, with the files in
 * alphabetical order (arena and gc before malloc) it had all 220 KiB resident, with only the link
 * order 116 KiB (the first window and the last). The limit leaves a margin for a kernel that maps a
 * larger page-cache folio around a fault but fails either of those.
 * Run under LD_PRELOAD in Release builds only: argv[1] = the library's path. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT_KB 96 /* one fault-around window and a half */

static void *worker(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 64; i++) free(blocks[i]); /* frees into the main thread's pages */
  void *p = malloc(100000);
  free(p);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  const char *base = strrchr(argv[1], '/');
  base = base ? base + 1 : argv[1];
  /* the malloc family across small, medium and large sizes, a thread and cross-thread frees */
  void *blocks[64];
  for (int i = 0; i < 64; i++) {
    size_t n = (size_t)8 << (i % 14);
    blocks[i] = i % 3 == 0 ? calloc(1, n) : malloc(n);
    if (!blocks[i]) return 3;
    memset(blocks[i], i, n);
    if (i % 5 == 0 && !(blocks[i] = realloc(blocks[i], 2 * n))) return 3;
  }
  pthread_t t;
  if (pthread_create(&t, NULL, worker, blocks) != 0 || pthread_join(t, NULL) != 0) return 4;
  for (int i = 0; i < 1000; i++) free(malloc((size_t)(i % 300) + 1));

  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) { printf("no /proc/self/smaps: skipped\n"); return 77; }
  char line[512];
  int in_text = 0, found = 0;
  long size_kb = -1, rss_kb = -1;
  while (fgets(line, sizeof line, f)) {
    char perms[8];
    unsigned long a, b;
    if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && strchr(line, '/')) {
      const char *path = strrchr(line, '/') + 1;
      in_text = strncmp(path, base, strlen(base)) == 0 && strcmp(perms, "r-xp") == 0;
      found |= in_text;
    } else if (in_text && strncmp(line, "Size:", 5) == 0) {
      size_kb = atol(line + 5);
    } else if (in_text && strncmp(line, "Rss:", 4) == 0) {
      rss_kb = atol(line + 4);
      in_text = 0;
    }
  }
  fclose(f);
  if (!found || rss_kb < 0) { fprintf(stderr, "text_rss: no r-xp mapping of %s\n", base); return 5; }
  printf("heapkit text: %ld KiB mapped, %ld KiB resident (limit %d)\n", size_kb, rss_kb, LIMIT_KB);
  return rss_kb <= LIMIT_KB ? 0 : 1;
}
