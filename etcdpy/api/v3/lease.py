"""Lease service (etcd v3rpc/lease.go).

Rules (etcd's):
1. TimeToLive and Leases of an unknown lease answer, not fail: TTL -1 / an empty list.
2. A keep-alive stream answers every request in order; an unknown lease gets TTL 0 and the
   stream stays open; any other error ends the stream with that error's status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.handlers import Method
from etcdpy.server.facade import AuthInfo

SERVICE = "etcdserverpb.Lease"


class LeaseCore:
    __slots__ = ("_s",)

    def __init__(self, api: ApiContext) -> None:
        self._s = api.server

    async def grant(
        self, req: pb.LeaseGrantRequest, auth: AuthInfo | None
    ) -> pb.LeaseGrantResponse:
        return await self._s.lease_grant(req)

    async def revoke(
        self, req: pb.LeaseRevokeRequest, auth: AuthInfo | None
    ) -> pb.LeaseRevokeResponse:
        return await self._s.lease_revoke(req)

    async def time_to_live(
        self, req: pb.LeaseTimeToLiveRequest, auth: AuthInfo | None
    ) -> pb.LeaseTimeToLiveResponse:
        try:
            return await self._s.lease_time_to_live(req)
        except (errors.ErrLeaseNotFound, errors.ErrGRPCLeaseNotFound):
            return pb.LeaseTimeToLiveResponse(header=self._s.header(), ID=req.ID, TTL=-1)

    async def leases(
        self, req: pb.LeaseLeasesRequest, auth: AuthInfo | None
    ) -> pb.LeaseLeasesResponse:
        try:
            return await self._s.lease_leases(req)
        except (errors.ErrLeaseNotFound, errors.ErrGRPCLeaseNotFound):
            return pb.LeaseLeasesResponse(header=self._s.header())

    async def renew(self, lease_id: int) -> pb.LeaseKeepAliveResponse:
        try:
            return await self._s.lease_renew(lease_id)
        except (errors.ErrLeaseNotFound, errors.ErrGRPCLeaseNotFound):
            return pb.LeaseKeepAliveResponse(header=self._s.header(), ID=lease_id, TTL=0)

    async def keep_alive(
        self,
        requests: AsyncIterator[pb.LeaseKeepAliveRequest],
        auth: AuthInfo | None,
        send: Callable[[pb.LeaseKeepAliveResponse], Awaitable[None]],
    ) -> None:
        async for req in requests:
            await send(await self.renew(req.ID))


def methods(api: ApiContext) -> list[Method]:
    c = LeaseCore(api)
    return [
        Method(
            SERVICE, "LeaseGrant", "unary", pb.LeaseGrantRequest, pb.LeaseGrantResponse, c.grant
        ),
        Method(
            SERVICE, "LeaseRevoke", "unary", pb.LeaseRevokeRequest, pb.LeaseRevokeResponse, c.revoke
        ),
        Method(
            SERVICE,
            "LeaseKeepAlive",
            "bidi",
            pb.LeaseKeepAliveRequest,
            pb.LeaseKeepAliveResponse,
            c.keep_alive,
        ),
        Method(
            SERVICE,
            "LeaseTimeToLive",
            "unary",
            pb.LeaseTimeToLiveRequest,
            pb.LeaseTimeToLiveResponse,
            c.time_to_live,
        ),
        Method(
            SERVICE, "LeaseLeases", "unary", pb.LeaseLeasesRequest, pb.LeaseLeasesResponse, c.leases
        ),
    ]
