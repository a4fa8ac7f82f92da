"""Leases in the server: the pure ``lease.Lessor`` made safe to share, plus their apply steps.

Rules:
1. Grant, revoke, checkpoint and key attachment change only by applying committed entries
   (KV writer thread); renewals and expiry are leader-local and never go through raft
   (only the resulting LeaseRevoke does).
2. A revoke deletes every attached key in ONE write transaction, so a watcher sees all the
   deletions at one revision (etcd's ``Revoke``).
3. Leases are persisted in the ``lease`` bucket (8-byte big-endian ID → ``>qq`` TTL,
   remaining TTL) in the batch's transaction; key attachments are rebuilt from the KV data
   (the ``lease`` field of every live key) at start.
4. The lessor is not thread-safe and is used from the KV writer thread (apply) and the loop
   (renew, TTL, expiry): ``LeaseTable`` takes one lock around every call and converts the
   lessor's domain errors into the gRPC-level ones clients see.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.lease.lessor import LeaseRecord, Lessor, Renewal, TimeToLive
from etcdpy.mvcc.kvstore import Event, KVStore
from etcdpy.storage.backend import BUCKET_LEASE, ReadTxn, WriteTxn

_KEY = struct.Struct(">q")
_VAL = struct.Struct(">qq")


def _grpc(exc: errors.EtcdError) -> errors.EtcdError:
    return errors.to_grpc(exc)


class LeaseTable:
    """A lock-guarded ``Lessor`` with a clock (monotonic seconds)."""

    def __init__(self, lessor: Lessor, clock: Callable[[], float]) -> None:
        self.lessor = lessor
        self._clock = clock
        self._lock = threading.Lock()

    # --- apply_kv.LeaseIndex -------------------------------------------------------
    def exists(self, lease_id: int) -> bool:
        return self.lessor.exists(lease_id)

    def attach(self, lease_id: int, key: bytes) -> None:
        with self._lock:
            if self.lessor.exists(lease_id):
                self.lessor.attach(lease_id, key)

    def detach(self, lease_id: int, key: bytes) -> None:
        with self._lock:
            if self.lessor.exists(lease_id):
                self.lessor.detach(lease_id, key)

    # --- apply ---------------------------------------------------------------------
    def grant(self, lease_id: int, ttl: int) -> LeaseRecord:
        with self._lock:
            try:
                return self.lessor.grant(lease_id, ttl, self._clock()).record()
            except errors.EtcdError as exc:
                raise _grpc(exc) from None

    def keys_of(self, lease_id: int) -> list[bytes] | None:
        with self._lock:
            le = self.lessor.lookup(lease_id)
            return None if le is None else sorted(le.keys)

    def revoke(self, lease_id: int) -> None:
        with self._lock:
            if self.lessor.exists(lease_id):
                self.lessor.revoke(lease_id)

    def checkpoint(self, lease_id: int, remaining_ttl: int) -> None:
        with self._lock:
            self.lessor.checkpoint(lease_id, remaining_ttl, self._clock())

    # --- leader-local (loop) ---------------------------------------------------------
    def renew(self, lease_id: int) -> Renewal:
        with self._lock:
            try:
                return self.lessor.renew(lease_id, self._clock())
            except errors.EtcdError as exc:
                raise _grpc(exc) from None

    def time_to_live(self, lease_id: int, keys: bool) -> TimeToLive:
        with self._lock:
            try:
                return self.lessor.time_to_live(lease_id, self._clock(), keys=keys)
            except errors.EtcdError as exc:
                raise _grpc(exc) from None

    def ids(self) -> list[int]:
        with self._lock:
            return [le.id for le in self.lessor.leases()]

    def promote(self, extend: float) -> None:
        with self._lock:
            self.lessor.promote(self._clock(), extend)

    def demote(self) -> None:
        with self._lock:
            self.lessor.demote()

    def expired(self, limit: int = 1000) -> list[int]:
        with self._lock:
            return self.lessor.expired_leases(self._clock(), limit)

    def load(self, rtxn: ReadTxn, kv: KVStore) -> None:
        """Rebuild from the ``lease`` bucket and the keys' ``lease`` fields (restart)."""
        records = []
        for k, v in rtxn.unsafe_for_each(BUCKET_LEASE):
            (lid,) = _KEY.unpack(bytes(k))
            ttl, rem = _VAL.unpack(bytes(v))
            records.append(LeaseRecord(lid, ttl, rem))
        attachments: list[tuple[bytes, int]] = []
        if records:
            with kv.read() as view:
                for kvp in view.range(b"\x00", b"\x00").kvs:
                    if kvp.lease:
                        attachments.append((kvp.key, kvp.lease))
        with self._lock:
            self.lessor.restore(records, attachments, now=self._clock())


def grant(table: LeaseTable, wtxn: WriteTxn, r: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse:
    rec = table.grant(r.ID, r.TTL)
    wtxn.unsafe_put(BUCKET_LEASE, _KEY.pack(rec.id), _VAL.pack(rec.ttl, rec.remaining_ttl))
    return pb.LeaseGrantResponse(ID=rec.id, TTL=rec.ttl)


def revoke(
    table: LeaseTable,
    kv: KVStore,
    wtxn: WriteTxn,
    r: pb.LeaseRevokeRequest,
    events_out: list[tuple[int, list[Event]]],
) -> pb.LeaseRevokeResponse:
    keys = table.keys_of(r.ID)
    if keys is None:
        raise errors.ErrGRPCLeaseNotFound()
    tw = kv.write(wtxn)
    for key in keys:
        tw.delete_range(key)
    res = tw.end()
    if res.events:
        events_out.append((res.revision, res.events))
    table.revoke(r.ID)
    wtxn.unsafe_delete(BUCKET_LEASE, _KEY.pack(r.ID))
    resp = pb.LeaseRevokeResponse()
    resp.header.revision = res.revision
    return resp


def checkpoint(table: LeaseTable, r: pb.LeaseCheckpointRequest) -> pb.LeaseCheckpointResponse:
    for cp in r.checkpoints:
        table.checkpoint(cp.ID, cp.remaining_TTL)
    return pb.LeaseCheckpointResponse()
