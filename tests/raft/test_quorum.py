"""quorum.py against naive twins (hypothesis)."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from etcdpy.raft.quorum import (
    INFINITE_INDEX,
    VoteResult,
    joint_committed_index,
    joint_vote_result,
    majority_committed_index,
    majority_vote_result,
)

ids = st.frozensets(st.integers(1, 9), max_size=7)
matches = st.dictionaries(st.integers(1, 9), st.integers(0, 20))
votes = st.dictionaries(st.integers(1, 9), st.booleans())


def naive_committed(voters: frozenset[int], match: dict[int, int]) -> int:
    """Largest index i such that a majority has match >= i (brute force over subsets)."""
    if not voters:
        return INFINITE_INDEX
    q = len(voters) // 2 + 1
    best = 0
    for group in combinations(sorted(voters), q):
        best = max(best, min(match.get(v, 0) for v in group))
    return best


def naive_vote(voters: frozenset[int], v: dict[int, bool]) -> VoteResult:
    if not voters:
        return VoteResult.WON
    q = len(voters) // 2 + 1
    yes = sum(1 for i in voters if v.get(i) is True)
    no = sum(1 for i in voters if v.get(i) is False)
    if yes >= q:
        return VoteResult.WON
    if len(voters) - no >= q:
        return VoteResult.PENDING
    return VoteResult.LOST


@settings(max_examples=300)
@given(ids, matches)
def test_majority_committed_matches_naive(voters: frozenset[int], m: dict[int, int]) -> None:
    assert majority_committed_index(voters, m) == naive_committed(voters, m)


@settings(max_examples=300)
@given(ids, ids, matches)
def test_joint_committed_is_min_of_halves(
    a: frozenset[int], b: frozenset[int], m: dict[int, int]
) -> None:
    got = joint_committed_index(a, b, m)
    assert got == min(naive_committed(a, m), naive_committed(b, m))
    # the committed index is acknowledged by a majority of each non-empty half
    for half in (a, b):
        if half and got != INFINITE_INDEX:
            assert sum(1 for v in half if m.get(v, 0) >= got) >= len(half) // 2 + 1


@settings(max_examples=300)
@given(ids, votes)
def test_majority_vote_matches_naive(voters: frozenset[int], v: dict[int, bool]) -> None:
    assert majority_vote_result(voters, v) == naive_vote(voters, v)


@settings(max_examples=300)
@given(ids, ids, votes)
def test_joint_vote(a: frozenset[int], b: frozenset[int], v: dict[int, bool]) -> None:
    r1, r2 = naive_vote(a, v), naive_vote(b, v)
    want = (
        VoteResult.WON
        if r1 == r2 == VoteResult.WON
        else VoteResult.LOST
        if VoteResult.LOST in (r1, r2)
        else VoteResult.PENDING
    )
    assert joint_vote_result(a, b, v) == want


def test_examples() -> None:
    assert majority_committed_index({1, 2, 3}, {1: 5, 2: 4, 3: 1}) == 4
    assert majority_committed_index({1, 2, 3, 4}, {1: 5, 2: 4, 3: 1, 4: 3}) == 3
    assert majority_committed_index(set(), {}) == INFINITE_INDEX
    assert joint_committed_index({1, 2, 3}, {4, 5, 6}, {1: 9, 2: 9, 3: 9, 4: 2}) == 0
    assert majority_vote_result({1, 2, 3}, {1: True}) == VoteResult.PENDING
    assert majority_vote_result({1, 2, 3}, {1: True, 2: True}) == VoteResult.WON
    assert majority_vote_result({1, 2, 3}, {1: False, 2: False}) == VoteResult.LOST
    assert joint_vote_result({1}, set(), {1: True}) == VoteResult.WON
