/* Error codes, runtime options and statistics shared by every heapkit client. */
#ifndef HEAPKIT_COMMON_H
#define HEAPKIT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HK_VERSION_MAJOR 0
#define HK_VERSION_MINOR 1
#define HK_VERSION_PATCH 0

#if defined(__GNUC__)
#define HK_API __attribute__((visibility("default")))
#define HK_MALLOC_LIKE __attribute__((malloc, warn_unused_result))
#define HK_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#define HK_INLINE static inline __attribute__((always_inline))
#define HK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HK_API
#define HK_MALLOC_LIKE
#define HK_ALLOC_SIZE(...)
#define HK_INLINE static inline
#define HK_LIKELY(x) (x)
#define HK_UNLIKELY(x) (x)
#endif

/* Integer error codes returned by functions that return int. 0 is success. */
typedef enum hk_error {
  HK_OK = 0,
  HK_ENOMEM = -1,    /* the OS refused memory, or a budget / heap limit was reached */
  HK_EINVAL = -2,    /* a bad argument: an alignment that is not a power of two, a NULL handle */
  HK_EOVERFLOW = -3, /* a size computation overflowed */
  HK_EPERM = -4,     /* the OS refused a protection change */
  HK_EBUSY = -5,     /* the object is in a state that forbids the operation */
} hk_error;

/* A static string naming an hk_error code; "unknown heapkit error" for any other value (errno
 * values such as hk_posix_memalign's included). Never NULL. */
HK_API const char *hk_strerror(int code);

/* Runtime options. Each is read once from the environment variable named in the comment
 * (the value is an integer; true/yes/on and false/no/off read as 1 and 0; anything else, or a
 * number beyond a long except for the purge delay, keeps the default with a warning, which
 * HEAPKIT_VERBOSE=0 silences) and can be changed later with hk_option_set. */
typedef enum hk_option {
  HK_OPT_SHOW_STATS,     /* HEAPKIT_SHOW_STATS: print statistics at exit (default 0) */
  HK_OPT_VERBOSE,        /* HEAPKIT_VERBOSE: 0 quiet, 1 warnings, 2 trace of OS calls (default 1) */
  HK_OPT_PURGE_DELAY,    /* HEAPKIT_PURGE_DELAY: ms before unused memory returns to the OS; -1 never (default 100;
                          * below -1 reads as -1, above 2^40 as 2^40) */
  HK_OPT_PURGE_FREE,     /* HEAPKIT_PURGE_FREE: purge with MADV_FREE instead of MADV_DONTNEED (default 0) */
  HK_OPT_HUGE_PAGES,     /* HEAPKIT_HUGE_PAGES: ask for transparent huge pages on segments (default 0) */
  HK_OPT_SEGMENT_CACHE,  /* HEAPKIT_SEGMENT_CACHE: empty 4 MiB segments kept reserved for reuse (default 32) */
  HK_OPT_HARDENED,       /* HEAPKIT_HARDENED: frees checked for double frees, and the free-list
                          * links mallocs follow for overwrites (default 0). Switching it on
                          * with hk_option_set once the allocator has set up a page (in a program that uses
                          * heapkit as its malloc: always, before main) is refused with HK_EBUSY and a
                          * warning: those pages' frees would stay unchecked. Off is always accepted (pages
                          * set up while it was on stay checked). */
  HK_OPT_GC_STRESS,      /* HEAPKIT_GC_STRESS: the collector collects every N allocations (default 0 = off) */
  HK_OPT_GC_TRACE,       /* HEAPKIT_GC_TRACE: 1 a line per full collection on stderr, 2 also per minor (default 0) */
  HK_OPT_GC_PARALLEL,    /* HEAPKIT_GC_PARALLEL: 0 = threads parked for a collection do not help with it (default 1) */
  HK_OPT__COUNT
} hk_option;

HK_API long hk_option_get(hk_option opt);
/* HK_OK; HK_EINVAL for an unknown option; HK_EBUSY for HK_OPT_HARDENED (above). */
HK_API int hk_option_set(hk_option opt, long value);

/* Statistics of the page layer and the general allocator. All sizes in bytes. */
typedef struct hk_stats {
  size_t reserved;         /* virtual memory reserved from the OS */
  size_t committed;        /* memory committed (may be resident) */
  size_t committed_peak;
  size_t in_use;           /* bytes in live malloc blocks (block sizes), plus bytes other clients hold */
  size_t in_use_peak;      /* highest in_use seen: sampled (at most once per ms, at thread exit and by
                            * hk_stats_get) from the full sum of all threads, so a shorter peak can be missed */
  double fragmentation;    /* committed / in_use; 0 when nothing is in use */
  size_t segments;         /* live segments (all kinds) */
  size_t segments_cached;  /* empty segments kept for reuse */
  size_t segments_abandoned; /* segments of exited threads not yet adopted */
  size_t malloc_count;     /* allocations since start (all threads that have exited or flushed); this,
                            * free_count, the peaks and purged never go down from one call to the
                            * next (docs/architecture.md, What hk_stats_get promises) */
  size_t free_count;       /* frees, counted as malloc_count is; a hk_heap_destroy counts each block it frees */
  size_t huge_count;       /* live blocks served by their own segment */
  size_t purged;           /* bytes returned to the OS by purging, cumulative */
  size_t threads;          /* threads with a live heap */
  bool counters;           /* false in a library built with -DHK_STATS=OFF: the per-operation counters
                            * are compiled out, so in_use and in_use_peak count only the page layer's
                            * other clients (pools, arenas, the collector), malloc_count and free_count
                            * stay 0 and fragmentation is computed from that in_use */
} hk_stats;

HK_API void hk_stats_get(hk_stats *out);
/* Print statistics as text to the file descriptor (2 for stderr), with write(2), plus the
 * process's resident set size. Never allocates. */
HK_API void hk_stats_print(int fd);

/* Return memory that has been unused for the purge delay (or all unused memory if force) to the OS. */
HK_API void hk_collect(bool force);

#ifdef __cplusplus
}
#endif
#endif
