/* Many tiny objects, the way an interpreter allocates: 8-64 byte cells linked into trees and lists.
 * Each round (a) builds an expression tree and frees it bottom-up (LIFO-ish), (b) pushes a list of
 * small strings and pops it (strict LIFO), and (c) replaces entries of a long-lived table of cells at
 * random (frees in random order, objects of mixed age).
 * Usage: w_tiny [scale] */
#include "wl.h"

typedef struct node {
  struct node *l, *r;
  uint64_t v;
  /* the rest (up to 64 bytes) is payload, as boxed values of varying size */
} node;

static node *new_node(wl_rng *rg, uint64_t v) {
  size_t n = wl_range(rg, sizeof(node), 64);
  node *x = wl_check_alloc(malloc(n), n);
  x->l = x->r = NULL;
  x->v = v;
  return x;
}

static node *build(wl_rng *rg, int depth, uint64_t *next) {
  node *x = new_node(rg, (*next)++);
  if (depth > 0) {
    x->l = build(rg, depth - 1, next);
    if (wl_next(rg) & 3) x->r = build(rg, depth - 1, next);
  }
  return x;
}

/* evaluate and free in one post-order walk, as a tree-walking interpreter drops temporaries */
static uint64_t eval_free(node *x) {
  uint64_t s = x->v;
  if (x->l) s += 3 * eval_free(x->l);
  if (x->r) s ^= eval_free(x->r);
  free(x);
  return s;
}

/* a string cell and its 8-byte boxed length, the smallest objects interpreters make */
typedef struct cell { struct cell *next; uint64_t *box; uint32_t len; char s[]; } cell;

int main(int argc, char **argv) {
  double scale = wl_scale(argc, argv);
  long rounds = wl_scaled(scale, 120000);
  const size_t ntable = 1 << 16;
  node **table = calloc(ntable, sizeof *table);
  wl_rng rg = wl_rng_make(2);
  uint64_t sum = 0, next = 1;
  for (long round = 0; round < rounds; round++) {
    /* (a) expression tree of 2^5..2^8 nodes */
    node *t = build(&rg, 5 + (int)(wl_next(&rg) % 4), &next);
    sum = wl_mix(sum, eval_free(t));

    /* (b) a list of short strings, pushed then popped */
    cell *head = NULL;
    int m = (int)wl_range(&rg, 16, 96);
    for (int i = 0; i < m; i++) {
      uint32_t len = (uint32_t)wl_range(&rg, 1, 64 - sizeof(cell) - 1);
      cell *c = wl_check_alloc(malloc(sizeof(cell) + len + 1), len);
      memset(c->s, 'a' + (int)(len % 26), len);
      c->s[len] = 0;
      c->len = len;
      c->box = wl_check_alloc(malloc(8), 8);
      *c->box = len;
      c->next = head;
      head = c;
    }
    while (head) {
      cell *c = head;
      head = c->next;
      if (c->s[c->len] != 0 || c->s[0] != 'a' + (int)(c->len % 26) || *c->box != c->len)
        wl_fail("string cell corrupted");
      sum += c->len;
      free(c->box);
      free(c);
    }

    /* (c) long-lived table: random replacement, so frees come in random age order */
    for (int i = 0; i < 64; i++) {
      size_t k = wl_next(&rg) % ntable;
      if (table[k]) {
        if (table[k]->l != NULL || table[k]->v != k) wl_fail("table cell corrupted");
        free(table[k]);
      }
      table[k] = new_node(&rg, k);
    }
  }
  for (size_t k = 0; k < ntable; k++) {
    if (!table[k]) continue;
    if (table[k]->v != k) wl_fail("table cell corrupted");
    sum++;
    free(table[k]);
  }
  free(table);
  printf("OK checksum=%016llx\n", (unsigned long long)sum);
  return 0;
}
