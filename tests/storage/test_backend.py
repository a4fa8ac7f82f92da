"""The LMDB KV backend: buckets, transactions, consistent_index, size, hash, defrag, copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdpy.storage.backend import (
    BUCKET_KEY,
    BUCKET_LEASE,
    BUCKET_MEMBERS,
    BUCKET_META,
    BUCKETS,
    Backend,
)

MAP = 1 << 27


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[Backend]:
    b = Backend(tmp_path / "kv", map_size=MAP)
    yield b
    b.close()


def test_buckets_exist_and_are_independent(backend: Backend) -> None:
    with backend.write_txn() as w:
        for name in BUCKETS:
            if name != b"key_index":
                w.unsafe_put(name, b"k", name)
    with backend.read_txn() as r:
        for name in BUCKETS:
            if name != b"key_index":
                assert r.unsafe_get(name, b"k") == name


def test_unsafe_range_conventions(backend: Backend) -> None:
    with backend.write_txn() as w:
        for k in (b"a", b"b", b"c", b"d"):
            w.unsafe_put(BUCKET_LEASE, k, k.upper())
    with backend.read_txn() as r:
        assert r.unsafe_range(BUCKET_LEASE, b"b") == [(b"b", b"B")]
        assert r.unsafe_range(BUCKET_LEASE, b"x") == []
        assert r.unsafe_range(BUCKET_LEASE, b"b", b"d") == [(b"b", b"B"), (b"c", b"C")]
        assert [k for k, _ in r.unsafe_range(BUCKET_LEASE, b"b", b"")] == [b"b", b"c", b"d"]
        assert r.unsafe_range(BUCKET_LEASE, b"a", b"", limit=2) == [(b"a", b"A"), (b"b", b"B")]
        assert [k for k, _ in r.unsafe_for_each(BUCKET_LEASE)] == [b"a", b"b", b"c", b"d"]
    with backend.write_txn() as w:
        assert w.unsafe_delete(BUCKET_LEASE, b"b")
        assert not w.unsafe_delete(BUCKET_LEASE, b"b")
        assert w.unsafe_get(BUCKET_LEASE, b"b") is None  # sees its own write
    with backend.read_txn() as r:
        assert r.unsafe_get(BUCKET_LEASE, b"b") is None


def test_abort_discards_data_and_consistent_index_together(backend: Backend) -> None:
    with backend.write_txn() as w:
        w.unsafe_put(BUCKET_MEMBERS, b"m1", b"1")
        w.set_consistent_index(5, 2)
    hooks: list[str] = []
    with pytest.raises(RuntimeError), backend.write_txn() as w:
        w.on_commit(lambda: hooks.append("commit"))
        w.on_abort(lambda: hooks.append("abort"))
        w.unsafe_put(BUCKET_MEMBERS, b"m2", b"2")
        w.set_consistent_index(6, 2)
        raise RuntimeError("apply failed")
    assert hooks == ["abort"]
    assert backend.consistent_index() == 5
    assert backend.term() == 2
    with backend.read_txn() as r:
        assert r.unsafe_get(BUCKET_MEMBERS, b"m2") is None
    with backend.write_txn() as w:
        w.on_commit(lambda: hooks.append("commit"))
        w.unsafe_put(BUCKET_MEMBERS, b"m2", b"2")
        w.set_consistent_index(6, 3)
    assert hooks == ["abort", "commit"]
    assert (backend.consistent_index(), backend.term()) == (6, 3)


def test_read_snapshot_is_isolated_from_later_writes(backend: Backend) -> None:
    with backend.write_txn() as w:
        w.unsafe_put(BUCKET_LEASE, b"x", b"1")
        w.set_consistent_index(1, 1)
    r = backend.read_txn()
    with backend.write_txn() as w:
        w.unsafe_put(BUCKET_LEASE, b"x", b"2")
        w.set_consistent_index(2, 1)
    assert r.unsafe_get(BUCKET_LEASE, b"x") == b"1"
    assert r.consistent_index() == 1
    r.close()
    with backend.read_txn() as r2:
        assert r2.unsafe_get(BUCKET_LEASE, b"x") == b"2"


def test_reopen_preserves_everything(tmp_path: Path) -> None:
    b = Backend(tmp_path / "kv", map_size=MAP)
    with b.write_txn() as w:
        w.unsafe_put(BUCKET_LEASE, b"l", b"v")
        w.set_consistent_index(42, 7)
    h = b.hash()
    b.close()
    b = Backend(tmp_path / "kv", map_size=MAP)
    try:
        assert (b.consistent_index(), b.term()) == (42, 7)
        assert b.hash() == h
        with b.read_txn() as r:
            assert r.unsafe_get(BUCKET_LEASE, b"l") == b"v"
    finally:
        b.close()


def test_hash_covers_content_not_meta(backend: Backend) -> None:
    h0 = backend.hash()
    with backend.write_txn() as w:
        w.set_consistent_index(9, 9)
        w.unsafe_put(BUCKET_META, b"other", b"x")
    assert backend.hash() == h0
    with backend.write_txn() as w:
        w.unsafe_put(BUCKET_KEY, b"k", b"v")
    h1 = backend.hash()
    assert h1 != h0
    with backend.write_txn() as w:
        w.unsafe_put(BUCKET_KEY, b"k", b"w")
    assert backend.hash() not in (h0, h1)


def test_defrag_preserves_content_and_reduces_size(backend: Backend) -> None:
    value = b"v" * 1000
    with backend.write_txn() as w:
        for i in range(4000):
            w.unsafe_put(BUCKET_LEASE, b"%06d" % i, value)
        w.set_consistent_index(1, 1)
    with backend.write_txn() as w:
        for i in range(4000):
            if i % 10:
                w.unsafe_delete(BUCKET_LEASE, b"%06d" % i)
        w.set_consistent_index(2, 1)
    h = backend.hash()
    size = backend.db_size()
    in_use = backend.db_size_in_use()
    assert 0 < in_use < size
    backend.defrag()
    assert backend.hash() == h
    assert backend.consistent_index() == 2
    assert backend.db_size() < size // 2
    assert backend.db_size_in_use() <= backend.db_size()
    with backend.write_txn() as w:  # still writable after the swap
        w.unsafe_put(BUCKET_LEASE, b"after", b"1")
    with backend.read_txn() as r:
        assert r.unsafe_get(BUCKET_LEASE, b"after") == b"1"
        assert len(list(r.unsafe_for_each(BUCKET_LEASE))) == 401


def test_defrag_refuses_while_writing(backend: Backend) -> None:
    w = backend.write_txn()
    with pytest.raises(RuntimeError):
        backend.defrag()
    w.abort()


def test_snapshot_copy_is_consistent(backend: Backend, tmp_path: Path) -> None:
    with backend.write_txn() as w:
        w.unsafe_put(BUCKET_LEASE, b"a", b"1")
        w.set_consistent_index(3, 1)
    backend.snapshot_to(tmp_path / "copy")
    c = Backend(tmp_path / "copy", map_size=MAP)
    try:
        assert c.hash() == backend.hash()
        assert c.consistent_index() == 3
    finally:
        c.close()


def test_copy_to_fd(backend: Backend, tmp_path: Path) -> None:
    with backend.write_txn() as w:
        w.unsafe_put(BUCKET_LEASE, b"a", b"1")
    (tmp_path / "fdcopy").mkdir()
    with open(tmp_path / "fdcopy" / "data.mdb", "wb") as f:
        backend.copy_to_fd(f.fileno())
    c = Backend(tmp_path / "fdcopy", map_size=MAP)
    try:
        assert c.hash() == backend.hash()
    finally:
        c.close()
