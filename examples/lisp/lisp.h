/* A small Lisp on heapkit's collector: the shared definitions.
 *
 * Values are machine words. A heap object is an 8-byte aligned pointer (low three bits clear) into
 * the GC heap; every other word with one of the low three bits set is an immediate the collector
 * ignores, so integers and constants cost no allocation and need no tracing:
 *   ...xxx1   fixnum (63-bit two's complement, shifted left by one)
 *   ...x110   constants: #f, #t, the unspecified value, "unbound", end of file
 *   ...x010   a primitive procedure (index into the primitive table)
 *   NULL      the empty list
 *
 * The rules that keep the interpreter correct under a moving collector (docs/lisp.md):
 *  1. Every C local that holds a heap value across a call that may allocate is in an HK_GC_ROOTS
 *     frame. A callee's parameters are its own locals: it roots them itself.
 *  2. Never compute an address inside an object and then allocate (`o->car = cons(...)` may store
 *     into the old copy): allocate into a rooted local first, then store.
 *  3. Every store into an existing object goes through HK_GC_WRITE / lisp_write_barrier.
 *  4. Arguments of procedure calls live on the value stack (lisp_stack), which the root callback
 *     visits: primitives receive argv pointing into it and must re-read argv[i] after allocating.
 */
#ifndef LISP_H
#define LISP_H
#include <heapkit.h>
#include <stdint.h>
#include <stdio.h>

typedef void *val;

/* ---- immediates ---- */
#define LISP_NIL ((val)0)
#define LISP_CONST(k) ((val)(((uintptr_t)(k) << 3) | 6))
#define LISP_FALSE LISP_CONST(0)
#define LISP_TRUE LISP_CONST(1)
#define LISP_UNSPEC LISP_CONST(2)
#define LISP_UNBOUND LISP_CONST(3)
#define LISP_EOF LISP_CONST(4)
#define LISP_BOOL(c) ((c) ? LISP_TRUE : LISP_FALSE)

#define LISP_FIXNUM_MAX (INT64_MAX >> 1)
#define LISP_FIXNUM_MIN (INT64_MIN >> 1)
static inline int is_fixnum(val v) { return ((uintptr_t)v & 1) != 0; }
static inline int64_t fixnum_value(val v) { return (int64_t)(intptr_t)v >> 1; }
static inline val make_fixnum(int64_t n) { return (val)(((uintptr_t)n << 1) | 1); }

static inline int is_prim(val v) { return ((uintptr_t)v & 7) == 2; }
static inline unsigned prim_index(val v) { return (unsigned)((uintptr_t)v >> 3); }
static inline val make_prim(unsigned i) { return (val)(((uintptr_t)i << 3) | 2); }

/* ---- heap objects ---- */
typedef struct lisp_cons { val car, cdr; } lisp_cons;
typedef struct lisp_string { size_t len; char bytes[]; } lisp_string;    /* pointer-free; NUL-terminated */
typedef struct lisp_symbol { val name, value; } lisp_symbol;             /* name: a string; value: global binding */
typedef struct lisp_vector { size_t len; val items[]; } lisp_vector;     /* every item is a slot */
typedef struct lisp_closure { val params, body, env, name; } lisp_closure; /* traced by a function */
/* One lexical frame: vars and vals are parallel lists; define prepends to both. */
typedef struct lisp_env { val parent, vars, vals; } lisp_env;

extern hk_gc_type T_CONS, T_STRING, T_SYMBOL, T_VECTOR, T_CLOSURE, T_ENV;
extern hk_gc_mutator *M; /* the interpreter is single-threaded: one mutator */
extern hk_gc_heap *H;

static inline int is_heap(val v) { return v != NULL && ((uintptr_t)v & 7) == 0; }
static inline int has_type(val v, hk_gc_type t) { return is_heap(v) && hk_gc_object_type(v) == t; }
#define is_pair(v) has_type((v), T_CONS)
#define is_string(v) has_type((v), T_STRING)
#define is_symbol(v) has_type((v), T_SYMBOL)
#define is_vector(v) has_type((v), T_VECTOR)
#define is_closure(v) has_type((v), T_CLOSURE)
#define CONS(v) ((lisp_cons *)(v))
#define STR(v) ((lisp_string *)(v))
#define SYM(v) ((lisp_symbol *)(v))
#define VEC(v) ((lisp_vector *)(v))
#define CLO(v) ((lisp_closure *)(v))
#define ENV(v) ((lisp_env *)(v))
#define CAR(v) (CONS(v)->car)
#define CDR(v) (CONS(v)->cdr)

/* ---- objects (obj.c) ---- */
int lisp_heap_init(const hk_gc_options *opts); /* HK_OK or the error of hk_gc_heap_create */
void lisp_heap_fini(void);
val cons(val car, val cdr);
val make_string(const char *bytes, size_t len);
val make_vector(size_t len, val fill);
val make_closure(val params, val body, val env, val name);
val make_env(val parent, val vars, val vals);
val intern(const char *name, size_t len);
val intern_cstr(const char *name);
/* Elements of a proper list; -1 for an improper list, -2 for a circular one. Never allocates. */
long lisp_list_length(val l);
/* Well-known symbols, kept as global roots. */
extern val S_QUOTE, S_IF, S_DEFINE, S_LAMBDA, S_LET, S_SET, S_BEGIN, S_COND, S_ELSE, S_AND, S_OR;

/* ---- the value stack (obj.c): procedure arguments, visited by the root callback ---- */
#define LISP_STACK_SIZE 65536
extern val *lisp_stack;
extern size_t lisp_sp;
void lisp_push(val v);

/* ---- errors (main.c): print "error: ..." and unwind to the top level ---- */
_Noreturn void lisp_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, followed by ": " and the value v as `write` prints it. */
_Noreturn void lisp_error_with(val v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Unwind to the top level after the caller printed its own "error: ..." line. */
_Noreturn void lisp_raise(void);
/* "error: <who>: expected <expected>, got <got>" */
_Noreturn void lisp_type_error(const char *who, const char *expected, val got);

/* ---- reader (read.c) ---- */
typedef struct lisp_reader { FILE *in; int line; } lisp_reader;
val lisp_read(lisp_reader *r); /* LISP_EOF at end of input */

/* ---- printer (print.c) ---- */
void lisp_print(FILE *out, val v, int write_mode);
/* lisp_print for an error line: newlines and control bytes escaped, so the message stays one line. */
void lisp_print_error(FILE *out, val v, int write_mode);
const char *lisp_type_name(val v);

/* ---- evaluator (eval.c) ---- */
val lisp_eval(val x, val env);
val lisp_apply(val f, size_t base, size_t argc); /* arguments at lisp_stack[base..base+argc) */
extern unsigned lisp_depth;       /* nested evaluations, for messages */
extern char *lisp_stack_base;     /* the C stack at the top level */
extern size_t lisp_stack_budget;  /* C stack bytes evaluation may use below lisp_stack_base */

/* ---- primitives (prims.c) ---- */
typedef val (*lisp_prim_fn)(val *argv, int argc);
typedef struct lisp_prim { const char *name; int min_args, max_args; lisp_prim_fn fn; } lisp_prim; /* max -1 = any */
extern const lisp_prim lisp_prims[];
extern const unsigned lisp_prim_count;
void lisp_define_prims(void);
int lisp_equal(val a, val b, int depth);

#endif
