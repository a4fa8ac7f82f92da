"""Range answered as wire bytes (the gRPC hot path of big ranges; see ``mvcc/wire.py``).

Rules:
1. Covered: whole values sorted by key (``sort_target`` KEY with no, ascending or descending
   order), any ``limit``/``revision``/``serializable``. Everything else — ``count_only``,
   ``keys_only``, min/max revision filters, other sort targets — returns None from
   :func:`descend_of` and takes the object path (``apply_kv.range_``), which is cheap for
   them or rare.
2. The bytes equal ``SerializeToString()`` of the object path's response after the server
   filled its header (tests/server/test_range_wire.py compares both over random cases).
"""

from __future__ import annotations

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.mvcc import errors as mvcc_errors
from etcdpy.mvcc import wire
from etcdpy.mvcc.kvstore import (
    SORT_ASCEND,
    SORT_DESCEND,
    SORT_NONE,
    TARGET_KEY,
    RawRange,
    ReadView,
)
from etcdpy.server.apply_kv import map_mvcc_error


def descend_of(r: pb.RangeRequest) -> bool | None:
    """None when ``r`` is not covered (rule 1), else whether keys go in descending order."""
    if (
        r.count_only
        or r.keys_only
        or r.min_mod_revision
        or r.max_mod_revision
        or r.min_create_revision
        or r.max_create_revision
        or r.sort_target != TARGET_KEY
    ):
        return None
    order = r.sort_order
    if order == SORT_NONE or order == SORT_ASCEND:
        return False
    if order == SORT_DESCEND:
        return True
    return None


def range_raw(view: ReadView, r: pb.RangeRequest, descend: bool, max_keys: int) -> RawRange | None:
    """``view.range_raw`` for ``r`` with etcd's client errors (None: see ``range_raw``)."""
    try:
        return view.range_raw(
            r.key,
            r.range_end,
            revision=r.revision,
            limit=r.limit,
            descend=descend,
            max_keys=max_keys,
        )
    except mvcc_errors.MvccError as exc:
        raise map_mvcc_error(exc) from None


def encode(
    rr: RawRange,
    cluster_id: int,
    member_id: int,
    raft_term: int,
    headers: wire.HeaderCache | None = None,
) -> bytes:
    """The serialized ``RangeResponse`` of ``rr`` with a filled header."""
    if headers is not None:
        header = headers.get(cluster_id, member_id, rr.revision, raft_term)
    else:
        header = wire.response_header(cluster_id, member_id, rr.revision, raft_term)
    return wire.range_response(header, rr.kvs, rr.more, rr.count)
