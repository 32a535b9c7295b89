// A C++ plugin for malloc_cxx_host (a C program that loads it with dlopen, under LD_PRELOAD): its
// operator new is the preloaded library's, whose references to the C++ runtime were resolved at
// start, when no runtime was loaded. Returns the number of failed checks (each printed).
#include <cstdint>
#include <cstdio>
#include <new>

static int failed;
#define EXPECT(c)                                                                                 \
  do {                                                                                            \
    if (!(c)) {                                                                                   \
      std::fprintf(stderr, "malloc_cxx_plugin: %s:%d: expectation failed: %s\n", __FILE__, __LINE__, #c); \
      failed++;                                                                                   \
    }                                                                                             \
  } while (0)

static size_t opaque(size_t x) {
  volatile size_t v = x;
  return v;
}
static void *volatile sink;
static int handler_calls;

template <class F> static bool throws_bad_alloc(F f) {
  try {
    sink = f();
  } catch (const std::bad_alloc &) {
    return true;
  }
  return false;
}

extern "C" __attribute__((visibility("default"))) int hk_test_cxx_plugin(void);
extern "C" int hk_test_cxx_plugin(void) {
  const size_t huge = opaque(SIZE_MAX / 4);
  EXPECT(throws_bad_alloc([&] { return ::operator new(huge); }));
  EXPECT(throws_bad_alloc([&] { return ::operator new[](huge); }));
  EXPECT(throws_bad_alloc([&] { return ::operator new(huge, std::align_val_t{64}); }));
  EXPECT(throws_bad_alloc([&] { return ::operator new(16, std::align_val_t{opaque(48)}); }));
  EXPECT(::operator new(huge, std::nothrow) == nullptr);
  // the plugin's new-handler is called before bad_alloc is thrown
  handler_calls = 0;
  std::set_new_handler([] { handler_calls++; std::set_new_handler(nullptr); });
  EXPECT(throws_bad_alloc([&] { return ::operator new(huge); }) && handler_calls == 1);
  std::set_new_handler([] { handler_calls++; std::set_new_handler(nullptr); });
  EXPECT(::operator new(huge, std::nothrow) == nullptr && handler_calls == 2);
  // a handler that throws bad_alloc: the nothrow forms still return nullptr
  std::set_new_handler([] { handler_calls++; throw std::bad_alloc(); });
  EXPECT(::operator new(huge, std::nothrow) == nullptr && handler_calls == 3);
  EXPECT(::operator new(huge, std::align_val_t{256}, std::nothrow) == nullptr && handler_calls == 4);
  std::set_new_handler(nullptr);
  void *p = ::operator new(100);
  ::operator delete(p, 100);
  return failed;
}
