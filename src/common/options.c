/* Runtime options: one table, read once from HEAPKIT_* environment variables. getenv does not
 * allocate, so this is safe from inside the first malloc call. */
#define _GNU_SOURCE /* secure_getenv */
#include "common/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HK_OPTIONS(X)                    \
  X(HK_OPT_SHOW_STATS, "SHOW_STATS", 0)  \
  X(HK_OPT_VERBOSE, "VERBOSE", 1)        \
  X(HK_OPT_PURGE_DELAY, "PURGE_DELAY", 100) \
  X(HK_OPT_PURGE_FREE, "PURGE_FREE", 0)  \
  X(HK_OPT_HUGE_PAGES, "HUGE_PAGES", 0)  \
  X(HK_OPT_SEGMENT_CACHE, "SEGMENT_CACHE", 32) \
  X(HK_OPT_HARDENED, "HARDENED", 0)      \
  X(HK_OPT_GC_STRESS, "GC_STRESS", 0)    \
  X(HK_OPT_GC_TRACE, "GC_TRACE", 0)      \
  X(HK_OPT_GC_PARALLEL, "GC_PARALLEL", 1)

/* A set-user-ID or set-group-ID program (the kernel's AT_SECURE) ignores the variables, as glibc
 * ignores its MALLOC_* ones there: the caller's environment must not make a privileged process
 * print its addresses (HEAPKIT_VERBOSE=2 traces every mapping with its address) or its statistics, or
 * change how it uses memory. Before 2026-12-07 they were read in such a program too. */
#ifdef __GLIBC__
#define option_getenv secure_getenv
#else
#define option_getenv getenv
#endif

#define HK_OPT_DEFAULT(id, name, def) [id] = def,
long hk__options[HK_OPT__COUNT] = {HK_OPTIONS(HK_OPT_DEFAULT)};

static const char *const opt_names[HK_OPT__COUNT] = {
#define HK_OPT_NAME(id, name, def) [id] = name,
    HK_OPTIONS(HK_OPT_NAME)};

static _Atomic int options_state; /* 0 unread, 1 reading, 2 read */

/* The purge delay is added to clock readings and multiplied (src/page/segment.c, src/malloc): a
 * value near LONG_MAX overflowed those (undefined behaviour, caught by UBSan). Past 2^40 ms (35
 * years) it means never anyway. */
#define HK_PURGE_DELAY_MAX ((long)1 << 40)
static long clamp(int opt, long x) {
  if (opt == HK_OPT_PURGE_DELAY) {
    if (x > HK_PURGE_DELAY_MAX) return HK_PURGE_DELAY_MAX;
    if (x < -1) return -1;
  }
  return x;
}

/* The value as the warning shows it: control bytes as \xHH and at most 64 bytes, so a value with
 * a newline (or a terminal escape) cannot split or forge the one-line message, and a long one
 * cannot push the reason (": not an integer") out of the message buffer. */
static const char *shown(const char *v, char *buf, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0, i = 0;
  for (; v[i] && i < 64 && n + 5 < cap; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c < 0x20 || c == 0x7f) {
      buf[n++] = '\\';
      buf[n++] = 'x';
      buf[n++] = hex[c >> 4];
      buf[n++] = hex[c & 15];
    } else {
      buf[n++] = (char)c;
    }
  }
  if (v[i] && n + 4 <= cap) memcpy(buf + n, "...", 3), n += 3;
  buf[n] = 0;
  return buf;
}

void hk__options_init(void) {
  int expected = 0;
  if (atomic_load_explicit(&options_state, memory_order_acquire) == 2) return;
  if (!atomic_compare_exchange_strong(&options_state, &expected, 1)) {
    while (atomic_load_explicit(&options_state, memory_order_acquire) != 2) {}
    return;
  }
  int saved_errno = errno;
  for (int k = 0; k < HK_OPT__COUNT; k++) {
    /* VERBOSE first: HEAPKIT_VERBOSE=0 silences the warnings about the others too */
    int i = k == 0 ? HK_OPT_VERBOSE : k == HK_OPT_VERBOSE ? 0 : k;
    char var[64] = "HEAPKIT_";
    strcat(var, opt_names[i]);
    const char *v = option_getenv(var);
    if (!v || !*v) continue;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    /* beyond a long, strtol saturates: only the purge delay has a documented range to clamp to */
    char b[64 * 4 + 4];
    if (*end == 0 && end != v && errno == ERANGE && i != HK_OPT_PURGE_DELAY)
      hk__warning("ignoring %s=%s: out of range", var, shown(v, b, sizeof b));
    else if (*end == 0 && end != v) hk__options[i] = clamp(i, x);
    else if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) hk__options[i] = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) hk__options[i] = 0;
    else hk__warning("ignoring %s=%s: not an integer", var, shown(v, b, sizeof b));
  }
  errno = saved_errno;
  atomic_store_explicit(&options_state, 2, memory_order_release);
}

long hk_option_get(hk_option opt) {
  if ((unsigned)opt >= HK_OPT__COUNT) return 0;
  hk__options_init();
  return hk__options[opt];
}

int hk__pages_set_up;

/* Hardened mode is a property each malloc page takes when it is set up (it routes the page's frees
 * to the checked path and keeps its remote frees out of the buffers); marking the pages already set
 * up from another thread would race with their owners' writes of the same flags. So switching it on
 * once any page exists would leave those pages' frees unchecked, which the caller cannot see: it
 * is refused instead. The store, then the load of hk__pages_set_up, pairs with the page set-up's
 * store of it, then its load of the option (all sequentially consistent): either the set-up sees
 * the option on, or this sees the page. */
int hk_option_set(hk_option opt, long value) {
  if ((unsigned)opt >= HK_OPT__COUNT) return HK_EINVAL;
  hk__options_init();
  long v = clamp((int)opt, value);
  if (opt == HK_OPT_HARDENED && v != 0 && __atomic_load_n(&hk__options[opt], __ATOMIC_SEQ_CST) == 0) {
    __atomic_store_n(&hk__options[opt], v, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&hk__pages_set_up, __ATOMIC_SEQ_CST)) {
      __atomic_store_n(&hk__options[opt], 0, __ATOMIC_SEQ_CST);
      hk__warning("hk_option_set(HK_OPT_HARDENED, %ld): refused: the allocator has set up pages already, and their "
                  "frees would stay unchecked; set HEAPKIT_HARDENED=1 in the environment to check every free", value);
      return HK_EBUSY;
    }
    return HK_OK;
  }
  __atomic_store_n(&hk__options[opt], v, __ATOMIC_SEQ_CST);
  return HK_OK;
}

int64_t hk__clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
