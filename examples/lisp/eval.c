/* The evaluator: a direct S-expression walker with proper tail calls (the body of a closure, the
 * branches of if/cond, the last form of begin/let/and/or loop instead of recursing). */
#include "lisp.h"
#include <string.h>

unsigned lisp_depth;

#define list_length lisp_list_length

static _Noreturn void bad_syntax(const char *form, val x) {
  const char *expected = strcmp(form, "lambda") == 0 ? "(lambda params body...)"
                         : strcmp(form, "define") == 0 ? "(define name expr) or (define (name params...) body...)"
                         : strcmp(form, "let") == 0 ? "(let [name] ((var expr)...) body...)"
                         : strcmp(form, "if") == 0 ? "(if test then [else])"
                         : strcmp(form, "set!") == 0 ? "(set! name expr)"
                         : strcmp(form, "quote") == 0 ? "(quote datum)"
                         : strcmp(form, "cond") == 0 ? "(cond (test expr...)... [(else expr...)])"
                         : "a proper list";
  lisp_error_with(x, "bad syntax in %s, expected %s", form, expected);
}

/* ---- environments ---- */

/* The cons cell of env's frames whose car holds sym's value, or NULL when sym is global. */
static val find_cell(val sym, val env) {
  for (; env; env = ENV(env)->parent)
    for (val vars = ENV(env)->vars, vals = ENV(env)->vals; is_pair(vars); vars = CDR(vars), vals = CDR(vals))
      if (CAR(vars) == sym) return vals;
  return NULL;
}

static val lookup(val sym, val env) {
  val cell = find_cell(sym, env);
  if (cell) return CAR(cell);
  val v = SYM(sym)->value;
  if (v == LISP_UNBOUND) lisp_error("unbound variable: %s", STR(SYM(sym)->name)->bytes);
  return v;
}

static void define_var(val sym, val value, val env) {
  HK_GC_ROOTS(M, sym, value, env);
  if (!env) {
    HK_GC_WRITE(M, SYM(sym), value, value);
    return;
  }
  for (val vars = ENV(env)->vars, vals = ENV(env)->vals; is_pair(vars); vars = CDR(vars), vals = CDR(vals))
    if (CAR(vars) == sym) {
      HK_GC_WRITE(M, CONS(vals), car, value);
      return;
    }
  val cell = cons(sym, ENV(env)->vars);
  HK_GC_WRITE(M, ENV(env), vars, cell);
  cell = cons(value, ENV(env)->vals);
  HK_GC_WRITE(M, ENV(env), vals, cell);
}

static void set_var(val sym, val value, val env) {
  val cell = find_cell(sym, env);
  if (cell) {
    HK_GC_WRITE(M, CONS(cell), car, value);
    return;
  }
  if (SYM(sym)->value == LISP_UNBOUND) lisp_error("set! of an unbound variable: %s", STR(SYM(sym)->name)->bytes);
  HK_GC_WRITE(M, SYM(sym), value, value);
}

static void check_params(val params, val form) {
  int n = 0;
  for (; is_pair(params); params = CDR(params)) {
    if (!is_symbol(CAR(params)) || ++n > 10000) bad_syntax("lambda", form);
  }
  if (params != LISP_NIL && !is_symbol(params)) bad_syntax("lambda", form);
}

/* A new frame binding f's parameters to the arguments at lisp_stack[base..base+argc). */
static val bind_args(val f, size_t base, size_t argc) {
  val vals = NULL, tail = NULL, cell = NULL, params = NULL;
  HK_GC_ROOTS(M, f, vals, tail, cell, params);
  size_t need = 0;
  params = CLO(f)->params;
  for (; is_pair(params); params = CDR(params)) need++;
  int rest = params != LISP_NIL;
  if (argc < need || (!rest && argc > need)) {
    const char *name = CLO(f)->name ? STR(SYM(CLO(f)->name)->name)->bytes : "anonymous procedure";
    lisp_error("wrong number of arguments to %s: expected %s%zu, got %zu", name, rest ? "at least " : "", need, argc);
  }
  /* The values list is built front to back; a rest parameter gets the remaining arguments as
   * the list's tail, so vars and vals stay parallel. */
  for (size_t i = 0; i < argc; i++) {
    cell = cons(lisp_stack[base + i], NULL);
    if (i == need && rest) {
      val restlist = cell;
      HK_GC_ROOTS(M, restlist);
      val rtail = cell;
      HK_GC_ROOTS(M, rtail);
      for (size_t j = i + 1; j < argc; j++) {
        cell = cons(lisp_stack[base + j], NULL);
        HK_GC_WRITE(M, CONS(rtail), cdr, cell);
        rtail = cell;
      }
      cell = cons(restlist, NULL);
      break;
    }
    if (!tail) vals = cell;
    else HK_GC_WRITE(M, CONS(tail), cdr, cell);
    tail = cell;
  }
  if (rest && argc == need) cell = cons(NULL, NULL); /* an empty rest list */
  if (rest) {
    if (!tail) vals = cell;
    else HK_GC_WRITE(M, CONS(tail), cdr, cell);
  }
  /* The rest parameter is the final cdr of params: make vars a proper list ending in it. */
  val vars = CLO(f)->params;
  HK_GC_ROOTS(M, vars);
  if (rest) {
    val copy = NULL, ctail = NULL, p = NULL;
    HK_GC_ROOTS(M, copy, ctail, p);
    for (p = vars; is_pair(p); p = CDR(p)) {
      cell = cons(CAR(p), NULL);
      if (!ctail) copy = cell;
      else HK_GC_WRITE(M, CONS(ctail), cdr, cell);
      ctail = cell;
    }
    cell = cons(p, NULL);
    if (!ctail) copy = cell;
    else HK_GC_WRITE(M, CONS(ctail), cdr, cell);
    vars = copy;
  }
  return make_env(CLO(f)->env, vars, vals);
}

/* Evaluates every form of body but the last and returns the last (for the caller's tail loop). */
static val body_tail(val body, val env) {
  HK_GC_ROOTS(M, body, env);
  if (!is_pair(body)) return LISP_UNSPEC;
  for (; is_pair(CDR(body)); body = CDR(body)) lisp_eval(CAR(body), env);
  if (CDR(body) != LISP_NIL) lisp_error("improper list in a body");
  return CAR(body);
}

val lisp_apply(val f, size_t base, size_t argc) {
  HK_GC_ROOTS(M, f);
  if (is_prim(f)) {
    const lisp_prim *p = &lisp_prims[prim_index(f)];
    if ((int)argc < p->min_args || (p->max_args >= 0 && (int)argc > p->max_args))
    {
      if (p->max_args < 0) lisp_error("wrong number of arguments to %s: expected at least %d, got %zu", p->name, p->min_args, argc);
      if (p->max_args == p->min_args) lisp_error("wrong number of arguments to %s: expected %d, got %zu", p->name, p->min_args, argc);
      lisp_error("wrong number of arguments to %s: expected %d to %d, got %zu", p->name, p->min_args, p->max_args, argc);
    }
    val r = p->fn(&lisp_stack[base], (int)argc);
    lisp_sp = base;
    return r;
  }
  if (!is_closure(f)) lisp_type_error("apply", "a procedure", f);
  val env = bind_args(f, base, argc);
  lisp_sp = base;
  HK_GC_ROOTS(M, env);
  val last = body_tail(CLO(f)->body, env);
  return lisp_eval(last, env);
}

#define SYNTAX(cond, name) do { if (!(cond)) bad_syntax(name, x); } while (0)

val lisp_eval(val x, val env) {
  val op = NULL, f = NULL, rest = NULL, v = NULL;
  HK_GC_ROOTS(M, x, env, op, f, rest, v);
  lisp_depth++;
  /* Deep recursion is an error, not a C stack overflow: compare the C stack in use (measured from
   * the top level) with the budget main() computed from the stack limit. */
  if ((size_t)(lisp_stack_base - (char *)&op) > lisp_stack_budget)
    lisp_error("recursion too deep (the C stack budget of the evaluator is used up)");
  for (;;) {
    if (is_symbol(x)) { v = lookup(x, env); break; }
    if (!is_pair(x)) {
      if (x == LISP_NIL) lisp_error("cannot evaluate the empty list ()");
      v = x; /* integers, strings, vectors, booleans evaluate to themselves */
      break;
    }
    op = CAR(x);
    int n = list_length(x);
    if (n < 0) bad_syntax("a combination", x);
    if (op == S_QUOTE) {
      SYNTAX(n == 2, "quote");
      v = CAR(CDR(x));
      break;
    }
    if (op == S_IF) {
      SYNTAX(n == 3 || n == 4, "if");
      v = lisp_eval(CAR(CDR(x)), env);
      if (v != LISP_FALSE) x = CAR(CDR(CDR(x)));
      else if (n == 4) x = CAR(CDR(CDR(CDR(x))));
      else { v = LISP_UNSPEC; break; }
      continue;
    }
    if (op == S_DEFINE) {
      SYNTAX(n >= 3, "define");
      rest = CAR(CDR(x));
      if (is_symbol(rest)) {
        SYNTAX(n == 3, "define");
        v = lisp_eval(CAR(CDR(CDR(x))), env);
        if (is_closure(v) && !CLO(v)->name) HK_GC_WRITE(M, CLO(v), name, rest);
      } else {
        SYNTAX(is_pair(rest) && is_symbol(CAR(rest)), "define");
        check_params(CDR(rest), x);
        v = make_closure(CDR(rest), CDR(CDR(x)), env, CAR(rest));
        rest = CAR(rest);
      }
      define_var(rest, v, env);
      v = rest; /* (define x ...) evaluates to the symbol, as in many Lisps */
      break;
    }
    if (op == S_LAMBDA) {
      SYNTAX(n >= 3, "lambda");
      check_params(CAR(CDR(x)), x);
      v = make_closure(CAR(CDR(x)), CDR(CDR(x)), env, NULL);
      break;
    }
    if (op == S_SET) {
      SYNTAX(n == 3 && is_symbol(CAR(CDR(x))), "set!");
      v = lisp_eval(CAR(CDR(CDR(x))), env);
      set_var(CAR(CDR(x)), v, env);
      v = LISP_UNSPEC;
      break;
    }
    if (op == S_BEGIN) {
      if (n == 1) { v = LISP_UNSPEC; break; }
      x = body_tail(CDR(x), env);
      continue;
    }
    if (op == S_LET) {
      SYNTAX(n >= 3, "let");
      val name = NULL, bindings = CAR(CDR(x)), body = CDR(CDR(x));
      HK_GC_ROOTS(M, name, bindings, body);
      if (is_symbol(bindings)) { /* named let: (let loop ((v e)...) body...) */
        SYNTAX(n >= 4, "let");
        name = bindings;
        bindings = CAR(body);
        body = CDR(body);
      }
      int nb = list_length(bindings);
      SYNTAX(nb >= 0, "let");
      size_t base = lisp_sp;
      val vars = NULL, vtail = NULL, cell = NULL;
      HK_GC_ROOTS(M, vars, vtail, cell);
      for (rest = bindings; is_pair(rest); rest = CDR(rest)) {
        val b = CAR(rest);
        SYNTAX(is_pair(b) && is_symbol(CAR(b)) && list_length(b) == 2, "let");
        cell = cons(CAR(b), NULL);
        if (!vtail) vars = cell;
        else HK_GC_WRITE(M, CONS(vtail), cdr, cell);
        vtail = cell;
        v = lisp_eval(CAR(CDR(CAR(rest))), env);
        lisp_push(v);
      }
      if (name) { /* the loop procedure is bound in a frame of its own, which its closure captures */
        env = make_env(env, NULL, NULL);
        f = make_closure(vars, body, env, name);
        define_var(name, f, env);
      } else {
        f = make_closure(vars, body, env, NULL);
      }
      env = bind_args(f, base, lisp_sp - base);
      lisp_sp = base;
      x = body_tail(body, env);
      continue;
    }
    if (op == S_COND) {
      for (rest = CDR(x); rest; rest = CDR(rest)) {
        val clause = CAR(rest);
        SYNTAX(is_pair(clause) && list_length(clause) >= 1, "cond");
        if (CAR(clause) == S_ELSE) {
          SYNTAX(CDR(rest) == LISP_NIL && CDR(clause) != LISP_NIL, "cond");
          break;
        }
        v = lisp_eval(CAR(CAR(rest)), env);
        if (v != LISP_FALSE) break;
      }
      if (!rest) { v = LISP_UNSPEC; break; }
      if (CDR(CAR(rest)) == LISP_NIL) break; /* (cond (test)) yields the test's value */
      x = body_tail(CDR(CAR(rest)), env);
      continue;
    }
    if (op == S_AND || op == S_OR) {
      int is_and = op == S_AND;
      v = LISP_BOOL(is_and);
      if (n == 1) break;
      for (rest = CDR(x); is_pair(CDR(rest)); rest = CDR(rest)) {
        v = lisp_eval(CAR(rest), env);
        if ((v == LISP_FALSE) == is_and) break;
      }
      if (is_pair(CDR(rest))) break; /* short-circuited */
      x = CAR(rest);
      continue;
    }
    /* An application: the operator, then the arguments onto the value stack, left to right. */
    f = lisp_eval(op, env);
    size_t base = lisp_sp;
    for (rest = CDR(x); rest; rest = CDR(rest)) {
      v = lisp_eval(CAR(rest), env);
      lisp_push(v);
    }
    size_t argc = lisp_sp - base;
    if (!is_closure(f)) {
      if (!is_prim(f)) {
        lisp_error_with(f, "not a procedure");
      }
      v = lisp_apply(f, base, argc);
      break;
    }
    env = bind_args(f, base, argc);
    lisp_sp = base;
    x = body_tail(CLO(f)->body, env);
  }
  lisp_depth--;
  return v;
}
