/* The CSV trace format (docs/planner.md): one parser for the CLI, the tests and the arena
 * recorder's consumers, so "malformed" means the same thing everywhere. Errors name the line and
 * the column and quote the offending text, because a trace is usually machine-written and the
 * person reading the message has to find the bug in the writer. */
#include "plan/plan_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { COL_ID, COL_LOWER, COL_UPPER, COL_SIZE, COL_ALIGN, COL_OFFSET, COL__COUNT };
static const char *const col_names[COL__COUNT] = {"id", "lower", "upper", "size", "align", "offset"};

static int err_at(hk_plan_csv_error *e, size_t line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int err_at(hk_plan_csv_error *e, size_t line, int code, const char *fmt, ...) {
  if (e) {
    e->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

void hk_plan_trace_free(hk_plan_trace *t) {
  if (!t) return;
  if (t->ids) for (size_t i = 0; i < t->count; i++) free(t->ids[i]);
  free(t->ids);
  free(t->buffers);
  free(t->offsets);
  memset(t, 0, sizeof *t);
}

/* Split line in place at commas; trims blanks around each field. Returns the field count. */
static size_t split(char *line, char **fields, size_t max) {
  size_t k = 0;
  char *p = line;
  for (;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = 0;
    while (*p == ' ' || *p == '\t') p++;
    char *end = p + strlen(p);
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) *--end = 0;
    if (k < max) fields[k] = p;
    k++;
    if (!comma) break;
    p = comma + 1;
  }
  return k;
}

/* Snippet of a field for messages: at most 40 characters. */
static const char *snip(const char *s, char *buf, size_t len) {
  snprintf(buf, len, "%.40s%s", s, strlen(s) > 40 ? "..." : "");
  return buf;
}

static int parse_u64(const char *s, uint64_t *out, const char *col, size_t line, hk_plan_csv_error *e) {
  char b[64];
  if (!*s) return err_at(e, line, HK_EINVAL, "column '%s' is empty", col);
  if (*s == '-') return err_at(e, line, HK_EINVAL, "column '%s': negative value '%s'", col, snip(s, b, sizeof b));
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return err_at(e, line, HK_EINVAL, "column '%s': '%s' is not a non-negative integer", col, snip(s, b, sizeof b));
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return err_at(e, line, HK_EINVAL, "column '%s': value '%s' is out of range (max %" PRIu64 ")", col, snip(s, b, sizeof b), UINT64_MAX);
    v = v * 10 + d;
  }
  *out = v;
  return HK_OK;
}

/* Open-addressing set of ids (FNV-1a) for duplicate detection; stores index + 1. */
typedef struct idset { uint32_t *slot; size_t cap; } idset;

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static int idset_grow(idset *set, char **ids, size_t count) {
  size_t nc = set->cap ? 2 * set->cap : 1024;
  uint32_t *ns = calloc(nc, sizeof *ns);
  if (!ns) return HK_ENOMEM;
  for (size_t i = 0; i < count; i++) {
    size_t h = fnv(ids[i]) & (nc - 1);
    while (ns[h]) h = (h + 1) & (nc - 1);
    ns[h] = (uint32_t)(i + 1);
  }
  free(set->slot);
  set->slot = ns;
  set->cap = nc;
  return HK_OK;
}

/* Returns the index of an equal id already present, or SIZE_MAX after inserting index `at`. */
static size_t idset_insert(idset *set, char **ids, size_t at) {
  size_t h = fnv(ids[at]) & (set->cap - 1);
  while (set->slot[h]) {
    size_t j = set->slot[h] - 1;
    if (strcmp(ids[j], ids[at]) == 0) return j;
    h = (h + 1) & (set->cap - 1);
  }
  set->slot[h] = (uint32_t)(at + 1);
  return SIZE_MAX;
}

/* One line into *buf, its end of line included (as getline). Returns its length, -1 at the end
 * of the input or on a read error (the stream's flags tell), -2 when the buffer cannot grow, -3
 * past HK_PLAN_CSV_LINE_MAX bytes. getline itself has no bound: a file without line ends (a
 * device such as /dev/zero, a binary) grew one line until memory ran out. */
static ssize_t read_line(FILE *in, char **buf, size_t *cap) {
  size_t n = 0;
  int c = 0;
  flockfile(in);
  while ((c = getc_unlocked(in)) != EOF) {
    if (n + 2 > *cap) { /* (room for this byte and the NUL; the cap leaves room for one byte too many) */
      if (*cap >= HK_PLAN_CSV_LINE_MAX + 2) {
        funlockfile(in);
        return -3;
      }
      size_t ncap = *cap ? *cap * 2 : 256;
      if (ncap > HK_PLAN_CSV_LINE_MAX + 2) ncap = HK_PLAN_CSV_LINE_MAX + 2;
      char *nb = realloc(*buf, ncap);
      if (!nb) {
        funlockfile(in);
        return -2;
      }
      *buf = nb;
      *cap = ncap;
    }
    (*buf)[n++] = (char)c;
    if (c == '\n') break;
  }
  funlockfile(in);
  /* (a read error ends the line where it came: the part read is no row, else a cut row could be
   * reported as malformed instead of the read error, or taken with a cut number) */
  if (c == EOF && ferror(in)) return -1;
  if (n == 0) return -1;
  if (n > HK_PLAN_CSV_LINE_MAX) return -3;
  (*buf)[n] = 0;
  return (ssize_t)n;
}

int hk_plan_csv_read(FILE *in, hk_plan_trace *out, hk_plan_csv_error *err) {
  if (err) { err->line = 0; err->message[0] = 0; }
  if (!out) return err_at(err, 0, HK_EINVAL, "no output trace");
  memset(out, 0, sizeof *out);
  if (!in) return err_at(err, 0, HK_EINVAL, "no input stream");
  char *line = NULL, *fields[16];
  size_t lcap = 0, lineno = 0, cap = 0, nf = 0;
  size_t *lines = NULL; /* line of each row, for duplicate-id messages */
  int col[COL__COUNT];
  for (int c = 0; c < COL__COUNT; c++) col[c] = -1;
  bool have_header = false;
  idset set = {0};
  int rc = HK_OK;
  ssize_t got;
  errno = 0;
  while ((got = read_line(in, &line, &lcap)) >= 0) {
    lineno++;
    size_t len = (size_t)got;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (memchr(line, 0, len)) { rc = err_at(err, lineno, HK_EINVAL, "NUL byte in line"); break; }
    /* A file with CR-only line ends reads as one line: with an optional column last it passed as
     * a header, and the trace came back empty. No field may hold a CR (ids with one are refused
     * by hk_plan_csv_write too). */
    if (memchr(line, '\r', len)) {
      rc = err_at(err, lineno, HK_EINVAL, "carriage return inside the line: lines must end in LF or CRLF (a file with "
                  "CR-only line ends?)");
      break;
    }
    char *text = line;
    if (lineno == 1 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB && (unsigned char)text[2] == 0xBF)
      text += 3; /* UTF-8 byte-order mark */
    const char *q = text;
    while (*q == ' ' || *q == '\t') q++;
    if (*q == 0 || *q == '#') continue;
    char head[64]; /* the header as written, for its error message: split cuts it at the commas */
    if (!have_header) snip(text, head, sizeof head);
    size_t k = split(text, fields, 16);
    if (!have_header) {
      if (k > 16) { rc = err_at(err, lineno, HK_EINVAL, "header has %zu columns; at most 16 are supported", k); break; }
      for (size_t f = 0; f < k && rc == HK_OK; f++)
        for (int c = 0; c < COL__COUNT; c++)
          if (strcmp(fields[f], col_names[c]) == 0) {
            if (col[c] >= 0) rc = err_at(err, lineno, HK_EINVAL, "header names column '%s' twice", col_names[c]);
            col[c] = (int)f;
          }
      if (rc != HK_OK) break;
      for (int c = COL_ID; c <= COL_SIZE; c++)
        if (col[c] < 0) {
          rc = err_at(err, lineno, HK_EINVAL, "header lacks column '%s' (expected id,lower,upper,size; got '%s')",
                      col_names[c], head);
          break;
        }
      if (rc != HK_OK) break;
      nf = k;
      have_header = true;
      out->has_align = col[COL_ALIGN] >= 0;
      continue;
    }
    if (k != nf) {
      /* a quoted id with a comma in it splits into one field too many: say why */
      if ((size_t)col[COL_ID] < k && (size_t)col[COL_ID] < 16 && fields[col[COL_ID]][0] == '"')
        rc = err_at(err, lineno, HK_EINVAL, "quoted fields are not supported (ids cannot contain commas)");
      else
        rc = err_at(err, lineno, HK_EINVAL, "expected %zu fields, found %zu", nf, k);
      break;
    }
    if (out->count == cap) {
      size_t nc = cap ? 2 * cap : 256;
      hk_plan_buffer *nb = realloc(out->buffers, nc * sizeof *nb);
      if (nb) out->buffers = nb;
      char **ni = realloc(out->ids, nc * sizeof *ni);
      if (ni) out->ids = ni;
      size_t *nl = realloc(lines, nc * sizeof *nl);
      if (nl) lines = nl;
      bool ok_off = true;
      if (col[COL_OFFSET] >= 0) {
        uint64_t *no = realloc(out->offsets, nc * sizeof *no);
        if (no) out->offsets = no; else ok_off = false;
      }
      if (!nb || !ni || !nl || !ok_off) { rc = err_at(err, 0, HK_ENOMEM, "out of memory"); break; }
      cap = nc;
    }
    size_t i = out->count;
    hk_plan_buffer b = {0};
    const char *id = fields[col[COL_ID]];
    if (!*id) { rc = err_at(err, lineno, HK_EINVAL, "column 'id' is empty"); break; }
    if (*id == '"') { rc = err_at(err, lineno, HK_EINVAL, "quoted fields are not supported (ids cannot contain commas)"); break; }
    /* (possible only in a later column: the first one's '#' makes a comment line) */
    if (*id == '#') {
      char b2[64];
      rc = err_at(err, lineno, HK_EINVAL, "column 'id': '%s' starts with '#', which would read back as a comment line",
                  snip(id, b2, sizeof b2));
      break;
    }
    if ((rc = parse_u64(fields[col[COL_LOWER]], &b.lower, "lower", lineno, err)) != HK_OK) break;
    if ((rc = parse_u64(fields[col[COL_UPPER]], &b.upper, "upper", lineno, err)) != HK_OK) break;
    if ((rc = parse_u64(fields[col[COL_SIZE]], &b.size, "size", lineno, err)) != HK_OK) break;
    if (col[COL_ALIGN] >= 0 && (rc = parse_u64(fields[col[COL_ALIGN]], &b.align, "align", lineno, err)) != HK_OK) break;
    if (col[COL_OFFSET] >= 0 && (rc = parse_u64(fields[col[COL_OFFSET]], &out->offsets[i], "offset", lineno, err)) != HK_OK) break;
    if (b.lower >= b.upper) {
      rc = err_at(err, lineno, HK_EINVAL, "empty interval [%" PRIu64 ", %" PRIu64 "): lower must be less than upper", b.lower, b.upper);
      break;
    }
    if (b.align & (b.align - 1)) {
      rc = err_at(err, lineno, HK_EINVAL, "column 'align': %" PRIu64 " is not a power of two (0 = default)", b.align);
      break;
    }
    if (i >= UINT32_MAX - 1) { rc = err_at(err, lineno, HK_EINVAL, "too many buffers"); break; }
    if (!(out->ids[i] = strdup(id))) { rc = err_at(err, 0, HK_ENOMEM, "out of memory"); break; }
    out->buffers[i] = b;
    lines[i] = lineno;
    out->count++;
    if (2 * out->count > set.cap && idset_grow(&set, out->ids, out->count - 1) != HK_OK) {
      rc = err_at(err, 0, HK_ENOMEM, "out of memory");
      break;
    }
    size_t dup = idset_insert(&set, out->ids, i);
    if (dup != SIZE_MAX) {
      char b2[64];
      rc = err_at(err, lineno, HK_EINVAL, "duplicate id '%s' (first on line %zu)", snip(id, b2, sizeof b2), lines[dup]);
      break;
    }
  }
  if (rc == HK_OK && got == -3)
    rc = err_at(err, lineno + 1, HK_EINVAL, "line longer than %zu bytes (a file without line ends?)",
                (size_t)HK_PLAN_CSV_LINE_MAX);
  else if (rc == HK_OK && ferror(in)) rc = err_at(err, 0, HK_EPERM, "read error: %s (reading line %zu)", strerror(errno ? errno : EIO), lineno + 1);
  /* The line's buffer could not grow: the rest of the file is unread (before review the rows read
   * so far came back as the whole trace, HK_OK, and `heapkit plan` placed them and exited 0; an
   * empty trace read "no header") */
  else if (rc == HK_OK && got == -2)
    rc = err_at(err, 0, HK_ENOMEM, "out of memory reading line %zu", lineno + 1);
  if (rc == HK_OK && !have_header)
    rc = err_at(err, lineno ? lineno : 1, HK_EINVAL, "no header: expected the line id,lower,upper,size");
  free(line);
  free(lines);
  free(set.slot);
  if (rc != HK_OK) hk_plan_trace_free(out);
  return rc;
}

int hk_plan_csv_load(const char *path, hk_plan_trace *out, hk_plan_csv_error *err) {
  if (out) memset(out, 0, sizeof *out);
  if (!path) return err_at(err, 0, HK_EINVAL, "no path");
  FILE *f = fopen(path, "r");
  if (!f) return err_at(err, 0, HK_EPERM, "cannot open: %s", strerror(errno));
  int rc = hk_plan_csv_read(f, out, err);
  fclose(f);
  return rc;
}

/* An id the reader gives back unchanged: not empty, no comma or line break (they split the row),
 * no leading quote (refused) or '#' (a comment line), no space or tab at either end (trimmed). */
static bool id_writable(const char *id) {
  if (!id || !*id || *id == '"' || *id == '#' || strpbrk(id, ",\n\r")) return false;
  size_t n = strlen(id);
  if (n > HK_PLAN_CSV_ID_MAX) return false; /* its line would be longer than the reader takes */
  return !(id[0] == ' ' || id[0] == '\t' || id[n - 1] == ' ' || id[n - 1] == '\t');
}

int hk_plan_csv_write(FILE *out, const hk_plan_trace *t, const uint64_t *offsets) {
  if (!out || !t || (t->count && (!offsets || !t->ids || !t->buffers))) return HK_EINVAL;
  for (size_t i = 0; i < t->count; i++)
    if (!id_writable(t->ids[i])) return HK_EINVAL; /* nothing written: the file would not read back */
  fprintf(out, t->has_align ? "id,lower,upper,size,align,offset\n" : "id,lower,upper,size,offset\n");
  for (size_t i = 0; i < t->count; i++) {
    const hk_plan_buffer *b = &t->buffers[i];
    if (t->has_align)
      fprintf(out, "%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", t->ids[i], b->lower, b->upper, b->size, b->align, offsets[i]);
    else
      fprintf(out, "%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", t->ids[i], b->lower, b->upper, b->size, offsets[i]);
  }
  return ferror(out) ? HK_EPERM : HK_OK;
}
