"""EtcdServer: the member's façade for the client APIs (etcd's ``etcdserver.EtcdServer``).

Implements ``server.facade.EtcdServerAPI``. Rules:
1. Writes are propose-and-wait: validate, give the request an ID, encode it once, hand it
   to the raft driver's queue, await the future the applier resolves. The caller's answer
   is sent only after its entry is fsynced in the WAL and applied (3.5 steps 2-9).
2. Reads are served from an MVCC read view on the loop thread; linearizable ones first
   wait for a batched ReadIndex round and ``applied >= read index``; serializable ones don't.
3. Applies run on the KV writer thread in order; their results come back to the loop in
   order (``_on_applied``), which publishes watch events, then wakes waiters.
4. Leader-only duties (lease expiry, cluster version) run in small periodic tasks.
5. Any failure of the raft driver or the applier stops the member (etcd's ``lg.Fatal``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future as CFuture
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from etcdpy.membership.cluster import (
    Member,
    MembershipError,
    RaftCluster,
    compute_member_id,
)
from etcdpy.mvcc import wire
from etcdpy.mvcc.kvstore import KVStore, RawRange
from etcdpy.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
)
from etcdpy.server import apply_cluster, apply_kv, range_wire
from etcdpy.server.apply import ALARM_CORRUPT, ALARM_NOSPACE, Applier, ApplyBatch
from etcdpy.server.apply_lease import LeaseTable
from etcdpy.server.compactor import run_compactor
from etcdpy.server.facade import AuthInfo, WatchStream
from etcdpy.server.logger import LoggerLike
from etcdpy.server.metrics import ServerMetrics
from etcdpy.server.node import RaftNode
from etcdpy.server.quota import Quota
from etcdpy.server.read_index import AppliedWaiter, ReadIndexer
from etcdpy.server.snapshots import SnapshotInstaller
from etcdpy.server.wait import Wait
from etcdpy.server.watch import WatchServer
from etcdpy.util.ids import Generator
from etcdpy.util.loop import call_on_loop

_T = TypeVar("_T")

MAX_GAP_BETWEEN_APPLY_AND_COMMIT = 5000
"""etcd's maxGapBetweenApplyAndCommitIndex: beyond it proposals get ErrTooManyRequests."""

SNAPSHOT_CHUNK = 32 * 1024
LEASE_EXPIRY_INTERVAL = 0.5
EXPIRE_INTERVAL = 0.1
INLINE_RANGE_LIMIT = 100
"""Ranges over a key range read on the loop only up to this limit (one-key gets always)."""
INLINE_SCAN_KEYS = 10_000
"""An encoded range (``range_encoded``) reads at most this many keys on the loop (a few ms,
about the GIL's switch interval) before it moves to a reader thread."""


class ServerEvents(Protocol):
    """Lines tools wait for; ``embed`` wires these to ``observability.logging``."""

    def published(
        self, member_id: int, name: str, client_urls: Sequence[str], cluster_id: int
    ) -> None: ...
    def cluster_version_set(self, version: str, initial: bool) -> None: ...
    def enabled_capabilities(self, version: str) -> None: ...


class KVWriter(Protocol):
    """The KV environment's writer thread (``storage.env.WriterThread``)."""

    def submit(self, fn: Any, /, *args: Any) -> CFuture[Any]: ...

    def post(self, fn: Any, /, *args: Any) -> None: ...


class Snapshotter(Protocol):
    """Records a raft snapshot at an applied index and compacts the WAL behind it."""

    async def snapshot(self, index: int, conf_state: ConfState | None) -> None: ...


class QuietEvents:
    def published(
        self, member_id: int, name: str, client_urls: Sequence[str], cluster_id: int
    ) -> None:
        return None

    def cluster_version_set(self, version: str, initial: bool) -> None:
        return None

    def enabled_capabilities(self, version: str) -> None:
        return None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What the server needs from the configuration (filled by ``embed``)."""

    name: str
    client_urls: tuple[str, ...]
    request_timeout: float = 7.0
    election_timeout: float = 1.0
    max_request_bytes: int = 1536 * 1024
    quota_backend_bytes: int = 0
    server_version: str = "3.5.17"
    cluster_version: str = "3.5.0"
    auto_compaction_mode: str = "periodic"
    auto_compaction_retention: float = 0.0
    """Seconds (periodic) or revisions (revision); 0 disables auto compaction."""
    strict_reconfig_check: bool = True
    snapshot_count: int = 100_000
    """--snapshot-count: applied entries between raft snapshots (then the WAL is compacted)."""


def _alarm_name(alarm: int) -> str:
    return {ALARM_NOSPACE: "NOSPACE", ALARM_CORRUPT: "CORRUPT"}.get(alarm, "NONE")


class EtcdServer:
    def __init__(
        self,
        *,
        member_id: int,
        cluster: RaftCluster,
        kv: KVStore,
        leases: LeaseTable,
        applier: Applier,
        kv_writer: KVWriter,
        settings: ServerSettings,
        snapshotter: Snapshotter | None = None,
        logger: LoggerLike,
        events: ServerEvents | None = None,
        metrics: Any = None,
        watch_progress_interval: float = 600.0,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.id = member_id
        self.cluster = cluster
        self.kv = kv
        self.leases = leases
        self.applier = applier
        self._kv_writer = kv_writer
        self._snapshotter = snapshotter
        self._snap_index = applier.consistent_index
        self._snapshotting = False
        self.snapshot_installer: SnapshotInstaller | None = None
        """Set by ``embed``: installs backends received with raft snapshots."""
        self.settings = settings
        self._log = logger
        self._events: ServerEvents = events or QuietEvents()
        self._metrics = metrics
        self._on_fatal_cb = on_fatal
        self._ids = Generator(member_id, int(time.time() * 1000))
        self._wait = Wait(loop)
        self.applied = AppliedWaiter(loop)
        self.applied.applied = applier.consistent_index
        self.node: RaftNode | None = None
        self._read_indexer: ReadIndexer | None = None
        self._stopped = False
        self.fatal: asyncio.Future[BaseException] = loop.create_future()
        self.revision = kv.current_revision
        self.compact_revision = kv.compact_revision
        self.leader_changed = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once this member's attributes are published (etcd's ReadyNotify)."""
        self._version_proposed = False
        self._watch_listeners: list[Callable[[int, list[Any]], None]] = []
        self._revoking: set[int] = set()
        self._deadlines: deque[tuple[float, int]] = deque()
        self.watch_server = WatchServer(self, watch_progress_interval)
        self.stats = ServerMetrics(metrics if hasattr(metrics, "gauge_func") else None)
        self.stats.bind(self)
        self._last_lead = 0
        # Defragment closes and reopens the KV environment: no read may run meanwhile.
        self._defrag_done: asyncio.Event | None = None
        self._thread_reads = 0
        self._apply_inbox: deque[
            tuple[Sequence[Entry], dict[int, ConfState], Callable[[], None] | None]
        ] = deque()
        self._apply_scheduled = False
        self._apply_broken = False
        """Set on the KV writer thread when a batch failed: nothing later is applied."""
        self._range_headers = wire.HeaderCache()
        self._answered = 0
        """Index of the last batch whose responses left before its KV commit: reads wait
        until it is published (``applied``) so they never miss an acknowledged write."""
        self._reads_idle = asyncio.Event()
        self._reads_idle.set()

    # ------------------------------------------------------------------ wiring

    def attach(self, node: RaftNode) -> None:
        self.node = node
        self._read_indexer = ReadIndexer(node.read_index, self.applied)

    def add_watch_listener(self, fn: Callable[[int, list[Any]], None]) -> None:
        """``fn(revision, events)`` is called on the loop after each write commits."""
        self._watch_listeners.append(fn)

    async def run(self) -> None:
        """Server-side background work (read index loop, leader duties, publish)."""
        assert self.node is not None and self._read_indexer is not None
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._read_indexer.run())
            tg.create_task(self._lease_loop())
            tg.create_task(self._expire_loop())
            tg.create_task(self.watch_server.run())
            tg.create_task(self._publish())
            if self.settings.auto_compaction_retention > 0:
                tg.create_task(run_compactor(self))

    # ------------------------------------------------------------------ RaftApplication

    def apply(self, entries: Sequence[Entry], conf_states: dict[int, ConfState]) -> None:
        """Hand committed entries to the KV writer thread, in order (loop thread)."""
        self._enqueue_apply(entries, conf_states)

    def apply_after_save(
        self, entries: Sequence[Entry], then: Callable[[], None] | None = None
    ) -> None:
        """The same for normal entries, called on the WAL writer thread right after the
        save that made them durable: the apply starts without a round trip through the
        loop (one wake-up less per Ready), still strictly after the fsync. ``then`` runs
        on the loop once the batch is applied and published (or failed)."""
        self._enqueue_apply(entries, {}, then)

    def _enqueue_apply(
        self,
        entries: Sequence[Entry],
        conf_states: dict[int, ConfState],
        then: Callable[[], None] | None = None,
    ) -> None:
        """Group apply: batches wait in one FIFO inbox; one KV writer job takes every batch
        waiting when it starts, so while a KV commit flushes, later batches pile up and
        go together in the next transaction (one flush, one loop wake-up for all)."""
        self._apply_inbox.append((entries, conf_states, then))
        if not self._apply_scheduled:
            self._apply_scheduled = True
            self._kv_writer.post(self._apply_pending)

    def _apply_pending(self) -> None:
        """KV writer thread: apply every batch in the inbox as one, answer the loop once."""
        self._apply_scheduled = False  # before draining: a later append posts again
        inbox = self._apply_inbox
        if not inbox:
            return
        entries, conf, then = inbox.popleft()
        thens = [then] if then is not None else []
        if inbox:
            entries = list(entries)
            conf = dict(conf)
            while inbox:
                more, more_conf, then = inbox.popleft()
                entries.extend(more)
                conf.update(more_conf)
                if then is not None:
                    thens.append(then)
        if self._apply_broken or self._stopped:
            # A batch failed (the member is stopping): applying later entries would skip it.
            self._answer_applied(None, None, thens)
            return
        early = None if conf else partial(self._answer_early, thens)
        try:
            b = self.applier.apply_batch(entries, conf, early)
        except BaseException as exc:
            self._apply_broken = True
            self._answer_applied(None, exc, thens)
            return
        self._answer_applied(b, None, thens)

    def _answer_early(
        self, thens: list[Callable[[], None]], index: int, results: list[tuple[int, Any]]
    ) -> None:
        """KV writer thread, before the commit's flush: send the batch's responses now
        (apply.py rule 5). The loop marks ``index`` answered first, so reads arriving after
        any of these responses wait for the commit; ``thens`` move along (emptied here)."""
        early_thens = thens[:]
        thens.clear()
        call_on_loop(self._loop, self._on_answered, index, results, early_thens)

    def _on_answered(
        self, index: int, results: list[tuple[int, Any]], thens: list[Callable[[], None]]
    ) -> None:
        self._answered = index
        trig = self._wait.trigger
        try:
            for rid, res in results:
                trig(rid, res)
        finally:
            for fn in thens:
                fn()

    def _answer_applied(
        self, b: ApplyBatch | None, exc: BaseException | None, thens: list[Callable[[], None]]
    ) -> None:
        call_on_loop(self._loop, self._on_applied, b, exc, thens)

    def _on_applied(
        self, b: ApplyBatch | None, exc: BaseException | None, thens: list[Callable[[], None]]
    ) -> None:
        try:
            if exc is not None:
                self.on_fatal(exc)
            elif b is not None:
                try:
                    self._publish_applied(b)
                except Exception as err:  # a bug here would leave waiters hanging: stop
                    self.on_fatal(err)
        finally:
            for fn in thens:
                fn()

    def _publish_applied(self, b: ApplyBatch) -> None:
        """3.5 step 8: watch events first, then the applied index, then the waiters."""
        self.kv.drop_shared(stale_only=True)  # do not pin the snapshot before this commit
        self.revision = b.revision
        self.compact_revision = b.compact_revision
        if b.events:
            self.stats.applied_events(b.events)
            for rev, evs in b.events:
                for fn in self._watch_listeners:
                    fn(rev, evs)
        self.applied.applied_to(b.index)
        if b.results:
            trig = self._wait.trigger
            for rid, res in b.results:
                trig(rid, res)
        for kind, val in b.notices:
            self._notice(kind, val)
        if b.nospace:
            self._raise_nospace()
        if (
            self._snapshotter is not None
            and not self._snapshotting
            and b.index - self._snap_index > self.settings.snapshot_count
        ):
            self._snapshotting = True
            self._spawn(self._trigger_snapshot(b.index))

    async def _trigger_snapshot(self, index: int) -> None:
        """etcd's triggerSnapshot: bound the WAL once ``snapshot_count`` entries applied.

        The KV environment is synced first: it opens with ``metasync=False``, and the WAL
        entries a crash could make it forget must not be compacted away.
        """
        assert self._snapshotter is not None
        try:
            be = self.kv.backend
            await asyncio.wrap_future(self._kv_writer.submit(lambda: be.env.sync(True)))
            cs = self.node.state.conf_state if self.node is not None else None
            await self._snapshotter.snapshot(index, cs)
            self._snap_index = index
            self._log.info("saved snapshot", {"snapshot-index": index})
        except Exception as exc:
            self._log.warn("failed to save snapshot", {"error": repr(exc)})
        finally:
            self._snapshotting = False

    async def apply_snapshot(self, snap: Snapshot) -> None:
        """Install the leader's backend staged for ``snap`` (``server.snapshots`` rule 3):
        readers are gated off as for a defragment, the swap and the rebuild run on the KV
        writer thread after every earlier apply, then the new state is published here."""
        inst = self.snapshot_installer
        if inst is None:
            raise NotImplementedError("snapshot install is not configured")
        await self._read_gate()
        done = asyncio.Event()
        self._defrag_done = done
        try:
            await self._reads_idle.wait()
            self.kv.drop_shared()  # its environment is about to be swapped
            cf = self._kv_writer.submit(
                inst.install_on_kv_thread,
                snap,
                self.kv.backend,
                self.kv,
                self.leases,
                self.cluster,
                self.applier,
            )
            res = await asyncio.wrap_future(cf, loop=self._loop)
        finally:
            self._defrag_done = None
            done.set()
        self.revision = res.revision
        self.compact_revision = res.compact_revision
        # The installed backend may be ahead of the snapshot (and of this WAL's log): count
        # the next --snapshot-count entries from there, so the next raft snapshot is taken at
        # an index the WAL holds.
        self._snap_index = max(self._snap_index, snap.metadata.index, res.consistent_index)
        self.watch_server.hub.restore(res.revision)
        self.watch_server._sync_needed.set()
        self.applied.applied_to(res.consistent_index)
        self._log.info(
            "applied snapshot",
            {"snapshot-index": snap.metadata.index, "consistent-index": res.consistent_index},
        )

    def on_read_states(self, states: Sequence[ReadState]) -> None:
        if self._read_indexer is not None:
            self._read_indexer.on_read_states(states)

    def on_soft_state(self, ss: SoftState) -> None:
        if ss.lead != self._last_lead and ss.lead != 0:
            self.stats.leader_changed()
        self._last_lead = ss.lead
        self.leader_changed.set()
        self.leader_changed = asyncio.Event()
        if ss.raft_state == StateType.LEADER:
            self.leases.promote(self.settings.election_timeout)
            self._version_proposed = False
            self._loop.call_soon(self._maybe_set_cluster_version)
        else:
            self.leases.demote()

    def on_proposal_dropped(self, req_id: int) -> None:
        self.stats.proposal_failed()
        self._wait.fail(
            req_id, errors.ErrGRPCNoLeader() if self.leader == 0 else errors.ErrGRPCTimeout()
        )

    def on_fatal(self, exc: BaseException) -> None:
        if self._stopped:
            return
        self._log.error("member stopped on a fatal error", error=repr(exc))
        self._stop(errors.ErrGRPCStopped())
        if not self.fatal.done():
            self.fatal.set_result(exc)
        if self._on_fatal_cb is not None:
            self._on_fatal_cb(exc)

    def _stop(self, exc: BaseException) -> None:
        self._stopped = True
        self.kv.drop_shared()  # the backend closes after the member stops
        self._wait.fail_all(exc)
        self.applied.fail_all(exc)
        if self._read_indexer is not None:
            self._read_indexer.stop(exc)
        self.watch_server.close_all()

    def stop(self) -> None:
        self._stop(errors.ErrGRPCStopped())

    # ------------------------------------------------------------------ notices

    def _notice(self, kind: str, val: Any) -> None:
        if kind == "published":
            if val == self.id:
                m = self.cluster.members.get(self.id)
                self._events.published(
                    self.id,
                    m.name if m else self.settings.name,
                    m.client_urls if m else (),
                    self.cluster.cluster_id,
                )
        elif kind == "version":
            ver, initial = val
            self._events.cluster_version_set(ver, initial)
            self._events.enabled_capabilities(_major_minor(ver))

    # ------------------------------------------------------------------ state

    @property
    def term(self) -> int:
        return self.node.state.term if self.node is not None else 0

    @property
    def leader(self) -> int:
        return self.node.state.lead if self.node is not None else 0

    @property
    def is_leader(self) -> bool:
        return self.node is not None and self.node.state.is_leader

    @property
    def committed_index(self) -> int:
        return self.node.state.commit if self.node is not None else 0

    @property
    def applied_index(self) -> int:
        return self.applied.applied

    @property
    def defragmenting(self) -> bool:
        return self._defrag_done is not None

    @property
    def pending_proposals(self) -> int:
        return len(self._wait)

    @property
    def quota_bytes(self) -> int:
        q = self.settings.quota_backend_bytes
        return Quota.DEFAULT if q == 0 else q

    def header(self) -> pb.ResponseHeader:
        return pb.ResponseHeader(
            cluster_id=self.cluster.cluster_id,
            member_id=self.id,
            revision=self.revision,
            raft_term=self.term,
        )

    def _cluster_header(self) -> pb.ResponseHeader:
        """The Cluster service's header: etcd's ``ClusterServer.header()`` has no revision."""
        return pb.ResponseHeader(
            cluster_id=self.cluster.cluster_id, member_id=self.id, raft_term=self.term
        )

    def _fill(self, h: pb.ResponseHeader) -> None:
        h.cluster_id = self.cluster.cluster_id
        h.member_id = self.id
        h.raft_term = self.term
        if not h.revision:
            h.revision = self.revision

    # ------------------------------------------------------------------ propose & wait

    def _submit(self, r: InternalRaftRequest) -> tuple[int, asyncio.Future[Any]]:
        """Validate, number and queue a proposal now; the caller awaits with ``_await``."""
        if self._stopped or self.node is None:
            raise errors.ErrGRPCStopped()
        if self.committed_index - self.applied.applied > MAX_GAP_BETWEEN_APPLY_AND_COMMIT:
            raise errors.ErrGRPCRequestTooManyRequests()
        rid = self._ids.next()
        r.header.ID = rid
        data = r.SerializeToString()
        if len(data) > self.settings.max_request_bytes:
            raise errors.ErrGRPCRequestTooLarge()
        fut = self._wait.register(rid)
        self.node.propose(data, rid)
        return rid, fut

    async def _await(self, rid: int, fut: asyncio.Future[Any]) -> Any:
        """Wait for the applier's answer; ``_expire_loop`` fails it at the deadline."""
        self._deadlines.append((self._loop.time() + self.settings.request_timeout, rid))
        try:
            res = await fut
        except asyncio.CancelledError:
            self._wait.cancel(rid)
            raise
        if isinstance(res, BaseException):
            raise res
        return res

    async def _expire_loop(self) -> None:
        """Time out proposals (etcd's ErrTimeout) with one timer for all of them.

        Deadlines are appended in increasing order (one constant timeout), so the expired
        ones are at the left of the deque; a per-request timer would cost more than this.
        """
        dq = self._deadlines
        while not self._stopped:
            await asyncio.sleep(EXPIRE_INTERVAL)
            now = self._loop.time()
            while dq and dq[0][0] <= now:
                _, rid = dq.popleft()
                if self._wait.is_registered(rid):
                    self.stats.proposal_failed()
                    exc: errors.EtcdError = (
                        errors.ErrGRPCTimeoutDueToLeaderFail()
                        if self.leader == 0
                        else errors.ErrGRPCTimeout()
                    )
                    self._wait.fail(rid, exc)

    async def _propose(self, r: InternalRaftRequest) -> Any:
        rid, fut = self._submit(r)
        return await self._await(rid, fut)

    def _check_nospace(self) -> None:
        if self.applier.alarms and self.applier.has_alarm(ALARM_NOSPACE):
            raise errors.ErrGRPCNoSpace()

    def _raise_nospace(self) -> None:
        if self.applier.has_alarm(ALARM_NOSPACE):
            return
        self._log.warn("alarm raised", alarm="NOSPACE", **{"from": f"{self.id:x}"})
        req = InternalRaftRequest(
            alarm=pb.AlarmRequest(
                action=pb.AlarmRequest.ACTIVATE, memberID=self.id, alarm=pb.NOSPACE
            )
        )
        try:
            rid, fut = self._submit(req)
        except errors.EtcdError:
            return
        self._spawn(self._await(rid, fut))

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)
        task.add_done_callback(_ignore_result)

    async def linearizable_read(self) -> None:
        if self._stopped or self._read_indexer is None or self.node is None:
            raise errors.ErrGRPCStopped()
        st = self.node.state
        cs = st.conf_state
        if st.is_leader and cs is not None and cs.voters == (self.id,) and not cs.voters_outgoing:
            # The only voter leads: nobody else can commit, and every write acknowledged
            # before this read is applied; entries committed before (e.g. replayed after a
            # restart) must be applied too. No ReadIndex round is needed (Raft §6.4's
            # leader check is trivially true).
            # ``_answered``: a response that left before its KV commit may be ahead of the
            # driver's view of the commit index (it is told after the waiters).
            target = max(st.commit, self._answered)
            if self.applied.applied >= target:
                return
            fut: asyncio.Future[None] = self.applied.wait(target)
        else:
            fut = self._read_indexer.wait()
        try:
            async with asyncio.timeout(self.settings.request_timeout):
                await fut
        except TimeoutError:
            if self.leader == 0:
                raise errors.ErrGRPCNoLeader() from None
            raise errors.ErrGRPCTimeout() from None

    # ------------------------------------------------------------------ KV

    async def range(self, req: pb.RangeRequest, auth: AuthInfo | None = None) -> pb.RangeResponse:
        if not req.serializable:
            await self.linearizable_read()
        elif self._answered > self.applied.applied:
            await self.settle()
        self.stats.ranged()
        if req.range_end and not 0 < req.limit <= INLINE_RANGE_LIMIT:
            # A scan of unknown size goes to a reader thread: the loop keeps serving.
            resp = await self.run_read(self._range_now, req)
        else:
            if self._defrag_done is not None:
                await self._read_gate()
            resp = self._range_now(req, shared=True)
        self._fill(resp.header)
        return resp

    def _range_now(self, req: pb.RangeRequest, shared: bool = False) -> pb.RangeResponse:
        """``shared``: on the event loop, through ``KVStore.shared_read`` (never on a reader
        thread)."""
        if shared:
            return apply_kv.range_(self.kv.shared_read(), req)
        with self.kv.read() as view:
            return apply_kv.range_(view, req)

    async def range_encoded(self, req: pb.RangeRequest, auth: AuthInfo | None = None) -> bytes:
        """:meth:`range` answered as the serialized ``RangeResponse`` (the gRPC path): the
        stored values are concatenated, never parsed (``server/range_wire.py``). A range
        small enough is read on the loop — cheaper than a reader thread, which would only
        trade the GIL back and forth — and a bigger one on a reader thread."""
        descend = range_wire.descend_of(req)
        if descend is None:
            return (await self.range(req, auth)).SerializeToString()
        if not req.serializable:
            await self.linearizable_read()
        elif self._answered > self.applied.applied:
            await self.settle()
        self.stats.ranged()
        if self._defrag_done is not None:
            await self._read_gate()
        small = not req.range_end or 0 < req.limit <= INLINE_RANGE_LIMIT
        rr = self._range_raw_now(req, descend, 0 if small else INLINE_SCAN_KEYS, shared=True)
        if rr is None and not small:
            rr = await self.run_read(self._range_raw_now, req, descend, 0)
        if rr is None:  # an index entry without its value: the object path reports it
            resp = self._range_now(req, shared=True)
            self._fill(resp.header)
            return resp.SerializeToString()
        return range_wire.encode(
            rr, self.cluster.cluster_id, self.id, self.term, self._range_headers
        )

    def _range_raw_now(
        self, req: pb.RangeRequest, descend: bool, max_keys: int, shared: bool = False
    ) -> RawRange | None:
        if shared:
            return range_wire.range_raw(self.kv.shared_read(), req, descend, max_keys)
        with self.kv.read() as view:
            return range_wire.range_raw(view, req, descend, max_keys)

    async def put(self, req: pb.PutRequest, auth: AuthInfo | None = None) -> pb.PutResponse:
        self._check_nospace()
        resp: pb.PutResponse = await self._propose(InternalRaftRequest(put=req))
        self._fill(resp.header)
        return resp

    async def delete_range(
        self, req: pb.DeleteRangeRequest, auth: AuthInfo | None = None
    ) -> pb.DeleteRangeResponse:
        resp: pb.DeleteRangeResponse = await self._propose(InternalRaftRequest(delete_range=req))
        self._fill(resp.header)
        return resp

    async def txn(self, req: pb.TxnRequest, auth: AuthInfo | None = None) -> pb.TxnResponse:
        self.stats.txn()
        if not apply_kv.is_txn_write(req):
            if not apply_kv.is_txn_serializable(req):
                await self.linearizable_read()
            elif self._answered > self.applied.applied:
                await self.settle()
            if self._defrag_done is not None:
                await self._read_gate()
            resp = apply_kv.txn(self.kv.shared_read(), None, req, self.leases)
        else:
            self._check_nospace()
            resp = await self._propose(InternalRaftRequest(txn=req))
        self._fill(resp.header)
        return resp

    async def compact(
        self, req: pb.CompactionRequest, auth: AuthInfo | None = None
    ) -> pb.CompactionResponse:
        resp: pb.CompactionResponse = await self._propose(InternalRaftRequest(compaction=req))
        self._fill(resp.header)
        return resp

    # ------------------------------------------------------------------ watch

    def watch_stream(self, auth: AuthInfo | None = None) -> WatchStream:
        if self._stopped:
            raise errors.ErrGRPCStopped()
        return self.watch_server.new_stream(auth)

    # ------------------------------------------------------------------ lease

    async def lease_grant(self, req: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse:
        self._check_nospace()
        if req.ID == 0:
            req = pb.LeaseGrantRequest(TTL=req.TTL, ID=self._ids.next() & ((1 << 63) - 1))
        resp: pb.LeaseGrantResponse = await self._propose(InternalRaftRequest(lease_grant=req))
        self._fill(resp.header)
        return resp

    async def lease_revoke(self, req: pb.LeaseRevokeRequest) -> pb.LeaseRevokeResponse:
        resp: pb.LeaseRevokeResponse = await self._propose(InternalRaftRequest(lease_revoke=req))
        self._fill(resp.header)
        return resp

    async def lease_renew(self, lease_id: int) -> pb.LeaseKeepAliveResponse:
        if self._stopped:
            raise errors.ErrGRPCStopped()
        if not self.is_leader:
            # TODO(cluster): forward to the leader over the peer transport.
            if self.leader == 0:
                raise errors.ErrGRPCNoLeader()
            raise errors.ErrGRPCNotLeader()
        # A new leader may not have applied every grant yet (etcd waits for applied index).
        if self.applied.applied < self.committed_index:
            await self.applied.wait(self.committed_index)
        r = self.leases.renew(lease_id)
        if r.expired:
            raise errors.ErrGRPCLeaseNotFound()
        return pb.LeaseKeepAliveResponse(header=self.header(), ID=lease_id, TTL=r.ttl)

    async def lease_time_to_live(
        self, req: pb.LeaseTimeToLiveRequest
    ) -> pb.LeaseTimeToLiveResponse:
        await self.linearizable_read()
        ttl = self.leases.time_to_live(req.ID, req.keys)
        resp = pb.LeaseTimeToLiveResponse(
            header=self.header(), ID=ttl.id, TTL=ttl.ttl, grantedTTL=ttl.granted_ttl
        )
        if req.keys:
            resp.keys.extend(ttl.keys)
        return resp

    async def lease_leases(self, req: pb.LeaseLeasesRequest) -> pb.LeaseLeasesResponse:
        await self.linearizable_read()
        resp = pb.LeaseLeasesResponse(header=self.header())
        for lid in self.leases.ids():
            resp.leases.add(ID=lid)
        return resp

    async def _lease_loop(self) -> None:
        """Leader only: propose LeaseRevoke for expired leases (etcd's revokeExpiredLeases)."""
        while not self._stopped:
            await asyncio.sleep(LEASE_EXPIRY_INTERVAL)
            if not self.is_leader:
                continue
            for lid in self.leases.expired():
                if lid in self._revoking:
                    continue
                self._revoking.add(lid)
                self._spawn(self._revoke_expired(lid))

    async def _revoke_expired(self, lid: int) -> None:
        try:
            await self._propose(InternalRaftRequest(lease_revoke=pb.LeaseRevokeRequest(ID=lid)))
        except errors.EtcdError as exc:
            self._log.debug("failed to revoke expired lease", lease=lid, error=str(exc))
        finally:
            self._revoking.discard(lid)

    # ------------------------------------------------------------------ cluster

    def _member_pb(self, mid: int) -> pb.Member:
        m = self.cluster.members[mid]
        return pb.Member(
            ID=m.id,
            name=m.name,
            peerURLs=list(m.peer_urls),
            clientURLs=list(m.client_urls),
            isLearner=m.is_learner,
        )

    async def member_list(self, req: pb.MemberListRequest) -> pb.MemberListResponse:
        if req.linearizable:
            await self.linearizable_read()
        resp = pb.MemberListResponse(header=self._cluster_header())
        for mid in self.cluster.member_ids():
            resp.members.append(self._member_pb(mid))
        return resp

    def _members_pb(self) -> list[pb.Member]:
        return [self._member_pb(mid) for mid in self.cluster.member_ids()]

    async def _propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a membership change and wait until it is applied here."""
        if self._stopped or self.node is None:
            raise errors.ErrGRPCStopped()
        rid = self._ids.next()
        cc = ConfChange(type=cc.type, node_id=cc.node_id, context=cc.context, id=rid)
        fut = self._wait.register(rid)
        self.node.propose_conf_change(cc, rid)
        res = await self._await(rid, fut)
        if isinstance(res, BaseException):
            raise res

    def _ready_to_add_voter(self) -> bool:
        """etcd's IsReadyToAddVotingMember (--strict-reconfig-check)."""
        voters = [m for m in self.cluster.members.values() if not m.is_learner]
        nmembers = len(voters) + 1
        nstarted = sum(1 for m in voters if m.name)
        if nstarted == 1 and nmembers == 2:
            return True  # growing a one-member cluster (restore procedure)
        return nstarted >= nmembers // 2 + 1

    def _ready_to_remove_voter(self, mid: int) -> bool:
        voters = [m for m in self.cluster.members.values() if not m.is_learner]
        nmembers = len(voters) - (1 if any(m.id == mid for m in voters) else 0)
        nstarted = sum(1 for m in voters if m.name and m.id != mid)
        return nstarted >= nmembers // 2 + 1

    async def member_add(self, req: pb.MemberAddRequest) -> pb.MemberAddResponse:
        urls = tuple(sorted(req.peerURLs))
        if not urls or any("://" not in u for u in urls):
            raise errors.ErrGRPCMemberBadURLs()
        mid = compute_member_id(urls, "", int(time.time()))
        m = Member(mid, "", urls, (), req.isLearner)
        try:
            self.cluster.validate_add(m)
        except MembershipError as exc:
            raise apply_cluster.map_membership_error(exc) from None
        if self.settings.strict_reconfig_check and not req.isLearner:
            if not self._ready_to_add_voter():
                raise errors.ErrGRPCMemberNotEnoughStarted()
        kind = ConfChangeType.AddLearnerNode if req.isLearner else ConfChangeType.AddNode
        await self._propose_conf_change(ConfChange(kind, mid, m.to_json()))
        return pb.MemberAddResponse(
            header=self._cluster_header(), member=self._member_pb(mid), members=self._members_pb()
        )

    async def member_remove(self, req: pb.MemberRemoveRequest) -> pb.MemberRemoveResponse:
        try:
            self.cluster.validate_remove(req.ID)
        except MembershipError as exc:
            raise apply_cluster.map_membership_error(exc) from None
        m = self.cluster.members[req.ID]
        if self.settings.strict_reconfig_check and not m.is_learner:
            if not self._ready_to_remove_voter(req.ID):
                raise errors.ErrGRPCMemberNotEnoughStarted()
        await self._propose_conf_change(ConfChange(ConfChangeType.RemoveNode, req.ID))
        return pb.MemberRemoveResponse(header=self._cluster_header(), members=self._members_pb())

    async def member_update(self, req: pb.MemberUpdateRequest) -> pb.MemberUpdateResponse:
        m = self.cluster.members.get(req.ID)
        if m is None:
            raise errors.ErrGRPCMemberNotFound()
        urls = tuple(sorted(req.peerURLs))
        mine = {u for x in self.cluster.members.values() if x.id != req.ID for u in x.peer_urls}
        if any(u in mine for u in urls):
            raise errors.ErrGRPCPeerURLExist()
        nm = Member(m.id, m.name, urls, m.client_urls, m.is_learner)
        await self._propose_conf_change(ConfChange(ConfChangeType.UpdateNode, req.ID, nm.to_json()))
        return pb.MemberUpdateResponse(header=self._cluster_header(), members=self._members_pb())

    async def member_promote(self, req: pb.MemberPromoteRequest) -> pb.MemberPromoteResponse:
        m = self.cluster.members.get(req.ID)
        if m is None:
            raise errors.ErrGRPCMemberNotFound()
        if not m.is_learner:
            raise errors.ErrGRPCMemberNotLearner()
        if not self.is_leader:
            raise errors.ErrGRPCNotLeader()
        assert self.node is not None
        pr = self.node.progress().get(req.ID)
        lead_pr = self.node.progress().get(self.id)
        if pr is None or lead_pr is None or pr.match < lead_pr.match * 0.9:
            raise errors.ErrGRPCLearnerNotReady()
        await self._propose_conf_change(ConfChange(ConfChangeType.AddNode, req.ID, m.to_json()))
        return pb.MemberPromoteResponse(header=self._cluster_header(), members=self._members_pb())

    async def _publish(self) -> None:
        """Propose this member's name and client URLs until applied (etcd's publishV3)."""
        from etcdpy._pb.membershippb import membership_pb2 as mpb

        attrs = mpb.Attributes(name=self.settings.name, client_urls=list(self.settings.client_urls))
        req = InternalRaftRequest(
            cluster_member_attr_set=mpb.ClusterMemberAttrSetRequest(
                member_ID=self.id, member_attributes=attrs
            )
        )
        while not self._stopped:
            if self.leader == 0:
                await self._wait_leader(self.settings.request_timeout)
                continue
            try:
                await self._propose(req)
            except errors.EtcdError as exc:
                self._log.warn(
                    "failed to publish local member to cluster through raft", error=str(exc)
                )
                continue
            self.ready.set()
            return

    async def _wait_leader(self, timeout: float) -> None:
        ev = self.leader_changed
        try:
            async with asyncio.timeout(timeout):
                await ev.wait()
        except TimeoutError:
            pass

    def _maybe_set_cluster_version(self) -> None:
        """Leader: set the cluster version once (etcd's monitorVersions, single version)."""
        if self._version_proposed or not self.is_leader or self._stopped:
            return
        want = self.settings.cluster_version
        if self.cluster.version is not None and _ver(self.cluster.version) >= _ver(want):
            return
        from etcdpy._pb.membershippb import membership_pb2 as mpb

        self._version_proposed = True
        req = InternalRaftRequest(cluster_version_set=mpb.ClusterVersionSetRequest(ver=want))
        self._spawn(self._propose(req))

    # ------------------------------------------------------------------ maintenance

    async def status(self, req: pb.StatusRequest) -> pb.StatusResponse:
        be = self.kv.backend
        size, in_use = await self.run_read(lambda: (be.db_size(), be.db_size_in_use()))
        resp = pb.StatusResponse(
            header=self.header(),
            version=self.settings.server_version,
            dbSize=size,
            leader=self.leader,
            raftIndex=self.committed_index,
            raftTerm=self.term,
            raftAppliedIndex=self.applied.applied,
            dbSizeInUse=in_use,
            isLearner=bool(
                self.cluster.members.get(self.id) and self.cluster.members[self.id].is_learner
            ),
        )
        if self.settings.quota_backend_bytes >= 0:
            resp.dbSizeQuota = self.settings.quota_backend_bytes or Quota.DEFAULT
        for mid, alarm in sorted(self.applier.alarms):
            resp.errors.append(f"memberID:{mid} alarm:{_alarm_name(alarm)} ")
        return resp

    async def hash(self, req: pb.HashRequest) -> pb.HashResponse:
        h = await self.run_read(self.kv.backend.hash)
        return pb.HashResponse(header=self.header(), hash=h)

    async def hash_kv(self, req: pb.HashKVRequest) -> pb.HashKVResponse:
        try:
            r = await self.run_read(self.kv.hash_kv, req.revision)
        except Exception as exc:
            from etcdpy.mvcc import errors as mvcc_errors

            if isinstance(exc, mvcc_errors.MvccError):
                raise apply_kv.map_mvcc_error(exc) from None
            raise
        return pb.HashKVResponse(
            header=self.header(),
            hash=r.hash,
            compact_revision=r.compact_revision,
            hash_revision=r.hash_revision,
        )

    async def defragment(self, req: pb.DefragmentRequest) -> pb.DefragmentResponse:
        """Rewrite the KV file without free pages. The environment is closed and reopened
        on the KV writer thread, so new reads wait and running thread reads drain first."""
        await self._read_gate()
        done = asyncio.Event()
        self._defrag_done = done
        try:
            await self._reads_idle.wait()
            self.kv.drop_shared()  # its environment is about to be closed
            cf = self._kv_writer.submit(self.kv.backend.defrag)
            await asyncio.wrap_future(cf, loop=self._loop)
        finally:
            self._defrag_done = None
            done.set()
        return pb.DefragmentResponse(header=self.header())

    async def _read_gate(self) -> None:
        while self._defrag_done is not None:
            await self._defrag_done.wait()

    async def settle(self) -> None:
        """Return once every response already sent is visible to reads: batches answered
        before their KV commit (apply.py rule 5) are committed and published. Reads call
        it so a client never reads a state older than a write it was told about. A commit
        that does not come within the request timeout fails the read (etcd's ErrTimeout)."""
        if self._answered > self.applied.applied:
            try:
                async with asyncio.timeout(self.settings.request_timeout):
                    await self.applied.wait(self._answered)
            except TimeoutError:
                raise errors.ErrGRPCTimeout() from None

    async def run_read(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a backend read on a reader thread (never during a defragment)."""
        if self._answered > self.applied.applied:
            await self.settle()
        if self._defrag_done is not None:
            await self._read_gate()
        self._thread_reads += 1
        self._reads_idle.clear()
        try:
            return await self._loop.run_in_executor(None, fn, *args)
        finally:
            self._thread_reads -= 1
            if self._thread_reads == 0:
                self._reads_idle.set()

    async def alarm(self, req: pb.AlarmRequest) -> pb.AlarmResponse:
        resp: pb.AlarmResponse = await self._propose(InternalRaftRequest(alarm=req))
        resp.header.CopyFrom(self.header())
        return resp

    async def snapshot(self) -> AsyncIterator[pb.SnapshotResponse]:
        """A consistent copy of the backend, then a SHA-256 trailer (etcd's Snapshot)."""
        tmp = tempfile.mkdtemp(prefix="etcdpy-snap-")
        try:
            await self.run_read(self.kv.backend.snapshot_to, tmp)
            path = os.path.join(tmp, "data.mdb")
            total = os.path.getsize(path)
            h = hashlib.sha256()
            sent = 0
            with open(path, "rb") as f:
                while True:
                    chunk = await self._loop.run_in_executor(None, f.read, SNAPSHOT_CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    sent += len(chunk)
                    yield pb.SnapshotResponse(
                        header=self.header(),
                        remaining_bytes=total - sent + h.digest_size,
                        blob=chunk,
                        version=self.settings.server_version,
                    )
            yield pb.SnapshotResponse(
                header=self.header(),
                remaining_bytes=0,
                blob=h.digest(),
                version=self.settings.server_version,
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def move_leader(self, req: pb.MoveLeaderRequest) -> pb.MoveLeaderResponse:
        if not self.is_leader:
            raise errors.ErrGRPCNotLeader()
        if req.targetID not in self.cluster.members or req.targetID == 0:
            raise errors.ErrGRPCBadLeaderTransferee()
        if req.targetID != self.id:
            assert self.node is not None
            self.node.transfer_leader(req.targetID)
            deadline = self._loop.time() + self.settings.request_timeout
            while self.leader != req.targetID:
                left = deadline - self._loop.time()
                if left <= 0:
                    raise errors.ErrGRPCTimeout()
                await self._wait_leader(left)
        return pb.MoveLeaderResponse(header=self.header())

    # ------------------------------------------------------------------ health / identity

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def log(self) -> LoggerLike:
        return self._log

    def has_leader(self) -> bool:
        return self.leader != 0

    def raft_status(self) -> dict[str, Any] | None:
        """Go raft's ``Status`` as etcd publishes it under ``raft.status`` (/debug/vars)."""
        return None if self.node is None else self.node.raft_status()

    def is_healthy(self) -> tuple[bool, str]:
        if self._stopped:
            return False, "STOPPED"
        if self.leader == 0:
            return False, "RAFT NO LEADER"
        if self.applier.alarms:
            names = sorted({_alarm_name(a) for _, a in self.applier.alarms})
            return False, "ALARM " + ",".join(names)
        return True, ""

    @property
    def server_version(self) -> str:
        return self.settings.server_version

    @property
    def cluster_version(self) -> str:
        v = self.cluster.version
        return v if v is not None else "not_decided"

    @property
    def metrics(self) -> Any:
        return self._metrics


def _ver(ver: str) -> tuple[int, ...]:
    return tuple(int(p) for p in ver.split(".") if p.isdigit())


def _major_minor(ver: str) -> str:
    parts = ver.split(".")
    return ".".join(parts[:2])


def _ignore_result(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
