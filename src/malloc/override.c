/* The rest of the drop-in surface: C++ operator new/delete in every form, and glibc's mallinfo,
 * malloc_trim, mallopt, malloc_stats and malloc_info. The operators are defined here in C under
 * their mangled names so libheapkit.so does not depend on libstdc++; on failure they use the C++
 * runtime's new-handler and bad_alloc through weak references, which resolve in processes that
 * have the runtime loaded at start, or through a look-up of the runtime loaded later
 * (cxx_runtime_find). */
#define _GNU_SOURCE /* dladdr, RTLD_NEXT */
#include "malloc/malloc.h"

#if HK_OVERRIDE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

#define HK_EXPORT __attribute__((visibility("default")))

typedef void (*hk__new_handler)(void);
extern hk__new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

typedef struct nothrow_t nothrow_t;
HK_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const nothrow_t *t);
HK_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const nothrow_t *t);

/* The C++ runtime's new-handler getter and bad_alloc thrower. The weak references are resolved when
 * the library is loaded: a C program (python3, say) that loads a C++ plugin later has them NULL
 * for good, and the plugin's failed operator new ended the process ("operator new(N): out of
 * memory") instead of throwing std::bad_alloc, its new-handler never called. So on a failure with
 * either missing, the runtime is looked up among the loaded objects by its soname (not kept: the
 * plugin, and the runtime with it, may be unloaded before the next failure). */
typedef struct cxx_runtime {
  hk__new_handler (*get_new_handler)(void);
  void (*throw_bad_alloc)(void);
} cxx_runtime;

static cxx_runtime cxx_runtime_find(void) {
  cxx_runtime rt = {_ZSt15get_new_handlerv, _ZSt17__throw_bad_allocv};
  static const char *const sonames[] = {"libstdc++.so.6", "libc++.so.1", "libc++abi.so.1"};
  for (size_t i = 0; i < sizeof sonames / sizeof sonames[0] && !(rt.get_new_handler && rt.throw_bad_alloc); i++) {
    void *lib = dlopen(sonames[i], RTLD_LAZY | RTLD_NOLOAD);
    if (!lib) continue;
    if (!rt.get_new_handler) rt.get_new_handler = (hk__new_handler(*)(void))dlsym(lib, "_ZSt15get_new_handlerv");
    if (!rt.throw_bad_alloc) rt.throw_bad_alloc = (void (*)(void))dlsym(lib, "_ZSt17__throw_bad_allocv");
    dlclose(lib); /* (NOLOAD took a reference of its own; the objects that loaded it keep theirs) */
  }
  return rt;
}

static hk_noinline void throw_bad_alloc(const cxx_runtime *rt) {
  if (rt->throw_bad_alloc) {
    rt->throw_bad_alloc();
    __builtin_unreachable();
  }
}

/* The C++ runtime's own definition of a nothrow operator new (ours interposes it): the runtime
 * defines it as a try { operator new } catch (...) { return nullptr; } around the throwing form,
 * which is ours. Found through the object that defines get_new_handler, else the next object
 * after ours; NULL when neither is another definition (a statically linked runtime). */
static void *runtime_nothrow_new(const cxx_runtime *rt, const char *name, void *own) {
  void *f = NULL;
  Dl_info di;
  if (dladdr((void *)rt->get_new_handler, &di) && di.dli_fname) {
    void *lib = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (lib) {
      f = dlsym(lib, name);
      dlclose(lib);
    }
  }
  if (f == NULL || f == own) f = dlsym(RTLD_NEXT, name);
  return f == own ? NULL : f;
}

static const char nothrow_tag; /* the std::nothrow argument: its value is not read */
#define NOTHROW_ARG ((const nothrow_t *)&nothrow_tag)

static hk_noinline void *new_fail(size_t size, size_t align, bool nothrow) {
  /* A nothrow form must return NULL when the new-handler throws std::bad_alloc, as handlers are
   * meant to when they cannot free memory; C cannot catch it, and it ended the process (the
   * caller, expecting no exception from a noexcept operator, has no handler: std::terminate). So
   * with a handler installed, the runtime's nothrow form runs the handler loop, through our
   * throwing form, inside its catch. */
  cxx_runtime rt = cxx_runtime_find();
  if (nothrow && rt.get_new_handler && rt.get_new_handler()) {
    if (align) {
      void *(*f)(size_t, size_t, const nothrow_t *) = (void *(*)(size_t, size_t, const nothrow_t *))
          runtime_nothrow_new(&rt, "_ZnwmSt11align_val_tRKSt9nothrow_t", (void *)_ZnwmSt11align_val_tRKSt9nothrow_t);
      if (f) return f(size, align, NOTHROW_ARG);
    } else {
      void *(*f)(size_t, const nothrow_t *) =
          (void *(*)(size_t, const nothrow_t *))runtime_nothrow_new(&rt, "_ZnwmRKSt9nothrow_t", (void *)_ZnwmRKSt9nothrow_t);
      if (f) return f(size, NOTHROW_ARG);
    }
  }
  for (;;) {
    hk__new_handler handler = rt.get_new_handler ? rt.get_new_handler() : NULL;
    if (!handler) {
      if (nothrow) return NULL;
      throw_bad_alloc(&rt);
      hk__fatal("operator new(%zu): out of memory", size);
    }
    handler();
    void *p = align ? hk_aligned_alloc(align, size ? size : 1) : hk_malloc(size);
    if (p) return p;
  }
}

static hk_forceinline void *new_impl(size_t size, bool nothrow) {
  void *p = hk_malloc(size);
  return hk_likely(p != NULL) ? p : new_fail(size, 0, nothrow);
}
/* An alignment that is not a power of two breaks operator new's precondition: libstdc++'s own forms
 * throw std::bad_alloc (without calling the new-handler) and its nothrow forms return nullptr, so a
 * program that catches it keeps working when heapkit is preloaded. Without a C++ runtime nothing can
 * throw: the process ends. */
static hk_noinline void *new_bad_align(size_t align, bool nothrow) {
  if (nothrow) return NULL;
  cxx_runtime rt = cxx_runtime_find();
  throw_bad_alloc(&rt);
  hk__fatal("operator new: alignment %zu is not a power of two", align);
}
static hk_forceinline void *new_aligned(size_t size, size_t align, bool nothrow) {
  if (!hk__is_pow2(align)) return new_bad_align(align, nothrow);
  void *p = hk_aligned_alloc(align, size ? size : 1);
  return hk_likely(p != NULL) ? p : new_fail(size, align, nothrow);
}

HK_EXPORT void *_Znwm(size_t n) { return new_impl(n, false); }
HK_EXPORT void *_Znam(size_t n) { return new_impl(n, false); }
HK_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const nothrow_t *t) { (void)t; return new_impl(n, true); }
HK_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const nothrow_t *t) { (void)t; return new_impl(n, true); }
HK_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a, false); }
HK_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) { return new_aligned(n, a, false); }
HK_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const nothrow_t *t) { (void)t; return new_aligned(n, a, true); }
HK_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const nothrow_t *t) { (void)t; return new_aligned(n, a, true); }

HK_EXPORT void _ZdlPv(void *p) { hk_free(p); }
HK_EXPORT void _ZdaPv(void *p) { hk_free(p); }
HK_EXPORT void _ZdlPvm(void *p, size_t n) { hk_free_sized(p, n); }
HK_EXPORT void _ZdaPvm(void *p, size_t n) { hk_free_sized(p, n); }
HK_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const nothrow_t *t) { (void)t; hk_free(p); }
HK_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const nothrow_t *t) { (void)t; hk_free(p); }
HK_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; hk_free(p); }
HK_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; hk_free(p); }
HK_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; hk_free(p); }
HK_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n; (void)a; hk_free(p); }
HK_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const nothrow_t *t) { (void)a; (void)t; hk_free(p); }
HK_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const nothrow_t *t) { (void)a; (void)t; hk_free(p); }

/* glibc extensions some programs call: trimming returns unused memory now; options are accepted. */

/* glibc <malloc.h>'s layouts, field for field (declared here so the library builds against C
 * libraries without mallinfo2). The mapping onto heapkit's statistics is in docs/architecture.md. */
struct hk__mallinfo2 { size_t arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost; };
struct hk__mallinfo { int arena, ordblks, smblks, hblks, hblkhd, usmblks, fsmblks, uordblks, fordblks, keepcost; };
HK_EXPORT struct hk__mallinfo2 mallinfo2(void);
HK_EXPORT struct hk__mallinfo mallinfo(void);
HK_EXPORT struct hk__mallinfo __libc_mallinfo(void);

HK_EXPORT struct hk__mallinfo2 mallinfo2(void) {
  hk_stats s;
  hk_stats_get(&s);
  /* glibc counts mmapped chunks only in hblks/hblkhd, not in arena/uordblks: so do we with the
   * blocks in their own segment */
  size_t huge = atomic_load_explicit(&hk__huge_bytes, memory_order_relaxed);
  size_t arena = s.committed > huge ? s.committed - huge : 0;
  size_t used = s.in_use > huge ? s.in_use - huge : 0;
  if (used > arena) used = arena; /* the counters are sampled apart: keep arena = used + free */
  struct hk__mallinfo2 m = {0};
  m.arena = arena;
  m.hblks = s.huge_count;
  m.hblkhd = huge;
  m.uordblks = used;
  m.fordblks = arena - used;
  return m;
}

/* glibc 2.36 fills mallinfo from mallinfo2 by plain assignment: a figure past INT_MAX keeps its low
 * 32 bits (two 3 GiB blocks: hblkhd 6442459136 in mallinfo2, -2147475456 in mallinfo). Same here,
 * through uint32_t so the conversion is GCC's documented modulo one. */
static int low32(size_t v) { return (int)(uint32_t)v; }

HK_EXPORT struct hk__mallinfo mallinfo(void) {
  struct hk__mallinfo2 m = mallinfo2();
  return (struct hk__mallinfo){low32(m.arena), low32(m.ordblks), low32(m.smblks), low32(m.hblks), low32(m.hblkhd),
                               low32(m.usmblks), low32(m.fsmblks), low32(m.uordblks), low32(m.fordblks), low32(m.keepcost)};
}
HK_EXPORT struct hk__mallinfo __libc_mallinfo(void) { return mallinfo(); }

/* glibc: 1 if memory was given back to the system, else 0. Here: whether the forced collection
 * purged pages or released segments (the page layer's purge total rose or its committed bytes
 * fell). Another thread's release in between also counts, which only makes a 1 less precise.
 * pad is ignored: heapkit keeps no top chunk to leave padding in. */
HK_EXPORT int malloc_trim(size_t pad) {
  (void)pad;
  hk_stats before, after;
  hk__page_stats(&before);
  hk_collect(true);
  hk__page_stats(&after);
  return after.purged > before.purged || after.committed < before.committed;
}
HK_EXPORT int mallopt(int param, int value) { (void)param; (void)value; return 1; }
/* glibc exports mallopt under this name too (the other __libc_ names are in alloc.c and free.c) */
HK_EXPORT int __libc_mallopt(int param, int value);
HK_EXPORT int __libc_mallopt(int param, int value) { return mallopt(param, value); }

/* malloc_stats and malloc_info, in glibc's formats, from the figures mallinfo2 gives (left to glibc,
 * they described glibc's own heap, which nothing under heapkit uses: every figure 0). heapkit keeps
 * no peak of the blocks in their own segments: the "max mmap" lines and the totals' "max" are the
 * current count, the committed peak. */
HK_EXPORT void malloc_stats(void);
HK_EXPORT int malloc_info(int options, FILE *fp);

HK_EXPORT void malloc_stats(void) {
  struct hk__mallinfo2 m = mallinfo2();
  char buf[512];
  /* (snprintf of integers does not allocate; glibc also writes to stderr) */
  int n = snprintf(buf, sizeof buf,
                   "Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\nTotal (incl. mmap):\n"
                   "system bytes     = %10zu\nin use bytes     = %10zu\nmax mmap regions = %10zu\nmax mmap bytes   = %10zu\n",
                   m.arena, m.uordblks, m.arena + m.hblkhd, m.uordblks + m.hblkhd, m.hblks, m.hblkhd);
  if (n > 0) hk__write_fd(2, buf);
}

HK_EXPORT int malloc_info(int options, FILE *fp) {
  if (options != 0) return EINVAL; /* glibc: the only defined value is 0 */
  struct hk__mallinfo2 m = mallinfo2();
  hk_stats s;
  hk_stats_get(&s);
  size_t huge = m.hblkhd, peak = s.committed_peak > huge ? s.committed_peak - huge : 0;
  if (peak < m.arena) peak = m.arena;
  fprintf(fp,
          "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
          "<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n<system type=\"current\" size=\"%zu\"/>\n"
          "<system type=\"max\" size=\"%zu\"/>\n<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</heap>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
          "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n<system type=\"current\" size=\"%zu\"/>\n"
          "<system type=\"max\" size=\"%zu\"/>\n<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
          "</malloc>\n",
          m.fordblks, m.arena, peak, m.arena, m.arena, m.fordblks, m.hblks, m.hblkhd, m.arena, peak, m.arena, m.arena);
  return 0;
}
#endif
