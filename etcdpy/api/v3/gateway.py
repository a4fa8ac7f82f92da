"""grpc-gateway's JSON API under /v3/ (what etcd embeds), on aiohttp, calling the same cores.

The dialect clients parse literally (grpc-gateway v1 with ``OrigName: true``):
- bodies are proto3 JSON: original field names (``cluster_id``), int64/uint64 as strings,
  bytes base64, enums by name, fields at their default value left out; compact separators;
- a unary failure answers HTTP ``HTTPStatusFromCode(code)`` with
  ``{"error": msg, "code": n, "message": msg}``;
- streaming calls (watch, lease keep-alive, snapshot, election observe) answer chunked,
  newline-separated ``{"result": {...}}`` objects; a failure mid-stream is one
  ``{"error": {"grpc_code", "http_code", "message", "http_status"}}`` chunk;
- a bidi call reads any number of JSON request objects from the body, one after the other;
  the response stream stays open after the body ends (etcd keeps watching).
- the ``Authorization`` header is the auth token (grpc-gateway forwards it as metadata).
- etcd's gateway is a gRPC client of its own member over ONE HTTP/2 connection, so
  --max-concurrent-streams bounds the gateway calls in flight: a call over the limit waits
  for a slot (a long watch holds one until it ends). ``Gateway`` keeps the same budget.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from etcdpy.api.v3 import auth
from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.handlers import Method
from etcdpy.api.v3.status import gateway_error, gateway_stream_error, to_status

# path -> (service, method), from etcd's rpc.proto / v3lock.proto / v3election.proto
ROUTES: dict[str, tuple[str, str]] = {
    "/v3/kv/range": ("etcdserverpb.KV", "Range"),
    "/v3/kv/put": ("etcdserverpb.KV", "Put"),
    "/v3/kv/deleterange": ("etcdserverpb.KV", "DeleteRange"),
    "/v3/kv/txn": ("etcdserverpb.KV", "Txn"),
    "/v3/kv/compaction": ("etcdserverpb.KV", "Compact"),
    "/v3/watch": ("etcdserverpb.Watch", "Watch"),
    "/v3/lease/grant": ("etcdserverpb.Lease", "LeaseGrant"),
    "/v3/lease/revoke": ("etcdserverpb.Lease", "LeaseRevoke"),
    "/v3/kv/lease/revoke": ("etcdserverpb.Lease", "LeaseRevoke"),
    "/v3/lease/keepalive": ("etcdserverpb.Lease", "LeaseKeepAlive"),
    "/v3/lease/timetolive": ("etcdserverpb.Lease", "LeaseTimeToLive"),
    "/v3/kv/lease/timetolive": ("etcdserverpb.Lease", "LeaseTimeToLive"),
    "/v3/lease/leases": ("etcdserverpb.Lease", "LeaseLeases"),
    "/v3/kv/lease/leases": ("etcdserverpb.Lease", "LeaseLeases"),
    "/v3/cluster/member/add": ("etcdserverpb.Cluster", "MemberAdd"),
    "/v3/cluster/member/remove": ("etcdserverpb.Cluster", "MemberRemove"),
    "/v3/cluster/member/update": ("etcdserverpb.Cluster", "MemberUpdate"),
    "/v3/cluster/member/list": ("etcdserverpb.Cluster", "MemberList"),
    "/v3/cluster/member/promote": ("etcdserverpb.Cluster", "MemberPromote"),
    "/v3/maintenance/alarm": ("etcdserverpb.Maintenance", "Alarm"),
    "/v3/maintenance/status": ("etcdserverpb.Maintenance", "Status"),
    "/v3/maintenance/defragment": ("etcdserverpb.Maintenance", "Defragment"),
    "/v3/maintenance/hash": ("etcdserverpb.Maintenance", "Hash"),
    "/v3/maintenance/hashkv": ("etcdserverpb.Maintenance", "HashKV"),
    "/v3/maintenance/snapshot": ("etcdserverpb.Maintenance", "Snapshot"),
    "/v3/maintenance/transfer-leadership": ("etcdserverpb.Maintenance", "MoveLeader"),
    "/v3/lock/lock": ("v3lockpb.Lock", "Lock"),
    "/v3/lock/unlock": ("v3lockpb.Lock", "Unlock"),
    "/v3/election/campaign": ("v3electionpb.Election", "Campaign"),
    "/v3/election/proclaim": ("v3electionpb.Election", "Proclaim"),
    "/v3/election/leader": ("v3electionpb.Election", "Leader"),
    "/v3/election/observe": ("v3electionpb.Election", "Observe"),
    "/v3/election/resign": ("v3electionpb.Election", "Resign"),
    **{path: (auth.SERVICE, rpc) for path, rpc in auth.GATEWAY_PATHS.items()},
}

# embed/serve.go accessController: "redirect for backward compatibilities" (/v3alpha is gone)
LEGACY_PREFIX = "/v3beta/"

_JSON_TYPE = "application/json"
CN_REFUSED = (
    "CommonName of client sending a request against gateway will be ignored and not used as "
    "expected"
)


def to_json(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def parse(body: Any, cls: Any) -> Any:
    msg = cls()
    if body:
        json_format.ParseDict(body, msg, ignore_unknown_fields=True)  # grpc-gateway v1 does
    return msg


class _BadRequest(Exception):
    """A body grpc-gateway could not decode: InvalidArgument with the decoder's text."""


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, _BadRequest):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    return to_status(exc)


def _error_response(exc: BaseException) -> web.Response:
    if isinstance(exc, _BadRequest):
        body = {"error": str(exc), "message": str(exc), "code": 3}
        return web.Response(body=dumps(body), status=400, content_type=_JSON_TYPE)
    status, body = gateway_error(exc)
    return web.Response(body=dumps(body), status=status, content_type=_JSON_TYPE)


async def _json_objects(request: web.Request) -> AsyncIterator[Any]:
    """Successive JSON values in the body, decoded as soon as each is complete."""
    decoder = json.JSONDecoder()
    buf = ""
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        buf += chunk.decode()
        while True:
            buf = buf.lstrip()
            if not buf:
                break
            try:
                obj, end = decoder.raw_decode(buf)
            except json.JSONDecodeError:
                break  # incomplete: wait for more
            buf = buf[end:]
            yield obj
    if buf.strip():
        raise _BadRequest("unexpected EOF")


def _metadata(request: web.Request) -> list[tuple[str, str]]:
    token = request.headers.get("Authorization")
    return [("authorization", token)] if token else []


def _common_name(api: ApiContext, request: web.Request) -> str | None:
    if not api.cert_cn_auth or request.transport is None:
        return None
    cert = request.transport.get_extra_info("peercert")
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


async def _cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """etcd's default --cors=* headers (embed/serve.go corsHandler)."""
    h = response.headers
    h["Access-Control-Allow-Origin"] = "*"
    h["Access-Control-Allow-Methods"] = "POST, GET, OPTIONS, PUT, DELETE"
    h["Access-Control-Allow-Headers"] = "accept, content-type, authorization"


# grpc-go's default: no limit on concurrent streams (etcd's default is math.MaxUint32)
_UNLIMITED_STREAMS = 2**31 - 1


class Gateway:
    def __init__(self, api: ApiContext, methods: list[Method]) -> None:
        self._api = api
        self._by_name = {(m.service, m.name): m for m in methods}
        limit = api.options.max_concurrent_streams
        # (created lazily bound: asyncio primitives attach to the loop of first use)
        self._streams = asyncio.Semaphore(limit) if 0 < limit < _UNLIMITED_STREAMS else None

    def _cn_refused(self, request: web.Request) -> bool:
        """etcd's accessController: with --client-cert-auth and auth enabled, a gateway
        request whose client certificate has a CN is refused (the CN would not be used)."""
        if not self._api.cert_cn_auth:
            return False
        enabled = getattr(self._api.server, "is_auth_enabled", None)
        if enabled is None or not enabled():
            return False
        return bool(_common_name(self._api, request))

    def _auth(self, request: web.Request) -> Any:
        return self._api.check_metadata(_metadata(request), _common_name(self._api, request))

    def add_routes(self, app: web.Application) -> None:
        app.on_response_prepare.append(_cors_headers)
        for path, key in ROUTES.items():
            m = self._by_name.get(key)
            if m is not None:
                handler = self._handler(m)
                app.router.add_post(path, handler)
                # etcd (3.4 through 3.6) still rewrites /v3beta/* to /v3/* for old clients
                app.router.add_post(LEGACY_PREFIX + path[len("/v3/") :], handler)

    def _handler(self, m: Method) -> Any:
        impl = {"unary": self._unary, "server_stream": self._server_stream}.get(m.kind, self._bidi)

        async def handler(request: web.Request) -> web.StreamResponse:
            if self._cn_refused(request):
                return web.Response(text=CN_REFUSED + "\n", status=400)
            if self._streams is None:
                return await impl(m, request)
            async with self._streams:  # one HTTP/2 stream of etcd's gateway connection
                return await impl(m, request)

        return handler

    async def _read_one(self, m: Method, request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            return m.request()
        try:
            return parse(json.loads(raw), m.request)
        except (ValueError, json_format.ParseError) as exc:
            raise _BadRequest(str(exc)) from exc

    async def _unary(self, m: Method, request: web.Request) -> web.StreamResponse:
        metrics = self._api.metrics
        metrics.started("unary", m.service, m.name)
        try:
            req = await self._read_one(m, request)
            resp = await m.core(req, self._auth(request))
        except Exception as exc:  # every failure becomes a gateway error body
            metrics.handled("unary", m.service, m.name, _status_of(exc)[0])
            return _error_response(exc)
        metrics.handled("unary", m.service, m.name, grpc.StatusCode.OK)
        return web.Response(body=dumps(to_json(resp)), content_type=_JSON_TYPE)

    async def _start_stream(self, request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": _JSON_TYPE})
        out.enable_chunked_encoding()
        await out.prepare(request)
        return out

    async def _server_stream(self, m: Method, request: web.Request) -> web.StreamResponse:
        try:
            req = await self._read_one(m, request)
            auth = self._auth(request)
        except Exception as exc:
            return _error_response(exc)
        out = await self._start_stream(request)
        try:
            async for resp in m.core(req, auth):
                await out.write(dumps({"result": to_json(resp)}) + b"\n")
        except Exception as exc:
            await out.write(dumps(gateway_stream_error(exc)))
        await out.write_eof()
        return out

    async def _bidi(self, m: Method, request: web.Request) -> web.StreamResponse:
        try:
            auth = self._auth(request)
        except Exception as exc:
            return _error_response(exc)
        out = await self._start_stream(request)

        async def requests() -> AsyncIterator[Any]:
            async for obj in _json_objects(request):
                try:
                    yield parse(obj, m.request)
                except json_format.ParseError as exc:
                    raise _BadRequest(str(exc)) from exc

        async def send(resp: Message) -> None:
            await out.write(dumps({"result": to_json(resp)}) + b"\n")

        try:
            await m.core(requests(), auth, send)
        except Exception as exc:
            await out.write(dumps(gateway_stream_error(exc)))
        await out.write_eof()
        return out
