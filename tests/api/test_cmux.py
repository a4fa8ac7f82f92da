"""The one-port multiplexer: sniffing, hand-over without losing bytes, every splice layout
(native splice thread, Python splice on the same loop, Python splice on a loop thread)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Iterator

import aiohttp
import grpc
import pytest

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from etcdpy.api.v3.common import ClientAPIOptions
from etcdpy.transport.cmux import HTTP2_PREFACE
from tests.api.conftest import Served, _serve
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def threaded() -> Iterator[Served]:
    """The mux on a loop of its own in another thread (threaded_mux=True)."""
    yield from _serve("mux", threaded_mux=True)


@pytest.fixture(scope="module")
def python_splice() -> Iterator[Served]:
    """The mux on the server's loop with the Python splice (no native thread)."""
    yield from _serve("mux", native_splice=False)


@pytest.fixture(scope="module", params=["native", "python-splice", "threaded"])
def mux(
    request: pytest.FixtureRequest, served: Served, python_splice: Served, threaded: Served
) -> Served:
    return {"native": served, "python-splice": python_splice, "threaded": threaded}[
        request.param
    ]


def test_default_layout_splices_natively(served: Served, python_splice: Served) -> None:
    """The extension is built wherever the package is (CI too): the default mux uses it."""
    assert served.listener.mux is not None and python_splice.listener.mux is not None
    assert served.listener.mux.native_splice
    assert not python_splice.listener.mux.native_splice


def test_large_grpc_messages_both_ways(mux: Served) -> None:
    """~1.5 MiB messages up and down one connection: partial writes and backpressure lose
    no byte (the server accepts requests up to 2 MiB)."""
    value = bytes(range(256)) * (6 * 1024)
    with mux.channel() as ch:
        kv = rpc.KVStub(ch)
        for i in range(3):
            kv.Put(pb.PutRequest(key=b"mx/large%d" % i, value=value), timeout=10)
        for i in range(3):
            got = kv.Range(pb.RangeRequest(key=b"mx/large%d" % i), timeout=10)
            assert got.kvs[0].value == value


def test_spliced_connection_is_forgotten_when_closed(served: Served) -> None:
    """The native thread reports each closed pair; the mux drops its peer record."""
    mux = served.listener.mux
    assert mux is not None
    with served.channel() as ch:
        rpc.KVStub(ch).Put(pb.PutRequest(key=b"mx/p", value=b"1"), timeout=5)
        assert mux.spliced_count() >= 1
        assert any(p.remote_address.startswith("127.0.0.1:") for p in mux.peers.values())
    assert wait_until(lambda: mux.spliced_count() == 0 and not mux.peers)


def test_grpc_and_http_share_the_port(mux: Served) -> None:
    with mux.channel() as ch:
        rpc.KVStub(ch).Put(pb.PutRequest(key=b"mx/a", value=b"1"), timeout=5)

    async def run() -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.get(mux.url + "/version") as r:
            return r.status, await r.text()

    assert asyncio.run(run())[0] == 200


def test_large_http_body_survives_the_hand_over(mux: Served) -> None:
    """The sniffed first bytes and the rest of a 1 MiB body reach aiohttp in order."""
    value = bytes(range(256)) * 4096
    body = json.dumps(
        {"key": base64.b64encode(b"mx/big").decode(), "value": base64.b64encode(value).decode()}
    )

    async def run() -> int:
        async with aiohttp.ClientSession() as s:
            async with s.post(mux.url + "/v3/kv/put", data=body) as r:
                assert r.status == 200, await r.text()
            # keep-alive: a second request on the same connection
            async with s.post(mux.url + "/v3/kv/range", data=json.dumps({"key": "bXgvYmln"})) as r:
                got = json.loads(await r.read())
                assert base64.b64decode(got["kvs"][0]["value"]) == value
                return r.status

    assert asyncio.run(run()) == 200


def test_preface_split_across_reads_is_grpc(mux: Served) -> None:
    """A client that sends the HTTP/2 preface in pieces still reaches gRPC."""
    with socket.create_connection(("127.0.0.1", mux.port), timeout=5) as s:
        for i in range(0, len(HTTP2_PREFACE), 5):
            s.sendall(HTTP2_PREFACE[i : i + 5])
        s.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS frame
        frame = s.recv(9)
        assert len(frame) == 9 and frame[3] == 0x04  # the server's SETTINGS frame


def test_grpc_channel_after_http_connections(mux: Served) -> None:
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", mux.port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b'"reason":""}')
    with grpc.insecure_channel(mux.endpoint) as ch:
        r = rpc.KVStub(ch).Range(pb.RangeRequest(key=b"mx/a"), timeout=5)
        assert r.kvs[0].value == b"1"


def test_grpc_only_mode() -> None:
    gen = _serve("grpc")
    srv = next(gen)
    try:
        with srv.channel() as ch:
            st = rpc.MaintenanceStub(ch).Status(pb.StatusRequest(), timeout=5)
            assert st.version == "3.5.17"
    finally:
        gen.close()


def test_keepalive_pings_within_min_time_keep_the_connection() -> None:
    """etcd's --grpc-keepalive-min-time: idle clients may ping that often without a GOAWAY
    (grpcio's defaults would answer "too_many_pings" after two such pings)."""
    gen = _serve("mux", ClientAPIOptions(grpc_keepalive_min_time=1.0))
    srv = next(gen)
    opts = [
        ("grpc.keepalive_time_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    states: list[grpc.ChannelConnectivity] = []
    try:
        with grpc.insecure_channel(srv.endpoint, options=opts) as ch:
            ch.subscribe(states.append, try_to_connect=True)
            rpc.KVStub(ch).Put(pb.PutRequest(key=b"ka", value=b"1"), timeout=5)
            deadline = time.monotonic() + 4.5  # 4 pings; the 3rd would be a GOAWAY by default
            while time.monotonic() < deadline:
                time.sleep(0.1)
            rpc.KVStub(ch).Range(pb.RangeRequest(key=b"ka"), timeout=5)
        assert (
            grpc.ChannelConnectivity.IDLE
            not in states[states.index(grpc.ChannelConnectivity.READY) :]
        ), states
    finally:
        gen.close()
