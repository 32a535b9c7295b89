/* A large long-lived structure with steady garbage: a complete quad tree (depth 8, 87,381 nodes of
 * 48 bytes) lives for the whole run while, step after step, a random subtree of depth 2 hanging
 * at depth 6 is replaced by a freshly built one (the old one becomes garbage, the new one is
 * stored into an old parent: the write barrier and the remembered set at work), and a random
 * root-to-leaf query builds a short-lived list of the values on its path. The long-lived tree's
 * node count and value sum are tracked incrementally and checked against a full walk at the end.
 *   quadtree BUDGET|--live [steps=400000 depth=8] */
#include "gcb.h"

typedef struct quad { struct quad *child[4]; long value, count; } quad; /* count: nodes in subtree */
typedef struct cell { struct cell *next; long value; } cell;
static gcb_type T_QUAD, T_CELL;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) { /* xorshift64* */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}
static long nodes_at(int depth) { long n = 0, k = 1; for (int i = 0; i <= depth; i++, k *= 4) n += k; return n; }

static quad *build(int depth, long *sum) {
  quad *q = GCB_ALLOC(T_QUAD, sizeof(quad)), *c = NULL;
  GCB_ROOTS(q, c);
  q->value = (long)(next_rand() % 1000);
  q->count = 1;
  *sum += q->value;
  if (depth > 0)
    for (int i = 0; i < 4; i++) {
      c = build(depth - 1, sum);
      GCB_WRITE(q, child[i], c); /* q may have been promoted while its children were built */
      q->count += c->count;
    }
  return q;
}
static long walk(const quad *q, long *sum) {
  if (!q) return 0;
  *sum += q->value;
  long n = 1;
  for (int i = 0; i < 4; i++) n += walk(q->child[i], sum);
  return n;
}
static long subtree_sum(const quad *q) { long s = 0; walk(q, &s); return s; }

int main(int argc, char **argv) {
  int a = gcb_start("quadtree", argc, argv);
  long steps = gcb_arg(argc, argv, a, 400000);
  int depth = (int)gcb_arg(argc, argv, a + 1, 8);
  const int sub = 2; /* depth of the replaced subtrees */
  if (depth < sub + 1 || depth > 12) return 2;
  if (gcb_live_only) { /* the tree, one replacement being built, one query list */
    gcb_print_live((size_t)(nodes_at(depth) + nodes_at(sub)) * gcb_obj_bytes(sizeof(quad)) +
                   (size_t)(depth + 1) * gcb_obj_bytes(sizeof(cell)));
    return 0;
  }
  T_QUAD = gcb_type_new("quad", sizeof(quad), 0xf, GCB_NO_TAIL);
  T_CELL = gcb_type_new("cell", sizeof(cell), 0x1, GCB_NO_TAIL);
  long sum = 0, checksum = 0;
  quad *root = NULL, *parent = NULL, *fresh = NULL, *q = NULL;
  cell *list = NULL, *c = NULL;
  GCB_ROOTS(root, parent, fresh, q, list, c);
  root = build(depth, &sum);
  for (long s = 0; s < steps; s++) {
    /* Replace a random subtree of depth `sub` whose parent sits at depth - sub - 1. */
    parent = root;
    for (int d = 0; d < depth - sub - 1; d++) parent = parent->child[next_rand() & 3];
    int k = (int)(next_rand() & 3);
    long old = subtree_sum(parent->child[k]), added = 0;
    fresh = build(sub, &added);
    GCB_WRITE(parent, child[k], fresh);
    fresh = NULL;
    sum += added - old;
    /* A query: the values along a random path, as a fresh list. */
    list = NULL;
    for (q = root;; q = q->child[next_rand() & 3]) {
      c = GCB_ALLOC(T_CELL, sizeof(cell)); /* q is a root: it follows its node if that moves */
      c->value = q->value;
      c->next = list;
      list = c;
      if (!q->child[0]) break;
    }
    for (c = list; c; c = c->next) checksum += c->value;
    list = c = NULL;
    parent = q = NULL;
  }
  long walked_sum = 0, n = walk(root, &walked_sum);
  int ok = n == nodes_at(depth) && walked_sum == sum && root->count == nodes_at(depth);
  gcb_note("steps=%ld nodes=%ld checksum=%ld", steps, n, checksum);
  return gcb_finish(ok);
}
