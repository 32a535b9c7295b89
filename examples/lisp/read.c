/* The reader: S-expressions from a FILE, one datum per call. Lists are built front to back
 * through a rooted head and tail, so a collection in the middle of a long list moves them safely. */
#include "lisp.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define READ_MAX_DEPTH 1000   /* nesting; deeper input is an error, not a C stack overflow */
#define TOKEN_MAX 4096

static int next_char(lisp_reader *r) {
  int c = getc(r->in);
  if (c == '\n') r->line++;
  return c;
}
static void unread_char(lisp_reader *r, int c) {
  if (c == EOF) return;
  if (c == '\n') r->line--;
  ungetc(c, r->in);
}

/* Skips white space and comments; returns the first other character (or EOF). */
static int skip_space(lisp_reader *r) {
  for (;;) {
    int c = next_char(r);
    if (c == ';') {
      while (c != '\n' && c != EOF) c = next_char(r);
      continue;
    }
    if (c == EOF || !isspace(c)) return c;
  }
}

static int is_delimiter(int c) { return c == EOF || isspace(c) || c == '(' || c == ')' || c == '"' || c == ';' || c == '\''; }

static val read_datum(lisp_reader *r, int depth);

/* The bytes of a string literal collect in one buffer that lives as long as the process, so an
 * error raised in the middle (which unwinds with longjmp) leaks nothing. */
static char *sbuf;
static size_t scap;

static val read_string(lisp_reader *r) {
  size_t n = 0;
  int start = r->line, bad_escape = 0, bad_line = 0;
  for (;;) {
    int c = next_char(r);
    if (c == EOF) lisp_error("line %d: unterminated string", start);
    if (c == '"') break;
    if (c == '\\') {
      c = next_char(r);
      switch (c) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case '\\': case '"': break;
      case EOF: lisp_error("line %d: unterminated string", start);
      default: /* reported after the closing quote, so reading resumes after the string */
        if (!bad_escape) { bad_escape = c; bad_line = r->line; }
      }
    }
    if (n + 1 >= scap) {
      size_t ncap = scap ? 2 * scap : 256;
      char *nb = realloc(sbuf, ncap);
      if (!nb) lisp_error("out of memory (reader)");
      sbuf = nb;
      scap = ncap;
    }
    sbuf[n++] = (char)c;
  }
  if (bad_escape) lisp_error("line %d: unknown escape \\%c in string", bad_line, bad_escape);
  return make_string(sbuf, n);
}

/* Parses a token as an integer: 1 with *out set, or 0 if it is not one. Out of range is an error. */
static int parse_integer(const char *tok, int line, int64_t *out) {
  const char *p = tok;
  if (*p == '+' || *p == '-') p++;
  if (!*p) return 0;
  for (const char *q = p; *q; q++)
    if (!isdigit((unsigned char)*q)) return 0;
  errno = 0;
  long long v = strtoll(tok, NULL, 10);
  if (errno == ERANGE || v > LISP_FIXNUM_MAX || v < LISP_FIXNUM_MIN)
    lisp_error("line %d: integer literal out of range: %s", line, tok);
  *out = v;
  return 1;
}

static val read_atom(lisp_reader *r, int c) {
  char tok[TOKEN_MAX];
  size_t n = 0;
  while (!is_delimiter(c)) {
    if (n + 1 >= sizeof tok) lisp_error("line %d: token too long", r->line);
    tok[n++] = (char)c;
    c = next_char(r);
  }
  unread_char(r, c);
  tok[n] = 0;
  /* A NUL byte in the token: strcmp and strtoll stop at it, so "12<NUL>ab" read as 12. Such a
   * token is a symbol (named by all its bytes, as strings keep theirs). */
  int nul = memchr(tok, 0, n) != NULL;
  if (tok[0] == '#') {
    if (!nul && strcmp(tok, "#t") == 0) return LISP_TRUE;
    if (!nul && strcmp(tok, "#f") == 0) return LISP_FALSE;
    lisp_error("line %d: unknown syntax %s", r->line, tok);
  }
  int64_t v;
  if (!nul && parse_integer(tok, r->line, &v)) return make_fixnum(v);
  return intern(tok, n);
}

static val read_list(lisp_reader *r, int depth) {
  val head = NULL, tail = NULL, item = NULL, cell = NULL;
  HK_GC_ROOTS(M, head, tail, item, cell);
  int start = r->line;
  for (;;) {
    int c = skip_space(r);
    if (c == EOF) lisp_error("line %d: unterminated list (missing ')')", start);
    if (c == ')') return head;
    if (c == '.') {
      int d = next_char(r);
      unread_char(r, d);
      if (is_delimiter(d)) {
        if (!head) lisp_error("line %d: '.' at the start of a list", r->line);
        item = read_datum(r, depth + 1);
        if (item == LISP_EOF) lisp_error("line %d: unterminated list (missing ')')", start);
        HK_GC_WRITE(M, CONS(tail), cdr, item);
        if (skip_space(r) != ')') lisp_error("line %d: more than one datum after '.'", r->line);
        return head;
      }
    }
    unread_char(r, c);
    item = read_datum(r, depth + 1);
    if (item == LISP_EOF) lisp_error("line %d: unterminated list (missing ')')", start);
    cell = cons(item, NULL);
    if (!head) head = cell;
    else HK_GC_WRITE(M, CONS(tail), cdr, cell);
    tail = cell;
  }
}

static val read_datum(lisp_reader *r, int depth) {
  if (depth > READ_MAX_DEPTH) lisp_error("line %d: nesting deeper than %d", r->line, READ_MAX_DEPTH);
  int c = skip_space(r);
  switch (c) {
  case EOF: return LISP_EOF;
  case '(': return read_list(r, depth);
  case ')': lisp_error("line %d: unexpected ')'", r->line);
  case '"': return read_string(r);
  case '#': {
    int d = next_char(r);
    if (d != '(') {
      unread_char(r, d);
      return read_atom(r, c);
    }
    val items = read_list(r, depth);
    HK_GC_ROOTS(M, items);
    long n = lisp_list_length(items);
    if (n < 0) lisp_error("line %d: a vector literal cannot contain '.'", r->line);
    val v = make_vector((size_t)n, NULL);
    for (long i = 0; i < n; i++, items = CDR(items)) VEC(v)->items[i] = CAR(items); /* fresh: no barrier */
    return v;
  }
  case '\'': {
    val q = read_datum(r, depth + 1);
    if (q == LISP_EOF) lisp_error("line %d: quote at end of input", r->line);
    q = cons(q, NULL);
    return cons(S_QUOTE, q);
  }
  default: return read_atom(r, c);
  }
}

val lisp_read(lisp_reader *r) { return read_datum(r, 0); }
