"""Smoke test of ``benchmarks/core_put.py`` (etcdpy's core under in-process put load) and of
the thread groups ``compare.py`` splits a server's CPU into. Not performance tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

from compare import THREAD_GROUPS, thread_group  # noqa: E402


@pytest.mark.timeout(60)
def test_core_put_runs_and_splits_cpu_by_thread() -> None:
    out = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "core_put.py"),
         "--clients", "4", "--total", "200", "--rounds", "1"],
        capture_output=True, text=True, timeout=50, env=dict(os.environ, PYTHONPATH=REPO))
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"4 clients: ([\d,]+) puts/s; us of CPU per put: (.*)", line)
    assert m, line
    assert int(m.group(1).replace(",", "")) > 0
    threads = dict(part.rsplit(" ", 1) for part in m.group(2).split(", "))
    assert "loop" in threads and "etcdpy-writer" in threads  # the writer names its OS thread


def test_thread_groups() -> None:
    assert thread_group("python", main=True) == "loop"
    assert thread_group("event_engine", main=False) == "grpc"
    assert thread_group("grpc_global_tim", main=False) == "grpc"
    assert thread_group("cmux-splice", main=False) == "splice"
    assert {thread_group(n, main=False) for n in ("etcdpy-writer", "etcdpy-wal", "etcdpy-kv")} \
        == {"writer"}
    assert thread_group("python", main=False) == "other"
    assert set(THREAD_GROUPS) == {"loop", "grpc", "splice", "writer", "other"}
