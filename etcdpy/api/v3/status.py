"""EtcdError -> gRPC status and grpc-gateway error bodies: the only place this mapping lives.

Rules:
1. An ``EtcdError`` keeps etcd's exact message and its own gRPC code (from ``etcdpy.errors``).
2. Anything else that escapes a handler is a bug on our side: it becomes ``Unknown`` with the
   exception's text (grpc-go does the same for a plain Go error returned by a handler).
3. The JSON gateway answers like grpc-gateway v1 (what etcd 3.4/3.5 embed): HTTP status from
   ``HTTPStatusFromCode`` and a body ``{"error": msg, "code": n, "message": msg}``.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from etcdpy.errors import EtcdError, grpc_status

_CODES_BY_VALUE: dict[int, grpc.StatusCode] = {c.value[0]: c for c in grpc.StatusCode}

# grpc-gateway v1 runtime.HTTPStatusFromCode (the version etcd 3.4/3.5 vendor).
_HTTP_BY_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 408,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


def grpc_code(code: Any) -> grpc.StatusCode:
    """Accept a ``grpc.StatusCode``, its integer value, or its name (``"NOT_FOUND"``)."""
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return _CODES_BY_VALUE.get(code, grpc.StatusCode.UNKNOWN)
    if isinstance(code, str):
        return grpc.StatusCode.__members__.get(code.upper(), grpc.StatusCode.UNKNOWN)
    return grpc.StatusCode.UNKNOWN


def to_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The (code, message) a client sees for ``exc``."""
    if isinstance(exc, EtcdError):
        code, message = grpc_status(exc)  # etcd's togRPCError for domain errors
        return grpc_code(code.name), message
    return grpc.StatusCode.UNKNOWN, str(exc)


async def abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> NoReturn:
    """End the call with ``exc``'s status (raises grpc.aio's AbortError)."""
    code, message = to_status(exc)
    await context.abort(code, message)
    raise AssertionError("unreachable: context.abort returned")  # pragma: no cover


def http_status(code: grpc.StatusCode) -> int:
    return _HTTP_BY_CODE.get(code, 500)


def gateway_error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for a unary grpc-gateway call that failed with ``exc``."""
    code, message = to_status(exc)
    return http_status(code), {"error": message, "message": message, "code": code.value[0]}


def gateway_stream_error(exc: BaseException) -> dict[str, Any]:
    """The chunk grpc-gateway writes when a server stream fails (runtime.streamChunk)."""
    code, message = to_status(exc)
    http = http_status(code)
    return {
        "error": {
            "grpc_code": code.value[0],
            "http_code": http,
            "message": message,
            "http_status": _HTTP_TEXT.get(http, ""),
        }
    }


_HTTP_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
