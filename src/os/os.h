/* The OS layer contract: the only place that talks to the operating system about memory.
 *
 * Preconditions, stated once for every function below: addresses and sizes are multiples of
 * hk__os_page_size(); a range passed to commit/decommit/protect/release lies inside one range
 * returned by hk__os_reserve. Functions return HK_OK or a negative hk_error code and never abort.
 *
 * Linux model: reserve maps read-write with MAP_NORESERVE, so "commit" is bookkeeping (the kernel
 * commits a page when it is first touched) and never splits a mapping; "decommit" gives the
 * physical pages back with MADV_DONTNEED (contents become zero) or MADV_FREE (lazily, contents
 * undefined until rewritten); protect changes access rights (guard pages, hardened mode).
 * Keeping commit free of mprotect keeps the number of kernel mappings small (each mprotect of a
 * sub-range would split one). One file per OS implements this header; os.c selects it.
 */
#ifndef HK_OS_H
#define HK_OS_H
#include "common/internal.h"

typedef enum hk__os_decommit_mode {
  HK__OS_DONTNEED = 0, /* RSS drops at once, next touch gives zero pages */
  HK__OS_FREE = 1,     /* RSS drops when the kernel needs the memory; contents undefined */
} hk__os_decommit_mode;

typedef enum hk__os_prot { HK__OS_NOACCESS = 0, HK__OS_READ = 1, HK__OS_READWRITE = 3 } hk__os_prot;

HK_INTERNAL size_t hk__os_page_size(void);
/* Reserve size bytes aligned to align (a power of two >= page size). *out gets the address.
 * accounted: the memory will back one user block, so let the OS refuse a size it could never back
 * (Linux's overcommit heuristic: malloc(64 GiB) on a 24 GiB machine fails with ENOMEM, as with
 * glibc); otherwise the reservation is address space only (MAP_NORESERVE). */
HK_INTERNAL int hk__os_reserve(size_t size, size_t align, bool accounted, void **out);
HK_INTERNAL int hk__os_release(void *addr, size_t size);
/* Extend the reservation [addr, addr + size) in place by more bytes: the address space right after
 * it, reserved as hk__os_reserve would (accounted the same way), or HK_ENOMEM when any of it is
 * taken, over a limit, or the kernel cannot map at a fixed place without replacing. Nothing changes
 * on failure. The two ranges are one reservation afterwards (released together). */
HK_INTERNAL int hk__os_extend(void *addr, size_t size, size_t more, bool accounted);
HK_INTERNAL int hk__os_commit(void *addr, size_t size);
HK_INTERNAL int hk__os_decommit(void *addr, size_t size, hk__os_decommit_mode mode);
HK_INTERNAL int hk__os_protect(void *addr, size_t size, hk__os_prot prot);
/* Transparent-huge-page hint for a range: on != 0 asks for huge pages, 0 asks for none. */
HK_INTERNAL int hk__os_huge_hint(void *addr, size_t size, int on);
/* Fault in a committed range for writing in one call (Linux 5.14's MADV_POPULATE_WRITE) instead of
 * one page fault per page: for memory about to be written whole. A refusal other than a lack of
 * memory (an old kernel's EINVAL, a sandbox's EPERM) switches it off: later calls return HK_EINVAL at
 * once. errno is left as it was; the range is unchanged either way. */
HK_INTERNAL int hk__os_populate(void *addr, size_t size);
/* Resident set size of this process in bytes, or 0 if unknown (for tests and stats). */
HK_INTERNAL size_t hk__os_rss(void);

#endif
