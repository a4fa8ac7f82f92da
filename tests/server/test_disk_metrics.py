"""etcd's disk metrics: WAL fsync and backend commit histograms, WAL bytes written."""

from __future__ import annotations

import re
from pathlib import Path

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.observability.metrics import MetricsRegistry
from etcdpy.server.metrics import DISK_BUCKETS
from tests.server.support import member, run


def _series(text: str, name: str) -> dict[str, float]:
    """``{le or "": value}`` of one histogram (or counter) in an exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.fullmatch(rf'{name}(?:_bucket\{{le="([^"]+)"\}}|(_sum|_count))? (\S+)', line)
        if m:
            out[m.group(1) or m.group(2) or ""] = float(m.group(3))
    return out


def test_histogram_renders_like_client_golang() -> None:
    reg = MetricsRegistry()
    h = reg.histogram("etcd_disk_wal_fsync_duration_seconds", "fsync.", DISK_BUCKETS)
    for v in (0.0004, 0.001, 0.0015, 0.3, 20.0):
        h.observe(v)
    text = reg.render()
    assert "# TYPE etcd_disk_wal_fsync_duration_seconds histogram" in text
    s = _series(text, "etcd_disk_wal_fsync_duration_seconds")
    les = [k for k in s if k not in ("_sum", "_count")]
    assert les[:3] == ["0.001", "0.002", "0.004"] and les[-2:] == ["8.192", "+Inf"]
    assert s["0.001"] == 2  # a value equal to a bound is counted in it (le)
    assert s["0.002"] == 3 and s["0.512"] == 4 and s["8.192"] == 4
    assert s["+Inf"] == s["_count"] == 5
    assert abs(s["_sum"] - 20.3029) < 1e-9


def test_member_counts_each_wal_fsync_and_backend_commit(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            await s.settle()
            before = s.metrics.render()
            for i in range(5):  # one at a time: one WAL save and one KV commit each
                await s.put(pb.PutRequest(key=b"k%d" % i, value=b"x" * 100))
            await s.settle()
            after = s.metrics.render()
        for name in (
            "etcd_disk_wal_fsync_duration_seconds",
            "etcd_disk_backend_commit_duration_seconds",
        ):
            a, b = _series(before, name), _series(after, name)
            assert b["_count"] - a["_count"] >= 5, name
            assert b["_sum"] > a["_sum"], name
            cumulative = [v for k, v in b.items() if k not in ("_sum", "_count")]
            assert cumulative == sorted(cumulative) and cumulative[-1] == b["_count"]
        wrote = _series(after, "etcd_disk_wal_write_bytes_total")[""]
        assert wrote - _series(before, "etcd_disk_wal_write_bytes_total")[""] >= 5 * 100

    run(body())


def test_no_fsync_no_fsync_samples(tmp_path: Path) -> None:
    """``--unsafe-no-fsync``: bytes are counted, no fsync is timed (none happens)."""

    async def body() -> None:
        async with member(tmp_path, "--unsafe-no-fsync") as e:
            await e.server.put(pb.PutRequest(key=b"k", value=b"v"))
            await e.server.settle()
            text = e.server.metrics.render()
        assert _series(text, "etcd_disk_wal_fsync_duration_seconds")["_count"] == 0
        assert _series(text, "etcd_disk_wal_write_bytes_total")[""] > 0

    run(body())
