"""The safety checkers must be able to fail: feed each a deliberately broken history."""

from __future__ import annotations

from typing import Any

import pytest

from etcdpy.raft.types import Entry, HardState, Message, MessageType
from tests.support.invariants import InvariantViolation, SafetyChecker


def E(index: int, term: int, data: bytes = b"") -> Entry:
    return Entry(term=term, index=index, data=data)


def persist(ck: SafetyChecker, nid: int, entries: list[Entry], hs: HardState) -> None:
    ck.on_persist_entries(nid, entries)
    ck.on_persist_hard_state(nid, hs)


def expect(prop: str) -> Any:
    """pytest.raises for one named property."""
    return pytest.raises(InvariantViolation, match=f"^{prop}:")


def test_good_history_passes() -> None:
    ck = SafetyChecker()
    for n in (1, 2, 3):
        persist(ck, n, [E(1, 1, b"a"), E(2, 1, b"b")], HardState(term=1, vote=1, commit=0))
    ck.on_leader(1, 1)
    ck.on_send(1, Message(type=MessageType.MsgApp, to=2, from_=1, term=1))
    persist(ck, 1, [], HardState(term=1, vote=1, commit=2))
    persist(ck, 2, [E(3, 2, b"c")], HardState(term=2, vote=2, commit=2))
    ck.on_not_leader(1)
    ck.on_leader(2, 2)
    ck.on_apply(1, E(1, 1, b"a"), b"d1")
    ck.on_apply(2, E(1, 1, b"a"), b"d1")
    ck.on_ack(b"a", 1)
    ck.check_acked_durable(2)


def test_two_leaders_in_one_term() -> None:
    ck = SafetyChecker()
    ck.on_leader(1, 3)
    with expect("election-safety"):
        ck.on_leader(2, 3)


def test_two_leaders_seen_from_messages() -> None:
    ck = SafetyChecker()
    ck.on_persist_hard_state(1, HardState(term=3))
    ck.on_persist_hard_state(2, HardState(term=3))
    ck.on_send(1, Message(type=MessageType.MsgHeartbeat, to=3, from_=1, term=3))
    with expect("election-safety"):
        ck.on_send(2, Message(type=MessageType.MsgApp, to=3, from_=2, term=3))


def test_term_decreases() -> None:
    ck = SafetyChecker()
    ck.on_persist_hard_state(1, HardState(term=5, vote=1))
    with expect("term-monotonic"):
        ck.on_persist_hard_state(1, HardState(term=4))


def test_vote_changes_within_term() -> None:
    """PySyncObj #84: a vote forgotten over a restart lets a node vote twice in a term."""
    ck = SafetyChecker()
    ck.on_persist_hard_state(1, HardState(term=5, vote=2))
    with expect("vote-stable"):
        ck.on_persist_hard_state(1, HardState(term=5, vote=3))


def test_commit_decreases() -> None:
    """PySyncObj #166."""
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1), E(2, 1)], HardState(term=1, commit=2))
    with expect("commit-monotonic"):
        ck.on_persist_hard_state(1, HardState(term=1, commit=1))


def test_committed_entry_overwritten() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"a"), E(2, 1, b"b")], HardState(term=1, commit=2))
    with expect("committed-entry-lost"):
        ck.on_persist_entries(1, [E(2, 2, b"x")])


def test_committed_entry_overwritten_on_another_node() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"a"), E(2, 1, b"b")], HardState(term=1, commit=2))
    persist(ck, 2, [E(1, 1, b"a"), E(2, 1, b"b")], HardState(term=1, commit=0))
    with expect("committed-entry-lost"):
        ck.on_persist_entries(2, [E(2, 2, b"x")])


def test_uncommitted_suffix_may_be_replaced() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"a"), E(2, 1, b"b")], HardState(term=1, commit=1))
    persist(ck, 1, [E(2, 2, b"x")], HardState(term=2, commit=2))


def test_log_matching_different_data() -> None:
    ck = SafetyChecker()
    ck.on_persist_entries(1, [E(1, 1, b"a")])
    with expect("log-matching"):
        ck.on_persist_entries(2, [E(1, 1, b"b")])


def test_log_matching_different_prefix() -> None:
    ck = SafetyChecker()
    ck.on_persist_entries(1, [E(1, 1, b"a"), E(2, 3, b"c")])
    with expect("log-matching"):
        ck.on_persist_entries(2, [E(1, 2, b"z"), E(2, 3, b"c")])


def test_committed_entries_disagree() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"a")], HardState(term=1, commit=1))
    ck.on_persist_entries(2, [E(1, 2, b"b")])
    with expect("committed-entry-agreement"):
        ck.on_persist_hard_state(2, HardState(term=2, commit=1))


def test_commit_beyond_persisted_log() -> None:
    ck = SafetyChecker()
    ck.on_persist_entries(1, [E(1, 1)])
    with expect("commit-beyond-log"):
        ck.on_persist_hard_state(1, HardState(term=1, commit=2))


def test_leader_missing_committed_entry() -> None:
    """A leader of a later term lacks an entry committed in an earlier term (#169-style)."""
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"a"), E(2, 1, b"b")], HardState(term=1, commit=2))
    persist(ck, 2, [E(1, 1, b"a")], HardState(term=2, vote=2))
    with expect("leader-completeness"):
        ck.on_leader(2, 2)


def test_committed_later_than_leader_elected() -> None:
    """Committing an entry by a term older than a sitting leader that lacks it."""
    ck = SafetyChecker()
    ck.on_persist_entries(1, [E(1, 1, b"a"), E(2, 1, b"b")])
    persist(ck, 2, [E(1, 1, b"a")], HardState(term=3, vote=2))
    ck.on_leader(2, 3)
    with expect("leader-completeness"):
        ck.on_persist_hard_state(1, HardState(term=1, commit=2))


def test_entry_of_older_term_need_not_be_in_leader_it_predates() -> None:
    """Figure 3.7: an entry committed by term 4 need not be in the log of term 3's leader."""
    ck = SafetyChecker()
    ck.on_persist_entries(5, [E(1, 1, b"a"), E(2, 3, b"x")])
    ck.on_persist_hard_state(5, HardState(term=3, vote=5))
    ck.on_leader(5, 3)
    ck.on_not_leader(5)
    persist(ck, 1, [E(1, 1, b"a"), E(2, 2, b"b"), E(3, 4, b"")], HardState(term=4, commit=3))


def test_vote_granted_before_persisting() -> None:
    ck = SafetyChecker()
    ck.on_persist_hard_state(1, HardState(term=2, vote=0))
    with expect("persist-before-send"):
        ck.on_send(1, Message(type=MessageType.MsgVoteResp, to=3, from_=1, term=2))


def test_message_term_ahead_of_disk() -> None:
    ck = SafetyChecker()
    ck.on_persist_hard_state(1, HardState(term=2))
    with expect("persist-before-send"):
        ck.on_send(1, Message(type=MessageType.MsgVote, to=3, from_=1, term=3))


def test_append_acknowledged_before_persisting() -> None:
    """PySyncObj #201: the log was acknowledged before it was on disk."""
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1)], HardState(term=1))
    with expect("persist-before-send"):
        ck.on_send(1, Message(type=MessageType.MsgAppResp, to=2, from_=1, term=1, index=3))


def test_nodes_apply_different_entries() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"a")], HardState(term=1, commit=1))
    ck.on_apply(1, E(1, 1, b"a"), b"d1")
    ck.on_persist_entries(2, [E(1, 1, b"a")])
    ck.on_persist_hard_state(2, HardState(term=1, commit=1))
    with expect("state-machine-safety"):
        ck.on_apply(2, E(1, 1, b"zzz"), b"d1")


def test_states_diverge() -> None:
    ck = SafetyChecker()
    for n in (1, 2):
        persist(ck, n, [E(1, 1, b"a")], HardState(term=1, commit=1))
    ck.on_apply(1, E(1, 1, b"a"), b"d1")
    with expect("state-machine-safety"):
        ck.on_apply(2, E(1, 1, b"a"), b"other")


def test_apply_out_of_order_or_uncommitted() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1), E(2, 1)], HardState(term=1, commit=1))
    with expect("apply-in-order"):
        ck.on_apply(1, E(2, 1), b"d")
    ck.on_apply(1, E(1, 1), b"d1")
    with expect("apply-committed-only"):
        ck.on_apply(1, E(2, 1), b"d2")


def test_acknowledged_proposal_lost() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"p1")], HardState(term=1, commit=1))
    ck.on_apply(1, E(1, 1, b"p1"), b"d1")
    ck.on_ack(b"p1", 1)
    ck.on_state_reset(2, 0, b"")
    with expect("acked-lost"):
        ck.check_acked_durable(2)


def test_stale_read_index() -> None:
    ck = SafetyChecker()
    persist(ck, 1, [E(1, 1, b"p1"), E(2, 1, b"p2")], HardState(term=1, commit=2))
    ck.on_apply(1, E(1, 1, b"p1"), b"d1")
    ck.on_apply(1, E(2, 1, b"p2"), b"d2")
    ck.on_read_issued(3, b"r1")
    with expect("read-index-stale"):
        ck.on_read_state(3, b"r1", 1)
