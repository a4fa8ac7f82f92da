"""Differential: command-line syntax errors match the real etcd binary (Go's flag package).

etcd 3.4 (installed here) and 3.5 parse flags with the same Go code, so the first line
of stderr and the exit status must be identical.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest

from etcdpy.cli.main import main

ETCD = shutil.which("etcd")

CASES = [
    ["--foo"],
    ["-foo=bar"],
    ["--name"],
    ["---name=x"],
    ["-=x"],
    ["--snapshot-count", "abc"],
    ["--snapshot-count=-1"],
    ["--quota-backend-bytes=99999999999999999999"],
    ["--enable-v2=maybe"],
    ["--initial-cluster-state", "bogus"],
    ["--grpc-keepalive-min-time=5"],
    ["--listen-client-urls", "localhost:2379"],
    ["--listen-peer-urls=http://127.0.0.1"],
    ["--listen-peer-urls=http://127.0.0.1:2380/p"],
    ["--max-concurrent-streams=x"],
    ["--heartbeat-interval=1.5"],
]


@pytest.mark.skipif(ETCD is None, reason="etcd binary not installed")
@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(a))
def test_flag_errors_match_etcd(argv: list[str], tmp_path: os.PathLike[str]) -> None:
    assert ETCD is not None
    real = subprocess.run(
        [ETCD, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, {}, stdout=out, stderr=err)
    assert rc == real.returncode == 2
    assert err.getvalue().splitlines()[0] == real.stderr.splitlines()[0]
