/* The GC benchmarks' harness: one workload source, compiled twice.
 *
 *   -DGCB_HEAPKIT  heapkit's precise collector (include/heapkit/gc.h): root frames, write barrier,
 *                  typed allocation, pointer-free objects apart.
 *   -DGCB_BOEHM    the Boehm-Demers-Weiser collector (Debian libgc), used as its users do:
 *                  GC_MALLOC / GC_MALLOC_ATOMIC, conservative stack scanning, no barrier.
 *
 * The macros below compile to the natural code of each collector, so a workload reads like a
 * program written for either: GCB_ROOTS, GCB_WRITE and GCB_POLL vanish under Boehm, type ids are
 * ignored.
 *
 * Every program takes `BUDGET [workload arguments]` (BUDGET in bytes: the heap limit for both
 * collectors; 0 = none) or `--live [workload arguments]` (print the live size it computes and
 * exit), and prints one line that bench/gc/runner.py parses:
 *   gcb workload=W gc=G budget=B status=ok|oom|fail cpu_s=.. wall_s=.. rss_kb=.. gcs=.. minor=..
 *       full=.. p50_ms=.. p95_ms=.. max_ms=.. minor_p95_ms=.. full_p95_ms=.. <workload figures>
 * Exit status: 0 ok, 3 the heap budget was exhausted (status=oom), 1 a result check failed.
 */
#ifndef GCB_H
#define GCB_H
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Not every workload uses every helper. */
#pragma GCC diagnostic ignored "-Wunused-function"

#if defined(GCB_HEAPKIT) == defined(GCB_BOEHM)
#error "compile with exactly one of -DGCB_HEAPKIT or -DGCB_BOEHM"
#endif

static double gcb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *gcb_workload = "?";
static size_t gcb_budget;
static double gcb_wall0;
static char gcb_extra[512]; /* workload figures appended to the result line */

static void gcb_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void gcb_note(const char *fmt, ...) {
  size_t n = strlen(gcb_extra);
  va_list ap;
  va_start(ap, fmt);
  if (n < sizeof gcb_extra - 2) {
    gcb_extra[n++] = ' ';
    vsnprintf(gcb_extra + n, sizeof gcb_extra - n, fmt, ap);
  }
  va_end(ap);
}

#define GCB_NO_TAIL (-1)
typedef void (*gcb_finalizer_fn)(void *obj, void *data);
static gcb_finalizer_fn gcb_finalizer;

/* ===================================== heapkit ========================================== */
#ifdef GCB_HEAPKIT
#include <heapkit.h>
#define GCB_NAME "heapkit"
typedef hk_gc_type gcb_type;
static hk_gc_heap *gcb_heap;
static __thread hk_gc_mutator *gcb_m;

static void gcb_oom_exit(void);
static inline void *gcb_check(void *p) {
  if (__builtin_expect(p == NULL, 0)) gcb_oom_exit();
  return p;
}
/* mask: bit i = word i is a pointer; 0 with tail GCB_NO_TAIL = a pointer-free type (allocate
 * with GCB_ALLOC_ATOMIC). tail >= 0: every word from word `tail` on is a pointer (arrays). */
static gcb_type gcb_type_new(const char *name, size_t size, uint64_t mask, int tail) {
  hk_gc_type_desc d = {.name = name, .size = size, .pointer_mask = mask};
  if (tail >= 0) {
    d.tail_start = (uint32_t)tail;
    d.flags = HK_GC_TYPE_TAIL_POINTERS;
  } else if (!mask) d.flags = HK_GC_TYPE_NO_POINTERS;
  gcb_type t;
  if (hk_gc_type_register(gcb_heap, &d, &t) != HK_OK) {
    fprintf(stderr, "gcb: cannot register type %s\n", name);
    exit(2);
  }
  return t;
}
#define GCB_ALLOC(type, size) gcb_check(hk_gc_alloc(gcb_m, (type), (size)))
#define GCB_ALLOC_ATOMIC(type, size) gcb_check(hk_gc_alloc_data(gcb_m, (type), (size)))
#define GCB_ROOTS(...) HK_GC_ROOTS(gcb_m, __VA_ARGS__)
#define GCB_WRITE(obj, field, value) HK_GC_WRITE(gcb_m, obj, field, value)
#define GCB_WRITE_INDEX(arr, i, value) HK_GC_WRITE_INDEX(gcb_m, arr, i, value)
#define GCB_BARRIER(obj) hk_gc_write_barrier(gcb_m, (obj))
/* A safepoint poll, where compiled code would put one (calls, loop back-edges): a collection may
 * run in it, so the pointers live across it must be in GCB_ROOTS. */
#define GCB_POLL() hk_gc_safepoint(gcb_m)

static void gcb_init(size_t budget) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  o.max_heap = budget;
  /* The nursery counts against the limit: a small budget gets at most a quarter of it. */
  if (budget && o.nursery_size > budget / 4) o.nursery_size = (budget / 4) & ~(size_t)0xffff;
  if (getenv("GCB_NURSERY")) o.nursery_size = (size_t)strtoull(getenv("GCB_NURSERY"), NULL, 0);
  /* HK_GC_OPT_* bits, for comparing variants (e.g. GCB_GC_FLAGS=4: no sticky marks). */
  if (getenv("GCB_GC_FLAGS")) o.flags = (unsigned)strtoul(getenv("GCB_GC_FLAGS"), NULL, 0);
  /* growth_percent, for measuring the full collections / peak RSS trade (docs/gc.md). */
  if (getenv("GCB_GROWTH")) o.growth_percent = (unsigned)strtoul(getenv("GCB_GROWTH"), NULL, 0);
  int rc = hk_gc_heap_create(&o, &gcb_heap, &gcb_m);
  if (rc != HK_OK) {
    fprintf(stderr, "gcb: hk_gc_heap_create: %s\n", hk_strerror(rc));
    exit(2);
  }
}
static void gcb_thread_attach(void) {
  gcb_m = hk_gc_thread_register(gcb_heap);
  if (!gcb_m) gcb_oom_exit();
}
static void gcb_thread_detach(void) {
  hk_gc_thread_unregister(gcb_m);
  gcb_m = NULL;
}
/* A thread waiting for others (join) must not hold up their collections. */
static void gcb_blocking_begin(void) { hk_gc_blocking_begin(gcb_m); }
static void gcb_blocking_end(void) { hk_gc_blocking_end(gcb_m); }
static void gcb_collect(void) { hk_gc_collect(gcb_m, HK_GC_FULL); }
static void gcb_fin_trampoline(hk_gc_mutator *m, void *obj, void *data) { gcb_finalizer(obj, data); }
static void gcb_register_finalizer(void *obj, void *data) {
  if (hk_gc_set_finalizer(gcb_m, obj, gcb_fin_trampoline, data) != HK_OK) gcb_oom_exit();
}
/* An object and its finalizer in one call (Boehm: GC_MALLOC, then GC_REGISTER_FINALIZER). */
static void *gcb_alloc_finalized(gcb_type type, size_t size, void *data) {
  return gcb_check(hk_gc_alloc_finalized(gcb_m, type, size, gcb_fin_trampoline, data));
}
static void gcb_run_finalizers(void) { hk_gc_run_finalizers(gcb_m); }

typedef struct gcb_gcstats {
  unsigned long long gcs, minor, full;
  double p50, p95, max, minor_p95, full_p95, total_ms;
} gcb_gcstats;
static void gcb_stats(gcb_gcstats *s) {
  hk_gc_stats st;
  hk_gc_stats_get(gcb_heap, &st);
  s->minor = st.minor_collections;
  s->full = st.full_collections;
  s->gcs = s->minor + s->full;
  s->p50 = st.all.p50_ms;
  s->p95 = st.all.p95_ms;
  s->max = st.all.max_ms;
  s->minor_p95 = st.minor.p95_ms;
  s->full_p95 = st.full.p95_ms;
  s->total_ms = st.all.total_ms;
  gcb_note("heap_peak_kb=%zu live_kb=%zu promoted_mb=%.1f minor_total_ms=%.1f full_total_ms=%.1f",
           st.heap_peak / 1024, st.live_bytes / 1024, st.bytes_promoted / 1048576.0, st.minor.total_ms,
           st.full.total_ms);
  if (st.parallel_opened || st.safepoint_wait_ms > 0)
    gcb_note("par_opened=%llu par_helped=%llu safepoint_wait_ms=%.1f safepoint_wait_max_ms=%.2f "
             "safepoint_run_cpu_ms=%.1f",
             (unsigned long long)st.parallel_opened, (unsigned long long)st.parallel_phases, st.safepoint_wait_ms,
             st.safepoint_wait_max_ms, st.safepoint_run_cpu_ms);
}
#endif

/* ====================================== Boehm =========================================== */
#ifdef GCB_BOEHM
#define GC_THREADS
#include <gc.h>
#define GCB_NAME "boehm"
typedef int gcb_type;

static void gcb_oom_exit(void);
static inline void *gcb_check(void *p) {
  if (__builtin_expect(p == NULL, 0)) gcb_oom_exit();
  return p;
}
static gcb_type gcb_type_new(const char *name, size_t size, uint64_t mask, int tail) { return 0; }
#define GCB_ALLOC(type, size) gcb_check(GC_MALLOC(size))
#define GCB_ALLOC_ATOMIC(type, size) gcb_check(GC_MALLOC_ATOMIC(size))
#define GCB_ROOTS(...) ((void)0)
#define GCB_WRITE(obj, field, value) ((obj)->field = (value))
#define GCB_WRITE_INDEX(arr, i, value) ((arr)[i] = (value))
#define GCB_BARRIER(obj) ((void)0)
#define GCB_POLL() ((void)0) /* Boehm stops threads with signals: nothing to poll */

/* Pauses: Boehm's collection events, from GC_EVENT_START to GC_EVENT_END (the collection is
 * stop-the-world; lazy sweeping done later by allocation is not counted). */
#define GCB_MAX_PAUSES (1 << 20)
static double *gcb_pauses, gcb_pause_t0;
static size_t gcb_npauses;
static void gcb_on_event(GC_EventType e) {
  if (e == GC_EVENT_START) gcb_pause_t0 = gcb_now();
  else if (e == GC_EVENT_END && gcb_npauses < GCB_MAX_PAUSES)
    gcb_pauses[gcb_npauses++] = (gcb_now() - gcb_pause_t0) * 1e3;
}
static void *gcb_boehm_oom(size_t n) { return NULL; } /* NULL from GC_MALLOC instead of abort */

static void gcb_init(size_t budget) {
  gcb_pauses = malloc(GCB_MAX_PAUSES * sizeof(double));
  GC_INIT();
  if (budget) GC_set_max_heap_size(budget);
  GC_set_oom_fn(gcb_boehm_oom);
  GC_set_on_collection_event(gcb_on_event);
}
static void gcb_thread_attach(void) {} /* GC_THREADS: pthread_create registers the thread */
static void gcb_thread_detach(void) {}
static void gcb_blocking_begin(void) {}
static void gcb_blocking_end(void) {}
static void gcb_collect(void) { GC_gcollect(); }
static void gcb_fin_trampoline(void *obj, void *data) { gcb_finalizer(obj, data); }
static void gcb_register_finalizer(void *obj, void *data) {
  GC_REGISTER_FINALIZER(obj, gcb_fin_trampoline, data, NULL, NULL);
}
static void *gcb_alloc_finalized(gcb_type type, size_t size, void *data) {
  void *p = GCB_ALLOC(type, size);
  gcb_register_finalizer(p, data);
  return p;
}
static void gcb_run_finalizers(void) { GC_invoke_finalizers(); }

typedef struct gcb_gcstats {
  unsigned long long gcs, minor, full;
  double p50, p95, max, minor_p95, full_p95, total_ms;
} gcb_gcstats;
static int gcb_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static void gcb_stats(gcb_gcstats *s) {
  memset(s, 0, sizeof *s);
  s->gcs = s->full = gcb_npauses;
  if (gcb_npauses) {
    qsort(gcb_pauses, gcb_npauses, sizeof(double), gcb_cmp_double);
    s->p50 = gcb_pauses[(gcb_npauses - 1) / 2];
    s->p95 = gcb_pauses[(size_t)((gcb_npauses - 1) * 0.95)];
    s->max = gcb_pauses[gcb_npauses - 1];
    s->full_p95 = s->p95;
    for (size_t i = 0; i < gcb_npauses; i++) s->total_ms += gcb_pauses[i];
  }
  gcb_note("heap_peak_kb=%zu", GC_get_heap_size() / 1024);
}
#endif

/* ===================================== common =========================================== */

/* Peak resident set in KiB. Not ru_maxrss: Linux carries it across exec, so a run started by the
 * Python runner (about 14 MB resident) would report at least the runner's peak. VmHWM belongs to
 * this process's own address space. */
static long gcb_peak_rss_kb(const struct rusage *ru) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb >= 0 ? kb : ru->ru_maxrss;
}

static void gcb_report(const char *status) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  double wall = gcb_now() - gcb_wall0;
  gcb_gcstats s;
  gcb_stats(&s);
  printf("gcb workload=%s gc=%s budget=%zu status=%s cpu_s=%.4f wall_s=%.4f rss_kb=%ld gcs=%llu minor=%llu "
         "full=%llu p50_ms=%.4f p95_ms=%.4f max_ms=%.4f minor_p95_ms=%.4f full_p95_ms=%.4f gc_total_ms=%.1f%s\n",
         gcb_workload, GCB_NAME, gcb_budget, status, cpu, wall, gcb_peak_rss_kb(&ru), s.gcs, s.minor, s.full, s.p50,
         s.p95, s.max, s.minor_p95, s.full_p95, s.total_ms, gcb_extra);
  fflush(stdout);
}

static void gcb_oom_exit(void) {
  gcb_report("oom");
  _exit(3);
}

/* Parses the command line; returns the index of the first workload argument. With --live the
 * caller prints its live size with gcb_print_live and exits. */
static int gcb_live_only;
static int gcb_start(const char *workload, int argc, char **argv) {
  gcb_workload = workload;
  if (argc < 2) {
    fprintf(stderr, "usage: %s BUDGET_BYTES|--live [workload arguments]\n", argv[0]);
    exit(2);
  }
  if (strcmp(argv[1], "--live") == 0) {
    gcb_live_only = 1;
    return 2;
  }
  char *end;
  gcb_budget = (size_t)strtoull(argv[1], &end, 10);
  if (*end) {
    fprintf(stderr, "gcb: bad budget %s\n", argv[1]);
    exit(2);
  }
  gcb_wall0 = gcb_now();
  gcb_init(gcb_budget);
  return 2;
}
static long gcb_arg(int argc, char **argv, int i, long dflt) { return i < argc ? strtol(argv[i], NULL, 10) : dflt; }

/* Live size: the bytes the program's reachable objects occupy at its peak, each with one
 * header word and rounded to 8 bytes (what a collector with one-word headers must hold). */
static size_t gcb_obj_bytes(size_t payload) { return ((payload + 7) & ~(size_t)7) + 8; }
static void gcb_print_live(size_t bytes) { printf("%zu\n", bytes); }

static int gcb_finish(int ok) {
  gcb_report(ok ? "ok" : "fail");
  return ok ? 0 : 1;
}
#endif
