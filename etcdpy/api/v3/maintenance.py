"""Maintenance service (etcd v3rpc/maintenance.go): relays to the façade.

Snapshot streams what the façade yields (data chunks with ``remaining_bytes``, then the
SHA-256 trailer), unchanged. Status/Hash/HashKV/Defragment/Alarm/MoveLeader relay; the
façade owns their checks (e.g. MoveLeader on a follower is ``ErrGRPCNotLeader``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.handlers import Method
from etcdpy.server.facade import AuthInfo

SERVICE = "etcdserverpb.Maintenance"


def _relay(fn: Callable[[Any], Awaitable[Any]]) -> Callable[[Any, AuthInfo | None], Awaitable[Any]]:
    async def core(req: Any, auth: AuthInfo | None) -> Any:
        return await fn(req)

    return core


def _admin(
    server: Any, fn: Callable[[Any], Awaitable[Any]]
) -> Callable[[Any, AuthInfo | None], Awaitable[Any]]:
    """etcd's authMaintenanceServer: Defragment/Hash/HashKV/Snapshot need the root role once
    auth is enabled (``server.is_admin_permitted(auth)`` raises, e.g. ErrGRPCPermissionDenied).
    """
    check = getattr(server, "is_admin_permitted", None)
    if check is None:
        return _relay(fn)

    async def core(req: Any, auth: AuthInfo | None) -> Any:
        check(auth)
        return await fn(req)

    return core


def methods(api: ApiContext) -> list[Method]:
    s = api.server
    check = getattr(s, "is_admin_permitted", None)

    async def checked_snapshot(req: Any, auth: AuthInfo | None) -> AsyncIterator[Any]:
        assert check is not None
        check(auth)
        async for chunk in s.snapshot():
            yield chunk

    def plain_snapshot(req: Any, auth: AuthInfo | None) -> AsyncIterator[Any]:
        return s.snapshot()

    snapshot = plain_snapshot if check is None else checked_snapshot

    out = [
        Method(SERVICE, "Alarm", "unary", pb.AlarmRequest, pb.AlarmResponse, _relay(s.alarm)),
        Method(SERVICE, "Status", "unary", pb.StatusRequest, pb.StatusResponse, _relay(s.status)),
        Method(
            SERVICE,
            "Defragment",
            "unary",
            pb.DefragmentRequest,
            pb.DefragmentResponse,
            _admin(s, s.defragment),
        ),
        Method(SERVICE, "Hash", "unary", pb.HashRequest, pb.HashResponse, _admin(s, s.hash)),
        Method(
            SERVICE, "HashKV", "unary", pb.HashKVRequest, pb.HashKVResponse, _admin(s, s.hash_kv)
        ),
        Method(
            SERVICE, "Snapshot", "server_stream", pb.SnapshotRequest, pb.SnapshotResponse, snapshot
        ),
        Method(
            SERVICE,
            "MoveLeader",
            "unary",
            pb.MoveLeaderRequest,
            pb.MoveLeaderResponse,
            _relay(s.move_leader),
        ),
    ]
    downgrade = getattr(s, "downgrade", None)
    if downgrade is not None and hasattr(pb, "DowngradeRequest"):
        out.append(
            Method(
                SERVICE,
                "Downgrade",
                "unary",
                pb.DowngradeRequest,
                pb.DowngradeResponse,
                _admin(s, downgrade),
            )
        )
    return out
