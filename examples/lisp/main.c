/* The REPL: reads each file named on the command line (or stdin), evaluates form by form, and
 * reports errors without leaving the loop.
 *
 *   lisp [--verify] [--stats] [--gc-line] [--max-heap=MiB] [--nursery=KiB] [file ... | -]
 *
 * --gc-line prints one machine-readable line of collector statistics to stderr at exit (used by
 * bench/gc/runner.py).
 * Exit status: 0, 1 when any form raised an error, 2 for bad usage, a file that cannot be opened
 * or read, or a heap that cannot be created, 3 when --verify found a corrupt heap. */
#include "lisp.h"
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static _Noreturn void unwind(void);
char *lisp_stack_base;
size_t lisp_stack_budget;
static jmp_buf toplevel;
static int errors;
static volatile int reading; /* set while the reader runs: tells run() how to resume */

void lisp_raise(void) { unwind(); }

static _Noreturn void unwind(void) {
  errors++;
  longjmp(toplevel, 1);
}

static void vreport(const char *fmt, va_list ap) {
  fflush(stdout); /* keep stdout and stderr in order when both go to one file */
  fputs("error: ", stderr);
  vfprintf(stderr, fmt, ap);
}

void lisp_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  unwind();
}

void lisp_error_with(val v, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
  fputs(": ", stderr);
  lisp_print_error(stderr, v, 1);
  fputc('\n', stderr);
  unwind();
}

void lisp_type_error(const char *who, const char *expected, val got) {
  lisp_error_with(got, "%s: expected %s, got this %s", who, expected, lisp_type_name(got));
}

/* The C stack evaluation may use: the soft limit less a margin for the printer, libc and the
 * sanitizers' own frames. */
static size_t stack_budget(void) {
  struct rlimit rl;
  size_t lim = 8u << 20;
  if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) lim = rl.rlim_cur;
  if (lim > (256u << 20)) lim = 256u << 20;
  return lim > (2u << 20) ? lim - lim / 4 - (512u << 10) : lim / 2;
}

/* Evaluates every form of one input. Returns 0, or 3 when verification failed. */
static int run(FILE *in, int interactive, int verify) {
  lisp_reader r = {in, 1};
  val form = NULL;
  HK_GC_ROOTS(M, form);
  /* longjmp skips the cleanup that pops root frames: remember the stack of frames here. */
  hk_gc_frame *frames = hk_gc_frames_save(M);
  for (;;) {
    if (setjmp(toplevel)) {
      hk_gc_frames_restore(M, frames);
      lisp_sp = 0;
      lisp_depth = 0;
      if (feof(in)) return 0;
      /* After a reader error (or any error at a prompt) the rest of the line is dropped, so a
       * half-read datum does not turn into a cascade of errors. */
      if (interactive || reading) {
        int c;
        while ((c = getc(in)) != '\n' && c != EOF) {}
        if (c == '\n') r.line++;
      }
      continue;
    }
    if (interactive) {
      fputs("> ", stdout);
      fflush(stdout);
    }
    reading = 1;
    form = lisp_read(&r);
    reading = 0;
    if (form == LISP_EOF) return 0;
    form = lisp_eval(form, NULL);
    if (interactive && form != LISP_UNSPEC) {
      lisp_print(stdout, form, 1);
      putchar('\n');
    }
    if (verify && hk_gc_verify(M) != HK_OK) {
      fflush(stdout);
      fprintf(stderr, "error: heap verification failed after the form ending on line %d\n", r.line);
      return 3;
    }
  }
}

static int define_prims(void) {
  if (setjmp(toplevel)) {
    fprintf(stderr, "lisp: cannot define the primitives\n");
    return -1;
  }
  lisp_define_prims();
  return 0;
}

static int usage(void) {
  fputs("usage: lisp [--verify] [--stats] [--gc-line] [--max-heap=MiB] [--nursery=KiB] [file ... | -]\n", stderr);
  return 2;
}

int main(int argc, char **argv) {
  hk_gc_options o;
  hk_gc_options_init(&o);
  int verify = 0, stats = 0, gc_line = 0, first = argc;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    char *end;
    if (strcmp(a, "--verify") == 0) verify = 1;
    else if (strcmp(a, "--stats") == 0) stats = 1;
    else if (strcmp(a, "--gc-line") == 0) gc_line = 1;
    else if (strncmp(a, "--max-heap=", 11) == 0) {
      unsigned long v = strtoul(a + 11, &end, 10);
      if (*end || !v || v > (SIZE_MAX >> 20)) return usage(); /* (2^44 MiB wrapped to 0: no limit) */
      o.max_heap = (size_t)v << 20;
    } else if (strncmp(a, "--nursery=", 10) == 0) {
      unsigned long v = strtoul(a + 10, &end, 10);
      if (*end || !v || v > (SIZE_MAX >> 10)) return usage();
      o.nursery_size = (size_t)v << 10;
    } else if (a[0] == '-' && a[1]) return usage();
    else { first = i; break; }
  }
  int rc = lisp_heap_init(&o);
  if (rc != HK_OK) {
    fprintf(stderr, "lisp: cannot create the heap: %s\n", hk_strerror(rc));
    return 2;
  }
  char here;
  lisp_stack_base = &here;
  lisp_stack_budget = stack_budget();
  if (define_prims() != 0) return 2;

  int status = 0;
  if (first == argc) {
    status = run(stdin, isatty(0), verify);
  } else {
    for (int i = first; i < argc && status == 0; i++) {
      FILE *f = strcmp(argv[i], "-") == 0 ? stdin : fopen(argv[i], "r");
      if (!f) {
        fprintf(stderr, "lisp: cannot open %s\n", argv[i]);
        status = 2;
        break;
      }
      errno = 0;
      status = run(f, 0, verify);
      /* A read error looks like the end of the file to the reader: a directory (which opens)
       * ran as an empty program with status 0. */
      if (status == 0 && ferror(f)) {
        fflush(stdout);
        fprintf(stderr, "lisp: cannot read %s: %s\n", argv[i], strerror(errno ? errno : EIO));
        status = 2;
      }
      if (f != stdin) fclose(f);
    }
  }
  fflush(stdout);
  if (stats) hk_gc_stats_print(H, 2);
  if (gc_line) {
    hk_gc_stats st;
    hk_gc_stats_get(H, &st);
    fprintf(stderr, "gcstats minor=%llu full=%llu p50_ms=%.4f p95_ms=%.4f max_ms=%.4f minor_p95_ms=%.4f "
            "full_p95_ms=%.4f heap_peak_kb=%zu\n", (unsigned long long)st.minor_collections,
            (unsigned long long)st.full_collections, st.all.p50_ms, st.all.p95_ms, st.all.max_ms, st.minor.p95_ms,
            st.full.p95_ms, st.heap_peak / 1024);
  }
  lisp_heap_fini();
  if (status) return status;
  return errors ? 1 : 0;
}
