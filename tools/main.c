/* heapkit: the project's command-line tool. Dispatches to the subcommand named by argv[1]. */
#include "commands.h"

#include <errno.h>
#include <heapkit.h>
#include <string.h>

static const hk_tool_command commands[] = {
  {"plan", "place buffers with known lifetimes at minimal peak memory (static planner)",
   hk_tool_plan, hk_tool_plan_usage},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: heapkit <command> [options]\n       heapkit help <command>\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++) fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\noptions:\n  -h, --help     this text\n  --version      print the version\n"
               "\nexit status: 0 success, 1 the answer is no (e.g. no placement fits), 2 bad usage or\n"
               "malformed input, 3 internal error.\n");
}

static const hk_tool_command *find(const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

int hk_tool_parse_bytes(const char *s, unsigned long long *out) {
  if (!s || *s < '0' || *s > '9') return -1;
  unsigned long long v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (~0ull - d) / 10) return -1;
    v = v * 10 + d;
  }
  unsigned shift = 0;
  switch (*s) {
  case 0: break;
  case 'K': case 'k': shift = 10; s++; break;
  case 'M': case 'm': shift = 20; s++; break;
  case 'G': case 'g': shift = 30; s++; break;
  case 'T': case 't': shift = 40; s++; break;
  default: return -1;
  }
  if (shift && (*s == 'i' || *s == 'I')) { s++; if (*s == 'B' || *s == 'b') s++; else return -1; }
  else if (shift && (*s == 'B' || *s == 'b')) s++;
  if (*s) return -1;
  if (shift && v > (~0ull >> shift)) return -1;
  *out = v << shift;
  return 0;
}

/* What a command wrote to stdout must have reached it: --help or --version into a full disk or a
 * closed descriptor exited 0 with nothing written. A command that reported a write error itself
 * (exit 3) is not reported again. */
static int finish(int status) {
  if (status == HK_TOOL_ERROR) return status;
  errno = 0;
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "heapkit: write error on stdout%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
    return HK_TOOL_ERROR;
  }
  return status;
}

static int run(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return HK_TOOL_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
    usage(stdout);
    return HK_TOOL_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("heapkit %d.%d.%d\n", HK_VERSION_MAJOR, HK_VERSION_MINOR, HK_VERSION_PATCH);
    return HK_TOOL_OK;
  }
  if (strcmp(cmd, "help") == 0) {
    if (argc < 3) { usage(stdout); return HK_TOOL_OK; }
    const hk_tool_command *c = find(argv[2]);
    if (!c) { fprintf(stderr, "heapkit: unknown command '%s' (see heapkit --help)\n", argv[2]); return HK_TOOL_USAGE; }
    c->usage(stdout);
    return HK_TOOL_OK;
  }
  const hk_tool_command *c = find(cmd);
  if (!c) {
    fprintf(stderr, "heapkit: unknown command '%s' (see heapkit --help)\n", cmd);
    return HK_TOOL_USAGE;
  }
  return c->run(argc - 1, argv + 1);
}

int main(int argc, char **argv) { return finish(run(argc, argv)); }
