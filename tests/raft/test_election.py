"""Leader election: votes, PreVote, CheckQuorum and the follower lease."""

from __future__ import annotations

from random import Random

from etcdpy.raft import (
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RaftConfig,
    RawNode,
    StateType,
)
from etcdpy.raft.core import CAMPAIGN_TRANSFER
from tests.raft.network import Network, voters_storage

MT = MessageType


def responses(net: Network, to: int) -> list[Message]:
    return [m for m in net.delivered if m.to == to]


def test_randomized_election_timeout_range() -> None:
    seen = set()
    for seed in range(200):
        rn = RawNode(
            RaftConfig(id=1, election_tick=10, rng=Random(seed)), voters_storage([1, 2, 3])
        )
        seen.add(rn.raft.randomized_election_timeout)
    assert min(seen) == 10 and max(seen) == 19


def test_same_seed_same_behaviour() -> None:
    def trace(seed: int) -> list[tuple[int, int]]:
        net = Network([1, 2, 3, 4, 5], seed=seed)
        net.tick(n=30)
        return [(m.from_, m.to) for m in net.delivered]

    assert trace(3) == trace(3)


def test_vote_once_per_term_and_log_up_to_date() -> None:
    net = Network([1, 2, 3], pre_vote=False)
    n2 = net.nodes[2]
    n2.rn.step(Message(type=MT.MsgVote, to=2, from_=1, term=5, index=0, log_term=0))
    rd = n2.rn.ready()
    assert rd.hard_state == HardState(term=5, vote=1, commit=0) and rd.must_sync
    assert [(m.type, m.reject) for m in rd.messages] == [(MT.MsgVoteResp, False)]
    n2.rn.advance(rd)
    n2.rn.step(Message(type=MT.MsgVote, to=2, from_=3, term=5))
    rd = n2.rn.ready()
    assert [(m.type, m.to, m.reject) for m in rd.messages] == [(MT.MsgVoteResp, 3, True)]
    # the same candidate asking again (duplicate) gets the vote again
    n2.rn.advance(rd)
    n2.rn.step(Message(type=MT.MsgVote, to=2, from_=1, term=5))
    assert [m.reject for m in n2.rn.ready().messages] == [False]


def test_vote_refused_to_out_of_date_log() -> None:
    net = Network([1, 2, 3], pre_vote=False, check_quorum=False)
    net.campaign(1)
    net.propose(1, b"x")
    n3 = net.nodes[3]
    n3.rn.step(Message(type=MT.MsgVote, to=3, from_=2, term=9, index=1, log_term=1))
    rd = n3.rn.ready()
    assert [(m.type, m.reject) for m in rd.messages] == [(MT.MsgVoteResp, True)]
    assert n3.term == 9 and n3.raft.vote == 0


def test_restarted_node_remembers_its_vote() -> None:
    """PySyncObj #84: term and vote come back from persisted HardState after a crash."""
    net = Network([1, 2, 3], pre_vote=False)
    n2 = net.nodes[2]
    n2.rn.step(Message(type=MT.MsgVote, to=2, from_=1, term=5))
    net.stabilize()  # persists the vote
    assert n2.storage.hard_state == HardState(term=5, vote=1, commit=0)
    n2.restart()
    assert n2.term == 5 and n2.raft.vote == 1
    n2.rn.step(Message(type=MT.MsgVote, to=2, from_=3, term=5))
    rd = n2.rn.ready()
    assert [(m.type, m.to, m.reject) for m in rd.messages] == [(MT.MsgVoteResp, 3, True)]


def test_unpersisted_vote_is_never_sent() -> None:
    """The vote response is only in a Ready whose hard state carries the vote."""
    net = Network([1, 2, 3], pre_vote=False)
    n2 = net.nodes[2]
    n2.rn.step(Message(type=MT.MsgVote, to=2, from_=1, term=5))
    rd = n2.rn.ready()
    assert rd.messages and rd.hard_state.vote == 1 and rd.must_sync
    # crash before persisting: the message is lost with the Ready; nothing was promised
    n2.restart()
    assert n2.term == 0 and n2.raft.vote == 0


def test_prevote_isolated_node_does_not_bump_term_or_disrupt() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    term = net.nodes[1].term
    net.isolate(3)
    net.tick(3, n=100)
    assert net.nodes[3].term == term  # PreVote never succeeded, term unchanged
    assert net.nodes[3].state in (StateType.PRE_CANDIDATE, StateType.FOLLOWER)
    net.recover()
    net.tick(n=3)
    assert net.leader() == 1 and net.nodes[1].term == term
    assert net.nodes[3].raft.lead == 1


def test_without_prevote_rejoining_node_disrupts() -> None:
    net = Network([1, 2, 3], pre_vote=False, check_quorum=False)
    net.campaign(1)
    term = net.nodes[1].term
    net.isolate(3)
    net.tick(3, n=50)
    assert net.nodes[3].term > term + 1
    net.recover()
    net.tick(n=30)
    assert net.nodes[net.leader() or 0].term > term  # the old leader was deposed


def test_prevote_loser_returns_to_follower() -> None:
    net = Network([1, 2, 3], check_quorum=False)
    net.campaign(1)
    net.propose(1, b"x")
    # node 3 missed an entry: its PreVote is refused by up-to-date nodes 1 and 2
    net.isolate(3)
    net.propose(1, b"y")
    net.recover()
    term = net.nodes[1].term
    net.nodes[3].rn.campaign()
    rd = net.nodes[3].rn.ready()
    assert {m.type for m in rd.messages} == {MT.MsgPreVote}
    assert all(m.term == term + 1 for m in rd.messages)
    assert rd.hard_state.is_empty()  # a pre-election changes nothing persistent
    net.nodes[3].rn.advance(rd)
    net.deliver(rd.messages)
    assert net.nodes[3].state == StateType.FOLLOWER
    assert net.nodes[3].term == term and net.leader() == 1


def test_check_quorum_leader_steps_down_when_isolated() -> None:
    net = Network([1, 2, 3], election_tick=10)
    net.campaign(1)
    net.isolate(1)
    # CheckQuorum looks back one election timeout: at most two timeouts to step down
    net.tick(1, n=20)
    assert net.nodes[1].state == StateType.FOLLOWER
    # and the others elect a new leader
    net.tick(n=40)
    assert net.leader() in (2, 3)


def test_check_quorum_keeps_leader_with_quorum() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(3)
    net.tick(n=60)
    assert net.nodes[1].state == StateType.LEADER


def test_follower_in_lease_ignores_higher_term_vote() -> None:
    net = Network([1, 2, 3], pre_vote=False, check_quorum=True)
    net.campaign(1)
    term = net.nodes[2].term
    net.nodes[2].rn.step(
        Message(type=MT.MsgVote, to=2, from_=3, term=term + 5, index=99, log_term=99)
    )
    rd = net.nodes[2].rn.ready()
    assert rd.messages == () and net.nodes[2].term == term
    net.nodes[2].rn.advance(rd)
    # a leadership transfer campaign overrides the lease
    net.nodes[2].rn.step(
        Message(
            type=MT.MsgVote,
            to=2,
            from_=3,
            term=term + 5,
            index=99,
            log_term=99,
            context=CAMPAIGN_TRANSFER,
        )
    )
    rd = net.nodes[2].rn.ready()
    assert [(m.type, m.reject) for m in rd.messages] == [(MT.MsgVoteResp, False)]


def test_stale_leader_learns_new_term_from_append_response() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(1)
    for _ in range(60):  # wait out the followers' lease, then they elect among themselves
        net.tick(2)
        net.tick(3)
        if net.nodes[2].state == StateType.LEADER or net.nodes[3].state == StateType.LEADER:
            break
    new = 2 if net.nodes[2].state == StateType.LEADER else 3
    assert net.nodes[new].state == StateType.LEADER
    term2 = net.nodes[new].term
    net.recover()
    # old leader 1 still thinks it leads (no tick yet); its heartbeat gets a MsgAppResp
    # with the higher term, so it steps down
    assert net.nodes[1].state == StateType.LEADER
    net.tick(1)
    n1 = net.nodes[1]
    assert (n1.state, n1.term) == (StateType.FOLLOWER, term2)
    assert net.nodes[1].raft.lead in (0, new)


def test_learner_never_campaigns() -> None:
    net = Network([1, 2], learners=[3])
    net.tick(3, n=100)
    assert net.nodes[3].state == StateType.FOLLOWER and net.nodes[3].term == 0
    net.campaign(3)
    assert net.nodes[3].state == StateType.FOLLOWER


def test_restart_keeps_term_from_storage() -> None:
    st = MemoryStorage.with_conf_state(voters_storage([1, 2, 3]).snapshot().metadata.conf_state)
    st.set_hard_state(HardState(term=7, vote=2, commit=0))
    rn = RawNode(RaftConfig(id=1, rng=Random(0)), st)
    assert rn.raft.term == 7 and rn.raft.vote == 2
    assert not rn.has_ready()  # nothing changed since the persisted state
