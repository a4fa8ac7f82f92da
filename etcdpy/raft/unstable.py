"""The tail of the log not yet persisted (etcd's ``log_unstable.go``).

``entries[i]`` has index ``offset + i``. An incoming snapshot, until persisted, also lives
here. Entries leave when the application reports them stable (``stable_to``) with the
same term: a later overwrite with a different term keeps them unstable.
"""

from __future__ import annotations

from collections.abc import Sequence

from etcdpy.raft.errors import LogInvariantError
from etcdpy.raft.types import Entry, Snapshot


class Unstable:
    __slots__ = ("entries", "offset", "snapshot")

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            snap = self.snapshot
            if snap is not None and snap.metadata.index == i:
                return snap.metadata.term
            return None
        n = i - self.offset
        if n < len(self.entries):
            return self.entries[n].term
        return None

    def stable_to(self, i: int, t: int) -> None:
        gt = self.maybe_term(i)
        if gt is None:
            return
        if gt == t and i >= self.offset:
            del self.entries[: i + 1 - self.offset]
            self.offset = i + 1

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, s: Snapshot) -> None:
        self.offset = s.metadata.index + 1
        self.entries = []
        self.snapshot = s

    def truncate_and_append(self, ents: Sequence[Entry]) -> None:
        after = ents[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif after <= self.offset:
            # The log is being replaced from before our first unstable entry.
            self.offset = after
            self.entries = list(ents)
        else:
            del self.entries[after - self.offset :]
            self.entries.extend(ents)

    def slice(self, lo: int, hi: int) -> list[Entry]:
        if lo > hi or lo < self.offset or hi > self.offset + len(self.entries):
            raise LogInvariantError(
                f"unstable.slice[{lo},{hi}) out of bound [{self.offset},"
                f"{self.offset + len(self.entries)}]"
            )
        return self.entries[lo - self.offset : hi - self.offset]
