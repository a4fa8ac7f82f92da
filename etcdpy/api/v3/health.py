"""grpc.health.v1.Health (Check, Watch), as etcd registers it: service "" is SERVING.

grpcio-health-checking is not a dependency, and the two messages are tiny, so they are
encoded by hand (proto3 wire format):
  HealthCheckRequest  { string service = 1; }
  HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN=0 SERVING=1 NOT_SERVING=2
                                                     SERVICE_UNKNOWN=3 (Watch only)
Like grpc-go's health server: Check of an unknown service is NOT_FOUND "unknown service";
Watch of one answers SERVICE_UNKNOWN and keeps the stream open.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from etcdpy.api.v3.common import ApiContext

SERVICE = "grpc.health.v1.Health"
UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN = 0, 1, 2, 3
WATCH_POLL_SECONDS = 1.0


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def decode_request(data: bytes) -> str:
    """The ``service`` field of a HealthCheckRequest; unknown fields are skipped."""
    pos, service = 0, ""
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 2:
            n, pos = _read_varint(data, pos)
            if field == 1:
                service = data[pos : pos + n].decode("utf-8")
            pos += n
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError("unsupported wire type")
    return service


def encode_response(status: int) -> bytes:
    return b"" if status == UNKNOWN else bytes((0x08, status))


class HealthServicer:
    def __init__(self, api: ApiContext) -> None:
        self._api = api
        self.services: dict[str, int] = {"": SERVING}

    def _status(self, service: str) -> int | None:
        return self.services.get(service)

    async def check(self, service: str, context: Any) -> int:
        st = self._status(service)
        if st is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return int(st or 0)

    async def watch(self, service: str, context: Any) -> None:
        last = -1
        while True:
            st = self._status(service)
            cur = SERVICE_UNKNOWN if st is None else st
            if cur != last:
                await context.write(encode_response(cur))
                last = cur
            await asyncio.sleep(WATCH_POLL_SECONDS)


def grpc_handlers(api: ApiContext) -> tuple[HealthServicer, dict[str, dict[str, Any]]]:
    svc = HealthServicer(api)

    async def check(request: str, context: Any) -> bytes:
        return encode_response(await svc.check(request, context))

    async def watch(request: str, context: Any) -> None:
        await svc.watch(request, context)

    table = {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=decode_request, response_serializer=lambda b: b
        ),
        "Watch": grpc.unary_stream_rpc_method_handler(
            watch, request_deserializer=decode_request, response_serializer=lambda b: b
        ),
    }
    return svc, {SERVICE: table}
