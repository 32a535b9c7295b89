/* Tool annotations for memory the arenas and pools hand out and take back: ASan poisoning when the
 * library is built with AddressSanitizer, valgrind client requests when <valgrind/memcheck.h> was
 * present at build time (header-only; the requests cost a few instructions when not under
 * valgrind), nothing otherwise. Kept here because arenas and pools are the clients that release
 * memory in bulk; the general allocator has its own hooks. */
#ifndef HK_ARENA_TRACK_H
#define HK_ARENA_TRACK_H
#include "common/internal.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1 /* clang spells it differently */
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HK_TRACK_ASAN 1
#include <sanitizer/asan_interface.h>
#else
#define HK_TRACK_ASAN 0
#endif

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#define HK_TRACK_VALGRIND 1
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef HK_TRACK_VALGRIND
#define HK_TRACK_VALGRIND 0
#endif

/* True when every allocation must pass through out-of-line code so that it can be annotated. */
static inline bool hk__track_per_alloc(void) {
#if HK_TRACK_ASAN
  return true;
#elif HK_TRACK_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

/* [p, p+n) is handed out: addressable, contents undefined. */
static inline void hk__track_alloc(void *p, size_t n) {
#if HK_TRACK_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#if HK_TRACK_VALGRIND
  VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
  (void)p, (void)n;
}

/* [p, p+n) is taken back: any access is an error until it is handed out again. */
static inline void hk__track_release(void *p, size_t n) {
#if HK_TRACK_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
#if HK_TRACK_VALGRIND
  VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
  (void)p, (void)n;
}

/* [p, p+n) holds the library's own bookkeeping (a pool's free-list link or mark) inside memory
 * that may be released: make it readable as written. */
static inline void hk__track_peek(const void *p, size_t n) {
#if HK_TRACK_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#if HK_TRACK_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
  (void)p, (void)n;
}

/* [p, p+n) goes back to the page layer: make it ordinary memory again. */
static inline void hk__track_forget(void *p, size_t n) {
#if HK_TRACK_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#if HK_TRACK_VALGRIND
  VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
  (void)p, (void)n;
}

/* hk__track_alloc (defined false) or hk__track_forget (true) of a range that may be huge. ASan
 * writes a shadow byte per 8 bytes when it unpoisons, whatever the shadow held: 2.5 GB of
 * resident shadow for a 20 GiB arena block. So only the 64 MiB pieces that hold poison are
 * unpoisoned (reading shadow that was never written maps the zero page: nothing resident). */
static inline void hk__track_unpoison_large(void *p, size_t n, bool defined) {
#if HK_TRACK_ASAN
  const size_t piece = (size_t)64 << 20;
  for (size_t off = 0; off < n; off += piece) {
    size_t k = n - off < piece ? n - off : piece;
    if (__asan_region_is_poisoned((char *)p + off, k)) ASAN_UNPOISON_MEMORY_REGION((char *)p + off, k);
  }
#endif
#if HK_TRACK_VALGRIND
  if (defined) VALGRIND_MAKE_MEM_DEFINED(p, n);
  else VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
  (void)p, (void)n, (void)defined;
}

/* Debug fill of released memory (HK_DEBUG >= 1), so a stale read sees 0xDE bytes, not old data. */
#define HK_ARENA_FILL_FREED 0xDE
#endif
