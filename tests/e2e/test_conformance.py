"""What etcd's own e2e suite (tests/e2e of etcd 3.4) checks, reproduced with etcdctl and plain
HTTP: every test runs against etcdpy and against real etcd (the oracle), like
test_etcdctl_v3.py.

- TestV3Curl*: the JSON gateway is also served under the legacy ``/v3beta/`` prefix;
- TestV3Metrics*: Prometheus label pairs come sorted by name (client_golang's exposition) and
  a watch stream cut by its client is counted as ``grpc_code="Canceled"``;
- TestCtlV3Lock: waiters interrupted with SIGINT release their place in the queue;
- TestV3Curl_MaxStreams_*: gateway calls share --max-concurrent-streams.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.harness import Ctl, Member, new_member, read_lines


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _post(member: Member, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        member.client_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _get_text(member: Member, path: str) -> str:
    with urllib.request.urlopen(member.client_url + path, timeout=10) as resp:
        return str(resp.read().decode())


def test_gateway_v3beta_prefix_is_an_alias_of_v3(member: Member) -> None:
    put = _post(member, "/v3beta/kv/put", {"key": _b64("vb/k"), "value": _b64("v1")})
    assert int(put["header"]["revision"]) > 0
    got = _post(member, "/v3/kv/range", {"key": _b64("vb/k")})
    assert got["kvs"][0]["value"] == _b64("v1")
    got = _post(member, "/v3beta/kv/range", {"key": _b64("vb/k")})
    assert got["kvs"][0]["value"] == _b64("v1")
    txn = _post(
        member,
        "/v3beta/kv/txn",
        {
            "compare": [{"key": _b64("vb/k"), "result": "EQUAL", "target": "VALUE",
                         "value": _b64("v1")}],
            "success": [{"request_put": {"key": _b64("vb/k"), "value": _b64("v2")}}],
        },
    )
    assert txn["succeeded"] is True
    grant = _post(member, "/v3beta/lease/grant", {"TTL": 30})
    assert grant["TTL"] == "30"


_CANCELED_WATCH = (
    'grpc_server_handled_total{grpc_code="Canceled",grpc_method="Watch",'
    'grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} '
)


def _canceled_watches(member: Member) -> int:
    for line in _get_text(member, "/metrics").splitlines():
        if line.startswith(_CANCELED_WATCH):
            return int(float(line[len(_CANCELED_WATCH):]))
    return 0


def test_metrics_sorted_labels_and_canceled_watch(ctl: Ctl, member: Member) -> None:
    text = _get_text(member, "/metrics")
    started = [ln for ln in text.splitlines() if ln.startswith("grpc_server_started_total{")]
    assert started, "grpc_server_started_total is missing"
    for line in started:
        names = [pair.split("=")[0] for pair in line[line.index("{") + 1 : line.index("}")]
                 .split(",")]
        assert names == sorted(names), line
    before = _canceled_watches(member)
    ctl.out("put", "mw/k", "v")
    proc = ctl.popen("watch", "mw/k", "--rev", "1")
    try:
        assert read_lines(proc, 3) == ["PUT", "mw/k", "v"]
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _canceled_watches(member) <= before:
        time.sleep(0.05)
    assert _canceled_watches(member) == before + 1


def _interrupt(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def _wait_waiters(ctl: Ctl, prefix: str, n: int) -> None:
    """Poll until ``n`` lock keys exist (each etcdctl has queued itself)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if len(ctl.out("get", prefix, "--prefix", "--keys-only").split()) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{n} waiters never queued under {prefix}")


def test_lock_queue_survives_interrupted_waiter_and_holder(ctl: Ctl) -> None:
    """TestCtlV3Lock: holder, a waiter that gives up, a waiter that gets the lock."""
    procs: list[subprocess.Popen[str]] = []
    try:
        holder = ctl.popen("lock", "lq")
        procs.append(holder)
        first = read_lines(holder, 1)
        assert len(first) == 1 and first[0].startswith("lq/")
        blocked = ctl.popen("lock", "lq")
        procs.append(blocked)
        _wait_waiters(ctl, "lq/", 2)
        acquirer = ctl.popen("lock", "lq")
        procs.append(acquirer)
        _wait_waiters(ctl, "lq/", 3)
        assert read_lines(blocked, 1, timeout=0.2) == []
        assert read_lines(acquirer, 1, timeout=0.2) == []
        _interrupt(blocked)
        _interrupt(holder)
        got = read_lines(acquirer, 1, timeout=15)
        assert len(got) == 1 and got[0].startswith("lq/") and got[0] != first[0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_gateway_calls_share_max_concurrent_streams(
    member: Member, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """TestV3Curl_MaxStreams_*: with --max-concurrent-streams=2 and two HTTP watches open, an
    HTTP range waits (etcd's gateway is one HTTP/2 client connection) until a watch ends."""
    m = new_member(member.kind, Path(tmp_path_factory.mktemp(f"ms-{member.kind}")), "ms")
    m.start(["--max-concurrent-streams", "2"])
    try:

        async def run() -> tuple[bool, int]:
            body = json.dumps({"create_request": {"key": _b64("ms")}})
            async with aiohttp.ClientSession() as s:
                watches = [await s.post(m.client_url + "/v3/watch", data=body) for _ in range(2)]
                for w in watches:
                    await asyncio.wait_for(w.content.readline(), 10)
                rng = asyncio.ensure_future(
                    s.post(m.client_url + "/v3/kv/range", data=json.dumps({"key": _b64("x")}))
                )
                done, _ = await asyncio.wait({rng}, timeout=1.0)
                blocked = not done
                watches[0].close()
                resp = await asyncio.wait_for(rng, 10)
                watches[1].close()
                return blocked, resp.status

        blocked, status = asyncio.run(run())
        assert blocked, "the range did not wait for a free stream"
        assert status == 200
    finally:
        m.stop()
