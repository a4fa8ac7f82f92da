"""RaftLog, Unstable and MemoryStorage."""

from __future__ import annotations

import pytest

from etcdpy.raft import (
    ConfState,
    Entry,
    ErrCompacted,
    ErrSnapOutOfDate,
    ErrUnavailable,
    HardState,
    LogInvariantError,
    MemoryStorage,
    Snapshot,
    SnapshotMetadata,
)
from etcdpy.raft.log import RaftLog
from etcdpy.raft.unstable import Unstable


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    return [Entry(index=i, term=t) for i, t in pairs]


def snap(index: int, term: int) -> Snapshot:
    return Snapshot(
        metadata=SnapshotMetadata(index=index, term=term, conf_state=ConfState(voters=(1,)))
    )


# --- MemoryStorage -------------------------------------------------------------------


def storage_with(*pairs: tuple[int, int]) -> MemoryStorage:
    ms = MemoryStorage()
    ms.append(ents(*pairs))
    return ms


def test_storage_basics() -> None:
    ms = storage_with((1, 1), (2, 1), (3, 2))
    assert ms.first_index() == 1 and ms.last_index() == 3
    assert ms.term(0) == 0 and ms.term(3) == 2
    with pytest.raises(ErrUnavailable):
        ms.term(4)
    assert [e.index for e in ms.entries(1, 4)] == [1, 2, 3]
    assert len(ms.entries(1, 4, max_size=0)) == 1  # at least one entry
    # append truncates a conflicting suffix
    ms.append(ents((2, 3)))
    assert ms.last_index() == 2 and ms.term(2) == 3
    with pytest.raises(ErrUnavailable):
        ms.append(ents((5, 3)))  # gap


def test_storage_compact_and_snapshot() -> None:
    ms = storage_with((1, 1), (2, 1), (3, 2), (4, 2))
    s = ms.create_snapshot(3, ConfState(voters=(1, 2)), b"data")
    assert s.metadata.index == 3 and s.metadata.term == 2
    with pytest.raises(ErrSnapOutOfDate):
        ms.create_snapshot(2, None, b"")
    ms.compact(3)
    assert ms.first_index() == 4 and ms.term(3) == 2
    with pytest.raises(ErrCompacted):
        ms.term(2)
    with pytest.raises(ErrCompacted):
        ms.entries(3, 5)
    with pytest.raises(ErrCompacted):
        ms.compact(2)
    # appending entries that overlap the compacted part keeps only the new suffix
    ms.append(ents((2, 1), (3, 2), (4, 2), (5, 3)))
    assert ms.last_index() == 5
    assert ms.initial_state() == (HardState(), ConfState(voters=(1, 2)))


def test_storage_apply_snapshot() -> None:
    ms = storage_with((1, 1), (2, 1))
    ms.apply_snapshot(snap(10, 4))
    assert ms.first_index() == 11 and ms.last_index() == 10 and ms.term(10) == 4
    assert ms.initial_state()[1] == ConfState(voters=(1,))
    with pytest.raises(ErrSnapOutOfDate):
        ms.apply_snapshot(snap(5, 4))


# --- Unstable ----------------------------------------------------------------------------


def test_unstable_truncate_and_append() -> None:
    u = Unstable(5)
    u.truncate_and_append(ents((5, 1), (6, 1)))
    u.truncate_and_append(ents((7, 1)))
    assert [e.index for e in u.entries] == [5, 6, 7]
    u.truncate_and_append(ents((6, 2)))  # conflict in the middle
    assert [(e.index, e.term) for e in u.entries] == [(5, 1), (6, 2)]
    u.truncate_and_append(ents((4, 3)))  # replaces from before offset
    assert u.offset == 4 and [(e.index, e.term) for e in u.entries] == [(4, 3)]


def test_unstable_stable_to_ignores_overwritten_term() -> None:
    u = Unstable(1)
    u.truncate_and_append(ents((1, 1), (2, 1)))
    u.truncate_and_append(ents((2, 2)))
    u.stable_to(2, 1)  # the persisted (2,1) was replaced meanwhile: keep it unstable
    assert u.offset == 1 and len(u.entries) == 2
    u.stable_to(1, 1)
    assert u.offset == 2 and [(e.index, e.term) for e in u.entries] == [(2, 2)]


def test_unstable_snapshot() -> None:
    u = Unstable(1)
    u.restore(snap(5, 2))
    assert u.maybe_first_index() == 6 and u.maybe_last_index() == 5
    assert u.maybe_term(5) == 2 and u.maybe_term(4) is None
    u.stable_snap_to(4)
    assert u.snapshot is not None
    u.stable_snap_to(5)
    assert u.snapshot is None


# --- RaftLog -----------------------------------------------------------------------------


def test_log_maybe_append_conflict_and_commit() -> None:
    lg = RaftLog(storage_with((1, 1), (2, 2), (3, 3)))
    assert lg.last_index() == 3
    # mismatch at (3, 2)
    assert lg.maybe_append(3, 2, 3, ents((4, 4))) is None
    # match, no new entries: commit limited to last new index
    assert lg.maybe_append(2, 2, 10, []) == 2
    assert lg.committed == 2
    # conflict at 3: truncate and append
    assert lg.maybe_append(2, 2, 3, ents((3, 4), (4, 4))) == 4
    assert lg.term(3) == 4 and lg.committed == 3
    # a conflict with a committed entry is an invariant violation
    with pytest.raises(LogInvariantError):
        lg.maybe_append(1, 1, 3, ents((2, 9)))


def test_log_commit_never_decreases_or_passes_last() -> None:
    lg = RaftLog(storage_with((1, 1), (2, 1)))
    lg.commit_to(2)
    lg.commit_to(1)
    assert lg.committed == 2
    with pytest.raises(LogInvariantError):
        lg.commit_to(3)


def test_log_maybe_commit_only_current_term() -> None:
    lg = RaftLog(storage_with((1, 1), (2, 2)))
    assert not lg.maybe_commit(2, 3)
    assert lg.committed == 0
    assert lg.maybe_commit(2, 2)
    assert lg.committed == 2


def test_find_conflict_by_term() -> None:
    lg = RaftLog(storage_with((1, 1), (2, 2), (3, 2), (4, 5), (5, 5)))
    assert lg.find_conflict_by_term(5, 3) == 3
    assert lg.find_conflict_by_term(5, 5) == 5
    assert lg.find_conflict_by_term(5, 1) == 1
    assert lg.find_conflict_by_term(9, 1) == 9  # beyond the log: unchanged


def test_log_slice_across_storage_and_unstable_and_limits() -> None:
    ms = storage_with((1, 1), (2, 1), (3, 1))
    ms.create_snapshot(1, ConfState(voters=(1,)), b"")
    ms.compact(1)
    lg = RaftLog(ms)
    lg.append([Entry(index=4, term=2, data=b"x" * 100), Entry(index=5, term=2)])
    assert [e.index for e in lg.slice(2, 6)] == [2, 3, 4, 5]
    assert [e.index for e in lg.entries(3)] == [3, 4, 5]
    with pytest.raises(ErrCompacted):
        lg.slice(1, 3)
    assert [e.index for e in lg.slice(2, 6, max_size=60)] == [2, 3]
    assert lg.term(1) == 1 and lg.term(0) == 0 and lg.term(9) == 0
    assert lg.is_up_to_date(5, 2) and lg.is_up_to_date(1, 3) and not lg.is_up_to_date(4, 2)


def test_log_next_ents_and_applied() -> None:
    lg = RaftLog(storage_with((1, 1), (2, 1)))
    lg.append(ents((3, 1)))
    lg.commit_to(3)
    assert [e.index for e in lg.next_ents()] == [1, 2, 3]
    lg.applied_to(2)
    assert [e.index for e in lg.next_ents()] == [3]
    with pytest.raises(LogInvariantError):
        lg.applied_to(1)
    lg.applied_to(3)
    assert not lg.has_next_ents()


def test_log_restore_snapshot() -> None:
    lg = RaftLog(storage_with((1, 1)))
    lg.restore(snap(10, 3))
    assert lg.committed == 10 and lg.last_index() == 10 and lg.first_index() == 11
    assert lg.term(10) == 3 and lg.has_pending_snapshot()
