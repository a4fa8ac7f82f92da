"""The Raft log: the stable part behind LogStorage plus the unstable tail (etcd's ``log.go``).

Rules:
1. ``committed`` never decreases and never passes the last index (PySyncObj #166).
2. A committed entry is never truncated: a conflicting append below ``committed`` is an
   invariant violation, not something to repair.
3. ``applied <= committed`` always.
"""

from __future__ import annotations

from collections.abc import Sequence

from etcdpy.raft.errors import LogInvariantError
from etcdpy.raft.storage import (
    NO_LIMIT,
    ErrCompacted,
    ErrUnavailable,
    LogStorage,
    limit_size,
)
from etcdpy.raft.types import Entry, Snapshot
from etcdpy.raft.unstable import Unstable


class RaftLog:
    __slots__ = ("applied", "committed", "max_next_ents_size", "storage", "unstable")

    def __init__(self, storage: LogStorage, max_next_ents_size: int = NO_LIMIT) -> None:
        self.storage = storage
        self.max_next_ents_size = max_next_ents_size
        first = storage.first_index()
        last = storage.last_index()
        self.unstable = Unstable(last + 1)
        self.committed = first - 1
        self.applied = first - 1

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, "
            f"len(unstable.entries)={len(self.unstable.entries)})"
        )

    # --- indexes and terms --------------------------------------------------------

    def first_index(self) -> int:
        snap = self.unstable.snapshot
        if snap is not None:
            return snap.metadata.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        u = self.unstable
        if u.entries:
            return u.offset + len(u.entries) - 1
        if u.snapshot is not None:
            return u.snapshot.metadata.index
        return self.storage.last_index()

    def term(self, i: int) -> int:
        """Term of entry ``i``; 0 when out of range; ErrCompacted/ErrUnavailable from storage."""
        u = self.unstable
        if i >= u.offset:
            n = i - u.offset
            if n < len(u.entries):
                return u.entries[n].term
            return 0
        t = u.maybe_term(i)
        if t is not None:
            return t
        if i < self.first_index() - 1:
            return 0
        return self.storage.term(i)

    def zero_term_on_compacted(self, i: int) -> int:
        try:
            return self.term(i)
        except (ErrCompacted, ErrUnavailable):
            return 0

    def last_term(self) -> int:
        return self.zero_term_on_compacted(self.last_index())

    def match_term(self, i: int, term: int) -> bool:
        try:
            return self.term(i) == term
        except (ErrCompacted, ErrUnavailable):
            return False

    def is_up_to_date(self, lasti: int, term: int) -> bool:
        """Raft §5.4.1: a vote goes only to a candidate whose log is at least as new."""
        lt = self.last_term()
        return term > lt or (term == lt and lasti >= self.last_index())

    # --- appending ----------------------------------------------------------------

    def maybe_append(
        self, index: int, log_term: int, committed: int, ents: Sequence[Entry]
    ) -> int | None:
        """Follower side of MsgApp: the new last index, or None if (index, log_term) misses."""
        if not self.match_term(index, log_term):
            return None
        lastnewi = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise LogInvariantError(
                    f"entry {ci} conflict with committed entry [committed({self.committed})]"
                )
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, lastnewi))
        return lastnewi

    def append(self, ents: Sequence[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index - 1
        if after < self.committed:
            raise LogInvariantError(f"after({after}) is out of range [committed({self.committed})]")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    def find_conflict(self, ents: Sequence[Entry]) -> int:
        """Index of the first entry whose term differs from ours (or is new), else 0."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest index <= ``index`` whose term is <= ``term`` (fast backtracking).

        Entries with a larger term cannot match the other side's log at ``term``; skipping
        them all at once avoids one round trip per entry.
        """
        if index > self.last_index():
            return index
        while True:
            try:
                t = self.term(index)
            except (ErrCompacted, ErrUnavailable):
                break
            if t <= term:
                break
            index -= 1
        return index

    # --- commit / apply -----------------------------------------------------------

    def commit_to(self, tocommit: int) -> None:
        if self.committed < tocommit:
            if self.last_index() < tocommit:
                raise LogInvariantError(
                    f"tocommit({tocommit}) is out of range [lastIndex({self.last_index()})]. "
                    "Was the raft log corrupted, truncated, or lost?"
                )
            self.committed = tocommit

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Raft §5.4.2: only an entry of the current term is committed by counting."""
        if max_index > self.committed and self.zero_term_on_compacted(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if self.committed < i or i < self.applied:
            raise LogInvariantError(
                f"applied({i}) is out of range [prevApplied({self.applied}), "
                f"committed({self.committed})]"
            )
        self.applied = i

    def stable_to(self, i: int, t: int) -> None:
        self.unstable.stable_to(i, t)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    # --- reading ------------------------------------------------------------------

    def unstable_entries(self) -> tuple[Entry, ...]:
        return tuple(self.unstable.entries)

    def has_next_ents(self) -> bool:
        if self.committed <= self.applied:
            return False
        return self.committed + 1 > max(self.applied + 1, self.first_index())

    def next_ents(self) -> tuple[Entry, ...]:
        """Committed entries not yet applied (bounded by max_committed_size_per_ready)."""
        off = max(self.applied + 1, self.first_index())
        if self.committed + 1 > off:
            return tuple(self.slice(off, self.committed + 1, self.max_next_ents_size))
        return ()

    def has_pending_snapshot(self) -> bool:
        return self.unstable.snapshot is not None

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    def entries(self, i: int, max_size: int = NO_LIMIT) -> Sequence[Entry]:
        last = self.last_index()
        if i > last:
            return ()
        return self.slice(i, last + 1, max_size)

    def slice(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> Sequence[Entry]:
        """Entries [lo, hi) from storage and/or unstable; raises ErrCompacted below first."""
        if lo > hi:
            raise LogInvariantError(f"invalid slice {lo} > {hi}")
        fi = self.first_index()
        if lo < fi:
            raise ErrCompacted()
        if hi > self.last_index() + 1:
            raise LogInvariantError(f"slice[{lo},{hi}) out of bound [{fi},{self.last_index()}]")
        if lo == hi:
            return ()
        uoff = self.unstable.offset
        if lo >= uoff:
            ents: Sequence[Entry] = self.unstable.entries[lo - uoff : hi - uoff]
            return limit_size(ents, max_size)
        stored = self.storage.entries(lo, min(hi, uoff), max_size)
        if len(stored) < min(hi, uoff) - lo:
            return stored  # size-limited
        if hi > uoff:
            ents = list(stored)
            ents.extend(self.unstable.entries[: hi - uoff])
            return limit_size(ents, max_size)
        return stored

    def restore(self, s: Snapshot) -> None:
        self.committed = s.metadata.index
        self.unstable.restore(s)
