"""KV through the façade of a real single member: put/range/delete/txn/compact semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from tests.server.support import member, run

Cmp = pb.Compare


def put_op(k: bytes, v: bytes) -> pb.RequestOp:
    return pb.RequestOp(request_put=pb.PutRequest(key=k, value=v))


def get_op(k: bytes, end: bytes = b"") -> pb.RequestOp:
    return pb.RequestOp(request_range=pb.RangeRequest(key=k, range_end=end))


def test_put_range_delete_and_headers(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            b = s.revision  # etcd's store starts at revision 1; ours may start at 0
            r = await s.put(pb.PutRequest(key=b"a", value=b"1"))
            assert r.header.revision == b + 1
            assert r.header.member_id == 0x8E9E05C52164694D
            assert r.header.cluster_id == 0xCDF818194E3A8C32
            assert r.header.raft_term >= 2
            r2 = await s.put(pb.PutRequest(key=b"a", value=b"2", prev_kv=True))
            assert r2.header.revision == b + 2
            assert r2.prev_kv.value == b"1"
            await s.put(pb.PutRequest(key=b"b", value=b"3"))
            g = await s.range(pb.RangeRequest(key=b"a", range_end=b"c"))
            assert [(kv.key, kv.value, kv.version) for kv in g.kvs] == [
                (b"a", b"2", 2),
                (b"b", b"3", 1),  # versions
            ]
            assert g.count == 2 and g.header.revision == b + 3
            old = await s.range(pb.RangeRequest(key=b"a", revision=b + 1, serializable=True))
            assert old.kvs[0].value == b"1"
            d = await s.delete_range(
                pb.DeleteRangeRequest(key=b"a", range_end=b"\x00", prev_kv=True)
            )
            assert d.deleted == 2 and d.header.revision == b + 4
            assert sorted(kv.key for kv in d.prev_kvs) == [b"a", b"b"]
            g = await s.range(pb.RangeRequest(key=b"a", range_end=b"\x00"))
            assert g.count == 0 and g.header.revision == b + 4

    run(body())


def test_txn_semantics(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            b = s.revision
            await s.put(pb.PutRequest(key=b"k", value=b"v1"))
            # success branch: two puts + a read, one revision for the whole txn
            t = await s.txn(
                pb.TxnRequest(
                    compare=[Cmp(key=b"k", target=Cmp.VALUE, result=Cmp.EQUAL, value=b"v1")],
                    success=[put_op(b"k", b"v2"), put_op(b"x", b"1"), get_op(b"k")],
                    failure=[put_op(b"k", b"fail")],
                )
            )
            assert t.succeeded and t.header.revision == b + 2
            assert t.responses[2].response_range.kvs[0].value == b"v2"
            # failure branch; VALUE compare on a missing key always fails
            t = await s.txn(
                pb.TxnRequest(
                    compare=[Cmp(key=b"nope", target=Cmp.VALUE, result=Cmp.NOT_EQUAL, value=b"")],
                    success=[put_op(b"k", b"bad")],
                    failure=[get_op(b"k")],
                )
            )
            assert not t.succeeded
            assert t.responses[0].response_range.kvs[0].value == b"v2"
            # read-only txn does not advance the revision
            assert t.header.revision == b + 2
            # CREATE == 0 on a missing key succeeds (zero KeyValue), nested txn
            inner = pb.TxnRequest(
                compare=[Cmp(key=b"x", target=Cmp.VERSION, result=Cmp.GREATER, version=0)],
                success=[put_op(b"inner", b"yes")],
            )
            t = await s.txn(
                pb.TxnRequest(
                    compare=[
                        Cmp(key=b"new", target=Cmp.CREATE, result=Cmp.EQUAL, create_revision=0)
                    ],
                    success=[put_op(b"new", b"n"), pb.RequestOp(request_txn=inner)],
                )
            )
            assert t.succeeded and t.responses[1].response_txn.succeeded
            assert t.header.revision == b + 3
            nested = t.responses[1].response_txn
            # etcd fills only the outer header; a nested txn's stays present and empty
            assert nested.HasField("header") and nested.header == pb.ResponseHeader()
            g = await s.range(pb.RangeRequest(key=b"inner"))
            assert g.kvs[0].mod_revision == b + 3
            # compare over a range: every key must match
            t = await s.txn(
                pb.TxnRequest(
                    compare=[
                        Cmp(
                            key=b"a",
                            range_end=b"z",
                            target=Cmp.MOD,
                            result=Cmp.LESS,
                            mod_revision=b + 3,
                        )
                    ]
                )
            )
            assert not t.succeeded  # "inner" and "new" have mod 3
            # a failing check (lease not found) writes nothing
            with pytest.raises(errors.ErrGRPCLeaseNotFound):
                await s.txn(
                    pb.TxnRequest(
                        success=[
                            put_op(b"k", b"partial"),
                            pb.RequestOp(
                                request_put=pb.PutRequest(key=b"l", value=b"v", lease=12345)
                            ),
                        ]
                    )
                )
            g = await s.range(pb.RangeRequest(key=b"k"))
            assert g.kvs[0].value == b"v2" and g.header.revision == b + 3
            with pytest.raises(errors.ErrGRPCKeyNotFound):
                await s.put(pb.PutRequest(key=b"missing", ignore_value=True))

    run(body())


def test_compact_and_limits(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path, "--max-request-bytes", "1024") as e:
            s = e.server
            b = s.revision
            for i in range(5):
                await s.put(pb.PutRequest(key=b"c", value=b"%d" % i))
            r = await s.compact(pb.CompactionRequest(revision=b + 3))
            assert r.header.revision == b + 5
            with pytest.raises(errors.ErrGRPCCompacted):
                await s.range(pb.RangeRequest(key=b"c", revision=b + 2))
            assert (await s.range(pb.RangeRequest(key=b"c", revision=b + 3))).kvs[0].value == b"2"
            with pytest.raises(errors.ErrGRPCCompacted):
                await s.compact(pb.CompactionRequest(revision=b + 3))
            with pytest.raises(errors.ErrGRPCFutureRev):
                await s.compact(pb.CompactionRequest(revision=50))
            with pytest.raises(errors.ErrGRPCRequestTooLarge) as ei:
                await s.put(pb.PutRequest(key=b"big", value=b"x" * 2048))
            assert ei.value.message == "etcdserver: request is too large"

    run(body())


def test_quota_raises_nospace_alarm(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path, "--quota-backend-bytes", str(64 * 1024)) as e:
            s = e.server
            with pytest.raises(errors.ErrGRPCNoSpace):
                for i in range(200):
                    await s.put(pb.PutRequest(key=b"q%d" % i, value=b"x" * 1000))
            a = await s.alarm(pb.AlarmRequest(action=pb.AlarmRequest.GET))
            assert [(m.memberID, m.alarm) for m in a.alarms] == [(s.id, pb.NOSPACE)]
            with pytest.raises(errors.ErrGRPCNoSpace):
                await s.put(pb.PutRequest(key=b"more", value=b"x"))
            # deletes are still allowed; disarming lets writes through again
            await s.delete_range(pb.DeleteRangeRequest(key=b"q", range_end=b"r"))
            st = await s.status(pb.StatusRequest())
            assert any("NOSPACE" in err for err in st.errors)

    run(body())


def test_defragment_under_concurrent_reads_and_writes(tmp_path: Path) -> None:
    import asyncio

    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            for i in range(200):
                await s.put(pb.PutRequest(key=b"d%03d" % i, value=b"x" * 200))
            await s.compact(pb.CompactionRequest(revision=s.revision))

            async def reads() -> int:
                n = 0
                for _ in range(50):
                    r = await s.range(pb.RangeRequest(key=b"d", range_end=b"e", count_only=True))
                    one = await s.range(pb.RangeRequest(key=b"d000"))
                    assert r.count == 200 and one.kvs[0].value == b"x" * 200
                    n += 1
                return n

            results = await asyncio.gather(
                reads(),
                s.defragment(pb.DefragmentRequest()),
                s.put(pb.PutRequest(key=b"z", value=b"after")),
                reads(),
            )
            assert results[0] == results[3] == 50
            assert (await s.range(pb.RangeRequest(key=b"z"))).kvs[0].value == b"after"
            st = await s.status(pb.StatusRequest())
            assert st.dbSizeInUse <= st.dbSize

    run(body())


def test_periodic_auto_compaction(tmp_path: Path) -> None:
    from tests.server.support import eventually

    async def body() -> None:
        flags = ("--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1s")
        async with member(tmp_path, *flags) as e:
            s = e.server
            for i in range(3):
                await s.put(pb.PutRequest(key=b"ac", value=b"%d" % i))
            first = s.revision

            async def compacted() -> bool:
                return s.compact_revision >= first

            await eventually(compacted, timeout=15)
            with pytest.raises(errors.ErrGRPCCompacted):
                await s.range(pb.RangeRequest(key=b"ac", revision=first - 1))

    run(body())


def test_loop_reads_see_every_acknowledged_write(tmp_path: Path) -> None:
    """Reads on the event loop share one read view between commits (KVStore.shared_read):
    every kind of read after an acknowledged write, a delete or a defragment sees it, and
    the view of an older commit is let go once a newer one is published."""

    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            for i in range(30):
                val = b"v%d" % i
                put = await s.put(pb.PutRequest(key=b"k", value=val))
                for serializable in (True, False):
                    r = await s.range(pb.RangeRequest(key=b"k", serializable=serializable))
                    assert [kv.value for kv in r.kvs] == [val]
                    raw = await s.range_encoded(
                        pb.RangeRequest(key=b"k", serializable=serializable)
                    )
                    rr = pb.RangeResponse.FromString(raw)
                    assert [kv.value for kv in rr.kvs] == [val]
                    assert rr.header.revision == put.header.revision
                t = await s.txn(pb.TxnRequest(success=[
                    pb.RequestOp(request_range=pb.RangeRequest(key=b"k", serializable=True))
                ]))
                assert t.responses[0].response_range.kvs[0].value == val
                if i % 10 == 9:
                    await s.defragment(pb.DefragmentRequest())
            await s.delete_range(pb.DeleteRangeRequest(key=b"k"))
            r = await s.range(pb.RangeRequest(key=b"k", serializable=True))
            assert r.kvs == [] and r.count == 0
            await s.settle()
            kv = s.kv
            assert kv._shared is None or kv._shared_version == kv.backend.data_version

    run(body())
