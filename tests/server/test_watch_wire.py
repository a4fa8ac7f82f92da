"""Watch responses serialized by the server (server/watch.py rules 5-6): every encoded
response is byte for byte what the object path (``WatchResponse`` built from the store's
events, then ``SerializeToString()``) gives for the same events, and every watcher gets
exactly its events in order — with filters, prev_kv, fragmentation and coalescing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.mvccpb import kv_pb2
from etcdpy.mvcc.kvstore import DELETE, PUT, Event
from etcdpy.server.facade import EncodedWatchResponse
from tests.server.support import member, run

WATCHERS: list[dict[str, Any]] = [
    {"key": b"w/", "range_end": b"w0"},
    {"key": b"w/", "range_end": b"w0", "prev_kv": True},
    {"key": b"w/", "range_end": b"w0", "filters": [0]},  # NOPUT
    {"key": b"w/a", "prev_kv": True, "filters": [1]},  # NODELETE
    {"key": b"w/", "range_end": b"w0", "fragment": True, "prev_kv": True},
    {"key": b"w/b", "range_end": b"\x00"},
]


def _expected(store_events: list[Event], spec: dict[str, Any]) -> list[Event]:
    key, end = spec["key"], spec.get("range_end", b"")
    filters = set(spec.get("filters", []))
    out = []
    for ev in store_events:
        k = ev.kv.key
        hit = k == key if not end else (k >= key if end == b"\x00" else key <= k < end)
        if not hit or (ev.type == PUT and 0 in filters) or (ev.type == DELETE and 1 in filters):
            continue
        out.append(ev)
    return out


def _object_path(
    header: pb.ResponseHeader, watch_id: int, evs: list[Event], prev: bool
) -> pb.WatchResponse:
    resp = pb.WatchResponse(header=header, watch_id=watch_id)
    for ev in evs:
        e = kv_pb2.Event(type=ev.type)  # type: ignore[arg-type]
        e.kv.CopyFrom(ev.kv)
        if prev and ev.prev_kv is not None:
            e.prev_kv.CopyFrom(ev.prev_kv)
        resp.events.append(e)
    return resp


def test_encoded_responses_equal_object_path(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path, "--max-request-bytes", "4096") as e:
            s = e.server
            rng = random.Random(8)
            start = s.revision + 1
            ws = s.watch_stream()
            it = ws.responses()
            ids = [ws.create(pb.WatchCreateRequest(**spec)).watch_id for spec in WATCHERS]

            async def write(i: int) -> None:
                k = rng.choice([b"w/a", b"w/b", b"w/c", b"x", b"w/b/1"])
                r = rng.random()
                if r < 0.2:
                    await s.delete_range(pb.DeleteRangeRequest(key=k))
                elif r < 0.3:
                    ops = [
                        pb.RequestOp(request_put=pb.PutRequest(key=b"w/a", value=b"%d" % i)),
                        pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=b"w/b")),
                        pb.RequestOp(request_put=pb.PutRequest(key=b"w/c", value=b"c")),
                    ]
                    await s.txn(pb.TxnRequest(success=ops))
                else:
                    size = rng.choice([1, 10, 900, 2500])
                    await s.put(pb.PutRequest(key=k, value=bytes([65 + i % 26]) * size))

            for n in range(12):  # sequential and concurrent writes: coalescing varies
                await asyncio.gather(*[write(n * 10 + j) for j in range(rng.choice([1, 5, 10]))])
            with s.kv.read() as view:
                history, _ = view.changes(start, prev_kv=True)
            want = {wid: _expected(history, spec) for wid, spec in zip(ids, WATCHERS, strict=True)}
            by_rev = {(ev.kv.mod_revision, ev.kv.key): ev for ev in history}
            got: dict[int, list[Event]] = {wid: [] for wid in ids}
            pending_fragments: dict[int, list[kv_pb2.Event]] = {}
            encoded = fragments = multi_revision = 0
            async with asyncio.timeout(20):
                while any(len(got[w]) < len(want[w]) for w in ids):
                    raw = await anext(it)
                    if isinstance(raw, EncodedWatchResponse):
                        encoded += 1
                        r = pb.WatchResponse.FromString(raw.data)
                        assert raw.watch_id == r.watch_id and not raw.canceled
                        assert r.header.cluster_id == s.cluster.cluster_id
                        assert r.header.member_id == s.id and r.header.raft_term == s.term
                        spec = WATCHERS[ids.index(r.watch_id)]
                        evs = [by_rev[(x.kv.mod_revision, x.kv.key)] for x in r.events]
                        obj = _object_path(r.header, r.watch_id, evs, spec.get("prev_kv", False))
                        assert raw.data == obj.SerializeToString()
                        assert r.header.revision == max(x.kv.mod_revision for x in r.events)
                        got[r.watch_id] += evs
                        multi_revision += len({x.kv.mod_revision for x in evs}) > 1
                        continue
                    assert isinstance(raw, pb.WatchResponse)  # a fragment
                    assert raw.ByteSize() < 4096 or len(raw.events) == 1
                    fragments += 1
                    pending_fragments.setdefault(raw.watch_id, []).extend(raw.events)
                    if not raw.fragment:
                        whole = pending_fragments.pop(raw.watch_id)
                        got[raw.watch_id] += [by_rev[(x.kv.mod_revision, x.kv.key)] for x in whole]
                        assert all(
                            x.HasField("prev_kv")
                            == (
                                x.type == DELETE
                                or by_rev[(x.kv.mod_revision, x.kv.key)].prev_kv is not None
                            )
                            for x in whole
                        )
            assert encoded > 0 and fragments > 1 and not pending_fragments
            assert multi_revision > 0  # the stream was not read while writes went on
            for wid in ids:
                assert [(x.kv.mod_revision, x.kv.key) for x in got[wid]] == [
                    (x.kv.mod_revision, x.kv.key) for x in want[wid]
                ]
            ws.close()

    run(body(), timeout=60)


def test_more_watchers_than_stream_capacity_all_catch_up(tmp_path: Path) -> None:
    """200 watchers on one stream (its capacity is 128 batches) while nobody reads it: the
    ones without room become victims and catch up from the store; each gets every event
    once, in order, whole revisions per response."""

    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            ws = s.watch_stream()
            it = ws.responses()
            ids = [
                ws.create(
                    pb.WatchCreateRequest(key=b"v/", range_end=b"v0", prev_kv=i % 2 == 0)
                ).watch_id
                for i in range(200)
            ]
            start = s.revision + 1
            for i in range(20):
                ops = [
                    pb.RequestOp(request_put=pb.PutRequest(key=b"v/%d" % j, value=b"%d" % i))
                    for j in range(3)
                ]
                await s.txn(pb.TxnRequest(success=ops))
            want = [(r, b"v/%d" % j) for r in range(start, start + 20) for j in range(3)]
            got: dict[int, list[tuple[int, bytes]]] = {wid: [] for wid in ids}
            async with asyncio.timeout(20):
                while any(len(v) < len(want) for v in got.values()):
                    raw = await anext(it)
                    assert isinstance(raw, EncodedWatchResponse)
                    r = pb.WatchResponse.FromString(raw.data)
                    revs = [x.kv.mod_revision for x in r.events]
                    assert len(revs) % 3 == 0  # never a part of a revision
                    assert all(
                        x.HasField("prev_kv") == (r.watch_id % 2 == 0 and x.kv.version > 1)
                        for x in r.events
                    )
                    got[r.watch_id] += [(x.kv.mod_revision, x.kv.key) for x in r.events]
            assert all(v == want for v in got.values())
            ws.close()

    run(body(), timeout=60)
