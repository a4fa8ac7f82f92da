"""The Ready/advance contract: what is in a Ready and when."""

from __future__ import annotations

from random import Random

import pytest

from etcdpy.raft import (
    ConfigInvalid,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RaftConfig,
    RawNode,
    ReadOnlyOption,
    SoftState,
    StateType,
    StepLocalMsg,
    StepPeerNotFound,
)
from tests.raft.network import Network, voters_storage

MT = MessageType


def test_hard_state_only_when_changed_and_must_sync() -> None:
    net = Network([1])
    n = net.nodes[1]
    n.rn.campaign()
    rd = n.rn.ready()
    assert rd.hard_state == HardState(term=1, vote=1, commit=1)
    assert rd.soft_state == SoftState(lead=1, raft_state=StateType.LEADER)
    assert rd.must_sync and len(rd.entries) == 1 and len(rd.committed_entries) == 1
    n.storage.save(rd.hard_state, rd.entries, rd.snapshot)
    n.rn.advance(rd)
    assert not n.rn.has_ready()
    n.rn.propose(b"a")
    rd = n.rn.ready()
    # commit changed, term/vote did not: hard state present, must_sync due to entries
    assert rd.hard_state == HardState(term=1, vote=1, commit=2) and rd.must_sync
    assert rd.soft_state is None
    n.storage.save(rd.hard_state, rd.entries, rd.snapshot)
    n.rn.advance(rd)
    assert n.rn.status().applied == 2


def test_commit_only_change_does_not_need_sync() -> None:
    net = Network([1, 2])
    net.campaign(1)
    n2 = net.nodes[2]
    net.nodes[1].rn.propose(b"a")
    (app,) = [m for m in net.nodes[1].handle_ready() if m.type == MT.MsgApp]
    n2.rn.step(app)
    n2.storage.save(*(lambda r: (r.hard_state, r.entries, r.snapshot))(rd := n2.rn.ready()))
    n2.rn.advance(rd)
    n2.rn.step(Message(type=MT.MsgHeartbeat, to=2, from_=1, term=1, commit=2))
    rd = n2.rn.ready()
    assert rd.hard_state.commit == 2 and not rd.must_sync and rd.entries == ()


def test_ready_messages_cleared_and_not_repeated() -> None:
    net = Network([1, 2, 3])
    n1 = net.nodes[1]
    n1.rn.campaign()
    rd1 = n1.rn.ready()
    assert rd1.messages
    rd2 = n1.rn.ready()
    assert rd2.messages == ()


def test_step_rejects_local_and_unknown_peer_responses() -> None:
    net = Network([1, 2, 3])
    with pytest.raises(StepLocalMsg):
        net.nodes[1].rn.step(Message(type=MT.MsgHup, from_=2))
    with pytest.raises(StepPeerNotFound):
        net.nodes[1].rn.step(Message(type=MT.MsgAppResp, from_=9, to=1, term=1))


def test_config_validation() -> None:
    with pytest.raises(ConfigInvalid):
        RaftConfig(id=0, rng=Random()).validate()
    with pytest.raises(ConfigInvalid):
        RaftConfig(id=1, election_tick=1, heartbeat_tick=1, rng=Random()).validate()
    with pytest.raises(ConfigInvalid):
        RaftConfig(
            id=1, check_quorum=False, read_only_option=ReadOnlyOption.LEASE_BASED, rng=Random()
        ).validate()
    with pytest.raises(ConfigInvalid):
        RawNode(RaftConfig(id=1, max_inflight_msgs=0, rng=Random()), MemoryStorage())


def test_status() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    s = net.nodes[1].rn.status()
    assert s.id == 1 and s.soft_state.lead == 1 and s.hard_state.term == 1
    assert set(s.progress) == {1, 2, 3} and s.progress[2].match == 1
    assert net.nodes[2].rn.status().progress == {}


def test_restart_with_applied() -> None:
    st = voters_storage([1])
    rn = RawNode(RaftConfig(id=1, rng=Random(0)), st)
    rn.campaign()
    for d in (b"a", b"b"):
        rn.propose(d)
    rd = rn.ready()
    st.save(rd.hard_state, rd.entries, rd.snapshot)
    rn.advance(rd)
    rn2 = RawNode(RaftConfig(id=1, applied=2, rng=Random(0)), st)
    rd = rn2.ready()
    assert [e.index for e in rd.committed_entries] == [3]
    assert rd.hard_state.is_empty()


def test_malformed_peer_messages_are_dropped() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    n1 = net.nodes[1]
    n1.rn.step(Message(type=MT.MsgProp, to=1, from_=2))
    n1.rn.step(Message(type=MT.MsgReadIndex, to=1, from_=2))
    n1.rn.step(Message(type=MT.MsgSnap, to=1, from_=2, term=1))
    assert n1.state == StateType.LEADER


def test_step_local_batch_proposal_raises_but_forwarded_is_dropped() -> None:
    from etcdpy.raft import Entry, ProposalDropped

    net = Network([1, 2, 3])
    n1 = net.nodes[1]  # no leader yet
    batch = Message(type=MT.MsgProp, from_=1, entries=(Entry(data=b"a"), Entry(data=b"b")))
    with pytest.raises(ProposalDropped):
        n1.rn.step(batch)
    n1.rn.step(Message(type=MT.MsgProp, from_=2, to=1, entries=(Entry(data=b"a"),)))
    net.campaign(1)
    n1.rn.step(batch)
    net.stabilize()
    assert n1.applied_data() == [b"a", b"b"]


def test_propose_batch() -> None:
    from etcdpy.raft import ProposalDropped

    net = Network([1, 2, 3])
    with pytest.raises(ProposalDropped):
        net.nodes[2].rn.propose_batch([b"x"])
    net.campaign(1)
    net.nodes[2].rn.propose_batch([b"a", b"b", b"c"])  # forwarded as one MsgProp
    net.nodes[1].rn.propose_batch([])
    net.stabilize()
    assert [m.type for m in net.delivered].count(MT.MsgProp) == 1
    assert all(n.applied_data() == [b"a", b"b", b"c"] for n in net.nodes.values())
