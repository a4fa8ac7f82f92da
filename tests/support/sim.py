"""A seeded, deterministic simulation of a Raft cluster, checking safety after every step.

N ``RawNode``s with ``MemoryStorage`` talk over a simulated network that delays, drops,
duplicates, reorders and partitions messages; nodes crash (losing everything the
application had not persisted: unsent messages, unapplied entries, volatile state) and
restart from what they saved from their Readys. Clients propose commands with unique ids,
change the membership (learner add, promote, voter removal, joint-consensus swaps with
automatic or explicit leave), compact logs (so lagging followers need MsgSnap), transfer
leadership, force campaigns and issue ReadIndex requests. The application loop follows the
Ready contract (persist, send, apply, advance) and a crash can strike between any two of
those duties. ``SafetyChecker`` (tests/support/invariants.py) checks Raft's safety
properties after every step from what the nodes persist, send and apply.

One integer seed drives everything: ``random.Random(seed)`` draws the scenario and the
schedule, and each node incarnation gets its own ``Random`` derived from the seed for
``RaftConfig.rng``. There is no wall clock and no global RNG, so a seed replays exactly:

    python -m tests.support.sim --seed 1234 --trace
    ETCDPY_SIM_SEED=1234 python -m pytest tests/sim -k replay

After the chaos phase every fault heals; the run then asserts liveness: a leader appears,
proposals made to it commit within a bounded number of ticks, every member catches up and
every acknowledged proposal is applied everywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
import sys
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from etcdpy.raft import confchange_codec
from etcdpy.raft.config import RaftConfig
from etcdpy.raft.errors import ProposalDropped, StepPeerNotFound
from etcdpy.raft.rawnode import RawNode
from etcdpy.raft.storage import MemoryStorage
from etcdpy.raft.types import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from tests.support.invariants import InvariantViolation, SafetyChecker

TICK = 10
"""Simulated time units per Raft tick (message delays are a fraction of a tick)."""
LEADER_BOUND_ELECTIONS = 30
"""After healing, a leader must appear within this many election timeouts."""
COMMIT_BOUND_ELECTIONS = 4
"""After healing, a proposal made to the leader must be applied by it within this."""
CONVERGE_BOUND_ELECTIONS = 6
"""After healing, every member must apply everything the leader committed within this."""
LIVENESS_PROPOSALS = 3
GENESIS = hashlib.blake2b(b"etcdpy-sim-genesis", digest_size=16).digest()

MUTATIONS = (
    "forget_vote",
    "send_before_persist",
    "commit_regress",
    "old_term_commit",
    "vote_without_log_check",
    "read_without_quorum",
)
"""Deliberate bugs the simulator must catch (PySyncObj #84, #201, #166, #169, and two
classic Raft mistakes)."""


class SimFailure(AssertionError):
    """A scenario broke a safety or liveness property (or the core raised)."""

    def __init__(self, seed: int, reason: str, trace: str) -> None:
        super().__init__(
            f"seed {seed}: {reason}\n--- last events ---\n{trace}\n"
            f"replay: ETCDPY_SIM_SEED={seed} python -m pytest tests/sim -k replay  "
            f"or  python -m tests.support.sim --seed {seed} --trace"
        )
        self.seed = seed
        self.reason = reason
        self.trace = trace


class LivenessFailure(AssertionError):
    """The healed cluster did not make progress within the bound."""


@dataclass(frozen=True)
class Params:
    """The scenario a seed draws: cluster size, fault rates and enabled features."""

    n: int
    chaos_ticks: int
    p_drop: float
    p_dup: float
    max_delay: int
    p_slow: float
    crash_rate: float
    p_crash_mid_ready: float
    partition_rate: float
    p_propose: float
    p_read: float
    p_transfer: float
    p_compact: float
    conf_changes: bool
    pre_vote: bool
    check_quorum: bool
    p_durable_sm: float
    max_size_per_msg: int = 4096
    p_campaign: float = 0.0
    election_tick: int = 10
    heartbeat_tick: int = 2
    bootstrap_api: bool = False
    max_uncommitted_size: int = 0
    disable_forwarding: bool = False
    max_committed_size: int = 0
    step_down_on_removal: bool = True
    mutation: str | None = None

    @staticmethod
    def draw(rng: random.Random, mutation: str | None = None) -> Params:
        n = rng.choices((3, 5, 7), weights=(6, 3, 1))[0]
        return Params(
            n=n,
            chaos_ticks=rng.randint(100, 300),
            p_drop=rng.choice((0.0, 0.02, 0.05, 0.1, 0.2)),
            p_dup=rng.choice((0.0, 0.0, 0.03, 0.1)),
            max_delay=rng.randint(1, TICK),
            p_slow=rng.choice((0.0, 0.02, 0.1)),
            crash_rate=rng.choice((0.0, 0.02, 0.05, 0.1)),
            p_crash_mid_ready=rng.random(),
            partition_rate=rng.choice((0.0, 0.02, 0.05)),
            p_propose=rng.choice((0.1, 0.3, 0.6)),
            p_read=rng.choice((0.0, 0.05, 0.15)),
            p_transfer=rng.choice((0.0, 0.0, 0.02, 0.05)),
            p_compact=rng.choice((0.0, 0.03, 0.1)),
            conf_changes=rng.random() < 0.4,
            pre_vote=rng.random() < 0.8,
            check_quorum=rng.random() < 0.8,
            p_durable_sm=rng.random(),
            max_size_per_msg=rng.choice((1, 1, 4096, 1 << 20)),
            p_campaign=rng.choice((0.0, 0.0, 0.01, 0.05)),
            election_tick=(et := rng.choice((10, 10, 5, 20))),
            heartbeat_tick=rng.randint(1, min(3, et - 1)),
            bootstrap_api=rng.random() < 0.5,
            max_uncommitted_size=rng.choice((0, 0, 0, 100)),
            disable_forwarding=rng.random() < 0.1,
            max_committed_size=rng.choice((0, 0, 1)),
            step_down_on_removal=rng.random() < 0.7,
            mutation=mutation,
        )


def _digest(prev: bytes, e: Entry) -> bytes:
    h = hashlib.blake2b(prev, digest_size=16)
    h.update(b"%d/%d/%d/" % (e.index, e.term, e.type))
    h.update(e.data)
    return h.digest()


def _members(cs: ConfState) -> set[int]:
    return {*cs.voters, *cs.learners, *cs.voters_outgoing, *cs.learners_next}


def _snap_data(index: int, digest: bytes) -> bytes:
    return b"%d|" % index + digest


def _parse_snap_data(data: bytes) -> tuple[int, bytes]:
    idx, _, digest = data.partition(b"|")
    return int(idx), digest


def _fmt_msg(m: Message) -> str:
    s = f"{m.type.name} {m.from_}->{m.to} t{m.term}"
    if m.type in (
        MessageType.MsgApp,
        MessageType.MsgAppResp,
        MessageType.MsgVote,
        MessageType.MsgPreVote,
    ):
        s += f" lt{m.log_term} i{m.index}"
    if m.entries:
        s += f" [{m.entries[0].index}..{m.entries[-1].index}]"
    if m.commit:
        s += f" c{m.commit}"
    if m.reject:
        s += f" REJECT(hint {m.reject_hint})"
    if m.snapshot is not None and not m.snapshot.is_empty():
        md = m.snapshot.metadata
        s += f" snap(i{md.index} t{md.term})"
    if m.context:
        s += f" ctx={m.context!r}"
    return s


class SimNode:
    """One member: its RawNode (None while down), its "disk" and its state machine."""

    def __init__(self, nid: int) -> None:
        self.id = nid
        self.rn: RawNode | None = None
        self.storage = MemoryStorage()
        """Exactly what the application persisted from Readys (the node's disk)."""
        self.incarnation = 0
        self.started = False
        self.removed = False
        self.sm_index = 0
        self.sm_digest = b""
        self.raft_applied = 0
        self.conf_state = ConfState()
        self.proposals: set[bytes] = set()
        self.is_leader = False
        self.crash_stage: int | None = None
        self.remove_after_ready = False
        self.removal_applied = False
        self.snapshot_soon = False

    @property
    def up(self) -> bool:
        return self.rn is not None


# Event kinds in the schedule heap.
_TICK, _DELIVER, _DIRECTOR, _SNAP_STATUS, _STOP = 0, 1, 2, 3, 4


class Simulation:
    """One scenario. ``run()`` raises SimFailure (with the seed and a trace) on any problem."""

    def __init__(
        self,
        seed: int,
        *,
        mutation: str | None = None,
        trace: bool = False,
        trace_len: int = 40,
        params: Params | None = None,
        out: Callable[[str], None] | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.p = params if params is not None else Params.draw(self.rng, mutation)
        if mutation is not None and self.p.mutation != mutation:
            self.p = replace(self.p, mutation=mutation)
        self.full_trace = trace
        self.out = out if out is not None else print
        self.events: deque[tuple[int, str, Any]] = deque(maxlen=trace_len)
        self.stats: Counter[str] = Counter()
        self.checker = SafetyChecker()
        self.now = 0
        self.seq = 0
        self.heap: list[tuple[int, int, int, Any, Any]] = []
        ids = list(range(1, self.p.n + 1))
        self.voter_ids = ids
        self.spare = self.p.n + 1
        self.nodes: dict[int, SimNode] = {i: SimNode(i) for i in [*ids, self.spare]}
        self.group: dict[int, int] | None = None
        """Partition: node -> side; None when the network is whole."""
        self.healed = False
        self.scripted = False
        self.watch: Callable[[str, Any], None] | None = None
        self.prop_counter = 0
        self.read_counter = 0
        self.cc_plan: list[ConfChange | ConfChangeV2] = []
        self.cc_applied: set[bytes] = set()
        self.cc_last_proposed = -(10**9)
        self.globally_removed: set[int] = set()
        self.p_drop = self.p.p_drop
        self.p_dup = self.p.p_dup
        self.p_slow = self.p.p_slow
        self.ticks_done = 0
        self._core_patch: Callable[[], None] | None = None

    # ---- tracing --------------------------------------------------------------------

    def log(self, kind: str, detail: Any) -> None:
        self.stats[kind] += 1
        self.events.append((self.now, kind, detail))
        if self.watch is not None:
            self.watch(kind, detail)
        if self.full_trace:
            self.out(self._fmt_event((self.now, kind, detail)))

    @staticmethod
    def _fmt_event(ev: tuple[int, str, Any]) -> str:
        t, kind, d = ev
        if isinstance(d, Message):
            d = _fmt_msg(d)
        return f"{t // TICK:>5}.{t % TICK} {kind:<9} {d}"

    def trace_text(self) -> str:
        return "\n".join(self._fmt_event(e) for e in self.events)

    # ---- schedule -------------------------------------------------------------------

    def push(self, at: int, kind: int, a: Any = None, b: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, a, b))

    def node_rng(self, nid: int, incarnation: int) -> random.Random:
        return random.Random((self.seed * 1_000_003 + nid) * 1_009 + incarnation)

    # ---- node lifecycle -------------------------------------------------------------

    def _config(self, node: SimNode, applied: int) -> RaftConfig:
        return RaftConfig(
            id=node.id,
            election_tick=self.p.election_tick,
            heartbeat_tick=self.p.heartbeat_tick,
            applied=applied,
            check_quorum=self.p.check_quorum,
            pre_vote=self.p.pre_vote,
            max_size_per_msg=self.p.max_size_per_msg,
            max_uncommitted_entries_size=self.p.max_uncommitted_size,
            disable_proposal_forwarding=self.p.disable_forwarding,
            max_committed_size_per_ready=self.p.max_committed_size,
            step_down_on_removal=self.p.step_down_on_removal,
            max_inflight_msgs=self.rng.choice((4, 256)),
            rng=self.node_rng(node.id, node.incarnation),
        )

    def bootstrap(self) -> None:
        """Start the initial members: from a shared genesis snapshot (index 1, term 1), or
        (``Params.bootstrap_api``) from empty storage through ``RawNode.bootstrap``."""
        if self.p.bootstrap_api:
            for nid in self.voter_ids:
                node = self.nodes[nid]
                node.started = True
                self._boot_empty(node)
            return
        cs = ConfState(voters=tuple(self.voter_ids))
        snap = Snapshot(
            data=_snap_data(1, GENESIS),
            metadata=SnapshotMetadata(conf_state=cs, index=1, term=1),
        )
        hs = HardState(term=1, vote=0, commit=1)
        for nid in self.voter_ids:
            node = self.nodes[nid]
            node.storage.apply_snapshot(snap)
            node.storage.set_hard_state(hs)
            self.checker.on_persist_snapshot(nid, 1, 1)
            self.checker.on_persist_hard_state(nid, hs)
            self.checker.on_state_reset(nid, 1, GENESIS)
            node.sm_index, node.sm_digest, node.raft_applied = 1, GENESIS, 1
            node.conf_state = cs
            node.started = True
            node.rn = RawNode(self._config(node, 1), node.storage)
            self._schedule_tick(node, self.rng.randint(1, TICK))

    def _boot_empty(self, node: SimNode) -> None:
        """A member with nothing on disk: a founding member bootstraps, the spare joins."""
        node.storage = MemoryStorage()
        node.sm_index, node.sm_digest, node.raft_applied = 0, GENESIS, 0
        node.conf_state = ConfState()
        self.checker.on_state_reset(node.id, 0, GENESIS)
        node.rn = RawNode(self._config(node, 0), node.storage)
        if node.id in self.voter_ids:
            node.rn.bootstrap(self.voter_ids)
            self.log("start", f"node {node.id} bootstraps {self.voter_ids}")
        else:
            self.log("start", f"node {node.id} (empty, joining)")
        self._schedule_tick(node, self.rng.randint(1, TICK))

    def start_spare(self) -> None:
        node = self.nodes[self.spare]
        if node.started:
            return
        node.started = True
        self._boot_empty(node)

    def _schedule_tick(self, node: SimNode, delay: int) -> None:
        self.push(self.now + delay, _TICK, node.id, node.incarnation)

    def crash(self, node: SimNode, why: str) -> None:
        self.log("crash", f"node {node.id} {why}")
        node.rn = None
        node.incarnation += 1
        node.crash_stage = None
        node.proposals.clear()
        if node.removal_applied:
            node.removed = True
        if node.is_leader:
            node.is_leader = False
            self.checker.on_not_leader(node.id)

    def restart(self, node: SimNode) -> None:
        """Rebuild the node from its disk only: a fresh storage loaded from the old one."""
        old = node.storage
        hs, _ = old.initial_state()
        snap = old.snapshot()
        if hs.is_empty() and snap.is_empty() and old.last_index() == 0:
            self.log("restart", f"node {node.id} with an empty disk")
            self._boot_empty(node)
            return
        snap_index = snap.metadata.index
        lo = max(old.first_index(), snap_index + 1)
        hi = old.last_index() + 1
        ents = list(old.entries(lo, hi)) if lo < hi else []
        if self.p.mutation == "forget_vote":
            hs = HardState(term=hs.term, vote=0, commit=hs.commit)
        st = MemoryStorage()
        if not snap.is_empty():
            st.apply_snapshot(snap)
        if ents:
            st.append(ents)
        st.set_hard_state(hs)
        node.storage = st
        if snap.is_empty():
            snap_digest = GENESIS
        else:
            _, snap_digest = _parse_snap_data(snap.data)
        keep_sm = self.rng.random() < self.p.p_durable_sm and node.sm_index >= snap_index
        if not keep_sm:
            node.sm_index, node.sm_digest = snap_index, snap_digest
        self.checker.on_state_reset(node.id, node.sm_index, node.sm_digest)
        applied = snap_index
        if keep_sm and node.sm_index > snap_index and self.rng.random() < 0.5:
            # Skip re-delivery when no conf change lies between the snapshot and the state
            # machine (the core must then rebuild its config from the snapshot alone).
            between = st.entries(snap_index + 1, node.sm_index + 1)
            if all(e.type == EntryType.NORMAL for e in between):
                applied = node.sm_index
        node.conf_state = snap.metadata.conf_state
        node.raft_applied = applied
        node.rn = RawNode(self._config(node, applied), st)
        live = node.rn.status().hard_state
        if (live.term, live.vote) != (hs.term, hs.vote) or live.commit < hs.commit:
            raise InvariantViolation(
                "restart-state", f"node {node.id} restarted with {live}, its disk holds {hs}"
            )
        self.log(
            "restart",
            f"node {node.id} hs={hs} snap={snap_index} entries={len(ents)} "
            f"sm={node.sm_index} applied={applied}",
        )
        self._schedule_tick(node, self.rng.randint(1, TICK))

    # ---- the application's Ready loop --------------------------------------------------

    def handle_ready(self, node: SimNode) -> None:
        while node.rn is not None and node.rn.has_ready():
            rn = node.rn
            rd = rn.ready()
            stage = node.crash_stage
            if stage == 0:
                self.crash(node, "before persisting its Ready")
                return
            if self.p.mutation == "send_before_persist":
                self.send_all(node, rd)
                if stage == 1:
                    self.crash(node, "after sending, before persisting (mutation)")
                    return
                self.persist(node, rd)
            else:
                self.persist(node, rd)
                if stage == 1:
                    self.crash(node, "after persisting, before sending")
                    return
                self.send_all(node, rd)
            self.soft_state(node, rd)
            if stage == 2:
                self.crash(node, "after sending, before applying")
                return
            cut = len(rd.committed_entries)
            if stage == 3:
                cut = self.rng.randint(0, cut)
            self.apply(node, rd, cut)
            if stage == 3:
                self.crash(node, f"after applying {cut}/{len(rd.committed_entries)} entries")
                return
            for rs in rd.read_states:
                self.log("readstate", f"node {node.id} ctx={rs.request_ctx!r} index={rs.index}")
                self.checker.on_read_state(node.id, rs.request_ctx, rs.index)
            rn.advance(rd)
            if node.snapshot_soon:
                node.snapshot_soon = False
                self.compact(node)
            if node.remove_after_ready:
                # etcd's stopWithDelay: keep running briefly so a removed leader can still
                # tell the others that its removal committed; never start again.
                node.remove_after_ready = False
                node.removal_applied = True
                self.log("removed", f"node {node.id} applied its own removal, stops soon")
                self.push(self.now + 10 * TICK, _STOP, node.id, node.incarnation)

    def persist(self, node: SimNode, rd: Ready) -> None:
        st = node.storage
        ck = self.checker
        if not rd.snapshot.is_empty():
            md = rd.snapshot.metadata
            st.apply_snapshot(rd.snapshot)
            ck.on_persist_snapshot(node.id, md.index, md.term)
            self.log("persist", f"node {node.id} snapshot i{md.index} t{md.term}")
        if rd.entries:
            st.append(list(rd.entries))
            ck.on_persist_entries(node.id, rd.entries)
        if not rd.hard_state.is_empty():
            hs = rd.hard_state
            st.set_hard_state(hs)
            ck.on_persist_hard_state(node.id, hs)
            self.log("hardstate", f"node {node.id} t{hs.term} v{hs.vote} c{hs.commit}")

    def send_all(self, node: SimNode, rd: Ready) -> None:
        for m in rd.messages:
            self.checker.on_send(node.id, m)
            self.send(m)

    def soft_state(self, node: SimNode, rd: Ready) -> None:
        ss = rd.soft_state
        if ss is None:
            return
        leader = ss.raft_state == StateType.LEADER
        if leader:
            term = self.checker.node(node.id).hs.term
            assert node.rn is not None
            st = node.rn.status()
            if st.hard_state.term != term:
                raise InvariantViolation(
                    "persist-before-send",
                    f"node {node.id} leads term {st.hard_state.term} but persisted term {term}",
                )
            cs = st.conf_state
            if node.id not in cs.voters and node.id not in cs.voters_outgoing:
                raise InvariantViolation(
                    "leader-is-voter", f"node {node.id} leads term {term} but its config is {cs}"
                )
            self.log("leader", f"node {node.id} term {term}")
            self.checker.on_leader(node.id, term)
        elif node.is_leader:
            self.log("stepdown", f"node {node.id} -> {ss.raft_state.name} (lead {ss.lead})")
            self.checker.on_not_leader(node.id)
        node.is_leader = leader

    def apply(self, node: SimNode, rd: Ready, cut: int) -> None:
        ck = self.checker
        if not rd.snapshot.is_empty():
            md = rd.snapshot.metadata
            idx, digest = _parse_snap_data(rd.snapshot.data)
            if idx != md.index:
                raise InvariantViolation(
                    "snapshot-data", f"snapshot at {md.index} carries state of {idx}"
                )
            node.sm_index, node.sm_digest = idx, digest
            node.raft_applied = idx
            node.conf_state = md.conf_state
            ck.on_state_reset(node.id, idx, digest)
        for e in rd.committed_entries[:cut]:
            if e.index != node.raft_applied + 1:
                raise InvariantViolation(
                    "apply-in-order",
                    f"node {node.id} was handed entry {e.index} after {node.raft_applied}",
                )
            node.raft_applied = e.index
            if e.index <= node.sm_index:
                ck.on_reapply(node.id, e)
            else:
                node.sm_digest = _digest(node.sm_digest, e)
                node.sm_index = e.index
                ck.on_apply(node.id, e, node.sm_digest)
                if e.type == EntryType.NORMAL and e.data in node.proposals:
                    node.proposals.discard(e.data)
                    ck.on_ack(e.data, e.index)
            if e.type != EntryType.NORMAL:
                self.apply_conf_change(node, e)

    def apply_conf_change(self, node: SimNode, e: Entry) -> None:
        assert node.rn is not None
        cc = confchange_codec.decode(e.type, e.data)
        before = _members(node.conf_state)
        node.conf_state = node.rn.apply_conf_change(cc)
        after = _members(node.conf_state)
        self.log("confchange", f"node {node.id} applied {cc} at {e.index} -> {node.conf_state}")
        if cc.context:
            self.cc_applied.add(cc.context)
        if node.conf_state.voters_outgoing:
            self.stats["joint"] += 1
        if self.spare in after and self.spare not in before:
            # The joining member can only restore a snapshot that lists it (etcd's raft
            # refuses others), so the app snapshots once it applied the addition.
            node.snapshot_soon = True
            self.start_spare()
        for nid in before - after:
            # Gone from every configuration (a joint one keeps outgoing voters until it is
            # left): the member shuts down, and peers that know reject its traffic.
            self.globally_removed.add(nid)
            if nid == node.id:
                node.remove_after_ready = True

    # ---- the network -----------------------------------------------------------------

    def connected(self, a: int, b: int) -> bool:
        """Can a message from a reach b? Partitions, and b rejects a removed member."""
        if a in self.globally_removed and a not in _members(self.nodes[b].conf_state):
            return False
        g = self.group
        return g is None or g.get(a, -1) == g.get(b, -2)

    def send(self, m: Message) -> None:
        rng = self.rng
        if self.p_drop and rng.random() < self.p_drop:
            self.log("drop", m)
            if m.type == MessageType.MsgSnap:
                self.push(self.now + 1, _SNAP_STATUS, m, True)
            return
        self.push(self.now + self._delay(), _DELIVER, m)
        if self.p_dup and rng.random() < self.p_dup:
            self.push(self.now + self._delay(), _DELIVER, m)

    def _delay(self) -> int:
        if self.p_slow and self.rng.random() < self.p_slow:
            if self.rng.random() < 0.1:
                # An ancient message: arrives several election timeouts later.
                return self.rng.randint(TICK, 5 * self.p.election_tick * TICK)
            return self.rng.randint(TICK, 3 * TICK)
        return self.rng.randint(1, self.p.max_delay)

    def deliver(self, m: Message) -> None:
        dst = self.nodes.get(m.to)
        if dst is None or dst.rn is None or not self.connected(m.from_, m.to):
            self.log("lost", m)
            if m.type == MessageType.MsgSnap:
                self.snap_status(m, failed=True)
            return
        self.log("deliver", m)
        try:
            dst.rn.step(m)
        except StepPeerNotFound:
            pass
        self.handle_ready(dst)
        if m.type == MessageType.MsgSnap:
            self.snap_status(m, failed=False)

    def snap_status(self, m: Message, failed: bool) -> None:
        src = self.nodes[m.from_]
        if src.rn is None:
            return
        if failed:
            src.rn.report_unreachable(m.to)
        src.rn.report_snapshot(m.to, failed)
        self.handle_ready(src)

    # ---- the director (clients and operators) ----------------------------------------

    def up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.rn is not None]

    def leader(self) -> SimNode | None:
        best: SimNode | None = None
        best_term = -1
        for n in self.nodes.values():
            if n.rn is not None and n.is_leader and n.id not in self.globally_removed:
                t = self.checker.node(n.id).hs.term
                if t > best_term:
                    best, best_term = n, t
        return best

    def director(self) -> None:
        rng = self.rng
        p = self.p
        up = self.up_nodes()
        if up and rng.random() < p.p_propose:
            lead = self.leader()
            node = lead if lead is not None and rng.random() < 0.5 else rng.choice(up)
            self.propose(node)
        up = self.up_nodes()
        if up and p.p_read and rng.random() < p.p_read:
            node = rng.choice(up)
            self.read_counter += 1
            ctx = b"r%d" % self.read_counter
            assert node.rn is not None
            self.checker.on_read_issued(node.id, ctx)
            self.log("read", f"node {node.id} ctx={ctx!r}")
            node.rn.read_index(ctx)
            self.handle_ready(node)
        if p.p_transfer and rng.random() < p.p_transfer:
            lead = self.leader()
            if lead is not None and lead.rn is not None:
                voters = [v for v in lead.conf_state.voters if v != lead.id]
                if rng.random() < 0.2:
                    voters = list(self.nodes)  # itself, a learner, a non-member: ignored
                if voters:
                    target = rng.choice(voters)
                    self.log("transfer", f"leader {lead.id} -> {target}")
                    lead.rn.transfer_leader(target)
                    self.handle_ready(lead)
        up = self.up_nodes()
        if up and p.p_campaign and rng.random() < p.p_campaign:
            node = rng.choice(up)
            assert node.rn is not None
            self.campaign(node.id)
        up = self.up_nodes()
        if up and p.p_compact and rng.random() < p.p_compact:
            self.compact(rng.choice(up))
        if p.conf_changes and rng.random() < 0.2:
            self.conf_change_step()
        up = self.up_nodes()
        if p.crash_rate and up and rng.random() < p.crash_rate:
            node = rng.choice(up)
            if rng.random() < p.p_crash_mid_ready:
                node.crash_stage = rng.randint(0, 3)
                self.log("crashset", f"node {node.id} will crash at Ready stage {node.crash_stage}")
            else:
                self.crash(node, "between steps")
        for node in self.nodes.values():
            if node.rn is None and node.started and not node.removed and rng.random() < 0.12:
                self.restart(node)
                self.handle_ready(node)
        if self.group is None:
            if p.partition_rate and rng.random() < p.partition_rate:
                ids = [n.id for n in self.nodes.values() if n.started]
                sides = rng.choice((2, 2, 3))
                self.group = {i: rng.randrange(sides) for i in ids}
                self.log("partition", self.group)
        elif rng.random() < 0.12:
            self.group = None
            self.log("heal", "partition removed")

    def propose(self, node: SimNode) -> bytes | None:
        assert node.rn is not None
        self.prop_counter += 1
        data = b"p%d" % self.prop_counter
        if self.rng.random() < 0.2:
            data += b"." * self.rng.randint(1, 300)
        try:
            node.rn.propose(data)
        except ProposalDropped:
            self.log("dropped", f"node {node.id} proposal {data!r}")
            return None
        node.proposals.add(data)
        self.log("propose", f"node {node.id} {data!r}")
        self.handle_ready(node)
        return data

    def compact(self, node: SimNode) -> None:
        """The app snapshots its state machine and compacts its log (etcd's snapshot-count)."""
        st = node.storage
        snap_index = st.snapshot().metadata.index
        if node.raft_applied < node.sm_index or node.sm_index <= snap_index:
            return
        idx = node.sm_index
        st.create_snapshot(idx, node.conf_state, _snap_data(idx, node.sm_digest))
        keep = self.rng.choice((0, 1, 5))
        compact_to = max(idx - keep, st.first_index())
        if compact_to <= idx and compact_to >= st.first_index():
            st.compact(compact_to)
        self.log("compact", f"node {node.id} snapshot at {idx}, compacted to {compact_to}")

    def conf_change_step(self) -> None:
        """Walk a small membership plan, one change at a time, proposed to the leader.

        v1: add the spare as a learner, promote it, remove a voter. v2-auto: add the spare
        as a learner, then swap it in for a voter in one joint change left automatically.
        v2-explicit: the same swap through an explicit joint config, then leave it.
        """
        if not self.cc_plan:
            self.cc_plan = self._draw_cc_plan()
        todo = [cc for cc in self.cc_plan if cc.context not in self.cc_applied]
        if not todo or self.now - self.cc_last_proposed < self.p.election_tick * TICK:
            return
        lead = self.leader()
        if lead is None or lead.rn is None:
            return
        if self.rng.random() < 0.3:
            lead = self.rng.choice(self.up_nodes())  # a follower forwards it
        assert lead.rn is not None
        cc = todo[0]
        self.cc_last_proposed = self.now
        try:
            lead.rn.propose_conf_change(cc)
        except ProposalDropped:
            self.log("dropped", f"node {lead.id} conf change {cc}")
            return
        self.log("propose", f"node {lead.id} conf change {cc}")
        self.handle_ready(lead)

    def _draw_cc_plan(self) -> list[ConfChange | ConfChangeV2]:
        spare = self.spare
        victim = self.rng.choice(self.voter_ids)
        kind = self.rng.choice(("v1", "v2-auto", "v2-explicit"))
        add_learner = ConfChange(type=ConfChangeType.AddLearnerNode, node_id=spare, context=b"cc1")
        if kind == "v1":
            return [
                add_learner,
                ConfChange(type=ConfChangeType.AddNode, node_id=spare, context=b"cc2"),
                ConfChange(type=ConfChangeType.RemoveNode, node_id=victim, context=b"cc3"),
            ]
        swap = (
            ConfChangeSingle(type=ConfChangeType.AddNode, node_id=spare),
            ConfChangeSingle(type=ConfChangeType.RemoveNode, node_id=victim),
        )
        if kind == "v2-auto":
            return [add_learner, ConfChangeV2(changes=swap, context=b"cc2")]
        return [
            add_learner,
            ConfChangeV2(
                changes=swap, transition=ConfChangeTransition.JointExplicit, context=b"cc2"
            ),
            ConfChangeV2(context=b"cc3"),
        ]

    # ---- main loop --------------------------------------------------------------------

    def step_event(self) -> None:
        at, _, kind, a, b = heapq.heappop(self.heap)
        self.now = at
        if kind == _TICK:
            node = self.nodes[a]
            if node.rn is None or node.incarnation != b:
                return
            jitter = 0
            if not self.healed and self.rng.random() < 0.05:
                jitter = self.rng.randint(-3, 3)
            self._schedule_tick(node, TICK + jitter)
            node.rn.tick()
            if self.full_trace:
                self.log("tick", f"node {node.id}")
            self.handle_ready(node)
        elif kind == _DELIVER:
            self.deliver(a)
        elif kind == _SNAP_STATUS:
            self.snap_status(a, failed=b)
        elif kind == _STOP:
            node = self.nodes[a]
            if node.rn is not None and node.incarnation == b:
                self.crash(node, "(removed from the cluster, stops)")
        elif kind == _DIRECTOR:
            self.ticks_done += 1
            if not self.healed and not self.scripted:
                self.director()
            self.push(self.now + TICK, _DIRECTOR)

    def run_until(self, deadline: int, done: Callable[[], bool] | None = None) -> bool:
        while self.heap and self.heap[0][0] <= deadline:
            self.step_event()
            if done is not None and done():
                return True
        self.now = max(self.now, deadline)
        return done is not None and done()

    def heal(self) -> None:
        self.healed = True
        self.log("HEAL", "no partitions, drops, duplicates or crashes from now on")
        self.group = None
        self.p_drop = self.p_dup = self.p_slow = 0.0
        for node in self.nodes.values():
            node.crash_stage = None
        for node in self.nodes.values():
            if node.rn is None and node.started and not node.removed:
                self.restart(node)
                self.handle_ready(node)

    def members(self, lead: SimNode) -> list[SimNode]:
        cs = lead.conf_state
        ids = sorted({*cs.voters, *cs.learners, *cs.voters_outgoing, *cs.learners_next})
        return [self.nodes[i] for i in ids if i in self.nodes]

    def liveness(self) -> None:
        """After healing: a leader appears; proposals to it are applied by it within a bound;
        every member catches up; every acknowledged proposal is applied everywhere.

        A leader may still lose leadership once healed for legitimate reasons (a membership
        change removing it that was in flight, a node rejoining with a higher term when
        pre-vote is off); then the next leader gets the proposal, a few times at most.
        """
        et = self.p.election_tick
        leader_bound = LEADER_BOUND_ELECTIONS * et
        commit_bound = COMMIT_BOUND_ELECTIONS * et
        converge_bound = CONVERGE_BOUND_ELECTIONS * et
        changes = 0
        for _ in range(LIVENESS_PROPOSALS):
            while True:
                if not self.run_until(
                    self.now + leader_bound * TICK, lambda: self.leader() is not None
                ):
                    raise LivenessFailure(f"no leader within {leader_bound} ticks")
                lead = self.leader()
                assert lead is not None
                start = self.now
                data = self.propose(lead)
                while data is None and self._still_leader(lead):
                    if self.now - start > commit_bound * TICK:
                        raise LivenessFailure(
                            f"leader {lead.id} dropped proposals for {commit_bound} ticks"
                        )
                    self.run_until(self.now + TICK)
                    if self._still_leader(lead):
                        data = self.propose(lead)
                if data is not None:
                    acked = (
                        self.run_until(
                            start + commit_bound * TICK, self._acked_or_deposed(data, lead)
                        )
                        and data in self.checker.acked
                    )
                    if acked:
                        break
                    if self._still_leader(lead):
                        raise LivenessFailure(
                            f"proposal {data!r} to leader {lead.id} not applied by it within "
                            f"{commit_bound} ticks"
                        )
                changes += 1
                self.log("liveness", f"leader {lead.id} lost leadership after healing")
                if changes > 3:
                    raise LivenessFailure("leadership keeps changing in the healed cluster")
        lead = self.leader()
        if lead is None:
            raise LivenessFailure("leadership lost in the healed cluster")
        target = self.checker.node(lead.id).hs.commit
        leader = lead

        def converged() -> bool:
            goal = max(target, max(self.checker.acked.values(), default=0))
            return all(
                n.rn is not None and n.sm_index >= goal
                for n in self.members(leader)
                if not n.removed
            )

        if not self.run_until(self.now + converge_bound * TICK, converged):
            lag = {n.id: n.sm_index for n in self.members(leader)}
            raise LivenessFailure(
                f"members did not apply up to {target} within {converge_bound} ticks: {lag}"
            )
        for n in self.members(leader):
            if not n.removed:
                self.checker.check_acked_durable(n.id)

    def _acked_or_deposed(self, prop: bytes, lead: SimNode) -> Callable[[], bool]:
        return lambda: prop in self.checker.acked or not self._still_leader(lead)

    def _still_leader(self, node: SimNode) -> bool:
        return (
            node.rn is not None
            and node.is_leader
            and not node.removed
            and node.id not in self.globally_removed
        )

    def run(self, script: Callable[[Simulation], None] | None = None) -> None:
        """Bootstrap, run the chaos phase (or ``script`` instead), heal, check liveness."""
        try:
            if self.p.mutation is not None:
                self._core_patch = _patch_core(self.p.mutation)
            self.log("params", self.p)
            self.bootstrap()
            self.push(TICK // 2, _DIRECTOR)
            if script is None:
                self.run_until(self.p.chaos_ticks * TICK)
            else:
                self.scripted = True
                script(self)
            self.heal()
            self.liveness()
        except (InvariantViolation, LivenessFailure) as e:
            raise SimFailure(self.seed, f"{type(e).__name__}: {e}", self.trace_text()) from e
        except Exception as e:
            where = "".join(traceback.format_exception(e)[-6:])
            raise SimFailure(
                self.seed, f"raised {type(e).__name__}: {e}\n{where}", self.trace_text()
            ) from e
        finally:
            if self._core_patch is not None:
                self._core_patch()

    # ---- scripting helpers (directed scenarios in tests) --------------------------------

    def campaign(self, nid: int) -> None:
        node = self.nodes[nid]
        assert node.rn is not None
        self.log("campaign", f"node {nid}")
        node.rn.campaign()
        self.handle_ready(node)

    def partition(self, *sides: list[int]) -> None:
        """Cut the network into ``sides``; a node in no side is isolated."""
        self.group = {nid: i for i, side in enumerate(sides) for nid in side}
        for nid in self.nodes:
            self.group.setdefault(nid, 100 + nid)
        self.log("partition", self.group)

    def run_for(self, units: int) -> None:
        self.run_until(self.now + units)

    def run_until_event(self, pred: Callable[[str, Any], bool], units: int = 50 * TICK) -> None:
        """Step until an event satisfying ``pred(kind, detail)`` is logged; stop right there
        (the rest of that step still completes)."""
        hit: list[bool] = []
        self.watch = lambda kind, detail: hit.append(True) if pred(kind, detail) else None
        try:
            if not self.run_until(self.now + units, lambda: bool(hit)):
                raise AssertionError("scripted scenario: awaited event did not happen")
        finally:
            self.watch = None


def _patch_core(mutation: str) -> Callable[[], None] | None:
    """Break the core on purpose (the mutation tests); returns the undo function.

    ``old_term_commit`` (PySyncObj #169): a leader commits entries of older terms by
    counting replicas. ``commit_regress`` (#166): a follower takes any commit index it is
    told, even a lower one from a stale or reordered message. ``vote_without_log_check``:
    votes ignore whether the candidate's log is up to date (Raft 5.4.1).
    ``read_without_quorum``: ReadIndex answers without a heartbeat round (stale reads from
    a deposed leader). These patch core internals by name: keep them in step with it.
    """
    from etcdpy.raft import log as raft_log

    cls: Any = raft_log.RaftLog
    if mutation == "old_term_commit":
        name = "maybe_commit"

        def maybe_commit(self: Any, max_index: int, term: int) -> bool:
            if max_index > self.committed:
                self.commit_to(max_index)
                return True
            return False

        patched: Any = maybe_commit
    elif mutation == "commit_regress":
        name = "commit_to"

        def commit_to(self: Any, tocommit: int) -> None:
            if tocommit <= self.last_index():
                self.committed = tocommit

        patched = commit_to
    elif mutation == "vote_without_log_check":
        name = "is_up_to_date"

        def is_up_to_date(self: Any, lasti: int, term: int) -> bool:
            return True

        patched = is_up_to_date
    elif mutation == "read_without_quorum":
        from etcdpy.raft import core as raft_core

        cls = raft_core.Raft
        name = "_send_read_index_response"

        def answer_now(self: Any, m: Message) -> None:
            resp = self._response_to_read_index_req(m, self.raft_log.committed)
            if resp is not None:
                self._send(resp)

        patched = answer_now
    else:
        return None
    orig = cls.__dict__[name]
    setattr(cls, name, patched)

    def undo() -> None:
        setattr(cls, name, orig)

    return undo


def run_scenario(
    seed: int,
    *,
    mutation: str | None = None,
    trace: bool = False,
    out: Callable[[str], None] | None = None,
) -> Simulation:
    sim = Simulation(seed, mutation=mutation, trace=trace, out=out)
    sim.run()
    return sim


def parse_seeds(spec: str) -> list[int]:
    """``"500"`` -> seeds 0..499; ``"1000-50000"`` -> that inclusive range; ``"1,5,9"``."""
    seeds: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            seeds.extend(range(int(lo), int(hi) + 1))
        elif "," not in spec and part.isdigit():
            seeds.extend(range(int(part)))
        else:
            seeds.append(int(part))
    return seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Deterministic Raft simulation")
    ap.add_argument("--seed", type=int, help="replay one seed")
    ap.add_argument("--seeds", help="count or range lo-hi (default 200)", default="200")
    ap.add_argument("--trace", action="store_true", help="print every event")
    ap.add_argument("--mutation", choices=MUTATIONS)
    args = ap.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else parse_seeds(args.seeds)
    failed = 0
    total: Counter[str] = Counter()
    for s in seeds:
        try:
            sim = run_scenario(s, mutation=args.mutation, trace=args.trace)
        except SimFailure as f:
            failed += 1
            print(str(f) if args.seed is not None or failed <= 3 else f"seed {s}: {f.reason}")
            continue
        total.update(sim.stats)
        total["acked"] += len(sim.checker.acked)
        total["terms-led"] += len(sim.checker.leader_of_term)
        if args.seed is not None:
            print(
                f"seed {s} ok: {sim.p}, {sim.ticks_done} ticks, "
                f"{len(sim.checker.acked)} acked, {len(sim.checker.leader_of_term)} terms led"
            )
    if len(seeds) > 1:
        print(f"{len(seeds) - failed}/{len(seeds)} seeds passed")
        print("totals:", dict(sorted(total.items())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
