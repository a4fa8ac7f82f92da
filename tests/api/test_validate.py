"""etcd's request checks (v3rpc/key.go), without a server."""

from __future__ import annotations

import pytest

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.api.v3 import validate


def put(k: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=k, value=b"v"))


def delete(k: bytes, end: bytes = b"") -> pb.RequestOp:
    return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(key=k, range_end=end))


def txn(success: list[pb.RequestOp], failure: list[pb.RequestOp] | None = None) -> pb.RequestOp:
    return pb.RequestOp(request_txn=pb.TxnRequest(success=success, failure=failure or []))


@pytest.mark.parametrize(
    "ops",
    [
        [put(b"a"), put(b"b")],
        [txn([put(b"a")], [put(b"a")])],  # then/else are exclusive
        [delete(b"a", b"c"), put(b"c")],  # end is exclusive
        [delete(b"a", b"\x00"), put(b"z")],  # etcd: "\x00" is not infinite in this check
        [txn([put(b"a")]), txn([put(b"b")])],
    ],
)
def test_accepted(ops: list[pb.RequestOp]) -> None:
    validate.check_txn(pb.TxnRequest(success=ops))


@pytest.mark.parametrize(
    "ops",
    [
        [put(b"a"), put(b"a")],
        [delete(b"a", b"c"), put(b"b")],
        [delete(b"a"), put(b"a")],
        [delete(b"a", b""), txn([put(b"a")])],
        [txn([put(b"a")]), put(b"a")],
        [txn([put(b"a")]), txn([], [put(b"a")])],
        [txn([delete(b"k")]), put(b"k")],
    ],
)
def test_duplicate_key(ops: list[pb.RequestOp]) -> None:
    with pytest.raises(errors.ErrGRPCDuplicateKey):
        validate.check_txn(pb.TxnRequest(success=ops))


def test_too_many_ops_and_empty_keys() -> None:
    with pytest.raises(errors.ErrGRPCTooManyOps):
        validate.check_txn(pb.TxnRequest(failure=[put(bytes([i])) for i in range(3)]), 2)
    validate.check_txn(pb.TxnRequest(failure=[put(bytes([i + 1])) for i in range(2)]), 2)
    with pytest.raises(errors.ErrGRPCEmptyKey):
        validate.check_txn(pb.TxnRequest(compare=[pb.Compare(key=b"")]))
    with pytest.raises(errors.ErrGRPCKeyNotFound):  # an empty RequestOp, etcd's choice
        validate.check_txn(pb.TxnRequest(success=[pb.RequestOp()]))
    with pytest.raises(errors.ErrGRPCEmptyKey):
        validate.check_txn(pb.TxnRequest(success=[txn([put(b"")])]))
