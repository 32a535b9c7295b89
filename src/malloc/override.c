/* The rest of the drop-in surface: C++ operator new/delete in every form, and glibc's malloc_trim /
 * mallopt. The operators are defined here in C under their mangled names so libheapkit.so does not
 * depend on libstdc++; on failure they use the C++ runtime's new-handler and bad_alloc through weak
 * references, which resolve only in processes that have libstdc++ loaded. */
#include "malloc/malloc.h"

#if HK_OVERRIDE
#include <errno.h>

#define HK_EXPORT __attribute__((visibility("default")))

typedef void (*hk__new_handler)(void);
extern hk__new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static hk_noinline void *new_fail(size_t size, size_t align, bool nothrow) {
  for (;;) {
    hk__new_handler handler = _ZSt15get_new_handlerv ? _ZSt15get_new_handlerv() : NULL;
    if (!handler) {
      if (nothrow) return NULL;
      if (_ZSt17__throw_bad_allocv) _ZSt17__throw_bad_allocv();
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
static hk_forceinline void *new_aligned(size_t size, size_t align, bool nothrow) {
  if (!hk__is_pow2(align)) { if (nothrow) return NULL; hk__fatal("operator new: alignment %zu is not a power of two", align); }
  void *p = hk_aligned_alloc(align, size ? size : 1);
  return hk_likely(p != NULL) ? p : new_fail(size, align, nothrow);
}

typedef struct nothrow_t nothrow_t;
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
HK_EXPORT int malloc_trim(size_t pad) { (void)pad; hk_collect(true); return 1; }
HK_EXPORT int mallopt(int param, int value) { (void)param; (void)value; return 1; }
#endif
