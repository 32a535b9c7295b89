/* Save points, cleanups and reset: the ways memory comes back from an arena.
 *
 * A cleanup record is allocated from the arena itself, so the records registered after a mark die
 * with the memory the mark releases. Marks count cleanups instead of pointing at a record, so a
 * stale mark can never make restore walk into records that no longer exist. */
#include "arena/arena_internal.h"

hk_arena_mark hk_arena_save(hk_arena *a) {
  hk_arena_mark m = {0};
  if (!a || a->magic != HK__ARENA_MAGIC) {
    hk__warning("hk_arena_save(%p): not a live arena", (void *)a);
    return m;
  }
  m.arena = a;
  m.chunk = hk__arena_cur(a);
  m.pos = hk__arena_pos(a);
  m.cleanups = a->ncleanups;
  m.seq = a->seq;
  return m;
}

void hk__arena_run_cleanups(hk_arena *a, size_t keep) {
  while (a->ncleanups > keep) {
    hk__arena_cleanup *q = a->cleanups;
    a->cleanups = q->next;
    a->ncleanups--;
    q->fn(q->arg);
  }
}

size_t hk__arena_restore_to(hk_arena *a, hk__arena_chunk *c, char *pos, size_t cleanups, size_t seq) {
  hk__arena_sync_stats(a);
  hk__arena_run_cleanups(a, cleanups);
  if (a->trace) hk__arena_trace_close(a, seq);
  if (a->replay) hk__arena_replay_close(a, seq);
  hk__arena_chunk *cur = hk__arena_cur(a);
  char *curpos = hk__arena_pos(a);
  for (hk__arena_chunk *x = c;; x = x->next) {
    char *from = x == c ? pos : x->base;
    char *to = x == cur ? curpos : (char *)hk__chunk_pos(x);
    if (to > x->limit) to = x->limit;
    hk__arena_release_range(a, from, to);
    if (x != c) atomic_store_explicit(&x->pos, (uintptr_t)x->base, memory_order_relaxed);
    if (x == cur) break;
  }
  atomic_store_explicit(&c->pos, (uintptr_t)pos, memory_order_relaxed);
  atomic_store_explicit(&a->cur, c, memory_order_release);
  if (!a->slow_only) {
    a->head.cur = pos;
    a->head.end = hk__chunk_commit_end(c);
  }
  return hk__arena_sync_stats(a);
}

/* Trimming on every restore would make per-request save/restore pay system calls; only trim when
 * the committed memory left unused is well past the retention. */
static bool restore_should_trim(hk_arena *a, size_t allocated) {
  size_t slack = a->committed - (allocated < a->committed ? allocated : a->committed);
  size_t allowance = a->retain + 2 * a->commit_step + a->nchunks * hk__arena_header_size(true) +
                     a->nchunks * (HK_SEGMENT_SIZE / HK_SEGMENT_UNITS);
  return slack > allowance || hk__arena_cur(a)->next != NULL;
}

/* A stale mark can pass the position checks below when the arena has since reached its position
 * again. Restoring it would keep the m.cleanups oldest records while releasing the memory of those
 * that were registered after the earlier restore (and lie past m.pos): the next allocations would
 * overwrite them and destroy would call garbage. A live mark's kept records were all allocated
 * before it was saved, so the newest one lies before (c, pos) unless the mark is stale. Records
 * outside the chunks (a replay arena's planned block) are not judged. */
static bool kept_cleanups_before(const hk_arena *a, const hk__arena_chunk *c, const char *pos, size_t keep) {
  const hk__arena_cleanup *q = a->cleanups;
  for (size_t n = a->ncleanups; q && n > keep; n--) q = q->next;
  if (!q) return true;
  const char *p = (const char *)q;
  if (p >= c->base && p < c->limit) return p < pos;
  for (const hk__arena_chunk *x = c->next; x; x = x->next)
    if (p >= x->base && p < x->limit) return false;
  return true;
}

void hk_arena_restore(hk_arena *a, hk_arena_mark m) {
  if (!a || a->magic != HK__ARENA_MAGIC) {
    hk__warning("hk_arena_restore(%p): not a live arena; ignored", (void *)a);
    return;
  }
  if (m.arena != a) {
    hk__warning("hk_arena_restore(%p): the mark belongs to arena %p; ignored", (void *)a, (void *)m.arena);
    return;
  }
  hk__arena_chunk *cur = hk__arena_cur(a), *c = a->first;
  while (c && c != (hk__arena_chunk *)m.chunk && c != cur) c = c->next;
  char *pos = hk__arena_pos(a);
  if (c != (hk__arena_chunk *)m.chunk || m.pos < c->base || m.pos > c->limit || (c == cur && m.pos > pos) ||
      m.cleanups > a->ncleanups || !kept_cleanups_before(a, c, m.pos, m.cleanups)) {
    hk__warning("hk_arena_restore(%p): the mark was already released by an earlier restore or reset; ignored",
                (void *)a);
    return;
  }
  size_t now = hk__arena_restore_to(a, c, m.pos, m.cleanups, m.seq);
  if (restore_should_trim(a, now)) hk__arena_trim(a);
  hk_assert_expensive(hk__arena_is_valid(a));
}

void hk_arena_reset(hk_arena *a) {
  if (!a || a->magic != HK__ARENA_MAGIC) {
    hk__warning("hk_arena_reset(%p): not a live arena; ignored", (void *)a);
    return;
  }
  /* A scratch arena may hold outer scopes' memory, and the first one holds the thread's own
   * record of its regions and scratch arenas: a reset released it, and the next scope read freed
   * memory. Scratch memory is released by hk_scratch_end only (as destroy is refused). */
  if (a->role == HK__ROLE_SCRATCH) {
    hk__warning("hk_arena_reset(%p): this arena belongs to the scratch set of its thread; use hk_scratch_end; ignored",
                (void *)a);
    return;
  }
  hk__arena_restore_to(a, a->first, a->first->base, 0, 0);
  hk__arena_trim(a);
  hk_assert_expensive(hk__arena_is_valid(a));
}

int hk_arena_defer(hk_arena *a, void (*fn)(void *), void *arg) {
  if (!a || a->magic != HK__ARENA_MAGIC || !fn) return HK_EINVAL;
  hk__arena_cleanup *q = hk__arena_alloc_record(a, sizeof *q);
  if (!q) return HK_ENOMEM;
  q->fn = fn;
  q->arg = arg;
  hk__arena_lock(a);
  q->next = a->cleanups;
  a->cleanups = q;
  a->ncleanups++;
  hk__arena_unlock(a);
  return HK_OK;
}
