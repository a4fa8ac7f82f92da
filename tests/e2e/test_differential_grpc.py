"""Random gRPC KV traffic against etcdpy and real etcd 3.4 at once: answers must be identical.

Both servers get the same seeded writes (so their revisions agree), then the same random
Txns (compares over keys and ranges, nested txns, puts and deletes with prev_kv, reads) and
random Ranges (limits, revisions, sorts, revision filters, count/keys-only, after a
compaction). Responses are compared as serialized bytes once the member-specific header
fields (cluster and member IDs, term) are cleared.

Left out on purpose: ties when sorting by VERSION. Keys of equal version come out in key
order here (a stable sort). etcd orders them by Go's unstable ``sort.Sort``, which no client
can rely on.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from tests.e2e.harness import Member, have_etcd, new_member

Cmp = pb.Compare
KEYS = [b"t%d" % i for i in range(8)] + [b"a", b"b/x", b"b/y", b"\xff", b"z"]


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[rpc.KVStub]]:
    if not have_etcd():
        pytest.skip("real etcd not installed")
    tmp = Path(tmp_path_factory.mktemp("diffgrpc"))
    members: list[Member] = [new_member("etcdpy", tmp), new_member("etcd", tmp)]
    channels: list[grpc.Channel] = []
    try:
        for m in members:
            m.start()
            channels.append(grpc.insecure_channel(f"127.0.0.1:{m.client_port}"))
        yield [rpc.KVStub(ch) for ch in channels]
    finally:
        for ch in channels:
            ch.close()
        for m in members:
            m.stop()


def _clear_ids(header: pb.ResponseHeader) -> None:
    for f in ("cluster_id", "member_id", "raft_term"):
        header.ClearField(f)


def _txn_bytes(resp: pb.TxnResponse) -> bytes:
    def walk(r: pb.TxnResponse) -> None:
        _clear_ids(r.header)
        for op in r.responses:
            kind = op.WhichOneof("response")
            sub = getattr(op, kind)
            _clear_ids(sub.header)
            if kind == "response_txn":
                walk(sub)

    walk(resp)
    return resp.SerializeToString()


def _both(stubs: list[rpc.KVStub], call: str, req: Any) -> list[Any]:
    """Each server's answer: serialized bytes, or (code, details) for an error."""
    out: list[Any] = []
    for stub in stubs:
        try:
            resp = getattr(stub, call)(req, timeout=10)
        except grpc.RpcError as exc:
            out.append((exc.code(), exc.details()))
            continue
        if call == "Txn":
            out.append(_txn_bytes(resp))
        else:
            _clear_ids(resp.header)
            out.append(resp.SerializeToString())
    return out


def _cmp(rng: random.Random) -> pb.Compare:
    c = Cmp(key=rng.choice(KEYS), result=rng.choice([0, 1, 2, 3]))
    target = rng.choice(["version", "create", "mod", "value"])
    if target == "version":
        c.target, c.version = Cmp.VERSION, rng.randrange(0, 4)
    elif target == "create":
        c.target, c.create_revision = Cmp.CREATE, rng.randrange(0, 60)
    elif target == "mod":
        c.target, c.mod_revision = Cmp.MOD, rng.randrange(0, 60)
    else:
        c.target, c.value = Cmp.VALUE, rng.choice([b"", b"x", b"v1", b"v2"])
    if rng.random() < 0.2:
        c.range_end = b"t9"
    return c


def _op(rng: random.Random, depth: int) -> pb.RequestOp:
    r, key = rng.random(), rng.choice(KEYS)
    if r < 0.4:
        value = rng.choice([b"v1", b"v2", b"x"])
        return pb.RequestOp(
            request_put=pb.PutRequest(key=key, value=value, prev_kv=rng.random() < 0.5)
        )
    if r < 0.6:
        end = b"t9" if rng.random() < 0.3 else b""
        return pb.RequestOp(request_delete_range=pb.DeleteRangeRequest(
            key=key, range_end=end, prev_kv=rng.random() < 0.5))
    if r < 0.85 or depth > 1:
        end = rng.choice([b"", b"t9"])
        return pb.RequestOp(request_range=pb.RangeRequest(key=key, range_end=end))
    return pb.RequestOp(request_txn=_txn(rng, depth + 1))


def _txn(rng: random.Random, depth: int = 0) -> pb.TxnRequest:
    return pb.TxnRequest(
        compare=[_cmp(rng) for _ in range(rng.randrange(0, 3))],
        success=[_op(rng, depth) for _ in range(rng.randrange(0, 3))],
        failure=[_op(rng, depth) for _ in range(rng.randrange(0, 3))],
    )


def _range(rng: random.Random, current: int) -> pb.RangeRequest:
    r = pb.RangeRequest(key=rng.choice([*KEYS, b"\x00", b"t1", b"b/"]))
    r.range_end = rng.choice([b"", b"\x00", b"t1\xff", b"t5", b"c", b"b0", b"\xff\xff", r.key])
    if rng.random() < 0.5:
        r.limit = rng.choice([1, 2, 3, 5, 50])
    if rng.random() < 0.4:
        r.revision = rng.randrange(1, current + 3)
    if rng.random() < 0.4:
        r.sort_order = rng.choice([0, 1, 2])
        r.sort_target = rng.choice([0, 2, 3, 4])  # not VERSION: see the module docstring
    r.count_only = rng.random() < 0.2
    r.keys_only = rng.random() < 0.2
    for f in ("min_mod_revision", "max_mod_revision", "min_create_revision",
              "max_create_revision"):
        if rng.random() < 0.2:
            setattr(r, f, rng.randrange(0, current))
    r.serializable = rng.random() < 0.5
    return r


def test_random_txns_and_ranges_answer_as_etcd(stubs: list[rpc.KVStub]) -> None:
    rng = random.Random(20261124)
    for i in range(60):  # a shared history: puts, deletes, one compaction
        key = rng.choice(KEYS)
        if rng.random() < 0.2:
            req: Any = pb.DeleteRangeRequest(key=key)
            assert len(set(map(repr, _both(stubs, "DeleteRange", req)))) == 1
        else:
            req = pb.PutRequest(key=key, value=b"v%d" % i)
            assert len(set(map(repr, _both(stubs, "Put", req)))) == 1
    assert len(set(map(repr, _both(stubs, "Compact", pb.CompactionRequest(revision=20))))) == 1
    for _ in range(200):
        t = _txn(rng)
        a, b = _both(stubs, "Txn", t)
        assert a == b, t
    current = stubs[0].Range(pb.RangeRequest(key=b"a"), timeout=10).header.revision
    for _ in range(300):
        r = _range(rng, current)
        a, b = _both(stubs, "Range", r)
        assert a == b, r
