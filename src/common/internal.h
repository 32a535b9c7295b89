/* Internal definitions shared by every layer: assertions by debug level, branch hints, the error
 * reporter and the options table. Never included by users. */
#ifndef HK_INTERNAL_H
#define HK_INTERNAL_H
#if !defined(HK_BUILDING_LIBRARY) && !defined(HK_BUILDING_TOOL) && !defined(HK_INTERNAL_TEST)
#error "src/ headers are internal to heapkit: include <heapkit.h> instead"
#endif

#include <heapkit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#ifndef HK_DEBUG
#define HK_DEBUG 0
#endif
#ifndef HK_STATS
#define HK_STATS 1
#endif

#define hk_likely(x) __builtin_expect(!!(x), 1)
#define hk_unlikely(x) __builtin_expect(!!(x), 0)
#define hk_noinline __attribute__((noinline))
#define hk_cold __attribute__((cold, noinline))
#define hk_forceinline inline __attribute__((always_inline))
#define HK_INTERNAL __attribute__((visibility("hidden")))

/* Three assertion tiers: hk_assert is cheap and on from level 1, hk_assert_internal from level 2,
 * hk_assert_expensive (whole-structure walks) from level 3. */
HK_INTERNAL _Noreturn void hk__assert_fail(const char *expr, const char *file, int line);
#define hk__assert_always(e) ((e) ? (void)0 : hk__assert_fail(#e, __FILE__, __LINE__))
#if HK_DEBUG >= 1
#define hk_assert(e) hk__assert_always(e)
#else
#define hk_assert(e) ((void)0)
#endif
#if HK_DEBUG >= 2
#define hk_assert_internal(e) hk__assert_always(e)
#else
#define hk_assert_internal(e) ((void)0)
#endif
#if HK_DEBUG >= 3
#define hk_assert_expensive(e) hk__assert_always(e)
#else
#define hk_assert_expensive(e) ((void)0)
#endif

/* Messages. hk__fatal prints "heapkit: <message>" on one line to stderr and aborts; it never
 * allocates. hk__warning prints when verbose >= 1. */
HK_INTERNAL _Noreturn void hk__fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HK_INTERNAL void hk__warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
HK_INTERNAL void hk__trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Always printed, "heapkit: " first (for output an option asked for, such as HEAPKIT_GC_TRACE). */
HK_INTERNAL void hk__message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Formats into buf without allocating (a small vsnprintf subset: %s %d %u %ld %lu %zu %zd %p %x %lx %%). */
HK_INTERNAL int hk__snprintf(char *buf, size_t size, const char *fmt, ...);
HK_INTERNAL void hk__write_fd(int fd, const char *s);

/* Options: read from HEAPKIT_* on first use. */
HK_INTERNAL void hk__options_init(void);
HK_INTERNAL extern long hk__options[HK_OPT__COUNT];
static inline long hk__opt(hk_option o) { return hk__options[o]; }
/* Non-zero once a malloc page has been set up: from then on hk_option_set refuses to switch hardened
 * mode on (options.c). A page's set-up calls hk__opt_page_hardened. */
HK_INTERNAL extern int hk__pages_set_up;
static inline bool hk__opt_page_hardened(void) {
  if (!__atomic_load_n(&hk__pages_set_up, __ATOMIC_SEQ_CST)) __atomic_store_n(&hk__pages_set_up, 1, __ATOMIC_SEQ_CST);
  return __atomic_load_n(&hk__options[HK_OPT_HARDENED], __ATOMIC_SEQ_CST) != 0;
}

/* A copy of the library linked into a shared object that may be unloaded (a plugin that links
 * libheapkit.a; crtbeginS's __dso_handle points to itself, an executable's is NULL): each
 * thread-exit key then goes with the object's code, from a destructor of the object (the allocator's
 * in src/malloc/heap.c, plugin_unload, where the decision is explained). Not in libheapkit.so,
 * which is never unloaded (-z nodelete, HK_NODELETE), so that it has no such destructor at all. */
#if defined(HK_NODELETE) && HK_NODELETE
#define HK_UNLOADABLE 0
#else
#define HK_UNLOADABLE 1
extern void *__dso_handle __attribute__((weak, visibility("hidden")));
static inline bool hk__in_unloadable_object(void) { return &__dso_handle != NULL && __dso_handle != NULL; }
#endif

/* A thread-exit key that goes with the object holding this copy of the library: every thread key
 * of the library (the allocator's, the pools', the region stack's, the collector's) is one of
 * these. hk__tkey_unload, from a destructor of the object, deletes it once (so no destructor runs
 * in the unmapped code: malloc.key_dlclose), and it is never set again, since its number may be
 * another library's by then. Only slow paths touch it (a thread's first use, thread exit). */
typedef struct hk__tkey {
  pthread_key_t key;
  _Atomic bool live; /* created, and not unloaded */
} hk__tkey;

/* 0, or pthread_key_create's error. */
static inline int hk__tkey_create(hk__tkey *k, void (*dtor)(void *)) {
  int e = pthread_key_create(&k->key, dtor);
  if (e == 0) atomic_store_explicit(&k->live, true, memory_order_release);
  return e;
}
/* 0 when set; non-zero when the key was never created, is unloaded, or pthread refused. */
static inline int hk__tkey_set(hk__tkey *k, const void *value) {
  if (!atomic_load_explicit(&k->live, memory_order_acquire)) return -1;
  return pthread_setspecific(k->key, value);
}
/* NULL once unloaded (or never created). */
static inline void *hk__tkey_get(hk__tkey *k) {
  return atomic_load_explicit(&k->live, memory_order_acquire) ? pthread_getspecific(k->key) : NULL;
}
#if HK_UNLOADABLE
/* From a destructor of the object: in a plugin being unloaded, the key goes; in an executable
 * (exit ends every thread anyway) nothing happens. */
static inline void hk__tkey_unload(hk__tkey *k) {
  if (hk__in_unloadable_object() && atomic_exchange_explicit(&k->live, false, memory_order_acq_rel))
    pthread_key_delete(k->key);
}
#endif

/* The allocator's process-wide locks (the page layer's segment cache, the meta records, the
 * abandoned and large segment lists, the thread list) are held across fork by its prepare handler.
 * glibc runs prepare handlers last-registered first and the parent and child ones first-registered
 * first, and a library initialised before heapkit (a program's own library, under LD_PRELOAD)
 * registers its handlers first: its prepare handler runs after heapkit's has taken the locks, its
 * parent and child ones before heapkit's release them. One that allocates (glibc's malloc allows
 * it: glibc takes its own locks after every handler) waited for a lock its own thread held: the
 * fork hung. While the forking thread holds them, hk__fork_holder is its thread pointer, and the
 * hk__glock calls on those locks do nothing on that thread: nothing else can run inside them. */
HK_INTERNAL extern _Atomic uintptr_t hk__fork_holder;
/* The same for every group of locks a fork handler of heapkit holds across the fork (the shared
 * pools', the concurrent arenas', the collector heaps'): each group has its own holder, set by its
 * prepare handler once it holds the group's locks and cleared by its parent and child handlers
 * before they let them go, so a lock is skipped only while its own group is held (the groups'
 * handlers are registered at different times, and between them other threads of the parent run:
 * a group released already is taken as usual). */
static inline bool hk__holds(_Atomic uintptr_t *holder) {
  uintptr_t t = atomic_load_explicit(holder, memory_order_relaxed);
  return hk_unlikely(t != 0) && t == (uintptr_t)__builtin_thread_pointer();
}
static inline void hk__hold(_Atomic uintptr_t *holder, bool on) {
  atomic_store_explicit(holder, on ? (uintptr_t)__builtin_thread_pointer() : 0, memory_order_relaxed);
}
static inline void hk__hlock(_Atomic uintptr_t *holder, pthread_mutex_t *m) { if (!hk__holds(holder)) pthread_mutex_lock(m); }
static inline void hk__hunlock(_Atomic uintptr_t *holder, pthread_mutex_t *m) { if (!hk__holds(holder)) pthread_mutex_unlock(m); }
static inline bool hk__fork_holds(void) { return hk__holds(&hk__fork_holder); }
static inline void hk__glock(pthread_mutex_t *m) { hk__hlock(&hk__fork_holder, m); }
static inline void hk__gunlock(pthread_mutex_t *m) { hk__hunlock(&hk__fork_holder, m); }
static inline int hk__gtrylock(pthread_mutex_t *m) { return hk__fork_holds() ? 0 : pthread_mutex_trylock(m); }

/* Monotonic milliseconds, cheap (vDSO). */
HK_INTERNAL int64_t hk__clock_ms(void);

static inline size_t hk__align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline size_t hk__align_down(size_t n, size_t a) { return n & ~(a - 1); }
/* n rounded up to a multiple of a, any a > 0: a segment's commit unit is a 64th of its size, and
 * an arena chunk or pool segment sized for one big request (68 MiB, say) has a unit that is no
 * power of two, which hk__align_up's mask silently got wrong (a commit end between units, or
 * below the request). */
static inline size_t hk__round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
static inline int hk__is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }
static inline int hk__mul_overflow(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }

#endif
