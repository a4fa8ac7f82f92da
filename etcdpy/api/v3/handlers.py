"""Method tables: one description per RPC, turned into grpc.aio handlers (and gateway routes).

Each service module lists its RPCs as ``Method`` rows with a transport-free "core":
- unary: ``async core(request, auth) -> response``
- server streaming: ``core(request, auth) -> AsyncIterator[response]``
- bidi streaming: ``async core(requests: AsyncIterator, auth, send) -> None`` where ``send``
  is ``async send(response)``; the gRPC side and the JSON gateway provide their own streams.

Errors raised by a core (``EtcdError``) become statuses here, once, via ``status.py``; the
gRPC metrics of go-grpc-prometheus are counted here too, so servicers stay straight-line code.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import grpc

from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.status import to_status

Kind = Literal["unary", "server_stream", "bidi"]
GRPC_TYPE = {"unary": "unary", "server_stream": "server_stream", "bidi": "bidi_stream"}


@dataclass(frozen=True, slots=True)
class Method:
    service: str  # full name, e.g. "etcdserverpb.KV"
    name: str  # e.g. "Put"
    kind: Kind
    request: Any  # protobuf message class
    response: Any  # protobuf message class
    core: Callable[..., Any]
    # gRPC only (the gateway keeps ``core``): same contract as ``core``, but it may answer
    # (or send) responses already serialized as ``bytes``, written to the wire as they are.
    grpc_core: Callable[..., Any] | None = None


def _pass_bytes(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """A response serializer that writes ``bytes`` responses unchanged (wire.py built them)."""

    def ser(msg: Any) -> bytes:
        if type(msg) is bytes:
            return msg
        return serialize(msg)

    return ser


def _unary(api: ApiContext, m: Method) -> Callable[[Any, Any], Awaitable[Any]]:
    core = m.grpc_core or m.core
    metrics = api.metrics
    service, name = m.service, m.name
    auth_from = api.auth_from_context

    count_started, count_ok = metrics.unary_counters("unary", service, name)

    async def handler(request: Any, context: Any) -> Any:
        count_started()
        try:
            resp = await core(request, auth_from(context))
        except asyncio.CancelledError:  # the client went away: go-grpc-prometheus says Canceled
            metrics.handled("unary", service, name, grpc.StatusCode.CANCELLED)
            raise
        except Exception as exc:  # every failure becomes a status (status.py)
            code, message = to_status(exc)
            if code == grpc.StatusCode.UNKNOWN:
                api.log_unexpected(f"/{service}/{name}", exc)
            metrics.handled("unary", service, name, code)
            await context.abort(code, message)
        count_ok()
        return resp

    return handler


def _server_stream(api: ApiContext, m: Method) -> Callable[[Any, Any], Awaitable[None]]:
    core = m.grpc_core or m.core
    metrics = api.metrics
    service, name = m.service, m.name

    async def handler(request: Any, context: Any) -> None:
        metrics.started("server_stream", service, name)
        try:
            async for resp in core(request, api.auth_from_context(context)):
                await context.write(resp)
        except asyncio.CancelledError:
            metrics.handled("server_stream", service, name, grpc.StatusCode.CANCELLED)
            raise
        except Exception as exc:
            code, message = to_status(exc)
            api.log_unexpected(f"/{service}/{name}", exc)
            metrics.handled("server_stream", service, name, code)
            await context.abort(code, message)
        metrics.handled("server_stream", service, name, grpc.StatusCode.OK)

    return handler


def _bidi(api: ApiContext, m: Method) -> Callable[[Any, Any], Awaitable[None]]:
    core = m.grpc_core or m.core
    metrics = api.metrics
    service, name = m.service, m.name

    async def handler(request_iterator: AsyncIterator[Any], context: Any) -> None:
        metrics.started("bidi_stream", service, name)
        try:
            auth = api.auth_from_context(context)
            call = core(request_iterator, auth, context.write)
            if api.requires_leader(context.invocation_metadata()):
                await api.run_requiring_leader(call)
            else:
                await call
        except asyncio.CancelledError:  # e.g. `etcdctl watch` exiting: counted as Canceled
            metrics.handled("bidi_stream", service, name, grpc.StatusCode.CANCELLED)
            raise
        except Exception as exc:
            code, message = to_status(exc)
            api.log_unexpected(f"/{service}/{name}", exc)
            metrics.handled("bidi_stream", service, name, code)
            await context.abort(code, message)
        metrics.handled("bidi_stream", service, name, grpc.StatusCode.OK)

    return handler


def grpc_handlers(api: ApiContext, methods: list[Method]) -> dict[str, dict[str, Any]]:
    """{service: {method: RpcMethodHandler}} for grpc.aio."""
    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        des, ser = m.request.FromString, m.response.SerializeToString
        if m.grpc_core is not None:
            ser = _pass_bytes(ser)
        if m.kind == "unary":
            h = grpc.unary_unary_rpc_method_handler(
                _unary(api, m), request_deserializer=des, response_serializer=ser
            )
        elif m.kind == "server_stream":
            h = grpc.unary_stream_rpc_method_handler(
                _server_stream(api, m), request_deserializer=des, response_serializer=ser
            )
        else:
            h = grpc.stream_stream_rpc_method_handler(
                _bidi(api, m), request_deserializer=des, response_serializer=ser
            )
        out.setdefault(m.service, {})[m.name] = h
    return out


class _MethodTable:
    """A grpc GenericRpcHandler (duck-typed): every RPC in one dict keyed by its path.

    Deliberately not grpc.aio's "registered methods": grpc.aio keeps one pending
    request-call task per registered method and runs ``asyncio.wait`` over all of them for
    every incoming RPC (dozens of etcd methods → dozens of futures per request). With one
    generic handler there is one pending call and this lookup is one dict probe.
    """

    __slots__ = ("_table",)

    def __init__(self, table: dict[str, Any]) -> None:
        self._table = table

    def service(self, handler_call_details: Any) -> Any:
        return self._table.get(handler_call_details.method)


def register(server: grpc.aio.Server, handlers: dict[str, dict[str, Any]]) -> None:
    table = {
        f"/{service}/{name}": h
        for service, methods in handlers.items()
        for name, h in methods.items()
    }
    server.add_generic_rpc_handlers((_MethodTable(table),))
