"""Summarise a ``py-spy record --format raw`` profile: where the samples go, top frames first.

    py-spy record --pid PID -d 10 -r 200 --format raw -o put.txt
    python benchmarks/pyspy_summary.py put.txt [--top 12] [--rate 200 --duration 10 --ops-per-sec N]

Each raw line is ``frame;frame;...;leaf COUNT``. Prints, per thread kind (the event loop,
worker threads), the frames with the most samples *on top of the stack* (self) and the
functions present anywhere in the most stacks (inclusive, counted once per stack). With
``--rate`` and ``--duration`` (py-spy's ``-r`` and ``-d``) and ``--ops-per-sec`` (the load's
measured throughput while sampling) it also turns samples into microseconds per operation.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_LOC = re.compile(r" \((.*?):\d+\)$")


def func(frame: str) -> str:
    """``name (file.py:12)`` -> ``name (file.py)``: merge lines of one function."""
    return _LOC.sub(lambda m: f" ({m.group(1)})", frame.strip())


def thread_kind(frames: list[str]) -> str:
    if any(f.startswith("Thread._bootstrap") for f in frames[:12]):
        return "worker threads"
    return "event loop (main thread)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--rate", type=float, default=0.0, help="py-spy -r (samples/s)")
    ap.add_argument("--duration", type=float, default=0.0, help="py-spy -d (seconds)")
    ap.add_argument("--ops-per-sec", type=float, default=0.0)
    ap.add_argument("--callers", metavar="LEAF",
                    help="instead: the innermost Python frames under which LEAF (e.g. 'write "
                         "(libc') is on top of the stack")
    a = ap.parse_args(argv)
    self_c: dict[str, Counter[str]] = {}
    incl_c: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    with open(a.raw) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack or not n.isdigit():
                continue
            frames = stack.split(";")
            kind = thread_kind(frames)
            cnt = int(n)
            totals[kind] += cnt
            self_c.setdefault(kind, Counter())[func(frames[-1])] += cnt
            for fn in {func(x) for x in frames if ".py:" in x}:  # Python frames only
                incl_c.setdefault(kind, Counter())[fn] += cnt
    if a.callers:
        print_callers(a.raw, a.callers, a.top)
        return
    grand = sum(totals.values())
    ops = a.ops_per_sec * a.duration
    per_op = (1e6 / a.rate / ops) if a.rate and ops else 0.0
    print(f"{grand} samples" + (f" ({grand / a.rate:.1f} thread-seconds)" if a.rate else ""))
    for kind, total in totals.most_common():
        extra = f", {total * per_op:.0f} us/op" if per_op else ""
        print(f"\n## {kind}: {total} samples ({100 * total / grand:.0f}%{extra})")
        for title, c in (("self (top of stack)", self_c[kind]),
                         ("inclusive", incl_c[kind])):
            print(f"### {title}")
            skip = ("_run_module_as_main", "_run_code", "<module>", "Runner.run", "run (",
                    "main (", "_run_server", "Thread._bootstrap", "_worker (", "_WorkItem.run")
            shown = 0
            for fn, cnt in c.most_common():
                if title == "inclusive" and fn.startswith(skip):
                    continue
                us = f" {cnt * per_op:7.1f} us/op" if per_op else ""
                print(f"{100 * cnt / grand:5.1f}%{us}  {fn}")
                shown += 1
                if shown >= a.top:
                    break


def print_callers(raw: str, leaf: str, top: int) -> None:
    by: Counter[str] = Counter()
    with open(raw) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            frames = stack.split(";")
            if not n.isdigit() or not frames[-1].startswith(leaf):
                continue
            py = [func(x) for x in frames if ".py:" in x]
            by[" <- ".join(reversed(py[-3:])) or "(no Python frame)"] += int(n)
    total = sum(by.values())
    print(f"{total} samples with {leaf!r} on top")
    for k, v in by.most_common(top):
        print(f"{100 * v / max(total, 1):5.1f}%  {k}")


if __name__ == "__main__":
    main()
