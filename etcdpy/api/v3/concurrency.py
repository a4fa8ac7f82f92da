"""Server-side recipes behind v3lock and v3election (etcd's clientv3/concurrency, run locally).

etcd's Lock and Election services are clients of their own member: a session lease, a key
``<prefix>/<lease id in hex>`` created in a txn, and waiting until every key of the prefix
with a smaller create revision is deleted. The same steps here go straight to the façade.

Rules (etcd's):
1. A request without a lease gets a fresh one with the default session TTL (60 s).
2. ``wait_deletes`` waits, one key at a time from the newest older waiter down, for the
   deletion of every key under the prefix whose create revision is at most ``max_create_rev``.
3. Cancelled while waiting: the caller removes what it created (etcd's Unlock/Resign).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.mvccpb import kv_pb2
from etcdpy.server.facade import AuthInfo, EncodedWatchResponse, EtcdServerAPI, WatchStream
from etcdpy.util.keys import prefix_end

DEFAULT_SESSION_TTL = 60


def session_key(prefix: bytes, lease: int) -> bytes:
    """``fmt.Sprintf("%s%x", pfx, lease)``."""
    return prefix + format(lease, "x").encode()


async def session_lease(server: EtcdServerAPI, lease: int) -> int:
    if lease != 0:
        return lease
    resp = await server.lease_grant(pb.LeaseGrantRequest(TTL=DEFAULT_SESSION_TTL))
    return int(resp.ID)


def cmp_create_rev(key: bytes, rev: int) -> pb.Compare:
    return pb.Compare(
        key=key,
        target=pb.Compare.CREATE,
        result=pb.Compare.EQUAL,
        create_revision=rev,
    )


def op_put(key: bytes, value: bytes, lease: int) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=key, value=value, lease=lease))


def op_get(key: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_range=pb.RangeRequest(key=key))


def op_delete(key: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=key))


def first_create_request(prefix: bytes) -> pb.RangeRequest:
    """clientv3.WithFirstCreate on a prefix: the oldest key, by create revision."""
    return pb.RangeRequest(
        key=prefix,
        range_end=prefix_end(prefix),
        limit=1,
        sort_order=pb.RangeRequest.ASCEND,
        sort_target=pb.RangeRequest.CREATE,
    )


async def wait_delete(server: EtcdServerAPI, key: bytes, rev: int, auth: AuthInfo | None) -> None:
    """Return once ``key`` is deleted at or after revision ``rev``."""
    ws = server.watch_stream(auth)
    try:
        created = ws.create(pb.WatchCreateRequest(key=key, start_revision=rev))
        if created.canceled:
            raise _watch_error(created)
        async for resp in watch_messages(ws):
            if resp.watch_id != created.watch_id:
                continue
            for ev in resp.events:
                if ev.type == kv_pb2.Event.DELETE:
                    return
            if resp.canceled:
                raise _watch_error(resp)
        raise errors.ErrGRPCWatchCanceled()
    finally:
        ws.close()


async def watch_messages(ws: WatchStream) -> AsyncIterator[pb.WatchResponse]:
    """``ws.responses()`` as messages: the façade may hand events over already serialized
    for gRPC (``EncodedWatchResponse``), and these recipes read their events."""
    async for resp in ws.responses():
        if isinstance(resp, EncodedWatchResponse):
            yield pb.WatchResponse.FromString(resp.data)
        else:
            yield resp


def _watch_error(resp: pb.WatchResponse) -> errors.EtcdError:
    if resp.compact_revision:
        return errors.ErrGRPCCompacted()
    return errors.ErrGRPCWatchCanceled()


async def wait_deletes(
    server: EtcdServerAPI, prefix: bytes, max_create_rev: int, auth: AuthInfo | None
) -> pb.ResponseHeader:
    """etcd's waitDeletes: the header of the range that found no older waiter."""
    while True:
        resp = await server.range(
            pb.RangeRequest(
                key=prefix,
                range_end=prefix_end(prefix),
                limit=1,
                sort_order=pb.RangeRequest.DESCEND,
                sort_target=pb.RangeRequest.CREATE,
                max_create_revision=max_create_rev,
            ),
            auth,
        )
        if not resp.kvs:
            return resp.header
        await wait_delete(server, bytes(resp.kvs[0].key), resp.header.revision, auth)


def range_response(txn: pb.TxnResponse, i: int) -> Any:
    return txn.responses[i].response_range
