"""KV service (etcd v3rpc/key.go): validate at the edge, then the façade does the rest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.api.v3 import validate
from etcdpy.api.v3.common import ApiContext
from etcdpy.api.v3.handlers import Method
from etcdpy.server.facade import AuthInfo

SERVICE = "etcdserverpb.KV"


class KVCore:
    __slots__ = ("_encoded", "_max_txn_ops", "_s")

    def __init__(self, api: ApiContext) -> None:
        self._s = api.server
        self._max_txn_ops = api.options.max_txn_ops
        # Optional façade method (EtcdServerAPI docs): the response already serialized.
        self._encoded: Callable[..., Awaitable[bytes]] | None = getattr(
            api.server, "range_encoded", None
        )

    async def range(self, req: pb.RangeRequest, auth: AuthInfo | None) -> pb.RangeResponse:
        if not req.key:
            validate.check_range(req)
        return await self._s.range(req, auth)

    async def range_grpc(
        self, req: pb.RangeRequest, auth: AuthInfo | None
    ) -> pb.RangeResponse | bytes:
        """:meth:`range` for gRPC: serialized by the server when it can (big ranges are
        written without a message object per key)."""
        if not req.key:
            validate.check_range(req)
        if self._encoded is None:
            return await self._s.range(req, auth)
        return await self._encoded(req, auth)

    async def put(self, req: pb.PutRequest, auth: AuthInfo | None) -> pb.PutResponse:
        validate.check_put(req)
        return await self._s.put(req, auth)

    async def delete_range(
        self, req: pb.DeleteRangeRequest, auth: AuthInfo | None
    ) -> pb.DeleteRangeResponse:
        validate.check_delete(req)
        return await self._s.delete_range(req, auth)

    async def txn(self, req: pb.TxnRequest, auth: AuthInfo | None) -> pb.TxnResponse:
        validate.check_txn(req, self._max_txn_ops)
        return await self._s.txn(req, auth)

    async def compact(
        self, req: pb.CompactionRequest, auth: AuthInfo | None
    ) -> pb.CompactionResponse:
        return await self._s.compact(req, auth)


def methods(api: ApiContext) -> list[Method]:
    c = KVCore(api)
    return [
        Method(SERVICE, "Range", "unary", pb.RangeRequest, pb.RangeResponse, c.range, c.range_grpc),
        Method(SERVICE, "Put", "unary", pb.PutRequest, pb.PutResponse, c.put),
        Method(
            SERVICE,
            "DeleteRange",
            "unary",
            pb.DeleteRangeRequest,
            pb.DeleteRangeResponse,
            c.delete_range,
        ),
        Method(SERVICE, "Txn", "unary", pb.TxnRequest, pb.TxnResponse, c.txn),
        Method(SERVICE, "Compact", "unary", pb.CompactionRequest, pb.CompactionResponse, c.compact),
    ]
