/* Object types, constructors, the symbol table and the value stack: everything that allocates or
 * that the collector must know about. */
#include "lisp.h"
#include <stdlib.h>
#include <string.h>

hk_gc_type T_CONS, T_STRING, T_SYMBOL, T_VECTOR, T_CLOSURE, T_ENV;
hk_gc_mutator *M;
hk_gc_heap *H;
val S_QUOTE, S_IF, S_DEFINE, S_LAMBDA, S_LET, S_SET, S_BEGIN, S_COND, S_ELSE, S_AND, S_OR;

val *lisp_stack;
size_t lisp_sp;

/* The symbol table lives in malloc'd memory and holds symbols strongly (symbols are never
 * collected), so it is a root set: the root callback visits every slot. The name's hash is kept
 * beside the pointer because a root callback must not read heap objects (they may be half-moved),
 * and growing the table must not either. */
typedef struct symtab_entry { val sym; uint64_t hash; } symtab_entry;
static symtab_entry *symtab;
static size_t symtab_cap, symtab_count;

static void *lisp_alloc(hk_gc_type t, size_t size) {
  void *p = hk_gc_alloc(M, t, size);
  if (!p) lisp_error("out of memory (heap limit reached)");
  return p;
}

/* ---- type descriptions ---- */

static size_t string_size(const void *o) {
  return (sizeof(lisp_string) + ((const lisp_string *)o)->len + 1 + 7) & ~(size_t)7;
}
static size_t vector_size(const void *o) {
  return sizeof(lisp_vector) + ((const lisp_vector *)o)->len * sizeof(val);
}
/* Closures use a trace function instead of a layout, so both ways of describing a type are used. */
static void closure_trace(void *o, hk_gc_visitor *v) {
  lisp_closure *c = o;
  HK_GC_VISIT(v, c->params);
  HK_GC_VISIT(v, c->body);
  HK_GC_VISIT(v, c->env);
  HK_GC_VISIT(v, c->name);
}

static void roots(hk_gc_visitor *v, void *data) {
  (void)data;
  for (size_t i = 0; i < symtab_cap; i++)
    if (symtab[i].sym) hk_gc_visit(v, &symtab[i].sym);
  for (size_t i = 0; i < lisp_sp; i++) hk_gc_visit(v, &lisp_stack[i]);
}

static int reg(const hk_gc_type_desc *d, hk_gc_type *out) {
  int rc = hk_gc_type_register(H, d, out);
  if (rc != HK_OK) fprintf(stderr, "lisp: cannot register type %s: %s\n", d->name, hk_strerror(rc));
  return rc;
}

static val *const well_known[] = {&S_QUOTE, &S_IF, &S_DEFINE, &S_LAMBDA, &S_LET, &S_SET,
                                  &S_BEGIN, &S_COND, &S_ELSE, &S_AND, &S_OR};
static const char *const well_known_names[] = {"quote", "if", "define", "lambda", "let", "set!",
                                               "begin", "cond", "else", "and", "or"};

int lisp_heap_init(const hk_gc_options *opts) {
  int rc = hk_gc_heap_create(opts, &H, &M);
  if (rc != HK_OK) return rc;
  const hk_gc_type_desc cons_d = {.name = "cons", .size = sizeof(lisp_cons), .pointer_mask = 0x3};
  const hk_gc_type_desc str_d = {.name = "string", .size_of = string_size, .flags = HK_GC_TYPE_NO_POINTERS};
  const hk_gc_type_desc sym_d = {.name = "symbol", .size = sizeof(lisp_symbol), .pointer_mask = 0x3};
  const hk_gc_type_desc vec_d = {.name = "vector", .size_of = vector_size, .tail_start = 1,
                                 .flags = HK_GC_TYPE_TAIL_POINTERS};
  const hk_gc_type_desc clo_d = {.name = "closure", .size = sizeof(lisp_closure), .trace = closure_trace};
  const hk_gc_type_desc env_d = {.name = "env", .size = sizeof(lisp_env), .pointer_mask = 0x7};
  if ((rc = reg(&cons_d, &T_CONS)) || (rc = reg(&str_d, &T_STRING)) || (rc = reg(&sym_d, &T_SYMBOL)) ||
      (rc = reg(&vec_d, &T_VECTOR)) || (rc = reg(&clo_d, &T_CLOSURE)) || (rc = reg(&env_d, &T_ENV)))
    return rc;
  lisp_stack = calloc(LISP_STACK_SIZE, sizeof(val));
  symtab_cap = 1024;
  symtab = calloc(symtab_cap, sizeof(symtab_entry));
  if (!lisp_stack || !symtab) return HK_ENOMEM;
  hk_gc_set_root_callback(H, roots, NULL);
  for (size_t i = 0; i < sizeof well_known / sizeof well_known[0]; i++) {
    *well_known[i] = NULL;
    if ((rc = hk_gc_root_add(H, well_known[i])) != HK_OK) return rc;
    *well_known[i] = intern_cstr(well_known_names[i]);
  }
  return HK_OK;
}

void lisp_heap_fini(void) {
  for (size_t i = 0; i < sizeof well_known / sizeof well_known[0]; i++) hk_gc_root_remove(H, well_known[i]);
  hk_gc_set_root_callback(H, NULL, NULL);
  hk_gc_heap_destroy(H);
  free(lisp_stack);
  free(symtab);
  lisp_stack = NULL;
  symtab = NULL;
  symtab_cap = symtab_count = 0;
}

void lisp_push(val v) {
  if (lisp_sp >= LISP_STACK_SIZE) lisp_error("value stack overflow (too many pending arguments)");
  lisp_stack[lisp_sp++] = v;
}

/* ---- constructors: each roots its arguments, because the allocation may move them ---- */

val cons(val car, val cdr) {
  HK_GC_ROOTS(M, car, cdr);
  lisp_cons *c = lisp_alloc(T_CONS, sizeof *c);
  c->car = car; /* a fresh object: no barrier needed */
  c->cdr = cdr;
  return c;
}

val make_string(const char *bytes, size_t len) {
  if (len > ((size_t)1 << 40)) lisp_error("string too long (%zu bytes)", len);
  lisp_string *s = hk_gc_alloc_data(M, T_STRING, sizeof *s + len + 1);
  if (!s) lisp_error("out of memory (heap limit reached)");
  s->len = len;
  if (bytes) memcpy(s->bytes, bytes, len); /* bytes must not point into the GC heap */
  s->bytes[len] = 0;
  return s;
}

val make_vector(size_t len, val fill) {
  HK_GC_ROOTS(M, fill);
  if (len > ((size_t)1 << 32)) lisp_error("vector too long (%zu elements)", len);
  lisp_vector *v = lisp_alloc(T_VECTOR, sizeof *v + len * sizeof(val));
  v->len = len;
  for (size_t i = 0; i < len; i++) v->items[i] = fill;
  return v;
}

val make_closure(val params, val body, val env, val name) {
  HK_GC_ROOTS(M, params, body, env, name);
  lisp_closure *c = lisp_alloc(T_CLOSURE, sizeof *c);
  c->params = params;
  c->body = body;
  c->env = env;
  c->name = name;
  return c;
}

val make_env(val parent, val vars, val vals) {
  HK_GC_ROOTS(M, parent, vars, vals);
  lisp_env *e = lisp_alloc(T_ENV, sizeof *e);
  e->parent = parent;
  e->vars = vars;
  e->vals = vals;
  return e;
}

/* ---- interning ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static void symtab_grow(void) {
  size_t ncap = symtab_cap * 2;
  symtab_entry *n = calloc(ncap, sizeof *n);
  if (!n) lisp_error("out of memory (symbol table)");
  for (size_t i = 0; i < symtab_cap; i++) {
    if (!symtab[i].sym) continue;
    size_t j = symtab[i].hash & (ncap - 1);
    while (n[j].sym) j = (j + 1) & (ncap - 1);
    n[j] = symtab[i];
  }
  free(symtab); /* no safepoint in between: the collector never sees the table half-copied */
  symtab = n;
  symtab_cap = ncap;
}

val intern(const char *name, size_t len) {
  uint64_t h = hash_bytes(name, len);
  size_t j = h & (symtab_cap - 1);
  for (; symtab[j].sym; j = (j + 1) & (symtab_cap - 1)) {
    lisp_string *s = SYM(symtab[j].sym)->name;
    if (symtab[j].hash == h && s->len == len && memcmp(s->bytes, name, len) == 0) return symtab[j].sym;
  }
  val str = make_string(name, len);
  HK_GC_ROOTS(M, str);
  val sym = lisp_alloc(T_SYMBOL, sizeof(lisp_symbol));
  SYM(sym)->name = str;
  SYM(sym)->value = LISP_UNBOUND;
  if (2 * (symtab_count + 1) > symtab_cap) symtab_grow();
  j = h & (symtab_cap - 1);
  while (symtab[j].sym) j = (j + 1) & (symtab_cap - 1);
  symtab[j].sym = sym;
  symtab[j].hash = h;
  symtab_count++;
  return sym;
}

val intern_cstr(const char *name) { return intern(name, strlen(name)); }

long lisp_list_length(val l) {
  long n = 0;
  val slow = l;
  while (is_pair(l)) { /* l moves two cells per step, slow one: they meet only on a cycle */
    l = CDR(l);
    n++;
    if (!is_pair(l)) break;
    l = CDR(l);
    n++;
    slow = CDR(slow);
    if (l == slow) return -2;
  }
  return l == LISP_NIL ? n : -1;
}
