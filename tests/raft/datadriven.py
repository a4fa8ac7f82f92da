"""A small datadriven test runner (the format of cockroachdb/datadriven, used by etcd).

A file is a sequence of test cases::

    # comments and blank lines between cases are ignored
    command arg1 key=value key2=(1,2,3)
    optional input lines
    ----
    expected output lines
    (a blank line ends the output)

Run with ``ETCDPY_REWRITE=1`` to rewrite the expected outputs from the actual ones; the
rewritten golden files are then reviewed like code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TestCase:
    pos: str
    cmd: str
    args: list[str] = field(default_factory=list)
    kwargs: dict[str, str] = field(default_factory=dict)
    input: list[str] = field(default_factory=list)
    expected: str = ""
    preamble: list[str] = field(default_factory=list)
    """Comment lines just before the directive (kept when rewriting)."""

    def arg_int(self, i: int) -> int:
        return int(self.args[i])

    def kw_int(self, k: str, default: int) -> int:
        return int(self.kwargs[k]) if k in self.kwargs else default

    def kw_bool(self, k: str, default: bool) -> bool:
        return self.kwargs[k].lower() == "true" if k in self.kwargs else default

    def kw_ids(self, k: str) -> list[int]:
        v = self.kwargs.get(k, "()").strip("()")
        return [int(x) for x in v.split(",") if x.strip()]


def _parse_directive(line: str) -> tuple[str, list[str], dict[str, str]]:
    toks = line.split()
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for t in toks[1:]:
        if "=" in t:
            k, v = t.split("=", 1)
            kwargs[k] = v
        else:
            args.append(t)
    return toks[0], args, kwargs


def parse(path: Path) -> tuple[list[TestCase], list[str]]:
    """Test cases plus the file's lines (for rewriting)."""
    lines = path.read_text().splitlines()
    cases: list[TestCase] = []
    preamble: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            if line.strip():
                preamble.append(line)
            i += 1
            continue
        cmd, args, kwargs = _parse_directive(line)
        tc = TestCase(
            pos=f"{path.name}:{i + 1}", cmd=cmd, args=args, kwargs=kwargs, preamble=preamble
        )
        preamble = []
        i += 1
        while i < len(lines) and lines[i] != "----":
            tc.input.append(lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"{tc.pos}: missing ---- separator")
        i += 1
        out: list[str] = []
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        tc.expected = "\n".join(out)
        cases.append(tc)
    return cases, lines


def run_file(path: Path, handler: Callable[[TestCase], str]) -> None:
    cases, _ = parse(path)
    rewrite = os.environ.get("ETCDPY_REWRITE") == "1"
    chunks: list[str] = []
    failures: list[str] = []
    for tc in cases:
        got = handler(tc).rstrip("\n")
        if not got:
            got = "ok"
        if rewrite:
            head = " ".join([tc.cmd, *tc.args, *(f"{k}={v}" for k, v in tc.kwargs.items())])
            chunks.append("\n".join([*tc.preamble, head, *tc.input, "----", got]))
        elif got != tc.expected:
            failures.append(f"{tc.pos}: {tc.cmd}\n--- expected\n{tc.expected}\n--- got\n{got}")
            break  # later cases depend on this one
    if rewrite:
        path.write_text("\n\n".join(chunks) + "\n")
    assert not failures, failures[0]
