/* Multi-threaded allocation: T threads each run the binary-trees iteration loop (trees of depth
 * 4..D built bottom-up and dropped, the same work per thread) against one shared heap. The figure
 * of merit is throughput, nodes allocated per second of wall time: run with 1 and with 2 threads,
 * the ratio shows how allocation and collection scale. Each thread also keeps a long-lived tree of
 * depth D-2 for the collector to preserve.
 * Besides the wall-time throughput it reports each thread's CPU time: the busiest thread's
 * (thread_cpu_max_s) is what the run would take with a core per thread, so on a shared machine
 * 2 x (1-thread cpu_s) / (2-thread thread_cpu_max_s) estimates the scaling an idle machine shows.
 *   mtbintrees BUDGET|--live [threads=2 max_depth=16] */
#include "gcb.h"

typedef struct node { struct node *left, *right; } node;
static gcb_type T_NODE;
static int max_depth;

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
/* The walk of a tree of depth d polls for safepoints once per subtree of depth CHECK_POLL_DEPTH
 * (31 nodes), as compiled code strip-mines a long loop's polls (and a C program walking a big
 * structure would): without a poll, a thread walking a 2^19-node tree holds up every collection
 * the other thread needs for the whole walk (docs/gc.md, "Time to safepoint"). A collection in a
 * poll may move the nodes, so every node with a poll below it is a root while its walk runs and
 * is read again after its left subtree's; the small subtrees below are walked with raw pointers.
 * Boehm stops threads with signals: GCB_POLL and GCB_ROOTS vanish there, the walk is the same. */
#define CHECK_POLL_DEPTH 4
static long check_raw(const node *n) { return n->left ? 1 + check_raw(n->left) + check_raw(n->right) : 1; }
static long check(node *n, int d) {
  if (d <= CHECK_POLL_DEPTH) return check_raw(n);
  GCB_ROOTS(n);
  GCB_POLL();
  long l = check(n->left, d - 1);
  return 1 + l + check(n->right, d - 1);
}

typedef struct work { long nodes; int ok; double cpu_s; } work;

static double cpu_clock(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *worker(void *arg) {
  work *w = arg;
  gcb_thread_attach();
  {
    node *long_lived = make(max_depth - 2), *t = NULL;
    GCB_ROOTS(long_lived, t);
    w->ok = 1;
    for (int d = 4; d <= max_depth; d += 2) {
      long iters = 1L << (max_depth - d + 4), sum = 0;
      for (long i = 0; i < iters; i++) {
        t = make(d);
        sum += check(t, d);
      }
      t = NULL;
      w->ok &= sum == iters * ((2L << d) - 1);
      w->nodes += sum;
    }
    w->ok &= check(long_lived, max_depth - 2) == (2L << (max_depth - 2)) - 1;
  }
  gcb_thread_detach();
  w->cpu_s = cpu_clock(CLOCK_THREAD_CPUTIME_ID);
  return NULL;
}

int main(int argc, char **argv) {
  int a = gcb_start("mtbintrees", argc, argv);
  int threads = (int)gcb_arg(argc, argv, a, 2);
  max_depth = (int)gcb_arg(argc, argv, a + 1, 16);
  if (threads < 1 || threads > 64 || max_depth < 6) {
    fprintf(stderr, "mtbintrees: threads 1..64, depth >= 6\n");
    return 2;
  }
  if (gcb_live_only) { /* per thread: its long-lived tree and one iteration tree */
    gcb_print_live((size_t)threads * (((size_t)2 << (max_depth - 2)) + ((size_t)2 << max_depth)) *
                   gcb_obj_bytes(sizeof(node)));
    return 0;
  }
  T_NODE = gcb_type_new("node", sizeof(node), 0x3, GCB_NO_TAIL);
  work w[64];
  pthread_t tid[64];
  memset(w, 0, sizeof w);
  double t0 = gcb_now();
  for (int i = 0; i < threads; i++)
    if (pthread_create(&tid[i], NULL, worker, &w[i]) != 0) {
      fprintf(stderr, "mtbintrees: pthread_create failed\n");
      return 2;
    }
  gcb_blocking_begin(); /* the main thread is registered too: it must not hold up collections */
  for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
  gcb_blocking_end();
  double wall = gcb_now() - t0;
  long nodes = 0;
  int ok = 1;
  double cpu_max = 0;
  for (int i = 0; i < threads; i++) {
    nodes += w[i].nodes;
    ok &= w[i].ok;
    if (w[i].cpu_s > cpu_max) cpu_max = w[i].cpu_s;
  }
  gcb_note("threads=%d nodes=%ld mnodes_per_s=%.2f thread_cpu_max_s=%.4f ns_per_node_cpu=%.2f", threads, nodes,
           nodes / wall / 1e6, cpu_max, cpu_clock(CLOCK_PROCESS_CPUTIME_ID) * 1e9 / (double)nodes);
  return gcb_finish(ok);
}
