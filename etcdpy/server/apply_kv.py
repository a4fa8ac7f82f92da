"""KV requests applied to the MVCC store (etcd's ``etcdserver/apply.go`` Put/Range/Txn).

Rules:
1. A Txn is decided before it writes: every compare of every nesting level is evaluated on
   the state before the transaction, the chosen path is checked (lease exists, key exists
   for ignore_value/ignore_lease) and only then executed, so a failing Txn changes nothing.
2. One etcd write transaction (``TxnWrite``) per request: a Txn with many writes takes one
   revision, as in etcd.
3. Compare semantics are etcd's ``applyCompare``: over a range every live key must match;
   no key matches as a zero ``KeyValue`` except for VALUE targets, which then fail.
4. Synchronous, runs on the KV writer thread (writes) or any thread (read-only Txn/Range).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.mvccpb.kv_pb2 import KeyValue
from etcdpy.mvcc import errors as mvcc_errors
from etcdpy.mvcc.kvstore import ReadView, TxnWrite

CMP_EQUAL = 0
CMP_GREATER = 1
CMP_LESS = 2
CMP_NOT_EQUAL = 3

TGT_VERSION = 0
TGT_CREATE = 1
TGT_MOD = 2
TGT_VALUE = 3
TGT_LEASE = 4


class LeaseIndex(Protocol):
    """The lessor as the KV applier needs it (etcd's ``lease.Lessor`` subset)."""

    def exists(self, lease_id: int) -> bool: ...

    def attach(self, lease_id: int, key: bytes) -> None: ...

    def detach(self, lease_id: int, key: bytes) -> None: ...


def map_mvcc_error(exc: errors.EtcdError) -> errors.EtcdError:
    """MVCC's internal errors → the client-visible ones (etcd's togRPCError)."""
    return errors.to_grpc(exc)


# ------------------------------------------------------------------------------ reads


def range_(view: ReadView, r: pb.RangeRequest) -> pb.RangeResponse:
    try:
        rr = view.range(
            r.key,
            r.range_end,
            revision=r.revision,
            limit=r.limit,
            count_only=r.count_only,
            keys_only=r.keys_only,
            min_mod_revision=r.min_mod_revision,
            max_mod_revision=r.max_mod_revision,
            min_create_revision=r.min_create_revision,
            max_create_revision=r.max_create_revision,
            sort_order=r.sort_order,
            sort_target=r.sort_target,
        )
    except mvcc_errors.MvccError as exc:
        raise map_mvcc_error(exc) from None
    resp = pb.RangeResponse(more=rr.more, count=rr.count)
    resp.header.revision = rr.revision
    if rr.kvs:
        resp.kvs.extend(rr.kvs)
    return resp


# ------------------------------------------------------------------------------ writes


def check_put(view: ReadView, r: pb.PutRequest, leases: LeaseIndex) -> None:
    if r.ignore_value or r.ignore_lease:
        try:
            prev = view.get(r.key)
        except mvcc_errors.MvccError as exc:
            raise map_mvcc_error(exc) from None
        if prev is None:
            raise errors.ErrGRPCKeyNotFound()
    if r.lease and not leases.exists(r.lease):
        raise errors.ErrGRPCLeaseNotFound()


def put(tw: TxnWrite, r: pb.PutRequest, leases: LeaseIndex) -> pb.PutResponse:
    """One put inside ``tw`` (the caller ends ``tw``); checks first (rule 1)."""
    check_put(tw, r, leases)
    return _do_put(tw, r, leases)


def _do_put(tw: TxnWrite, r: pb.PutRequest, leases: LeaseIndex) -> pb.PutResponse:
    try:
        prev = tw.put(
            r.key, r.value, r.lease, ignore_value=r.ignore_value, ignore_lease=r.ignore_lease
        )
    except mvcc_errors.MvccError as exc:
        raise map_mvcc_error(exc) from None
    lease = prev.lease if (r.ignore_lease and prev is not None) else r.lease
    if prev is not None and prev.lease and prev.lease != lease:
        leases.detach(prev.lease, r.key)
    if lease and (prev is None or prev.lease != lease):
        leases.attach(lease, r.key)
    resp = pb.PutResponse()
    resp.header.revision = tw.revision
    if r.prev_kv and prev is not None:
        resp.prev_kv.CopyFrom(prev)
    return resp


def delete_range(
    tw: TxnWrite, r: pb.DeleteRangeRequest, leases: LeaseIndex
) -> pb.DeleteRangeResponse:
    deleted = tw.delete_range(r.key, r.range_end)
    _detach_all(deleted, leases)
    resp = pb.DeleteRangeResponse(deleted=len(deleted))
    resp.header.revision = tw.revision
    if r.prev_kv and deleted:
        resp.prev_kvs.extend(deleted)
    return resp


def _detach_all(kvs: Iterable[KeyValue], leases: LeaseIndex) -> None:
    for kv in kvs:
        if kv.lease:
            leases.detach(kv.lease, kv.key)


# ------------------------------------------------------------------------------ txn


def is_txn_write(r: pb.TxnRequest) -> bool:
    """etcd's ``isTxnReadonly`` negated: any put/delete on any path, at any depth."""
    for ops in (r.success, r.failure):
        for op in ops:
            kind = op.WhichOneof("request")
            if kind == "request_put" or kind == "request_delete_range":
                return True
            if kind == "request_txn" and is_txn_write(op.request_txn):
                return True
    return False


def is_txn_serializable(r: pb.TxnRequest) -> bool:
    for ops in (r.success, r.failure):
        for op in ops:
            kind = op.WhichOneof("request")
            if kind == "request_range" and not op.request_range.serializable:
                return False
            if kind == "request_txn" and not is_txn_serializable(op.request_txn):
                return False
    return True


def _compare_kv(c: pb.Compare, kv: KeyValue | None) -> bool:
    t = c.target
    if t == TGT_VALUE:
        a: bytes | int = kv.value if kv is not None else b""
        b: bytes | int = c.value
    elif t == TGT_CREATE:
        a, b = (kv.create_revision if kv else 0), c.create_revision
    elif t == TGT_MOD:
        a, b = (kv.mod_revision if kv else 0), c.mod_revision
    elif t == TGT_VERSION:
        a, b = (kv.version if kv else 0), c.version
    elif t == TGT_LEASE:
        a, b = (kv.lease if kv else 0), c.lease
    else:
        return True
    res = c.result
    if res == CMP_EQUAL:
        return a == b
    if res == CMP_NOT_EQUAL:
        return a != b
    if res == CMP_GREATER:
        return a > b  # type: ignore[operator]
    if res == CMP_LESS:
        return a < b  # type: ignore[operator]
    return True


def apply_compare(view: ReadView, c: pb.Compare) -> bool:
    try:
        if c.range_end:
            kvs = view.range(c.key, c.range_end).kvs
        else:
            one = view.get(c.key)
            kvs = [one] if one is not None else []
    except mvcc_errors.MvccError:
        return False
    if not kvs:
        if c.target == TGT_VALUE:
            return False
        return _compare_kv(c, None)
    return all(_compare_kv(c, kv) for kv in kvs)


def _txn_path(view: ReadView, r: pb.TxnRequest) -> list[bool]:
    """Which branch each (nested) txn takes, in execution order (etcd's ``compareToPath``)."""
    path: list[bool] = []

    def walk(t: pb.TxnRequest) -> None:
        ok = all(apply_compare(view, c) for c in t.compare)
        path.append(ok)
        for op in t.success if ok else t.failure:
            if op.WhichOneof("request") == "request_txn":
                walk(op.request_txn)

    walk(r)
    return path


def _check_path(view: ReadView, r: pb.TxnRequest, path: list[bool], leases: LeaseIndex) -> None:
    it = iter(path)

    def walk(t: pb.TxnRequest) -> None:
        ok = next(it)
        for op in t.success if ok else t.failure:
            kind = op.WhichOneof("request")
            if kind == "request_put":
                check_put(view, op.request_put, leases)
            elif kind == "request_range":
                rr = op.request_range
                if rr.revision:
                    try:
                        view.get(rr.key, rr.revision)  # raises for compacted/future
                    except mvcc_errors.MvccError as exc:
                        raise map_mvcc_error(exc) from None
            elif kind == "request_txn":
                walk(op.request_txn)

    walk(r)


def txn(
    view: ReadView, tw: TxnWrite | None, r: pb.TxnRequest, leases: LeaseIndex
) -> pb.TxnResponse:
    """Apply a Txn: read-only when ``tw`` is None (served without raft), else writing.

    The caller ends ``tw``; ``header.revision`` is filled here with the revision the
    transaction observed or produced.
    """
    rv: ReadView = tw if tw is not None else view
    path = _txn_path(rv, r)
    _check_path(rv, r, path, leases)
    it = iter(path)
    resp = _exec(rv, tw, r, it, leases)
    resp.header.revision = rv.revision
    return resp


def _exec(
    rv: ReadView,
    tw: TxnWrite | None,
    r: pb.TxnRequest,
    path: Iterable[bool],
    leases: LeaseIndex,
) -> pb.TxnResponse:
    it = iter(path)
    ok = next(it)
    resp = pb.TxnResponse(succeeded=ok)
    for op in r.success if ok else r.failure:
        kind = op.WhichOneof("request")
        out = resp.responses.add()
        if kind == "request_range":
            out.response_range.CopyFrom(range_(rv, op.request_range))
        elif kind == "request_put":
            assert tw is not None  # is_txn_write said so
            out.response_put.CopyFrom(_do_put(tw, op.request_put, leases))
        elif kind == "request_delete_range":
            assert tw is not None
            out.response_delete_range.CopyFrom(delete_range(tw, op.request_delete_range, leases))
        elif kind == "request_txn":
            sub = _exec(rv, tw, op.request_txn, it, leases)
            sub.header.SetInParent()  # etcd's newTxnResp: a nested txn's header stays empty
            out.response_txn.CopyFrom(sub)
    return resp
