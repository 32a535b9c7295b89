/* Random object graphs, mutated and collected (minor and full, and with HEAPKIT_GC_STRESS when the
 * environment sets it), checked against a shadow model kept in malloc memory: after every phase
 * the graph reachable from the roots must match the model object by object (ids, kids, blob
 * bytes), the checksums must agree, and hk_gc_verify must pass.
 *
 * usage: test_gc_graph [ops] [seed] */
#include "gc_test.h"

#include <stdio.h>
#include <stdlib.h>

#define NROOTS 48

typedef struct shadow {
  uint8_t kind; /* 0 none, 1 node, 2 blob */
  uint64_t nkids;
  uint64_t *kids; /* ids, 0 = NULL */
  uint64_t len;
} shadow;

static shadow *sh;
static uint64_t nids = 1, maxids;
static void *roots[NROOTS];
static uint64_t root_ids[NROOTS];
static uint8_t *seen;
static void **stack;
static uint64_t *idstack;

static uint64_t new_id(void) {
  if (nids == maxids) {
    fprintf(stderr, "too many objects\n");
    exit(2);
  }
  return nids++;
}

/* Walk the real graph from the roots; returns false at the first mismatch with the model. */
static bool check_real(uint64_t *count, uint64_t *sum) {
  memset(seen, 0, maxids);
  size_t sp = 0;
  *count = *sum = 0;
  for (int r = 0; r < NROOTS; r++) {
    if (!roots[r]) {
      if (root_ids[r]) return fprintf(stderr, "root %d is NULL, model says %lu\n", r, (unsigned long)root_ids[r]), false;
      continue;
    }
    if (((node *)roots[r])->id != root_ids[r]) return fprintf(stderr, "root %d id mismatch\n", r), false;
    stack[sp++] = roots[r];
  }
  while (sp) {
    void *o = stack[--sp];
    uint64_t id = ((node *)o)->id;
    if (id == 0 || id >= nids) return fprintf(stderr, "bad id %lu\n", (unsigned long)id), false;
    if (seen[id]) continue;
    seen[id] = 1;
    (*count)++;
    *sum += id * 2654435761u;
    hk_gc_type t = hk_gc_object_type(o);
    if (sh[id].kind == 2) {
      blob *b = o;
      if (t != T_BLOB || b->len != sh[id].len || !blob_ok(b)) return fprintf(stderr, "blob %lu corrupt\n", (unsigned long)id), false;
      continue;
    }
    node *n = o;
    if ((t != T_NODE && t != T_NODE_TRACED) || n->nkids != sh[id].nkids)
      return fprintf(stderr, "node %lu corrupt\n", (unsigned long)id), false;
    for (uint64_t k = 0; k < n->nkids; k++) {
      uint64_t want = sh[id].kids[k];
      node *kid = n->kids[k];
      if (!kid) {
        if (want) return fprintf(stderr, "node %lu kid %lu NULL, want %lu\n", (unsigned long)id, (unsigned long)k, (unsigned long)want), false;
        continue;
      }
      if (kid->id != want) return fprintf(stderr, "node %lu kid %lu is %lu, want %lu\n", (unsigned long)id, (unsigned long)k, (unsigned long)kid->id, (unsigned long)want), false;
      stack[sp++] = kid;
    }
  }
  return true;
}

static void check_model(uint64_t *count, uint64_t *sum) {
  memset(seen, 0, maxids);
  size_t sp = 0;
  *count = *sum = 0;
  for (int r = 0; r < NROOTS; r++)
    if (root_ids[r]) idstack[sp++] = root_ids[r];
  while (sp) {
    uint64_t id = idstack[--sp];
    if (seen[id]) continue;
    seen[id] = 1;
    (*count)++;
    *sum += id * 2654435761u;
    if (sh[id].kind == 1)
      for (uint64_t k = 0; k < sh[id].nkids; k++)
        if (sh[id].kids[k]) idstack[sp++] = sh[id].kids[k];
  }
}

static bool check_all(hk_gc_mutator *m) {
  uint64_t c1, s1, c2, s2;
  bool ok = check_real(&c1, &s1);
  check_model(&c2, &s2);
  CHECK_QUIET(ok);
  CHECK_QUIET(c1 == c2 && s1 == s2);
  int v = hk_gc_verify(m);
  CHECK_QUIET(v == HK_OK);
  return ok && c1 == c2 && s1 == s2 && v == HK_OK;
}

/* A random object reachable from the roots (and its id), or NULL. */
static node *pick(void) {
  int r = (int)(rnd() % NROOTS);
  node *n = roots[r];
  int depth = (int)(rnd() % 5);
  while (n && depth-- > 0 && hk_gc_object_type(n) != T_BLOB && n->nkids) {
    node *k = n->kids[rnd() % n->nkids];
    if (!k) break;
    n = k;
  }
  return n;
}

/* Store obj (id) into a random slot: a root or a kid of a reachable node. */
#define KEEP 3000 /* roots[0] is a large node whose kids keep a big part of the graph alive */

static void store(hk_gc_mutator *m, void *obj, uint64_t id) {
  if (rnd() % 2 == 0) {
    node *keep = roots[0];
    uint64_t k = rnd() % KEEP;
    hk_gc_write_barrier(m, keep);
    keep->kids[k] = obj;
    sh[keep->id].kids[k] = id;
    return;
  }
  if (rnd() % 16 == 0) {
    int r = 1 + (int)(rnd() % (NROOTS - 1));
    roots[r] = obj;
    root_ids[r] = id;
    return;
  }
  node *n = pick();
  if (!n || hk_gc_object_type(n) == T_BLOB || n->nkids == 0) {
    int r = 1 + (int)(rnd() % (NROOTS - 1));
    roots[r] = obj;
    root_ids[r] = id;
    return;
  }
  uint64_t k = rnd() % n->nkids;
  hk_gc_write_barrier(m, n); /* n may be old */
  n->kids[k] = obj;
  sh[n->id].kids[k] = id;
}

int main(int argc, char **argv) {
  long ops = argc > 1 ? atol(argv[1]) : 300000;
  long check_every = getenv("GC_TEST_CHECK_EVERY") ? atol(getenv("GC_TEST_CHECK_EVERY")) : 25000;
  if (argc > 2) rng_state ^= (uint64_t)atol(argv[2]) * 0x9E3779B97F4A7C15ull;
  maxids = (uint64_t)ops + 16;
  sh = calloc(maxids, sizeof *sh);
  seen = malloc(maxids);
  stack = malloc(maxids * 64 * sizeof(void *));
  idstack = malloc(maxids * 64 * sizeof(uint64_t));
  if (!sh || !seen || !stack || !idstack) return 2;

  hk_gc_options o;
  hk_gc_options_init(&o);
  o.nursery_size = 256 << 10;
  o.initial_heap = 2 << 20;
  hk_gc_heap *h;
  hk_gc_mutator *m;
  CHECK(hk_gc_heap_create(&o, &h, &m) == HK_OK);
  register_test_types(h);
  for (int r = 0; r < NROOTS; r++) CHECK(hk_gc_root_add(h, &roots[r]) == HK_OK);

  {
    uint64_t id = new_id();
    roots[0] = new_node(m, id, KEEP, false);
    root_ids[0] = id;
    sh[id].kind = 1;
    sh[id].nkids = KEEP;
    sh[id].kids = calloc(KEEP, sizeof(uint64_t));
  }
  bool ok = true;
  for (long i = 0; i < ops && ok; i++) {
    uint64_t op = rnd() % 100;
    if (op < 45) {
      uint64_t id = new_id();
      uint64_t nk = rnd() % 100 == 0 ? 1100 + rnd() % 200 : rnd() % 7; /* 1%: a large object */
      bool traced = rnd() & 1;
      node *n = new_node(m, id, nk, traced);
      CHECK_QUIET(n != NULL);
      if (!n) break;
      sh[id].kind = 1;
      sh[id].nkids = nk;
      sh[id].kids = calloc(nk ? nk : 1, sizeof(uint64_t));
      /* Fill some kids right away (young object: no barrier needed before a safepoint). */
      for (uint64_t k = 0; k < nk && k < 3; k++) {
        node *t = pick();
        if (t) {
          n->kids[k] = t;
          sh[id].kids[k] = t->id;
        }
      }
      store(m, n, id);
    } else if (op < 60) {
      uint64_t id = new_id();
      uint64_t len = rnd() % 100 == 0 ? 9000 + rnd() % 4000 : rnd() % 200;
      blob *b = new_blob(m, id, len);
      CHECK_QUIET(b != NULL);
      if (!b) break;
      sh[id].kind = 2;
      sh[id].len = len;
      store(m, b, id);
    } else if (op < 80) {
      node *t = pick();
      if (t) store(m, t, t->id);
    } else if (op < 90) {
      int r = 1 + (int)(rnd() % (NROOTS - 1));
      if (rnd() % 16 == 0) {
        roots[r] = NULL;
        root_ids[r] = 0;
      } else {
        node *n = pick();
        if (n && hk_gc_object_type(n) != T_BLOB && n->nkids) {
          uint64_t k = rnd() % n->nkids;
          hk_gc_write_barrier(m, n);
          n->kids[k] = NULL;
          sh[n->id].kids[k] = 0;
        }
      }
    }
    if (i % 997 == 0) hk_gc_collect(m, HK_GC_MINOR);
    if (i % 20011 == 0) hk_gc_collect(m, HK_GC_FULL);
    if (i % check_every == 0) ok = check_all(m);
  }
  ok = ok && check_all(m);
  hk_gc_collect(m, HK_GC_MINOR);
  ok = ok && check_all(m);
  hk_gc_collect(m, HK_GC_FULL);
  ok = ok && check_all(m);
  CHECK(ok);

  hk_gc_stats st;
  hk_gc_stats_get(h, &st);
  CHECK(st.minor_collections > 0);
  CHECK(st.full_collections > 0);
  CHECK(st.bytes_promoted > 0);
  CHECK(st.heap_peak > 0);
  CHECK(st.all.p50_ms <= st.all.p95_ms && st.all.p95_ms <= st.all.max_ms);
  hk_gc_stats_print(h, 2);

  /* Everything unreachable: a full collection leaves (almost) nothing live. */
  memset(roots, 0, sizeof roots);
  memset(root_ids, 0, sizeof root_ids);
  hk_gc_collect(m, HK_GC_FULL);
  hk_gc_stats_get(h, &st);
  CHECK(st.live_bytes == 0);
  CHECK(st.large_objects == 0);
  CHECK(hk_gc_verify(m) == HK_OK);
  for (int r = 0; r < NROOTS; r++) CHECK(hk_gc_root_remove(h, &roots[r]) == HK_OK);
  CHECK(hk_gc_heap_destroy(h) == HK_OK);
  for (uint64_t i = 0; i < nids; i++) free(sh[i].kids);
  free(sh);
  free(seen);
  free(stack);
  free(idstack);
  return check_report("gc.graph");
}
