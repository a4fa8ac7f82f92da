"""The read-only view of the stable log that the Raft core needs (etcd's ``raft.Storage``).

The application writes to its storage (WAL) itself after each Ready; the core only reads.
``MemoryStorage`` (tests, the simulator) and ``etcdpy.storage.wal.WalStore`` (LMDB) both
implement ``LogStorage`` and share one contract test suite.
"""

from __future__ import annotations

from typing import Protocol, Sequence

from etcdpy.raft.types import ConfState, Entry, HardState, Snapshot


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
