"""v3election Campaign/Proclaim/Leader/Observe/Resign (etcd's v3election over
clientv3/concurrency.Election), on the façade.

The leader is the key under ``<name>/`` with the smallest create revision; a campaigner's key is
``<name>/<lease hex>`` and it leads once all older keys are deleted. Proclaim and Resign act
only if the key still has the create revision the caller was given (``LeaderKey.rev``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.mvccpb import kv_pb2
from etcdpy._pb.v3electionpb import v3election_pb2 as epb
from etcdpy.api.v3 import concurrency as cc
from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.handlers import Method
from etcdpy.server.facade import AuthInfo, EtcdServerAPI
from etcdpy.util.keys import prefix_end

SERVICE = "v3electionpb.Election"


class ElectionCore:
    __slots__ = ("_s",)

    def __init__(self, server: EtcdServerAPI) -> None:
        self._s = server

    async def campaign(
        self, req: epb.CampaignRequest, auth: AuthInfo | None
    ) -> epb.CampaignResponse:
        s = self._s
        lease = await cc.session_lease(s, req.lease)
        pfx = bytes(req.name) + b"/"
        key = cc.session_key(pfx, lease)
        value = bytes(req.value)
        resp = await s.txn(
            pb.TxnRequest(
                compare=[cc.cmp_create_rev(key, 0)],
                success=[cc.op_put(key, value, lease)],
                failure=[cc.op_get(key)],
            ),
            auth,
        )
        rev = resp.header.revision
        if not resp.succeeded:
            kv = cc.range_response(resp, 0).kvs[0]
            rev = kv.create_revision
            if bytes(kv.value) != value:
                try:
                    await self._proclaim(key, rev, lease, value, auth)
                except errors.EtcdError:
                    await self._resign(key, rev, auth)
                    raise
        try:
            await cc.wait_deletes(s, pfx, rev - 1, auth)
        except BaseException:  # cancelled or failed: etcd's Campaign resigns (client ctx)
            await self._shielded_resign(key, rev, auth)
            raise
        leader = epb.LeaderKey(name=req.name, key=key, rev=rev, lease=lease)
        return epb.CampaignResponse(header=resp.header, leader=leader)

    async def _proclaim(
        self, key: bytes, rev: int, lease: int, value: bytes, auth: AuthInfo | None
    ) -> pb.ResponseHeader:
        resp = await self._s.txn(
            pb.TxnRequest(
                compare=[cc.cmp_create_rev(key, rev)], success=[cc.op_put(key, value, lease)]
            ),
            auth,
        )
        if not resp.succeeded:
            raise errors.ErrElectionNotLeader()
        return resp.header

    async def _resign(self, key: bytes, rev: int, auth: AuthInfo | None) -> pb.ResponseHeader:
        resp = await self._s.txn(
            pb.TxnRequest(compare=[cc.cmp_create_rev(key, rev)], success=[cc.op_delete(key)]),
            auth,
        )
        return resp.header

    async def _shielded_resign(self, key: bytes, rev: int, auth: AuthInfo | None) -> None:
        """Best effort, and finished even if the caller is cancelled again meanwhile (the
        session lease would remove the key anyway, but only after its TTL)."""
        task = asyncio.ensure_future(self._resign(key, rev, auth))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            pass
        except Exception:  # best effort, see above
            pass

    async def proclaim(
        self, req: epb.ProclaimRequest, auth: AuthInfo | None
    ) -> epb.ProclaimResponse:
        if not req.HasField("leader"):
            raise errors.ErrMissingLeaderKey()
        ld = req.leader
        lease = await cc.session_lease(self._s, ld.lease)
        hdr = await self._proclaim(bytes(ld.key), ld.rev, lease, bytes(req.value), auth)
        return epb.ProclaimResponse(header=hdr)

    async def resign(self, req: epb.ResignRequest, auth: AuthInfo | None) -> epb.ResignResponse:
        if not req.HasField("leader"):
            raise errors.ErrMissingLeaderKey()
        hdr = await self._resign(bytes(req.leader.key), req.leader.rev, auth)
        return epb.ResignResponse(header=hdr)

    async def leader(self, req: epb.LeaderRequest, auth: AuthInfo | None) -> epb.LeaderResponse:
        resp = await self._s.range(cc.first_create_request(bytes(req.name) + b"/"), auth)
        if not resp.kvs:
            raise errors.ErrElectionNoLeader()
        return epb.LeaderResponse(header=resp.header, kv=resp.kvs[0])

    async def observe(
        self, req: epb.LeaderRequest, auth: AuthInfo | None
    ) -> AsyncIterator[epb.LeaderResponse]:
        """etcd's Election.observe: the current leader, its value changes, then the next."""
        s = self._s
        pfx = bytes(req.name) + b"/"
        while True:
            resp = await s.range(cc.first_create_request(pfx), auth)
            if resp.kvs:
                hdr, kv = resp.header, resp.kvs[0]
            else:
                hdr, kv = await self._wait_first_put(pfx, resp.header.revision, auth)
            yield epb.LeaderResponse(header=hdr, kv=kv)
            async for upd in self._follow(bytes(kv.key), hdr.revision + 1, auth):
                yield upd

    async def _wait_first_put(
        self, pfx: bytes, rev: int, auth: AuthInfo | None
    ) -> tuple[pb.ResponseHeader, kv_pb2.KeyValue]:
        ws = self._s.watch_stream(auth)
        try:
            ws.create(
                pb.WatchCreateRequest(key=pfx, range_end=prefix_end(pfx), start_revision=rev)
            )
            async for wr in cc.watch_messages(ws):
                if wr.canceled:
                    break
                for ev in wr.events:
                    if ev.type == kv_pb2.Event.PUT:
                        hdr = pb.ResponseHeader()
                        hdr.CopyFrom(wr.header)
                        hdr.revision = ev.kv.mod_revision
                        return hdr, ev.kv
            raise errors.ErrGRPCWatchCanceled()
        finally:
            ws.close()

    async def _follow(
        self, key: bytes, rev: int, auth: AuthInfo | None
    ) -> AsyncIterator[epb.LeaderResponse]:
        ws = self._s.watch_stream(auth)
        try:
            ws.create(pb.WatchCreateRequest(key=key, start_revision=rev))
            async for wr in cc.watch_messages(ws):
                if wr.canceled:
                    raise errors.ErrGRPCWatchCanceled()
                for ev in wr.events:
                    if ev.type == kv_pb2.Event.DELETE:
                        return
                    yield epb.LeaderResponse(header=wr.header, kv=ev.kv)
        finally:
            ws.close()


def methods(api: ApiContext) -> list[Method]:
    c = ElectionCore(api.server)
    return [
        Method(SERVICE, "Campaign", "unary", epb.CampaignRequest, epb.CampaignResponse, c.campaign),
        Method(SERVICE, "Proclaim", "unary", epb.ProclaimRequest, epb.ProclaimResponse, c.proclaim),
        Method(SERVICE, "Leader", "unary", epb.LeaderRequest, epb.LeaderResponse, c.leader),
        Method(
            SERVICE, "Observe", "server_stream", epb.LeaderRequest, epb.LeaderResponse, c.observe
        ),
        Method(SERVICE, "Resign", "unary", epb.ResignRequest, epb.ResignResponse, c.resign),
    ]
