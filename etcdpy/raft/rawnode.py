"""RawNode: the application's handle on one Raft node (etcd's ``rawnode.go``).

The driving loop (server/node.py, tests/support/sim.py):

    feed inputs: tick(), step(m), propose(data), read_index(ctx), ...
    if has_ready():
        rd = ready()
        persist rd.hard_state + rd.entries + rd.snapshot   (one durable write)
        send rd.messages                                   (only after persisting)
        apply rd.committed_entries                         (conf changes via apply_conf_change)
        advance(rd)

Persist before send is what makes a granted vote or an acknowledged entry durable before
anyone relies on it. Every call is synchronous and deterministic given the config's rng.

Transport duties (etcd's contract): for every MsgSnap sent, call
``report_snapshot(to, failed)`` on the sender once its fate is known (delivered: False;
dropped/peer down: True), else the leader keeps that follower in StateSnapshot; on a
failed send of other messages, ``report_unreachable(to)`` lets the leader fall back from
optimistic replication to probing. ``step`` raises StepPeerNotFound for responses from
peers not in the configuration and StepLocalMsg for local-only message types; callers
driving a network may ignore both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from etcdpy.raft import confchange_codec
from etcdpy.raft.confchange import as_v2
from etcdpy.raft.config import RaftConfig
from etcdpy.raft.core import Raft
from etcdpy.raft.errors import ConfigInvalid, ProposalDropped, StepLocalMsg, StepPeerNotFound
from etcdpy.raft.storage import LogStorage
from etcdpy.raft.tracker import ProgressState
from etcdpy.raft.types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    NONE,
    ConfChange,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    SoftState,
)

MT = MessageType

_LOCAL_MSGS = frozenset(
    {
        MT.MsgHup,
        MT.MsgBeat,
        MT.MsgUnreachable,
        MT.MsgSnapStatus,
        MT.MsgCheckQuorum,
    }
)
_RESPONSE_MSGS = frozenset(
    {
        MT.MsgAppResp,
        MT.MsgVoteResp,
        MT.MsgHeartbeatResp,
        MT.MsgUnreachable,
        MT.MsgReadIndexResp,
        MT.MsgPreVoteResp,
    }
)


def is_local_msg(t: MessageType) -> bool:
    return t in _LOCAL_MSGS


def is_response_msg(t: MessageType) -> bool:
    return t in _RESPONSE_MSGS


@dataclass(frozen=True, slots=True)
class ProgressStatus:
    match: int
    next: int
    state: ProgressState
    is_learner: bool
    recent_active: bool
    paused: bool
    pending_snapshot: int
    inflight: int


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    lead_transferee: int
    conf_state: ConfState
    progress: Mapping[int, ProgressStatus] = field(default_factory=dict)
    """Filled on the leader only (as etcd's Status)."""


@dataclass(frozen=True, slots=True)
class Peer:
    id: int
    context: bytes = b""


class RawNode:
    __slots__ = ("_prev_hard_state", "_prev_soft_state", "raft")

    def __init__(self, config: RaftConfig, storage: LogStorage) -> None:
        self.raft = Raft(config, storage)
        self._prev_soft_state = self.raft.soft_state()
        self._prev_hard_state = self.raft.hard_state()

    # --- inputs --------------------------------------------------------------------

    def tick(self) -> None:
        """Advance the logical clock by one tick (heartbeat / election timers)."""
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (PreVote first when enabled)."""
        self.raft.step(Message(type=MT.MsgHup, from_=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Propose a normal entry; raises ProposalDropped if it cannot be accepted here."""
        self.raft.step(Message(type=MT.MsgProp, from_=self.raft.id, entries=(Entry(data=data),)))

    def propose_batch(self, datas: Sequence[bytes]) -> None:
        """Propose several normal entries at once (one append, one broadcast); all or
        none: raises ProposalDropped if they cannot be accepted here."""
        if datas:
            self.raft.step(
                Message(
                    type=MT.MsgProp,
                    from_=self.raft.id,
                    entries=tuple([Entry(data=d) for d in datas]),
                )
            )

    def propose_conf_change(self, cc: ConfChange | ConfChangeV2) -> None:
        """Propose a membership change; apply it with apply_conf_change once committed."""
        et, data = confchange_codec.encode(cc)
        self.raft.step(
            Message(type=MT.MsgProp, from_=self.raft.id, entries=(Entry(type=et, data=data),))
        )

    def apply_conf_change(self, cc: ConfChange | ConfChangeV2) -> ConfState:
        """Apply a committed conf change to the tracker; returns the new ConfState."""
        return self.raft.apply_conf_change(as_v2(cc))

    def step(self, m: Message) -> None:
        """Feed a message received from a peer.

        A proposal forwarded by a peer (``to`` set) that this node cannot accept is
        dropped silently (the proposer times out and retries); a local MsgProp (``to``
        unset, e.g. several entries proposed at once) raises ProposalDropped like
        ``propose``.
        """
        t = m.type
        if t in _LOCAL_MSGS:
            raise StepLocalMsg()
        if t in _RESPONSE_MSGS and m.from_ not in self.raft.prs.progress:
            raise StepPeerNotFound()
        if (
            (t == MT.MsgProp and not m.entries)
            or (t == MT.MsgReadIndex and len(m.entries) != 1)
            or (t == MT.MsgSnap and m.snapshot is None)
        ):
            return  # malformed peer input: drop it rather than break the core
        try:
            self.raft.step(m)
        except ProposalDropped:
            # Raise for a proposal made here (``to`` unset, e.g. a batch built by the
            # driver); a proposal that came over the network (``to`` set) is dropped.
            if t != MT.MsgProp or m.to == NONE:
                raise

    def read_index(self, ctx: bytes) -> None:
        """Request a linearizable read point; a ReadState with ``ctx`` appears in a Ready."""
        self.raft.step(
            Message(type=MT.MsgReadIndex, from_=self.raft.id, entries=(Entry(data=ctx),))
        )

    def transfer_leader(self, transferee: int) -> None:
        self.raft.step(Message(type=MT.MsgTransferLeader, from_=transferee))

    def report_unreachable(self, id: int) -> None:
        """The transport failed to deliver to ``id``; the leader falls back to probing."""
        self.raft.step(Message(type=MT.MsgUnreachable, from_=id))

    def report_snapshot(self, id: int, failed: bool) -> None:
        """Outcome of sending a MsgSnap to ``id``: required, see the module docstring."""
        self.raft.step(Message(type=MT.MsgSnapStatus, from_=id, reject=failed))

    # --- Ready ---------------------------------------------------------------------

    def has_ready(self) -> bool:
        r = self.raft
        if r.pending_bcast:
            r.flush_append()
        if r.msgs or r.read_states:
            return True
        log = r.raft_log
        if log.unstable.entries or log.unstable.snapshot is not None:
            return True
        if r.lead != self._prev_soft_state.lead or r.state != self._prev_soft_state.raft_state:
            return True
        hs = self._prev_hard_state
        if (r.term != hs.term or r.vote != hs.vote or log.committed != hs.commit) and not (
            r.term == 0 and r.vote == NONE and log.committed == 0
        ):
            return True
        return log.has_next_ents()

    def ready(self) -> Ready:
        """Everything to persist, send and apply now; call advance(rd) when done."""
        r = self.raft
        if r.pending_bcast:
            r.flush_append()
        log = r.raft_log
        prev_soft = self._prev_soft_state
        soft = None
        if r.lead != prev_soft.lead or r.state != prev_soft.raft_state:
            soft = SoftState(lead=r.lead, raft_state=r.state)
        prev_hs = self._prev_hard_state
        term_or_vote = r.term != prev_hs.term or r.vote != prev_hs.vote
        if term_or_vote or log.committed != prev_hs.commit:
            hs = HardState(term=r.term, vote=r.vote, commit=log.committed)
        else:
            hs = EMPTY_HARD_STATE
        snap = log.unstable.snapshot
        ents = log.unstable.entries
        rd = Ready(
            soft_state=soft,
            hard_state=hs,
            read_states=tuple(r.read_states) if r.read_states else (),
            entries=tuple(ents) if ents else (),
            snapshot=snap if snap is not None else EMPTY_SNAPSHOT,
            committed_entries=log.next_ents() if log.has_next_ents() else (),
            messages=tuple(r.msgs),
            # A snapshot must be durable too before the MsgAppResp acknowledging it leaves
            # (etcd leaves this to the application; we make it explicit).
            must_sync=bool(ents) or snap is not None or term_or_vote,
        )
        # Accept the Ready: these outputs are now the application's.
        if rd.soft_state is not None:
            self._prev_soft_state = rd.soft_state
        r.read_states = []
        r.msgs = []
        return rd

    def advance(self, rd: Ready) -> None:
        """The application persisted, sent and applied ``rd``."""
        if not rd.hard_state.is_empty():
            self._prev_hard_state = rd.hard_state
        self.raft.advance(rd.entries, rd.snapshot, rd.committed_entries)

    # --- introspection / setup -------------------------------------------------------

    def status(self) -> Status:
        r = self.raft
        progress: dict[int, ProgressStatus] = {}
        if r.state == r.state.LEADER:
            for id_, pr in r.prs.progress.items():
                progress[id_] = ProgressStatus(
                    match=pr.match,
                    next=pr.next,
                    state=pr.state,
                    is_learner=pr.is_learner,
                    recent_active=pr.recent_active,
                    paused=pr.is_paused(),
                    pending_snapshot=pr.pending_snapshot,
                    inflight=pr.inflights.count(),
                )
        return Status(
            id=r.id,
            hard_state=r.hard_state(),
            soft_state=r.soft_state(),
            applied=r.raft_log.applied,
            lead_transferee=r.lead_transferee,
            conf_state=r.prs.conf_state(),
            progress=progress,
        )

    def bootstrap(self, peers: Sequence[int | Peer]) -> None:
        """Start a brand-new cluster: conf-change entries adding ``peers`` at term 1.

        The entries come out as committed entries of the first Ready (with hard state
        term 1) so the application records the membership like any other conf change;
        applying them again there is harmless. Storage must be empty.
        """
        if not peers:
            raise ConfigInvalid("must provide at least one peer to Bootstrap")
        r = self.raft
        if r.raft_log.storage.last_index() != 0:
            raise ConfigInvalid("can't bootstrap a nonempty Storage")
        # Nothing was persisted: the first Ready must carry the hard state.
        self._prev_hard_state = EMPTY_HARD_STATE
        r.become_follower(1, NONE)
        ps = [p if isinstance(p, Peer) else Peer(p) for p in peers]
        ents = []
        for i, p in enumerate(ps):
            data = confchange_codec.encode_conf_change(
                ConfChange(type=ConfChangeType.AddNode, node_id=p.id, context=p.context)
            )
            ents.append(Entry(term=1, index=i + 1, type=EntryType.CONF_CHANGE, data=data))
        r.raft_log.append(ents)
        r.raft_log.committed = len(ents)
        for p in ps:
            r.apply_conf_change(as_v2(ConfChange(type=ConfChangeType.AddNode, node_id=p.id)))
