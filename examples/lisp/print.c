/* The printer. It never allocates (so it needs no roots) and bounds its walk, so a circular
 * structure prints as "..." instead of running forever. */
#include "lisp.h"
#include <inttypes.h>
#include <stdlib.h>

#define PRINT_MAX_DEPTH 200
#define PRINT_MAX_ITEMS 100000

const char *lisp_type_name(val v) {
  if (v == LISP_NIL) return "empty list";
  if (is_fixnum(v)) return "integer";
  if (v == LISP_TRUE || v == LISP_FALSE) return "boolean";
  if (is_prim(v)) return "primitive";
  if (!is_heap(v)) return "constant";
  hk_gc_type t = hk_gc_object_type(v);
  if (t == T_CONS) return "pair";
  if (t == T_STRING) return "string";
  if (t == T_SYMBOL) return "symbol";
  if (t == T_VECTOR) return "vector";
  if (t == T_CLOSURE) return "procedure";
  if (t == T_ENV) return "environment";
  return "unknown object";
}

static void print_string(FILE *out, const lisp_string *s, int write_mode) {
  if (!write_mode) {
    fwrite(s->bytes, 1, s->len, out);
    return;
  }
  putc('"', out);
  for (size_t i = 0; i < s->len; i++) {
    char c = s->bytes[i];
    if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
    else if (c == '\n') fputs("\\n", out);
    else if (c == '\t') fputs("\\t", out);
    else putc(c, out);
  }
  putc('"', out);
}

static void print(FILE *out, val v, int write_mode, int depth) {
  if (depth > PRINT_MAX_DEPTH) {
    fputs("...", out);
    return;
  }
  if (v == LISP_NIL) fputs("()", out);
  else if (is_fixnum(v)) fprintf(out, "%" PRId64, fixnum_value(v));
  else if (v == LISP_TRUE) fputs("#t", out);
  else if (v == LISP_FALSE) fputs("#f", out);
  else if (v == LISP_UNSPEC) fputs("#<unspecified>", out);
  else if (v == LISP_EOF) fputs("#<eof>", out);
  else if (is_prim(v)) fprintf(out, "#<primitive %s>", lisp_prims[prim_index(v)].name);
  else if (is_string(v)) print_string(out, STR(v), write_mode);
  else if (is_symbol(v)) print_string(out, STR(SYM(v)->name), 0);
  else if (is_closure(v)) {
    fputs("#<procedure", out);
    if (CLO(v)->name) {
      putc(' ', out);
      print(out, CLO(v)->name, 0, depth + 1);
    }
    putc('>', out);
  } else if (is_vector(v)) {
    fputs("#(", out);
    for (size_t i = 0; i < VEC(v)->len; i++) {
      if (i) putc(' ', out);
      if (i >= PRINT_MAX_ITEMS) { fputs("...", out); break; }
      print(out, VEC(v)->items[i], write_mode, depth + 1);
    }
    putc(')', out);
  } else if (is_pair(v)) {
    putc('(', out);
    size_t n = 0;
    for (;;) {
      print(out, CAR(v), write_mode, depth + 1);
      v = CDR(v);
      if (v == LISP_NIL) break;
      if (!is_pair(v)) {
        fputs(" . ", out);
        print(out, v, write_mode, depth + 1);
        break;
      }
      putc(' ', out);
      if (++n >= PRINT_MAX_ITEMS) { fputs("...", out); break; }
    }
    putc(')', out);
  } else fprintf(out, "#<%s>", lisp_type_name(v));
}

void lisp_print(FILE *out, val v, int write_mode) { print(out, v, write_mode, 0); }

/* For error messages, which must stay one line (docs/lisp.md, Errors): what lisp_print writes, with
 * a newline as \n and the other control bytes as \xNN. A message displayed as it is (error's first
 * argument, a symbol's name) could split the line, and the second part read as a line of its own
 * (make stress's fuzzer: "lure: with-irritant" from a string the mutation broke across lines). */
void lisp_print_error(FILE *out, val v, int write_mode) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) {
    fputs("(unprintable)", out);
    return;
  }
  print(m, v, write_mode, 0);
  if (fclose(m) != 0 || !buf) {
    free(buf);
    fputs("(unprintable)", out);
    return;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)buf[i];
    if (c == '\n') fputs("\\n", out);
    else if ((c < 0x20 && c != '\t') || c == 0x7f) fprintf(out, "\\x%02x", c);
    else putc(c, out);
  }
  free(buf);
}
