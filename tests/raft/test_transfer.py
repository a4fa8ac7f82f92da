"""Leadership transfer (MsgTransferLeader / MsgTimeoutNow)."""

from __future__ import annotations

import pytest

from etcdpy.raft import MessageType, ProposalDropped, StateType
from tests.raft.network import Network

MT = MessageType


def test_transfer_to_up_to_date_follower() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    term = net.nodes[1].term
    net.nodes[1].rn.transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2 and net.nodes[2].term == term + 1
    assert net.nodes[1].state == StateType.FOLLOWER
    assert any(m.type == MT.MsgTimeoutNow and m.to == 2 for m in net.delivered)


def test_transfer_to_lagging_follower_catches_it_up_first() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(3)
    for i in range(3):
        net.propose(1, b"p%d" % i)
    net.recover()
    net.nodes[1].rn.transfer_leader(3)
    net.stabilize()
    net.tick(n=2)
    assert net.leader() == 3
    assert net.nodes[3].applied_data()[:3] == [b"p0", b"p1", b"p2"]


def test_proposals_refused_during_transfer_and_abort_after_timeout() -> None:
    net = Network([1, 2, 3], election_tick=10)
    net.campaign(1)
    net.isolate(3)
    n1 = net.nodes[1]
    n1.rn.transfer_leader(3)
    net.stabilize()
    assert n1.raft.lead_transferee == 3
    with pytest.raises(ProposalDropped):
        n1.rn.propose(b"x")
    net.tick(1, n=10)  # one election timeout: the transfer is abandoned
    assert n1.raft.lead_transferee == 0 and n1.state == StateType.LEADER
    n1.rn.propose(b"x")


def test_transfer_forwarded_by_follower_and_ignored_cases() -> None:
    net = Network([1, 2, 3], learners=[4])
    net.campaign(1)
    net.nodes[3].rn.transfer_leader(3)  # asked on the transferee itself: forwarded
    net.stabilize()
    assert net.leader() == 3
    net.nodes[3].rn.transfer_leader(3)  # to self: nothing happens
    net.nodes[3].rn.transfer_leader(4)  # to a learner: ignored
    net.stabilize()
    assert net.leader() == 3 and net.nodes[3].raft.lead_transferee == 0


def test_transfer_vote_overrides_follower_lease() -> None:
    """The transferee skips PreVote and its vote request carries CampaignTransfer, so
    followers that just heard from the leader still grant it."""
    net = Network([1, 2, 3], check_quorum=True, pre_vote=True)
    net.campaign(1)
    net.propose(1, b"a")
    net.nodes[1].rn.transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2
    assert not any(m.type == MT.MsgPreVote and m.from_ == 2 for m in net.delivered)
