"""v3lock Lock/Unlock (etcd's etcdserver/api/v3lock over clientv3/concurrency.Mutex).

Lock: key ``<name>/<lease hex>``; a txn creates it if absent (else reads it) and reads the
oldest waiter; the lock is held once every older waiter's key is gone. The returned key is
what Unlock deletes; it disappears too when its lease expires.
"""

from __future__ import annotations

import asyncio

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.v3lockpb import v3lock_pb2 as lpb
from etcdpy.api.v3 import concurrency as cc
from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.handlers import Method
from etcdpy.server.facade import AuthInfo, EtcdServerAPI

SERVICE = "v3lockpb.Lock"


class LockCore:
    __slots__ = ("_s",)

    def __init__(self, server: EtcdServerAPI) -> None:
        self._s = server

    async def lock(self, req: lpb.LockRequest, auth: AuthInfo | None) -> lpb.LockResponse:
        s = self._s
        lease = await cc.session_lease(s, req.lease)
        pfx = bytes(req.name) + b"/"
        my_key = cc.session_key(pfx, lease)
        txn = await s.txn(
            pb.TxnRequest(
                compare=[cc.cmp_create_rev(my_key, 0)],
                success=[
                    cc.op_put(my_key, b"", lease),
                    pb.RequestOp(request_range=cc.first_create_request(pfx)),
                ],
                failure=[
                    cc.op_get(my_key),
                    pb.RequestOp(request_range=cc.first_create_request(pfx)),
                ],
            ),
            auth,
        )
        my_rev = txn.header.revision
        if not txn.succeeded:
            my_rev = cc.range_response(txn, 0).kvs[0].create_revision
        owner = cc.range_response(txn, 1).kvs
        if not owner or owner[0].create_revision == my_rev:
            return lpb.LockResponse(header=txn.header, key=my_key)
        try:
            hdr = await cc.wait_deletes(s, pfx, my_rev - 1, auth)
        except BaseException:
            await _shielded_delete(s, my_key, auth)
            raise
        return lpb.LockResponse(header=hdr, key=my_key)

    async def unlock(self, req: lpb.UnlockRequest, auth: AuthInfo | None) -> lpb.UnlockResponse:
        resp = await self._s.delete_range(pb.DeleteRangeRequest(key=req.key), auth)
        return lpb.UnlockResponse(header=resp.header)


async def _shielded_delete(s: EtcdServerAPI, key: bytes, auth: AuthInfo | None) -> None:
    """Remove our waiter key even when the caller went away (etcd: m.Unlock(client.Ctx()))."""
    task = asyncio.ensure_future(s.delete_range(pb.DeleteRangeRequest(key=key), auth))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        pass
    except Exception:  # best effort; the lease will expire the key anyway
        pass


def methods(api: ApiContext) -> list[Method]:
    c = LockCore(api.server)
    return [
        Method(SERVICE, "Lock", "unary", lpb.LockRequest, lpb.LockResponse, c.lock),
        Method(SERVICE, "Unlock", "unary", lpb.UnlockRequest, lpb.UnlockResponse, c.unlock),
    ]
