"""An in-memory ``EtcdServerAPI`` for testing the API layer before (and apart from) the server.

A dict of current keys plus a list of every event since revision 1, which is enough for
revision reads, compaction, txn, leases and watches with history. Not fast, not durable.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.mvccpb import kv_pb2
from etcdpy.observability.metrics import MetricsRegistry

CLUSTER_ID = 0xCDF818194E3A8C32
MEMBER_ID = 0x8E9E05C52164694D
TERM = 2


def _in_range(key: bytes, start: bytes, end: bytes) -> bool:
    if not end:
        return key == start
    if end == b"\x00":
        return key >= start
    return start <= key < end


class FakeWatchStream:
    def __init__(self, srv: FakeServer) -> None:
        self._srv = srv
        self._q: asyncio.Queue[pb.WatchResponse | None] = asyncio.Queue()
        self._watchers: dict[int, pb.WatchCreateRequest] = {}
        self._next_id = 0
        self.closed = False
        srv.streams.add(self)

    def create(self, req: pb.WatchCreateRequest) -> pb.WatchResponse:
        wid = req.watch_id
        if wid == 0:
            while self._next_id in self._watchers:
                self._next_id += 1
            wid = self._next_id
            self._next_id += 1
        elif wid in self._watchers:
            raise errors.ErrWatcherDuplicateID()
        w = pb.WatchCreateRequest()
        w.CopyFrom(req)
        self._watchers[wid] = w
        resp = pb.WatchResponse(header=self._srv.header(), watch_id=wid, created=True)
        start = req.start_revision
        if start and start <= self._srv.compact_rev:
            self._watchers.pop(wid)
            self._q.put_nowait(
                pb.WatchResponse(
                    header=self._srv.header(),
                    watch_id=wid,
                    canceled=True,
                    compact_revision=self._srv.compact_rev,
                    cancel_reason=errors.ErrCompacted.message,
                )
            )
        elif start and start <= self._srv.rev:
            evs = [e for rev, e in self._srv.history if rev >= start]
            self._deliver(wid, w, evs, self._srv.rev)
        return resp

    def cancel(self, watch_id: int) -> pb.WatchResponse:
        if self._watchers.pop(watch_id, None) is None:
            raise errors.ErrWatcherNotExist()
        return pb.WatchResponse(header=self._srv.header(), watch_id=watch_id, canceled=True)

    def request_progress(self) -> None:
        self._q.put_nowait(pb.WatchResponse(header=self._srv.header(), watch_id=-1))

    async def responses(self) -> AsyncIterator[pb.WatchResponse]:
        while True:
            r = await self._q.get()
            if r is None:
                return
            yield r

    def close(self) -> None:
        self.closed = True
        self._srv.streams.discard(self)
        self._q.put_nowait(None)

    def notify(self, evs: list[kv_pb2.Event], rev: int) -> None:
        for wid, w in list(self._watchers.items()):
            self._deliver(wid, w, evs, rev)

    def _deliver(
        self, wid: int, w: pb.WatchCreateRequest, evs: list[kv_pb2.Event], rev: int
    ) -> None:
        out = []
        for e in evs:
            if not _in_range(e.kv.key, w.key, w.range_end):
                continue
            if e.type == kv_pb2.Event.PUT and pb.WatchCreateRequest.NOPUT in w.filters:
                continue
            if e.type == kv_pb2.Event.DELETE and pb.WatchCreateRequest.NODELETE in w.filters:
                continue
            ev = kv_pb2.Event()
            ev.CopyFrom(e)
            if not w.prev_kv:
                ev.ClearField("prev_kv")
            out.append(ev)
        if out:
            hdr = self._srv.header()
            hdr.revision = rev
            self._q.put_nowait(pb.WatchResponse(header=hdr, watch_id=wid, events=out))


class FakeServer:
    """Implements etcdpy.server.facade.EtcdServerAPI over dicts."""

    def __init__(self) -> None:
        self.rev = 1
        self.compact_rev = 0
        self.kvs: dict[bytes, kv_pb2.KeyValue] = {}
        self.history: list[tuple[int, kv_pb2.Event]] = []
        self.leases: dict[int, tuple[int, set[bytes]]] = {}
        self.next_lease = 0x694D7A0000000000
        self.streams: set[FakeWatchStream] = set()
        self.leader = True
        self.alarms: list[pb.AlarmMember] = []
        self._metrics = MetricsRegistry()
        self._metrics.gauge("etcd_server_has_leader", "Whether or not a leader exists.").set(1)
        self.puts = self._metrics.counter("etcd_mvcc_put_total", "Total number of puts seen.")
        self._metrics.gauge(
            "etcd_server_version", "Which version is running.", ("server_version",)
        ).set(1, "3.5.17")

    # --- identity ---
    def header(self) -> pb.ResponseHeader:
        return pb.ResponseHeader(
            cluster_id=CLUSTER_ID, member_id=MEMBER_ID, revision=self.rev, raft_term=TERM
        )

    def is_healthy(self) -> tuple[bool, str]:
        if not self.leader:
            return False, "RAFT NO LEADER"
        return True, ""

    def has_leader(self) -> bool:
        return self.leader

    @property
    def server_version(self) -> str:
        return "3.5.17"

    @property
    def cluster_version(self) -> str:
        return "3.5.0"

    @property
    def metrics(self) -> Any:
        return self._metrics

    # --- KV internals ---
    def _state_at(self, rev: int) -> dict[bytes, kv_pb2.KeyValue]:
        if rev == 0 or rev >= self.rev:
            return self.kvs
        if rev < self.compact_rev:
            raise errors.ErrCompacted()
        st: dict[bytes, kv_pb2.KeyValue] = {}
        for r, e in self.history:
            if r > rev:
                break
            if e.type == kv_pb2.Event.PUT:
                st[e.kv.key] = e.kv
            else:
                st.pop(e.kv.key, None)
        return st

    def _range(self, req: pb.RangeRequest) -> pb.RangeResponse:
        if req.revision > self.rev:
            raise errors.ErrFutureRev()
        st = self._state_at(req.revision)
        sel = [kv for k, kv in sorted(st.items()) if _in_range(k, req.key, req.range_end)]
        if req.min_mod_revision:
            sel = [kv for kv in sel if kv.mod_revision >= req.min_mod_revision]
        if req.max_mod_revision:
            sel = [kv for kv in sel if kv.mod_revision <= req.max_mod_revision]
        if req.min_create_revision:
            sel = [kv for kv in sel if kv.create_revision >= req.min_create_revision]
        if req.max_create_revision:
            sel = [kv for kv in sel if kv.create_revision <= req.max_create_revision]
        target = {
            pb.RangeRequest.KEY: lambda kv: kv.key,
            pb.RangeRequest.VERSION: lambda kv: kv.version,
            pb.RangeRequest.CREATE: lambda kv: kv.create_revision,
            pb.RangeRequest.MOD: lambda kv: kv.mod_revision,
            pb.RangeRequest.VALUE: lambda kv: kv.value,
        }[req.sort_target]
        order = req.sort_order
        if order == pb.RangeRequest.NONE and req.sort_target != pb.RangeRequest.KEY:
            order = pb.RangeRequest.ASCEND
        if order != pb.RangeRequest.NONE:
            sel.sort(key=target, reverse=order == pb.RangeRequest.DESCEND)
        resp = pb.RangeResponse(header=self.header(), count=len(sel))
        if req.count_only:
            return resp
        if req.limit and len(sel) > req.limit:
            sel = sel[: req.limit]
            resp.more = True
        for kv in sel:
            out = resp.kvs.add()
            out.CopyFrom(kv)
            if req.keys_only:
                out.ClearField("value")
        return resp

    def _put(self, req: pb.PutRequest, evs: list[kv_pb2.Event]) -> pb.PutResponse:
        prev = self.kvs.get(req.key)
        if (req.ignore_value or req.ignore_lease) and prev is None:
            raise errors.ErrGRPCKeyNotFound()
        lease = prev.lease if req.ignore_lease and prev is not None else req.lease
        if lease and lease not in self.leases:
            raise errors.ErrLeaseNotFound()
        value = prev.value if req.ignore_value and prev is not None else req.value
        kv = kv_pb2.KeyValue(
            key=req.key,
            value=value,
            lease=lease,
            create_revision=prev.create_revision if prev else self.rev + 1,
            mod_revision=self.rev + 1,
            version=prev.version + 1 if prev else 1,
        )
        self.kvs[req.key] = kv
        if lease:
            self.leases[lease][1].add(req.key)
        ev = kv_pb2.Event(type=kv_pb2.Event.PUT, kv=kv)
        if prev is not None:
            ev.prev_kv.CopyFrom(prev)
        evs.append(ev)
        self.puts.inc()
        resp = pb.PutResponse()
        if req.prev_kv and prev is not None:
            resp.prev_kv.CopyFrom(prev)
        return resp

    def _delete(
        self, req: pb.DeleteRangeRequest, evs: list[kv_pb2.Event]
    ) -> pb.DeleteRangeResponse:
        keys = [k for k in sorted(self.kvs) if _in_range(k, req.key, req.range_end)]
        resp = pb.DeleteRangeResponse(deleted=len(keys))
        for k in keys:
            prev = self.kvs.pop(k)
            if req.prev_kv:
                resp.prev_kvs.add().CopyFrom(prev)
            evs.append(
                kv_pb2.Event(
                    type=kv_pb2.Event.DELETE,
                    kv=kv_pb2.KeyValue(key=k, mod_revision=self.rev + 1),
                    prev_kv=prev,
                )
            )
        return resp

    def _commit(self, evs: list[kv_pb2.Event]) -> None:
        if not evs:
            return
        self.rev += 1
        for e in evs:
            self.history.append((self.rev, e))
        for s in list(self.streams):
            s.notify(evs, self.rev)

    def _compare(self, c: pb.Compare) -> bool:
        kvs = [kv for k, kv in sorted(self.kvs.items()) if _in_range(k, c.key, c.range_end)]
        if not kvs and not c.range_end:
            kvs = [kv_pb2.KeyValue(key=c.key)]
        a: Any
        b: Any
        for kv in kvs:
            if c.target == pb.Compare.VALUE:
                a, b = kv.value, c.value
            elif c.target == pb.Compare.VERSION:
                a, b = kv.version, c.version
            elif c.target == pb.Compare.CREATE:
                a, b = kv.create_revision, c.create_revision
            elif c.target == pb.Compare.MOD:
                a, b = kv.mod_revision, c.mod_revision
            else:
                a, b = kv.lease, c.lease
            res = c.result
            ok = (
                (res == pb.Compare.EQUAL and a == b)
                or (res == pb.Compare.GREATER and a > b)
                or (res == pb.Compare.LESS and a < b)
                or (res == pb.Compare.NOT_EQUAL and a != b)
            )
            if not ok:
                return False
        return True

    def _txn(self, req: pb.TxnRequest, evs: list[kv_pb2.Event]) -> pb.TxnResponse:
        ok = all(self._compare(c) for c in req.compare)
        resp = pb.TxnResponse(succeeded=ok)
        for op in req.success if ok else req.failure:
            kind = op.WhichOneof("request")
            out = resp.responses.add()
            if kind == "request_range":
                r = self._range(op.request_range)
                r.header.Clear()
                out.response_range.CopyFrom(r)
            elif kind == "request_put":
                out.response_put.CopyFrom(self._put(op.request_put, evs))
            elif kind == "request_delete_range":
                out.response_delete_range.CopyFrom(self._delete(op.request_delete_range, evs))
            else:
                out.response_txn.CopyFrom(self._txn(op.request_txn, evs))
        return resp

    # --- KV ---
    async def range(self, req: pb.RangeRequest, auth: Any = None) -> pb.RangeResponse:
        return self._range(req)

    async def put(self, req: pb.PutRequest, auth: Any = None) -> pb.PutResponse:
        evs: list[kv_pb2.Event] = []
        resp = self._put(req, evs)
        self._commit(evs)
        resp.header.CopyFrom(self.header())
        return resp

    async def delete_range(
        self, req: pb.DeleteRangeRequest, auth: Any = None
    ) -> pb.DeleteRangeResponse:
        evs: list[kv_pb2.Event] = []
        resp = self._delete(req, evs)
        self._commit(evs)
        resp.header.CopyFrom(self.header())
        return resp

    async def txn(self, req: pb.TxnRequest, auth: Any = None) -> pb.TxnResponse:
        evs: list[kv_pb2.Event] = []
        resp = self._txn(req, evs)
        self._commit(evs)
        resp.header.CopyFrom(self.header())
        return resp

    async def compact(self, req: pb.CompactionRequest, auth: Any = None) -> pb.CompactionResponse:
        if req.revision <= self.compact_rev:
            raise errors.ErrCompacted()
        if req.revision > self.rev:
            raise errors.ErrFutureRev()
        self.compact_rev = req.revision
        return pb.CompactionResponse(header=self.header())

    # --- Watch ---
    def watch_stream(self, auth: Any = None) -> FakeWatchStream:
        return FakeWatchStream(self)

    async def settle(self) -> None:
        """Every write is visible at once here."""

    # --- Lease ---
    async def lease_grant(self, req: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse:
        lid = req.ID or self.next_lease
        if lid == self.next_lease:
            self.next_lease += 1
        if lid in self.leases:
            raise errors.ErrLeaseExists()
        self.leases[lid] = (req.TTL, set())
        return pb.LeaseGrantResponse(header=self.header(), ID=lid, TTL=req.TTL)

    async def lease_revoke(self, req: pb.LeaseRevokeRequest) -> pb.LeaseRevokeResponse:
        if req.ID not in self.leases:
            raise errors.ErrLeaseNotFound()
        _, keys = self.leases.pop(req.ID)
        evs: list[kv_pb2.Event] = []
        for k in sorted(keys):
            if k in self.kvs:
                self._delete(pb.DeleteRangeRequest(key=k), evs)
        self._commit(evs)
        return pb.LeaseRevokeResponse(header=self.header())

    async def lease_renew(self, lease_id: int) -> pb.LeaseKeepAliveResponse:
        if lease_id not in self.leases:
            raise errors.ErrLeaseNotFound()
        return pb.LeaseKeepAliveResponse(
            header=self.header(), ID=lease_id, TTL=self.leases[lease_id][0]
        )

    async def lease_time_to_live(
        self, req: pb.LeaseTimeToLiveRequest
    ) -> pb.LeaseTimeToLiveResponse:
        if req.ID not in self.leases:
            raise errors.ErrLeaseNotFound()
        ttl, keys = self.leases[req.ID]
        resp = pb.LeaseTimeToLiveResponse(header=self.header(), ID=req.ID, TTL=ttl, grantedTTL=ttl)
        if req.keys:
            resp.keys.extend(sorted(keys))
        return resp

    async def lease_leases(self, req: pb.LeaseLeasesRequest) -> pb.LeaseLeasesResponse:
        resp = pb.LeaseLeasesResponse(header=self.header())
        for lid in sorted(self.leases):
            resp.leases.add(ID=lid)
        return resp

    # --- Cluster ---
    async def member_list(self, req: pb.MemberListRequest) -> pb.MemberListResponse:
        resp = pb.MemberListResponse(header=self.header())
        resp.members.add(
            ID=MEMBER_ID,
            name="default",
            peerURLs=["http://127.0.0.1:2380"],
            clientURLs=["http://127.0.0.1:2379"],
        )
        return resp

    # --- Maintenance ---
    async def status(self, req: pb.StatusRequest) -> pb.StatusResponse:
        resp = pb.StatusResponse(
            header=self.header(),
            version="3.5.17",
            dbSize=4096,
            dbSizeInUse=4096,
            leader=MEMBER_ID if self.leader else 0,
            raftIndex=self.rev + 3,
            raftTerm=TERM,
            raftAppliedIndex=self.rev + 3,
        )
        if not self.leader:
            resp.errors.append(errors.ErrNoLeader.message)
        return resp

    async def hash(self, req: pb.HashRequest) -> pb.HashResponse:
        return pb.HashResponse(header=self.header(), hash=len(self.kvs))

    async def hash_kv(self, req: pb.HashKVRequest) -> pb.HashKVResponse:
        return pb.HashKVResponse(
            header=self.header(), hash=len(self.kvs), compact_revision=self.compact_rev
        )

    async def defragment(self, req: pb.DefragmentRequest) -> pb.DefragmentResponse:
        return pb.DefragmentResponse(header=self.header())

    async def alarm(self, req: pb.AlarmRequest) -> pb.AlarmResponse:
        return pb.AlarmResponse(header=self.header(), alarms=self.alarms)

    async def snapshot(self) -> AsyncIterator[pb.SnapshotResponse]:
        data = b"".join(k + b"=" + kv.value + b"\n" for k, kv in sorted(self.kvs.items()))
        data += b"\0" * (-len(data) % 512)  # etcdctl wants whole 512-byte pages + a digest
        data = data or b"\0" * 512
        chunk = 200
        sent = 0
        while sent < len(data):
            blob = data[sent : sent + chunk]
            sent += len(blob)
            yield pb.SnapshotResponse(
                header=self.header(), remaining_bytes=len(data) - sent, blob=blob
            )
        yield pb.SnapshotResponse(
            header=self.header(), remaining_bytes=0, blob=hashlib.sha256(data).digest()
        )

    async def move_leader(self, req: pb.MoveLeaderRequest) -> pb.MoveLeaderResponse:
        raise errors.ErrGRPCBadLeaderTransferee()
