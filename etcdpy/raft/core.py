"""The Raft state machine (etcd's ``raft.go``): pure, deterministic, sans-IO.

``Raft.step(m)`` and ``Raft.tick()`` are the only inputs; outputs accumulate in ``msgs``
and ``read_states`` and in the log, and are handed out by ``RawNode.ready()``.

Rules:
1. Persist before send: every message produced here leaves the node only after the
   Ready that carries it was persisted, so a granted vote or an acknowledged append is
   durable before the peer learns about it (Raft §5.2; PySyncObj #84, #201).
2. Only entries of the current term are committed by counting replicas; older entries
   are committed indirectly (Raft §5.4.2, figure 8; PySyncObj #169). A new leader appends
   an empty entry so this happens promptly.
3. ``committed`` never decreases (PySyncObj #166).
4. PreVote: a node asks whether it could win before bumping its term, so a partitioned
   node rejoining does not depose a healthy leader (thesis §9.6).
5. CheckQuorum: a leader that has not heard from a quorum within an election timeout
   steps down; a follower that heard from a leader within the timeout ignores votes,
   unless the candidate was told to campaign by a leadership transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from etcdpy.raft import confchange_codec
from etcdpy.raft.confchange import Changer, as_v2, enter_joint, leave_joint, restore
from etcdpy.raft.config import NO_LIMIT, RaftConfig, ReadOnlyOption
from etcdpy.raft.errors import LogInvariantError, ProposalDropped
from etcdpy.raft.log import RaftLog
from etcdpy.raft.quorum import VoteResult
from etcdpy.raft.read_only import ReadOnly
from etcdpy.raft.storage import (
    ErrCompacted,
    ErrSnapshotTemporarilyUnavailable,
    ErrUnavailable,
    LogStorage,
)
from etcdpy.raft.tracker import Progress, ProgressMap, ProgressState, ProgressTracker, TrackerConfig
from etcdpy.raft.types import (
    NONE,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
)

MT = MessageType

CAMPAIGN_TRANSFER = b"CampaignTransfer"
"""Context of a MsgVote sent because the leader asked us to take over: it overrides the
followers' leader lease (CheckQuorum) since the old leader is stepping aside on purpose."""


class CampaignType(Enum):
    PRE_ELECTION = "CampaignPreElection"
    ELECTION = "CampaignElection"
    TRANSFER = "CampaignTransfer"


def vote_resp_type(t: MessageType) -> MessageType:
    if t == MT.MsgVote:
        return MT.MsgVoteResp
    if t == MT.MsgPreVote:
        return MT.MsgPreVoteResp
    raise ValueError(f"not a vote message: {t!r}")


def _num_pending_conf(ents: Sequence[Entry]) -> int:
    return sum(1 for e in ents if e.type != EntryType.NORMAL)


def _payload_size(ents: Sequence[Entry]) -> int:
    return sum(len(e.data) for e in ents)


class Raft:
    """One node's Raft state. Driven through RawNode; see module docstring for rules."""

    def __init__(self, config: RaftConfig, storage: LogStorage) -> None:
        config.validate()
        self.id = config.id
        self.config = config
        self.rng = config.rng
        self.raft_log = RaftLog(storage, config.effective_max_committed_size_per_ready)
        hs, cs = storage.initial_state()
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.FOLLOWER
        self.is_learner = False
        self.max_msg_size = config.max_size_per_msg or NO_LIMIT
        self.max_uncommitted_size = config.effective_max_uncommitted_entries_size
        self.prs = ProgressTracker(config.max_inflight_msgs)
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly(config.read_only_option)
        self.pending_read_index_messages: list[Message] = []
        self.pending_bcast = False
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.heartbeat_timeout = config.heartbeat_tick
        self.election_timeout = config.election_tick
        self.randomized_election_timeout = 0
        self.disable_proposal_forwarding = config.disable_proposal_forwarding
        self.step_down_on_removal = config.step_down_on_removal

        restore(self.prs, self.raft_log.last_index(), cs)
        self._update_is_learner()
        if not hs.is_empty():
            self._load_state(hs)
        if config.applied > 0:
            self.raft_log.applied_to(config.applied)
        self.become_follower(self.term, NONE)

    # --- state ---------------------------------------------------------------------

    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, raft_state=self.state)

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.raft_log.committed)

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.raft_log.committed or hs.commit > self.raft_log.last_index():
            raise LogInvariantError(
                f"{self.id} state.commit {hs.commit} is out of range "
                f"[{self.raft_log.committed}, {self.raft_log.last_index()}]"
            )
        self.raft_log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def _update_is_learner(self) -> None:
        pr = self.prs.progress.get(self.id)
        self.is_learner = pr is not None and pr.is_learner

    def promotable(self) -> bool:
        """Whether this node may campaign: a voter without a snapshot being installed."""
        pr = self.prs.progress.get(self.id)
        return pr is not None and not pr.is_learner and not self.raft_log.has_pending_snapshot()

    # --- sending -------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        self.msgs.append(m)

    def _send_append(self, to: int) -> None:
        self._maybe_send_append(to, True)

    def _maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        """Send entries (or a snapshot when they are compacted) to ``to`` if flow control
        allows; False when nothing was sent."""
        pr = self.prs.progress[to]
        if pr.is_paused():
            return False
        log = self.raft_log
        if not send_if_empty and pr.next > log.last_index():
            return False  # fast path: nothing new to send
        try:
            term = log.term(pr.next - 1)
            ents = log.entries(pr.next, self.max_msg_size)
        except (ErrCompacted, ErrUnavailable):
            return self._maybe_send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        prev = pr.next - 1
        if ents:
            if pr.state == ProgressState.REPLICATE:
                last = ents[-1].index
                pr.optimistic_update(last)
                pr.inflights.add(last)
            elif pr.state == ProgressState.PROBE:
                pr.probe_sent = True
            else:
                raise LogInvariantError(f"{self.id} is sending append in unhandled state")
        self._send(
            Message(
                type=MT.MsgApp,
                to=to,
                from_=self.id,
                term=self.term,
                log_term=term,
                index=prev,
                entries=tuple(ents),
                commit=log.committed,
            )
        )
        return True

    def _maybe_send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False
        try:
            snap = self.raft_log.snapshot()
        except ErrSnapshotTemporarilyUnavailable:
            return False
        if snap.is_empty():
            raise LogInvariantError("need non-empty snapshot")
        pr.become_snapshot(snap.metadata.index)
        self._send(Message(type=MT.MsgSnap, to=to, from_=self.id, term=self.term, snapshot=snap))
        return True

    def _send_heartbeat(self, to: int, ctx: bytes) -> None:
        # min(match, committed): a follower must never be told to commit past what it is
        # known to hold, or it could commit an entry it does not have.
        pr = self.prs.progress[to]
        commit = min(pr.match, self.raft_log.committed)
        self._send(
            Message(
                type=MT.MsgHeartbeat,
                to=to,
                from_=self.id,
                term=self.term,
                commit=commit,
                context=ctx,
            )
        )

    def bcast_append(self) -> None:
        for id_ in self.prs.progress:
            if id_ != self.id:
                self._send_append(id_)

    def bcast_heartbeat(self) -> None:
        self._bcast_heartbeat_with_ctx(self.read_only.last_pending_request_ctx())

    def _bcast_heartbeat_with_ctx(self, ctx: bytes) -> None:
        for id_ in self.prs.progress:
            if id_ != self.id:
                self._send_heartbeat(id_, ctx)

    # --- transitions ---------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._reset_randomized_election_timeout()
        self.lead_transferee = NONE
        self.prs.reset_votes()
        last = self.raft_log.last_index()
        for id_, pr in self.prs.progress.items():
            npr = Progress(
                match=0,
                next_=last + 1,
                max_inflight=self.prs.max_inflight,
                is_learner=pr.is_learner,
            )
            if id_ == self.id:
                npr.match = last
            self.prs.progress[id_] = npr
        self.pending_conf_index = 0
        self.uncommitted_size = 0
        self.read_only = ReadOnly(self.read_only.option)
        self.pending_read_index_messages = []
        self.pending_bcast = False

    def _reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.election_timeout + self.rng.randrange(
            self.election_timeout
        )

    def become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.state = StateType.FOLLOWER

    def become_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise LogInvariantError("invalid transition [leader -> candidate]")
        self._reset(self.term + 1)
        self.vote = self.id
        self.state = StateType.CANDIDATE

    def become_pre_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise LogInvariantError("invalid transition [leader -> pre-candidate]")
        # Term and vote are untouched: a pre-election changes no persisted state.
        self.prs.reset_votes()
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE

    def become_leader(self) -> None:
        if self.state == StateType.FOLLOWER:
            raise LogInvariantError("invalid transition [follower -> leader]")
        self._reset(self.term)
        self.lead = self.id
        self.state = StateType.LEADER
        self.prs.progress[self.id].become_replicate()
        # Conf changes in the log we have not applied yet may be pending: be conservative.
        self.pending_conf_index = self.raft_log.last_index()
        empty = Entry()
        if not self._append_entry([empty]):
            raise LogInvariantError("empty entry was dropped")
        # The empty entry does not count against the uncommitted-size limit.
        self._reduce_uncommitted_size([empty])

    # --- ticking -------------------------------------------------------------------

    def tick(self) -> None:
        if self.state == StateType.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MT.MsgHup, from_=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MT.MsgCheckQuorum, from_=self.id))
            # A transfer that did not finish within an election timeout is abandoned.
            if self.state == StateType.LEADER and self.lead_transferee != NONE:
                self.lead_transferee = NONE
        if self.state != StateType.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MT.MsgBeat, from_=self.id))

    # --- elections -----------------------------------------------------------------

    def hup(self, t: CampaignType) -> None:
        if self.state == StateType.LEADER:
            return
        if not self.promotable():
            return
        log = self.raft_log
        if log.committed > log.applied:
            # A pending (committed, unapplied) conf change could change whether we may
            # campaign at all: wait until it is applied.
            try:
                ents = log.slice(log.applied + 1, log.committed + 1)
            except ErrCompacted:
                ents = ()
            if _num_pending_conf(ents):
                return
        self.campaign(t)

    def campaign(self, t: CampaignType) -> None:
        if t == CampaignType.PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.MsgPreVote
            term = self.term + 1  # the term we would use; not adopted yet
        else:
            self.become_candidate()
            vote_msg = MT.MsgVote
            term = self.term
        _, _, res = self._poll(self.id, vote_resp_type(vote_msg), True)
        if res == VoteResult.WON:
            # Single-node cluster: won right away.
            if t == CampaignType.PRE_ELECTION:
                self.campaign(CampaignType.ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if t == CampaignType.TRANSFER else b""
        last_index = self.raft_log.last_index()
        last_term = self.raft_log.last_term()
        for id_ in sorted(self.prs.voter_ids()):
            if id_ == self.id:
                continue
            self._send(
                Message(
                    type=vote_msg,
                    to=id_,
                    from_=self.id,
                    term=term,
                    index=last_index,
                    log_term=last_term,
                    context=ctx,
                )
            )

    def _poll(self, id_: int, t: MessageType, v: bool) -> tuple[int, int, VoteResult]:
        self.prs.record_vote(id_, v)
        return self.prs.tally_votes()

    # --- step ----------------------------------------------------------------------

    def step(self, m: Message) -> None:
        """Process one message (local messages have term 0). Raises ProposalDropped."""
        t = m.type
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if t == MT.MsgVote or t == MT.MsgPreVote:
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.election_timeout
                )
                if not force and in_lease:
                    # We heard from a leader recently: do not let a (possibly partitioned
                    # and rejoining) node disrupt it (thesis §4.2.3).
                    return
            if t == MT.MsgPreVote:
                pass  # never change our term in response to a PreVote
            elif t == MT.MsgPreVoteResp and not m.reject:
                # Granted pre-votes carry the term we would campaign at; we adopt it only
                # once we win the pre-election.
                pass
            elif t == MT.MsgApp or t == MT.MsgHeartbeat or t == MT.MsgSnap:
                self.become_follower(m.term, m.from_)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and (t == MT.MsgHeartbeat or t == MT.MsgApp):
                # A stale leader (e.g. healed from a partition) would never learn about
                # the newer term otherwise, since we ignore its messages and PreVote/
                # CheckQuorum keep us from bumping its term with a vote: tell it.
                self._send(Message(type=MT.MsgAppResp, to=m.from_, from_=self.id, term=self.term))
            elif t == MT.MsgPreVote:
                self._send(
                    Message(
                        type=MT.MsgPreVoteResp,
                        to=m.from_,
                        from_=self.id,
                        term=self.term,
                        reject=True,
                    )
                )
            return

        if t == MT.MsgHup:
            self.hup(CampaignType.PRE_ELECTION if self.pre_vote else CampaignType.ELECTION)
        elif t == MT.MsgVote or t == MT.MsgPreVote:
            can_vote = (
                self.vote == m.from_
                or (self.vote == NONE and self.lead == NONE)
                or (t == MT.MsgPreVote and m.term > self.term)
            )
            if can_vote and self.raft_log.is_up_to_date(m.index, m.log_term):
                # The response carries the candidate's term (for PreVote: the future term)
                # so the candidate does not mistake it for a stale answer.
                self._send(Message(type=vote_resp_type(t), to=m.from_, from_=self.id, term=m.term))
                if t == MT.MsgVote:
                    self.election_elapsed = 0
                    self.vote = m.from_
            else:
                self._send(
                    Message(
                        type=vote_resp_type(t),
                        to=m.from_,
                        from_=self.id,
                        term=self.term,
                        reject=True,
                    )
                )
        else:
            st = self.state
            if st == StateType.LEADER:
                self._step_leader(m)
            elif st == StateType.FOLLOWER:
                self._step_follower(m)
            else:
                self._step_candidate(m)

    # --- leader --------------------------------------------------------------------

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == MT.MsgBeat:
            self.bcast_heartbeat()
            return
        if t == MT.MsgCheckQuorum:
            pr = self.prs.progress.get(self.id)
            if pr is not None:
                pr.recent_active = True
            if not self.prs.quorum_active():
                self.become_follower(self.term, NONE)
            for id_, pr in self.prs.progress.items():
                if id_ != self.id:
                    pr.recent_active = False
            return
        if t == MT.MsgProp:
            self._handle_propose(m)
            return
        if t == MT.MsgReadIndex:
            if self.prs.is_singleton():
                resp = self._response_to_read_index_req(m, self.raft_log.committed)
                if resp is not None:
                    self._send(resp)
                return
            # Raft §6.4: a new leader does not know the commit index of the previous term
            # until it committed an entry of its own term; postpone until then.
            if not self._committed_entry_in_current_term():
                self.pending_read_index_messages.append(m)
                return
            self._send_read_index_response(m)
            return

        pr = self.prs.progress.get(m.from_)
        if pr is None:
            return
        if t == MT.MsgAppResp:
            self._handle_append_response(m, pr)
        elif t == MT.MsgHeartbeatResp:
            pr.recent_active = True
            pr.probe_sent = False
            # Free one slot of a full window so a stalled stream can make progress.
            if pr.state == ProgressState.REPLICATE and pr.inflights.full():
                pr.inflights.free_first_one()
            if pr.match < self.raft_log.last_index():
                self._send_append(m.from_)
            if self.read_only.option != ReadOnlyOption.SAFE or not m.context:
                return
            acks = self.read_only.recv_ack(m.from_, m.context)
            if acks is None or self.prs.vote_result(acks) != VoteResult.WON:
                return
            for rs in self.read_only.advance(m.context):
                resp = self._response_to_read_index_req(rs.req, rs.index)
                if resp is not None:
                    self._send(resp)
        elif t == MT.MsgSnapStatus:
            if pr.state != ProgressState.SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Success: wait for the follower's MsgAppResp before sending more; failure:
            # wait a heartbeat before retrying.
            pr.probe_sent = True
        elif t == MT.MsgUnreachable:
            # In optimistic replication a lost MsgApp is likely: fall back to probing.
            if pr.state == ProgressState.REPLICATE:
                pr.become_probe()
        elif t == MT.MsgTransferLeader:
            if pr.is_learner:
                return
            transferee = m.from_
            if self.lead_transferee != NONE:
                if self.lead_transferee == transferee:
                    return
                self.lead_transferee = NONE
            if transferee == self.id:
                return
            # The transfer must finish within one election timeout.
            self.election_elapsed = 0
            self.lead_transferee = transferee
            if pr.match == self.raft_log.last_index():
                self._send_timeout_now(transferee)
            else:
                self._send_append(transferee)

    def _handle_propose(self, m: Message) -> None:
        if not m.entries:
            raise ValueError("stepped empty MsgProp")
        if self.id not in self.prs.progress:
            raise ProposalDropped("raft proposal dropped: leader removed from configuration")
        if self.lead_transferee != NONE:
            raise ProposalDropped("raft proposal dropped: leadership transfer in progress")
        ents = list(m.entries)
        for i, e in enumerate(ents):
            if e.type == EntryType.NORMAL:
                continue
            try:
                cc = as_v2(confchange_codec.decode(e.type, e.data))
            except confchange_codec.ConfChangeDecodeError:
                # Undecodable (a forwarded proposal from a broken peer): keep the slot as a
                # no-op rather than log something no member could apply.
                ents[i] = Entry(type=EntryType.NORMAL)
                continue
            already_pending = self.pending_conf_index > self.raft_log.applied
            already_joint = self.prs.config.joint
            wants_leave_joint = not cc.changes
            refused = (
                already_pending
                or (already_joint and not wants_leave_joint)
                or (not already_joint and wants_leave_joint)
            )
            if refused:
                # Keep the proposal's position but make it a no-op (etcd does the same).
                ents[i] = Entry(type=EntryType.NORMAL)
            else:
                self.pending_conf_index = self.raft_log.last_index() + i + 1
        if not self._append_entry(ents):
            raise ProposalDropped("raft proposal dropped: too many uncommitted entries")
        # Broadcast lazily (flush_append): many proposals between two Readies then travel
        # in one MsgApp per follower instead of one each. Nothing is lost by waiting:
        # messages only leave through the next Ready anyway.
        self.pending_bcast = True

    def flush_append(self) -> None:
        """Send the appends deferred by proposals (called when a Ready is built)."""
        if self.pending_bcast:
            self.pending_bcast = False
            if self.state != StateType.LEADER:
                return
            for id_ in self.prs.progress:
                if id_ != self.id:
                    # As many size-limited messages as the inflight window allows.
                    while self._maybe_send_append(id_, False):
                        pass

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                next_probe = self.raft_log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, next_probe):
                if pr.state == ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.from_)
            return
        old_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            return
        if pr.state == ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state == ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
            pr.become_probe()
            pr.become_replicate()
        elif pr.state == ProgressState.REPLICATE:
            pr.inflights.free_le(m.index)
        if self.maybe_commit():
            self._release_pending_read_index_messages()
            self.bcast_append()
        elif old_paused:
            self._send_append(m.from_)
        # Flow control may now allow several (size-limited) messages at once.
        while self._maybe_send_append(m.from_, False):
            pass
        if m.from_ == self.lead_transferee and pr.match == self.raft_log.last_index():
            self._send_timeout_now(m.from_)

    def _send_timeout_now(self, to: int) -> None:
        self._send(Message(type=MT.MsgTimeoutNow, to=to, from_=self.id, term=self.term))

    def maybe_commit(self) -> bool:
        return self.raft_log.maybe_commit(self.prs.committed(), self.term)

    def _committed_entry_in_current_term(self) -> bool:
        log = self.raft_log
        return log.zero_term_on_compacted(log.committed) == self.term

    def _release_pending_read_index_messages(self) -> None:
        if not self.pending_read_index_messages:
            return
        if not self._committed_entry_in_current_term():
            return
        msgs = self.pending_read_index_messages
        self.pending_read_index_messages = []
        for m in msgs:
            self._send_read_index_response(m)

    def _send_read_index_response(self, m: Message) -> None:
        if self.read_only.option == ReadOnlyOption.SAFE:
            ctx = m.entries[0].data
            self.read_only.add_request(self.raft_log.committed, m)
            self.read_only.recv_ack(self.id, ctx)  # the leader acks itself
            self._bcast_heartbeat_with_ctx(ctx)
        else:
            resp = self._response_to_read_index_req(m, self.raft_log.committed)
            if resp is not None:
                self._send(resp)

    def _response_to_read_index_req(self, req: Message, read_index: int) -> Message | None:
        if req.from_ == NONE or req.from_ == self.id:
            self.read_states.append(ReadState(index=read_index, request_ctx=req.entries[0].data))
            return None
        return Message(
            type=MT.MsgReadIndexResp,
            to=req.from_,
            from_=self.id,
            term=self.term,
            index=read_index,
            entries=req.entries,
        )

    # --- candidate -----------------------------------------------------------------

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        my_vote_resp = (
            MT.MsgPreVoteResp if self.state == StateType.PRE_CANDIDATE else MT.MsgVoteResp
        )
        if t == MT.MsgProp:
            raise ProposalDropped("raft proposal dropped: no leader")
        if t == MT.MsgApp:
            self.become_follower(m.term, m.from_)
            self._handle_append_entries(m)
        elif t == MT.MsgHeartbeat:
            self.become_follower(m.term, m.from_)
            self._handle_heartbeat(m)
        elif t == MT.MsgSnap:
            self.become_follower(m.term, m.from_)
            self._handle_snapshot(m)
        elif t == my_vote_resp:
            _, _, res = self._poll(m.from_, t, not m.reject)
            if res == VoteResult.WON:
                if self.state == StateType.PRE_CANDIDATE:
                    self.campaign(CampaignType.ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif res == VoteResult.LOST:
                # Pre-vote rejections carry a higher term only if the rejecter has one;
                # in any case we go back to follower and wait.
                self.become_follower(self.term, NONE)

    # --- follower ------------------------------------------------------------------

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MT.MsgProp:
            if self.lead == NONE:
                raise ProposalDropped("raft proposal dropped: no leader")
            if self.disable_proposal_forwarding:
                raise ProposalDropped("raft proposal dropped: forwarding disabled")
            self._send(
                Message(type=MT.MsgProp, to=self.lead, from_=m.from_ or self.id, entries=m.entries)
            )
        elif t == MT.MsgApp:
            self.election_elapsed = 0
            self.lead = m.from_
            self._handle_append_entries(m)
        elif t == MT.MsgHeartbeat:
            self.election_elapsed = 0
            self.lead = m.from_
            self._handle_heartbeat(m)
        elif t == MT.MsgSnap:
            self.election_elapsed = 0
            self.lead = m.from_
            self._handle_snapshot(m)
        elif t == MT.MsgTransferLeader:
            if self.lead == NONE:
                return
            self._send(Message(type=MT.MsgTransferLeader, to=self.lead, from_=m.from_))
        elif t == MT.MsgTimeoutNow:
            # The leader asked us to take over: skip PreVote and the lease check.
            self.hup(CampaignType.TRANSFER)
        elif t == MT.MsgReadIndex:
            if self.lead == NONE:
                return
            self._send(
                Message(
                    type=MT.MsgReadIndex, to=self.lead, from_=m.from_ or self.id, entries=m.entries
                )
            )
        elif t == MT.MsgReadIndexResp:
            if len(m.entries) != 1:
                return
            self.read_states.append(ReadState(index=m.index, request_ctx=m.entries[0].data))

    def _handle_append_entries(self, m: Message) -> None:
        log = self.raft_log
        if m.index < log.committed:
            self._send(
                Message(
                    type=MT.MsgAppResp,
                    to=m.from_,
                    from_=self.id,
                    term=self.term,
                    index=log.committed,
                )
            )
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(
                Message(
                    type=MT.MsgAppResp, to=m.from_, from_=self.id, term=self.term, index=last_new
                )
            )
            return
        # Reject with a hint: the largest index at or below m.index whose term is
        # <= m.log_term, so the leader can skip a whole term of mismatches at once.
        hint = min(m.index, log.last_index())
        hint = log.find_conflict_by_term(hint, m.log_term)
        hint_term = log.zero_term_on_compacted(hint)
        self._send(
            Message(
                type=MT.MsgAppResp,
                to=m.from_,
                from_=self.id,
                term=self.term,
                index=m.index,
                reject=True,
                reject_hint=hint,
                log_term=hint_term,
            )
        )

    def _handle_heartbeat(self, m: Message) -> None:
        self.raft_log.commit_to(m.commit)
        self._send(
            Message(
                type=MT.MsgHeartbeatResp,
                to=m.from_,
                from_=self.id,
                term=self.term,
                context=m.context,
            )
        )

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        if self._restore(m.snapshot):
            idx = self.raft_log.last_index()
        else:
            idx = self.raft_log.committed
        self._send(
            Message(type=MT.MsgAppResp, to=m.from_, from_=self.id, term=self.term, index=idx)
        )

    def _restore(self, s: Snapshot) -> bool:
        """Install a snapshot from the leader; False if it is stale or not for us."""
        md = s.metadata
        if md.index <= self.raft_log.committed:
            return False
        if self.state != StateType.FOLLOWER:
            # Defense in depth: only a follower installs snapshots.
            self.become_follower(self.term + 1, NONE)
            return False
        cs = md.conf_state
        if not (self.id in cs.voters or self.id in cs.learners or self.id in cs.voters_outgoing):
            return False
        if self.raft_log.match_term(md.index, md.term):
            # We already have the snapshot's last entry: fast-forward the commit index.
            self.raft_log.commit_to(md.index)
            return False
        self.raft_log.restore(s)
        self.prs = ProgressTracker(self.prs.max_inflight)
        restore(self.prs, self.raft_log.last_index(), cs)
        self._after_config_switch()
        pr = self.prs.progress[self.id]
        pr.maybe_update(pr.next - 1)
        return True

    # --- membership ----------------------------------------------------------------

    def apply_conf_change(self, cc: ConfChangeV2) -> ConfState:
        changer = Changer(self.prs, self.raft_log.last_index())
        if leave_joint(cc):
            cfg, prs = changer.leave_joint()
        else:
            auto_leave, joint = enter_joint(cc)
            if joint:
                cfg, prs = changer.enter_joint(auto_leave, cc.changes)
            else:
                cfg, prs = changer.simple(cc.changes)
        return self._switch_to_config(cfg, prs)

    def _after_config_switch(self) -> ConfState:
        self._update_is_learner()
        return self.prs.conf_state()

    def _switch_to_config(self, cfg: TrackerConfig, prs: ProgressMap) -> ConfState:
        self.prs.set(cfg, prs)
        cs = self._after_config_switch()
        pr = self.prs.progress.get(self.id)
        if (pr is None or self.is_learner) and self.state == StateType.LEADER:
            # Removed (or demoted) leader: stop leading a group we are not part of. The
            # remaining voters elect a new leader after their election timeout.
            if self.step_down_on_removal:
                self.become_follower(self.term, NONE)
            return cs
        if self.state != StateType.LEADER or not cs.voters:
            return cs
        if self.maybe_commit():
            # The new config may commit more (e.g. a slow voter was removed).
            self.bcast_append()
        else:
            # Probe newly added members right away.
            for id_ in self.prs.progress:
                if id_ != self.id:
                    self._maybe_send_append(id_, False)
        if self.lead_transferee != NONE and self.lead_transferee not in self.prs.voter_ids():
            self.lead_transferee = NONE
        return cs

    # --- appending on the leader ---------------------------------------------------

    def _append_entry(self, es: Sequence[Entry]) -> bool:
        li = self.raft_log.last_index()
        term = self.term
        ents = [
            Entry(term=term, index=li + 1 + i, type=e.type, data=e.data) for i, e in enumerate(es)
        ]
        if not self._increase_uncommitted_size(ents):
            return False
        li = self.raft_log.append(ents)
        self.prs.progress[self.id].maybe_update(li)
        self.maybe_commit()
        return True

    def _increase_uncommitted_size(self, ents: Sequence[Entry]) -> bool:
        s = _payload_size(ents)
        if (
            self.uncommitted_size > 0
            and s > 0
            and self.uncommitted_size + s > self.max_uncommitted_size
        ):
            return False
        self.uncommitted_size += s
        return True

    def _reduce_uncommitted_size(self, ents: Sequence[Entry]) -> None:
        if self.uncommitted_size == 0:
            return
        s = _payload_size(ents)
        self.uncommitted_size = 0 if s > self.uncommitted_size else self.uncommitted_size - s

    # --- Ready bookkeeping -----------------------------------------------------------

    def advance(
        self, entries: Sequence[Entry], snapshot: Snapshot, committed: Sequence[Entry]
    ) -> None:
        """The application persisted ``entries``/``snapshot`` and applied ``committed``."""
        self._reduce_uncommitted_size(committed)
        if committed:
            new_applied = committed[-1].index
        elif not snapshot.is_empty():
            new_applied = snapshot.metadata.index
        else:
            new_applied = 0
        if new_applied > 0:
            old_applied = self.raft_log.applied
            self.raft_log.applied_to(new_applied)
            if (
                self.prs.config.auto_leave
                and old_applied <= self.pending_conf_index <= new_applied
                and self.state == StateType.LEADER
            ):
                # The joint config we entered is applied: leave it automatically with an
                # empty ConfChangeV2 (it cannot be refused: nothing else is pending).
                ent = Entry(type=EntryType.CONF_CHANGE_V2, data=b"")
                if not self._append_entry([ent]):
                    raise LogInvariantError("refused un-refusable auto-leaving ConfChangeV2")
                self.pending_conf_index = self.raft_log.last_index()
                self.bcast_append()
        if entries:
            e = entries[-1]
            self.raft_log.stable_to(e.index, e.term)
        if not snapshot.is_empty():
            self.raft_log.stable_snap_to(snapshot.metadata.index)
