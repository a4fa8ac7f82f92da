"""Request checks done at the API edge, before anything is proposed (etcd v3rpc/key.go).

Rules:
1. Same order and same errors as etcd: an empty key is ``ErrGRPCEmptyKey``; a value with
   ``ignore_value`` is ``ErrGRPCValueProvided``; a lease with ``ignore_lease`` is
   ``ErrGRPCLeaseProvided``; more than ``max_txn_ops`` operations in any one list of a txn is
   ``ErrGRPCTooManyOps``; an empty ``RequestOp`` is ``ErrGRPCKeyNotFound`` (etcd's choice).
2. Duplicate puts, or a put inside a deleted range, within one txn branch (nested txns included)
   are ``ErrGRPCDuplicateKey``; checked after the cheap checks so a huge txn cannot make it
   quadratic before the op-count limit applies.
3. Interval semantics follow etcd's ``adt`` affine intervals: an empty ``range_end`` means a
   single key, and only an empty bound is infinite (``b"\\x00"`` is not special here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from etcdpy import errors

if TYPE_CHECKING:
    from etcdpy._pb.etcdserverpb import rpc_pb2 as pb

DEFAULT_MAX_TXN_OPS = 128


def check_range(r: pb.RangeRequest) -> None:
    if not r.key:
        raise errors.ErrGRPCEmptyKey()


def check_put(r: pb.PutRequest) -> None:
    if not r.key:
        raise errors.ErrGRPCEmptyKey()
    if r.ignore_value and r.value:
        raise errors.ErrGRPCValueProvided()
    if r.ignore_lease and r.lease != 0:
        raise errors.ErrGRPCLeaseProvided()


def check_delete(r: pb.DeleteRangeRequest) -> None:
    if not r.key:
        raise errors.ErrGRPCEmptyKey()


def check_txn(r: pb.TxnRequest, max_txn_ops: int = DEFAULT_MAX_TXN_OPS) -> None:
    """etcd's checkTxnRequest followed by checkIntervals on both branches."""
    _check_txn_request(r, max_txn_ops)
    _check_intervals(r.success)
    _check_intervals(r.failure)


def _check_txn_request(r: pb.TxnRequest, max_txn_ops: int) -> None:
    opc = max(len(r.compare), len(r.success), len(r.failure))
    if opc > max_txn_ops:
        raise errors.ErrGRPCTooManyOps()
    for c in r.compare:
        if not c.key:
            raise errors.ErrGRPCEmptyKey()
    for op in r.success:
        _check_request_op(op, max_txn_ops - opc)
    for op in r.failure:
        _check_request_op(op, max_txn_ops - opc)


def _check_request_op(op: pb.RequestOp, max_txn_ops: int) -> None:
    kind = op.WhichOneof("request")
    if kind == "request_range":
        check_range(op.request_range)
    elif kind == "request_put":
        check_put(op.request_put)
    elif kind == "request_delete_range":
        check_delete(op.request_delete_range)
    elif kind == "request_txn":
        _check_txn_request(op.request_txn, max_txn_ops)
    else:
        raise errors.ErrGRPCKeyNotFound()


class _Intervals:
    """A set of half-open key intervals; an empty end is +infinity (etcd adt affine strings)."""

    __slots__ = ("_ivs",)

    def __init__(self) -> None:
        self._ivs: list[tuple[bytes, bytes | None]] = []

    def insert(self, begin: bytes, end: bytes | None) -> None:
        self._ivs.append((begin, end))

    def union(self, other: _Intervals) -> None:
        self._ivs.extend(other._ivs)

    def contains_point(self, key: bytes) -> bool:
        for begin, end in self._ivs:
            if end is None:  # a single key
                if key == begin:
                    return True
            elif begin <= key and (end == b"" or key < end):
                return True
        return False


def _check_intervals(reqs: object) -> tuple[set[bytes], _Intervals]:
    ops: list[pb.RequestOp] = list(reqs)  # type: ignore[call-overload]
    dels = _Intervals()
    for op in ops:
        if op.WhichOneof("request") != "request_delete_range":
            continue
        d = op.request_delete_range
        dels.insert(bytes(d.key), bytes(d.range_end) if d.range_end else None)

    puts: set[bytes] = set()
    for op in ops:
        if op.WhichOneof("request") != "request_txn":
            continue
        puts_then, dels_then = _check_intervals(op.request_txn.success)
        puts_else, dels_else = _check_intervals(op.request_txn.failure)
        for k in puts_then:
            if k in puts or dels.contains_point(k):
                raise errors.ErrGRPCDuplicateKey()
            puts.add(k)
        for k in puts_else:
            # then/else are exclusive, so a key put in both branches is fine
            if (k in puts and k not in puts_then) or dels.contains_point(k):
                raise errors.ErrGRPCDuplicateKey()
            puts.add(k)
        dels.union(dels_then)
        dels.union(dels_else)

    for op in ops:
        if op.WhichOneof("request") != "request_put":
            continue
        k = bytes(op.request_put.key)
        if k in puts or dels.contains_point(k):
            raise errors.ErrGRPCDuplicateKey()
        puts.add(k)
    return puts, dels
