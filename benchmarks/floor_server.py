"""The floor: a bare grpc.aio server answering etcd's KV.Put/Range/Txn from a dict.

No raft, no MVCC, no disk. Whatever etcdpy costs beyond this server's cost per request is
etcdpy's own code; ``compare.py`` runs both under identical load and reports the ratio.

    python benchmarks/floor_server.py --listen 127.0.0.1:23790
"""

from __future__ import annotations

import argparse

import grpc
import uvloop

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as pb_grpc
from etcdpy._pb.mvccpb import kv_pb2


class DictKV(pb_grpc.KVServicer):
    def __init__(self) -> None:
        self.data: dict[bytes, kv_pb2.KeyValue] = {}
        self.rev = 1

    def _header(self) -> pb.ResponseHeader:
        return pb.ResponseHeader(cluster_id=1, member_id=1, revision=self.rev, raft_term=2)

    def _put(self, req: pb.PutRequest) -> pb.PutResponse:
        self.rev += 1
        old = self.data.get(req.key)
        self.data[req.key] = kv_pb2.KeyValue(
            key=req.key, value=req.value, mod_revision=self.rev,
            create_revision=old.create_revision if old else self.rev,
            version=(old.version + 1) if old else 1,
        )
        return pb.PutResponse(header=self._header())

    def _range(self, req: pb.RangeRequest) -> pb.RangeResponse:
        if req.range_end:
            kvs = [kv for k, kv in sorted(self.data.items()) if req.key <= k < req.range_end]
        else:
            kv = self.data.get(req.key)
            kvs = [kv] if kv is not None else []
        return pb.RangeResponse(header=self._header(), kvs=kvs, count=len(kvs))

    async def Put(self, request: pb.PutRequest, context: object) -> pb.PutResponse:
        return self._put(request)

    async def Range(self, request: pb.RangeRequest, context: object) -> pb.RangeResponse:
        return self._range(request)

    async def Txn(self, request: pb.TxnRequest, context: object) -> pb.TxnResponse:
        ok = True
        for c in request.compare:
            kv = self.data.get(c.key)
            if c.target == pb.Compare.MOD:
                ok = ok and (kv.mod_revision if kv else 0) == c.mod_revision
        ops = request.success if ok else request.failure
        responses = []
        for op in ops:
            if op.HasField("request_put"):
                responses.append(pb.ResponseOp(response_put=self._put(op.request_put)))
            elif op.HasField("request_range"):
                responses.append(pb.ResponseOp(response_range=self._range(op.request_range)))
        return pb.TxnResponse(header=self._header(), succeeded=ok, responses=responses)


async def serve(listen: str) -> None:
    server = grpc.aio.server()
    pb_grpc.add_KVServicer_to_server(DictKV(), server)
    server.add_insecure_port(listen)
    await server.start()
    print(f"floor server ready to serve client requests on {listen}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--listen", default="127.0.0.1:23790")
    args = ap.parse_args()
    uvloop.run(serve(args.listen))


if __name__ == "__main__":
    main()
