"""Membership changes on a ProgressTracker (etcd's ``raft/confchange``).

Rules:
1. ``simple`` changes at most one voter (adding/removing learners is free); any larger
   voter change must go through a joint configuration.
2. ``enter_joint`` copies the voters to the outgoing half and applies the changes to the
   incoming half; decisions then need a majority of both halves.
3. ``leave_joint`` drops the outgoing half, turns ``learners_next`` into learners (a voter
   demoted to learner while it was still in the outgoing half) and forgets nodes that are
   in neither half.
4. Nothing is mutated on error: every operation works on copies and returns the new
   (config, progress) pair for ``ProgressTracker.set``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from etcdpy.raft.errors import ConfChangeError
from etcdpy.raft.tracker import Progress, ProgressMap, ProgressTracker, TrackerConfig
from etcdpy.raft.types import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
)


def as_v2(cc: ConfChange | ConfChangeV2) -> ConfChangeV2:
    """A v1 ConfChange is a ConfChangeV2 with one change and the Auto transition."""
    if isinstance(cc, ConfChangeV2):
        return cc
    return ConfChangeV2(
        changes=(ConfChangeSingle(type=cc.type, node_id=cc.node_id),), context=cc.context
    )


def enter_joint(cc: ConfChangeV2) -> tuple[bool, bool]:
    """(auto_leave, uses_joint): whether this change goes through a joint config.

    More than one change, or an explicit joint transition, means joint consensus;
    auto_leave unless the transition is JointExplicit.
    """
    if cc.transition != ConfChangeTransition.Auto or len(cc.changes) > 1:
        auto_leave = cc.transition in (
            ConfChangeTransition.Auto,
            ConfChangeTransition.JointImplicit,
        )
        return auto_leave, True
    return False, False


def leave_joint(cc: ConfChangeV2) -> bool:
    """An empty ConfChangeV2 (no changes, Auto transition; context ignored) means "leave the
    joint config"."""
    return not cc.changes and cc.transition == ConfChangeTransition.Auto


@dataclass(slots=True)
class _Work:
    voters: set[int]
    voters_outgoing: set[int]
    learners: set[int]
    learners_next: set[int]
    auto_leave: bool
    progress: ProgressMap

    def freeze(self) -> tuple[TrackerConfig, ProgressMap]:
        cfg = TrackerConfig(
            voters=frozenset(self.voters),
            voters_outgoing=frozenset(self.voters_outgoing),
            learners=frozenset(self.learners),
            learners_next=frozenset(self.learners_next),
            auto_leave=self.auto_leave,
        )
        _check_invariants(cfg, self.progress)
        return cfg, self.progress


def _check_invariants(cfg: TrackerConfig, prs: ProgressMap) -> None:
    for ids in (cfg.voters, cfg.voters_outgoing, cfg.learners, cfg.learners_next):
        for i in ids:
            if i not in prs:
                raise ConfChangeError(f"no progress for {i}")
    for i in cfg.learners_next:
        if i not in cfg.voters_outgoing:
            raise ConfChangeError(f"{i} is in LearnersNext, but not Voters[1]")
        if prs[i].is_learner:
            raise ConfChangeError(f"{i} is in LearnersNext, but is already marked as learner")
    for i in cfg.learners:
        if i in cfg.voters_outgoing:
            raise ConfChangeError(f"{i} is in Learners and Voters[1]")
        if i in cfg.voters:
            raise ConfChangeError(f"{i} is in Learners and Voters[0]")
        if not prs[i].is_learner:
            raise ConfChangeError(f"{i} is in Learners, but is not marked as learner")
    if not cfg.voters_outgoing and cfg.auto_leave:
        raise ConfChangeError("AutoLeave must be false when not joint")


class Changer:
    """Computes a new configuration from the tracker's current one."""

    __slots__ = ("last_index", "tracker")

    def __init__(self, tracker: ProgressTracker, last_index: int) -> None:
        self.tracker = tracker
        self.last_index = last_index

    def _copy(self) -> _Work:
        c = self.tracker.config
        _check_invariants(c, self.tracker.progress)
        return _Work(
            voters=set(c.voters),
            voters_outgoing=set(c.voters_outgoing),
            learners=set(c.learners),
            learners_next=set(c.learners_next),
            auto_leave=c.auto_leave,
            progress={i: pr.clone() for i, pr in self.tracker.progress.items()},
        )

    def enter_joint(
        self, auto_leave: bool, ccs: Sequence[ConfChangeSingle]
    ) -> tuple[TrackerConfig, ProgressMap]:
        w = self._copy()
        if w.voters_outgoing:
            raise ConfChangeError("config is already joint")
        if not w.voters:
            raise ConfChangeError("can't make a zero-voter config joint")
        w.voters_outgoing = set(w.voters)
        self._apply(w, ccs)
        w.auto_leave = auto_leave
        return w.freeze()

    def leave_joint(self) -> tuple[TrackerConfig, ProgressMap]:
        w = self._copy()
        if not w.voters_outgoing:
            raise ConfChangeError("can't leave a non-joint config")
        for i in w.learners_next:
            w.learners.add(i)
            w.progress[i].is_learner = True
        w.learners_next = set()
        for i in w.voters_outgoing:
            if i not in w.voters and i not in w.learners:
                del w.progress[i]
        w.voters_outgoing = set()
        w.auto_leave = False
        return w.freeze()

    def simple(self, ccs: Sequence[ConfChangeSingle]) -> tuple[TrackerConfig, ProgressMap]:
        w = self._copy()
        if w.voters_outgoing:
            raise ConfChangeError("can't apply simple config change in joint config")
        self._apply(w, ccs)
        if len(self.tracker.config.voters ^ w.voters) > 1:
            raise ConfChangeError("more than one voter changed without entering joint config")
        return w.freeze()

    def _apply(self, w: _Work, ccs: Sequence[ConfChangeSingle]) -> None:
        for cc in ccs:
            if cc.node_id == 0:
                continue  # etcd ignores changes for node 0
            t = cc.type
            if t == ConfChangeType.AddNode:
                self._make_voter(w, cc.node_id)
            elif t == ConfChangeType.AddLearnerNode:
                self._make_learner(w, cc.node_id)
            elif t == ConfChangeType.RemoveNode:
                self._remove(w, cc.node_id)
            elif t == ConfChangeType.UpdateNode:
                pass
            else:
                raise ConfChangeError(f"unexpected conf type {t}")
        if not w.voters:
            raise ConfChangeError("removed all voters")

    def _init_progress(self, w: _Work, id_: int, is_learner: bool) -> None:
        if is_learner:
            w.learners.add(id_)
        else:
            w.voters.add(id_)
        # A new node starts probing at the leader's last index and counts as recently
        # active, so CheckQuorum does not trip before it had a chance to answer.
        w.progress[id_] = Progress(
            match=0,
            next_=self.last_index,
            max_inflight=self.tracker.max_inflight,
            is_learner=is_learner,
            recent_active=True,
        )

    def _make_voter(self, w: _Work, id_: int) -> None:
        pr = w.progress.get(id_)
        if pr is None:
            self._init_progress(w, id_, False)
            return
        pr.is_learner = False
        w.learners.discard(id_)
        w.learners_next.discard(id_)
        w.voters.add(id_)

    def _make_learner(self, w: _Work, id_: int) -> None:
        pr = w.progress.get(id_)
        if pr is None:
            self._init_progress(w, id_, True)
            return
        if pr.is_learner:
            return
        self._remove(w, id_)
        w.progress[id_] = pr
        # Still a voter in the outgoing half: it becomes a learner on leaving the joint
        # config; otherwise right away.
        if id_ in w.voters_outgoing:
            w.learners_next.add(id_)
        else:
            pr.is_learner = True
            w.learners.add(id_)

    def _remove(self, w: _Work, id_: int) -> None:
        if id_ not in w.progress:
            return
        w.voters.discard(id_)
        w.learners.discard(id_)
        w.learners_next.discard(id_)
        if id_ not in w.voters_outgoing:
            del w.progress[id_]


def restore(tracker: ProgressTracker, last_index: int, cs: ConfState) -> ConfState:
    """Rebuild the tracker's configuration from a ConfState (snapshot or storage).

    Replays it as changes: the outgoing voters first (one simple change each), then the
    incoming side as one joint change, exactly as a live cluster would have got there.
    """

    def step_simple(cc: ConfChangeSingle) -> None:
        cfg, prs = Changer(tracker, last_index).simple([cc])
        tracker.set(cfg, prs)

    add = ConfChangeType.AddNode
    if not cs.voters_outgoing:
        for i in cs.voters:
            step_simple(ConfChangeSingle(add, i))
        for i in cs.learners:
            step_simple(ConfChangeSingle(ConfChangeType.AddLearnerNode, i))
    else:
        for i in cs.voters_outgoing:
            step_simple(ConfChangeSingle(add, i))
        incoming: list[ConfChangeSingle] = []
        incoming += [ConfChangeSingle(ConfChangeType.RemoveNode, i) for i in cs.voters_outgoing]
        incoming += [ConfChangeSingle(add, i) for i in cs.voters]
        incoming += [ConfChangeSingle(ConfChangeType.AddLearnerNode, i) for i in cs.learners]
        incoming += [ConfChangeSingle(ConfChangeType.AddLearnerNode, i) for i in cs.learners_next]
        cfg, prs = Changer(tracker, last_index).enter_joint(cs.auto_leave, incoming)
        tracker.set(cfg, prs)
    return tracker.conf_state()
