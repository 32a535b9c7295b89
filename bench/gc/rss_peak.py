#!/usr/bin/env python3
"""Where a process's peak resident memory is: runs COMMAND, polls its VmRSS, and at the highest
value seen keeps /proc/PID/smaps and, for each 4 MiB-aligned segment of its large anonymous
mappings (heapkit's page layer), the resident KiB of the segment's first 128 KiB (heapkit: the
segment header, a block segment's tables) and of the rest (a block segment: its blocks).
Polling misses short peaks by a little: compare its maximum with the rss_kb the program reports.
  python3 bench/gc/rss_peak.py build/bench/gc/gcb_quadtree_heapkit 9789456"""
import os, re, struct, subprocess, sys

SEG = 4 << 20


def segments(pid):
    out = []
    with open(f"/proc/{pid}/maps") as f, open(f"/proc/{pid}/pagemap", "rb") as pm:
        for line in f:
            fields = line.split()
            if len(fields) > 5:
                continue  # a named mapping
            a, b = (int(x, 16) for x in fields[0].split("-"))
            if b - a < SEG:
                continue
            pm.seek(a // 4096 * 8)
            data = pm.read((b - a) // 4096 * 8)
            for seg in range((a + SEG - 1) // SEG * SEG, b, SEG):
                head = rest = 0
                for pg in range(seg, min(seg + SEG, b), 4096):
                    if struct.unpack_from("<Q", data, (pg - a) // 4096 * 8)[0] >> 63:
                        if pg - seg < 128 << 10:
                            head += 4
                        else:
                            rest += 4
                if head or rest:
                    out.append((seg, head, rest))
    return out


def by_mapping(smaps):
    tot, name = {}, None
    for line in smaps.splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            f = line.split()
            name = os.path.basename(f[5]) if len(f) > 5 else "[anon]"
        elif line.startswith("Rss:"):
            tot[name] = tot.get(name, 0) + int(line.split()[1])
    return tot


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    best, smaps, segs = 0, "", []
    while p.poll() is None:
        try:
            rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p.pid}/status").read()).group(1))
            if rss > best:
                smaps, segs, best = open(f"/proc/{p.pid}/smaps").read(), segments(p.pid), rss
        except (OSError, AttributeError, ValueError):
            pass  # the process is exiting
    print(p.communicate()[0].strip())
    print(f"highest VmRSS seen: {best} kB")
    for k, v in sorted(by_mapping(smaps).items(), key=lambda x: -x[1]):
        if v:
            print(f"  {v:8d} kB  {k}")
    for seg, head, rest in segs:
        print(f"  segment {seg:x}: first 128 KiB {head:5d} kB resident, rest {rest:6d} kB")


main()
