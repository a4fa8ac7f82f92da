"""What operators' tools read besides the APIs: Prometheus' process metrics (client_golang's
names and help texts; dashboards chart them, ``etcdctl check datascale`` reads the resident
memory) and /debug/vars' ``raft.status`` in Go raft's JSON."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from etcdpy.api.http.endpoints import expvars
from etcdpy.observability.metrics import MetricsRegistry
from etcdpy.observability.process_metrics import register_process_metrics
from tests.server.support import member, run

# What the real etcd 3.4 prints (its /metrics, process collector), name -> (type, help).
ETCD_FAMILIES = {
    "process_cpu_seconds_total": ("counter", "Total user and system CPU time spent in seconds."),
    "process_max_fds": ("gauge", "Maximum number of open file descriptors."),
    "process_open_fds": ("gauge", "Number of open file descriptors."),
    "process_resident_memory_bytes": ("gauge", "Resident memory size in bytes."),
    "process_start_time_seconds": (
        "gauge", "Start time of the process since unix epoch in seconds."),
    "process_virtual_memory_bytes": ("gauge", "Virtual memory size in bytes."),
    "process_virtual_memory_max_bytes": (
        "gauge", "Maximum amount of virtual memory available in bytes."),
}


def _values(text: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(process_\w+) (\S+)$", text, re.M)}


def test_families_values_and_help_texts_match_etcd() -> None:
    reg = MetricsRegistry()
    register_process_metrics(reg)
    before = time.time()
    text = reg.render()
    for name, (typ, help_text) in ETCD_FAMILIES.items():
        assert f"# HELP {name} {help_text}\n# TYPE {name} {typ}\n" in text
    v = _values(text)
    assert set(v) == set(ETCD_FAMILIES)
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert 0.5 * rss < v["process_resident_memory_bytes"] < 2 * rss
    assert v["process_virtual_memory_bytes"] >= v["process_resident_memory_bytes"]
    assert 0 < v["process_open_fds"] <= v["process_max_fds"]
    assert 0 < v["process_cpu_seconds_total"]
    assert before - 24 * 3600 * 365 < v["process_start_time_seconds"] <= before + 1


def test_an_unreadable_value_leaves_its_family_empty(tmp_path: Path) -> None:
    reg = MetricsRegistry()
    register_process_metrics(reg, proc=str(tmp_path / "missing"))
    v = _values(reg.render())
    assert "process_resident_memory_bytes" not in v and "process_open_fds" not in v
    assert "process_cpu_seconds_total" in v and "process_max_fds" in v  # not from /proc


def test_member_serves_them(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            assert set(ETCD_FAMILIES) <= set(_values(e.server.metrics.render()))

    run(body())


def test_debug_vars_raft_status_is_go_rafts_json(tmp_path: Path) -> None:
    """etcd publishes Go raft's Status under ``raft.status``; the same keys in the same
    order, IDs in hex, states by their Go names (what real etcd 3.4 prints)."""
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            await s.settle()
            text = expvars(s.raft_status)
            status = json.loads(text)["raft.status"]
            me = f"{s.id:x}"
            assert list(status) == ["id", "term", "vote", "commit", "lead", "raftState",
                                    "applied", "progress", "leadtransferee"]
            assert status["id"] == status["lead"] == status["vote"] == me
            assert status["raftState"] == "StateLeader" and status["leadtransferee"] == "0"
            assert status["term"] == s.term and status["applied"] >= 1
            assert status["progress"] == {
                me: {"match": status["commit"], "next": status["commit"] + 1,
                     "state": "StateReplicate"}
            }
            line = next(ln for ln in text.splitlines() if ln.startswith('"raft.status": '))
            assert " " not in line[len('"raft.status": '):]  # Go's compact marshalling

    run(body())
