#!/usr/bin/env python3
"""Deterministic mutation fuzzer for heapkit's input surfaces (docs/architecture.md, "Fuzzing").

Targets:
  plan     `heapkit plan` on mutated CSV traces: exit 0/1/2, 2 with `heapkit plan: FILE:LINE: ...`
  replay   an arena replaying a mutated or mismatched plan (fuzz_replay): runs, or refuses with
           `heapkit: arena replay: ...`; no live allocation overwritten, unless the plan has no
           upper column (documented: such a plan is trusted)
  lisp     the Lisp example on mutated programs: exit 0/1, every stderr line `error: ...`
  options  HEAPKIT_* values (fuzz_options): the value read is the documented one, the warning
           `heapkit: ignoring HEAPKIT_X=V: not an integer|out of range` exactly when documented

Every run: no signal, no sanitizer report, no timeout. Same seed and iteration count, same inputs.
  fuzz.py --build DIR [--targets plan,replay,lisp,options] [--seed N] [--iterations N]
          [--seconds S] [--keep DIR] [--traces DIR]
--iterations is per target; --seconds (per target) stops earlier (for the long run only: the
smoke test is bounded by iterations, so it is deterministic). Failing inputs go to --keep
(default: a temporary directory, printed). Exit 0 when nothing failed, 1 otherwise.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAN_RE = re.compile(rb"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|"
                    rb"ThreadSanitizer|MemorySanitizer")
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86:allocator_may_return_null=1",
    "UBSAN_OPTIONS": "halt_on_error=1:exitcode=87:print_stacktrace=1",
}
BIG_NUMBERS = [b"0", b"1", b"15", b"16", b"17", b"4096", b"65535", b"4294967295", b"4294967296",
               b"70368744177664", b"9223372036854775807", b"9223372036854775808",
               b"18446744073709551615", b"18446744073709551616", b"99999999999999999999999999",
               b"-1", b"-0", b"+1", b"1e3", b"0x10", b" 1", b"1 ", b"007", b"4611686018427387904",
               b"4611686018427387903", b"2305843009213693952", b"1" * 400]
SPECIAL = [b",", b"\n", b"\r", b"\r\n", b"\0", b"#", b'"', b" ", b"\t", b"-", b"9", b"\xef\xbb\xbf",
           b"\xff", b"(", b")", b"'", b"`", b".", b"\\", b"#(", b";"]


def mutate(rng, data, seeds):
    """One to four stacked mutations of bytes `data`."""
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(16)
        n = len(data)
        if op == 0 and n:                       # bit flip
            i = rng.randrange(n)
            data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        elif op == 1:                           # insert a special byte sequence
            i = rng.randint(0, n)
            data = data[:i] + rng.choice(SPECIAL) + data[i:]
        elif op == 2 and n:                     # delete a range
            i = rng.randrange(n)
            data = data[:i] + data[i + rng.randint(1, 64):]
        elif op == 3 and n:                     # truncate
            data = data[:rng.randrange(n)]
        elif op in (4, 5):                      # replace a number
            nums = [m.span() for m in re.finditer(rb"-?\d+", data)]
            if nums:
                a, b = rng.choice(nums)
                data = data[:a] + rng.choice(BIG_NUMBERS) + data[b:]
        elif op == 6:                           # duplicate a line
            lines = data.split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[rng.randrange(len(lines))])
            data = b"\n".join(lines)
        elif op == 7:                           # delete or swap lines
            lines = data.split(b"\n")
            if len(lines) > 1:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                if rng.random() < 0.5:
                    del lines[i]
                else:
                    lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif op == 8:                           # a very long token
            i = rng.randint(0, n)
            data = data[:i] + rng.choice([b"a", b"9", b"(", b" ", b","]) * rng.choice([100, 5000, 70000]) + data[i:]
        elif op == 9:                           # line ends: CRLF, CR only
            data = data.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\n"]))
        elif op == 10:                          # no trailing newline / extra one
            data = data.rstrip(b"\n") if rng.random() < 0.7 else data + b"\n"
        elif op == 11:                          # splice with another seed
            other = rng.choice(seeds)
            i, j = rng.randint(0, n), rng.randint(0, len(other))
            data = data[:i] + other[j:]
        elif op == 12 and n:                    # overwrite with a random byte
            i = rng.randrange(n)
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif op == 13:                          # duplicate a range (nesting, repeated rows)
            if n:
                i = rng.randrange(n)
                chunk = data[i:i + rng.randint(1, 200)]
                data = data[:i] + chunk * rng.randint(2, 50) + data[i:]
        elif op == 14:                          # a comment or blank line somewhere
            lines = data.split(b"\n")
            lines.insert(rng.randrange(len(lines) + 1), rng.choice([b"# c", b"", b"  \t", b"#", b" # x,y"]))
            data = b"\n".join(lines)
        elif op == 15:                          # a field added or removed
            lines = data.split(b"\n")
            i = rng.randrange(len(lines))
            lines[i] = lines[i] + b",x" if rng.random() < 0.5 else lines[i].rsplit(b",", 1)[0]
            data = b"\n".join(lines)
    return data[:1 << 20]


class Runner:
    def __init__(self, args):
        self.args = args
        self.failures = 0
        self.keep = args.keep or tempfile.mkdtemp(prefix="hk-fuzz-")
        os.makedirs(self.keep, exist_ok=True)
        self.work = tempfile.mkdtemp(prefix="hk-fuzz-work-")
        self.env = dict(os.environ, **SAN_ENV)
        for k in list(self.env):
            if k.startswith("HEAPKIT_"):
                del self.env[k]

    def run(self, argv, env=None, stdin=None, timeout=None):
        t = timeout or self.args.timeout
        try:
            p = subprocess.run(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env or self.env, timeout=t)
            return p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            return "timeout", e.stdout or b"", e.stderr or b""

    def fail(self, target, i, why, data, err=b"", extra=None):
        self.failures += 1
        base = os.path.join(self.keep, "%s-%d" % (target, i))
        with open(base + ".in", "wb") as f:
            f.write(data)
        if extra:
            for name, blob in extra.items():
                with open(base + "." + name, "wb") as f:
                    f.write(blob)
        with open(base + ".err", "wb") as f:
            f.write(err)
        tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
        print("FAIL %s #%d: %s (input %s.in)%s" % (target, i, why, base,
              "".join("\n    " + l[:200] for l in tail)), flush=True)

    def common(self, rc, err):
        """The checks every target shares: None when fine, else the reason."""
        if rc == "timeout":
            return "timeout after %g s" % self.args.timeout
        if SAN_RE.search(err):
            return "sanitizer report"
        if rc < 0:
            return "killed by signal %s" % signal.Signals(-rc).name
        if rc in (86, 87):
            return "sanitizer exit code %d" % rc
        return None


# ---- plan -----------------------------------------------------------------------------------------

def plan_seeds(r):
    seeds = [b"id,lower,upper,size,align\nscratch0,0,3,4096,16\ntmp1,1,2,512,16\ntmp2,2,3,512,16\n",
             b"\xef\xbb\xbf# a comment\nid,lower,upper,size\r\na,0,5,100\r\nb,5,9,100\r\n\r\nc,1,6,7\r\n",
             b"size,upper,site,id,lower,offset\n8,2,x.c:1,a,0,0\n16,3,y.c:2,b,1,16\n24,9,z,c,2,0\n",
             b"id,lower,upper,size,align\n0,0,10,16,16\n1,1,2,32,64\n2,2,9,48,4096\n3,3,4,0,0\n"]
    rng = random.Random(1)
    rows = [b"id,lower,upper,size,align"]
    for i in range(60):
        lo = rng.randrange(100)
        rows.append(b"%d,%d,%d,%d,%d" % (i, lo, lo + rng.randint(1, 30), rng.randrange(5000), 1 << rng.randrange(8)))
    seeds.append(b"\n".join(rows) + b"\n")
    for d in r.args.traces or []:  # the benchmarks' model traces (small ones: each run reads the whole file)
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if name.endswith(".csv") and os.path.getsize(path) <= 64 << 10:
                with open(path, "rb") as f:
                    seeds.append(f.read())
    trace = os.path.join(r.work, "seed-trace.csv")
    if r.run([r.replay_bin, "record", trace, "3"])[0] == 0:
        with open(trace, "rb") as f:
            seeds.append(f.read())
    return seeds


PLAN_MSG = re.compile(rb"^heapkit plan: [^\n]*(\.csv:\d+: |\.csv: (sizes too large|alignment too large|out of memory|"
                      rb"read error))")


def target_plan(r, i, rng, seeds):
    data = mutate(rng, rng.choice(seeds), seeds)
    path = os.path.join(r.work, "in.csv")
    with open(path, "wb") as f:
        f.write(data)
    out = os.path.join(r.work, "out.csv")
    rc, _, err = r.run([r.tool, "plan", "--verify", "--time-limit", "0.05", "-o", out, path])
    why = r.common(rc, err)
    if not why and rc not in (0, 1, 2):
        why = "exit %d (expected 0, 1 or 2)" % rc
    if not why and rc == 2 and not PLAN_MSG.match(err):
        why = "exit 2 without a 'FILE:LINE: message'"
    if not why and rc == 0:
        # the plan reads back as a valid input, with the same number of rows
        rc2, _, err2 = r.run([r.tool, "plan", "-q", "--time-limit", "0.05", "-o", os.devnull, out])
        if rc2 != 0:
            why, err = "the plan written does not read back (exit %s)" % rc2, err + err2
    if why:
        r.fail("plan", i, why, data, err)
    return rc


# ---- replay ---------------------------------------------------------------------------------------

def plan_has_upper(data):
    """Whether the plan's header names an upper column (then the arena checks the plan itself)."""
    for line in data.split(b"\n"):
        line = line.strip(b" \t\r")
        if line and not line.startswith(b"#"):
            return b"upper" in [f.strip(b" \t\r") for f in line.lstrip(b"\xef\xbb\xbf").split(b",")]
    return False


def replay_setup(r):
    plans = {}
    for seed in (3, 5, 11):
        trace = os.path.join(r.work, "trace%d.csv" % seed)
        plan = os.path.join(r.work, "plan%d.csv" % seed)
        rc, _, err = r.run([r.replay_bin, "record", trace, str(seed)])
        if rc != 0:
            sys.exit("fuzz: recording the replay seed failed: %s" % err.decode(errors="replace"))
        rc, _, err = r.run([r.tool, "plan", "-q", "--method", "greedy-size", "-o", plan, trace])  # (deterministic)
        if rc != 0:
            sys.exit("fuzz: planning the replay seed failed: %s" % err.decode(errors="replace"))
        with open(plan, "rb") as f:
            plans[seed] = f.read()
    return plans


def target_replay(r, i, rng, plans):
    seed = rng.choice(sorted(plans))
    data = plans[seed]
    if rng.random() < 0.85:
        data = mutate(rng, data, list(plans.values()))
    run_seed = seed if rng.random() < 0.8 else rng.choice([3, 5, 11, 99])  # 99: a program never planned
    path = os.path.join(r.work, "plan.csv")
    with open(path, "wb") as f:
        f.write(data)
    rc, _, err = r.run([r.replay_bin, "replay", path, str(run_seed)])
    why = r.common(rc, err)
    if not why and rc not in (0, 1, 3):
        why = "exit %d (expected 0, 1 or 3)" % rc
    if not why and rc == 1 and not re.match(rb"heapkit: arena replay: ", err):
        why = "refused without a 'heapkit: arena replay: ' message"
    if not why and rc == 0 and err.strip():
        why = "unexpected stderr on success"
    if not why and rc == 3:
        if plan_has_upper(data):
            why = "a live allocation was overwritten, and the plan has an upper column (it is checked)"
        else:
            r.trusted_overlaps += 1  # documented: a plan without lifetimes is trusted
    if why:
        r.fail("replay", i, why, data, err, {"seed": b"%d" % run_seed})
    return rc


# ---- lisp -----------------------------------------------------------------------------------------

def lisp_seeds():
    seeds = []
    d = os.path.join(ROOT, "test", "lisp")
    for name in ("reader.lisp", "errors.lisp", "nul.lisp", "basics.lisp"):
        with open(os.path.join(d, name), "rb") as f:
            seeds.append(f.read())
    seeds += [b"(" * 5000 + b")" * 5000, b"'" * 3000 + b"x", b"#(" * 2000, b"(define (f n) (if (= n 0) 0 (+ 1 (f (- n 1)))))\n(f 100000)\n",
              b"(display 4611686018427387903)(display (+ 4611686018427387903 1))(display -4611686018427387904)\n",
              b'(display "a\\"b\\\\c\\n")(display (string-append "x" "y"))\n(display (make-vector 3 (quote (1 . 2))))\n',
              b"(define v (make-vector 100000 0))(vector-set! v 99999 v)(display (vector-length v))\n",
              b"(let loop ((i 0) (acc '())) (if (< i 3000) (loop (+ i 1) (cons i acc)) (length acc)))\n",
              b"(define l (list 1 2 3))(set-cdr! (cddr l) l)(display l)(length l)(equal? l l)\n"]
    return seeds


def target_lisp(r, i, rng, seeds):
    data = mutate(rng, rng.choice(seeds), seeds)
    path = os.path.join(r.work, "prog.lisp")
    with open(path, "wb") as f:
        f.write(data)
    argv = [r.lisp]
    if rng.random() < 0.25:
        argv.append("--max-heap=%d" % rng.choice([1, 4, 16]))
    argv.append(path)
    rc, _, err = r.run(argv)
    why = r.common(rc, err)
    if why and why.startswith("timeout"):
        # A mutated loop bound (100000 -> 2^62) runs for ever: counted and kept (lisp-N.timeout in
        # --keep), not a failure (a hang in the reader or the collector looks the same: look at them).
        r.lisp_timeouts += 1
        with open(os.path.join(r.keep, "lisp-%d.timeout" % i), "wb") as f:
            f.write(data)
        why = None
        rc = 0
    if not why and rc not in (0, 1):
        why = "exit %d (expected 0 or 1)" % rc
    if not why:
        for line in err.split(b"\n")[:-1]:
            if not (line.startswith(b"error: ") or line.startswith(b"heapkit gc") or line.startswith(b"gc")):
                why = "stderr line that is not an error message: %r" % line[:120]
                break
    if why:
        r.fail("lisp", i, why, data, err)
    return rc


# ---- options --------------------------------------------------------------------------------------

OPTS = ["SHOW_STATS", "VERBOSE", "PURGE_DELAY", "PURGE_FREE", "HUGE_PAGES", "SEGMENT_CACHE", "HARDENED",
        "GC_STRESS", "GC_TRACE", "GC_PARALLEL"]
DEFAULTS = [0, 1, 100, 0, 0, 32, 0, 0, 0, 1]
LONG_MAX, LONG_MIN = (1 << 63) - 1, -(1 << 63)
OPT_VALUES = ["", " ", "0", "1", "-1", "+5", " 7", "\t\n 3", "7 ", "9223372036854775807", "9223372036854775808",
              "-9223372036854775808", "-9223372036854775809", "99999999999999999999", "abc", "0x10", "1e3", "on",
              "ON", "yes", "no", "off", "true", "false", " on", "1.5", "--1", "+-1", "08", "-", "+", "1" * 300,
              "1099511627776", "1099511627777", "-2", "257", "256", "100000", "\x01\x7f", "%s%n%s", "on\x7f"]


def shown(v):
    """The value as the warning shows it: 64 bytes at most, control characters as \\xHH."""
    out = "".join("\\x%02x" % ord(c) if ord(c) < 0x20 or ord(c) == 0x7f else c for c in v[:64])
    return out + ("..." if len(v) > 64 else "")


def expect_option(name, v, default):
    """(value, warning or None) as docs/README.md documents HEAPKIT_<name>=v."""
    if v == "":
        return default, None
    m = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)", v)
    if m:
        x = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
        if x > LONG_MAX or x < LONG_MIN:
            if name != "PURGE_DELAY":
                return default, "heapkit: ignoring HEAPKIT_%s=%s: out of range" % (name, shown(v))
            x = LONG_MAX if x > 0 else LONG_MIN
        if name == "PURGE_DELAY":
            x = max(-1, min(x, 1 << 40))
        return x, None
    if v in ("true", "yes", "on"):
        return 1, None
    if v in ("false", "no", "off"):
        return 0, None
    return default, "heapkit: ignoring HEAPKIT_%s=%s: not an integer" % (name, shown(v))


def target_options(r, i, rng, _):
    env = dict(r.env)
    chosen = rng.sample(range(len(OPTS)), rng.randint(1, 3))
    values = {}
    for k in chosen:
        if rng.random() < 0.8:
            v = rng.choice(OPT_VALUES)
        else:
            v = "".join(chr(rng.randrange(1, 128)) for _ in range(rng.randint(1, 12)))
        if OPTS[k] == "GC_STRESS":
            # every allocation or few collecting is slow under sanitizers and HK_DEBUG=3, not wrong
            # ('yes' is 1 too: 6.6 s of the 10 s timeout at HK_DEBUG=3, a timeout under load)
            v = "1000" if 1 <= expect_option("GC_STRESS", v, 0)[0] < 1000 else v
        if OPTS[k] == "VERBOSE" and re.fullmatch(r"\s*\+?0*([2-9]|[1-9][0-9]+)", v):
            v = "1"  # 2: a trace line per OS call, not what this checks
        values[k] = v
        env["HEAPKIT_" + OPTS[k]] = v
    verbose = expect_option("VERBOSE", values.get(1, ""), 1)[0]
    rc, out, err = r.run([r.options_bin], env=env)
    blob = "\n".join("HEAPKIT_%s=%r" % (OPTS[k], values[k]) for k in chosen).encode()
    why = r.common(rc, err)
    if not why and rc != 0:
        why = "exit %d" % rc
    if not why:
        got = {}
        for line in out.decode("latin-1").split("\n")[:-1]:
            n, _, val = line.partition("=")
            got[n] = int(val)
        warnings = []
        for k, name in enumerate(OPTS):
            exp, warn = expect_option(name, values.get(k, ""), DEFAULTS[k])
            if got.get(name) != exp:
                why = "HEAPKIT_%s=%r read as %s, documented %s" % (name, values.get(k), got.get(name), exp)
                break
            if warn:
                warnings.append(warn)
        if not why:
            lines = [l for l in err.decode("latin-1").split("\n") if l.startswith("heapkit: ignoring")]
            want = warnings if verbose >= 1 else []
            if sorted(lines) != sorted(want):
                why = "warnings %r, documented %r" % (lines, want)
    if why:
        r.fail("options", i, why, blob, err)
    return rc


# ---- driver ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--targets", default="plan,replay,lisp,options")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--keep")
    ap.add_argument("--traces", action="append", help="a directory of CSV traces to add to the plan seeds")
    args = ap.parse_args()
    r = Runner(args)
    b = os.path.abspath(args.build)
    r.tool = os.path.join(b, "heapkit")
    r.lisp = os.path.join(b, "examples", "lisp", "lisp")
    r.replay_bin = os.path.join(b, "test", "fuzz", "fuzz_replay")
    r.options_bin = os.path.join(b, "test", "fuzz", "fuzz_options")
    r.trusted_overlaps = r.lisp_timeouts = 0
    for p in (r.tool, r.lisp, r.replay_bin, r.options_bin):
        if not os.access(p, os.X_OK):
            sys.exit("fuzz: %s is not built" % p)
    targets = {"plan": (target_plan, plan_seeds), "replay": (target_replay, replay_setup),
               "lisp": (target_lisp, lambda _: lisp_seeds()), "options": (target_options, lambda _: None)}
    for name in args.targets.split(","):
        fn, setup = targets[name]
        rng = random.Random("%s-%d" % (name, args.seed))
        ctx = setup(r)
        start, codes, before = time.time(), {}, r.failures
        n = 0
        for n in range(args.iterations):
            if args.seconds and time.time() - start > args.seconds:
                break
            rc = fn(r, n, rng, ctx)
            codes[rc] = codes.get(rc, 0) + 1
        else:
            n = args.iterations
        extra = ""
        if name == "replay":
            extra = ", %d overwrites by plans without an upper column (trusted)" % r.trusted_overlaps
        if name == "lisp":
            extra = ", %d programs still running after %g s (not failures)" % (r.lisp_timeouts, args.timeout)
        print("fuzz %s: %d inputs in %.1f s, exit codes %s, %d failures%s" % (
            name, n, time.time() - start, dict(sorted(codes.items(), key=str)), r.failures - before, extra), flush=True)
    shutil.rmtree(r.work, ignore_errors=True)
    if r.failures:
        print("fuzz: %d failures; inputs in %s" % (r.failures, r.keep))
        return 1
    if not args.keep and not r.lisp_timeouts:
        shutil.rmtree(r.keep, ignore_errors=True)
    elif r.lisp_timeouts:
        print("fuzz: Lisp programs that ran past the timeout are in %s (lisp-N.timeout)" % r.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
