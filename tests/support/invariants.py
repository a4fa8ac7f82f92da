"""Raft's safety properties, checked incrementally from what nodes persist, send and apply.

The checker never looks inside a RawNode: it sees only the observable effects the
application handles (the durable writes of each Ready, the messages it sends, the entries
it applies). That is exactly what a real deployment can lose or corrupt, and it makes the
checker usable against a deliberately broken history in the self-tests.

Properties (Raft thesis figure 3.2 plus the durability rules PySyncObj broke):

* election safety: at most one leader per term (from leader-only messages and soft state);
* persisted term never decreases, the vote never changes within a term, the commit index
  never decreases, across crashes (PySyncObj #84, #166);
* persist before send: a message never carries a term the sender has not persisted, a
  granted vote is on disk, an append is acknowledged only once it is on disk (#201);
* log matching: two persisted logs with an entry of the same index and term hold the same
  entry there and agree on the term before it (so, by induction, on the whole prefix);
* no committed entry is ever truncated or overwritten, and committed entries agree;
* leader completeness: a leader of term T holds every entry committed by a term < T
  (an entry only counts as committed "by term u" from the moment a node at term u
  persisted a commit index covering it; #169 is caught here);
* state machine safety: every node applies the same entry at each index, in order,
  only committed entries, and snapshots carry the same state as the applied sequence;
* an acknowledged proposal stays applied at its index forever (checked through the
  state digest chain), and read-index answers are never below what was already applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdpy.raft.types import NONE, Entry, HardState, Message, MessageType

LEADER_ONLY = frozenset({MessageType.MsgApp, MessageType.MsgHeartbeat, MessageType.MsgSnap})
"""Messages only a leader of ``m.term`` sends."""

UNPERSISTED_TERM_OK = frozenset(
    {
        MessageType.MsgPreVote,
        MessageType.MsgPreVoteResp,
        MessageType.MsgProp,
        MessageType.MsgReadIndex,
    }
)
"""Messages whose term may legitimately be ahead of the sender's persisted term
(pre-votes carry the future term) or is zero (forwarded proposals and reads)."""


class InvariantViolation(AssertionError):
    """A Raft safety property does not hold; ``prop`` names it."""

    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


class LogView:
    """The terms of one node's persisted log: a snapshot point plus the entries after it."""

    __slots__ = ("snap_index", "snap_term", "terms")

    def __init__(self, snap_index: int = 0, snap_term: int = 0) -> None:
        self.snap_index = snap_index
        self.snap_term = snap_term
        self.terms: list[int] = []

    def last_index(self) -> int:
        return self.snap_index + len(self.terms)

    def term(self, i: int) -> int | None:
        """Term at i, or None when i is below the snapshot or past the end."""
        if i == self.snap_index:
            return self.snap_term
        if self.snap_index < i <= self.snap_index + len(self.terms):
            return self.terms[i - self.snap_index - 1]
        return None


@dataclass
class _NodeRecord:
    hs: HardState = field(default_factory=HardState)
    log: LogView = field(default_factory=LogView)
    commit_checked: int = 0
    """Entries up to here were matched against the global committed map."""
    applied: int = 0
    """Index of the last entry applied to the (current) state machine."""


class SafetyChecker:
    """Feed it every durable write, send and apply of every node; it raises on the first
    violated property. Cost is proportional to what changed, so it runs after every step."""

    def __init__(self) -> None:
        self.nodes: dict[int, _NodeRecord] = {}
        self.leader_of_term: dict[int, int] = {}
        self.current_leaders: dict[int, int] = {}
        """node -> term, for nodes that are leaders right now."""
        self.committed: dict[int, int] = {}
        """index -> term of entries known committed."""
        self.commit_term: dict[int, int] = {}
        """index -> lowest term of a node that persisted a commit index covering it."""
        self.max_committed = 0
        self.entry_at: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}
        """(index, term) -> (type, data, term before it) as first persisted anywhere."""
        self.applied_entry: dict[int, tuple[int, int, bytes]] = {}
        """index -> (term, type, data) as first applied anywhere."""
        self.digest_at: dict[int, bytes] = {}
        """index -> state machine digest after applying up to it."""
        self.max_applied = 0
        self.acked: dict[bytes, int] = {}
        """acknowledged proposal -> index it was applied at."""
        self.reads: dict[tuple[int, bytes], int] = {}

    def node(self, nid: int) -> _NodeRecord:
        rec = self.nodes.get(nid)
        if rec is None:
            rec = self.nodes[nid] = _NodeRecord()
        return rec

    # ---- durable writes -------------------------------------------------------------

    def on_persist_snapshot(self, nid: int, index: int, term: int) -> None:
        """A snapshot replaced the node's log (Ready.snapshot was saved)."""
        rec = self.node(nid)
        ct = self.committed.get(index)
        if ct is not None and ct != term:
            raise InvariantViolation(
                "committed-entry-agreement",
                f"node {nid} installed snapshot at {index} term {term}, committed term {ct}",
            )
        if index < rec.hs.commit:
            raise InvariantViolation(
                "snapshot-regress",
                f"node {nid} installed snapshot at {index} below its commit {rec.hs.commit}",
            )
        rec.log = LogView(index, term)
        rec.commit_checked = max(rec.commit_checked, index)

    def on_persist_entries(self, nid: int, entries: tuple[Entry, ...] | list[Entry]) -> None:
        """Entries appended to the node's stable log (overwriting any conflicting suffix)."""
        if not entries:
            return
        rec = self.node(nid)
        log = rec.log
        first = entries[0].index
        if first <= log.snap_index:
            raise InvariantViolation(
                "append-below-snapshot",
                f"node {nid} persisted entry {first} at/below its snapshot {log.snap_index}",
            )
        if first > log.last_index() + 1:
            raise InvariantViolation(
                "append-gap", f"node {nid} persisted entry {first} after last {log.last_index()}"
            )
        if first <= log.last_index():
            # Truncation: only an uncommitted suffix may be replaced.
            new_last = entries[-1].index
            for i in range(first, log.last_index() + 1):
                old = log.term(i)
                new = entries[i - first].term if i <= new_last else None
                if old == new:
                    continue
                ct = self.committed.get(i)
                if i <= rec.hs.commit or (ct is not None and new is not None and ct != new):
                    raise InvariantViolation(
                        "committed-entry-lost",
                        f"node {nid} replaced entry {i} (term {old}) by term {new}; its commit "
                        f"is {rec.hs.commit}, committed term there {ct}",
                    )
            del log.terms[first - log.snap_index - 1 :]
        prev = log.term(first - 1)
        for e in entries:
            if e.index != log.last_index() + 1:
                raise InvariantViolation(
                    "append-gap", f"node {nid} persisted non-contiguous entry {e.index}"
                )
            if prev is not None and e.term < prev:
                raise InvariantViolation(
                    "log-terms-monotonic",
                    f"node {nid} entry {e.index} term {e.term} after term {prev}",
                )
            key = (e.index, e.term)
            seen = self.entry_at.get(key)
            if seen is None:
                self.entry_at[key] = (int(e.type), e.data, prev)
            else:
                if seen[0] != e.type or seen[1] != e.data:
                    raise InvariantViolation(
                        "log-matching",
                        f"node {nid} entry {e.index} term {e.term} holds {e.data[:20]!r}, "
                        f"another log holds {seen[1][:20]!r} there",
                    )
                if seen[2] is not None and prev is not None and seen[2] != prev:
                    raise InvariantViolation(
                        "log-matching",
                        f"node {nid} entry {e.index} term {e.term} follows term {prev}, "
                        f"another log has term {seen[2]} before it",
                    )
            log.terms.append(e.term)
            prev = e.term

    def on_persist_hard_state(self, nid: int, hs: HardState) -> None:
        """A new HardState reached disk (after the same Ready's snapshot and entries)."""
        rec = self.node(nid)
        old = rec.hs
        if hs.term < old.term:
            raise InvariantViolation(
                "term-monotonic", f"node {nid} persisted term {hs.term} after {old.term}"
            )
        if hs.term == old.term and old.vote != NONE and hs.vote != old.vote:
            raise InvariantViolation(
                "vote-stable",
                f"node {nid} changed its vote in term {hs.term} from {old.vote} to {hs.vote}",
            )
        if hs.commit < old.commit:
            raise InvariantViolation(
                "commit-monotonic", f"node {nid} persisted commit {hs.commit} after {old.commit}"
            )
        if hs.commit > rec.log.last_index():
            raise InvariantViolation(
                "commit-beyond-log",
                f"node {nid} persisted commit {hs.commit} past its last index "
                f"{rec.log.last_index()}",
            )
        rec.hs = hs
        self._note_committed(nid, rec, hs)

    def _note_committed(self, nid: int, rec: _NodeRecord, hs: HardState) -> None:
        lo = max(rec.commit_checked, rec.log.snap_index) + 1
        for i in range(lo, hs.commit + 1):
            t = rec.log.term(i)
            assert t is not None
            ct = self.committed.get(i)
            if ct is None:
                self.committed[i] = t
                if i > self.max_committed:
                    self.max_committed = i
            elif ct != t:
                raise InvariantViolation(
                    "committed-entry-agreement",
                    f"node {nid} committed entry {i} with term {t}, another node committed "
                    f"term {ct} there",
                )
            obs = self.commit_term.get(i)
            if obs is None or hs.term < obs:
                self.commit_term[i] = hs.term
                for leader, lterm in self.current_leaders.items():
                    if lterm > hs.term:
                        self._check_has(leader, lterm, i)
        if hs.commit > rec.commit_checked:
            rec.commit_checked = hs.commit

    # ---- leadership -----------------------------------------------------------------

    def on_leader(self, nid: int, term: int) -> None:
        """nid is leader of ``term`` now (seen in its soft state after persisting)."""
        self._claim(nid, term, "became leader")
        self.current_leaders[nid] = term
        for i, u in self.commit_term.items():
            if u < term:
                self._check_has(nid, term, i)

    def on_not_leader(self, nid: int) -> None:
        self.current_leaders.pop(nid, None)

    def _claim(self, nid: int, term: int, how: str) -> None:
        other = self.leader_of_term.get(term)
        if other is None:
            self.leader_of_term[term] = nid
        elif other != nid:
            raise InvariantViolation(
                "election-safety", f"node {nid} {how} in term {term}, node {other} led it already"
            )

    def _check_has(self, leader: int, lterm: int, i: int) -> None:
        log = self.node(leader).log
        if i <= log.snap_index:
            return
        t = log.term(i)
        if t != self.committed[i]:
            raise InvariantViolation(
                "leader-completeness",
                f"leader {leader} of term {lterm} has term {t} at index {i}, committed term "
                f"{self.committed[i]} there (committed by term {self.commit_term[i]})",
            )

    # ---- sending --------------------------------------------------------------------

    def on_send(self, nid: int, m: Message) -> None:
        """m leaves nid after this Ready's durable write."""
        rec = self.node(nid)
        if m.type in LEADER_ONLY:
            self._claim(nid, m.term, f"sent {m.type.name}")
        if m.type not in UNPERSISTED_TERM_OK and m.term > rec.hs.term:
            raise InvariantViolation(
                "persist-before-send",
                f"node {nid} sent {m.type.name} at term {m.term}, persisted term {rec.hs.term}",
            )
        if m.type == MessageType.MsgVoteResp and not m.reject:
            if rec.hs.term != m.term or rec.hs.vote != m.to:
                raise InvariantViolation(
                    "persist-before-send",
                    f"node {nid} granted its vote to {m.to} in term {m.term}, persisted "
                    f"term {rec.hs.term} vote {rec.hs.vote}",
                )
        if m.type == MessageType.MsgAppResp and not m.reject and m.index > rec.log.last_index():
            raise InvariantViolation(
                "persist-before-send",
                f"node {nid} acknowledged index {m.index}, persisted only up to "
                f"{rec.log.last_index()}",
            )

    # ---- applying -------------------------------------------------------------------

    def on_apply(self, nid: int, e: Entry, digest: bytes) -> None:
        """The node's state machine applied e; ``digest`` is its state after it."""
        rec = self.node(nid)
        if e.index != rec.applied + 1:
            raise InvariantViolation(
                "apply-in-order", f"node {nid} applied {e.index} after {rec.applied}"
            )
        if e.index > rec.hs.commit:
            raise InvariantViolation(
                "apply-committed-only",
                f"node {nid} applied {e.index} beyond its persisted commit {rec.hs.commit}",
            )
        self._check_same_entry(nid, e)
        known = self.digest_at.get(e.index)
        if known is None:
            self.digest_at[e.index] = digest
        elif known != digest:
            raise InvariantViolation(
                "state-machine-safety",
                f"node {nid} state after applying {e.index} differs from another node's",
            )
        rec.applied = e.index
        if e.index > self.max_applied:
            self.max_applied = e.index

    def on_reapply(self, nid: int, e: Entry) -> None:
        """A restarted node was handed again an entry its durable state machine has."""
        self._check_same_entry(nid, e)

    def _check_same_entry(self, nid: int, e: Entry) -> None:
        ct = self.committed.get(e.index)
        if ct is not None and ct != e.term:
            raise InvariantViolation(
                "state-machine-safety",
                f"node {nid} applied entry {e.index} term {e.term}, committed term {ct}",
            )
        seen = self.applied_entry.get(e.index)
        if seen is None:
            self.applied_entry[e.index] = (e.term, int(e.type), e.data)
        elif seen != (e.term, int(e.type), e.data):
            raise InvariantViolation(
                "state-machine-safety",
                f"node {nid} applied {e.data[:20]!r} (term {e.term}) at {e.index}, another "
                f"node applied {seen[2][:20]!r} (term {seen[0]})",
            )

    def on_state_reset(self, nid: int, index: int, digest: bytes) -> None:
        """The node's state machine was (re)loaded from a snapshot or its durable copy."""
        known = self.digest_at.get(index)
        if known is None:
            self.digest_at[index] = digest
        elif known != digest:
            raise InvariantViolation(
                "state-machine-safety",
                f"node {nid} loaded a state at {index} that differs from what was applied",
            )
        self.node(nid).applied = index

    def on_ack(self, proposal: bytes, index: int) -> None:
        """The proposer applied its own proposal: the client got its answer."""
        self.acked[proposal] = index

    def check_acked_durable(self, nid: int) -> None:
        """Every acknowledged proposal is still where it was acknowledged, on node nid."""
        rec = self.node(nid)
        for p, i in self.acked.items():
            if rec.applied < i:
                raise InvariantViolation(
                    "acked-lost", f"node {nid} applied only {rec.applied}, {p!r} acked at {i}"
                )
            seen = self.applied_entry.get(i)
            if seen is None or seen[2] != p:
                raise InvariantViolation("acked-lost", f"{p!r} acked at {i}, replaced by {seen}")

    # ---- reads ----------------------------------------------------------------------

    def on_read_issued(self, nid: int, ctx: bytes) -> None:
        self.reads[(nid, ctx)] = self.max_applied

    def on_read_state(self, nid: int, ctx: bytes, index: int) -> None:
        floor = self.reads.pop((nid, ctx), None)
        if floor is not None and index < floor:
            raise InvariantViolation(
                "read-index-stale",
                f"node {nid} read {ctx!r} got index {index}, but {floor} was applied before "
                "the read was issued",
            )
