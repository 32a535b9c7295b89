/* heapkit/plan.h: the static memory planner.
 *
 * Given buffers whose lifetimes and sizes are known before the program runs (a compiler's tensors,
 * firmware with a fixed schedule, an arena trace recorded once), choose an offset for each so that
 * no two buffers live at the same time overlap in memory, with the smallest peak
 * (max of offset + size). This is the dynamic-storage-allocation problem; it is NP-hard, so the
 * planner runs fast heuristics first and then an anytime exact search until the time limit.
 *
 * Pure computation: no global state, thread-safe, allocates scratch memory with malloc and frees
 * it before returning. See docs/planner.md for the algorithms and the CSV trace format.
 */
#ifndef HEAPKIT_PLAN_H
#define HEAPKIT_PLAN_H
#include "common.h"
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One buffer: live during the half-open interval [lower, upper), which must not be empty
 * (lower < upper). A size of 0 is allowed: such a buffer gets offset 0 and conflicts with nothing.
 * align is 0 (use the options' alignment) or a power of two; the offset is a multiple of it. */
typedef struct hk_plan_buffer {
  uint64_t lower;
  uint64_t upper;
  uint64_t size;
  uint64_t align;
} hk_plan_buffer;

typedef enum hk_plan_method {
  HK_PLAN_AUTO = 0,        /* all heuristics, then the search until optimal or the time limit */
  HK_PLAN_HEURISTICS,      /* all heuristics, keep the best; no search */
  HK_PLAN_GREEDY_SIZE,     /* one heuristic: largest first, best-fit (TFLite's classic order) */
  HK_PLAN_GREEDY_LIFETIME, /* one heuristic: longest-lived first, best-fit */
  HK_PLAN_GREEDY_AREA,     /* one heuristic: largest size x lifetime first, best-fit */
  HK_PLAN_METHOD__COUNT
} hk_plan_method;

typedef struct hk_plan_options {
  /* 0: no limit, minimise the peak. Otherwise a budget: the planner stops as soon as it has a
   * placement with peak <= capacity (it does not minimise further). */
  uint64_t capacity;
  /* Seconds the call may run (wall clock, or CPU time with cpu_time); 0 = heuristics only.
   * Default 1.0. The heuristics also stop at a work budget derived from it, deterministic. */
  double time_limit;
  /* Alignment for buffers whose own align is 0: 0 or 1 = none, else a power of two. */
  uint64_t align;
  hk_plan_method method;
  /* Count time_limit in the calling thread's CPU time instead of wall time: the result no longer
   * depends on how loaded the machine is (what another process takes from it does not count),
   * but the call can take longer than time_limit in wall time. Default false. */
  bool cpu_time;
} hk_plan_options;

typedef struct hk_plan_result {
  uint64_t peak;        /* max(offset + size) over all buffers; 0 if all sizes are 0 */
  uint64_t lower_bound; /* the largest total size live at one moment; no placement beats it */
  bool optimal;         /* peak is proven minimal (peak == lower_bound or the search exhausted) */
  bool fits;            /* peak <= capacity (always true without a capacity) */
  bool capacity_refuted; /* the search proved that no placement fits the capacity */
  const char *method;   /* which method produced the placement (a static string) */
  double seconds;       /* wall time spent in hk_plan */
  uint64_t nodes;       /* search nodes explored */
  size_t bad_index;     /* for HK_EINVAL / HK_EOVERFLOW: the offending buffer, or SIZE_MAX */
} hk_plan_result;

/* Defaults: no capacity, 1 s, no alignment, HK_PLAN_AUTO. */
HK_API void hk_plan_options_init(hk_plan_options *opt);

/* Place n buffers; offsets[i] receives buffer i's offset. opt may be NULL (defaults).
 * Returns HK_OK when a placement was computed; check res->fits against a capacity.
 * HK_EINVAL: an empty interval (lower >= upper), an alignment that is not a power of two, a NULL
 *            pointer with n > 0, or a negative time limit (res->bad_index names the buffer).
 * HK_EOVERFLOW: offsets could exceed 2^63: a buffer's size or alignment is 2^62 or more, or the
 *              sizes and alignments sum past 2^63 (res->bad_index names the buffer where it
 *              happened), or n is 2^32 - 1 or more.
 * HK_ENOMEM: scratch memory could not be allocated. On error offsets are left unspecified. */
HK_API int hk_plan(const hk_plan_buffer *bufs, size_t n, const hk_plan_options *opt,
                   uint64_t *offsets, hk_plan_result *res);

/* The lower bound alone, in O(n log n). Returns HK_OK, HK_EINVAL (empty interval, *out untouched)
 * or HK_EOVERFLOW (as for hk_plan) or HK_ENOMEM. */
HK_API int hk_plan_lower_bound(const hk_plan_buffer *bufs, size_t n, uint64_t *out);

/* Check a placement: every offset aligned, no two buffers that overlap in time overlap in memory,
 * and every offset + size <= capacity (0 = no capacity). Returns HK_OK, or HK_EINVAL with a
 * one-line explanation in msg (e.g. "buffers 3 and 7 overlap in time [5, 9) and in memory
 * [0, 64)"). default_align plays the role of hk_plan_options.align. msg may be NULL. */
HK_API int hk_plan_validate(const hk_plan_buffer *bufs, size_t n, const uint64_t *offsets,
                            uint64_t capacity, uint64_t default_align, char *msg, size_t msglen);

/* ---- CSV traces (format in docs/planner.md) -------------------------------------------------
 * Header `id,lower,upper,size` (any order, optional columns `align` and `offset`, unknown columns
 * ignored), then one buffer per line. Blank lines and lines starting with '#' are skipped. */
typedef struct hk_plan_trace {
  hk_plan_buffer *buffers; /* count entries */
  char **ids;              /* count NUL-terminated ids, in file order */
  uint64_t *offsets;       /* from the `offset` column, or NULL when the file has none */
  size_t count;
  bool has_align;          /* the file had an `align` column */
} hk_plan_trace;

typedef struct hk_plan_csv_error {
  size_t line;       /* 1-based line of the problem; 0 for I/O errors and out of memory */
  char message[256]; /* e.g. "column 'size': negative value '-4'" */
} hk_plan_csv_error;

/* The longest line a trace may have, its end of line included: a longer one is malformed
 * (HK_EINVAL at that line), found without reading it into memory. Ids of hk_plan_csv_write stay
 * within HK_PLAN_CSV_ID_MAX bytes so that every line it writes reads back. */
#define HK_PLAN_CSV_LINE_MAX ((size_t)1 << 20)
#define HK_PLAN_CSV_ID_MAX (HK_PLAN_CSV_LINE_MAX - 256)

/* Parse a CSV trace. Returns HK_OK, or HK_EINVAL (malformed; err says where and why),
 * HK_ENOMEM, or HK_EPERM (the file could not be opened or read). On error *out is empty. */
HK_API int hk_plan_csv_read(FILE *in, hk_plan_trace *out, hk_plan_csv_error *err);
HK_API int hk_plan_csv_load(const char *path, hk_plan_trace *out, hk_plan_csv_error *err);
/* Write id,lower,upper,size[,align],offset lines (align only if the trace had it). Returns HK_OK,
 * HK_EPERM (a write error), or HK_EINVAL, with nothing written, for NULL arguments or an id that
 * would not read back as itself: empty, or with a comma, CR or LF, a leading '"' or '#', or a
 * space or tab at either end (ids built in code; ids read from a file always qualify). */
HK_API int hk_plan_csv_write(FILE *out, const hk_plan_trace *t, const uint64_t *offsets);
HK_API void hk_plan_trace_free(hk_plan_trace *t);

#ifdef __cplusplus
}
#endif
#endif
