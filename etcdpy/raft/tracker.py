"""What the leader knows about each follower (etcd's ``raft/tracker``).

Rules of Progress (flow control):
1. PROBE: at most one MsgApp in flight until the follower answers (``probe_sent``); used
   after a rejection or on a new leader, to find the match point.
2. REPLICATE: entries are streamed optimistically (``next`` advanced on send), bounded by
   ``Inflights`` (``max_inflight_msgs`` unacknowledged MsgApps).
3. SNAPSHOT: nothing is sent while a snapshot is on its way; a MsgSnapStatus or a
   MsgAppResp at/after the snapshot index moves back to PROBE/REPLICATE.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from etcdpy.raft import quorum
from etcdpy.raft.types import ConfState


class ProgressState(IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


#: Go raft's names of the progress states (``StateType.String`` in its tracker), as etcd
#: prints them.
PROGRESS_STATE_NAMES: dict[ProgressState, str] = {
    ProgressState.PROBE: "StateProbe",
    ProgressState.REPLICATE: "StateReplicate",
    ProgressState.SNAPSHOT: "StateSnapshot",
}


class Inflights:
    """Last indexes of the MsgApps sent but not yet acknowledged, oldest first."""

    __slots__ = ("_q", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._q: deque[int] = deque()

    def add(self, index: int) -> None:
        if len(self._q) >= self.size:
            raise OverflowError("cannot add into a full inflights")
        self._q.append(index)

    def free_le(self, to: int) -> None:
        """Free every inflight message whose last index is <= ``to``."""
        q = self._q
        while q and q[0] <= to:
            q.popleft()

    def free_first_one(self) -> None:
        if self._q:
            self._q.popleft()

    def full(self) -> bool:
        return len(self._q) >= self.size

    def count(self) -> int:
        return len(self._q)

    def reset(self) -> None:
        self._q.clear()

    def clone(self) -> Inflights:
        c = Inflights(self.size)
        c._q = deque(self._q)
        return c


class Progress:
    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "next",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "state",
    )

    def __init__(
        self,
        match: int,
        next_: int,
        max_inflight: int,
        is_learner: bool = False,
        recent_active: bool = False,
    ) -> None:
        self.match = match
        self.next = next_
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0
        self.probe_sent = False
        self.recent_active = recent_active
        self.is_learner = is_learner
        self.inflights = Inflights(max_inflight)

    def clone(self) -> Progress:
        c = Progress(
            self.match, self.next, self.inflights.size, self.is_learner, self.recent_active
        )
        c.state = self.state
        c.pending_snapshot = self.pending_snapshot
        c.probe_sent = self.probe_sent
        c.inflights = self.inflights.clone()
        return c

    def _reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        """Probe from just after the match point (or after a snapshot that was sent)."""
        if self.state == ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, n: int) -> bool:
        """Record an acknowledgement of index ``n``; True if ``match`` moved."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        if self.next < n + 1:
            self.next = n + 1
        return updated

    def optimistic_update(self, n: int) -> None:
        self.next = n + 1

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """Handle a rejected MsgApp at index ``rejected``; False if the rejection is stale.

        ``match_hint`` is the leader's guess of the largest index that may match (fast
        backtracking: the follower's hint, refined by term).
        """
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        if self.state == ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def __repr__(self) -> str:
        return (
            f"Progress(state={self.state.name}, match={self.match}, next={self.next}, "
            f"learner={self.is_learner}, paused={self.is_paused()}, "
            f"pending_snapshot={self.pending_snapshot}, inflight={self.inflights.count()})"
        )


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    """The membership: voters (incoming, outgoing when joint), learners, learners_next."""

    voters: frozenset[int] = frozenset()
    voters_outgoing: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()
    learners_next: frozenset[int] = frozenset()
    auto_leave: bool = False

    @property
    def joint(self) -> bool:
        return bool(self.voters_outgoing)

    def voter_ids(self) -> frozenset[int]:
        return self.voters | self.voters_outgoing

    def __str__(self) -> str:
        s = f"voters={sorted(self.voters)}"
        if self.voters_outgoing:
            s += f"&&{sorted(self.voters_outgoing)}"
        if self.learners:
            s += f" learners={sorted(self.learners)}"
        if self.learners_next:
            s += f" learners_next={sorted(self.learners_next)}"
        if self.auto_leave:
            s += " autoleave"
        return s


ProgressMap = dict[int, Progress]


class ProgressTracker:
    """The current configuration plus a Progress per member and the votes of an election."""

    __slots__ = ("_voter_ids", "config", "max_inflight", "progress", "votes")

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.config = TrackerConfig()
        self.progress: ProgressMap = {}
        self.votes: dict[int, bool] = {}
        self._voter_ids: frozenset[int] = frozenset()

    def set(self, config: TrackerConfig, progress: ProgressMap) -> None:
        self.config = config
        self.progress = progress
        self._voter_ids = config.voter_ids()

    def conf_state(self) -> ConfState:
        c = self.config
        return ConfState(
            voters=tuple(sorted(c.voters)),
            learners=tuple(sorted(c.learners)),
            voters_outgoing=tuple(sorted(c.voters_outgoing)),
            learners_next=tuple(sorted(c.learners_next)),
            auto_leave=c.auto_leave,
        )

    def is_singleton(self) -> bool:
        return len(self.config.voters) == 1 and not self.config.voters_outgoing

    def voter_ids(self) -> frozenset[int]:
        return self._voter_ids

    def committed(self) -> int:
        """The largest index replicated on a quorum (joint-aware)."""
        match = {i: pr.match for i, pr in self.progress.items()}
        return quorum.joint_committed_index(self.config.voters, self.config.voters_outgoing, match)

    def quorum_active(self) -> bool:
        """Whether a quorum of voters was heard from since the last check (CheckQuorum)."""
        active = {i: pr.recent_active for i, pr in self.progress.items() if not pr.is_learner}
        return (
            quorum.joint_vote_result(self.config.voters, self.config.voters_outgoing, active)
            == quorum.VoteResult.WON
        )

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, id_: int, granted: bool) -> None:
        if id_ not in self.votes:
            self.votes[id_] = granted

    def tally_votes(self) -> tuple[int, int, quorum.VoteResult]:
        granted = rejected = 0
        for i, pr in self.progress.items():
            if pr.is_learner:
                continue
            v = self.votes.get(i)
            if v is None:
                continue
            if v:
                granted += 1
            else:
                rejected += 1
        res = quorum.joint_vote_result(self.config.voters, self.config.voters_outgoing, self.votes)
        return granted, rejected, res

    def vote_result(self, votes: dict[int, bool]) -> quorum.VoteResult:
        return quorum.joint_vote_result(self.config.voters, self.config.voters_outgoing, votes)

    def visit_ids(self) -> Iterable[int]:
        return sorted(self.progress)
