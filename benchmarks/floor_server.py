"""The floor: a bare grpc.aio server answering etcd's KV.Put/Range/Txn from a dict.

No raft, no MVCC, no disk. Watch is as bare: prefix/range watchers per stream, every put
queues its event for the matching watchers and one sender per stream writes one
``WatchResponse`` per watcher with all events queued since its last write.

Whatever etcdpy costs beyond this server's cost per request is
etcdpy's own code; ``compare.py`` runs both under identical load and reports the ratio.

    python benchmarks/floor_server.py --listen 127.0.0.1:23790
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
from collections.abc import AsyncIterator

import grpc
import uvloop

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as pb_grpc
from etcdpy._pb.mvccpb import kv_pb2


class WatchStream:
    """One Watch stream's watchers and the events waiting to be written to it."""

    def __init__(self) -> None:
        self.watchers: dict[int, tuple[bytes, bytes]] = {}
        self.next_id = 0
        self.pending: dict[int, list[kv_pb2.Event]] = {}
        self.control: list[pb.WatchResponse] = []
        self.wake = asyncio.Event()

    def notify(self, key: bytes, event: kv_pb2.Event) -> None:
        for wid, (start, end) in self.watchers.items():
            if key == start or (end and start <= key and (end == b"\x00" or key < end)):
                self.pending.setdefault(wid, []).append(event)
                self.wake.set()


class DictKV(pb_grpc.KVServicer):
    def __init__(self) -> None:
        self.data: dict[bytes, kv_pb2.KeyValue] = {}
        self.keys: list[bytes] = []  # sorted, for ranges
        self.rev = 1
        self.streams: set[WatchStream] = set()

    def _header(self) -> pb.ResponseHeader:
        return pb.ResponseHeader(cluster_id=1, member_id=1, revision=self.rev, raft_term=2)

    def _put(self, req: pb.PutRequest) -> pb.PutResponse:
        self.rev += 1
        old = self.data.get(req.key)
        if old is None:
            bisect.insort(self.keys, req.key)
        self.data[req.key] = kv_pb2.KeyValue(
            key=req.key, value=req.value, mod_revision=self.rev,
            create_revision=old.create_revision if old else self.rev,
            version=(old.version + 1) if old else 1,
        )
        if self.streams:
            event = kv_pb2.Event(type=kv_pb2.Event.PUT, kv=self.data[req.key])
            for st in self.streams:
                st.notify(req.key, event)
        return pb.PutResponse(header=self._header())

    def _range(self, req: pb.RangeRequest) -> pb.RangeResponse:
        if req.range_end:
            lo = bisect.bisect_left(self.keys, req.key)
            hi = (len(self.keys) if req.range_end == b"\x00"
                  else bisect.bisect_left(self.keys, req.range_end, lo))
            kvs = [self.data[k] for k in self.keys[lo:hi]]
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


class DictWatch(pb_grpc.WatchServicer):
    def __init__(self, kv: DictKV) -> None:
        self.kv = kv

    async def _read(self, requests: AsyncIterator[pb.WatchRequest], st: WatchStream) -> None:
        async for req in requests:
            if req.HasField("create_request"):
                cr = req.create_request
                wid = st.next_id
                st.next_id += 1
                st.watchers[wid] = (cr.key, cr.range_end)
                st.control.append(pb.WatchResponse(
                    header=self.kv._header(), watch_id=wid, created=True))
            elif req.HasField("cancel_request"):
                wid = req.cancel_request.watch_id
                st.watchers.pop(wid, None)
                st.control.append(pb.WatchResponse(
                    header=self.kv._header(), watch_id=wid, canceled=True))
            else:
                continue
            st.wake.set()

    async def Watch(
        self, request_iterator: AsyncIterator[pb.WatchRequest], context: object,
    ) -> AsyncIterator[pb.WatchResponse]:
        st = WatchStream()
        self.kv.streams.add(st)
        reader = asyncio.ensure_future(self._read(request_iterator, st))
        try:
            while not reader.done():
                await st.wake.wait()
                st.wake.clear()
                control, st.control = st.control, []
                for resp in control:
                    yield resp
                pending, st.pending = st.pending, {}
                header = self.kv._header()
                for wid, events in pending.items():
                    yield pb.WatchResponse(header=header, watch_id=wid, events=events)
        finally:
            reader.cancel()
            self.kv.streams.discard(st)


async def serve(listen: str) -> None:
    server = grpc.aio.server()
    kv = DictKV()  # type: ignore[abstract]  # bare: no DeleteRange or Compact
    pb_grpc.add_KVServicer_to_server(kv, server)
    pb_grpc.add_WatchServicer_to_server(DictWatch(kv), server)
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
