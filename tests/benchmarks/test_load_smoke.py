"""Smoke test of the benchmark load tool: 200 puts against the bare floor server.

Not a performance test: it asserts only that ``benchmarks/load.py`` runs end to end and that
its last line is the JSON summary with every put acknowledged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.support.ports import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.timeout(30)
def test_load_put_against_floor() -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=REPO)
    srv = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "benchmarks", "floor_server.py"),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        assert srv.stdout is not None
        deadline = time.monotonic() + 15
        line = ""
        while "ready to serve client requests" not in line:
            assert time.monotonic() < deadline, "floor server did not start"
            line = srv.stdout.readline()
            assert line or srv.poll() is None, "floor server exited"
        out = subprocess.run(
            [sys.executable, os.path.join(REPO, "benchmarks", "load.py"),
             "--endpoints", f"127.0.0.1:{port}", "--clients", "4", "--conns", "2",
             "put", "--total", "200"],
            capture_output=True, text=True, env=env, timeout=20)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["workload"] == "put"
        assert result["ops"] == 200
        assert result["errors"] == 0
        assert result["p50_ms"] <= result["p99_ms"]
    finally:
        srv.kill()
        srv.wait(5)
