/* The general allocator: the malloc family with glibc's semantics, and first-class heaps. */
#ifndef HEAPKIT_MALLOC_H
#define HEAPKIT_MALLOC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(1) void *hk_malloc(size_t size);
HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(1, 2) void *hk_calloc(size_t count, size_t size);
HK_API HK_ALLOC_SIZE(2) void *hk_realloc(void *p, size_t size);
HK_API HK_ALLOC_SIZE(2, 3) void *hk_reallocarray(void *p, size_t count, size_t size);
HK_API void hk_free(void *p);
/* hk_free(p): size is ignored (the page knows the block's size). A wrong size is not detected, in
 * any build, and does no harm. C++ sized operator delete comes here. */
HK_API void hk_free_sized(void *p, size_t size);
/* 0, or EINVAL (alignment not a power of two or not a multiple of sizeof(void *)) or ENOMEM:
 * errno values, not hk_error codes; *out is untouched on failure. */
HK_API int hk_posix_memalign(void **out, size_t alignment, size_t size);
HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(2) void *hk_aligned_alloc(size_t alignment, size_t size);
HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(2) void *hk_memalign(size_t alignment, size_t size);
HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(1) void *hk_valloc(size_t size);
/* size rounded up to whole OS pages (0 gives one page), page-aligned; NULL with ENOMEM when the
 * rounding overflows. */
HK_API HK_MALLOC_LIKE void *hk_pvalloc(size_t size);
HK_API size_t hk_malloc_usable_size(const void *p);
/* Copies from hk_malloc (strndup: at most n bytes, always terminated); NULL with ENOMEM. s must
 * not be NULL, as in libc. */
HK_API HK_MALLOC_LIKE char *hk_strdup(const char *s);
HK_API HK_MALLOC_LIKE char *hk_strndup(const char *s, size_t n);

/* True if p points into a live block of heapkit's general allocator (interior pointers count), so
 * that a program that mixes allocators knows whose free to call. Safe on any value, including wild
 * pointers. A freed block is recognised as such when the calling thread owns its page (the thread
 * that allocated it, while that thread lives); for other threads' pages a freed small block may
 * still be reported as owned, since their free lists cannot be read safely; so may a block another
 * thread freed until that thread hands it back (its small buffer of remote frees is emptied by its
 * periodic work on allocation slow paths, by hk_collect and at thread exit). */
HK_API bool hk_owns(const void *p);

/* First-class heaps. A heap allocates only on the thread that created it; its blocks may be freed
 * from any thread. hk_heap_destroy frees every block in the heap at once; hk_heap_delete keeps the
 * blocks alive (they migrate to the thread's default heap) and frees only the heap. A heap still
 * alive when its thread exits is deleted then: its blocks stay allocated, its handle is dead. */
typedef struct hk_heap_s hk_heap;

HK_API hk_heap *hk_heap_new(void);
HK_API void hk_heap_destroy(hk_heap *heap);
HK_API void hk_heap_delete(hk_heap *heap);
/* The calling thread's default heap (the one malloc uses), set up on first use; NULL when its
 * record cannot be allocated. Allocate from it on this thread only; never destroy or delete it.
 * After the thread's exit (from a later pthread key destructor) a handle whose calls allocate as
 * malloc does then, each block from a record given up at once. */
HK_API hk_heap *hk_heap_get_default(void);
HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(2) void *hk_heap_malloc(hk_heap *heap, size_t size);
HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(2, 3) void *hk_heap_calloc(hk_heap *heap, size_t count, size_t size);
/* p may be a block of any heap (or of malloc); when it fits in place it is returned and stays in
 * the heap it belongs to (so goes with that heap's hk_heap_destroy); a block that moves is
 * allocated from heap. */
HK_API HK_ALLOC_SIZE(3) void *hk_heap_realloc(hk_heap *heap, void *p, size_t size);
HK_API HK_MALLOC_LIKE HK_ALLOC_SIZE(3) void *hk_heap_malloc_aligned(hk_heap *heap, size_t alignment, size_t size);
/* True if p is a live block of this heap (freed blocks as for hk_owns). The threads' default heaps
 * count as one: for a default heap, true for any live block that malloc and its family handed
 * out (a thread's malloc may return a block of another thread's page, kept in its foreign-block
 * cache, and an exited thread's pages pass to the thread that adopts them). A first-class heap
 * contains exactly the blocks allocated from it. The handle is not checked (unlike the other
 * hk_heap_* calls): a NULL heap gives false, and any thread may ask about any live heap. */
HK_API bool hk_heap_contains(const hk_heap *heap, const void *p);

#ifdef __cplusplus
}
#endif
#endif
