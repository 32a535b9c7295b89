/* Prints the runtime options as the library read them, after a malloc and a free: run by
 * env_secure.sh as a set-user-ID program (AT_SECURE), where the HEAPKIT_* variables must be ignored
 * as glibc ignores MALLOC_*, and as an ordinary one, where they are read. */
#include <heapkit.h>
#include <stdio.h>
#include <sys/auxv.h>

int main(void) {
  hk_free(hk_malloc(100));
  printf("secure=%lu verbose=%ld purge_delay=%ld show_stats=%ld hardened=%ld segment_cache=%ld gc_stress=%ld\n",
         getauxval(AT_SECURE), hk_option_get(HK_OPT_VERBOSE), hk_option_get(HK_OPT_PURGE_DELAY),
         hk_option_get(HK_OPT_SHOW_STATS), hk_option_get(HK_OPT_HARDENED), hk_option_get(HK_OPT_SEGMENT_CACHE),
         hk_option_get(HK_OPT_GC_STRESS));
  return 0;
}
