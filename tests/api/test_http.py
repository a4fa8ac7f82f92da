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
from etcdpy.api.v3.common import ClientAPIOptions
from tests.api.conftest import Served, _serve
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
    assert get(served, "/health") == (200, "text/plain", '{"health":"true","reason":""}')  # as etcd
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


def test_grpc_series_exist_before_any_call() -> None:
    """go-grpc-prometheus' Register, as in etcd: every served etcdserverpb RPC and the health
    service show started = 0 and handled = 0 for each of the 17 codes from the start; the
    lock and election services (registered after it in etcd) do not."""
    from etcdpy.api.v3.common import ApiContext
    from etcdpy.api.v3.server import build_grpc_server
    from tests.api.fake_server import FakeServer

    async def build() -> str:
        api = ApiContext(FakeServer())
        build_grpc_server(api)
        return api.registry.render()

    text = asyncio.run(build())
    started = [ln for ln in text.splitlines() if ln.startswith("grpc_server_started_total{")]
    assert (
        'grpc_server_started_total{grpc_method="Range",grpc_service="etcdserverpb.KV",'
        'grpc_type="unary"} 0' in started
    )
    assert (
        'grpc_server_started_total{grpc_method="Watch",grpc_service="etcdserverpb.Watch",'
        'grpc_type="bidi_stream"} 0' in started
    )
    assert (
        'grpc_server_started_total{grpc_method="Check",grpc_service="grpc.health.v1.Health",'
        'grpc_type="unary"} 0' in started
    )
    assert not any("v3lockpb" in ln or "v3electionpb" in ln for ln in started)
    range_codes = [
        ln for ln in text.splitlines()
        if ln.startswith("grpc_server_handled_total{") and 'grpc_method="Range"' in ln
    ]
    assert len(range_codes) == 17 and all(ln.endswith(" 0") for ln in range_codes)


def test_metrics_names(served: Served) -> None:
    post(served, "/v3/kv/put", {"key": b64("m"), "value": b64("v")})
    status, ctype, text = get(served, "/metrics")
    assert status == 200 and ctype == "text/plain"
    assert "etcd_server_has_leader 1" in text
    assert 'etcd_server_version{server_version="3.5.17"} 1' in text
    # client_golang's exposition: label pairs sorted by name
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="Put",'
        'grpc_service="etcdserverpb.KV",grpc_type="unary"}' in text
    )


def test_gateway_v3beta_prefix(served: Served) -> None:
    """etcd rewrites /v3beta/* to /v3/* (embed/serve.go); /v3alpha is not served."""
    status, put = post(served, "/v3beta/kv/put", {"key": b64("beta/a"), "value": b64("x")})
    assert status == 200 and put["header"]["revision"]
    status, rng = post(served, "/v3beta/kv/range", {"key": b64("beta/a")})
    assert status == 200 and rng["kvs"][0]["value"] == b64("x")
    status, _ = post(served, "/v3beta/lease/grant", {"TTL": 10})
    assert status == 200

    async def alpha() -> int:
        async with aiohttp.ClientSession() as s, s.post(served.url + "/v3alpha/kv/range") as r:
            return r.status

    assert asyncio.run(alpha()) == 404


def _canceled_watches(served: Served) -> float:
    prefix = (
        'grpc_server_handled_total{grpc_code="Canceled",grpc_method="Watch",'
        'grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} '
    )
    for line in get(served, "/metrics")[2].splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def test_cancelled_grpc_watch_counted_as_canceled(served: Served) -> None:
    before = _canceled_watches(served)
    with served.channel() as ch:
        reqs = iter([pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"cw"))])
        call = rpc.WatchStub(ch).Watch(reqs, timeout=10)
        assert next(call).created
        call.cancel()
    deadline = time.monotonic() + 5
    while _canceled_watches(served) <= before:
        assert time.monotonic() < deadline, "the cancelled watch was not counted"
        time.sleep(0.02)
    assert _canceled_watches(served) == before + 1


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


def test_gateway_calls_share_max_concurrent_streams() -> None:
    """etcd's gateway is one HTTP/2 client connection: with --max-concurrent-streams=2 and two
    HTTP watches open, a range waits until one of them ends (TestV3Curl_MaxStreams_*)."""
    gen = _serve("mux", ClientAPIOptions(max_concurrent_streams=2))
    served = next(gen)
    try:

        async def run() -> tuple[bool, int]:
            body = json.dumps({"create_request": {"key": b64("ms")}})
            async with aiohttp.ClientSession() as s:
                watches = [await s.post(served.url + "/v3/watch", data=body) for _ in range(2)]
                for w in watches:
                    await asyncio.wait_for(w.content.readline(), 5)
                rng = asyncio.ensure_future(_post(served.url + "/v3/kv/range", {"key": b64("x")}))
                done, _ = await asyncio.wait({rng}, timeout=0.5)
                blocked = not done
                watches[0].close()
                status, _ = await asyncio.wait_for(rng, 5)
                watches[1].close()
                return blocked, status

        blocked, status = asyncio.run(run())
        assert blocked, "the range did not wait for a free stream"
        assert status == 200
    finally:
        gen.close()


def test_unknown_paths_and_methods_answer_as_etcds_go_server(served: Served) -> None:
    """net/http's 404 page, grpc-gateway's under /v3, and 405, byte for byte (text/plain)."""

    async def call(method: str, path: str) -> tuple[int, str, str, str]:
        async with aiohttp.ClientSession() as s, s.request(method, served.url + path) as r:
            return (r.status, r.content_type, r.headers.get("X-Content-Type-Options", ""),
                    await r.text())

    def run_(method: str, path: str) -> tuple[int, str, str, str]:
        return asyncio.run(call(method, path))

    assert run_("GET", "/nope") == (404, "text/plain", "nosniff", "404 page not found\n")
    assert run_("POST", "/v3/kv/nope") == (404, "text/plain", "nosniff", "Not Found\n")
    assert run_("GET", "/v3beta/nope") == (404, "text/plain", "nosniff", "Not Found\n")
    for method, path in (("GET", "/v3/kv/range"), ("POST", "/health"), ("POST", "/version")):
        assert run_(method, path) == (405, "text/plain", "nosniff", "Method Not Allowed\n")
    assert get(served, "/health")[0] == 200  # known routes are untouched


def test_debug_vars_is_gos_expvar_page(served: Served) -> None:
    status, ctype, text = get(served, "/debug/vars")
    assert status == 200 and ctype == "application/json"
    assert text.startswith("{\n") and text.endswith("\n}\n")
    doc = json.loads(text)
    assert isinstance(doc["cmdline"], list) and doc["file_descriptor_limit"] > 0
    assert "raft.status" not in doc  # the fake façade has no raft


def test_metrics_and_health_content_types_are_etcds(served: Served) -> None:
    async def headers(path: str) -> str:
        async with aiohttp.ClientSession() as s, s.get(served.url + path) as r:
            return r.headers["Content-Type"]

    assert asyncio.run(headers("/metrics")) == "text/plain; version=0.0.4; charset=utf-8"
    assert asyncio.run(headers("/health")) == "text/plain; charset=utf-8"
