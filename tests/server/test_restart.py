"""Durability and replay: restart keeps data/revision; a lost KV is rebuilt from the WAL."""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from tests.server.support import eventually, member, run


def test_restart_keeps_data_revision_and_ids(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            b = e.server.revision
            for i in range(50):
                await e.server.put(pb.PutRequest(key=b"k%02d" % i, value=b"v%d" % i))
            ids = (e.server.id, e.server.cluster.cluster_id)
            term1 = e.server.term
        log = io.StringIO()
        async with member(tmp_path, log=log) as e:
            s = e.server
            r = await s.range(pb.RangeRequest(key=b"k", range_end=b"l"))
            assert r.count == 50 and r.header.revision == b + 50
            assert (s.id, s.cluster.cluster_id) == ids
            assert s.term > term1
            assert (await s.put(pb.PutRequest(key=b"n", value=b"1"))).header.revision == b + 51
            ml = await s.member_list(pb.MemberListRequest())
            assert [m.name for m in ml.members] == ["default"]
        out = log.getvalue()
        for line in (
            "enabled capabilities for version",
            "published",
            "ready to serve client requests",
        ):
            assert line in out

    run(body())


def test_lost_kv_is_replayed_from_wal(tmp_path: Path) -> None:
    """consistent_index lives in the KV: with the KV gone the member replays the WAL from 1."""

    async def body() -> None:
        async with member(tmp_path) as e:
            b = e.server.revision
            await e.server.put(pb.PutRequest(key=b"a", value=b"1"))
            await e.server.put(pb.PutRequest(key=b"a", value=b"2"))
            await e.server.delete_range(pb.DeleteRangeRequest(key=b"a"))
            await e.server.put(pb.PutRequest(key=b"b", value=b"3"))
            applied = e.server.applied_index
        shutil.rmtree(tmp_path / "member" / "kv")
        async with member(tmp_path) as e:
            s = e.server
            assert s.applier.consistent_index >= applied
            r = await s.range(pb.RangeRequest(key=b"a", range_end=b"c"))
            assert [(kv.key, kv.value, kv.mod_revision) for kv in r.kvs] == [(b"b", b"3", b + 4)]
            old = await s.range(pb.RangeRequest(key=b"a", revision=b + 2))
            assert old.kvs[0].value == b"2"
            assert [m.name for m in s.cluster.members.values()] == ["default"]

    run(body())


def test_replay_skips_applied_entries(tmp_path: Path) -> None:
    """Entries at or below consistent_index are not applied twice (no double revisions)."""

    async def body() -> None:
        async with member(tmp_path) as e:
            rev = (await e.server.put(pb.PutRequest(key=b"x", value=b"1"))).header.revision
        async with member(tmp_path) as e:
            r = await e.server.range(pb.RangeRequest(key=b"x"))
            assert r.kvs[0].version == 1 and r.header.revision == rev

    run(body())


def test_snapshot_compacts_wal_and_restart_replays_rest(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path, "--snapshot-count", "50") as e:
            s = e.server
            b = s.revision
            for chunk in range(28):  # batches of concurrent puts: a few fsyncs each
                await asyncio.gather(
                    *[
                        s.put(pb.PutRequest(key=b"s%05d" % (chunk * 200 + i), value=b"v"))
                        for i in range(200)
                    ]
                )
            wal = e.node._wal

            async def compacted() -> bool:
                return wal.first_index() > 1  # type: ignore[attr-defined, no-any-return]

            await eventually(compacted)  # a snapshot past 5000 entries compacts the WAL
        async with member(tmp_path, "--snapshot-count", "50") as e:
            r = await e.server.range(pb.RangeRequest(key=b"s", range_end=b"t", count_only=True))
            assert r.count == 5600 and r.header.revision == b + 5600

    run(body(), timeout=120)
