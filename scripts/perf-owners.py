#!/usr/bin/env python3
"""Whose code a broker's CPU samples are in: openraft's, the broker's, or neither.

Usage: perf script -i perf.data | scripts/perf-owners.py [--top N]
  Needs samples with call graphs (`perf record --call-graph dwarf -p <broker pid>`). Each sample
  goes to the owner of the innermost frame that is ours or openraft's: kernel, libc, tokio and
  serde frames count for whoever called them, so a `pwrite` the segment log makes is the
  broker's and a wakeup openraft's metrics channel causes is openraft's. A broker type's impl of
  an openraft trait (`<broker::raft::RaftLog as openraft::...>`) is the broker's. Samples with
  neither in their stack (the scheduler between tasks, the kernel's own threads) are "neither".
  Prints each owner's share and, with --top, the innermost frames that decided the most samples.

  docs/benchmarks.md uses it to say how much of the CPU an entry costs is openraft's own work.
"""
import collections
import re
import sys

FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.*?)(\+0x[0-9a-f]+)?\s+\(.*\)$")


def owner(symbol):
    """'broker', 'openraft' or None for a demangled symbol."""
    if symbol.startswith("<broker::") or symbol.startswith("broker::"):
        return "broker"
    if symbol.startswith("<openraft::") or symbol.startswith("openraft::"):
        return "openraft"
    return None


def samples(text):
    """Each sample's frames, innermost first."""
    for block in text.split("\n\n"):
        lines = block.strip().split("\n")[1:]
        frames = [m.group(1) for m in map(FRAME.match, lines) if m]
        if frames:
            yield frames


def main():
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 0
    shares = collections.Counter()
    deciders = collections.Counter()
    total = 0
    for frames in samples(sys.stdin.read()):
        total += 1
        found = next(((owner(f), f) for f in frames if owner(f)), ("neither", None))
        shares[found[0]] += 1
        if found[1]:
            deciders[(found[0], re.sub(r"::\{\{closure\}\}", "", found[1])[:100])] += 1
    if not total:
        sys.exit("no samples with call graphs on stdin (perf record --call-graph dwarf ...)")
    print(f"{total} samples")
    for name, n in shares.most_common():
        print(f"{100 * n / total:5.1f} %  {name}")
    for (name, frame), n in deciders.most_common(top):
        print(f"{100 * n / total:5.1f} %  {name:8}  {frame}")


if __name__ == "__main__":
    main()
