"""Raft snapshots carry the member's state: a follower cut off while the leader compacted
its log past it catches up by installing the leader's backend (server.snapshots)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest

from etcdpy import embed
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.server.transport import InmemNetwork
from etcdpy.storage.segment_wal import AnyWalStore
from etcdpy.util.failpoints import Failpoints
from tests.server.support import eventually, run, start_peer

NAMES = ["a", "b", "c"]


async def _start(
    tmp_path: Path, net: InmemNetwork, name: str, fp: Failpoints | None = None
) -> embed.Etcd:
    flags = ["--snapshot-count", "10", "--max-snapshots", "2"]
    return await start_peer(tmp_path, net, name, NAMES, *flags, failpoints=fp or Failpoints())


def _wal(e: embed.Etcd) -> AnyWalStore:
    return cast(AnyWalStore, e.node._wal)


async def _state(e: embed.Etcd) -> tuple[object, ...]:
    s = e.server
    rng = await s.range(pb.RangeRequest(key=b"\x00", range_end=b"\x00", serializable=True))
    kvs = [(kv.key, kv.value, kv.lease, kv.mod_revision, kv.version) for kv in rng.kvs]
    h = await s.hash_kv(pb.HashKVRequest(revision=0))
    leases = sorted(s.leases.ids())
    members = sorted(
        (m.id, m.name, tuple(m.peer_urls), tuple(m.client_urls)) for m in s.cluster.members.values()
    )
    return (kvs, h.hash, h.compact_revision, s.revision, leases, members)


async def _all_same(members: list[embed.Etcd]) -> bool:
    states = [await _state(m) for m in members]
    return all(st == states[0] for st in states)


async def _leave_behind(members: list[embed.Etcd], net: InmemNetwork) -> tuple[embed.Etcd, int]:
    """Cut a follower off, write (keys, a lease, deletes, a compaction) until the leader's
    log is compacted past it; returns (leader, lease id). The follower stays cut off."""

    async def has_leader() -> bool:
        return any(m.server.is_leader for m in members)

    await eventually(has_leader)
    leader = next(m for m in members if m.server.is_leader)
    lagger = next(m for m in members if not m.server.is_leader)
    await leader.server.put(pb.PutRequest(key=b"before", value=b"0"))

    async def lagger_has_before() -> bool:
        r = await lagger.server.range(pb.RangeRequest(key=b"before", serializable=True))
        return bool(r.kvs)

    await eventually(lagger_has_before)
    lagger_last = _wal(lagger).last_index()
    net.isolate(lagger.server.id)
    s = leader.server
    lease = await s.lease_grant(pb.LeaseGrantRequest(TTL=600))
    for i in range(40):
        await s.put(pb.PutRequest(key=b"k%03d" % i, value=b"v%d" % i))
    await s.put(pb.PutRequest(key=b"leased", value=b"x", lease=lease.ID))
    await s.delete_range(pb.DeleteRangeRequest(key=b"k000", range_end=b"k005"))
    await s.compact(pb.CompactionRequest(revision=s.revision - 3))
    for i in range(20):
        await s.put(pb.PutRequest(key=b"k%03d" % i, value=b"w%d" % i))
    wal = _wal(leader)

    async def compacted_past() -> bool:
        return wal.first_index() > lagger_last + 1

    await eventually(compacted_past)
    return leader, lease.ID


def test_follower_catches_up_through_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small WAL retention: each snapshot compacts the log to 5 entries behind it.
    monkeypatch.setattr(embed, "SNAPSHOT_CATCH_UP_ENTRIES", 5)

    async def body() -> None:
        net = InmemNetwork()
        members = list(await asyncio.gather(*[_start(tmp_path, net, n) for n in NAMES]))
        try:
            leader, lease_id = await _leave_behind(members, net)
            lagger = next(m for m in members if m.server.id in net._cut)
            assert lagger.server.snapshot_installer is not None
            assert lagger.server.snapshot_installer.installed == 0

            net.heal(lagger.server.id)

            async def caught_up() -> bool:
                return lagger.server.applied_index >= leader.server.applied_index and (
                    await _state(lagger) == await _state(leader)
                )

            await eventually(caught_up, timeout=15)
            assert lagger.server.snapshot_installer.installed >= 1
            assert net.snapshots_sent >= 1
            # The member kept its own identity (the leader's copy names the leader).
            assert lagger.server.cluster.local_id == lagger.server.id
            got = await lagger.server.lease_time_to_live(
                pb.LeaseTimeToLiveRequest(ID=lease_id, keys=True)
            )
            assert list(got.keys) == [b"leased"]

            # Replication goes on after the install, through the lagger too.
            await lagger.server.put(pb.PutRequest(key=b"after", value=b"1"))
            await eventually(lambda: _all_same(members))
            r = await lagger.server.range(pb.RangeRequest(key=b"after"))
            assert r.kvs[0].value == b"1"

            # A restart of the member serves the installed state and keeps replicating.
            idx = members.index(lagger)
            await lagger.close()
            members[idx] = lagger = await _start(tmp_path, net, lagger.config.name)
            await leader.server.put(pb.PutRequest(key=b"restarted", value=b"2"))
            await eventually(lambda: _all_same(members))
            assert lagger.server.cluster.local_id == lagger.server.id
        finally:
            for m in members:
                await m.close()

    run(body(), timeout=60)


@pytest.mark.parametrize("point", ["snapBeforeSwapBackend", "snapBetweenSwapRenames"])
def test_crash_during_install_recovers_at_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    """The WAL has recorded the snapshot, the backend swap dies half-way: the restarted
    member finishes the install from the staged payload and converges."""
    monkeypatch.setattr(embed, "SNAPSHOT_CATCH_UP_ENTRIES", 5)

    async def body() -> None:
        net = InmemNetwork()
        fps = {n: Failpoints() for n in NAMES}
        members = list(await asyncio.gather(*[_start(tmp_path, net, n, fps[n]) for n in NAMES]))
        try:
            await _leave_behind(members, net)
            lagger = next(m for m in members if m.server.id in net._cut)
            fps[lagger.config.name].enable(point, "panic")
            net.heal(lagger.server.id)
            async with asyncio.timeout(15):
                await asyncio.shield(lagger.fatal)
            idx = members.index(lagger)
            await lagger.close()
            members[idx] = lagger = await _start(tmp_path, net, lagger.config.name)
            await eventually(lambda: _all_same(members), timeout=15)
            assert lagger.server.cluster.local_id == lagger.server.id
            assert lagger.server.snapshot_installer is not None
            assert lagger.server.snapshot_installer.installed == 0  # done by the recovery
        finally:
            for m in members:
                await m.close()

    run(body(), timeout=60)
