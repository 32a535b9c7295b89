/* malloc.atfork_dlclose: a shared object that links libheapkit_static.a is loaded, used and
 * unloaded, then the process forks. The allocator's fork handlers must go with the object's code
 * (glibc drops the handlers registered with its DSO handle at dlclose): registered without one
 * (__register_atfork(..., NULL)), the fork called the prepare handler in the unmapped code and the
 * process died of SIGSEGV. Usage: malloc_atfork_dlclose path/to/plugin.so */
#include <dlfcn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 3; }
  int (*use)(void) = (int (*)(void))dlsym(h, "atfork_plugin_use");
  if (!use || !use()) { fprintf(stderr, "atfork_plugin_use missing or failed\n"); return 4; }
  if (dlclose(h) != 0) { fprintf(stderr, "dlclose: %s\n", dlerror()); return 5; }
  pid_t pid = fork();
  if (pid < 0) return 6;
  if (pid == 0) _exit(0);
  int st = 0;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 7;
  printf("atfork_dlclose: forked after the plugin's dlclose\n");
  return 0;
}
