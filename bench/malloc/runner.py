#!/usr/bin/python3
"""Run the malloc workloads under every allocator, side by side, and report medians and ratios.

Called by bench/malloc/run.sh once the workloads and build/libheapkit.so are built. For each workload
and each repetition it runs every allocator once, in an order rotated per repetition so that a noisy
moment does not always land on the same allocator. Each child is timed (wall clock), and its CPU time
(user+sys, all threads), context switches and peak RSS are taken from wait4's rusage. The threaded
workloads whose wall time depends on thread placement get more repetitions (--threaded-reps). A child whose exit status, output or checksum is wrong is a FAIL for that
allocator and workload and is not timed.
"""
import argparse
import datetime
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# name, binary, extra args, one line on what it does. The first argument of every binary is the scale.
WORKLOADS = [
    ("churn", "w_churn", [],
     "single thread, 16K-slot live set, random replace/realloc/calloc; sizes 60% 16-64 B, 25% 65-256 B, "
     "10% to 2 KiB, 4% to 16 KiB, 1% to 64 KiB; blocks filled and verified"),
    ("tiny", "w_tiny", [],
     "interpreter-like 8-64 B objects: expression trees freed bottom-up, string lists pushed and popped "
     "(LIFO), a 64K-entry table replaced at random"),
    ("xthread-pc", "w_xthread", ["pc"],
     "producer thread allocates 16 B-4 KiB blocks, consumer thread verifies and frees them, "
     "through a 1024-entry bounded queue (indices published every 64 blocks, a waiting side sleeps)"),
    ("xthread-ring", "w_xthread", ["ring"],
     "4 threads in a ring: each allocates for its successor and frees its predecessor's blocks, "
     "same queues"),
    ("server", "w_server", ["8"],
     "8 workers: private working sets (larson-like) plus object exchange through 4096 shared slots "
     "(xmalloc-like), half the frees cross-thread; 16 B-8 KiB"),
    ("falseshare", "w_falseshare", [],
     "one thread per core mallocs 24 B objects and writes each 500 times, then the same after the "
     "main thread handed each worker a neighbouring block to free (cache-thrash + cache-scratch)"),
    ("large", "w_large", [],
     "12-slot live set of 64 KiB-8 MiB buffers (log-uniform), a page touched per 4 KiB, a third of "
     "the steps growing a buffer 1.5x with realloc"),
    ("threads", "w_threads", [],
     "10000 short-lived threads, 4 at a time, each allocating 256 blocks (16 B-64 KiB) and leaving "
     "8 for the main thread to free after it exited; RSS sampled warm (the later of 10% of the threads "
     "and 200 ms) and at the end"),
    ("peakfree", "w_peakfree", [],
     "allocate ~1 GiB of 16 B-64 KiB blocks, free the oldest 90%, keep a small working set churning "
     "for 1.5 s sampling RSS every 100 ms; time = allocate+free phases only"),
]

# Workloads whose wall time depends on where the scheduler puts their threads on a shared 2-core
# machine (README.md, "Threaded workloads"): they get --threaded-reps repetitions.
THREADED = {"xthread-pc", "xthread-ring"}

# name, candidate shared objects (first that exists wins); None = no preload (the C library's malloc)
PEERS = [
    ("glibc", None),
    ("heapkit", None),  # filled in from --heapkit
    ("mimalloc", ["libmimalloc.so.2", "libmimalloc.so"]),
    ("jemalloc", ["libjemalloc.so.2", "libjemalloc.so"]),
    ("tcmalloc", ["libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so"]),
]
LIBDIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
           "/usr/local/lib"]


def find_lib(names):
    for d in LIBDIRS:
        for n in names:
            p = os.path.join(d, n)
            if os.path.exists(p):
                return p
    return None


def exports_malloc(path):
    """True if the shared object defines malloc and free (a preload that does not would silently
    measure glibc)."""
    nm = shutil.which("nm")
    if not nm:
        return True
    try:
        out = subprocess.run([nm, "-D", "--defined-only", path], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    syms = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    return "malloc" in syms and "free" in syms


def run_once(spawn, binary, args, preload, timeout):
    """Run one child through the spawn launcher (see spawn.c for why); return a dict with ok, why,
    wall, cpu (user+sys), user, sys, nvcsw, nivcsw, rss_kb, out, err, status and the key=value
    pairs of the workload's OK line."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    cmd = [spawn, str(timeout), preload or "-", binary] + args
    try:
        # the launcher enforces the timeout; this one only guards against a hung launcher
        p = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout + 60)
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out, err = "", "launcher hung"
    res = {"wall": None, "cpu": None, "user": None, "sys": None, "nvcsw": None, "nivcsw": None,
           "rss_kb": None, "out": out.strip(), "err": "", "status": None, "ok": False, "why": ""}
    m = re.search(r"\nspawn: status=(\d+) wall=([0-9.]+) maxrss_kb=(\d+) timeout=(\d) user=([0-9.]+) "
                  r"sys=([0-9.]+) nvcsw=(\d+) nivcsw=(\d+)\s*$", err)
    if m:
        res["status"], res["wall"], res["rss_kb"] = int(m.group(1)), float(m.group(2)), int(m.group(3))
        res["user"], res["sys"] = float(m.group(5)), float(m.group(6))
        res["cpu"] = res["user"] + res["sys"]
        res["nvcsw"], res["nivcsw"] = int(m.group(7)), int(m.group(8))
        err = err[:m.start()]
    res["err"] = err.strip()
    lines = [l for l in out.splitlines() if l.strip()]
    if not m:
        res["why"] = "launcher failed: " + err[-200:]
    elif m.group(4) == "1":
        res["why"] = "timeout after %ds" % timeout
    elif res["status"] != 0:
        sig = res["status"] - 128 if res["status"] > 128 else 0
        res["why"] = ("killed by signal %d" % sig if sig else "exit status %d" % res["status"]) + \
            ((": " + lines[-1][:100]) if lines else "")
    elif len(lines) != 1 or not lines[0].startswith("OK "):
        res["why"] = "bad output: %r" % (out[:100],)
    elif "cannot be preloaded" in err:
        res["why"] = "preload failed: " + err[:100]
    else:
        res["ok"] = True
        res["kv"] = dict(tok.split("=", 1) for tok in lines[0].split()[1:] if "=" in tok)
    return res


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt_t(x):
    return "—" if x is None else ("%.3f" % x if x < 10 else "%.2f" % x)


def spread(xs):
    """[min, median, max] of a list, or None"""
    return [min(xs), median(xs), max(xs)] if xs else None


def fmt_mb(kb):
    return "—" if kb is None else ("%.1f" % (kb / 1024.0) if kb < 1024 * 100 else "%.0f" % (kb / 1024.0))


def fmt_r(x):
    return "—" if x is None else "%.2f" % x


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["--:"] * (len(header) - 1)) + "|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


def text_table(header, rows):
    w = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(c).ljust(w[0]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r))
    return "\n".join([line(header), "  ".join("-" * x for x in w)] + [line(r) for r in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bindir", required=True, help="where the w_* workload binaries are")
    ap.add_argument("--heapkit", default=os.path.join(ROOT, "build", "libheapkit.so"))
    ap.add_argument("--heapkit-status", default="", help="why heapkit is missing, if it is")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("HK_BENCH_REPS", "5")))
    ap.add_argument("--threaded-reps", type=int,
                    default=int(os.environ["HK_BENCH_THREADED_REPS"]) if os.environ.get("HK_BENCH_THREADED_REPS") else None,
                    help="repetitions for the workloads whose wall time depends on thread placement "
                         "(%s; default: --reps + 4)" % ", ".join(sorted(THREADED)))
    ap.add_argument("--scale", type=float, default=float(os.environ.get("HK_BENCH_SCALE", "1")))
    ap.add_argument("--only", default=os.environ.get("HK_BENCH_WORKLOADS", ""),
                    help="comma-separated workload names")
    ap.add_argument("--allocs", default=os.environ.get("HK_BENCH_ALLOCS", ""),
                    help="comma-separated allocator names")
    ap.add_argument("--extra", default=os.environ.get("HK_BENCH_EXTRA", ""),
                    help="more allocators to preload, as name=/path/lib.so,name2=/path2.so")
    ap.add_argument("--outdir", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--command", default="bash bench/malloc/run.sh", help="command line to record")
    a = ap.parse_args()

    reps = max(1, a.reps)
    treps = max(1, a.threaded_reps if a.threaded_reps is not None else reps + 4)
    wreps = lambda w: treps if w in THREADED else reps
    workloads = [w for w in WORKLOADS if not a.only or w[0] in a.only.split(",")]
    allocs, skipped = [], {}
    for name, libs in PEERS:
        if a.allocs and name not in a.allocs.split(","):
            continue
        if name == "glibc":
            allocs.append((name, None))
        elif name == "heapkit":
            if a.heapkit_status:
                skipped[name] = a.heapkit_status
            elif not os.path.exists(a.heapkit):
                skipped[name] = "not built (%s missing)" % os.path.relpath(a.heapkit, ROOT)
            elif not exports_malloc(a.heapkit):
                skipped[name] = "not built (%s does not export malloc yet)" % os.path.relpath(a.heapkit, ROOT)
            else:
                allocs.append((name, os.path.abspath(a.heapkit)))
        else:
            p = find_lib(libs)
            if p:
                allocs.append((name, p))
            else:
                skipped[name] = "not installed (%s)" % libs[0]
    for item in filter(None, a.extra.split(",")):
        name, _, path = item.partition("=")
        if a.allocs and name not in a.allocs.split(","):
            continue
        if os.path.exists(path):
            allocs.append((name, os.path.abspath(path)))
        else:
            skipped[name] = "not found (%s)" % path
    names = [n for n, _ in allocs]
    shown = [n for n, _ in PEERS if n in names or n in skipped] + \
        [n for n in names + list(skipped) if n not in dict(PEERS)]
    for n, why in skipped.items():
        print("malloc bench: %s skipped: %s" % (n, why))

    timeout = max(60, int(120 * a.scale))
    spawn = os.path.join(a.bindir, "spawn")
    results = {}  # (workload, alloc) -> dict(runs=[...], fail=str|None)
    load0 = os.getloadavg()[0]
    t_start = time.time()
    for wname, binary, wargs, _ in workloads:
        path = os.path.join(a.bindir, binary)
        args = ["%g" % a.scale] + wargs
        for n in names:
            results[(wname, n)] = {"runs": [], "fail": None}
        for rep in range(wreps(wname)):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for n in order:
                r = results[(wname, n)]
                if r["fail"]:
                    continue
                res = run_once(spawn, path, args, dict(allocs)[n], timeout)
                if not res["ok"]:
                    r["fail"] = res["why"]
                    sys.stderr.write("malloc bench: %s under %s FAILED: %s\n%s\n"
                                     % (wname, n, res["why"], res["err"][-500:]))
                    continue
                r["runs"].append(res)
        # The checksum depends only on the arguments: an allocator that disagrees with the majority
        # (glibc first among equals) returned wrong memory somewhere the spot checks missed.
        sums = {n: results[(wname, n)]["runs"][0]["kv"].get("checksum")
                for n in names if results[(wname, n)]["runs"]}
        if sums:
            ref = sums.get("glibc") or statistics.mode(sums.values())
            for n, c in sums.items():
                if c != ref:
                    results[(wname, n)]["fail"] = "checksum %s != %s" % (c, ref)
        for n in names:
            r = results[(wname, n)]
            if r["fail"]:
                r["runs"] = []
            runs = r["runs"]
            r["time"] = median([float(x["kv"]["time_s"]) if "time_s" in x["kv"] else x["wall"] for x in runs])
            r["rss"] = median([x["rss_kb"] for x in runs])
            r["cpu"] = median([x["cpu"] for x in runs])
        cells = ["%s %s/%s/%sM" % (n, fmt_t(results[(wname, n)]["time"]), fmt_t(results[(wname, n)]["cpu"]),
                                    fmt_mb(results[(wname, n)]["rss"]))
                 if not results[(wname, n)]["fail"] else "%s FAIL" % n for n in names]
        print("  %-13s %s" % (wname, "  ".join(cells)), flush=True)
    elapsed = time.time() - t_start

    def cell(w, n, key):
        if n in skipped:
            return None
        r = results.get((w, n))
        return None if (r is None or r["fail"]) else r[key]

    # ---- per-workload table: time and RSS for each allocator --------------------------------------
    header = ["workload"] + ["%s s" % n for n in shown] + ["%s cpu s" % n for n in shown] + \
        ["%s MiB" % n for n in shown]
    rows = []
    for w, *_ in workloads:
        row = [w]
        for key, f in (("time", fmt_t), ("cpu", fmt_t), ("rss", fmt_mb)):
            for n in shown:
                if n in skipped:
                    row.append("n/a")
                elif results[(w, n)]["fail"]:
                    row.append("FAIL")
                else:
                    row.append(f(results[(w, n)][key]))
        rows.append(row)

    # geometric means over the workloads every shown allocator completed, so they compare like with like
    complete = [w for w, *_ in workloads if all(cell(w, n, "time") is not None for n in names)]
    gm = {(n, key): geomean([cell(w, n, key) for w in complete]) for n in names for key in ("time", "cpu", "rss")}
    row = ["geomean (%d)" % len(complete)]
    for key, f in (("time", fmt_t), ("cpu", fmt_t), ("rss", fmt_mb)):
        for n in shown:
            row.append("n/a" if n in skipped else f(gm[(n, key)]))
    rows.append(row)

    # ---- heapkit's ratio to each peer (<1 means heapkit is faster / smaller) ------------------------
    peers = [n for n in names if n != "heapkit"]
    ratio_rows = []
    if "heapkit" in names:
        for w, *_ in workloads + [("geomean",)]:
            row = [w]
            for key in ("time", "cpu", "rss"):
                for p in peers:
                    if w == "geomean":
                        hk = geomean([cell(x, "heapkit", key) / cell(x, p, key) for x in complete]) if complete else None
                        row.append(fmt_r(hk))
                        continue
                    h, q = cell(w, "heapkit", key), cell(w, p, key)
                    row.append("FAIL" if h is None else fmt_r(h / q) if q else "—")
            ratio_rows.append(row)
    ratio_header = ["heapkit ÷"] + ["%s time" % p for p in peers] + ["%s cpu" % p for p in peers] + \
        ["%s RSS" % p for p in peers]

    # ---- ratios to the reference allocator, for the charts and for a heapkit-less table -------------
    ref = "mimalloc" if "mimalloc" in names else "glibc"
    norm = {}
    for w, *_ in workloads:
        for n in names:
            for key in ("time", "rss"):
                x, r0 = cell(w, n, key), cell(w, ref, key)
                norm[(w, n, key)] = x / r0 if (x is not None and r0) else None

    # ---- peak-then-free and thread churn RSS details -------------------------------------------------
    def kvmed(w, n, k):
        r = results.get((w, n))
        if not r or r["fail"] or not r["runs"]:
            return None
        vals = [float(x["kv"][k]) for x in r["runs"] if k in x["kv"]]
        return median(vals)
    pf_rows = []
    if any(w == "peakfree" for w, *_ in workloads):
        for n in shown:
            if n in skipped or results[("peakfree", n)]["fail"]:
                pf_rows.append([n] + ["n/a" if n in skipped else "FAIL"] * 5)
                continue
            pf_rows.append([n, fmt_mb(kvmed("peakfree", n, "peak_rss_kb")),
                            fmt_mb(kvmed("peakfree", n, "rss_after_free_kb")),
                            fmt_mb(kvmed("peakfree", n, "rss_1s_kb")),
                            "%.0f%%" % (100 * kvmed("peakfree", n, "frac_1s")),
                            "%.0f%%" % (100 * kvmed("peakfree", n, "frac_end"))])
    pf_header = ["allocator", "peak MiB", "right after free MiB", "1 s after MiB", "1 s after / peak",
                 "1.5 s after / peak"]
    th_rows = []
    if any(w == "threads" for w, *_ in workloads):
        for n in shown:
            if n in skipped or results[("threads", n)]["fail"]:
                th_rows.append([n] + ["n/a" if n in skipped else "FAIL"] * 4)
                continue
            warm, end = kvmed("threads", n, "rss_warm_kb"), kvmed("threads", n, "rss_end_kb")
            final = kvmed("threads", n, "rss_final_kb")
            th_rows.append([n, fmt_mb(warm), fmt_mb(end), fmt_r(end / warm if warm else None),
                            fmt_mb(final) if final is not None else "n/a"])
    th_header = ["allocator", "RSS warm MiB", "RSS at end MiB", "end / warm", "after the last free MiB"]

    # ---- issue 2's goals, computed from the figures above (reported, never asserted) ---------------
    goals = []
    if "heapkit" in names and peers and complete:
        gt = {n: gm[(n, "time")] for n in names}
        fastest = min(peers, key=lambda n: gt[n])
        goals.append("time geomean %.2fx the fastest peer's (%s; goal <= 1: %s)" %
                     (gt["heapkit"] / gt[fastest], fastest, "met" if gt["heapkit"] <= gt[fastest] else "NOT met"))
        if "mimalloc" in peers:
            r = gt["heapkit"] / gt["mimalloc"]
            goals.append("time geomean %.2fx mimalloc's (goal <= 0.95: %s)" % (r, "met" if r <= 0.95 else "NOT met"))
        worst = max(((cell(w, "heapkit", "time") / min(cell(w, p, "time") for p in peers), w,
                      min(peers, key=lambda p: cell(w, p, "time"))) for w in complete))
        goals.append("slowest workload against its fastest peer: %s %.2fx %s (goal <= 1.2: %s)" %
                     (worst[1], worst[0], worst[2], "met" if worst[0] <= 1.2 else "NOT met"))
        # The same by CPU time, which waiting and the threaded workloads' thread placement disturb far
        # less. Workloads that time a phase themselves (peakfree: time_s) are left out: their CPU time
        # covers the whole child, the untimed phase included.
        cw = [w for w in complete
              if not any("time_s" in x["kv"] for n in names for x in results[(w, n)]["runs"])]
        if cw:
            worst = max(((cell(w, "heapkit", "cpu") / min(cell(w, p, "cpu") for p in peers), w,
                          min(peers, key=lambda p: cell(w, p, "cpu"))) for w in cw))
            goals.append("by CPU time (without %s): %s %.2fx %s (%s)" %
                         (", ".join(w for w in complete if w not in cw) or "none", worst[1], worst[0],
                          worst[2], "<= 1.2" if worst[0] <= 1.2 else "above 1.2"))
        if "mimalloc" in peers:
            r = gm[("heapkit", "rss")] / gm[("mimalloc", "rss")]
            goals.append("peak RSS geomean %.2fx mimalloc's (goal <= 0.9: %s)" % (r, "met" if r <= 0.9 else "NOT met"))
    if "heapkit" in names and any(w == "peakfree" for w, *_ in workloads) and not results[("peakfree", "heapkit")]["fail"]:
        f1 = kvmed("peakfree", "heapkit", "frac_1s")
        if f1 is not None:
            goals.append("peak-then-free: %.0f%% of the peak 1 s after the free (goal < 20%%: %s)" %
                         (100 * f1, "met" if f1 < 0.2 else "NOT met"))
    if "heapkit" in names and any(w == "threads" for w, *_ in workloads) and not results[("threads", "heapkit")]["fail"]:
        warm, end = kvmed("threads", "heapkit", "rss_warm_kb"), kvmed("threads", "heapkit", "rss_end_kb")
        if warm and end:
            # "Flat" within what the median levels can resolve: single runs of every allocator,
            # glibc's included, read 0.95-1.15 (bench/malloc/README.md, "Thread churn").
            r = end / warm
            goals.append("thread churn: RSS at the end %.2fx the warm level (goal: flat, <= 1.05: %s)" %
                         (r, "met" if r <= 1.05 else "NOT met"))

    # Spread of the repetitions: on a shared machine some cells are noisy, and the reader should know
    # which ones before trusting a ratio built on them.
    noisy = []
    for w, *_ in workloads:
        for n in names:
            r = results[(w, n)]
            ts = [float(x["kv"]["time_s"]) if "time_s" in x["kv"] else x["wall"] for x in r["runs"]]
            r["time_spread"] = spread(ts)
            r["cpu_spread"] = spread([x["cpu"] for x in r["runs"]])
            if len(ts) >= 3 and r["time"] and (max(ts) - min(ts)) / r["time"] > 0.25:
                noisy.append("%s/%s %.0f%%" % (w, n, 100 * (max(ts) - min(ts)) / r["time"]))

    # The threaded workloads, min/median/max of every allocator: their medians are the least sure.
    thr = [w for w, *_ in workloads if w in THREADED]
    thr_header = ["workload"] + ["%s wall min/med/max" % n for n in names] + ["%s cpu min/med/max" % n for n in names]
    thr_rows = []
    for w in thr:
        row = [w]
        for key in ("time_spread", "cpu_spread"):
            for n in names:
                sp = results[(w, n)].get(key)
                row.append("FAIL" if results[(w, n)]["fail"] else "—" if not sp else "/".join(fmt_t(x) for x in sp))
        thr_rows.append(row)

    # ---- print --------------------------------------------------------------------------------------
    fails = [(w, n, results[(w, n)]["fail"]) for w, *_ in workloads for n in names if results[(w, n)]["fail"]]
    print()
    print("median of %d runs (%s: %d), time in seconds (wall; peakfree: allocate+free phases), cpu = user+sys "
          "seconds of the whole child, peak RSS in MiB" % (reps, ", ".join(thr) or "threaded", treps))
    print(text_table(header, rows))
    if thr_rows:
        print("\nthreaded workloads, spread of the %d runs (seconds)" % treps)
        print(text_table(thr_header, thr_rows))
    if ratio_rows:
        print("\nheapkit / peer (below 1 = heapkit faster or smaller)")
        print(text_table(ratio_header, ratio_rows))
    if goals:
        print("\nissue 2 goals: " + "; ".join(goals))
    print("\npeak-then-free")
    print(text_table(pf_header, pf_rows))
    print("\nthread churn RSS")
    print(text_table(th_header, th_rows))
    if noisy:
        print("noisy (max-min over median > 25%%): %s" % ", ".join(noisy))
    for w, n, why in fails:
        print("FAIL: %s under %s: %s" % (w, n, why))
    for n, why in skipped.items():
        print("skipped: %s: %s" % (n, why))

    # ---- markdown --------------------------------------------------------------------------------------
    os.makedirs(a.outdir, exist_ok=True)
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    md = []
    md.append("## General allocator (malloc)\n")
    md.append("Command: `%s` (from the repository root; %d repetitions, %d for %s; scale %g)."
              % (a.command, reps, treps, ", ".join(sorted(THREADED)), a.scale))
    md.append("Run on %s UTC, %d cores (%s), load average %.1f at start, %.0f s in all. Each workload is "
              "a standalone program calling plain malloc/free/realloc/calloc; heapkit and the peers are "
              "swapped in with `LD_PRELOAD` (glibc: none) and run interleaved in one invocation. Figures "
              "are medians; time is wall-clock of the whole child, cpu its user+sys time (all threads, "
              "`wait4` rusage), RSS its peak (ru_maxrss). "
              "Every workload verifies the contents of each block before freeing it and prints a "
              "checksum that must match across allocators, or it is reported as FAIL and not timed."
              % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), os.cpu_count(), cpu, load0, elapsed))
    md.append("")
    md.append(md_table(header, rows))
    md.append("")
    md.append("Geometric means are over the %d workloads every allocator completed." % len(complete))
    if thr_rows:
        md.append("\nThe threaded workloads' wall time also depends on the machine's load and on whether the "
                  "scheduler runs their threads side by side or by turns on one core; their CPU time does not "
                  "count waiting, but a block freed on another core still costs more than on the same one "
                  "(see `bench/malloc/README.md`). Spread of the %d runs, min/median/max seconds:\n" % treps)
        md.append(md_table(thr_header, thr_rows))
    if ratio_rows:
        md.append("\nheapkit's ratio to each peer (below 1: heapkit is faster or uses less memory):\n")
        md.append(md_table(ratio_header, ratio_rows))
        if goals:
            md.append("\nAgainst the goals of issue 2 (reported, never asserted): " + "; ".join(goals) + ".")
    else:
        md.append("\nheapkit: %s.\n" % skipped.get("heapkit", "not run"))
        md.append("Ratio to %s (time, then RSS):\n" % ref)
        rr = []
        for w, *_ in workloads:
            rr.append([w] + [fmt_r(norm[(w, n, "time")]) for n in names] + [fmt_r(norm[(w, n, "rss")]) for n in names])
        md.append(md_table(["workload"] + ["%s time" % n for n in names] + ["%s RSS" % n for n in names], rr))
    if pf_rows:
        md.append("\n**Peak-then-free** (RSS sampled from /proc/self/statm; the goal is under 20% of the peak "
                  "1 s after the free):\n")
        md.append(md_table(pf_header, pf_rows))
    if th_rows:
        md.append("\n**Thread churn** (RSS levels: the median of one sample per wave over a twentieth of the "
                  "threads, from the later of the first tenth of the threads and 200 ms (warm) and over the "
                  "last twentieth (end); flat = 1.00):\n")
        md.append(md_table(th_header, th_rows))
    md.append("\nWorkloads (sources in `bench/malloc/`):\n")
    for w, b, _, desc in workloads:
        md.append("- `%s` (`%s.c`): %s." % (w, b, desc))
    if noisy:
        md.append("\nNoisy cells ((max - min) / median of the times above 25%%): %s." % ", ".join(noisy))
    for w, n, why in fails:
        md.append("\nFAIL: `%s` under %s: %s" % (w, n, why))
    for n, why in skipped.items():
        if n != "heapkit" or ratio_rows:
            md.append("\nSkipped: %s: %s." % (n, why))
    md.append("\n![time](malloc_time.png) ![rss](malloc_rss.png)")
    with open(os.path.join(a.outdir, "malloc.md"), "w") as f:
        f.write("\n".join(md) + "\n")

    raw = {"reps": reps, "threaded_reps": treps, "threaded": sorted(THREADED), "scale": a.scale,
           "allocators": dict(allocs), "skipped": skipped,
           "results": {"%s/%s" % k: {"fail": v["fail"], "time": v.get("time"), "cpu": v.get("cpu"),
                                     "rss_kb": v.get("rss"), "time_spread": v.get("time_spread"),
                                     "cpu_spread": v.get("cpu_spread"),
                                     "runs": [{"wall": x["wall"], "cpu": x["cpu"], "user": x["user"],
                                               "sys": x["sys"], "nvcsw": x["nvcsw"], "nivcsw": x["nivcsw"],
                                               "rss_kb": x["rss_kb"], "kv": x["kv"]}
                                              for x in v["runs"]]}
                       for k, v in results.items()}}
    with open(os.path.join(a.outdir, "malloc_raw.json"), "w") as f:
        json.dump(raw, f, indent=1)

    # ---- charts ----------------------------------------------------------------------------------
    charts(a.outdir, workloads, names, norm, ref)
    print("\nwrote %s/malloc.md, malloc_time.png, malloc_rss.png" % os.path.relpath(a.outdir, ROOT))
    return 1 if fails else 0


# one colour per allocator, whichever of them ran
COLOURS = {"glibc": "#7f7f7f", "heapkit": "#d62728", "mimalloc": "#1f77b4", "jemalloc": "#2ca02c",
           "tcmalloc": "#ff7f0e"}
EXTRA_COLOURS = ["#9467bd", "#8c564b", "#e377c2", "#17becf"]


def charts(outdir, workloads, names, norm, ref):
    gp = shutil.which("gnuplot")
    if not gp:
        print("gnuplot not found: no charts")
        return
    for key, title, fname in (("time", "time", "malloc_time.png"), ("rss", "peak RSS", "malloc_rss.png")):
        dat = os.path.join(outdir, ".malloc_%s.dat" % key)
        with open(dat, "w") as f:
            f.write("workload " + " ".join(names) + "\n")
            for w, *_ in workloads:
                vals = [norm[(w, n, key)] for n in names]
                f.write(w + " " + " ".join("%.4f" % v if v else "NaN" for v in vals) + "\n")
        series = ", ".join(
            "'%s' using %d:xtic(1) title columnheader(%d) lc rgb '%s'"
            % (dat, i + 2, i + 2, COLOURS.get(n) or EXTRA_COLOURS[i % len(EXTRA_COLOURS)])
            for i, n in enumerate(names))
        script = """
set terminal pngcairo size 1200,520 font ",10"
set output '%(out)s'
set title "malloc workloads: %(title)s relative to %(ref)s (median; lower is better; log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set yrange [0.0625:*]
set grid ytics
set ylabel "%(title)s / %(ref)s"
set xtics rotate by -25 scale 0
set key top left horizontal reverse Left
set datafile missing "NaN"
plot %(series)s, 1 with lines lc rgb "black" dt 2 notitle
""" % {"out": os.path.join(outdir, fname), "title": title, "ref": ref, "series": series}
        r = subprocess.run([gp], input=script, text=True, capture_output=True)
        if r.returncode != 0:
            print("gnuplot failed for %s: %s" % (fname, r.stderr[-300:]))
        os.unlink(dat)


if __name__ == "__main__":
    sys.exit(main())
