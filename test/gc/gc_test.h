/* Shared helpers of the collector's tests: a node type (id, count, then that many pointer slots)
 * registered both with a layout and with a trace function, and a pointer-free blob type. */
#ifndef HK_TEST_GC_H
#define HK_TEST_GC_H
#include <heapkit.h>
#include <stdint.h>
#include <string.h>
#include "../check.h"

typedef struct node {
  uint64_t id;
  uint64_t nkids;
  struct node *kids[];
} node;

typedef struct blob {
  uint64_t id;
  uint64_t len;
  unsigned char bytes[];
} blob;

static hk_gc_type T_NODE, T_NODE_TRACED, T_BLOB;

static void node_trace(void *obj, hk_gc_visitor *v) {
  node *n = (node *)obj;
  for (uint64_t i = 0; i < n->nkids; i++) HK_GC_VISIT(v, n->kids[i]);
}
static size_t node_size(const void *obj) { return sizeof(node) + ((const node *)obj)->nkids * sizeof(void *); }
static size_t blob_size(const void *obj) { return sizeof(blob) + ((const blob *)obj)->len; }

static inline void register_test_types(hk_gc_heap *h) {
  hk_gc_type_desc a = {.name = "node", .size_of = node_size, .flags = HK_GC_TYPE_TAIL_POINTERS, .tail_start = 2};
  hk_gc_type_desc b = {.name = "node-traced", .trace = node_trace, .size_of = node_size};
  hk_gc_type_desc c = {.name = "blob", .size_of = blob_size, .flags = HK_GC_TYPE_NO_POINTERS};
  CHECK(hk_gc_type_register(h, &a, &T_NODE) == HK_OK);
  CHECK(hk_gc_type_register(h, &b, &T_NODE_TRACED) == HK_OK);
  CHECK(hk_gc_type_register(h, &c, &T_BLOB) == HK_OK);
}

static inline node *new_node(hk_gc_mutator *m, uint64_t id, uint64_t nkids, bool traced) {
  node *n = hk_gc_alloc(m, traced ? T_NODE_TRACED : T_NODE, sizeof(node) + nkids * sizeof(void *));
  if (n) {
    n->id = id;
    n->nkids = nkids;
  }
  return n;
}

/* A complete binary tree: every node has two slots and its depth as id (leaves 0); NULL when an
 * allocation fails. */
static inline node *gc_test_tree(hk_gc_mutator *m, int depth) {
  node *l = NULL, *r = NULL;
  HK_GC_ROOTS(m, l, r);
  if (depth > 0) {
    l = gc_test_tree(m, depth - 1);
    r = gc_test_tree(m, depth - 1);
  }
  node *n = new_node(m, (uint64_t)depth, 2, false);
  if (!n) return NULL;
  n->kids[0] = l;
  n->kids[1] = r;
  return n;
}

static unsigned char blob_byte(uint64_t id, uint64_t i) { return (unsigned char)(id * 131 + i * 7 + 3); }

static inline blob *new_blob(hk_gc_mutator *m, uint64_t id, uint64_t len) {
  blob *b = hk_gc_alloc_data(m, T_BLOB, sizeof(blob) + len);
  if (b) {
    b->id = id;
    b->len = len;
    for (uint64_t i = 0; i < len; i++) b->bytes[i] = blob_byte(id, i);
  }
  return b;
}

static inline bool blob_ok(const blob *b) {
  for (uint64_t i = 0; i < b->len; i++)
    if (b->bytes[i] != blob_byte(b->id, i)) return false;
  return true;
}

static uint64_t rng_state = 88172645463325252ull;
static inline uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
#endif
