"""Membership changes through raft on a single member (learners do not affect quorum)."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from tests.server.support import member, run


def test_learner_add_promote_refused_remove_and_update(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            add = await s.member_add(
                pb.MemberAddRequest(peerURLs=["http://127.0.0.1:2390"], isLearner=True)
            )
            assert add.member.isLearner and add.member.peerURLs == ["http://127.0.0.1:2390"]
            assert len(add.members) == 2
            # same URLs in the same second: etcd derives the same ID (ID exists), else URL exists
            with pytest.raises((errors.ErrGRPCPeerURLExist, errors.ErrGRPCMemberExist)):
                await s.member_add(pb.MemberAddRequest(peerURLs=["http://127.0.0.1:2390"]))
            with pytest.raises(errors.ErrGRPCLearnerNotReady):
                await s.member_promote(pb.MemberPromoteRequest(ID=add.member.ID))
            with pytest.raises(errors.ErrGRPCMemberNotLearner):
                await s.member_promote(pb.MemberPromoteRequest(ID=s.id))
            up = await s.member_update(
                pb.MemberUpdateRequest(ID=s.id, peerURLs=["http://127.0.0.1:2480"])
            )
            me = next(m for m in up.members if m.ID == s.id)
            assert me.peerURLs == ["http://127.0.0.1:2480"] and me.name == "default"
            rm = await s.member_remove(pb.MemberRemoveRequest(ID=add.member.ID))
            assert [m.ID for m in rm.members] == [s.id]
            with pytest.raises(errors.ErrGRPCMemberNotFound):
                await s.member_remove(pb.MemberRemoveRequest(ID=add.member.ID))
            # still writable: the learner never counted for quorum
            await s.put(pb.PutRequest(key=b"k", value=b"v"))
        async with member(tmp_path) as e:  # membership is persisted
            ml = await e.server.member_list(pb.MemberListRequest())
            assert [(m.name, list(m.peerURLs)) for m in ml.members] == [
                ("default", ["http://127.0.0.1:2480"])
            ]

    run(body())


def test_cluster_service_headers_carry_no_revision(tmp_path: Path) -> None:
    """etcd's ClusterServer.header(): cluster and member IDs and the term, no revision (the
    JSON of `member list -w json` and of the gateway has none), even after writes."""

    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            await s.put(pb.PutRequest(key=b"k", value=b"v"))
            resps = [
                await s.member_list(pb.MemberListRequest()),
                await s.member_update(
                    pb.MemberUpdateRequest(ID=s.id, peerURLs=["http://localhost:2380"])
                ),
            ]
            for resp in resps:
                h = resp.header
                assert (h.cluster_id, h.member_id) == (s.cluster.cluster_id, s.id)
                assert h.raft_term == s.term and h.raft_term > 0
                assert h.revision == 0

    run(body())
