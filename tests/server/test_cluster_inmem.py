"""Three members in one process over the in-memory transport: raft replication end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.server.transport import InmemNetwork
from tests.server.support import eventually, run, start_peer


def test_three_members_replicate_and_read(tmp_path: Path) -> None:
    names = ["a", "b", "c"]

    async def body() -> None:
        net = InmemNetwork()
        members = await asyncio.gather(*[start_peer(tmp_path, net, n, names) for n in names])
        try:
            ids = {m.server.id for m in members}
            assert len(ids) == 3
            assert len({m.server.cluster.cluster_id for m in members}) == 1

            async def has_leader() -> bool:
                return any(m.server.is_leader for m in members)

            await eventually(has_leader)
            leader = next(m for m in members if m.server.is_leader)
            follower = next(m for m in members if not m.server.is_leader)
            # a write through a follower is forwarded to the leader inside raft
            r = await follower.server.put(pb.PutRequest(key=b"k", value=b"v"))
            await follower.server.settle()
            assert r.header.revision == follower.server.revision
            for m in members:
                got = await m.server.range(pb.RangeRequest(key=b"k"))  # linearizable
                assert got.kvs[0].value == b"v", m.server.id
            await leader.server.put(pb.PutRequest(key=b"k", value=b"v2"))

            async def all_applied() -> bool:
                rs = [
                    await m.server.range(pb.RangeRequest(key=b"k", serializable=True))
                    for m in members
                ]
                return all(x.kvs and x.kvs[0].value == b"v2" for x in rs)

            await eventually(all_applied)
            ml = await follower.server.member_list(pb.MemberListRequest())
            assert sorted(m.name for m in ml.members) == names
        finally:
            for m in members:
                await m.close()

    run(body(), timeout=60)
