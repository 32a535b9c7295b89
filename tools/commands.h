/* The heapkit command-line tool: one table of subcommands (main.c), one file per subcommand
 * (cmd_<name>.c). A subcommand gets argv without the tool name (argv[0] is the subcommand) and
 * returns the process exit status. To add one: write tools/cmd_<name>.c with the two functions
 * below, declare them here and add a row to the table in main.c. */
#ifndef HK_TOOLS_COMMANDS_H
#define HK_TOOLS_COMMANDS_H
#include <stdio.h>

/* Exit statuses shared by all subcommands. */
enum {
  HK_TOOL_OK = 0,
  HK_TOOL_FAIL = 1,  /* the command ran but the answer is "no" (e.g. no placement fits) */
  HK_TOOL_USAGE = 2, /* bad arguments or malformed input */
  HK_TOOL_ERROR = 3, /* out of memory, write error */
};

typedef struct hk_tool_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
  void (*usage)(FILE *out);
} hk_tool_command;

int hk_tool_plan(int argc, char **argv);
void hk_tool_plan_usage(FILE *out);

/* Parse a byte count: digits with an optional K, M, G or T suffix (powers of 1024).
 * Returns 0 on success. */
int hk_tool_parse_bytes(const char *s, unsigned long long *out);

#endif
