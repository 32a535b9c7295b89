/* heapkit plan: read a CSV trace, place the buffers, write the offsets.
 * The exit status is the answer: 0 placed (within the capacity, if one was given), 1 no placement
 * within the capacity was found in the time limit, 2 bad usage or malformed input, 3 internal
 * error. Messages go to stderr, the placement to stdout or -o. */
#include "commands.h"

#include <errno.h>
#include <heapkit.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void hk_tool_plan_usage(FILE *out) {
  fprintf(out,
          "usage: heapkit plan [--capacity BYTES] [--time-limit SECONDS] [--align N] [-o OUT.csv] IN.csv\n"
          "\n"
          "Place buffers with known lifetimes at offsets so that buffers live at the same time never\n"
          "overlap, with the smallest peak. IN.csv has the header id,lower,upper,size (the buffer is live\n"
          "in [lower, upper)), optionally align; '-' reads stdin. The output has the same columns plus\n"
          "offset, in input order. The lower bound, the peak and the time are reported on stderr.\n"
          "\n"
          "options:\n"
          "  --capacity BYTES     succeed only with peak <= BYTES (suffixes K, M, G, T = powers of 1024);\n"
          "                       the planner stops as soon as it has such a placement\n"
          "  --time-limit SECONDS time for the whole run: the heuristics, then the exact search in what\n"
          "                       is left (default 1; 0 = heuristics only, no search; at most 1000000;\n"
          "                       --method auto only: the other methods always finish their runs)\n"
          "  --cpu-time           count the time limit in CPU time, not wall time: the same placement\n"
          "                       however loaded the machine is (the run may take longer)\n"
          "  --align N            offsets are multiples of N (a power of two) unless a row's align says\n"
          "                       otherwise\n"
          "  --method NAME        auto (default), heuristics, greedy-size, greedy-lifetime, greedy-area\n"
          "  --verify             check the placement with the independent validator before writing it\n"
          "  -o, --output FILE    write the placement to FILE instead of stdout ('-': stdout)\n"
          "  -q, --quiet          no report on stderr (errors are still printed)\n"
          "\n"
          "exit status: 0 placed, 1 no placement within the capacity found in the time limit,\n"
          "2 malformed input (the message names the line) or bad usage, 3 internal error.\n");
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "heapkit plan: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see heapkit plan --help)\n");
  return HK_TOOL_USAGE;
}

static const struct { const char *name; hk_plan_method m; } methods[] = {
  {"auto", HK_PLAN_AUTO}, {"heuristics", HK_PLAN_HEURISTICS}, {"greedy-size", HK_PLAN_GREEDY_SIZE},
  {"greedy-lifetime", HK_PLAN_GREEDY_LIFETIME}, {"greedy-area", HK_PLAN_GREEDY_AREA},
};

int hk_tool_plan(int argc, char **argv) {
  hk_plan_options opt;
  hk_plan_options_init(&opt);
  const char *in_path = NULL, *out_path = NULL;
  bool quiet = false, verify = false, cpu_time = false, options_done = false, time_limit_given = false;
  const char *method_name = "auto";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    if (!options_done && a[0] == '-' && a[1] != 0) {
      if (strcmp(a, "--") == 0) { options_done = true; continue; }
      if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { hk_tool_plan_usage(stdout); return HK_TOOL_OK; }
      if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) { quiet = true; continue; }
      if (strcmp(a, "--verify") == 0) { verify = true; continue; }
      if (strcmp(a, "--cpu-time") == 0) { cpu_time = true; continue; }
      /* options with a value: "--name value" or "--name=value" */
      static const char *const with_value[] = {"--capacity", "--time-limit", "--align", "--method", "--output", "-o"};
      const char *name = NULL;
      for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) {
        size_t l = strlen(with_value[k]);
        if (strncmp(a, with_value[k], l) == 0 && (a[l] == 0 || a[l] == '=')) {
          name = with_value[k];
          if (a[l] == '=') val = a + l + 1;
          else if (i + 1 < argc) val = argv[++i];
          else return usage_error("option %s needs a value", name);
          break;
        }
      }
      if (!name) return usage_error("unknown option '%s'", a);
      if (strcmp(name, "--capacity") == 0) {
        unsigned long long v;
        if (hk_tool_parse_bytes(val, &v) != 0 || v == 0) return usage_error("--capacity: '%s' is not a positive byte count", val);
        opt.capacity = v;
      } else if (strcmp(name, "--time-limit") == 0) {
        char *end;
        /* plain decimal only: strtod alone also reads hex floats ("0x10" was 16 s), "infinity"
         * and leading blanks */
        bool plain = val[0] != 0 && strspn(val, "0123456789.eE+-") == strlen(val);
        double t = plain ? strtod(val, &end) : 0;
        if (!plain || end == val || *end || !(t >= 0) || isinf(t) || t > 1e6) return usage_error("--time-limit: '%s' is not a number of seconds from 0 to 1000000", val);
        opt.time_limit = t;
        time_limit_given = true;
      } else if (strcmp(name, "--align") == 0) {
        unsigned long long v;
        if (hk_tool_parse_bytes(val, &v) != 0 || v == 0 || (v & (v - 1))) return usage_error("--align: '%s' is not a power of two", val);
        /* (hk_plan refuses an alignment of 2^62 or more with HK_EOVERFLOW, which was reported
         * as 'sizes too large') */
        if (v >= (1ull << 62)) return usage_error("--align: '%s' is too large (at most 2^61: offsets must stay below 2^63)", val);
        opt.align = v;
      } else if (strcmp(name, "--method") == 0) {
        size_t k;
        for (k = 0; k < sizeof methods / sizeof *methods; k++)
          if (strcmp(val, methods[k].name) == 0) break;
        if (k == sizeof methods / sizeof *methods) return usage_error("--method: unknown method '%s'", val);
        opt.method = methods[k].m;
        method_name = methods[k].name;
      } else {
        /* (fopen("") failed only after planning, reported as an internal error, exit 3) */
        if (!*val) return usage_error("%s: empty file name", name);
        /* '-' is stdout, as '-' for the input is stdin (it made a file named '-') */
        out_path = strcmp(val, "-") == 0 ? NULL : val;
      }
      continue;
    }
    if (in_path) return usage_error("more than one input file ('%s')", a);
    in_path = a;
  }
  if (!in_path) return usage_error("%s", "missing input file IN.csv");
  /* hk_plan bounds only HK_PLAN_AUTO by the time limit; the other methods always finish their runs,
   * so a limit given with one of them would be silently ignored */
  if (time_limit_given && opt.method != HK_PLAN_AUTO)
    return usage_error("--time-limit applies only to --method auto (the method '%s' always finishes its runs)", method_name);

  hk_plan_trace t;
  hk_plan_csv_error err;
  int rc = strcmp(in_path, "-") == 0 ? hk_plan_csv_read(stdin, &t, &err) : hk_plan_csv_load(in_path, &t, &err);
  const char *shown = strcmp(in_path, "-") == 0 ? "<stdin>" : in_path;
  if (rc != HK_OK) {
    if (err.line) fprintf(stderr, "heapkit plan: %s:%zu: %s\n", shown, err.line, err.message);
    else fprintf(stderr, "heapkit plan: %s: %s\n", shown, err.message);
    return rc == HK_ENOMEM ? HK_TOOL_ERROR : HK_TOOL_USAGE;
  }
  uint64_t *off = malloc((t.count ? t.count : 1) * sizeof *off);
  if (!off) { fprintf(stderr, "heapkit plan: out of memory\n"); hk_plan_trace_free(&t); return HK_TOOL_ERROR; }
  hk_plan_result res;
  opt.cpu_time = cpu_time;
  int status = HK_TOOL_OK;
  /* A capacity below the lower bound is refused before planning: nothing is written on exit 1,
   * and hk_plan would spend the whole time limit on the best placement it can find. */
  uint64_t lb;
  if (opt.capacity && hk_plan_lower_bound(t.buffers, t.count, &lb) == HK_OK && opt.capacity < lb) {
    fprintf(stderr, "heapkit plan: no placement within capacity %" PRIu64 ": the lower bound is %" PRIu64
                    " (that much is live at one time)\n", opt.capacity, lb);
    status = HK_TOOL_FAIL;
    goto out;
  }
  rc = hk_plan(t.buffers, t.count, &opt, off, &res);
  if (rc != HK_OK) {
    if (rc == HK_EOVERFLOW && res.bad_index != SIZE_MAX && t.buffers[res.bad_index].align >= (1ull << 62))
      fprintf(stderr, "heapkit plan: %s: alignment too large (at most 2^61): offsets could exceed 2^63 (at id '%s')\n", shown, t.ids[res.bad_index]);
    else if (rc == HK_EOVERFLOW && res.bad_index != SIZE_MAX)
      fprintf(stderr, "heapkit plan: %s: sizes too large: offsets could exceed 2^63 (at id '%s')\n", shown, t.ids[res.bad_index]);
    else
      fprintf(stderr, "heapkit plan: %s: %s\n", shown, rc == HK_ENOMEM ? "out of memory" : "invalid request");
    status = rc == HK_ENOMEM ? HK_TOOL_ERROR : HK_TOOL_USAGE;
    goto out;
  }
  if (verify) {
    char msg[256];
    if (hk_plan_validate(t.buffers, t.count, off, 0, opt.align, msg, sizeof msg) != HK_OK) {
      fprintf(stderr, "heapkit plan: internal error: invalid placement: %s\n", msg);
      status = HK_TOOL_ERROR;
      goto out;
    }
  }
  double over = res.lower_bound ? 100.0 * (double)(res.peak - res.lower_bound) / (double)res.lower_bound : 0.0;
  if (!res.fits) {
    if (opt.capacity < res.lower_bound)
      fprintf(stderr, "heapkit plan: no placement within capacity %" PRIu64 ": the lower bound is %" PRIu64
                      " (that much is live at one time)\n", opt.capacity, res.lower_bound);
    else if (res.capacity_refuted)
      fprintf(stderr, "heapkit plan: no placement within capacity %" PRIu64 " exists (proven by exhaustive search);"
                      " best peak %" PRIu64 " (lower bound %" PRIu64 ")\n", opt.capacity, res.peak, res.lower_bound);
    else
      fprintf(stderr, "heapkit plan: no placement within capacity %" PRIu64 " found in %.3g s: best peak %" PRIu64
                      " (lower bound %" PRIu64 ")\n", opt.capacity, opt.time_limit, res.peak, res.lower_bound);
    status = HK_TOOL_FAIL;
    goto out;
  }
  FILE *o = stdout;
  if (out_path && !(o = fopen(out_path, "w"))) {
    fprintf(stderr, "heapkit plan: cannot write %s: %s\n", out_path, strerror(errno));
    status = HK_TOOL_ERROR;
    goto out;
  }
  rc = hk_plan_csv_write(o, &t, off);
  if (fflush(o) != 0) rc = HK_EPERM;
  if (o != stdout && fclose(o) != 0) rc = HK_EPERM;
  if (rc != HK_OK) {
    fprintf(stderr, "heapkit plan: write error on %s\n", out_path ? out_path : "stdout");
    status = HK_TOOL_ERROR;
    goto out;
  }
  if (!quiet)
    fprintf(stderr, "heapkit plan: %zu buffer%s, lower bound %" PRIu64 ", peak %" PRIu64 " (+%.3f%%), %s, %.3f s (%s)\n",
            t.count, t.count == 1 ? "" : "s", res.lower_bound, res.peak, over, res.optimal ? "optimal" : "not proven optimal", res.seconds,
            res.method);
out:
  free(off);
  hk_plan_trace_free(&t);
  return status;
}
