"""The encoded Range (server/range_wire.py, mvcc/wire.py) against the object path: the same
bytes as ``SerializeToString()`` of ``apply_kv.range_``'s response with a filled header, and
the same errors, over random histories and requests."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.mvcc import wire
from etcdpy.mvcc.kvstore import KVStore
from etcdpy.server import apply_kv, range_wire
from etcdpy.storage.backend import Backend

MAP = 1 << 26
CLUSTER_ID, MEMBER_ID, TERM = 0xCDEF0123456789AB, 0x8E9E05C52164694D, 7


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KVStore]:
    b = Backend(tmp_path / "kv", map_size=MAP)
    yield KVStore(b)
    b.close()


def _key(rng: random.Random) -> bytes:
    return rng.choice([b"", b"a", b"ab", b"abc", b"b", b"b\xff", b"c", b"\xff"]) + bytes(
        [rng.randrange(256)] * rng.randrange(3)
    )


def _history(kv: KVStore, rng: random.Random, writes: int) -> None:
    for _ in range(writes):
        with kv.backend.write_txn() as w:
            t = kv.write(w)
            for _ in range(rng.randrange(1, 4)):
                k = _key(rng) or b"k"
                if rng.random() < 0.2:
                    t.delete_range(k, rng.choice([b"", k + b"\x80"]))
                else:
                    size = rng.choice([0, 1, 100, 127, 128, 200, 3000, 16360, 16370, 16380, 20000])
                    t.put(k, rng.randbytes(size), rng.choice([0, 0, 0x1234, (1 << 63) - 1]))
            t.end()
        if rng.random() < 0.05 and kv.current_revision > 2:
            with kv.backend.write_txn() as w:
                kv.compact(w, rng.randrange(kv.compact_revision + 1, kv.current_revision))


def _request(rng: random.Random, current: int) -> pb.RangeRequest:
    r = pb.RangeRequest(key=_key(rng) or b"\x00")
    r.range_end = rng.choice([b"", b"\x00", b"b", b"c", b"\xff\xff", b"a", _key(rng)])
    if rng.random() < 0.5:
        r.limit = rng.choice([1, 2, 3, 5, 100])
    if rng.random() < 0.4:
        r.revision = rng.randrange(-1, current + 3)
    r.sort_order = rng.choice([0, 0, 1, 2])
    if rng.random() < 0.1:
        r.sort_target = rng.randrange(5)
    if rng.random() < 0.05:
        r.keys_only = True
    if rng.random() < 0.05:
        r.min_mod_revision = rng.randrange(current + 1)
    if rng.random() < 0.05:
        r.count_only = True
    return r


def _object_path(kv: KVStore, r: pb.RangeRequest) -> bytes | str:
    try:
        with kv.read() as view:
            resp = apply_kv.range_(view, r)
    except errors.EtcdError as exc:
        return exc.message
    resp.header.cluster_id = CLUSTER_ID
    resp.header.member_id = MEMBER_ID
    resp.header.raft_term = TERM
    return resp.SerializeToString()


def _wire_path(kv: KVStore, r: pb.RangeRequest, max_keys: int) -> bytes | str | None:
    descend = range_wire.descend_of(r)
    if descend is None:
        return None
    try:
        with kv.read() as view:
            rr = range_wire.range_raw(view, r, descend, max_keys)
    except errors.EtcdError as exc:
        return exc.message
    if rr is None:
        return None
    return range_wire.encode(rr, CLUSTER_ID, MEMBER_ID, TERM)


@pytest.mark.parametrize("seed", range(6))
def test_encoded_range_equals_object_path(store: KVStore, seed: int) -> None:
    rng = random.Random(seed)
    _history(store, rng, rng.randrange(5, 60))
    covered = 0
    for _ in range(300):
        r = _request(rng, store.current_revision)
        want = _object_path(store, r)
        got = _wire_path(store, r, 0)
        if got is None:
            assert range_wire.descend_of(r) is None
            continue
        covered += 1
        assert got == want, (r, seed)
        # A budget too small for the range gives up (None) rather than a partial answer.
        small = _wire_path(store, r, rng.randrange(1, 4))
        assert small is None or small == want
    assert covered > 150


def test_budget(store: KVStore) -> None:
    with store.backend.write_txn() as w:
        t = store.write(w)
        for i in range(20):
            t.put(b"k%02d" % i, b"v")
        t.end()
    r = pb.RangeRequest(key=b"k", range_end=b"l")
    assert _wire_path(store, r, 19) is None
    assert _wire_path(store, r, 20) == _object_path(store, r)
    r.limit = 5
    assert _wire_path(store, r, 19) is None  # count of the whole range is over budget
    assert _wire_path(store, r, 20) == _object_path(store, r)


def test_wire_helpers_match_protobuf() -> None:
    rng = random.Random(1)
    for _ in range(300):
        n = rng.choice([0, 1, 127, 128, 300, 16383, 16384, 1 << 40, (1 << 63) - 1, -1, -5])
        h = pb.ResponseHeader(
            cluster_id=rng.choice([0, abs(n)]),
            member_id=rng.choice([0, 1, abs(n)]),
            revision=n,
            raft_term=rng.choice([0, 2]),
        )
        hb = wire.response_header(h.cluster_id, h.member_id, h.revision, h.raft_term)
        assert hb == pb.RangeResponse(header=h).SerializeToString()
        wid = rng.choice([0, 1, 300, -1])
        frag = rng.random() < 0.3
        w = pb.WatchResponse(header=h, watch_id=wid, fragment=frag)
        evs = []
        for _ in range(rng.randrange(4)):
            ev = w.events.add(type=rng.randrange(2))
            ev.kv.key = rng.randbytes(rng.randrange(3))
            ev.kv.mod_revision = abs(n)
            ev.kv.value = rng.randbytes(rng.choice([0, 5, 200]))
            prev = None
            if rng.random() < 0.5:
                ev.prev_kv.key = ev.kv.key
                ev.prev_kv.version = rng.randrange(3)
                prev = ev.prev_kv.SerializeToString()
            evs.append(wire.event_field(wire.event(ev.type, ev.kv.SerializeToString(), prev)))
        assert wire.watch_events_response(hb, wid, evs, frag) == w.SerializeToString()


def test_header_cache_rebuilds_when_a_field_changes() -> None:
    cache = wire.HeaderCache()
    first = cache.get(CLUSTER_ID, MEMBER_ID, 5, TERM)
    assert first == wire.response_header(CLUSTER_ID, MEMBER_ID, 5, TERM)
    assert cache.get(CLUSTER_ID, MEMBER_ID, 5, TERM) is first  # shared, not rebuilt
    for args in (
        (CLUSTER_ID, MEMBER_ID, 6, TERM),
        (CLUSTER_ID, MEMBER_ID, 6, TERM + 1),
        (CLUSTER_ID + 1, MEMBER_ID, 6, TERM + 1),
        (CLUSTER_ID, MEMBER_ID + 1, 6, TERM),
    ):
        assert cache.get(*args) == wire.response_header(*args)
