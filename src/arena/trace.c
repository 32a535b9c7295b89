/* The planner tie-in: record an arena's allocations as buffers with lifetimes (CSV
 * id,lower,upper,size, see docs/planner.md), and replay a planned trace (the same CSV plus an
 * offset column, as written by `heapkit plan`) from fixed offsets in one block.
 *
 * Time is counted in allocation events: allocation k happens at time k and its buffer lives in
 * [k, t) where t is the number of allocations made when the restore, reset or destroy that
 * released it happened (or when the trace was written, for buffers still live).
 * Records and the replay table live in segments of their own (no malloc), outside the arena's
 * chunks, so that restore and reset never release them. */
#include "arena/arena_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OPEN_UPPER UINT64_MAX

typedef struct trace_rec {
  uint64_t lower, upper, size;
  uint32_t prev_open; /* index + 1 of the open record below this one, 0 for none */
  uint32_t align;
} trace_rec;

/* Invariants: n <= cap; records [0, n) lie in committed memory; following prev_open from top
 * visits exactly the records whose upper is OPEN_UPPER, in decreasing index order. */
struct hk__arena_trace {
  hk__segment *seg;
  trace_rec *recs;
  size_t n, cap, committed_recs;
  uint64_t top;
  bool broken; /* a record could not be stored: the trace is incomplete and will not be written */
};

static size_t trace_hdr(void) { return hk__align_up(sizeof(hk__segment), 64) + hk__align_up(sizeof(hk__arena_trace), 64); }

static hk__arena_trace *trace_alloc_seg(size_t size) {
  size_t hdr = trace_hdr();
  hk__segment *seg = hk__segment_alloc(size, HK_SEGMENT_SIZE, HK__SEG_ARENA, hdr);
  if (!seg) return NULL;
  hk__arena_trace *t = (hk__arena_trace *)((char *)seg + hk__align_up(sizeof(hk__segment), 64));
  memset(t, 0, sizeof *t);
  t->seg = seg;
  t->recs = (trace_rec *)((char *)seg + hdr);
  t->cap = (seg->size - hdr) / sizeof(trace_rec);
  t->committed_recs = (hk__round_up(hdr, seg->unit) - hdr) / sizeof(trace_rec);
  return t;
}

int hk__arena_trace_init(hk_arena *a) {
  a->trace = trace_alloc_seg(HK_SEGMENT_SIZE);
  if (a->trace) a->trace->seg->owner = a;
  return a->trace ? HK_OK : HK_ENOMEM;
}

void hk__arena_trace_free(hk_arena *a) {
  if (a->trace) hk__segment_free(a->trace->seg);
  a->trace = NULL;
}

static bool trace_grow(hk_arena *a) {
  hk__arena_trace *t = a->trace;
  if (t->n == t->cap) {
    hk__arena_trace *u = trace_alloc_seg(t->seg->size * 2);
    if (!u) return false;
    size_t bytes = t->n * sizeof(trace_rec);
    if (hk__segment_commit(u->seg, trace_hdr(), bytes + sizeof(trace_rec), NULL) != HK_OK) {
      hk__segment_free(u->seg);
      return false;
    }
    memcpy(u->recs, t->recs, bytes);
    u->n = t->n;
    u->top = t->top;
    u->committed_recs = t->n + 1;
    hk__segment_free(t->seg);
    u->seg->owner = a;
    a->trace = t = u;
  }
  if (t->n >= t->committed_recs) {
    size_t off = trace_hdr() + t->committed_recs * sizeof(trace_rec);
    size_t len = hk__round_up(off + 1, t->seg->unit) - off;
    if (hk__segment_commit(t->seg, off, len, NULL) != HK_OK) return false;
    t->committed_recs += len / sizeof(trace_rec);
  }
  return true;
}

int hk__arena_trace_add(hk_arena *a, size_t size, size_t align) {
  hk__arena_trace *t = a->trace;
  if (t->broken) return HK_ENOMEM;
  if (t->n >= UINT32_MAX - 1 || !trace_grow(a)) {
    a->trace->broken = true;
    hk__warning("arena %p: out of memory for the allocation trace; the trace is abandoned", (void *)a);
    return HK_ENOMEM;
  }
  t = a->trace;
  hk_assert(t->n == a->seq);
  trace_rec *r = &t->recs[t->n];
  r->lower = a->seq;
  r->upper = OPEN_UPPER;
  r->size = size;
  r->align = (uint32_t)align;
  r->prev_open = (uint32_t)t->top;
  t->top = ++t->n;
  return HK_OK;
}

void hk__arena_trace_close(hk_arena *a, size_t from_seq) {
  hk__arena_trace *t = a->trace;
  if (t->broken) return;
  while (t->top && t->top - 1 >= from_seq) {
    trace_rec *r = &t->recs[t->top - 1];
    r->upper = a->seq;
    t->top = r->prev_open;
  }
}

/* ---- writing CSV without stdio (stdio may call malloc) ----------------------------------------- */

typedef struct outbuf {
  int fd;
  bool failed;
  size_t len;
  char buf[1024];
} outbuf;

static void out_flush(outbuf *o) {
  size_t done = 0;
  while (done < o->len && !o->failed) {
    ssize_t w = write(o->fd, o->buf + done, o->len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) o->failed = true;
    else done += (size_t)w;
  }
  o->len = 0;
}

static void out_str(outbuf *o, const char *s) {
  for (; *s; s++) {
    if (o->len == sizeof o->buf) out_flush(o);
    o->buf[o->len++] = *s;
  }
}

static void out_u64(outbuf *o, uint64_t v) {
  char tmp[24];
  int i = 24;
  tmp[--i] = 0;
  do tmp[--i] = (char)('0' + v % 10), v /= 10;
  while (v);
  out_str(o, tmp + i);
}

int hk_arena_trace_write(const hk_arena *a, const char *path) {
  if (!a || a->magic != HK__ARENA_MAGIC || !a->trace || !path) return HK_EINVAL;
  hk__arena_trace *t = a->trace;
  if (t->broken) return HK_ENOMEM;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    hk__warning("hk_arena_trace_write: cannot open %s for writing: %s", path, strerror(errno));
    return HK_EPERM;
  }
  outbuf o; /* on the stack: thread-local storage must stay tiny (the library may be dlopen'ed) */
  o.fd = fd;
  o.failed = false;
  o.len = 0;
  out_str(&o, "id,lower,upper,size,align\n");
  for (size_t i = 0; i < t->n; i++) {
    const trace_rec *r = &t->recs[i];
    out_u64(&o, i);
    out_str(&o, ",");
    out_u64(&o, r->lower);
    out_str(&o, ",");
    out_u64(&o, r->upper == OPEN_UPPER ? a->seq : r->upper);
    out_str(&o, ",");
    out_u64(&o, r->size);
    out_str(&o, ",");
    out_u64(&o, r->align);
    out_str(&o, "\n");
  }
  out_flush(&o);
  bool failed = o.failed;
  if (close(fd) != 0) failed = true;
  if (failed) hk__warning("hk_arena_trace_write: writing %s failed", path);
  return failed ? HK_EPERM : HK_OK;
}

/* ---- replay -------------------------------------------------------------------------------------- */

/* One planned allocation. The table holds one entry per row, sorted by id: its size follows the
 * file, not the largest id (an id near 2^24 in a direct table took 640 MiB). Ids are the
 * allocation sequence numbers the run reaches in increasing order, so a cursor finds each entry. */
typedef struct plan_entry {
  uint64_t id, offset, size;
  uint64_t upper; /* the planned end of its lifetime (UINT64_MAX: the plan has no upper column) */
  uint64_t line;  /* for the duplicate-id message */
} plan_entry;

/* The allocations served from the plan and not released yet, in id order (a restore releases a
 * suffix of them), each with the smallest planned upper among it and those below it. */
typedef struct live_entry {
  uint64_t id, min_upper;
} live_entry;

/* Layout of the replay segment: [hk__segment][hk__arena_replay][table: n entries][live: n entries]
 * [block: peak bytes].
 * The plan shares offsets between allocations whose planned lifetimes are disjoint, so a served
 * allocation that outlives its planned upper (the run released it later than the recorded one, or
 * never) overlaps those planned after it: from the first allocation at which a served one is still
 * live past its planned upper, the run is off the plan and every allocation is a miss. */
struct hk__arena_replay {
  hk__segment *seg;
  plan_entry *table;
  live_entry *live;
  size_t n, nlive;
  size_t next; /* the first entry whose id the run has not passed */
  char *block;
  size_t peak;
  size_t hits, misses;
  bool off_plan;
};

static size_t replay_hdr(void) {
  return hk__align_up(sizeof(hk__segment), 64) + hk__align_up(sizeof(hk__arena_replay), 64);
}

/* Reads the whole file into a temporary segment; *len gets its length. */
static hk__segment *read_file(const char *path, size_t *len, char **text) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > ((uint64_t)1 << 32)) {
    close(fd);
    return NULL;
  }
  size_t size = (size_t)st.st_size, hdr = hk__align_up(sizeof(hk__segment), 64);
  hk__segment *seg = hk__segment_alloc(hdr + size + 1, HK_SEGMENT_SIZE, HK__SEG_ARENA, hdr);
  if (!seg) {
    close(fd);
    return NULL;
  }
  char *buf = (char *)seg + hdr;
  if (hk__segment_commit(seg, hdr, size + 1, NULL) != HK_OK) {
    hk__segment_free(seg);
    close(fd);
    return NULL;
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { /* a directory opens, then fails here: it read as an empty file ("the header needs...") */
      hk__segment_free(seg);
      close(fd);
      return NULL;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  close(fd);
  buf[got] = 0;
  *len = got;
  *text = buf;
  return seg;
}

/* Field i (0-based) of a comma-separated line [s, e), trimmed of spaces and \r. */
static bool field(const char *s, const char *e, int i, const char **fs, const char **fe) {
  for (int k = 0; k < i; k++) {
    while (s < e && *s != ',') s++;
    if (s == e) return false;
    s++;
  }
  const char *t = s;
  while (t < e && *t != ',') t++;
  while (s < t && (*s == ' ' || *s == '\t')) s++;
  while (t > s && (t[-1] == ' ' || t[-1] == '\r' || t[-1] == '\t')) t--;
  *fs = s;
  *fe = t;
  return true;
}

static size_t nfields(const char *s, const char *e) {
  size_t n = 1;
  for (; s < e; s++) n += *s == ',';
  return n;
}

static bool parse_u64(const char *s, const char *e, uint64_t *out) {
  if (s == e) return false;
  uint64_t v = 0;
  for (; s < e; s++) {
    if (*s < '0' || *s > '9') return false;
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return true;
}

static int column(const char *s, const char *e, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < 64; i++) {
    const char *fs, *fe;
    if (!field(s, e, i, &fs, &fe)) return -1;
    if ((size_t)(fe - fs) == n && memcmp(fs, name, n) == 0) return i;
  }
  return -1;
}

/* The largest plan the replay takes: its block (the largest offset + size) is committed whole when
 * the arena is created, so it must fit in the machine's memory, and no arena chunk is larger than
 * 2^46 bytes (hk__arena_next_chunk). */
#define MAX_REPLAY_BLOCK ((uint64_t)1 << 46)
static uint64_t replay_block_limit(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return MAX_REPLAY_BLOCK;
  uint64_t mem = (uint64_t)pages * (uint64_t)page;
  return mem < MAX_REPLAY_BLOCK ? mem : MAX_REPLAY_BLOCK;
}

/* Heap sort by id, in place (no malloc; rows in id order, as the recorder and `heapkit plan` write
 * them, skip it). */
static void sift(plan_entry *t, size_t i, size_t n) {
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) return;
    if (c + 1 < n && t[c + 1].id > t[c].id) c++;
    if (t[c].id <= t[i].id) return;
    plan_entry x = t[i];
    t[i] = t[c];
    t[c] = x;
    i = c;
  }
}

static void sort_by_id(plan_entry *t, size_t n) {
  size_t i = 1;
  while (i < n && t[i - 1].id <= t[i].id) i++;
  if (i >= n) return;
  for (i = n / 2; i-- > 0;) sift(t, i, n);
  for (size_t end = n; end-- > 1;) {
    plan_entry x = t[0];
    t[0] = t[end];
    t[end] = x;
    sift(t, 0, end);
  }
}

/* The plan gives buffers whose planned lifetimes [id, upper) are disjoint the same memory, and the
 * replay serves it as written: two rows live together at overlapping offsets (a hand-edited or
 * corrupted offset that still parses) made the second allocation overwrite the first, silently.
 * A sweep in id order over the rows with a size and a lifetime finds the first such pair: the rows
 * live at the current id are kept in a treap ordered by offset (pairwise disjoint, else the sweep
 * has already stopped), so only the neighbours of a new row can overlap it; a min-heap by upper
 * retires them. (A sorted array took a memmove per row: quadratic when offsets come in
 * decreasing order.) Scratch memory comes from a temporary segment (no malloc). */
typedef struct sweep_node {
  uint64_t off, end;
  uint32_t left, right, prio, row; /* children: node index + 1, 0 for none */
} sweep_node;
typedef struct sweep_exp { uint64_t upper, off; } sweep_exp;

/* Splits treap t into the nodes with off < key (*l) and the others (*r). */
static void treap_split(sweep_node *nd, uint32_t t, uint64_t key, uint32_t *l, uint32_t *r) {
  if (!t) { *l = *r = 0; return; }
  if (nd[t - 1].off < key) {
    *l = t;
    treap_split(nd, nd[t - 1].right, key, &nd[t - 1].right, r);
  } else {
    *r = t;
    treap_split(nd, nd[t - 1].left, key, l, &nd[t - 1].left);
  }
}

/* Joins treaps l and r, every key of l below every key of r. */
static uint32_t treap_merge(sweep_node *nd, uint32_t l, uint32_t r) {
  if (!l || !r) return l ? l : r;
  if (nd[l - 1].prio > nd[r - 1].prio) {
    nd[l - 1].right = treap_merge(nd, nd[l - 1].right, r);
    return l;
  }
  nd[r - 1].left = treap_merge(nd, l, nd[r - 1].left);
  return r;
}

/* Returns the index of the row that overlaps an earlier one and sets *other, or SIZE_MAX; sets
 * *oom when there is no memory for the sweep. */
static size_t plan_overlap(const plan_entry *t, size_t n, size_t *other, bool *oom) {
  size_t hdr = hk__align_up(sizeof(hk__segment), 64);
  size_t bytes = n * (sizeof(sweep_node) + sizeof(sweep_exp));
  *oom = false;
  if (n < 2) return SIZE_MAX;
  hk__segment *seg = hk__segment_alloc(hdr + bytes, HK_SEGMENT_SIZE, HK__SEG_ARENA, hdr);
  if (!seg || hk__segment_commit(seg, hdr, bytes, NULL) != HK_OK) {
    if (seg) hk__segment_free(seg);
    *oom = true;
    return SIZE_MAX;
  }
  sweep_node *nd = (sweep_node *)((char *)seg + hdr);
  sweep_exp *heap = (sweep_exp *)(nd + n);
  size_t nheap = 0, found = SIZE_MAX;
  uint32_t root = 0, nodes = 0, rng = 2463534242u;
  for (size_t i = 0; i < n && found == SIZE_MAX; i++) {
    const plan_entry *e = &t[i];
    if (e->size == 0 || e->upper <= e->id) continue; /* never live, or no memory */
    while (nheap && heap[0].upper <= e->id) { /* retire the rows whose lifetime ended */
      uint64_t off = heap[0].off;
      heap[0] = heap[--nheap];
      for (size_t k = 0;;) { /* sift down */
        size_t c = 2 * k + 1;
        if (c >= nheap) break;
        if (c + 1 < nheap && heap[c + 1].upper < heap[c].upper) c++;
        if (heap[k].upper <= heap[c].upper) break;
        sweep_exp x = heap[k]; heap[k] = heap[c]; heap[c] = x;
        k = c;
      }
      uint32_t l, mid, r; /* offsets are distinct among live rows, and below 2^46 */
      treap_split(nd, root, off, &l, &mid);
      treap_split(nd, mid, off + 1, &mid, &r);
      root = treap_merge(nd, l, r);
    }
    uint64_t end = e->offset + e->size; /* (offset + size was checked against the block limit) */
    uint32_t below = 0, above = 0; /* the live rows with the largest off <= e's, the smallest > e's */
    for (uint32_t x = root; x;) {
      if (nd[x - 1].off <= e->offset) below = x, x = nd[x - 1].right;
      else above = x, x = nd[x - 1].left;
    }
    if (below && nd[below - 1].end > e->offset) found = i, *other = nd[below - 1].row;
    else if (above && nd[above - 1].off < end) found = i, *other = nd[above - 1].row;
    else {
      rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
      nd[nodes] = (sweep_node){e->offset, end, 0, 0, rng, (uint32_t)i};
      uint32_t l, r;
      treap_split(nd, root, e->offset, &l, &r);
      root = treap_merge(nd, treap_merge(nd, l, ++nodes), r);
      size_t k = nheap++; /* sift up */
      heap[k] = (sweep_exp){e->upper, e->offset};
      while (k && heap[(k - 1) / 2].upper > heap[k].upper) {
        sweep_exp x = heap[k]; heap[k] = heap[(k - 1) / 2]; heap[(k - 1) / 2] = x;
        k = (k - 1) / 2;
      }
    }
  }
  hk__segment_free(seg);
  return found;
}

/* Two passes over the text: the first checks every row and finds the number of rows and the peak,
 * the second fills the table in the final segment. Errors name the file and the line. */
int hk__arena_replay_init(hk_arena *a, const char *path) {
  size_t len = 0;
  char *text = NULL;
  hk__segment *tmp = read_file(path, &len, &text);
  if (!tmp) {
    hk__warning("arena replay: cannot read %s", path);
    return HK_EINVAL;
  }
  int rc = HK_EINVAL;
  uint64_t peak = 0, rows = 0, limit = replay_block_limit();
  hk__segment *seg = NULL;
  hk__arena_replay *r = NULL;
  const char *end = text + len, *line = text;
  if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) line += 3; /* byte-order mark */
  size_t header_line = 1;
  for (;;) { /* the header is the first line that is not blank or a # comment */
    const char *q = line;
    while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
    if (q < end && *q != '\n' && *q != '#') break;
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    if (!nl) break;
    line = nl + 1;
    header_line++;
  }
  const char *le = memchr(line, '\n', (size_t)(end - line));
  if (!le) le = end;
  /* CR-only line ends make the file one line, which passed as a header with no rows when an
   * unknown column came last (every allocation then missed): a CR inside the header is refused. */
  const char *te = le, *cr = NULL;
  while (te > line && te[-1] == '\r') te--; /* (CRLF) */
  for (const char *c = line; c < te && !cr; c++)
    if (*c == '\r') cr = c;
  if (cr) {
    hk__warning("arena replay: %s line %zu: carriage return inside the line: lines must end in LF or CRLF", path,
                header_line);
    goto out;
  }
  int c_id = column(line, le, "id"), c_size = column(line, le, "size"), c_off = column(line, le, "offset");
  int c_up = column(line, le, "upper"); /* optional: without it lifetimes are not checked */
  /* Optional too: the block is aligned to the largest alignment the plan names (up to a
   * segment), so an offset that is a multiple of its row's alignment gives an aligned pointer.
   * A page was all it had before: allocations aligned above 4096 all missed. */
  int c_al = column(line, le, "align");
  uint64_t block_align = 4096;
  size_t ncols = nfields(line, le);
  if (c_id < 0 || c_size < 0 || c_off < 0) {
    hk__warning("arena replay: %s line %zu: the header needs the columns id, size and offset", path, header_line);
    goto out;
  }
  for (int pass = 0; pass < 2; pass++) {
    size_t lineno = header_line;
    for (const char *s = le < end ? le + 1 : end; s < end; lineno++) {
      const char *e = memchr(s, '\n', (size_t)(end - s));
      if (!e) e = end;
      const char *fs, *fe;
      uint64_t id, size, off, up = UINT64_MAX;
      const char *q = s;
      while (q < e && (*q == ' ' || *q == '\r' || *q == '\t')) q++;
      bool blank = q == e || *q == '#'; /* blank lines and # comments are skipped */
      if (!blank && pass == 0) {
        /* A file cut short (a copy or a write that stopped) ends inside a row, often inside a
         * number, which parsed as a smaller valid value: a wrong offset or size served
         * memory that overlaps another allocation's. Every row ends with a newline. */
        if (e == end) {
          hk__warning("arena replay: %s line %zu: the file ends inside this row (no newline after it): is the plan "
                      "cut short?", path, lineno + 1);
          goto out;
        }
        if (nfields(s, e) != ncols) {
          hk__warning("arena replay: %s line %zu: expected %zu fields as in the header, found %zu", path, lineno + 1,
                      ncols, nfields(s, e));
          goto out;
        }
      }
      if (!blank) {
        if (!field(s, e, c_id, &fs, &fe) || !parse_u64(fs, fe, &id) || !field(s, e, c_size, &fs, &fe) ||
            !parse_u64(fs, fe, &size) || !field(s, e, c_off, &fs, &fe) || !parse_u64(fs, fe, &off) ||
            (c_up >= 0 && (!field(s, e, c_up, &fs, &fe) || !parse_u64(fs, fe, &up)))) {
          hk__warning("arena replay: %s line %zu: expected non-negative integers id, size, offset", path, lineno + 1);
          goto out;
        }
        uint64_t al;
        if (pass == 0 && c_al >= 0 && field(s, e, c_al, &fs, &fe) && parse_u64(fs, fe, &al) && al > block_align &&
            (al & (al - 1)) == 0 && al <= HK_SEGMENT_SIZE)
          block_align = al;
        if (size > limit || off > limit - size) {
          hk__warning("arena replay: %s line %zu: %s %llu bytes is more than a replay block can hold (%llu bytes: the "
                      "block is committed whole when the arena is created, so it must fit in the machine's memory, "
                      "and at most 2^46)", path, lineno + 1,
                      size > limit ? "size" : off + size < off ? "offset + size = 2^64 +" : "offset + size =",
                      (unsigned long long)(size > limit ? size : off + size), (unsigned long long)limit);
          goto out;
        }
        if (pass == 0) {
          if (off + size > peak) peak = off + size;
          rows++;
        } else {
          r->table[r->n++] = (plan_entry){id, off, size, up, lineno + 1};
        }
      }
      s = e < end ? e + 1 : end;
    }
    if (pass == 0) {
      size_t n = (size_t)rows;
      size_t table_end = replay_hdr() + n * (sizeof(plan_entry) + sizeof(live_entry));
      size_t block_off = hk__align_up(table_end, (size_t)block_align);
      size_t total = block_off + (size_t)peak;
      seg = hk__segment_alloc(total, HK_SEGMENT_SIZE, HK__SEG_ARENA, replay_hdr());
      /* (the gap an alignment leaves between the table and the block is not committed) */
      if (!seg || hk__segment_commit(seg, 0, table_end, NULL) != HK_OK ||
          hk__segment_commit(seg, block_off, total - block_off, NULL) != HK_OK) {
        rc = HK_ENOMEM;
        goto out_seg;
      }
      seg->owner = a;
      r = (hk__arena_replay *)((char *)seg + hk__align_up(sizeof(hk__segment), 64));
      memset(r, 0, sizeof *r);
      r->seg = seg;
      r->table = (plan_entry *)((char *)seg + replay_hdr());
      r->live = (live_entry *)(r->table + n);
      r->block = (char *)seg + block_off;
      r->peak = (size_t)peak;
    }
  }
  sort_by_id(r->table, r->n);
  for (size_t i = 1; i < r->n; i++)
    if (r->table[i].id == r->table[i - 1].id) {
      uint64_t l1 = r->table[i - 1].line, l2 = r->table[i].line;
      hk__warning("arena replay: %s line %llu: duplicate id %llu (first on line %llu)", path,
                  (unsigned long long)(l1 > l2 ? l1 : l2), (unsigned long long)r->table[i].id,
                  (unsigned long long)(l1 < l2 ? l1 : l2));
      goto out_seg;
    }
  if (c_up >= 0) {
    size_t j = 0;
    bool oom;
    size_t i = plan_overlap(r->table, r->n, &j, &oom);
    if (oom) {
      rc = HK_ENOMEM;
      goto out_seg;
    }
    if (i != SIZE_MAX) {
      const plan_entry *x = &r->table[i], *y = &r->table[j];
      hk__warning("arena replay: %s line %llu: id %llu at offsets [%llu, %llu) overlaps id %llu (line %llu) at "
                  "[%llu, %llu), and both are live at %llu: not a valid plan", path, (unsigned long long)x->line,
                  (unsigned long long)x->id, (unsigned long long)x->offset, (unsigned long long)(x->offset + x->size),
                  (unsigned long long)y->id, (unsigned long long)y->line, (unsigned long long)y->offset,
                  (unsigned long long)(y->offset + y->size), (unsigned long long)x->id);
      goto out_seg;
    }
  }
  if (a->track) hk__track_release(r->block, r->peak < HK__ARENA_TRACK_MAX ? r->peak : HK__ARENA_TRACK_MAX);
  a->replay = r;
  rc = HK_OK;
  goto out;
out_seg:
  if (seg) hk__segment_free(seg);
out:
  hk__segment_free(tmp);
  return rc;
}

void *hk__arena_replay_next(hk_arena *a, size_t size, size_t align) {
  hk__arena_replay *r = a->replay;
  size_t k = a->seq;
  size_t n = hk__arena_round(size);
  if (!r->off_plan && r->nlive && r->live[r->nlive - 1].min_upper <= k) r->off_plan = true;
  while (r->next < r->n && r->table[r->next].id < k) r->next++; /* (k only grows) */
  const plan_entry *pe = r->next < r->n && r->table[r->next].id == k ? &r->table[r->next] : NULL;
  /* (a row whose planned lifetime is empty, upper <= id, is left out of the plan's overlap check:
   * serving it could land on a live allocation, so it is a miss; fuzz.regress.replay_dead_row) */
  if (!r->off_plan && pe && n <= pe->size && pe->upper > k) {
    char *p = r->block + pe->offset;
    if ((uintptr_t)p % align == 0) {
      uint64_t up = pe->upper;
      if (r->nlive && r->live[r->nlive - 1].min_upper < up) up = r->live[r->nlive - 1].min_upper;
      r->live[r->nlive++] = (live_entry){k, up}; /* (ids only grow: each entry is served once, at most n) */
      r->hits++;
      return p;
    }
  }
  r->misses++;
  return NULL;
}

void hk__arena_replay_close(hk_arena *a, size_t from_seq) {
  hk__arena_replay *r = a->replay;
  while (r->nlive && r->live[r->nlive - 1].id >= from_seq) r->nlive--;
}

void hk__arena_replay_free(hk_arena *a) {
  hk__arena_replay *r = a->replay;
  if (!r) return;
  a->replay = NULL;
  hk__track_unpoison_large(r->block, r->peak, true);
  hk__segment_free(r->seg);
}

void hk__arena_replay_stats(const hk_arena *a, size_t *hits, size_t *misses) {
  *hits = a->replay ? a->replay->hits : 0;
  *misses = a->replay ? a->replay->misses : 0;
}

bool hk__arena_replay_contains(const hk_arena *a, const void *p) {
  const hk__arena_replay *r = a->replay;
  return r && (const char *)p >= r->block && (const char *)p < r->block + r->peak;
}
