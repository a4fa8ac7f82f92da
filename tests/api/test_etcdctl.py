"""Real etcdctl 3.4 (ETCDCTL_API=3) against the API layer on one mux port, fake façade."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.api.conftest import Served

ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
pytestmark = pytest.mark.skipif(not os.path.exists(ETCDCTL), reason="etcdctl not installed")


def ctl(served: Served, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETCDCTL_API": "3"}
    cmd = [
        ETCDCTL,
        f"--endpoints={served.endpoint}",
        "--dial-timeout=3s",
        "--command-timeout=5s",
        *args,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def out(served: Served, *args: str) -> str:
    p = ctl(served, *args)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_put_get_del(served: Served) -> None:
    assert out(served, "put", "c/foo", "bar") == "OK\n"
    assert out(served, "get", "c/foo") == "c/foo\nbar\n"
    assert out(served, "get", "c/", "--prefix", "--keys-only") == "c/foo\n\n"
    assert out(served, "del", "c/foo") == "1\n"
    p = ctl(served, "put", "", "x")
    assert p.returncode != 0 and "etcdserver: key is not provided" in p.stderr


def test_watch_sees_puts(served: Served) -> None:
    env = {**os.environ, "ETCDCTL_API": "3"}
    w = subprocess.Popen(
        [ETCDCTL, f"--endpoints={served.endpoint}", "watch", "cw/k"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert w.stdout is not None
    stdout = w.stdout

    def reader() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=reader, daemon=True).start()
    try:
        # the watcher may not be registered yet: keep writing until it reports an event
        deadline = time.monotonic() + 10
        got: list[str] = []
        while len(got) < 3:
            assert time.monotonic() < deadline, got
            if not got:
                out(served, "put", "cw/k", "v")
            try:
                got.append(lines.get(timeout=0.2))
            except queue.Empty:
                continue
        assert got == ["PUT\n", "cw/k\n", "v\n"]
    finally:
        w.kill()
        w.wait(5)


def test_lease_grant_keepalive_timetolive(served: Served) -> None:
    granted = out(served, "lease", "grant", "60")
    lease_id = granted.split()[1]
    assert granted == f"lease {lease_id} granted with TTL(60s)\n"
    assert out(served, "lease", "keep-alive", "--once", lease_id) == (
        f"lease {lease_id} keepalived with TTL(60)\n"
    )
    assert "remaining" in out(served, "lease", "timetolive", lease_id)
    assert out(served, "put", "cl/k", "v", "--lease", lease_id) == "OK\n"
    assert out(served, "lease", "revoke", lease_id) == f"lease {lease_id} revoked\n"
    assert out(served, "get", "cl/k") == ""


def test_endpoint_health_status_member_list(served: Served) -> None:
    assert f"{served.endpoint} is healthy" in ctl(served, "endpoint", "health").stderr + out(
        served, "endpoint", "health"
    )
    status = out(served, "endpoint", "status")
    assert status.startswith(f"{served.endpoint}, 8e9e05c52164694d, 3.5.17,")
    assert out(served, "member", "list").startswith("8e9e05c52164694d, started, default,")


def test_lock_and_snapshot(served: Served, tmp_path: Path) -> None:
    assert out(served, "lock", "cmutex", "--", "echo", "held") == "held\n"
    snap = tmp_path / "snap.db"
    p = ctl(served, "snapshot", "save", str(snap))
    assert p.returncode == 0, p.stderr
    assert snap.stat().st_size % 512 == 32  # whole pages + the SHA-256 trailer
