"""The read-only view of the stable log that the Raft core needs (etcd's ``raft.Storage``).

The application writes to its storage (WAL) itself after each Ready; the core only reads.
``MemoryStorage`` (tests, the simulator) and ``etcdpy.storage.wal.WalStore`` (LMDB) both
implement ``LogStorage`` and share one contract test suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from etcdpy.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata


class StorageError(Exception):
    """Base of the errors a LogStorage raises."""


class ErrCompacted(StorageError):
    """The requested index is below the first available index (compacted away)."""


class ErrSnapOutOfDate(StorageError):
    """The snapshot offered is older than the one already held."""


class ErrUnavailable(StorageError):
    """The requested index is past the last index."""


class ErrSnapshotTemporarilyUnavailable(StorageError):
    """A snapshot is being made; ask again later."""


NO_LIMIT = 2**63 - 1


class LogStorage(Protocol):
    def initial_state(self) -> tuple[HardState, ConfState]:
        """Persisted hard state and the membership as of the last snapshot/conf entry."""
        ...

    def entries(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> Sequence[Entry]:
        """Entries in [lo, hi); at least one entry when any is in range, whatever max_size."""
        ...

    def term(self, i: int) -> int:
        """Term of entry i; valid for first_index()-1 .. last_index()."""
        ...

    def last_index(self) -> int: ...

    def first_index(self) -> int:
        """Index of the first entry still held (snapshot index + 1)."""
        ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot, for sending to a lagging follower."""
        ...


def entry_size(e: Entry) -> int:
    """Approximate encoded size of an entry, for message/batch size limits."""
    return len(e.data) + 16


def limit_size(ents: Sequence[Entry], max_size: int) -> Sequence[Entry]:
    """The longest prefix of ``ents`` within ``max_size`` bytes, but at least one entry."""
    if max_size >= NO_LIMIT or len(ents) <= 1:
        return ents
    size = entry_size(ents[0])
    for n in range(1, len(ents)):
        size += entry_size(ents[n])
        if size > max_size:
            return ents[:n]
    return ents


class MemoryStorage:
    """An in-memory LogStorage plus the write side etcd's MemoryStorage has.

    Used by tests and the simulator as the "disk": whatever was written here survives a
    simulated crash, everything else is lost. ``_ents[0]`` is a dummy entry holding the
    index/term of the last compacted entry (the snapshot), so ``term(first_index()-1)``
    works.
    """

    __slots__ = ("_ents", "_hard_state", "_snapshot")

    def __init__(self) -> None:
        self._hard_state = HardState()
        self._snapshot = Snapshot()
        self._ents: list[Entry] = [Entry()]

    @classmethod
    def with_conf_state(cls, conf_state: ConfState) -> MemoryStorage:
        """A fresh storage whose initial membership is ``conf_state`` (at index 0).

        The simplest way to bootstrap a test cluster: every node starts from the same
        configuration without conf-change entries in the log.
        """
        ms = cls()
        ms._snapshot = Snapshot(metadata=SnapshotMetadata(conf_state=conf_state))
        return ms

    # --- LogStorage ---------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._snapshot.metadata.conf_state

    def entries(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> Sequence[Entry]:
        ents = self._ents
        offset = ents[0].index
        if lo <= offset:
            raise ErrCompacted()
        if hi > offset + len(ents):
            raise ErrUnavailable(f"entries' hi({hi}) is out of bound lastindex")
        if len(ents) == 1:
            raise ErrUnavailable()
        return limit_size(ents[lo - offset : hi - offset], max_size)

    def term(self, i: int) -> int:
        ents = self._ents
        offset = ents[0].index
        if i < offset:
            raise ErrCompacted()
        if i - offset >= len(ents):
            raise ErrUnavailable()
        return ents[i - offset].term

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # --- write side ---------------------------------------------------------------

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    def set_hard_state(self, hs: HardState) -> None:
        self._hard_state = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log by ``snap`` (a follower installing the leader's snapshot)."""
        if self._snapshot.metadata.index >= snap.metadata.index:
            raise ErrSnapOutOfDate()
        self._snapshot = snap
        self._ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]

    def create_snapshot(self, i: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the applied state at index ``i`` (then ``compact`` later)."""
        if i <= self._snapshot.metadata.index:
            raise ErrSnapOutOfDate()
        offset = self._ents[0].index
        if i > self.last_index():
            raise ErrUnavailable(f"snapshot {i} is out of bound lastindex({self.last_index()})")
        cs = conf_state if conf_state is not None else self._snapshot.metadata.conf_state
        self._snapshot = Snapshot(
            data=data,
            metadata=SnapshotMetadata(conf_state=cs, index=i, term=self._ents[i - offset].term),
        )
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Discard entries up to ``compact_index`` (which becomes the new dummy entry)."""
        offset = self._ents[0].index
        if compact_index <= offset:
            raise ErrCompacted()
        if compact_index > self.last_index():
            raise ErrUnavailable(
                f"compact {compact_index} is out of bound lastindex({self.last_index()})"
            )
        i = compact_index - offset
        head = self._ents[i]
        self._ents = [Entry(term=head.term, index=head.index), *self._ents[i + 1 :]]

    def append(self, entries: Sequence[Entry]) -> None:
        """Append, truncating any conflicting suffix first (entries are contiguous)."""
        if not entries:
            return
        first = self.first_index()
        last = entries[0].index + len(entries) - 1
        if last < first:
            return
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        n = len(self._ents)
        if n > offset:
            del self._ents[offset:]
            self._ents.extend(entries)
        elif n == offset:
            self._ents.extend(entries)
        else:
            raise ErrUnavailable(
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]"
            )

    def save(self, hard_state: HardState, entries: Sequence[Entry], snapshot: Snapshot) -> None:
        """Persist one Ready the way WalStore.save does: snapshot, entries, hard state."""
        if not snapshot.is_empty():
            self.apply_snapshot(snapshot)
        if entries:
            self.append(entries)
        if not hard_state.is_empty():
            self._hard_state = hard_state
