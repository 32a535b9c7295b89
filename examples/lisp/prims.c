/* Primitive procedures. Each receives argv pointing into the value stack (a root): after anything
 * that allocates, argv[i] holds the moved object, so read it again instead of keeping a copy. */
#include "lisp.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int64_t arg_int(const char *who, val v) {
  if (!is_fixnum(v)) lisp_type_error(who, "an integer", v);
  return fixnum_value(v);
}
static val checked_int(const char *who, int64_t n, int overflowed) {
  if (overflowed || n > LISP_FIXNUM_MAX || n < LISP_FIXNUM_MIN) lisp_error("%s: integer overflow", who);
  return make_fixnum(n);
}
static val arg_pair(const char *who, val v) {
  if (!is_pair(v)) lisp_type_error(who, "a pair", v);
  return v;
}
static size_t arg_index(const char *who, val v, size_t len) {
  int64_t i = arg_int(who, v);
  if (i < 0 || (uint64_t)i >= len) lisp_error("%s: index %" PRId64 " out of range (length %zu)", who, i, len);
  return (size_t)i;
}
static lisp_string *arg_string(const char *who, val v) {
  if (!is_string(v)) lisp_type_error(who, "a string", v);
  return STR(v);
}
static lisp_vector *arg_vector(const char *who, val v) {
  if (!is_vector(v)) lisp_type_error(who, "a vector", v);
  return VEC(v);
}
/* Length of a proper list, or an error naming who. */
static size_t arg_list_length(const char *who, val l) {
  long n = lisp_list_length(l);
  if (n == -2) lisp_error("%s: circular list", who);
  if (n < 0) lisp_type_error(who, "a proper list", l);
  return (size_t)n;
}

/* ---- arithmetic ---- */

static val p_add(val *a, int n) {
  int64_t r = 0;
  int o = 0;
  for (int i = 0; i < n; i++) o |= __builtin_add_overflow(r, arg_int("+", a[i]), &r);
  return checked_int("+", r, o);
}
static val p_mul(val *a, int n) {
  int64_t r = 1;
  int o = 0;
  for (int i = 0; i < n; i++) o |= __builtin_mul_overflow(r, arg_int("*", a[i]), &r);
  return checked_int("*", r, o);
}
static val p_sub(val *a, int n) {
  int64_t r = arg_int("-", a[0]);
  int o = 0;
  if (n == 1) return checked_int("-", -r, 0);
  for (int i = 1; i < n; i++) o |= __builtin_sub_overflow(r, arg_int("-", a[i]), &r);
  return checked_int("-", r, o);
}
static int64_t divisor(const char *who, val v) {
  int64_t d = arg_int(who, v);
  if (d == 0) lisp_error("%s: division by zero", who);
  return d;
}
static val p_quotient(val *a, int n) { int64_t d = divisor("quotient", a[1]); return checked_int("quotient", arg_int("quotient", a[0]) / d, 0); }
static val p_remainder(val *a, int n) { int64_t d = divisor("remainder", a[1]); return make_fixnum(arg_int("remainder", a[0]) % d); }
static val p_modulo(val *a, int n) {
  int64_t d = divisor("modulo", a[1]), m = arg_int("modulo", a[0]) % d;
  if (m != 0 && (m < 0) != (d < 0)) m += d;
  return make_fixnum(m);
}
static val p_abs(val *a, int n) { int64_t v = arg_int("abs", a[0]); return checked_int("abs", v < 0 ? -v : v, 0); }
static val p_min(val *a, int n) {
  int64_t r = arg_int("min", a[0]);
  for (int i = 1; i < n; i++) { int64_t v = arg_int("min", a[i]); if (v < r) r = v; }
  return make_fixnum(r);
}
static val p_max(val *a, int n) {
  int64_t r = arg_int("max", a[0]);
  for (int i = 1; i < n; i++) { int64_t v = arg_int("max", a[i]); if (v > r) r = v; }
  return make_fixnum(r);
}
#define COMPARE(fname, name, op)                                                    \
  static val fname(val *a, int n) {                                                 \
    for (int i = 0; i < n; i++) arg_int(name, a[i]);                                \
    for (int i = 0; i + 1 < n; i++)                                                 \
      if (!(fixnum_value(a[i]) op fixnum_value(a[i + 1]))) return LISP_FALSE;       \
    return LISP_TRUE;                                                               \
  }
COMPARE(p_num_eq, "=", ==)
COMPARE(p_lt, "<", <)
COMPARE(p_gt, ">", >)
COMPARE(p_le, "<=", <=)
COMPARE(p_ge, ">=", >=)

/* ---- pairs and lists ---- */

static val p_cons(val *a, int n) { return cons(a[0], a[1]); }
static val p_car(val *a, int n) { return CAR(arg_pair("car", a[0])); }
static val p_cdr(val *a, int n) { return CDR(arg_pair("cdr", a[0])); }
static val p_set_car(val *a, int n) {
  HK_GC_WRITE(M, CONS(arg_pair("set-car!", a[0])), car, a[1]);
  return LISP_UNSPEC;
}
static val p_set_cdr(val *a, int n) {
  HK_GC_WRITE(M, CONS(arg_pair("set-cdr!", a[0])), cdr, a[1]);
  return LISP_UNSPEC;
}
static val p_list(val *a, int n) {
  val l = NULL;
  HK_GC_ROOTS(M, l);
  for (int i = n - 1; i >= 0; i--) l = cons(a[i], l);
  return l;
}
static val p_length(val *a, int n) { return make_fixnum((int64_t)arg_list_length("length", a[0])); }
static val p_reverse(val *a, int n) {
  arg_list_length("reverse", a[0]);
  val r = NULL, p = a[0];
  HK_GC_ROOTS(M, r, p);
  for (; p; p = CDR(p)) r = cons(CAR(p), r);
  return r;
}
static val p_append(val *a, int n) {
  if (n == 0) return NULL;
  val head = NULL, tail = NULL, p = NULL, cell = NULL;
  HK_GC_ROOTS(M, head, tail, p, cell);
  for (int i = 0; i < n - 1; i++) {
    arg_list_length("append", a[i]);
    for (p = a[i]; p; p = CDR(p)) {
      cell = cons(CAR(p), NULL);
      if (!tail) head = cell;
      else HK_GC_WRITE(M, CONS(tail), cdr, cell);
      tail = cell;
    }
  }
  if (!tail) return a[n - 1];
  HK_GC_WRITE(M, CONS(tail), cdr, a[n - 1]);
  return head;
}
static val p_list_ref(val *a, int n) {
  size_t len = arg_list_length("list-ref", a[0]), i = arg_index("list-ref", a[1], len);
  val p = a[0];
  while (i--) p = CDR(p);
  return CAR(p);
}
static val p_map(val *a, int n) {
  arg_list_length("map", a[1]);
  val head = NULL, tail = NULL, p = a[1], cell = NULL;
  HK_GC_ROOTS(M, head, tail, p, cell);
  for (; is_pair(p); p = CDR(p)) {
    size_t base = lisp_sp;
    lisp_push(CAR(p));
    cell = lisp_apply(a[0], base, 1);
    cell = cons(cell, NULL);
    if (!tail) head = cell;
    else HK_GC_WRITE(M, CONS(tail), cdr, cell);
    tail = cell;
  }
  return head;
}
static val p_for_each(val *a, int n) {
  arg_list_length("for-each", a[1]);
  val p = a[1];
  HK_GC_ROOTS(M, p);
  for (; is_pair(p); p = CDR(p)) {
    size_t base = lisp_sp;
    lisp_push(CAR(p));
    lisp_apply(a[0], base, 1);
  }
  return LISP_UNSPEC;
}
static val p_apply(val *a, int n) {
  arg_list_length("apply", a[n - 1]);
  size_t base = lisp_sp;
  for (int i = 1; i < n - 1; i++) lisp_push(a[i]);
  for (val p = a[n - 1]; p; p = CDR(p)) lisp_push(CAR(p)); /* pushing never allocates */
  return lisp_apply(a[0], base, lisp_sp - base);
}

/* ---- predicates ---- */

/* depth counts the C recursion (cars and vector items) only: counting the cdrs too made a list of
 * more than 10,000 elements "nested too deeply". A cycle through the cdrs is found by a pointer
 * moving at half speed along each list (nothing here allocates, so nothing moves); only two
 * circular lists make an error: against a proper one the walk ends where that one does. */
int lisp_equal(val x, val y, int depth) {
  if (depth > 10000) lisp_error("equal?: structure nested too deeply (circular?)");
  val sx = x, sy = y;
  int cx = 0, cy = 0;
  for (unsigned long steps = 0;; steps++) {
    if (x == y) return 1;
    if (is_pair(x) && is_pair(y)) {
      if (!lisp_equal(CAR(x), CAR(y), depth + 1)) return 0;
      x = CDR(x);
      y = CDR(y);
      if (steps & 1) sx = CDR(sx), sy = CDR(sy);
      cx |= x == sx && is_pair(x);
      cy |= y == sy && is_pair(y);
      if (cx && cy) lisp_error("equal?: circular lists");
      continue;
    }
    if (is_string(x) && is_string(y))
      return STR(x)->len == STR(y)->len && memcmp(STR(x)->bytes, STR(y)->bytes, STR(x)->len) == 0;
    if (is_vector(x) && is_vector(y)) {
      if (VEC(x)->len != VEC(y)->len) return 0;
      for (size_t i = 0; i < VEC(x)->len; i++)
        if (!lisp_equal(VEC(x)->items[i], VEC(y)->items[i], depth + 1)) return 0;
      return 1;
    }
    return 0;
  }
}

static val p_null(val *a, int n) { return LISP_BOOL(a[0] == LISP_NIL); }
static val p_pair(val *a, int n) { return LISP_BOOL(is_pair(a[0])); }
static val p_listp(val *a, int n) { return LISP_BOOL(lisp_list_length(a[0]) >= 0); }
static val p_number(val *a, int n) { return LISP_BOOL(is_fixnum(a[0])); }
static val p_stringp(val *a, int n) { return LISP_BOOL(is_string(a[0])); }
static val p_symbolp(val *a, int n) { return LISP_BOOL(is_symbol(a[0])); }
static val p_vectorp(val *a, int n) { return LISP_BOOL(is_vector(a[0])); }
static val p_procedurep(val *a, int n) { return LISP_BOOL(is_prim(a[0]) || is_closure(a[0])); }
static val p_booleanp(val *a, int n) { return LISP_BOOL(a[0] == LISP_TRUE || a[0] == LISP_FALSE); }
static val p_eq(val *a, int n) { return LISP_BOOL(a[0] == a[1]); }
static val p_equal(val *a, int n) { return LISP_BOOL(lisp_equal(a[0], a[1], 0)); }
static val p_not(val *a, int n) { return LISP_BOOL(a[0] == LISP_FALSE); }

/* ---- vectors ---- */

static val p_make_vector(val *a, int n) {
  int64_t len = arg_int("make-vector", a[0]);
  if (len < 0) lisp_error("make-vector: negative length %" PRId64, len);
  return make_vector((size_t)len, n > 1 ? a[1] : make_fixnum(0));
}
static val p_vector(val *a, int n) {
  val v = make_vector((size_t)n, NULL);
  for (int i = 0; i < n; i++) VEC(v)->items[i] = a[i]; /* fresh: no barrier */
  return v;
}
static val p_vector_ref(val *a, int n) {
  lisp_vector *v = arg_vector("vector-ref", a[0]);
  return v->items[arg_index("vector-ref", a[1], v->len)];
}
static val p_vector_set(val *a, int n) {
  lisp_vector *v = arg_vector("vector-set!", a[0]);
  size_t i = arg_index("vector-set!", a[1], v->len);
  hk_gc_write_barrier(M, v);
  v->items[i] = a[2];
  return LISP_UNSPEC;
}
static val p_vector_length(val *a, int n) { return make_fixnum((int64_t)arg_vector("vector-length", a[0])->len); }
static val p_vector_to_list(val *a, int n) {
  size_t len = arg_vector("vector->list", a[0])->len;
  val l = NULL;
  HK_GC_ROOTS(M, l);
  for (size_t i = len; i-- > 0;) l = cons(VEC(a[0])->items[i], l);
  return l;
}
static val p_list_to_vector(val *a, int n) {
  size_t len = arg_list_length("list->vector", a[0]);
  val v = make_vector(len, NULL);
  size_t i = 0;
  for (val p = a[0]; p; p = CDR(p)) VEC(v)->items[i++] = CAR(p);
  return v;
}

/* ---- strings and symbols ---- */

static val p_string_length(val *a, int n) { return make_fixnum((int64_t)arg_string("string-length", a[0])->len); }
static val p_string_append(val *a, int n) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += arg_string("string-append", a[i])->len;
  val s = make_string(NULL, total);
  size_t off = 0;
  for (int i = 0; i < n; i++) { /* a[i] re-read: the allocation may have moved the arguments */
    memcpy(STR(s)->bytes + off, STR(a[i])->bytes, STR(a[i])->len);
    off += STR(a[i])->len;
  }
  return s;
}
static val p_substring(val *a, int n) {
  size_t len = arg_string("substring", a[0])->len;
  int64_t from = arg_int("substring", a[1]), to = n > 2 ? arg_int("substring", a[2]) : (int64_t)len;
  if (from < 0 || to < from || (uint64_t)to > len)
    lisp_error("substring: range %" PRId64 "..%" PRId64 " out of bounds (length %zu)", from, to, len);
  val s = make_string(NULL, (size_t)(to - from));
  memcpy(STR(s)->bytes, STR(a[0])->bytes + from, (size_t)(to - from));
  return s;
}
static val p_string_eq(val *a, int n) {
  lisp_string *x = arg_string("string=?", a[0]), *y = arg_string("string=?", a[1]);
  return LISP_BOOL(x->len == y->len && memcmp(x->bytes, y->bytes, x->len) == 0);
}
static val p_string_lt(val *a, int n) {
  lisp_string *x = arg_string("string<?", a[0]), *y = arg_string("string<?", a[1]);
  int c = memcmp(x->bytes, y->bytes, x->len < y->len ? x->len : y->len);
  return LISP_BOOL(c < 0 || (c == 0 && x->len < y->len));
}
static val p_number_to_string(val *a, int n) {
  char buf[32];
  int k = snprintf(buf, sizeof buf, "%" PRId64, arg_int("number->string", a[0]));
  return make_string(buf, (size_t)k);
}
static val p_symbol_to_string(val *a, int n) {
  if (!is_symbol(a[0])) lisp_type_error("symbol->string", "a symbol", a[0]);
  val s = make_string(NULL, STR(SYM(a[0])->name)->len);
  memcpy(STR(s)->bytes, STR(SYM(a[0])->name)->bytes, STR(s)->len);
  return s;
}
static val p_string_to_symbol(val *a, int n) {
  /* intern may allocate, and the name must not point into the heap while it does: copy it out. */
  static char *buf;
  static size_t cap;
  lisp_string *s = arg_string("string->symbol", a[0]);
  if (s->len + 1 > cap) {
    char *nb = realloc(buf, s->len + 1);
    if (!nb) lisp_error("out of memory");
    buf = nb;
    cap = s->len + 1;
  }
  memcpy(buf, s->bytes, s->len);
  return intern(buf, s->len);
}

/* ---- output, errors, the collector ---- */

static val p_display(val *a, int n) { lisp_print(stdout, a[0], 0); return LISP_UNSPEC; }
static val p_write(val *a, int n) { lisp_print(stdout, a[0], 1); return LISP_UNSPEC; }
static val p_newline(val *a, int n) { putchar('\n'); return LISP_UNSPEC; }
/* (error message irritant...): "error: message irritant ..." with the irritants as write prints them. */
static val p_error(val *a, int n) {
  fflush(stdout);
  fputs("error: ", stderr);
  lisp_print_error(stderr, a[0], 0);
  for (int i = 1; i < n; i++) {
    fputc(' ', stderr);
    lisp_print_error(stderr, a[i], 1);
  }
  fputc('\n', stderr);
  lisp_raise();
}
static val p_gc(val *a, int n) { hk_gc_collect(M, HK_GC_FULL); return LISP_UNSPEC; }
static val p_gc_minor(val *a, int n) { hk_gc_collect(M, HK_GC_MINOR); return LISP_UNSPEC; }
static val p_gc_verify(val *a, int n) {
  if (hk_gc_verify(M) != HK_OK) lisp_error("gc-verify: the heap failed verification (details above)");
  return LISP_TRUE;
}
static val p_gc_collections(val *a, int n) {
  hk_gc_stats st;
  hk_gc_stats_get(H, &st);
  return make_fixnum((int64_t)(st.minor_collections + st.full_collections));
}
static val p_gc_stats(val *a, int n) { fflush(stdout); hk_gc_stats_print(H, 2); return LISP_UNSPEC; }

const lisp_prim lisp_prims[] = {
    {"+", 0, -1, p_add}, {"-", 1, -1, p_sub}, {"*", 0, -1, p_mul}, {"quotient", 2, 2, p_quotient},
    {"remainder", 2, 2, p_remainder}, {"modulo", 2, 2, p_modulo}, {"abs", 1, 1, p_abs},
    {"min", 1, -1, p_min}, {"max", 1, -1, p_max}, {"=", 1, -1, p_num_eq}, {"<", 1, -1, p_lt},
    {">", 1, -1, p_gt}, {"<=", 1, -1, p_le}, {">=", 1, -1, p_ge},
    {"cons", 2, 2, p_cons}, {"car", 1, 1, p_car}, {"cdr", 1, 1, p_cdr}, {"set-car!", 2, 2, p_set_car},
    {"set-cdr!", 2, 2, p_set_cdr}, {"list", 0, -1, p_list}, {"length", 1, 1, p_length},
    {"reverse", 1, 1, p_reverse}, {"append", 0, -1, p_append}, {"list-ref", 2, 2, p_list_ref},
    {"map", 2, 2, p_map}, {"for-each", 2, 2, p_for_each}, {"apply", 2, -1, p_apply},
    {"null?", 1, 1, p_null}, {"pair?", 1, 1, p_pair}, {"list?", 1, 1, p_listp}, {"number?", 1, 1, p_number},
    {"integer?", 1, 1, p_number}, {"string?", 1, 1, p_stringp}, {"symbol?", 1, 1, p_symbolp},
    {"vector?", 1, 1, p_vectorp}, {"procedure?", 1, 1, p_procedurep}, {"boolean?", 1, 1, p_booleanp},
    {"eq?", 2, 2, p_eq}, {"eqv?", 2, 2, p_eq}, {"equal?", 2, 2, p_equal}, {"not", 1, 1, p_not},
    {"make-vector", 1, 2, p_make_vector}, {"vector", 0, -1, p_vector}, {"vector-ref", 2, 2, p_vector_ref},
    {"vector-set!", 3, 3, p_vector_set}, {"vector-length", 1, 1, p_vector_length},
    {"vector->list", 1, 1, p_vector_to_list}, {"list->vector", 1, 1, p_list_to_vector},
    {"string-length", 1, 1, p_string_length}, {"string-append", 0, -1, p_string_append},
    {"substring", 2, 3, p_substring}, {"string=?", 2, 2, p_string_eq}, {"string<?", 2, 2, p_string_lt},
    {"number->string", 1, 1, p_number_to_string}, {"symbol->string", 1, 1, p_symbol_to_string},
    {"string->symbol", 1, 1, p_string_to_symbol},
    {"display", 1, 1, p_display}, {"write", 1, 1, p_write}, {"newline", 0, 0, p_newline},
    {"error", 1, -1, p_error}, {"gc", 0, 0, p_gc}, {"gc-minor", 0, 0, p_gc_minor},
    {"gc-verify", 0, 0, p_gc_verify}, {"gc-collections", 0, 0, p_gc_collections}, {"gc-stats", 0, 0, p_gc_stats},
};
const unsigned lisp_prim_count = sizeof lisp_prims / sizeof lisp_prims[0];

void lisp_define_prims(void) {
  for (unsigned i = 0; i < lisp_prim_count; i++) {
    val sym = intern_cstr(lisp_prims[i].name);
    HK_GC_WRITE(M, SYM(sym), value, make_prim(i));
  }
}
