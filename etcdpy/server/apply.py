"""The applier: committed raft entries → state changes, one backend transaction per batch.

Runs on the KV writer thread only (ARCHITECTURE 3.4, 3.5 step 7). Rules:
1. One LMDB write transaction per batch of committed entries; ``consistent_index`` (and its
   term) is written in that same transaction, so after a crash the KV data and the applied
   index agree and the server replays exactly the entries after it.
2. Entries at or below ``consistent_index`` are skipped (replay after restart is idempotent).
3. A request that fails with an ``EtcdError`` fails alone (its proposer gets the error);
   any other exception aborts the batch and stops the member (etcd panics): replicas must
   never diverge because one of them skipped an entry.
4. Nothing here touches asyncio. Results (responses, watch events, membership news) are
   returned to the loop, which publishes them after the commit (3.5 step 8).
5. Responses may leave before the KV commit (``answer_early``), as etcd answers once the
   entry is applied to bbolt's uncommitted batch: the entries are already durable in the
   WAL, so a crash before the commit replays them to the same results. Only the responses
   go early; the applied index and watch events are published after the commit, and the
   server holds reads until then (``EtcdServer._answered``), so a client never reads a
   state older than a write it was told about.

Failpoints (etcd's names, crash tests arm them): ``beforeApplyOneEntryNormal`` and
``beforeApplyOneConfChange`` before each entry, ``beforeCommit`` before the batch's KV
commit, ``afterCommit`` after it (before the loop publishes anything or wakes a waiter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from etcdpy.membership.cluster import RaftCluster
from etcdpy.mvcc.kvstore import Event, KVStore, TxnWrite
from etcdpy.raft.confchange_codec import decode as decode_conf_change
from etcdpy.raft.types import ConfState, Entry, EntryType
from etcdpy.server import apply_cluster, apply_kv, apply_lease
from etcdpy.server.apply_lease import LeaseTable
from etcdpy.storage.backend import BUCKET_ALARM, Backend, WriteTxn
from etcdpy.util.failpoints import Failpoints

ALARM_NONE = 0
ALARM_NOSPACE = 1
ALARM_CORRUPT = 2


@dataclass(slots=True)
class ApplyBatch:
    """What one batch produced, handed back to the event loop (after the commit)."""

    index: int = 0
    term: int = 0
    revision: int = 0
    compact_revision: int = 0
    results: list[tuple[int, Any]] = field(default_factory=list)
    """(request id, response message or EtcdError) for entries with an id."""
    events: list[tuple[int, list[Event]]] = field(default_factory=list)
    """(revision, changes) per write, in order, for the watch hub."""
    notices: list[tuple[str, Any]] = field(default_factory=list)
    """Membership news for logs: ("published", member_id), ("version", (ver, initial))…"""
    nospace: bool = False
    """A write was refused for the quota: the server raises the NOSPACE alarm."""


class QuotaLike(Protocol):
    def available(self, cost: int) -> bool: ...


class NoQuota:
    def available(self, cost: int) -> bool:
        return True


class Applier:
    """Owns the KV-side state machine: MVCC store, leases, membership, alarms."""

    def __init__(
        self,
        backend: Backend,
        kv: KVStore,
        leases: LeaseTable,
        cluster: RaftCluster,
        *,
        quota: QuotaLike | None = None,
        failpoints: Failpoints | None = None,
    ) -> None:
        self._fp = failpoints if failpoints is not None else Failpoints()
        self.backend = backend
        self.kv = kv
        self.leases = leases
        self.cluster = cluster
        self.quota: QuotaLike = quota or NoQuota()
        self.consistent_index = backend.consistent_index()
        self.alarms: set[tuple[int, int]] = set()
        with backend.read_txn() as r:
            for k, _ in r.unsafe_for_each(BUCKET_ALARM):
                am = pb.AlarmMember.FromString(bytes(k))
                self.alarms.add((am.memberID, am.alarm))

    def has_alarm(self, alarm: int) -> bool:
        return any(a == alarm for _, a in self.alarms)

    # ------------------------------------------------------------------ the batch

    def apply_batch(
        self,
        entries: Sequence[Entry],
        conf_states: dict[int, ConfState],
        answer_early: Callable[[int, list[tuple[int, Any]]], None] | None = None,
    ) -> ApplyBatch:
        """Apply ``entries`` in one transaction. ``answer_early(index, results)``, if
        given, is called with the batch's responses once everything is applied, before the
        commit's flush (rule 5); they are then not in the returned batch."""
        out = ApplyBatch()
        todo = [e for e in entries if e.index > self.consistent_index]
        if not todo:
            out.index = self.consistent_index
            out.revision = self.kv.current_revision
            out.compact_revision = self.kv.compact_revision
            return out
        hit = self._fp.hit
        wtxn = self.backend.write_txn()
        try:
            for e in todo:
                if e.type == EntryType.NORMAL:
                    hit("beforeApplyOneEntryNormal")
                    if e.data:
                        self._apply_normal(wtxn, e, out)
                else:
                    hit("beforeApplyOneConfChange")
                    cc = decode_conf_change(e.type, e.data)
                    res = apply_cluster.apply_conf_change(self.cluster, wtxn, cc)
                    rid = apply_cluster.conf_change_id(cc)
                    if rid:
                        out.results.append((rid, res))
            last = todo[-1]
            wtxn.set_consistent_index(last.index, last.term)
            if answer_early is not None and out.results and not out.nospace:
                # (a refused write waits: the NOSPACE alarm is raised when it is published)
                results, out.results = out.results, []
                answer_early(last.index, results)
            hit("beforeCommit")
            wtxn.commit()
        except BaseException:
            wtxn.abort()
            raise
        self.consistent_index = last.index
        out.index = last.index
        out.term = last.term
        out.revision = self.kv.current_revision
        out.compact_revision = self.kv.compact_revision
        hit("afterCommit")
        return out

    def _apply_normal(self, wtxn: WriteTxn, e: Entry, out: ApplyBatch) -> None:
        r = InternalRaftRequest.FromString(e.data)
        rid = r.header.ID or r.ID
        try:
            resp = self._dispatch(wtxn, r, out, len(e.data))
        except errors.EtcdError as exc:
            resp = errors.to_grpc(exc)
        if rid:
            out.results.append((rid, resp))

    def _write_allowed(self, cost: int, out: ApplyBatch) -> None:
        """etcd's capped applier + quota applier: refuse writes that would grow the db."""
        if self.has_alarm(ALARM_NOSPACE):
            raise errors.ErrGRPCNoSpace()
        if not self.quota.available(cost):
            out.nospace = True
            raise errors.ErrGRPCNoSpace()

    def _dispatch(self, wtxn: WriteTxn, r: InternalRaftRequest, out: ApplyBatch, cost: int) -> Any:
        kind = _which(r)
        kv = self.kv
        leases = self.leases
        if kind == "put":
            self._write_allowed(cost, out)
            tw = kv.write(wtxn)
            resp: Any = apply_kv.put(tw, r.put, leases)
            return _end_write(tw, resp, out)
        if kind == "delete_range":
            tw = kv.write(wtxn)
            resp = apply_kv.delete_range(tw, r.delete_range, leases)
            return _end_write(tw, resp, out)
        if kind == "txn":
            if apply_kv.is_txn_write(r.txn):
                self._write_allowed(cost, out)
            tw = kv.write(wtxn)
            before = tw.revision
            try:
                resp = apply_kv.txn(tw, tw, r.txn, leases)
            except errors.EtcdError as exc:
                if tw.revision != before:
                    # Writes are in the batch's transaction already: failing the request
                    # alone would commit half a Txn. etcd panics here too (rule 3).
                    raise RuntimeError(f"unexpected error during txn: {exc!r}") from exc
                raise
            return _end_write(tw, resp, out)
        if kind == "compaction":
            kv.compact(wtxn, r.compaction.revision)
            resp = pb.CompactionResponse()
            resp.header.revision = kv.write(wtxn).revision  # the store's revision, unchanged
            return resp
        if kind == "lease_grant":
            self._write_allowed(cost, out)
            return apply_lease.grant(leases, wtxn, r.lease_grant)
        if kind == "lease_revoke":
            return apply_lease.revoke(leases, kv, wtxn, r.lease_revoke, out.events)
        if kind == "lease_checkpoint":
            return apply_lease.checkpoint(leases, r.lease_checkpoint)
        if kind == "alarm":
            return self._alarm(wtxn, r.alarm)
        if kind == "cluster_member_attr_set":
            a = r.cluster_member_attr_set
            self.cluster.update_attributes(
                a.member_ID, a.member_attributes.name, a.member_attributes.client_urls, wtxn
            )
            out.notices.append(("published", a.member_ID))
            return None
        if kind == "cluster_version_set":
            initial = self.cluster.version is None
            self.cluster.set_version(r.cluster_version_set.ver, wtxn)
            out.notices.append(("version", (r.cluster_version_set.ver, initial)))
            return None
        if kind == "downgrade_info_set":
            return None
        raise errors.ErrGRPCNotCapable(f"request {kind} not supported")

    def _alarm(self, wtxn: WriteTxn, a: pb.AlarmRequest) -> pb.AlarmResponse:
        resp = pb.AlarmResponse()
        action = a.action
        if action == pb.AlarmRequest.GET:
            for mid, alarm in sorted(self.alarms):
                if a.alarm in (ALARM_NONE, alarm):
                    resp.alarms.add(memberID=mid, alarm=alarm)
            return resp
        key = pb.AlarmMember(memberID=a.memberID, alarm=a.alarm).SerializeToString()
        if action == pb.AlarmRequest.ACTIVATE:
            if a.alarm == ALARM_NONE:
                return resp
            if (a.memberID, a.alarm) not in self.alarms:
                self.alarms.add((a.memberID, a.alarm))
                wtxn.unsafe_put(BUCKET_ALARM, key, b"")
            resp.alarms.add(memberID=a.memberID, alarm=a.alarm)
        elif action == pb.AlarmRequest.DEACTIVATE:
            if (a.memberID, a.alarm) in self.alarms:
                self.alarms.discard((a.memberID, a.alarm))
                wtxn.unsafe_delete(BUCKET_ALARM, key)
                resp.alarms.add(memberID=a.memberID, alarm=a.alarm)
        return resp


def _which(r: InternalRaftRequest) -> str | None:
    """etcd's InternalRaftRequest has no oneof: the request kind is the field that is set."""
    for fd, _ in r.ListFields():
        if fd.message_type is not None and fd.name != "header":
            return str(fd.name)
    return None


def _end_write(tw: TxnWrite, resp: Any, out: ApplyBatch) -> Any:
    """Close one write txn: hand its events to the watch hub and stamp its revision."""
    res = tw.end()
    if res.events:
        out.events.append((res.revision, res.events))
    resp.header.revision = res.revision
    return resp
