"""Log replication: conflicts, fast backtracking, flow control, heartbeats, forwarding."""

from __future__ import annotations

import pytest

from etcdpy.raft import (
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProgressState,
    ProposalDropped,
    StateType,
)
from tests.raft.network import Network, voters_storage

MT = MessageType


def storage_with_log(ids: list[int], terms: list[int], term: int) -> MemoryStorage:
    st = voters_storage(ids)
    st.append([Entry(index=i + 1, term=t) for i, t in enumerate(terms)])
    st.set_hard_state(HardState(term=term))
    return st


def test_follower_rejects_mismatch_with_hint() -> None:
    net = Network([1, 2], storages={2: storage_with_log([1, 2], [1, 1, 2, 2, 2], 2)})
    n2 = net.nodes[2]
    # leader at term 4 probes at (7, 4): beyond 2's log -> hint = last index 5, term 2
    n2.rn.step(Message(type=MT.MsgApp, to=2, from_=1, term=4, index=7, log_term=4))
    (m,) = n2.rn.ready().messages
    assert m.reject and m.index == 7 and m.reject_hint == 5 and m.log_term == 2


def test_fast_backtracking_skips_whole_terms() -> None:
    """A divergent follower catches up in a few round trips, not one per entry."""
    leader_log = [1, 1, 1, 4, 4, 4, 4, 4, 4, 4]
    follower_log = [1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]
    net = Network(
        [1, 2, 3],
        storages={
            1: storage_with_log([1, 2, 3], leader_log, 4),
            2: storage_with_log([1, 2, 3], follower_log, 3),
            3: storage_with_log([1, 2, 3], leader_log, 4),
        },
        pre_vote=False,
    )
    net.campaign(1)
    assert net.leader() == 1
    probes = [m for m in net.delivered if m.type == MT.MsgApp and m.to == 2]
    assert len(probes) <= 4
    assert net.nodes[2].log() == net.nodes[1].log()
    assert net.nodes[2].committed == net.nodes[1].committed == 11


def test_conflicting_uncommitted_entries_are_overwritten() -> None:
    net = Network(
        [1, 2, 3],
        storages={
            1: storage_with_log([1, 2, 3], [1, 2], 2),
            2: storage_with_log([1, 2, 3], [1, 3, 3], 3),
            3: storage_with_log([1, 2, 3], [1, 3], 3),
        },
        pre_vote=False,
    )
    net.campaign(2)
    assert net.leader() == 2
    for n in net.nodes.values():
        assert n.log() == [(1, 1), (2, 3), (3, 3), (4, 4)]


def test_flow_control_limits_inflight_messages() -> None:
    net = Network([1, 2], max_inflight_msgs=3, max_size_per_msg=1)
    net.campaign(1)
    net.drops.append(lambda m: m.type == MT.MsgAppResp)  # follower acks are lost
    n1 = net.nodes[1]
    net.delivered.clear()
    for i in range(10):
        n1.rn.propose(b"p%d" % i)
    net.stabilize()
    apps = [m for m in net.delivered if m.type == MT.MsgApp and m.entries]
    assert len(apps) == 3  # the window is full
    pr = n1.rn.status().progress[2]
    assert pr.state == ProgressState.REPLICATE and pr.paused and pr.inflight == 3
    net.recover()
    net.tick(n=3)  # heartbeat responses free a slot; acks then drain the rest
    assert net.nodes[2].log() == n1.log()
    assert net.nodes[2].applied_data() == [b"p%d" % i for i in range(10)]


def test_max_size_per_msg_splits_appends() -> None:
    net = Network([1, 2], max_size_per_msg=50)
    net.campaign(1)
    net.drops.append(lambda m: m.to == 2)
    for _ in range(6):
        net.nodes[1].rn.propose(b"x" * 30)
    net.stabilize()
    net.recover()
    net.delivered.clear()
    net.tick(n=2)
    apps = [m for m in net.delivered if m.type == MT.MsgApp and m.entries]
    assert all(len(m.entries) <= 2 for m in apps) and len(apps) >= 3
    assert net.nodes[2].log() == net.nodes[1].log()


def test_heartbeat_commit_is_min_of_match_and_commit() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(3)
    net.propose(1, b"a")
    net.recover()
    net.drops.append(lambda m: m.type == MT.MsgApp)  # only heartbeats get through
    net.delivered.clear()
    net.tick(1)
    hb = {m.to: m.commit for m in net.delivered if m.type == MT.MsgHeartbeat}
    assert hb[2] == net.nodes[1].committed == 2
    assert hb[3] == 1  # 3 only has index 1: never tell it to commit more
    assert net.nodes[3].committed == 1


def test_proposal_forwarding_and_dropping() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(3, b"fwd")
    assert all(n.applied_data() == [b"fwd"] for n in net.nodes.values())
    fwd = [m for m in net.delivered if m.type == MT.MsgProp]
    assert [(m.from_, m.to) for m in fwd] == [(3, 1)]

    nf = Network([1, 2, 3], disable_proposal_forwarding=True)
    nf.campaign(1)
    with pytest.raises(ProposalDropped):
        nf.nodes[2].rn.propose(b"x")
    # no leader known: dropped
    n = Network([1, 2, 3]).nodes[1]
    with pytest.raises(ProposalDropped):
        n.rn.propose(b"x")


def test_candidate_drops_proposals() -> None:
    net = Network([1, 2, 3], pre_vote=False)
    net.isolate(1)
    net.campaign(1)
    assert net.nodes[1].state == StateType.CANDIDATE
    with pytest.raises(ProposalDropped):
        net.nodes[1].rn.propose(b"x")


def test_max_uncommitted_entries_size() -> None:
    net = Network([1, 2, 3], max_uncommitted_entries_size=100)
    net.campaign(1)
    net.isolate(1)
    n1 = net.nodes[1]
    n1.rn.propose(b"a" * 60)
    n1.rn.propose(b"b" * 30)
    with pytest.raises(ProposalDropped):
        n1.rn.propose(b"c" * 30)
    net.recover()
    net.tick(n=2)
    n1.rn.propose(b"c" * 30)  # committed entries freed the budget


def test_leader_appends_empty_entry_and_commits_it() -> None:
    net = Network([1, 2, 3])
    net.campaign(2)
    n2 = net.nodes[2]
    assert n2.log() == [(1, 1)]
    assert all(n.committed == 1 for n in net.nodes.values())
    assert n2.applied[0].data == b""


def test_follower_appends_only_after_persisting() -> None:
    """Acks in a Ready are sent after the entries in the same Ready are persisted."""
    net = Network([1, 2])
    net.campaign(1)
    n1 = net.nodes[1]
    n1.rn.propose(b"z")
    (app,) = [m for m in n1.handle_ready() if m.type == MT.MsgApp]
    n2 = net.nodes[2]
    n2.rn.step(app)
    rd = n2.rn.ready()
    assert [e.data for e in rd.entries] == [b"z"] and rd.must_sync
    (resp,) = rd.messages
    assert resp.type == MT.MsgAppResp and resp.index == rd.entries[-1].index


def test_commit_rule_counts_only_current_term_entries() -> None:
    """Raft §5.4.2 at the unit level: a majority holding an old-term entry commits nothing;
    a majority holding the leader's own entry commits it and everything before it."""
    st = storage_with_log([1, 2, 3], [1, 2], 2)
    net = Network([1, 2, 3], storages={1: st}, pre_vote=False)
    r = net.nodes[1].raft
    r.become_candidate()
    r.become_leader()  # as if it had won; appends its empty entry at index 3, term 3
    assert r.state == StateType.LEADER and r.term == 3
    # followers acknowledge index 2 (term 2): a majority, but an older term
    for i in (2, 3):
        r.step(Message(type=MT.MsgAppResp, from_=i, to=1, term=3, index=2))
    assert r.raft_log.committed == 0
    # the leader's empty entry at index 3 (term 3) reaches a majority: 1..3 commit
    r.step(Message(type=MT.MsgAppResp, from_=2, to=1, term=3, index=3))
    assert r.raft_log.committed == 3


def test_report_unreachable_falls_back_to_probe() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"a")
    n1 = net.nodes[1]
    assert n1.rn.status().progress[2].state == ProgressState.REPLICATE
    n1.rn.report_unreachable(2)
    assert n1.rn.status().progress[2].state == ProgressState.PROBE
    n1.rn.report_unreachable(99)  # unknown peer: ignored
    net.tick(n=2)
    net.propose(1, b"b")
    assert n1.rn.status().progress[2].state == ProgressState.REPLICATE
    assert net.nodes[2].applied_data() == [b"a", b"b"]


def test_committed_entries_per_ready_are_size_limited() -> None:
    net = Network([1], max_committed_size_per_ready=100)
    net.campaign(1)
    n1 = net.nodes[1]
    for _ in range(5):
        n1.rn.propose(b"x" * 60)
    rd = n1.rn.ready()
    n1.storage.save(rd.hard_state, rd.entries, rd.snapshot)
    assert len(rd.entries) == 5 and len(rd.committed_entries) == 1
    n1.rn.advance(rd)
    sizes = []
    while n1.rn.has_ready():
        rd = n1.rn.ready()
        sizes.append(len(rd.committed_entries))
        n1.rn.advance(rd)
    assert sum(sizes) == 4 and max(sizes) <= 1
