"""Pure pieces of the server shell: ids, wait registry, read-index batching, membership IDs."""

from __future__ import annotations

import asyncio

import pytest

from etcdpy.membership.cluster import Member, RaftCluster, compute_cluster_id
from etcdpy.raft.types import ReadState
from etcdpy.server.read_index import AppliedWaiter, ReadIndexer
from etcdpy.server.wait import Wait
from etcdpy.util.ids import Generator
from tests.server.support import run


def test_id_generator_is_etcd_idutil() -> None:
    g = Generator(0x8E9E05C52164694D, 1_700_000_000_000)
    a, b = g.next(), g.next()
    assert b == a + 1
    assert a >> 48 == 0x694D  # low 16 bits of the member ID
    assert (a & ((1 << 48) - 1)) >> 8 == 1_700_000_000_000 & ((1 << 40) - 1)


def test_member_and_cluster_ids_match_etcd_defaults() -> None:
    c = RaftCluster.from_initial_cluster(
        "default", {"default": ["http://localhost:2380"]}, "etcd-cluster"
    )
    assert c.local_id == 0x8E9E05C52164694D  # what `etcd` with no flags prints
    assert c.cluster_id == 0xCDF818194E3A8C32
    assert compute_cluster_id([c.local_id]) == c.cluster_id
    m = Member(1, "n", ("http://a:2380",), ("http://a:2379",))
    assert Member.from_json(m.to_json()) == m


def test_wait_trigger_fail_and_dup() -> None:
    async def body() -> None:
        w = Wait(asyncio.get_running_loop())
        f1 = w.register(1)
        with pytest.raises(ValueError):
            w.register(1)
        w.trigger(1, "ok")
        w.trigger(1, "again")  # unknown id: no-op
        assert await f1 == "ok"
        f2 = w.register(2)
        w.fail_all(RuntimeError("stopped"))
        with pytest.raises(RuntimeError):
            await f2
        assert len(w) == 0

    run(body())


def test_read_index_batches_reads_and_waits_for_applied() -> None:
    async def body() -> None:
        sent: list[bytes] = []
        applied = AppliedWaiter(asyncio.get_running_loop())
        ri = ReadIndexer(sent.append, applied, retry_interval=5)
        task = asyncio.create_task(ri.run())
        reads = [ri.wait() for _ in range(5)]  # queued before the loop runs: one round
        while not sent:
            await asyncio.sleep(0)
        assert len(sent) == 1
        ri.on_read_states([ReadState(index=7, request_ctx=b"other")])
        ri.on_read_states([ReadState(index=7, request_ctx=sent[0])])
        for _ in range(5):
            await asyncio.sleep(0)
        assert not any(r.done() for r in reads)  # applied (0) < read index (7)
        applied.applied_to(7)
        await asyncio.wait_for(asyncio.gather(*reads), 5)
        late = ri.wait()
        while len(sent) < 2:
            await asyncio.sleep(0)
        ri.on_read_states([ReadState(index=3, request_ctx=sent[1])])
        await asyncio.wait_for(late, 5)
        ri.stop(RuntimeError("stop"))
        task.cancel()

    run(body())
