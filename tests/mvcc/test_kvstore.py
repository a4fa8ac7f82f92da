"""KVStore unit tests: encodings, etcd conventions, hash_kv, compaction, restart, batching."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdpy import errors
from etcdpy.mvcc import key_index
from etcdpy.mvcc.errors import ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrKeyTooLong
from etcdpy.mvcc.kvstore import (
    DELETE,
    PUT,
    SORT_DESCEND,
    TARGET_MOD,
    KVStore,
    prefix_end,
)
from etcdpy.mvcc.revision import Revision, bytes_to_rev, is_tombstone, rev_to_bytes
from etcdpy.storage.backend import BUCKET_KEY, Backend

MAP = 1 << 26


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KVStore]:
    b = Backend(tmp_path / "kv", map_size=MAP)
    yield KVStore(b)
    b.close()


def put(kv: KVStore, *pairs: tuple[bytes, bytes], lease: int = 0) -> int:
    with kv.backend.write_txn() as w:
        t = kv.write(w)
        for k, v in pairs:
            t.put(k, v, lease)
        return t.end().revision


def delete(kv: KVStore, key: bytes, end: bytes = b"") -> int:
    with kv.backend.write_txn() as w:
        t = kv.write(w)
        t.delete_range(key, end)
        return t.end().revision


def test_revision_bytes_match_etcd() -> None:
    b = rev_to_bytes(0x0102, 3)
    assert b == b"\x00" * 6 + b"\x01\x02_" + b"\x00" * 7 + b"\x03"
    assert len(b) == 17 and not is_tombstone(b)
    t = Revision(5, 1).to_bytes(tombstone=True)
    assert len(t) == 18 and is_tombstone(t) and bytes_to_rev(t) == Revision(5, 1)
    assert rev_to_bytes(1, 0xFFFF) < rev_to_bytes(2, 0)


def test_prefix_end() -> None:
    assert prefix_end(b"abc") == b"abd"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == b"\x00"
    assert prefix_end(b"") == b"\x00"


def test_errors_are_catalogue_errors() -> None:
    assert isinstance(ErrCompacted(), errors.ErrCompacted)
    assert str(ErrCompacted()) == "mvcc: required revision has been compacted"
    assert str(ErrFutureRev()) == "mvcc: required revision is a future revision"
    assert str(ErrKeyNotFound()) == "etcdserver: key not found"


def test_versions_generations_and_leases(store: KVStore) -> None:
    put(store, (b"k", b"1"), lease=7)
    put(store, (b"k", b"2"))
    delete(store, b"k")
    put(store, (b"k", b"3"))
    kv = store.range(b"k").kvs[0]  # a new store is at revision 1: the writes got 2..5
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.value) == (5, 5, 1, b"3")
    old = store.range(b"k", revision=3).kvs[0]
    assert (old.create_revision, old.mod_revision, old.version, old.lease) == (2, 3, 2, 0)
    assert store.range(b"k", revision=2).kvs[0].lease == 7
    assert store.range(b"k", revision=4).kvs == []
    assert store.range(b"k", revision=1).kvs == []


def test_put_returns_prev_and_ignore_flags(store: KVStore) -> None:
    with store.backend.write_txn() as w:
        t = store.write(w)
        assert t.put(b"k", b"v", 5) is None
        with pytest.raises(ErrKeyNotFound):
            t.put(b"missing", b"", ignore_value=True)
        prev = t.put(b"k", b"", 0, ignore_value=True, ignore_lease=True)
        assert prev is not None and prev.value == b"v" and prev.lease == 5
        res = t.end()
    assert res.revision == 2 and [e.type for e in res.events] == [PUT, PUT]
    kv = store.range(b"k").kvs[0]
    assert (kv.value, kv.lease, kv.version) == (b"v", 5, 2)


def test_delete_range_events_and_result(store: KVStore) -> None:
    put(store, (b"a", b"1"), (b"b", b"2"), (b"c", b"3"))
    with store.backend.write_txn() as w:
        t = store.write(w)
        deleted = t.delete_range(b"a", b"c")
        assert [d.key for d in deleted] == [b"a", b"b"]
        assert t.delete_range(b"zz") == []
        res = t.end()
    assert res.revision == 3
    assert [
        (e.type, e.kv.key, e.kv.mod_revision, e.prev_kv and e.prev_kv.value) for e in res.events
    ] == [
        (DELETE, b"a", 3, b"1"),
        (DELETE, b"b", 3, b"2"),
    ]
    assert store.range(b"\x00", b"\x00").count == 1


def test_new_store_is_at_revision_one(store: KVStore) -> None:
    assert (store.current_revision, store.compact_revision) == (1, -1)
    r = store.range(b"\x00", b"\x00", revision=1)
    assert (r.kvs, r.count, r.revision) == ([], 0, 1)
    with pytest.raises(ErrFutureRev):
        store.range(b"a", revision=2)
    with store.backend.write_txn() as w:
        store.compact(w, 0)  # etcd: compaction at 0 and 1 is allowed on a new store
    assert store.compact_revision == 0


def test_no_change_keeps_revision(store: KVStore) -> None:
    put(store, (b"a", b"1"))
    assert delete(store, b"nothing") == 2
    assert store.current_revision == 2


def test_op_error_without_end_does_not_reuse_revision(store: KVStore) -> None:
    with store.backend.write_txn() as w:
        t = store.write(w)
        t.put(b"a", b"1")
        with pytest.raises(ErrKeyNotFound):
            t.put(b"b", b"", ignore_value=True)
        # the caller forgot end(): the next write txn must still get a fresh revision
        t2 = store.write(w)
        t2.put(b"a", b"2")
        assert t2.end().revision == 3
        assert store.pending_revision(w) == 3
    assert store.current_revision == 3
    assert [kv.value for kv in store.range(b"a").kvs] == [b"2"]


def test_reads_inside_write_txn_see_own_writes(store: KVStore) -> None:
    put(store, (b"a", b"1"))
    with store.backend.write_txn() as w:
        t = store.write(w)
        t.put(b"b", b"2")
        r = t.range(b"a", b"\x00")
        assert [kv.key for kv in r.kvs] == [b"a", b"b"] and r.revision == 3
        with pytest.raises(ErrFutureRev):
            t.range(b"a", revision=4)
        assert t.range(b"\x00", b"\x00", revision=2).count == 1
        # committed readers do not see the batch yet
        assert store.range(b"b").kvs == []
        t.end()
    assert store.range(b"b").kvs[0].value == b"2"


def test_range_conventions(store: KVStore) -> None:
    put(store, (b"a", b"1"), (b"ab", b"2"), (b"b", b"3"), (b"\xff", b"4"))

    def keys(k: bytes, e: bytes) -> list[bytes]:
        return [kv.key for kv in store.range(k, e).kvs]

    assert keys(b"a", b"") == [b"a"]
    assert keys(b"a", prefix_end(b"a")) == [b"a", b"ab"]
    assert keys(b"ab", b"\x00") == [b"ab", b"b", b"\xff"]
    assert keys(b"\x00", b"\x00") == [b"a", b"ab", b"b", b"\xff"]
    assert keys(b"b", b"a") == []
    r = store.range(b"\x00", b"\x00", limit=2)
    assert (r.count, r.more, len(r.kvs)) == (4, True, 2)
    r = store.range(b"\x00", b"\x00", limit=4)
    assert (r.count, r.more) == (4, False)
    r = store.range(b"\x00", b"\x00", sort_order=SORT_DESCEND, sort_target=TARGET_MOD, limit=1)
    assert r.more and r.kvs[0].key == b"a"  # all mod 2: ties keep key order
    r = store.range(b"\x00", b"\x00", keys_only=True)
    assert all(kv.value == b"" for kv in r.kvs)


def test_long_key_refused(store: KVStore) -> None:
    with store.backend.write_txn() as w:
        t = store.write(w)
        with pytest.raises(ErrKeyTooLong) as ei:
            t.put(b"k" * (key_index.MAX_KEY_LEN + 1), b"")
        assert str(ei.value) == "etcdserver: request is too large"
        t.put(b"k" * key_index.MAX_KEY_LEN, b"ok")
        t.end()


def test_compaction_errors_and_physical_removal(store: KVStore) -> None:
    for i in range(5):
        put(store, (b"k", b"%d" % i))  # revs 2..6
    put(store, (b"gone", b"x"))
    delete(store, b"gone")  # rev 8
    with store.backend.write_txn() as w:
        with pytest.raises(ErrFutureRev):
            store.compact(w, 9)
        assert store.compact(w, 8) == 4 + 2  # k@2..5, gone@7, tombstone@8
    with store.backend.write_txn() as w, pytest.raises(ErrCompacted):
        store.compact(w, 8)
    with store.backend.read_txn() as r:
        assert len(list(r.unsafe_for_each(BUCKET_KEY))) == 1
    assert store.compact_revision == 8
    with pytest.raises(ErrCompacted):
        store.range(b"k", revision=7)
    assert store.range(b"k", revision=8).kvs[0].value == b"4"


def test_hash_kv(tmp_path: Path) -> None:
    stores = []
    for name in ("a", "b"):
        b = Backend(tmp_path / name, map_size=MAP)
        kv = KVStore(b)
        put(kv, (b"x", b"1"))
        put(kv, (b"y", b"2"))
        stores.append(kv)
    a, b2 = stores
    assert a.hash_kv() == b2.hash_kv()
    h3 = a.hash_kv(3)
    assert h3.hash_revision == 3 and h3.compact_revision == -1
    put(a, (b"z", b"3"))
    assert a.hash_kv(3) == h3  # later writes do not change a past hash
    assert a.hash_kv().hash != h3.hash
    assert a.hash_kv(2).hash != h3.hash
    with pytest.raises(ErrFutureRev):
        a.hash_kv(9)
    with a.backend.write_txn() as w:
        a.compact(w, 3)
    with pytest.raises(ErrCompacted):
        a.hash_kv(3)
    for kv in stores:
        kv.backend.close()


def test_restart_preserves_revisions_and_history(tmp_path: Path) -> None:
    b = Backend(tmp_path / "kv", map_size=MAP)
    kv = KVStore(b)
    put(kv, (b"a", b"1"))
    put(kv, (b"a", b"2"))
    with b.write_txn() as w:
        kv.compact(w, 2)
    before = kv.range(b"a", revision=2)
    b.close()
    b = Backend(tmp_path / "kv", map_size=MAP)
    kv = KVStore(b)
    try:
        assert (kv.current_revision, kv.compact_revision) == (3, 2)
        assert kv.range(b"a", revision=2) == before
        assert put(kv, (b"a", b"3")) == 4
    finally:
        b.close()


def test_aborted_batch_leaves_no_trace(store: KVStore) -> None:
    put(store, (b"a", b"1"))
    with pytest.raises(RuntimeError), store.backend.write_txn() as w:
        t = store.write(w)
        t.put(b"a", b"2")
        t.end()
        store.compact(w, 2)
        raise RuntimeError
    assert (store.current_revision, store.compact_revision) == (2, -1)
    assert put(store, (b"a", b"3")) == 3


def test_ranges_bounded_by_keys_longer_than_lmdb_allows(store: KVStore) -> None:
    long = b"p" * 600
    at_limit = long[: key_index.MAX_KEY_LEN]  # a stored key that is a prefix of ``long``
    put(store, (at_limit, b"1"), (b"q", b"2"), (b"o", b"3"))
    assert store.range(long).kvs == []
    assert [kv.key for kv in store.range(long, b"\x00").kvs] == [b"q"]
    assert [kv.key for kv in store.range(at_limit, long).kvs] == [at_limit]
    assert store.range(long, b"\x00", count_only=True).count == 1
    assert store.range(long, b"\x00", revision=2).count == 1
    with store.read() as v:
        assert v.get(long) is None and v.get(long, 2) is None
    with store.backend.write_txn() as w:
        t = store.write(w)
        assert t.delete_range(long) == []
        assert [kv.key for kv in t.delete_range(long, b"\x00")] == [b"q"]
        t.end()


def test_counts_of_big_ranges_at_every_chunk_edge(store: KVStore) -> None:
    """``count_live`` reads keys in growing chunks cut at the range end: ranges ending on,
    before and after each chunk edge, with and without a cap, count what a walk counts."""
    n = 1400
    keys = [b"k%05d" % i for i in range(n)]
    put(store, *[(k, b"v") for k in keys[: n // 2]])
    put(store, *[(k, b"v") for k in keys[n // 2 :]])
    delete(store, keys[100])  # a hole: the live keys are no longer dense
    live = [k for k in keys if k != keys[100]]
    edges = {0, 1, 15, 16, 17, 79, 80, 81, 335, 336, 337, 1359, 1360, 1361, len(live) - 1}
    with store.read() as v:
        cur = v._live_cursor()
        for start in (0, 3):
            for e in sorted(edges):
                end = live[e] if e < len(live) else b"k99999"
                want = sum(1 for k in live[start:] if k < end)
                for cap in (0, 1, 16, 80, want, want + 1):
                    got = key_index.count_live(cur, live[start], end, cap)
                    assert got == (min(want, cap) if cap else want), (start, e, cap)
        assert key_index.count_live(cur, b"k", b"\x00") == len(live)
        assert key_index.count_live(cur, b"k", b"\x00", 500) == 500
        assert key_index.count_live(cur, b"k", b"l") == len(live)
        assert key_index.count_live(cur, b"l", b"m") == 0
        assert key_index.count_live(cur, keys[5], b"") == 1
        assert key_index.count_live(cur, keys[100], b"") == 0
    assert store.range(b"k", b"l", limit=3).count == len(live)


def test_shared_read_is_reused_until_the_backend_commits(store: KVStore) -> None:
    put(store, (b"a", b"1"))
    v1 = store.shared_read()
    assert store.shared_read() is v1  # no commit since: the same view and transaction
    assert [kv.value for kv in v1.range(b"a").kvs] == [b"1"]
    put(store, (b"a", b"2"))
    v2 = store.shared_read()
    assert v2 is not v1  # the commit made it stale: a new snapshot shows the write
    assert [kv.value for kv in v2.range(b"a").kvs] == [b"2"]
    store.drop_shared(stale_only=True)
    assert store.shared_read() is v2  # still current: kept
    put(store, (b"b", b"3"))
    store.drop_shared(stale_only=True)
    v3 = store.shared_read()
    assert v3 is not v2 and v3.revision == store.current_revision


def test_shared_read_survives_a_defragment(store: KVStore) -> None:
    put(store, (b"a", b"1"))
    store.shared_read()
    store.drop_shared()  # what the server does before the environment closes
    store.backend.defrag()
    v = store.shared_read()
    assert [kv.value for kv in v.range(b"a").kvs] == [b"1"]
    store.backend.defrag()  # even if nobody dropped it, a reopened env is a new version
    assert [kv.value for kv in store.shared_read().range(b"a").kvs] == [b"1"]
