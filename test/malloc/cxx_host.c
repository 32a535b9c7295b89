/* malloc.cxx_plugin: a C program (no C++ runtime at start, as python3) loads a C++ plugin with
 * dlopen, under LD_PRELOAD=libheapkit.so, and the plugin's failing operator new must throw
 * std::bad_alloc and call its new-handler as without heapkit (cxx_plugin.cc). Before review
 * (2026-12-07) heapkit's weak references to the runtime, resolved at start, stayed NULL: the first
 * failure ended the process with "heapkit: operator new(N): out of memory".
 * Usage: LD_PRELOAD=<lib.so> malloc_cxx_host <lib.so> <plugin.so> */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: LD_PRELOAD=<lib> %s <lib> <plugin>\n", argv[0]); return 2; }
  /* the operator the plugin calls is the preloaded one (else the test proves nothing) */
  Dl_info di;
  void *op = dlsym(RTLD_DEFAULT, "_Znwm");
  const char *base = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
  if (!op || !dladdr(op, &di) || !di.dli_fname || !strstr(di.dli_fname, base)) {
    fprintf(stderr, "malloc_cxx_host: operator new is not the preloaded %s's\n", argv[1]);
    return 1;
  }
  if (dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv")) {
    fprintf(stderr, "malloc_cxx_host: a C++ runtime is loaded before the plugin: the test needs none\n");
    return 1;
  }
  void *h = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "malloc_cxx_host: %s\n", dlerror()); return 1; }
  int (*run)(void) = (int (*)(void))dlsym(h, "hk_test_cxx_plugin");
  if (!run) { fprintf(stderr, "malloc_cxx_host: %s\n", dlerror()); return 1; }
  int failed = run();
  printf("malloc_cxx_host: C++ plugin loaded after start: %d failed expectations\n", failed);
  return failed != 0;
}
