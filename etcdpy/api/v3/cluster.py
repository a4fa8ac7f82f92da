"""Cluster service (etcd v3rpc/member.go): a relay to the façade.

MemberAdd/Remove/Update/Promote are served only when the façade offers ``member_add``,
``member_remove``, ``member_update``, ``member_promote``; otherwise the method is not
registered and gRPC answers Unimplemented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.handlers import Method
from etcdpy.server.facade import AuthInfo

SERVICE = "etcdserverpb.Cluster"


def _relay(fn: Callable[[Any], Awaitable[Any]]) -> Callable[[Any, AuthInfo | None], Awaitable[Any]]:
    async def core(req: Any, auth: AuthInfo | None) -> Any:
        return await fn(req)

    return core


def methods(api: ApiContext) -> list[Method]:
    s = api.server
    out = [
        Method(
            SERVICE,
            "MemberList",
            "unary",
            pb.MemberListRequest,
            pb.MemberListResponse,
            _relay(s.member_list),
        )
    ]
    optional = [
        ("MemberAdd", "member_add", pb.MemberAddRequest, pb.MemberAddResponse),
        ("MemberRemove", "member_remove", pb.MemberRemoveRequest, pb.MemberRemoveResponse),
        ("MemberUpdate", "member_update", pb.MemberUpdateRequest, pb.MemberUpdateResponse),
        ("MemberPromote", "member_promote", pb.MemberPromoteRequest, pb.MemberPromoteResponse),
    ]
    for name, attr, req, resp in optional:
        fn = getattr(s, attr, None)
        if fn is not None:
            out.append(Method(SERVICE, name, "unary", req, resp, _relay(fn)))
    return out
