from __future__ import annotations

from random import Random

import pytest

from etcdpy.raft import (
    NONE,
    EntryType,
    HardState,
    MemoryStorage,
    MessageType,
    ProposalDropped,
    RaftConfig,
    RawNode,
    StateType,
    decode_conf_change_entry,
)
from tests.raft.network import Network


def test_single_node_elects_itself_and_commits() -> None:
    net = Network([1])
    net.campaign(1)
    n = net.nodes[1]
    assert n.state == StateType.LEADER
    net.propose(1, b"a")
    assert n.applied_data() == [b"a"]
    assert n.storage.hard_state.commit == n.committed == 2  # empty entry, then "a"


def test_three_nodes_elect_replicate_commit() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    assert net.nodes[1].state == StateType.LEADER
    assert net.nodes[2].state == StateType.FOLLOWER
    assert net.nodes[2].raft.lead == 1
    for i in range(5):
        net.propose(1 + i % 3, f"v{i}".encode())
    want = [f"v{i}".encode() for i in range(5)]
    for n in net.nodes.values():
        assert n.applied_data() == want
        assert n.log() == net.nodes[1].log()


def test_election_by_ticking() -> None:
    net = Network([1, 2, 3], seed=7)
    for _ in range(40):
        net.tick()
        if net.leader() is not None:
            break
    assert net.leader() is not None
    terms = {n.term for n in net.nodes.values()}
    assert len(terms) == 1


def test_bootstrap_through_conf_change_entries() -> None:
    storages = {i: MemoryStorage() for i in (1, 2, 3)}
    net = Network([1, 2, 3], storages=storages)
    for n in net.nodes.values():
        n.rn.bootstrap([1, 2, 3])
        rd = n.rn.ready()
        assert rd.hard_state == HardState(term=1, vote=NONE, commit=3)
        assert [e.type for e in rd.committed_entries] == [EntryType.CONF_CHANGE] * 3
        assert rd.must_sync
        n.storage.save(rd.hard_state, rd.entries, rd.snapshot)
        for e in rd.committed_entries:
            n.rn.apply_conf_change(decode_conf_change_entry(e.type, e.data))
        n.applied_index = 3
        n.rn.advance(rd)
    net.campaign(2)
    assert net.nodes[2].state == StateType.LEADER
    net.propose(2, b"x")
    for n in net.nodes.values():
        assert n.applied_data() == [b"x"]


def test_follower_without_leader_drops_proposal() -> None:
    st = MemoryStorage()
    rn = RawNode(RaftConfig(id=1, rng=Random(1)), st)
    with pytest.raises(ProposalDropped):
        rn.propose(b"x")


def test_ready_messages_and_hard_state() -> None:
    net = Network([1, 2, 3])
    n1 = net.nodes[1]
    n1.rn.campaign()
    rd = n1.rn.ready()
    # PreVote: no term change yet, nothing to sync, MsgPreVote to both peers.
    assert rd.hard_state.is_empty()
    assert not rd.must_sync
    assert sorted((m.type, m.to, m.term) for m in rd.messages) == [
        (MessageType.MsgPreVote, 2, 1),
        (MessageType.MsgPreVote, 3, 1),
    ]
    n1.rn.advance(rd)
    assert not n1.rn.has_ready()
