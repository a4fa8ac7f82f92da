"""Watch over the façade: live events, history catch-up, compaction, progress, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.server.facade import EncodedWatchResponse
from tests.server.support import member, run


async def take(it: AsyncIterator[Any], n: int) -> list[pb.WatchResponse]:
    out = []
    async with asyncio.timeout(10):
        while len(out) < n:
            r = await anext(it)
            if isinstance(r, EncodedWatchResponse):  # serialized by the server: parse it
                r = pb.WatchResponse.FromString(r.data)
            out.append(r)
    return out


async def _once(item: Any) -> AsyncIterator[Any]:
    yield item


def test_live_and_history_events(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            b = s.revision
            await s.put(pb.PutRequest(key=b"w/a", value=b"1"))  # rev 1
            await s.put(pb.PutRequest(key=b"w/a", value=b"2"))  # rev 2
            await s.put(pb.PutRequest(key=b"other", value=b"x"))  # rev 3
            await s.settle()  # as the API's watch stream does before a create
            ws = s.watch_stream()
            it = ws.responses()
            c = ws.create(pb.WatchCreateRequest(key=b"w/", range_end=b"w0"))
            assert c.created and c.watch_id == 0 and c.header.revision == b + 3
            h = ws.create(pb.WatchCreateRequest(key=b"w/a", start_revision=b + 1, prev_kv=True))
            assert h.watch_id == 1
            hist = await take(it, 1)
            assert hist[0].watch_id == 1
            assert [(ev.kv.value, ev.kv.mod_revision) for ev in hist[0].events] == [
                (b"1", b + 1),
                (b"2", b + 2),
            ]
            assert hist[0].events[1].prev_kv.value == b"1"
            await s.txn(
                pb.TxnRequest(
                    success=[
                        pb.RequestOp(request_put=pb.PutRequest(key=b"w/b", value=b"3")),
                        pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=b"w/a")),
                    ]
                )
            )  # rev 4: both events in one response per watcher
            live = await take(it, 2)
            by_id = {r.watch_id: r for r in live}
            assert [(ev.type, ev.kv.key) for ev in by_id[0].events] == [
                (0, b"w/b"),
                (1, b"w/a"),
            ]
            assert by_id[0].header.revision == b + 4
            assert [(ev.type, ev.kv.key) for ev in by_id[1].events] == [(1, b"w/a")]
            assert by_id[1].events[0].prev_kv.value == b"2"
            ws.request_progress()
            (prog,) = await take(it, 1)
            assert prog.watch_id == -1 and prog.header.revision == b + 4
            cancel = ws.cancel(0)
            assert cancel.canceled
            await s.put(pb.PutRequest(key=b"w/c", value=b"5"))
            await s.put(pb.PutRequest(key=b"w/a", value=b"6"))
            (only,) = await take(it, 1)
            assert only.watch_id == 1 and only.events[0].kv.value == b"6"
            ws.close()

    run(body())


def test_compacted_start_revision_cancels(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            b = s.revision
            for i in range(4):
                await s.put(pb.PutRequest(key=b"k", value=b"%d" % i))
            await s.compact(pb.CompactionRequest(revision=b + 3))
            ws = s.watch_stream()
            it = ws.responses()
            ws.create(pb.WatchCreateRequest(key=b"k", start_revision=b + 1))
            (r,) = await take(it, 1)
            assert r.canceled and r.compact_revision == b + 3
            assert r.header.revision == 0  # etcd's store answers a compacted watcher so
            assert r.header.member_id == s.id
            ws.close()

    run(body())


def test_many_events_catch_up_in_order(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            b = s.revision
            ws = s.watch_stream()
            it = ws.responses()
            ws.create(pb.WatchCreateRequest(key=b"\x00", range_end=b"\x00"))
            await asyncio.gather(
                *[s.put(pb.PutRequest(key=b"n%04d" % i, value=b"v")) for i in range(600)]
            )
            revs: list[int] = []
            async with asyncio.timeout(10):
                async for raw in it:
                    (r,) = await take(_once(raw), 1)
                    revs.extend(ev.kv.mod_revision for ev in r.events)
                    if len(revs) >= 600:
                        break
            assert revs == list(range(b + 1, b + 601))
            ws.close()

    run(body())


def test_fragment_splits_large_responses() -> None:
    from etcdpy._pb.mvccpb import kv_pb2
    from etcdpy.server.watch import fragment

    resp = pb.WatchResponse(watch_id=3)
    for i in range(10):
        resp.events.add(type=0, kv=kv_pb2.KeyValue(key=b"k%d" % i, value=b"x" * 100))
    parts = fragment(resp, 350)
    assert len(parts) > 1
    assert [p.fragment for p in parts] == [True] * (len(parts) - 1) + [False]
    assert [ev.kv.key for p in parts for ev in p.events] == [b"k%d" % i for i in range(10)]
    assert all(p.watch_id == 3 for p in parts)
    assert fragment(resp, 1 << 20) == [resp]


def test_a_watch_on_an_empty_range_is_refused(tmp_path: Path) -> None:
    """etcd's mvcc.ErrEmptyWatcherRange for key >= range_end (b"\\x00" means every key >=
    key); the API layer answers it as a created-and-canceled response with watch_id -1."""

    async def body() -> None:
        async with member(tmp_path) as e:
            ws = e.server.watch_stream()
            for key, end in ((b"b", b"a"), (b"a", b"a")):
                with pytest.raises(errors.ErrEmptyWatcherRange):
                    ws.create(pb.WatchCreateRequest(key=key, range_end=end))
            # a refused create takes no ID: the next automatic one is still the first (0)
            ids = [ws.create(pb.WatchCreateRequest(key=key, range_end=end)).watch_id
                   for key, end in ((b"a", b"b"), (b"a", b"\x00"), (b"a", b""))]
            assert ids == [0, 1, 2]
            ws.close()

    run(body())
