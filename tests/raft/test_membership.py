"""Membership changes through the log: add/remove, learners, joint consensus, removed leader."""

from __future__ import annotations

from etcdpy.raft import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    EntryType,
    StateType,
)
from tests.raft.network import Network, voters_storage

ADD, REMOVE, LEARNER = (
    ConfChangeType.AddNode,
    ConfChangeType.RemoveNode,
    ConfChangeType.AddLearnerNode,
)


def conf_entries(net: Network, i: int) -> list[EntryType]:
    return [e.type for e in net.nodes[i].applied if e.type != EntryType.NORMAL]


def test_add_voter() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.add_node(4, voters_storage([1, 2, 3]))
    net.nodes[1].rn.propose_conf_change(ConfChange(ADD, 4))
    net.stabilize()
    for i in (1, 2, 3):
        assert net.nodes[i].conf_state == ConfState(voters=(1, 2, 3, 4))
    net.tick(n=3)
    net.propose(1, b"x")
    assert net.nodes[4].applied_data() == [b"x"]
    assert net.nodes[4].conf_state == ConfState(voters=(1, 2, 3, 4))
    # 4 counts in the quorum now: with 3 and 4 down, nothing commits
    net.isolate(3)
    net.isolate(4)
    c = net.nodes[1].committed
    net.nodes[1].rn.propose(b"y")
    net.stabilize()
    assert net.nodes[1].committed == c


def test_one_pending_conf_change_at_a_time() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    n1 = net.nodes[1]
    n1.rn.propose_conf_change(ConfChange(ADD, 4))
    n1.rn.propose_conf_change(ConfChange(ADD, 5))  # refused: becomes an empty normal entry
    net.stabilize()
    assert n1.conf_state == ConfState(voters=(1, 2, 3, 4))
    assert conf_entries(net, 1) == [EntryType.CONF_CHANGE]
    n1.rn.propose_conf_change(ConfChange(ADD, 5))  # now accepted
    net.stabilize()
    assert n1.conf_state == ConfState(voters=(1, 2, 3, 4, 5))


def test_remove_follower() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.nodes[1].rn.propose_conf_change(ConfChange(REMOVE, 3))
    net.stabilize()
    assert net.nodes[1].conf_state == ConfState(voters=(1, 2))
    assert 3 not in net.nodes[1].rn.status().progress
    net.isolate(3)
    net.propose(1, b"two-of-two")
    assert net.nodes[2].applied_data() == [b"two-of-two"]
    # the removed node never campaigns
    net.tick(3, n=50)
    assert net.nodes[3].state == StateType.FOLLOWER


def test_removed_leader_steps_down_and_cluster_continues() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"before")
    net.nodes[1].rn.propose_conf_change(ConfChange(REMOVE, 1))
    net.stabilize()
    assert net.nodes[1].state == StateType.FOLLOWER
    assert net.nodes[1].conf_state == ConfState(voters=(2, 3))
    for _ in range(100):
        net.tick()
        if net.leader() in (2, 3):
            break
    new = net.leader()
    assert new in (2, 3)
    net.propose(new, b"after")
    for i in (2, 3):
        assert net.nodes[i].applied_data() == [b"before", b"after"]
        assert net.nodes[i].conf_state == ConfState(voters=(2, 3))
    net.tick(1, n=50)
    assert net.nodes[1].state == StateType.FOLLOWER  # never campaigns again


def test_learner_replicates_but_does_not_vote_and_can_be_promoted() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.add_node(4, voters_storage([1, 2, 3]))
    net.nodes[1].rn.propose_conf_change(ConfChange(LEARNER, 4))
    net.stabilize()
    net.tick(n=2)
    assert net.nodes[1].conf_state == ConfState(voters=(1, 2, 3), learners=(4,))
    net.propose(1, b"x")
    assert net.nodes[4].applied_data() == [b"x"]
    # the learner does not count: with 2 and 3 down nothing commits
    net.isolate(2)
    net.isolate(3)
    c = net.nodes[1].committed
    net.nodes[1].rn.propose(b"y")
    net.stabilize()
    assert net.nodes[1].committed == c
    net.recover()
    net.tick(n=2)
    # promote
    net.nodes[1].rn.propose_conf_change(ConfChange(ADD, 4))
    net.stabilize()
    net.tick(n=2)
    assert net.nodes[4].conf_state == ConfState(voters=(1, 2, 3, 4))
    assert not net.nodes[4].raft.is_learner


def test_joint_consensus_auto_leave() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.add_node(4, voters_storage([1, 2, 3]))
    cc = ConfChangeV2(changes=(ConfChangeSingle(ADD, 4), ConfChangeSingle(REMOVE, 3)))
    net.nodes[1].rn.propose_conf_change(cc)
    net.stabilize()
    net.tick(n=3)
    for i in (1, 2, 4):
        assert net.nodes[i].conf_state == ConfState(voters=(1, 2, 4))
        assert conf_entries(net, i)[-2:] == [EntryType.CONF_CHANGE_V2] * 2
    net.isolate(3)
    net.propose(1, b"new-config")
    assert net.nodes[4].applied_data() == [b"new-config"]


def test_joint_explicit_stays_until_left() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.add_node(4, voters_storage([1, 2, 3]))
    cc = ConfChangeV2(
        changes=(ConfChangeSingle(ADD, 4),), transition=ConfChangeTransition.JointExplicit
    )
    n1 = net.nodes[1]
    n1.rn.propose_conf_change(cc)
    net.stabilize()
    net.tick(n=3)
    joint = ConfState(voters=(1, 2, 3, 4), voters_outgoing=(1, 2, 3))
    assert n1.conf_state == joint
    # a non-leave change while joint is refused (replaced by an empty entry)
    n1.rn.propose_conf_change(ConfChange(ADD, 5))
    net.stabilize()
    assert n1.conf_state == joint
    # joint decisions need both halves: with 3 and 4 down, {1,2} is a majority of the
    # outgoing {1,2,3} but not of the incoming {1,2,3,4}
    net.isolate(3)
    net.isolate(4)
    c = n1.committed
    n1.rn.propose(b"blocked")
    net.stabilize()
    assert n1.committed == c
    net.recover()
    net.tick(n=3)
    n1.rn.propose_conf_change(ConfChangeV2())
    net.stabilize()
    assert n1.conf_state == ConfState(voters=(1, 2, 3, 4))


def test_leave_joint_when_not_joint_is_refused() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    n1 = net.nodes[1]
    n1.rn.propose_conf_change(ConfChangeV2())
    net.stabilize()
    assert conf_entries(net, 1) == []
    assert n1.rn.status().conf_state == ConfState(voters=(1, 2, 3))


def test_bootstrap_add_after_bootstrap_from_entries() -> None:
    """A cluster bootstrapped through conf-change entries can add a node that starts
    empty: it learns the whole membership from the log."""
    from etcdpy.raft import MemoryStorage

    net = Network([1], storages={1: MemoryStorage()})
    n1 = net.nodes[1]
    n1.rn.bootstrap([1])
    net.stabilize()
    net.campaign(1)
    net.add_node(2, MemoryStorage())
    n1.rn.propose_conf_change(ConfChange(ADD, 2))
    net.stabilize()
    net.tick(n=3)
    net.propose(1, b"x")
    assert net.nodes[2].conf_state == ConfState(voters=(1, 2))
    assert net.nodes[2].applied_data() == [b"x"]


def test_undecodable_forwarded_conf_change_becomes_noop() -> None:
    from etcdpy.raft import Entry, Message, MessageType

    net = Network([1, 2, 3])
    net.campaign(1)
    net.nodes[1].rn.step(
        Message(
            type=MessageType.MsgProp,
            to=1,
            from_=2,
            entries=(Entry(type=EntryType.CONF_CHANGE_V2, data=b"\x09garbage"),),
        )
    )
    net.stabilize()
    assert conf_entries(net, 1) == []
    assert net.nodes[1].applied[-1].type == EntryType.NORMAL
