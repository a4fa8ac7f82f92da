"""HTTP/1.1 on the same client port: etcd's endpoints and the grpc-gateway JSON dialect."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from tests.api.conftest import Served
from tests.api.fake_server import CLUSTER_ID, MEMBER_ID


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


async def _post(url: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, data=json.dumps(body)) as r:
        return r.status, json.loads(await r.read())


def post(served: Served, path: str, body: Any) -> tuple[int, Any]:
    return asyncio.run(_post(served.url + path, body))


def get(served: Served, path: str) -> tuple[int, str, str]:
    async def _get() -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as s, s.get(served.url + path) as r:
            return r.status, r.content_type, await r.text()

    return asyncio.run(_get())


def test_health_version_livez(served: Served) -> None:
    assert get(served, "/health") == (200, "application/json", '{"health":"true","reason":""}')
    assert get(served, "/version") == (
        200,
        "application/json",
        '{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}',
    )
    assert get(served, "/livez")[0] == 200 and get(served, "/readyz")[0] == 200
    served.lt.call(lambda: setattr(served.fake, "leader", False))
    try:
        status, _, text = get(served, "/health")
        assert status == 503
        assert json.loads(text) == {"health": "false", "reason": "RAFT NO LEADER"}
    finally:
        served.lt.call(lambda: setattr(served.fake, "leader", True))


def test_gateway_put_range_dialect(served: Served) -> None:
    status, put = post(served, "/v3/kv/put", {"key": b64("gw/a"), "value": b64("x")})
    assert status == 200
    hdr = put["header"]
    assert hdr["cluster_id"] == str(CLUSTER_ID) and hdr["member_id"] == str(MEMBER_ID)
    assert isinstance(hdr["revision"], str) and hdr["raft_term"] == "2"
    assert "prev_kv" not in put  # defaults left out
    status, rng = post(served, "/v3/kv/range", {"key": b64("gw/a"), "unknown_field": 1})
    assert status == 200 and rng["count"] == "1"
    kv = rng["kvs"][0]
    assert kv["key"] == b64("gw/a") and kv["value"] == b64("x") and kv["version"] == "1"
    status, miss = post(served, "/v3/kv/range", {"key": b64("gw/none")})
    assert status == 200 and "kvs" not in miss and "count" not in miss


def test_gateway_errors(served: Served) -> None:
    status, body = post(served, "/v3/kv/put", {"key": "", "value": b64("x")})
    msg = "etcdserver: key is not provided"
    assert (status, body) == (400, {"error": msg, "message": msg, "code": 3})
    status, body = post(served, "/v3/lease/revoke", {"ID": "99"})
    assert status == 404 and body["message"] == "etcdserver: requested lease not found"
    status, body = post(served, "/v3/lease/timetolive", {"ID": "99"})
    assert status == 200 and body["TTL"] == "-1"


def test_gateway_watch_streams_results(served: Served) -> None:
    async def run() -> list[Any]:
        out: list[Any] = []
        async with aiohttp.ClientSession() as s:
            body = json.dumps({"create_request": {"key": b64("gww/k")}})
            async with s.post(served.url + "/v3/watch", data=body) as r:
                assert r.status == 200
                line = await asyncio.wait_for(r.content.readline(), 5)
                out.append(json.loads(line))
                st, _ = await _post(
                    served.url + "/v3/kv/put", {"key": b64("gww/k"), "value": "eQ=="}
                )
                assert st == 200
                line = await asyncio.wait_for(r.content.readline(), 5)
                out.append(json.loads(line))
        return out

    created, event = asyncio.run(run())
    assert created["result"]["created"] is True
    ev = event["result"]["events"][0]
    assert "type" not in ev  # PUT is the enum default: left out, as grpc-gateway does
    assert ev["kv"]["key"] == b64("gww/k") and ev["kv"]["value"] == "eQ=="


def test_gateway_lease_keepalive_and_member_list(served: Served) -> None:
    status, g = post(served, "/v3/lease/grant", {"TTL": 30})
    assert status == 200 and g["TTL"] == "30"

    async def keepalive() -> Any:
        async with (
            aiohttp.ClientSession() as s,
            s.post(served.url + "/v3/lease/keepalive", data=json.dumps({"ID": g["ID"]})) as r,
        ):
            return json.loads(await r.content.readline())

    ka = asyncio.run(keepalive())
    assert ka["result"]["ID"] == g["ID"] and ka["result"]["TTL"] == "30"
    status, ml = post(served, "/v3/cluster/member/list", {})
    assert status == 200 and ml["members"][0]["name"] == "default"
    status, st = post(served, "/v3/maintenance/status", {})
    assert status == 200 and st["version"] == "3.5.17"


def test_metrics_names(served: Served) -> None:
    post(served, "/v3/kv/put", {"key": b64("m"), "value": b64("v")})
    status, ctype, text = get(served, "/metrics")
    assert status == 200 and ctype == "text/plain"
    assert "etcd_server_has_leader 1" in text
    assert 'etcd_server_version{server_version="3.5.17"} 1' in text
    assert (
        'grpc_server_handled_total{grpc_type="unary",grpc_service="etcdserverpb.KV",'
        'grpc_method="Put",grpc_code="OK"}' in text
    )


def _wait_streams_closed(served: Served) -> None:
    deadline = time.monotonic() + 5
    while served.lt.call(lambda: len(served.fake.streams)) != 0:
        assert time.monotonic() < deadline, "a watch stream was left open on the façade"
        time.sleep(0.02)


def test_watch_streams_are_closed_when_clients_go_away(served: Served) -> None:
    """No leak: dropping an HTTP watch or cancelling a gRPC one closes the façade's stream."""
    _wait_streams_closed(served)

    async def http_watch() -> None:
        async with aiohttp.ClientSession() as s:
            body = json.dumps({"create_request": {"key": b64("gone")}})
            async with s.post(served.url + "/v3/watch", data=body) as r:
                await asyncio.wait_for(r.content.readline(), 5)
                assert served.lt.call(lambda: len(served.fake.streams)) == 1

    asyncio.run(http_watch())
    _wait_streams_closed(served)

    with served.channel() as ch:
        reqs = iter([pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"gone"))])
        call = rpc.WatchStub(ch).Watch(reqs, timeout=10)
        assert next(call).created
        call.cancel()
    _wait_streams_closed(served)
