"""confchange.py (simple and joint changes, learners) and confchange_codec.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcdpy.raft import (
    ConfChange,
    ConfChangeError,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    EntryType,
    decode_conf_change,
    decode_conf_change_entry,
    decode_conf_change_v2,
    encode_conf_change,
    encode_conf_change_entry,
    encode_conf_change_v2,
)
from etcdpy.raft.confchange import Changer, as_v2, enter_joint, leave_joint, restore
from etcdpy.raft.confchange_codec import ConfChangeDecodeError
from etcdpy.raft.tracker import ProgressTracker

ADD, REMOVE, LEARNER, UPDATE = (
    ConfChangeType.AddNode,
    ConfChangeType.RemoveNode,
    ConfChangeType.AddLearnerNode,
    ConfChangeType.UpdateNode,
)


def tracker(cs: ConfState) -> ProgressTracker:
    tr = ProgressTracker(8)
    restore(tr, 10, cs)
    return tr


def apply(
    tr: ProgressTracker, op: str, *ccs: tuple[ConfChangeType, int], auto_leave: bool = False
) -> ConfState:
    ch = Changer(tr, 10)
    singles = [ConfChangeSingle(t, i) for t, i in ccs]
    if op == "simple":
        cfg, prs = ch.simple(singles)
    elif op == "enter":
        cfg, prs = ch.enter_joint(auto_leave, singles)
    else:
        cfg, prs = ch.leave_joint()
    tr.set(cfg, prs)
    return tr.conf_state()


def test_simple_add_remove_learner_promote() -> None:
    tr = tracker(ConfState(voters=(1,)))
    assert apply(tr, "simple", (ADD, 2)) == ConfState(voters=(1, 2))
    assert apply(tr, "simple", (LEARNER, 3)) == ConfState(voters=(1, 2), learners=(3,))
    assert tr.progress[3].is_learner
    # promote learner -> voter
    assert apply(tr, "simple", (ADD, 3)) == ConfState(voters=(1, 2, 3))
    assert not tr.progress[3].is_learner
    # demote voter -> learner is a one-voter change
    assert apply(tr, "simple", (LEARNER, 3)) == ConfState(voters=(1, 2), learners=(3,))
    assert apply(tr, "simple", (REMOVE, 3)) == ConfState(voters=(1, 2))
    assert 3 not in tr.progress
    # removing an unknown node and UpdateNode change nothing
    assert apply(tr, "simple", (REMOVE, 9), (UPDATE, 1)) == ConfState(voters=(1, 2))


def test_simple_refuses_two_voter_changes_and_empty_config() -> None:
    tr = tracker(ConfState(voters=(1, 2, 3)))
    before = tr.conf_state()
    with pytest.raises(ConfChangeError, match="more than one voter"):
        apply(tr, "simple", (ADD, 4), (REMOVE, 3))
    with pytest.raises(ConfChangeError, match="removed all voters"):
        apply(tracker(ConfState(voters=(1,))), "simple", (REMOVE, 1))
    assert tr.conf_state() == before  # unchanged on error
    # learners may change freely along with one voter
    cs = apply(tr, "simple", (ADD, 4), (LEARNER, 5), (LEARNER, 6))
    assert cs == ConfState(voters=(1, 2, 3, 4), learners=(5, 6))


def test_joint_replace_voter_and_leave() -> None:
    tr = tracker(ConfState(voters=(1, 2, 3)))
    cs = apply(tr, "enter", (ADD, 4), (REMOVE, 3), auto_leave=True)
    assert cs == ConfState(voters=(1, 2, 4), voters_outgoing=(1, 2, 3), auto_leave=True)
    assert 3 in tr.progress  # still needed by the outgoing half
    with pytest.raises(ConfChangeError, match="already joint"):
        apply(tr, "enter", (ADD, 5))
    with pytest.raises(ConfChangeError, match="simple config change in joint"):
        apply(tr, "simple", (ADD, 5))
    cs = apply(tr, "leave")
    assert cs == ConfState(voters=(1, 2, 4))
    assert 3 not in tr.progress
    with pytest.raises(ConfChangeError, match="non-joint"):
        apply(tr, "leave")


def test_joint_demote_voter_goes_through_learners_next() -> None:
    tr = tracker(ConfState(voters=(1, 2, 3)))
    cs = apply(tr, "enter", (LEARNER, 3), (ADD, 4))
    assert cs == ConfState(voters=(1, 2, 4), voters_outgoing=(1, 2, 3), learners_next=(3,))
    assert not tr.progress[3].is_learner
    cs = apply(tr, "leave")
    assert cs == ConfState(voters=(1, 2, 4), learners=(3,))
    assert tr.progress[3].is_learner


def test_joint_committed_index_needs_both_halves() -> None:
    tr = tracker(ConfState(voters=(1, 2, 3)))
    apply(tr, "enter", (ADD, 4), (ADD, 5), (REMOVE, 2), (REMOVE, 3))
    for i, m in {1: 10, 2: 10, 3: 10, 4: 0, 5: 0}.items():
        tr.progress[i].match = m
    assert tr.committed() == 0  # incoming {1,4,5} has only 1 at 10
    tr.progress[4].match = 7
    assert tr.committed() == 7


def test_enter_and_leave_predicates() -> None:
    assert enter_joint(as_v2(ConfChange(ADD, 1))) == (False, False)
    two = ConfChangeV2(changes=(ConfChangeSingle(ADD, 1), ConfChangeSingle(ADD, 2)))
    assert enter_joint(two) == (True, True)
    explicit = ConfChangeV2(
        changes=(ConfChangeSingle(ADD, 1),), transition=ConfChangeTransition.JointExplicit
    )
    assert enter_joint(explicit) == (False, True)
    assert leave_joint(ConfChangeV2())
    assert leave_joint(ConfChangeV2(context=b"ignored"))
    assert not leave_joint(two)


# --- restore round trip ---------------------------------------------------------------

change = st.tuples(st.sampled_from([ADD, REMOVE, LEARNER]), st.integers(1, 6))


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["simple", "enter", "leave"]),
            st.lists(change, min_size=1, max_size=3),
            st.booleans(),
        ),
        max_size=8,
    )
)
def test_restore_reproduces_any_reachable_config(
    ops: list[tuple[str, list[tuple[ConfChangeType, int]], bool]],
) -> None:
    tr = tracker(ConfState(voters=(1,)))
    for op, ccs, auto in ops:
        try:
            apply(tr, op, *ccs, auto_leave=auto)
        except ConfChangeError:
            continue
        cs = tr.conf_state()
        tr2 = tracker(cs)
        assert tr2.conf_state() == cs
        assert set(tr2.progress) == set(tr.progress)
        for i in tr.progress:
            assert tr2.progress[i].is_learner == tr.progress[i].is_learner
        # invariants: learners disjoint from voters; learners_next within outgoing
        assert not set(cs.learners) & (set(cs.voters) | set(cs.voters_outgoing))
        assert set(cs.learners_next) <= set(cs.voters_outgoing)


# --- codec ------------------------------------------------------------------------------


@given(
    st.sampled_from(list(ConfChangeType)),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.binary(max_size=50),
)
def test_codec_v1_roundtrip(t: ConfChangeType, node: int, id_: int, ctx: bytes) -> None:
    cc = ConfChange(type=t, node_id=node, context=ctx, id=id_)
    assert decode_conf_change(encode_conf_change(cc)) == cc
    et, data = encode_conf_change_entry(cc)
    assert et == EntryType.CONF_CHANGE and decode_conf_change_entry(et, data) == cc


@given(
    st.lists(
        st.tuples(st.sampled_from(list(ConfChangeType)), st.integers(0, 2**64 - 1)), max_size=5
    ),
    st.sampled_from(list(ConfChangeTransition)),
    st.binary(max_size=50),
)
def test_codec_v2_roundtrip(
    chs: list[tuple[ConfChangeType, int]], tr: ConfChangeTransition, ctx: bytes
) -> None:
    cc = ConfChangeV2(
        changes=tuple(ConfChangeSingle(t, n) for t, n in chs), transition=tr, context=ctx
    )
    assert decode_conf_change_v2(encode_conf_change_v2(cc)) == cc
    et, data = encode_conf_change_entry(cc)
    assert et == EntryType.CONF_CHANGE_V2 and decode_conf_change_entry(et, data) == cc


def test_codec_empty_v2_is_leave_joint_and_errors() -> None:
    assert encode_conf_change_v2(ConfChangeV2()) == b""
    assert decode_conf_change_v2(b"") == ConfChangeV2()
    for bad in (b"\x02" + b"\x00" * 17, b"\x01", b"\x01\x09" + b"\x00" * 16):
        with pytest.raises(ConfChangeDecodeError):
            decode_conf_change(bad)
    with pytest.raises(ConfChangeDecodeError):
        decode_conf_change_v2(b"\x01\x00\x00\x05\x00")
    with pytest.raises(ConfChangeDecodeError):
        decode_conf_change_entry(EntryType.NORMAL, b"")
