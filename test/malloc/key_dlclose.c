/* malloc.key_dlclose: a shared object that links libheapkit_static.a is used by two threads (with
 * live blocks, a first-class heap, a shared pool's cache, a region stack and a registration with a
 * collected heap in one of them), then unloaded while both threads are alive; then the other thread
 * exits. The allocator's, the pools', the regions' and the collector's thread-exit keys must go
 * with the object's code: before, glibc called their
 * destructors in the unmapped code at that thread's exit (SIGSEGV).
 * Afterwards a key the host creates (likely the same key number) must work as a key of its own:
 * its destructor is called once, with its value. Usage: malloc_key_dlclose path/to/plugin.so */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static int (*use)(int keep);
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage; /* 1: the thread used the plugin; 2: the plugin is gone, exit */

static void *user(void *arg) {
  int ok = use((int)(long)arg);
  pthread_mutex_lock(&mu);
  stage = ok ? 1 : -1;
  pthread_cond_broadcast(&cv);
  while (stage != 2) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  return NULL; /* the thread's exit runs the key destructors */
}

static void *user_once(void *arg) { (void)arg; return use(0) ? NULL : (void *)1; }

static pthread_key_t host_key;
static int host_calls;
static void *host_value;
static void host_dtor(void *v) { __atomic_fetch_add(&host_calls, 1, __ATOMIC_SEQ_CST); host_value = v; }
static int token;
static void *host_user(void *arg) { (void)arg; pthread_setspecific(host_key, &token); return NULL; }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 3; }
  use = (int (*)(int))dlsym(h, "key_plugin_use");
  if (!use) { fprintf(stderr, "key_plugin_use missing\n"); return 4; }
  pthread_t t;
  if (pthread_create(&t, NULL, user, (void *)1L) != 0) return 5;
  pthread_mutex_lock(&mu);
  while (stage == 0) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  if (stage != 1) { fprintf(stderr, "the plugin failed in the thread\n"); return 6; }
  if (!use(0)) { fprintf(stderr, "the plugin failed in the main thread\n"); return 7; }
  /* a thread that used the plugin and exits while it is loaded: the usual exit */
  pthread_t t0;
  void *r0 = NULL;
  if (pthread_create(&t0, NULL, user_once, NULL) != 0 || pthread_join(t0, &r0) != 0 || r0) return 8;
  if (dlclose(h) != 0) { fprintf(stderr, "dlclose: %s\n", dlerror()); return 9; }
  if (dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD)) { fprintf(stderr, "the plugin stayed loaded\n"); return 10; }
  pthread_mutex_lock(&mu);
  stage = 2;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  if (pthread_join(t, NULL) != 0) return 11;
  printf("key_dlclose: a thread that used the plugin exited after its dlclose\n");
  if (pthread_key_create(&host_key, host_dtor) != 0) return 12;
  pthread_t t2;
  if (pthread_create(&t2, NULL, host_user, NULL) != 0 || pthread_join(t2, NULL) != 0) return 13;
  if (host_calls != 1 || host_value != &token) { fprintf(stderr, "host key destructor: %d calls, value %p\n", host_calls, host_value); return 14; }
  printf("key_dlclose: a key made afterwards works (destructor called once with its value)\n");
  return 0;
}
