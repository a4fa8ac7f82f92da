"""gRPC clients through the one client port (the multiplexer) against the fake façade."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from etcdpy._pb.mvccpb import kv_pb2
from etcdpy._pb.v3electionpb import v3election_pb2 as epb
from etcdpy._pb.v3electionpb import v3election_pb2_grpc as erpc
from etcdpy._pb.v3lockpb import v3lock_pb2 as lpb
from etcdpy._pb.v3lockpb import v3lock_pb2_grpc as lrpc
from tests.api.conftest import Served
from tests.api.fake_server import CLUSTER_ID, MEMBER_ID


@pytest.fixture()
def chan(served: Served) -> Iterator[grpc.Channel]:
    ch = served.channel()
    yield ch
    ch.close()


def _err(fn: object, *args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as ei:
        fn(*args, timeout=5)  # type: ignore[operator]
    return ei.value


def test_put_range_delete_with_headers(chan: grpc.Channel) -> None:
    kv = rpc.KVStub(chan)
    put = kv.Put(pb.PutRequest(key=b"g/a", value=b"1"), timeout=5)
    assert put.header.cluster_id == CLUSTER_ID and put.header.member_id == MEMBER_ID
    assert put.header.raft_term == 2 and put.header.revision > 1
    kv.Put(pb.PutRequest(key=b"g/b", value=b"2"), timeout=5)
    r = kv.Range(pb.RangeRequest(key=b"g/", range_end=b"g0"), timeout=5)
    assert [(x.key, x.value) for x in r.kvs] == [(b"g/a", b"1"), (b"g/b", b"2")]
    assert r.header.revision == put.header.revision + 1
    d = kv.DeleteRange(pb.DeleteRangeRequest(key=b"g/a", prev_kv=True), timeout=5)
    assert d.deleted == 1 and d.prev_kvs[0].value == b"1"


@pytest.mark.parametrize(
    ("call", "req", "code", "msg"),
    [
        ("Put", pb.PutRequest(key=b""), "INVALID_ARGUMENT", "etcdserver: key is not provided"),
        ("Range", pb.RangeRequest(), "INVALID_ARGUMENT", "etcdserver: key is not provided"),
        (
            "Put",
            pb.PutRequest(key=b"k", value=b"v", ignore_value=True),
            "INVALID_ARGUMENT",
            "etcdserver: value is provided",
        ),
        (
            "Put",
            pb.PutRequest(key=b"k", lease=5, ignore_lease=True),
            "INVALID_ARGUMENT",
            "etcdserver: lease is provided",
        ),
        (
            "Txn",
            pb.TxnRequest(
                success=[
                    pb.RequestOp(request_put=pb.PutRequest(key=b"d", value=b"1")),
                    pb.RequestOp(request_put=pb.PutRequest(key=b"d", value=b"2")),
                ]
            ),
            "INVALID_ARGUMENT",
            "etcdserver: duplicate key given in txn request",
        ),
        (
            "Txn",
            pb.TxnRequest(success=[pb.RequestOp(request_range=pb.RangeRequest(key=b"x"))] * 9),
            "INVALID_ARGUMENT",
            "etcdserver: too many operations in txn request",
        ),
        (
            "Range",
            pb.RangeRequest(key=b"k", revision=10**9),
            "OUT_OF_RANGE",
            "etcdserver: mvcc: required revision is a future revision",
        ),
    ],
)
def test_kv_errors_have_etcds_codes_and_messages(
    chan: grpc.Channel, call: str, req: object, code: str, msg: str
) -> None:
    e = _err(getattr(rpc.KVStub(chan), call), req)
    assert e.code() == grpc.StatusCode[code]
    assert e.details() == msg


def test_lease_ttl_and_keepalive_stream(chan: grpc.Channel) -> None:
    lease = rpc.LeaseStub(chan)
    g = lease.LeaseGrant(pb.LeaseGrantRequest(TTL=42), timeout=5)
    assert g.ID and g.TTL == 42
    ttl = lease.LeaseTimeToLive(pb.LeaseTimeToLiveRequest(ID=12345), timeout=5)
    assert ttl.TTL == -1 and ttl.ID == 12345 and ttl.header.member_id == MEMBER_ID
    reqs = [pb.LeaseKeepAliveRequest(ID=g.ID), pb.LeaseKeepAliveRequest(ID=777)]
    out = list(lease.LeaseKeepAlive(iter(reqs), timeout=5))
    assert [(r.ID, r.TTL) for r in out] == [(g.ID, 42), (777, 0)]
    e = _err(lease.LeaseRevoke, pb.LeaseRevokeRequest(ID=777))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    assert e.details() == "etcdserver: requested lease not found"


class _WatchClient:
    """A bidi watch call driven from the test thread."""

    def __init__(self, chan: grpc.Channel) -> None:
        self._reqs: queue.Queue[pb.WatchRequest | None] = queue.Queue()
        self.resps: queue.Queue[pb.WatchResponse] = queue.Queue()
        self._call = rpc.WatchStub(chan).Watch(iter(self._reqs.get, None), timeout=20)
        self._t = threading.Thread(target=self._pump, daemon=True)
        self._t.start()

    def _pump(self) -> None:
        try:
            for r in self._call:
                self.resps.put(r)
        except grpc.RpcError:
            pass

    def send(self, req: pb.WatchRequest) -> None:
        self._reqs.put(req)

    def next(self) -> pb.WatchResponse:
        return self.resps.get(timeout=5)

    def close(self) -> None:
        self._call.cancel()
        self._reqs.put(None)


def test_watch_create_events_cancel_progress(chan: grpc.Channel) -> None:
    kv = rpc.KVStub(chan)
    w = _WatchClient(chan)
    try:
        w.send(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"w/", range_end=b"w0")))
        created = w.next()
        assert created.created and not created.canceled
        wid = created.watch_id
        kv.Put(pb.PutRequest(key=b"w/1", value=b"a"), timeout=5)
        kv.DeleteRange(pb.DeleteRangeRequest(key=b"w/1"), timeout=5)
        got: list[tuple[int, bytes]] = []
        while len(got) < 2:
            r = w.next()
            assert r.watch_id == wid
            got += [(ev.type, ev.kv.key) for ev in r.events]
        assert got == [(kv_pb2.Event.PUT, b"w/1"), (kv_pb2.Event.DELETE, b"w/1")]
        w.send(pb.WatchRequest(progress_request=pb.WatchProgressRequest()))
        prog = w.next()
        assert prog.watch_id == -1 and not prog.events and prog.header.revision > 0
        w.send(pb.WatchRequest(cancel_request=pb.WatchCancelRequest(watch_id=wid)))
        c = w.next()
        assert c.canceled and c.watch_id == wid
    finally:
        w.close()


def test_watch_history_and_compacted_revision(chan: grpc.Channel) -> None:
    kv = rpc.KVStub(chan)
    first = kv.Put(pb.PutRequest(key=b"h/k", value=b"1"), timeout=5).header.revision
    kv.Put(pb.PutRequest(key=b"h/k", value=b"2"), timeout=5)
    w = _WatchClient(chan)
    try:
        w.send(
            pb.WatchRequest(
                create_request=pb.WatchCreateRequest(key=b"h/k", start_revision=first, watch_id=7)
            )
        )
        assert w.next().created
        r = w.next()
        assert r.watch_id == 7 and [e.kv.value for e in r.events] == [b"1", b"2"]
        kv.Compact(pb.CompactionRequest(revision=first + 1), timeout=5)
        w.send(
            pb.WatchRequest(
                create_request=pb.WatchCreateRequest(key=b"h/k", start_revision=first, watch_id=8)
            )
        )
        assert w.next().created
        c = w.next()
        assert c.watch_id == 8 and c.canceled and c.compact_revision == first + 1
        # a duplicate id fails the create like etcd: created + canceled, id -1, the reason
        w.send(pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"x", watch_id=7)))
        dup = w.next()
        assert dup.created and dup.canceled and dup.watch_id == -1
        assert dup.cancel_reason == "mvcc: duplicate watch ID provided on the WatchStream"
    finally:
        w.close()


def test_require_leader_metadata(served: Served, chan: grpc.Channel) -> None:
    kv = rpc.KVStub(chan)
    md = (("hasleader", "true"),)
    kv.Range(pb.RangeRequest(key=b"x"), metadata=md, timeout=5)
    served.lt.call(lambda: setattr(served.fake, "leader", False))
    try:
        with pytest.raises(grpc.RpcError) as ei:
            kv.Range(pb.RangeRequest(key=b"x"), metadata=md, timeout=5)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
        assert ei.value.details() == "etcdserver: no leader"
        kv.Range(pb.RangeRequest(key=b"x"), timeout=5)  # without the requirement: served
    finally:
        served.lt.call(lambda: setattr(served.fake, "leader", True))


def test_maintenance_status_snapshot_and_moveleader(chan: grpc.Channel) -> None:
    m = rpc.MaintenanceStub(chan)
    st = m.Status(pb.StatusRequest(), timeout=5)
    assert st.version == "3.5.17" and st.leader == MEMBER_ID
    chunks = list(m.Snapshot(pb.SnapshotRequest(), timeout=5))
    data = b"".join(c.blob for c in chunks[:-1])
    assert chunks[-1].remaining_bytes == 0 and chunks[-1].blob == hashlib.sha256(data).digest()
    assert chunks[-2].remaining_bytes == 0 and chunks[0].remaining_bytes == len(data) - 200
    assert len(data) % 512 == 0
    e = _err(m.MoveLeader, pb.MoveLeaderRequest(targetID=1))
    assert e.details() == "etcdserver: bad leader transferee"


def test_grpc_health_check(chan: grpc.Channel) -> None:
    check = chan.unary_unary("/grpc.health.v1.Health/Check")
    assert check(b"", timeout=5) == b"\x08\x01"  # SERVING
    with pytest.raises(grpc.RpcError) as ei:
        check(b"\x0a\x03foo", timeout=5)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND


def test_lock_waits_for_the_holder(chan: grpc.Channel) -> None:
    lock = lrpc.LockStub(chan)
    held = lock.Lock(lpb.LockRequest(name=b"L"), timeout=5)
    assert held.key.startswith(b"L/")
    second = lock.Lock.future(lpb.LockRequest(name=b"L"), timeout=10)
    kv = rpc.KVStub(chan)
    deadline = time.monotonic() + 5
    while kv.Range(pb.RangeRequest(key=b"L/", range_end=b"L0"), timeout=5).count < 2:
        assert time.monotonic() < deadline, "the second locker never queued its key"
        time.sleep(0.01)
    assert not second.done()  # queued behind the holder
    lock.Unlock(lpb.UnlockRequest(key=held.key), timeout=5)
    got = second.result(timeout=5)
    assert got.key != held.key and got.key.startswith(b"L/")
    assert got.header.revision > held.header.revision


def test_cancelled_lock_waiter_leaves_the_queue(chan: grpc.Channel) -> None:
    """etcd's v3lock: a Lock call cancelled while waiting deletes its waiter key (the
    Mutex's Unlock on error), so the next waiter is not stuck behind a ghost."""
    lock = lrpc.LockStub(chan)
    kv = rpc.KVStub(chan)

    def waiters() -> int:
        return int(kv.Range(pb.RangeRequest(key=b"LC/", range_end=b"LC0"), timeout=5).count)

    held = lock.Lock(lpb.LockRequest(name=b"LC"), timeout=5)
    ghost = lock.Lock.future(lpb.LockRequest(name=b"LC"), timeout=10)
    deadline = time.monotonic() + 5
    while waiters() < 2:
        assert time.monotonic() < deadline, "the second locker never queued its key"
        time.sleep(0.01)
    ghost.cancel()
    while waiters() != 1:
        assert time.monotonic() < deadline, "the cancelled waiter's key was left behind"
        time.sleep(0.01)
    third = lock.Lock.future(lpb.LockRequest(name=b"LC"), timeout=10)
    while waiters() < 2:
        assert time.monotonic() < deadline, "the third locker never queued its key"
        time.sleep(0.01)
    lock.Unlock(lpb.UnlockRequest(key=held.key), timeout=5)
    assert third.result(timeout=5).key.startswith(b"LC/")


def test_cancelled_campaign_resigns(chan: grpc.Channel) -> None:
    """etcd's v3election: a Campaign cancelled while waiting removes its candidate key."""
    el = erpc.ElectionStub(chan)
    kv = rpc.KVStub(chan)

    def candidates() -> int:
        return int(kv.Range(pb.RangeRequest(key=b"EC/", range_end=b"EC0"), timeout=5).count)

    leader = el.Campaign(epb.CampaignRequest(name=b"EC", value=b"a"), timeout=5)
    waiting = el.Campaign.future(epb.CampaignRequest(name=b"EC", value=b"b"), timeout=10)
    deadline = time.monotonic() + 5
    while candidates() < 2:
        assert time.monotonic() < deadline, "the second candidate never queued its key"
        time.sleep(0.01)
    waiting.cancel()
    while candidates() != 1:
        assert time.monotonic() < deadline, "the cancelled candidate's key was left behind"
        time.sleep(0.01)
    el.Resign(epb.ResignRequest(leader=leader.leader), timeout=5)


def test_election_campaign_leader_proclaim_observe_resign(chan: grpc.Channel) -> None:
    el = erpc.ElectionStub(chan)
    with pytest.raises(grpc.RpcError) as ei:
        el.Leader(epb.LeaderRequest(name=b"E"), timeout=5)
    assert ei.value.details() == "election: no leader"
    c = el.Campaign(epb.CampaignRequest(name=b"E", value=b"v1"), timeout=5)
    assert c.leader.name == b"E" and c.leader.key.startswith(b"E/")
    assert el.Leader(epb.LeaderRequest(name=b"E"), timeout=5).kv.value == b"v1"
    obs = el.Observe(epb.LeaderRequest(name=b"E"), timeout=10)
    assert next(obs).kv.value == b"v1"
    el.Proclaim(epb.ProclaimRequest(leader=c.leader, value=b"v2"), timeout=5)
    assert next(obs).kv.value == b"v2"
    obs.cancel()
    el.Resign(epb.ResignRequest(leader=c.leader), timeout=5)
    with pytest.raises(grpc.RpcError) as ei:
        el.Proclaim(epb.ProclaimRequest(leader=c.leader, value=b"v3"), timeout=5)
    assert ei.value.details() == "election: not leader"


def test_require_leader_watch_ends_when_the_leader_is_lost(served: Served) -> None:
    """etcd's monitorLeader: a "hasleader" stream ends with ErrGRPCNoLeader after the member
    has been without a leader for a while (here leader_lost_timeout=0.3 s)."""
    with served.channel() as ch:
        reqs = iter([pb.WatchRequest(create_request=pb.WatchCreateRequest(key=b"rl"))])
        call = rpc.WatchStub(ch).Watch(reqs, metadata=(("hasleader", "true"),), timeout=10)
        assert next(call).created
        served.lt.call(lambda: setattr(served.fake, "leader", False))
        try:
            with pytest.raises(grpc.RpcError) as ei:
                next(call)
            assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
            assert ei.value.details() == "etcdserver: no leader"
        finally:
            served.lt.call(lambda: setattr(served.fake, "leader", True))


def test_unary_rpcs_are_counted_started_and_handled(served: Served, chan: grpc.Channel) -> None:
    """go-grpc-prometheus' counters per call: started, then handled with the status code."""

    def counts() -> dict[tuple[str, ...], float]:
        reg = served.fake.metrics
        out: dict[tuple[str, ...], float] = {}
        for name in ("grpc_server_started_total", "grpc_server_handled_total"):
            fam = reg._families[name]
            for labels, v in fam.values.items():
                if labels[1:3] == ("etcdserverpb.KV", "Put"):
                    out[(name, *labels)] = v
        return out

    before = served.lt.call(counts)
    kv = rpc.KVStub(chan)
    kv.Put(pb.PutRequest(key=b"counted", value=b"1"), timeout=5)
    kv.Put(pb.PutRequest(key=b"counted", value=b"2"), timeout=5)
    with pytest.raises(grpc.RpcError):
        kv.Put(pb.PutRequest(key=b"", value=b"x"), timeout=5)  # etcd: key is not provided
    after = served.lt.call(counts)

    def delta(*labels: str) -> float:
        return after.get(labels, 0.0) - before.get(labels, 0.0)

    base = ("unary", "etcdserverpb.KV", "Put")
    assert delta("grpc_server_started_total", *base) == 3
    assert delta("grpc_server_handled_total", *base, "OK") == 2
    assert delta("grpc_server_handled_total", *base, "InvalidArgument") == 1
