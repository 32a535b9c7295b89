/* The CSV trace parser: accepted variants and every malformed-input message, with its line. */
#define _GNU_SOURCE /* fopencookie */
#include <heapkit.h>
#include <errno.h>
#include <stdlib.h>

#include "check.h"

static int parse(const char *text, hk_plan_trace *t, hk_plan_csv_error *e) {
  FILE *f = fmemopen((void *)text, strlen(text), "r");
  CHECK(f != NULL);
  if (!f) return -99;
  int rc = hk_plan_csv_read(f, t, e);
  fclose(f);
  return rc;
}

static void bad(const char *text, size_t line, const char *needle) {
  hk_plan_trace t;
  hk_plan_csv_error e;
  int rc = parse(text, &t, &e);
  CHECK_MSG(rc == HK_EINVAL, "accepted: %s", text);
  CHECK_MSG(e.line == line, "line %zu, expected %zu (%s)", e.line, line, e.message);
  CHECK_CONTAINS(e.message, needle);
  CHECK(t.count == 0 && t.buffers == NULL);
}

/* A line without end: the third of four rows is 2 GiB long, produced on the fly. getline read it
 * whole (a file without line ends, such as /dev/zero, grew one line until memory ran out, and
 * before review of 2026-12-07 getline's failure then, which sets no stream error, was taken for
 * the end of the file: the rows before it came back as the whole trace, HK_OK). The reader stops
 * past HK_PLAN_CSV_LINE_MAX bytes: HK_EINVAL at line 4, in a child whose address space may grow
 * by 32 MiB only. (Its HK_ENOMEM, when the line's buffer cannot grow below the cap, is out of a
 * test's reach with heapkit's malloc linked: its reserved room serves the 1 MiB under any
 * RLIMIT_AS the test could set.) Not under ASan or TSan: their allocators abort on failure
 * instead of returning NULL. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct { uint64_t pos; } gen_state;
static const char gen_head[] = "id,lower,upper,size\na,0,2,4\nb,1,3,8\n";
static const char gen_tail[] = ",0,1,4\nd,0,1,8\n";
#define GEN_LONG ((uint64_t)2 << 30)
static ssize_t gen_read(void *cookie, char *buf, size_t size) {
  gen_state *g = cookie;
  uint64_t head = sizeof gen_head - 1, tail = sizeof gen_tail - 1, total = head + GEN_LONG + tail;
  size_t n = 0;
  while (n < size && g->pos < total) {
    uint64_t p = g->pos;
    buf[n++] = p < head ? gen_head[p] : p < head + GEN_LONG ? 'x' : gen_tail[p - head - GEN_LONG];
    g->pos++;
  }
  return (ssize_t)n;
}

/* Reads the generated trace with the address space limited to margin bytes above its use. */
static int line_child(rlim_t margin, int want_rc, const char *want_msg, size_t want_line) {
  long pages = 0;
  FILE *statm = fopen("/proc/self/statm", "r");
  if (!statm || fscanf(statm, "%ld", &pages) != 1) return 10;
  fclose(statm);
  gen_state g = {0};
  FILE *f = fopencookie(&g, "r", (cookie_io_functions_t){.read = gen_read});
  if (!f) return 12;
  hk_plan_trace t;
  hk_plan_csv_error e;
  struct rlimit rl = {(rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + margin, RLIM_INFINITY};
  rl.rlim_max = rl.rlim_cur;
  if (setrlimit(RLIMIT_AS, &rl) != 0) return 11;
  int rc = hk_plan_csv_read(f, &t, &e);
  fclose(f);
  if (rc != want_rc) { fprintf(stderr, "line_child: rc %d, %zu rows, line %zu: %s\n", rc, t.count, e.line, e.message); return 1; }
  if (t.count != 0 || t.buffers != NULL || e.line != want_line || !strstr(e.message, want_msg)) {
    fprintf(stderr, "line_child: %zu rows, line %zu: %s\n", t.count, e.line, e.message);
    return 2;
  }
  return 0;
}

static void run_line_child(rlim_t margin, int want_rc, const char *want_msg, size_t want_line) {
  fflush(NULL);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(line_child(margin, want_rc, want_msg, want_line));
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d (%s)", st, want_msg);
}

static void test_line_oom(void) {
  /* nor under valgrind (valgrind.memcheck runs this program), which ends the process when its own
   * mappings fail under the limit */
  const char *preload = getenv("LD_PRELOAD");
  if (preload && strstr(preload, "vgpreload")) return;
  run_line_child((rlim_t)32 << 20, HK_EINVAL, "line longer than 1048576 bytes", 4);
}
#else
static void test_line_oom(void) {}
#endif

/* A stream that reads `text` and then fails with EIO (a disk error, a network file gone). */
typedef struct { const char *text; size_t pos; } fail_state;
static ssize_t fail_read(void *cookie, char *buf, size_t size) {
  fail_state *f = cookie;
  size_t left = strlen(f->text) - f->pos, n = left < size ? left : size;
  if (n == 0) {
    errno = EIO;
    return -1;
  }
  memcpy(buf, f->text + f->pos, n);
  f->pos += n;
  return (ssize_t)n;
}

/* review3 (2026-12-07): a read error in the middle of a line. The part read came back as a line:
 * a cut row ("b,1,3") was reported as malformed (HK_EINVAL, the CLI's exit 2) instead of the read
 * error, and one cut in a number taken with it; the read error said line 2, the last line read
 * whole, where the docs say line 0 for I/O problems. */
static void test_read_error(void) {
  const char *texts[] = {"id,lower,upper,size\na,0,2,4\nb,1,3", "id,lower,upper,size\na,0,2,4\nb,1,3,1"};
  for (int i = 0; i < 2; i++) {
    fail_state g = {texts[i], 0};
    FILE *f = fopencookie(&g, "r", (cookie_io_functions_t){.read = fail_read});
    CHECK(f != NULL);
    if (!f) return;
    hk_plan_trace t;
    hk_plan_csv_error e;
    int rc = hk_plan_csv_read(f, &t, &e);
    fclose(f);
    CHECK_MSG(rc == HK_EPERM, "rc %d: line %zu: %s", rc, e.line, e.message);
    CHECK_MSG(e.line == 0, "line %zu: %s", e.line, e.message);
    CHECK_CONTAINS(e.message, "read error: Input/output error (reading line 3)");
    CHECK(t.count == 0 && t.buffers == NULL);
  }
}

/* The line cap counts the end of line: a comment line of exactly HK_PLAN_CSV_LINE_MAX bytes is
 * read, one byte more is refused at its line, with CRLF too. */
static void test_line_cap(void) {
  size_t max = HK_PLAN_CSV_LINE_MAX, cap = max + 64;
  char *s = malloc(cap);
  CHECK(s != NULL);
  if (!s) return;
  for (int extra = 0; extra < 2; extra++)
    for (int crlf = 0; crlf < 2; crlf++) {
      size_t used = (size_t)snprintf(s, cap, "id,lower,upper,size\n#");
      size_t body = max + (size_t)extra - 1 - (crlf ? 2 : 1); /* '#' + body + end of line */
      memset(s + used, 'x', body);
      used += body;
      used += (size_t)snprintf(s + used, cap - used, "%sa,0,1,4", crlf ? "\r\n" : "\n");
      hk_plan_trace t;
      hk_plan_csv_error e;
      int rc = parse(s, &t, &e);
      if (!extra) {
        CHECK_MSG(rc == HK_OK && t.count == 1, "line of %zu bytes (crlf %d): rc %d %s", max, crlf, rc, e.message);
        if (rc == HK_OK) hk_plan_trace_free(&t);
      } else {
        CHECK_MSG(rc == HK_EINVAL && e.line == 2, "line of %zu bytes (crlf %d): rc %d line %zu", max + 1, crlf, rc, e.line);
        CHECK_CONTAINS(e.message, "line longer than 1048576 bytes");
      }
    }
  free(s);
}

int main(void) {
  hk_plan_trace t;
  hk_plan_csv_error e;
  /* the basic format */
  CHECK(parse("id,lower,upper,size\na,0,4,16\nb,2,6,0\n", &t, &e) == HK_OK);
  CHECK(t.count == 2 && strcmp(t.ids[0], "a") == 0 && strcmp(t.ids[1], "b") == 0);
  CHECK(t.buffers[0].lower == 0 && t.buffers[0].upper == 4 && t.buffers[0].size == 16 && t.buffers[1].size == 0);
  CHECK(!t.has_align && t.offsets == NULL);
  hk_plan_trace_free(&t);
  /* columns in any order, CRLF, blanks, comments, a BOM, an unknown column, align and offset */
  CHECK(parse("\xEF\xBB\xBFsize, id ,upper,lower,note,align,offset\r\n# comment\r\n\r\n 8 , x1 ,9,3,hello,16,32\r\n", &t, &e) == HK_OK);
  CHECK(t.count == 1 && strcmp(t.ids[0], "x1") == 0 && t.buffers[0].lower == 3 && t.buffers[0].upper == 9);
  CHECK(t.buffers[0].size == 8 && t.has_align && t.buffers[0].align == 16 && t.offsets && t.offsets[0] == 32);
  /* write + read back */
  char *buf = NULL;
  size_t len = 0;
  FILE *w = open_memstream(&buf, &len);
  uint64_t off = 48;
  CHECK(hk_plan_csv_write(w, &t, &off) == HK_OK);
  fclose(w);
  CHECK_CONTAINS(buf, "id,lower,upper,size,align,offset\nx1,3,9,8,16,48\n");
  hk_plan_trace_free(&t);
  CHECK(parse(buf, &t, &e) == HK_OK && t.count == 1 && t.offsets[0] == 48);
  hk_plan_trace_free(&t);
  free(buf);
  /* ids that would not read back are refused, nothing written (an id with a comma made a file
   * with a row of 5 fields) */
  {
    const char *ids_bad[] = {"a,b", "a\nb", "a\rb", "\"q", "#c", "", " a", "a\t", NULL};
    for (size_t k = 0; k < sizeof ids_bad / sizeof ids_bad[0]; k++) {
      char *idp = (char *)ids_bad[k];
      hk_plan_buffer b1 = {.lower = 0, .upper = 1, .size = 8};
      hk_plan_trace bt = {.buffers = &b1, .ids = &idp, .count = 1};
      uint64_t o = 0;
      buf = NULL;
      len = 0;
      w = open_memstream(&buf, &len);
      CHECK_MSG(hk_plan_csv_write(w, &bt, &o) == HK_EINVAL, "id %zu accepted", k);
      fclose(w);
      CHECK(len == 0);
      free(buf);
    }
    char *good = "a b#\"";
    hk_plan_buffer b1 = {.lower = 0, .upper = 1, .size = 8};
    hk_plan_trace bt = {.buffers = &b1, .ids = &good, .count = 1};
    uint64_t o = 0;
    buf = NULL;
    w = open_memstream(&buf, &len);
    CHECK(hk_plan_csv_write(w, &bt, &o) == HK_OK);
    fclose(w);
    CHECK(parse(buf, &t, &e) == HK_OK && t.count == 1 && strcmp(t.ids[0], good) == 0);
    hk_plan_trace_free(&t);
    free(buf);
  }
  /* large values */
  CHECK(parse("id,lower,upper,size\nbig,0,18446744073709551615,18446744073709551615\n", &t, &e) == HK_OK);
  CHECK(t.buffers[0].upper == UINT64_MAX && t.buffers[0].size == UINT64_MAX);
  hk_plan_trace_free(&t);

  /* malformed input: each message names the line */
  bad("", 1, "no header");
  bad("# only a comment\n", 1, "no header");
  bad("id,lower,upper\na,0,1\n", 1, "header lacks column 'size'");
  /* the message quotes the header line, not only its first field (it said "got 'id'") */
  bad("id,lower,upper\na,0,1\n", 1, "got 'id,lower,upper'");
  bad("0,0,4,16\n", 1, "header lacks column 'id'");
  bad("id,lower,upper,size,size\n", 1, "names column 'size' twice");
  bad("id,lower,upper,size\na,0,4,16\nb,0,4\n", 3, "expected 4 fields, found 3");
  bad("id,lower,upper,size\na,0,4,16,7\n", 2, "expected 4 fields, found 5");
  bad("id,lower,upper,size\na,0,4,-16\n", 2, "column 'size': negative value '-16'");
  bad("id,lower,upper,size\na,-1,4,16\n", 2, "column 'lower': negative value");
  bad("id,lower,upper,size\na,0,4,1e3\n", 2, "column 'size': '1e3' is not a non-negative integer");
  bad("id,lower,upper,size\na,0,x,16\n", 2, "column 'upper': 'x' is not a non-negative integer");
  bad("id,lower,upper,size\na,0,4,\n", 2, "column 'size' is empty");
  bad("id,lower,upper,size\na,0,4,18446744073709551616\n", 2, "out of range");
  bad("id,lower,upper,size\n\na,5,5,16\n", 3, "empty interval [5, 5)");
  bad("id,lower,upper,size\na,7,5,16\n", 2, "empty interval [7, 5)");
  bad("id,lower,upper,size\na,0,4,16\nb,0,4,16\na,1,2,3\n", 4, "duplicate id 'a' (first on line 2)");
  bad("id,lower,upper,size\n,0,4,16\n", 2, "column 'id' is empty");
  /* (said "expected 4 fields, found 5" before: the quote message never showed for a comma) */
  bad("id,lower,upper,size\n\"a,b\",0,4,16\n", 2, "quoted fields are not supported (ids cannot contain commas)");
  bad("lower,id,upper,size\n0,\"a,b\",4,16\n", 2, "quoted fields are not supported");
  bad("id,lower,upper,size\n\"a\",0,4\n", 2, "quoted fields are not supported");
  bad("id,lower,upper,size,align\na,0,4,16,3\n", 2, "not a power of two");
  /* An id that starts with '#' in a column after the first: read, but the written plan (id first)
   * would have made its row a comment, so hk_plan_csv_write refused the trace and `heapkit plan`
   * failed with "write error on stdout", exit 3 (review). Refused where it is read. */
  bad("lower,upper,size,id\n0,2,10,#x\n", 2, "column 'id': '#x' starts with '#'");
  /* CR-only line ends (classic Mac, "CSV (Macintosh)" exports): the whole file is one line. With
   * an optional column last, that line passed as a header and the trace came back empty, rc 0
   * (review; the CLI then wrote an empty plan with exit 0). A CR inside a line is refused. */
  bad("id,lower,upper,size,align\ra,0,2,5,16\rb,1,3,5,16\r", 1, "carriage return inside the line");
  bad("id,lower,upper,size\ra,0,2,5\r", 1, "lines must end in LF or CRLF");
  bad("id,lower,upper,size\na,0,2,5\rb,0,2,5\n", 2, "carriage return inside the line");
  /* (CRLF and stray CRs before the LF stay accepted) */
  CHECK(parse("id,lower,upper,size\r\na,0,2,5\r\r\n", &t, &e) == HK_OK && t.count == 1);
  hk_plan_trace_free(&t);
  /* many ids: the duplicate table grows */
  {
    size_t n = 5000, cap = 64 * n, used = 0;
    char *s = malloc(cap);
    used += (size_t)snprintf(s + used, cap - used, "id,lower,upper,size\n");
    for (size_t i = 0; i < n; i++) used += (size_t)snprintf(s + used, cap - used, "t%zu,%zu,%zu,%zu\n", i, i, i + 3, i + 1);
    CHECK(parse(s, &t, &e) == HK_OK && t.count == n);
    hk_plan_trace_free(&t);
    used += (size_t)snprintf(s + used, cap - used, "t1234,0,1,1\n");
    bad(s, n + 2, "duplicate id 't1234' (first on line 1236)");
    free(s);
  }
  /* I/O errors */
  CHECK(hk_plan_csv_load("/nonexistent/trace.csv", &t, &e) == HK_EPERM && e.line == 0);
  CHECK_CONTAINS(e.message, "cannot open");
  test_read_error();
  test_line_cap();
  test_line_oom();
  TEST_DONE("test_plan_csv");
}
