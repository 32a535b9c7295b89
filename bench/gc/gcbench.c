/* GCBench, after the Ellis-Kovac-Boehm benchmark: a long-lived binary tree (depth 16) and a
 * long-lived array of 500,000 doubles stay reachable while trees of depth 4, 6, ..., 16 are built
 * and dropped, each depth both top-down (children stored into an existing parent, so the write
 * barrier runs on older objects) and bottom-up (children first, then the parent). The iteration
 * count per depth follows the classic program (2 * TreeSize(18) / TreeSize(depth)), so each depth
 * allocates the same number of nodes. The classic's initial "stretch" tree is left out: it would
 * make the start, not the steady state, decide the live size.
 *   gcbench BUDGET|--live [long_lived_depth=16 max_depth=16 array_size=500000] */
#include "gcb.h"

typedef struct node { struct node *left, *right; int i, j; } node;
static gcb_type T_NODE, T_ARRAY;

static long tree_size(int d) { return (1L << (d + 1)) - 1; }

static node *new_node(node *l, node *r) {
  GCB_ROOTS(l, r);
  node *n = GCB_ALLOC(T_NODE, sizeof(node));
  n->left = l; /* fresh object: no barrier */
  n->right = r;
  return n;
}

/* Top-down: the parent exists before its children are stored into it. */
static void populate(int depth, node *n) {
  GCB_ROOTS(n);
  if (depth <= 0) return;
  node *c = new_node(NULL, NULL);
  GCB_WRITE(n, left, c);
  c = new_node(NULL, NULL);
  GCB_WRITE(n, right, c);
  populate(depth - 1, n->left);
  populate(depth - 1, n->right);
}

/* Bottom-up: children first. */
static node *make_tree(int depth) {
  if (depth <= 0) return new_node(NULL, NULL);
  node *l = make_tree(depth - 1), *r = NULL;
  GCB_ROOTS(l, r);
  r = make_tree(depth - 1);
  return new_node(l, r);
}

static long count(const node *n) { return n ? 1 + count(n->left) + count(n->right) : 0; }

int main(int argc, char **argv) {
  int a = gcb_start("gcbench", argc, argv);
  int long_depth = (int)gcb_arg(argc, argv, a, 16), max_depth = (int)gcb_arg(argc, argv, a + 1, 16);
  long array_size = gcb_arg(argc, argv, a + 2, 500000);
  const int min_depth = 4, iter_depth = 18;
  if (gcb_live_only) {
    long big = long_depth > max_depth ? long_depth : max_depth;
    gcb_print_live((size_t)(tree_size(long_depth) + tree_size(big)) * gcb_obj_bytes(sizeof(node)) +
                   gcb_obj_bytes(sizeof(double) * (size_t)array_size));
    return 0;
  }
  T_NODE = gcb_type_new("node", sizeof(node), 0x3, GCB_NO_TAIL);
  T_ARRAY = gcb_type_new("double[]", 0, 0, GCB_NO_TAIL);

  node *long_lived = NULL, *temp = NULL;
  double *array = NULL;
  GCB_ROOTS(long_lived, temp, array);
  long_lived = new_node(NULL, NULL);
  populate(long_depth, long_lived);
  array = GCB_ALLOC_ATOMIC(T_ARRAY, sizeof(double) * (size_t)array_size);
  for (long i = 0; i < array_size / 2; i++) array[i] = 1.0 / (double)(i + 1);

  int ok = 1;
  long nodes = 0;
  for (int d = min_depth; d <= max_depth; d += 2) {
    long iters = 2 * tree_size(iter_depth) / tree_size(d);
    for (long i = 0; i < iters; i++) {
      temp = new_node(NULL, NULL);
      populate(d, temp);
      if (i == iters - 1 && count(temp) != tree_size(d)) ok = 0;
      temp = NULL;
      temp = make_tree(d);
      if (i == iters - 1 && count(temp) != tree_size(d)) ok = 0;
      temp = NULL;
    }
    nodes += 2 * iters * tree_size(d);
  }
  /* The long-lived data must have survived every collection intact. */
  if (count(long_lived) != tree_size(long_depth)) ok = 0;
  if (array_size > 1000 && array[999] != 1.0 / 1000.0) ok = 0;
  gcb_note("nodes=%ld", nodes);
  return gcb_finish(ok);
}
