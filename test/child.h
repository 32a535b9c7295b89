/* Runs a function in a forked child with its stderr captured, for the tests that expect a process
 * to die with a message (misuse, poisoning): shared by both test helpers (check.h and
 * malloc/testutil.h). The child dumps no core (a deliberate abort is not a crash to keep). */
#ifndef HK_TEST_CHILD_H
#define HK_TEST_CHILD_H
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* fn runs in the child, which exits 0 if fn returns. out receives the child's stderr (at most
 * cap - 1 bytes, NUL-terminated); the return value is the wait status, or -1 (out empty) when no
 * child could be started. */
static inline int check_child_run(void (*fn)(void), char *out, size_t cap) {
  int pfd[2];
  out[0] = 0;
  if (pipe(pfd) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]);
    close(pfd[1]);
    return -1;
  }
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    close(pfd[0]);
    dup2(pfd[1], 2);
    fn();
    _exit(0);
  }
  close(pfd[1]);
  size_t len = 0;
  ssize_t k;
  while (len < cap - 1 && (k = read(pfd[0], out + len, cap - 1 - len)) > 0) len += (size_t)k;
  out[len] = 0;
  close(pfd[0]);
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return st;
}

/* The verdict on a child that should have died of SIGABRT with a one-line message starting with
 * prefix (or alt, when not NULL): "" when it did, otherwise why not. Returns the prefix that
 * matched (NULL if none). */
static inline const char *check_child_aborted(int st, const char *out, const char *prefix, const char *alt, char *why,
                                              size_t cap) {
  int lines = 0;
  size_t len = strlen(out);
  for (size_t i = 0; i < len; i++) lines += out[i] == '\n';
  if (len && out[len - 1] != '\n') lines++;
  const char *pre = NULL;
  if (strncmp(out, prefix, strlen(prefix)) == 0) pre = prefix;
  else if (alt && strncmp(out, alt, strlen(alt)) == 0) pre = alt;
  why[0] = 0;
  if (st == -1) snprintf(why, cap, "no child could be started");
  else if (!WIFSIGNALED(st)) snprintf(why, cap, "exited with status %d instead of SIGABRT", WEXITSTATUS(st));
  else if (WTERMSIG(st) != SIGABRT) snprintf(why, cap, "killed by signal %d instead of SIGABRT", WTERMSIG(st));
  else if (!pre) snprintf(why, cap, "message does not start with \"%s\"", prefix);
  else if (lines != 1) snprintf(why, cap, "message is %d lines, expected one", lines);
  return pre;
}
#endif
