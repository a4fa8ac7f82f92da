"""Quorum arithmetic: pure functions over sets of voter IDs (etcd's ``raft/quorum``).

Rule 1: a majority config with n voters needs n//2+1 of them.
Rule 2: a joint config (incoming, outgoing) needs a majority of *each* half; an empty
half imposes no constraint (its committed index is "infinite" and it always wins a vote),
so a non-joint config is simply (voters, empty).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import IntEnum

INFINITE_INDEX = 2**64 - 1
"""Committed index of an empty majority config: it never holds the joint minimum back."""


class VoteResult(IntEnum):
    PENDING = 1
    LOST = 2
    WON = 3


def majority_committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The largest index acknowledged by a majority of ``voters``.

    ``match`` maps a voter to its acknowledged (matched) index; missing voters count as 0.
    """
    n = len(voters)
    if n == 0:
        return INFINITE_INDEX
    if n == 1:
        for v in voters:
            return match.get(v, 0)
    acked = sorted([match.get(v, 0) for v in voters], reverse=True)
    return acked[n // 2]


def joint_committed_index(
    incoming: Collection[int], outgoing: Collection[int], match: Mapping[int, int]
) -> int:
    """Committed index of a joint config: the smaller of both halves."""
    a = majority_committed_index(incoming, match)
    if not outgoing:
        return a
    b = majority_committed_index(outgoing, match)
    return a if a < b else b


def majority_vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority can no longer be reached."""
    n = len(voters)
    if n == 0:
        return VoteResult.WON
    granted = 0
    missing = 0
    for v in voters:
        got = votes.get(v)
        if got is None:
            missing += 1
        elif got:
            granted += 1
    q = n // 2 + 1
    if granted >= q:
        return VoteResult.WON
    if granted + missing >= q:
        return VoteResult.PENDING
    return VoteResult.LOST


def joint_vote_result(
    incoming: Collection[int], outgoing: Collection[int], votes: Mapping[int, bool]
) -> VoteResult:
    """WON if both halves won, LOST if either lost, PENDING otherwise."""
    r1 = majority_vote_result(incoming, votes)
    r2 = majority_vote_result(outgoing, votes)
    if r1 == r2:
        return r1
    if r1 == VoteResult.LOST or r2 == VoteResult.LOST:
        return VoteResult.LOST
    return VoteResult.PENDING
