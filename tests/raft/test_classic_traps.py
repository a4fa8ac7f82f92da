"""Classic Raft traps, each as a small deterministic scenario.

- Figure 8 (Raft paper §5.4.2): an entry from an older term that is stored on a majority
  must not be committed by counting replicas (PySyncObj #169).
- A partitioned old leader cannot commit, steps down with CheckQuorum, and its
  uncommitted entries are overwritten when it rejoins.
- A node restarted from storage does not vote twice in a term (test_election.py).
- A removed leader steps down (test_membership.py).
"""

from __future__ import annotations

from etcdpy.raft import (
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    StateType,
)
from tests.raft.network import Network

MT = MessageType
VOTERS = ConfState(voters=(1, 2, 3, 4, 5))


def st(terms: list[int], term: int, vote: int = 0, commit: int = 1) -> MemoryStorage:
    s = MemoryStorage.with_conf_state(VOTERS)
    s.append([Entry(index=i + 1, term=t) for i, t in enumerate(terms)])
    s.set_hard_state(HardState(term=term, vote=vote, commit=commit))
    return s


def test_figure_8_old_term_entry_not_committed_by_counting() -> None:
    # (b): S1 led term 2 and got index 2 only to S2; S5 led term 3 with index 2 only on
    # itself (votes S3, S4, S5). Now S5 is down and S1 is elected for term 4.
    net = Network(
        [1, 2, 3, 4, 5],
        check_quorum=False,
        storages={
            1: st([1, 2], 3),
            2: st([1, 2], 2),
            3: st([1], 3, vote=5),
            4: st([1], 3, vote=5),
            5: st([1, 3], 3, vote=5),
        },
    )
    net.crash(5)
    net.drops.append(lambda m: m.type == MT.MsgApp and m.from_ == 1)  # S1 replicates nothing
    net.campaign(1)
    s1 = net.nodes[1]
    assert s1.state == StateType.LEADER and s1.term == 4
    assert s1.log() == [(1, 1), (2, 2), (3, 4)]
    # (c): S1 gets index 2 (term 2) onto S3; with S1 and S2 it is on a majority...
    net.inject(
        Message(
            type=MT.MsgApp,
            to=3,
            from_=1,
            term=4,
            index=1,
            log_term=1,
            entries=(Entry(index=2, term=2),),
            commit=1,
        )
    )
    net.inject(Message(type=MT.MsgApp, to=2, from_=1, term=4, index=2, log_term=2, commit=1))
    match = {i: p.match for i, p in s1.rn.status().progress.items()}
    assert match[2] == 2 and match[3] == 2
    # ...but it is from term 2: not committed by counting
    assert s1.committed == 1
    assert all(n.committed == 1 for n in net.nodes.values())
    # (d): S1 crashes; S5 comes back and wins term 5 with S2, S3, S4 (its last term 3 > 2)
    net.crash(1)
    net.restart(5)
    net.drops.clear()
    net.campaign(5)  # PreVote at term 4 is refused (voters already voted in term 4)...
    assert net.nodes[5].term == 4
    net.campaign(5)  # ...which taught S5 term 4; PreVote at term 5 then succeeds
    s5 = net.nodes[5]
    assert s5.state == StateType.LEADER and s5.term == 5
    # index 2 (term 2) is overwritten everywhere reachable: it was never committed
    for i in (2, 3, 4, 5):
        assert net.nodes[i].log() == [(1, 1), (2, 3), (3, 5)]
    # (e): S1 rejoins; its index 2 (term 2) and 3 (term 4) are overwritten as well
    net.restart(1)
    net.propose(5, b"after")
    net.tick(n=2)  # the leader was probing 1 (paused); a heartbeat round resumes it
    for n in net.nodes.values():
        assert n.log() == [(1, 1), (2, 3), (3, 5), (4, 5)]
        assert n.committed == 4
        assert [e.term for e in n.applied if e.index == 2] in ([], [3])


def test_figure_8_entry_committed_with_current_term_entry() -> None:
    """Once an entry of the leader's term is on a majority, older entries commit with it."""
    net = Network(
        [1, 2, 3, 4, 5],
        check_quorum=False,
        storages={
            1: st([1, 2], 3),
            2: st([1, 2], 2),
            3: st([1], 3, vote=5),
            4: st([1], 3, vote=5),
            5: st([1, 3], 3, vote=5),
        },
    )
    net.crash(5)
    net.drops.append(lambda m: m.to == 4)
    net.campaign(1)
    s1 = net.nodes[1]
    assert s1.committed == 3  # (2, term 2) committed together with (3, term 4)
    assert net.nodes[3].log() == [(1, 1), (2, 2), (3, 4)]


def test_partitioned_old_leader_cannot_commit_and_is_overwritten() -> None:
    net = Network([1, 2, 3, 4, 5], seed=1)
    net.campaign(1)
    net.propose(1, b"committed")
    old_term = net.nodes[1].term
    net.partition([1, 2], [3, 4, 5])
    # the minority leader accepts proposals but cannot commit them
    net.nodes[1].rn.propose(b"lost-1")
    net.nodes[1].rn.propose(b"lost-2")
    net.stabilize()
    assert net.nodes[1].committed == net.nodes[2].committed == 2
    assert net.nodes[2].log()[-1][0] == 4  # replicated to 2 but only 2 of 5 have it
    # the majority elects a new leader and commits new entries
    for _ in range(100):
        for i in (3, 4, 5):
            net.tick(i)
        if net.leader() in (3, 4, 5):
            break
    # CheckQuorum: the old leader noticed it lost its quorum and stepped down
    net.tick(1, n=20)
    assert net.nodes[1].state != StateType.LEADER
    new = max((3, 4, 5), key=lambda i: net.nodes[i].state == StateType.LEADER)
    assert net.nodes[new].state == StateType.LEADER and net.nodes[new].term > old_term
    net.propose(new, b"majority")
    # heal: the minority's uncommitted entries are overwritten
    net.recover()
    net.tick(n=5)
    for n in net.nodes.values():
        assert n.applied_data() == [b"committed", b"majority"]
        assert n.log() == net.nodes[new].log()
        assert b"lost-1" not in [e.data for e in n.applied]
