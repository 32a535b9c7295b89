/* binary-trees, as in the Computer Language Benchmarks Game: a long-lived tree of depth N stays
 * reachable while, for each depth d = 4, 6, ..., N, 2^(N - d + 4) trees of depth d are built
 * bottom-up, checked by a full walk and dropped. Nodes are two pointers (16 bytes), the smallest
 * object a tree can have, so per-object costs (headers, allocation, tracing) dominate. A stretch
 * tree of depth N + 1 is built and dropped first, as in the original.
 *   bintrees BUDGET|--live [max_depth=18] */
#include "gcb.h"

typedef struct node { struct node *left, *right; } node;
static gcb_type T_NODE;

static node *make(int depth) {
  node *l = NULL, *r = NULL;
  GCB_ROOTS(l, r);
  if (depth > 0) {
    l = make(depth - 1);
    r = make(depth - 1);
  }
  node *n = GCB_ALLOC(T_NODE, sizeof(node));
  n->left = l;
  n->right = r;
  return n;
}

static long check(const node *n) { return n->left ? 1 + check(n->left) + check(n->right) : 1; }

int main(int argc, char **argv) {
  int a = gcb_start("bintrees", argc, argv);
  int max_depth = (int)gcb_arg(argc, argv, a, 18);
  const int min_depth = 4;
  if (max_depth < min_depth + 2) max_depth = min_depth + 2;
  size_t nodes_of = (size_t)1 << (max_depth + 1); /* nodes in a tree of depth max_depth, plus one */
  if (gcb_live_only) { /* the stretch tree alone, or the long-lived tree with one iteration tree */
    gcb_print_live(2 * nodes_of * gcb_obj_bytes(sizeof(node)));
    return 0;
  }
  T_NODE = gcb_type_new("node", sizeof(node), 0x3, GCB_NO_TAIL);
  int ok = 1;
  long total = 0;
  node *t = make(max_depth + 1);
  GCB_ROOTS(t);
  ok &= check(t) == (2L << (max_depth + 1)) - 1;
  t = NULL;
  node *long_lived = make(max_depth);
  GCB_ROOTS(long_lived);
  for (int d = min_depth; d <= max_depth; d += 2) {
    long iters = 1L << (max_depth - d + min_depth), sum = 0;
    for (long i = 0; i < iters; i++) {
      t = make(d);
      sum += check(t);
    }
    t = NULL;
    ok &= sum == iters * ((2L << d) - 1);
    total += sum;
  }
  ok &= check(long_lived) == (2L << max_depth) - 1;
  gcb_note("nodes=%ld", total);
  return gcb_finish(ok);
}
