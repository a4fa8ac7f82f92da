"""One contract suite for ``LogStorage``, run against every implementation.

The cases follow etcd's ``raft/storage_test.go``: a log whose dummy entry (the compaction
point) is index 3 / term 3, followed by entries 4/4 and 5/5. Implementations:
``raft.storage.MemoryStorage`` (skipped until it exists), ``storage.wal.WalStore`` and
``storage.segment_wal.SegmentWalStore``, the disk stores also reopened from disk after the
setup so the suite checks what was persisted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etcdpy.raft import storage as raft_storage
from etcdpy.raft.storage import NO_LIMIT, ErrCompacted, ErrSnapOutOfDate, ErrUnavailable
from etcdpy.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from etcdpy.storage.segment_wal import SegmentWalStore
from etcdpy.storage.wal import WalStore

CS = ConfState(voters=(1, 2, 3))

Factory = Callable[[], Any]


def _ent(index: int, term: int, data: bytes = b"") -> Entry:
    return Entry(term=term, index=index, data=data)


def _snap(index: int, term: int, data: bytes = b"snap", cs: ConfState = CS) -> Snapshot:
    return Snapshot(data=data, metadata=SnapshotMetadata(conf_state=cs, index=index, term=term))


@pytest.fixture(params=["memory", "wal", "wal-reopened", "seg", "seg-reopened"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make(snapshot_at=(3, 3), entries=[...])`` -> a storage holding that log."""
    opened: list[WalStore | SegmentWalStore] = []
    store = SegmentWalStore if request.param.startswith("seg") else WalStore

    def build(
        snapshot_at: tuple[int, int] | None = (3, 3), entries: list[Entry] | None = None
    ) -> Any:
        ents = [_ent(4, 4), _ent(5, 5)] if entries is None else entries
        if request.param == "memory":
            cls = getattr(raft_storage, "MemoryStorage", None)
            if cls is None:
                pytest.skip("raft.storage.MemoryStorage not written yet")
            s = cls()
        else:
            s = store.open(tmp_path / f"d{len(opened)}")
            opened.append(s)
        if snapshot_at is not None:
            s.apply_snapshot(_snap(*snapshot_at))
        if ents:
            s.append(ents)
        if request.param.endswith("-reopened"):
            s.close()
            s = store.open(s.snaps.dir.parent.parent)
            opened.append(s)
        return s

    yield build
    for s in opened:
        s.close()


def test_empty_storage(make: Callable[..., Any]) -> None:
    s = make(snapshot_at=None, entries=[])
    assert s.first_index() == 1
    assert s.last_index() == 0
    assert s.term(0) == 0
    with pytest.raises(ErrUnavailable):
        s.term(1)
    with pytest.raises(ErrUnavailable):
        s.entries(1, 1)
    assert s.snapshot().is_empty()
    hs, cs = s.initial_state()
    assert hs == HardState()
    assert cs == ConfState()


@pytest.mark.parametrize(
    ("i", "want"),
    [(2, ErrCompacted), (3, 3), (4, 4), (5, 5), (6, ErrUnavailable)],
)
def test_term(make: Callable[..., Any], i: int, want: int | type[Exception]) -> None:
    s = make()
    if isinstance(want, int):
        assert s.term(i) == want
    else:
        with pytest.raises(want):
            s.term(i)


@pytest.mark.parametrize(
    ("lo", "hi", "want"),
    [
        (2, 6, ErrCompacted),
        (3, 4, ErrCompacted),
        (4, 5, [(4, 4)]),
        (4, 6, [(4, 4), (5, 5)]),
        (4, 7, [(4, 4), (5, 5), (6, 6)]),
        (5, 7, [(5, 5), (6, 6)]),
    ],
)
def test_entries(
    make: Callable[..., Any], lo: int, hi: int, want: list[tuple[int, int]] | type[Exception]
) -> None:
    s = make(entries=[_ent(4, 4), _ent(5, 5), _ent(6, 6)])
    if isinstance(want, list):
        got = s.entries(lo, hi, NO_LIMIT)
        assert [(e.index, e.term) for e in got] == want
    else:
        with pytest.raises(want):
            s.entries(lo, hi, NO_LIMIT)


def test_entries_max_size_returns_at_least_one(make: Callable[..., Any]) -> None:
    s = make(entries=[_ent(4, 4, b"a" * 100), _ent(5, 5, b"b" * 100), _ent(6, 6, b"c" * 100)])
    assert [e.index for e in s.entries(4, 7, 0)] == [4]
    got = s.entries(4, 7, NO_LIMIT)
    assert [e.data for e in got] == [b"a" * 100, b"b" * 100, b"c" * 100]
    some = s.entries(4, 7, 250)
    assert 1 <= len(some) <= 3
    assert [e.index for e in some] == list(range(4, 4 + len(some)))


def test_entries_past_last_index_is_refused(make: Callable[..., Any]) -> None:
    s = make()
    with pytest.raises(ErrUnavailable):  # etcd panics
        s.entries(4, 7, NO_LIMIT)


def test_first_and_last_index(make: Callable[..., Any]) -> None:
    s = make()
    assert s.first_index() == 4
    assert s.last_index() == 5
    s.append([_ent(6, 5)])
    assert s.last_index() == 6
    s.compact(4)
    assert s.first_index() == 5
    assert s.last_index() == 6


@pytest.mark.parametrize(
    ("i", "err", "first", "term_at_i"),
    [(2, ErrCompacted, 4, None), (3, ErrCompacted, 4, None), (4, None, 5, 4), (5, None, 6, 5)],
)
def test_compact(
    make: Callable[..., Any],
    i: int,
    err: type[Exception] | None,
    first: int,
    term_at_i: int | None,
) -> None:
    s = make()
    if err is not None:
        with pytest.raises(err):
            s.compact(i)
    else:
        s.compact(i)
        assert s.term(i) == term_at_i
        with pytest.raises(ErrCompacted):
            s.term(i - 1)
    assert s.first_index() == first
    assert s.last_index() == 5


def test_compact_past_last_index_is_refused(make: Callable[..., Any]) -> None:
    s = make()
    with pytest.raises(ErrUnavailable):  # etcd panics
        s.compact(6)


@pytest.mark.parametrize(
    ("appended", "want"),
    [
        # nothing new
        ([(3, 3), (4, 4), (5, 5)], [(4, 4), (5, 5)]),
        # conflict: the tail is replaced
        ([(3, 3), (4, 6), (5, 6)], [(4, 6), (5, 6)]),
        # extends
        ([(3, 3), (4, 4), (5, 5), (6, 5)], [(4, 4), (5, 5), (6, 5)]),
        # starts below the compaction point: the compacted part is ignored
        ([(2, 3), (3, 3), (4, 5)], [(4, 5)]),
        # truncates from the middle
        ([(4, 5)], [(4, 5)]),
        # appends right after the last entry
        ([(6, 5)], [(4, 4), (5, 5), (6, 5)]),
    ],
)
def test_append(
    make: Callable[..., Any], appended: list[tuple[int, int]], want: list[tuple[int, int]]
) -> None:
    s = make()
    s.append([_ent(i, t) for i, t in appended])
    assert s.first_index() == 4
    assert s.last_index() == want[-1][0]
    got = s.entries(s.first_index(), s.last_index() + 1, NO_LIMIT)
    assert [(e.index, e.term) for e in got] == want
    for i, t in want:
        assert s.term(i) == t


def test_append_with_a_gap_is_refused(make: Callable[..., Any]) -> None:
    s = make()
    with pytest.raises(ErrUnavailable):  # etcd panics ("missing log entry")
        s.append([_ent(7, 5)])


def test_create_snapshot(make: Callable[..., Any]) -> None:
    s = make(entries=[_ent(4, 4), _ent(5, 5), _ent(6, 6)])
    cs = ConfState(voters=(1, 2), learners=(3,))
    snap = s.create_snapshot(4, cs, b"data")
    assert snap.metadata == SnapshotMetadata(conf_state=cs, index=4, term=4)
    assert snap.data == b"data"
    assert s.snapshot() == snap
    snap = s.create_snapshot(5, cs, b"data5")
    assert s.snapshot().metadata.index == 5
    assert s.snapshot().data == b"data5"
    with pytest.raises(ErrSnapOutOfDate):
        s.create_snapshot(4, cs, b"old")
    # creating a snapshot does not compact the log
    assert s.first_index() == 4
    with pytest.raises(ErrUnavailable):  # etcd panics
        s.create_snapshot(7, cs, b"future")
    s.create_snapshot(6, None, b"data6")  # None keeps the membership
    assert s.snapshot().metadata.conf_state == cs
    assert s.initial_state()[1] == cs


def test_apply_snapshot(make: Callable[..., Any]) -> None:
    s = make(snapshot_at=None, entries=[])
    s.apply_snapshot(_snap(4, 4, b"four"))
    assert s.first_index() == 5
    assert s.last_index() == 4
    assert s.term(4) == 4
    assert s.snapshot().data == b"four"
    with pytest.raises(ErrSnapOutOfDate):
        s.apply_snapshot(_snap(3, 3))
    assert s.initial_state()[1] == CS


def test_apply_snapshot_drops_the_log(make: Callable[..., Any]) -> None:
    s = make(entries=[_ent(4, 4), _ent(5, 5), _ent(6, 6)])
    s.apply_snapshot(_snap(10, 7, b"ten"))
    assert s.first_index() == 11
    assert s.last_index() == 10
    assert s.term(10) == 7
    with pytest.raises(ErrCompacted):
        s.term(6)
    s.append([_ent(11, 7)])
    assert [e.index for e in s.entries(11, 12, NO_LIMIT)] == [11]


def test_hard_state_in_initial_state(make: Callable[..., Any]) -> None:
    s = make()
    s.set_hard_state(HardState(term=5, vote=2, commit=4))
    hs, cs = s.initial_state()
    assert hs == HardState(term=5, vote=2, commit=4)
    assert cs == CS
