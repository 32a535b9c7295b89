/* Launcher that times one workload and takes its peak RSS.
 *
 * Why not let the Python runner fork the workload directly: Linux carries a process's RSS
 * high-water mark across exec, so a child forked (or vforked) from a 15 MB Python interpreter reports
 * at least 15 MB of ru_maxrss whatever it does. This small launcher, whose own RSS is about 1 MB,
 * forks the workload itself, so the figure is the workload's own.
 *
 * Usage: spawn TIMEOUT_S PRELOAD|- PROGRAM ARGS...
 * The workload's stdout and stderr pass through. The launcher then prints one last line on stderr:
 *   spawn: status=<exit code or 128+signal> wall=<seconds> maxrss_kb=<KiB> timeout=<0|1>
 *          user=<seconds> sys=<seconds> nvcsw=<n> nivcsw=<n>
 * (on one line): CPU time and voluntary/involuntary context switches of the workload, all its
 * threads, from the same wait4 rusage. CPU time is what the threaded workloads are compared on
 * besides wall time: on a shared 2-core machine their wall time also depends on where the
 * scheduler puts the threads (see README.md).
 * PRELOAD is set as LD_PRELOAD for the workload only ("-" = none, LD_PRELOAD removed). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile pid_t child;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
  (void)sig;
  timed_out = 1;
  if (child > 0) kill(child, SIGKILL);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: spawn TIMEOUT_S PRELOAD|- PROGRAM ARGS...\n");
    return 64;
  }
  int timeout = atoi(argv[1]);
  const char *preload = argv[2];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) { perror("spawn: fork"); return 70; }
  if (pid == 0) {
    if (preload[0] == '-' && preload[1] == 0) unsetenv("LD_PRELOAD");
    else setenv("LD_PRELOAD", preload, 1);
    execv(argv[3], argv + 3);
    perror("spawn: exec");
    _exit(127);
  }
  child = pid;
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  if (timeout > 0) alarm((unsigned)timeout);
  int status;
  struct rusage ru;
  pid_t w;
  while ((w = wait4(pid, &status, 0, &ru)) < 0) { /* EINTR from the alarm: the kill is on its way */ }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  alarm(0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  fprintf(stderr, "\nspawn: status=%d wall=%.6f maxrss_kb=%ld timeout=%d user=%.6f sys=%.6f nvcsw=%ld nivcsw=%ld\n",
          code, wall, ru.ru_maxrss, (int)timed_out,
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, ru.ru_nvcsw, ru.ru_nivcsw);
  return 0;
}
