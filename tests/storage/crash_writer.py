"""A deterministic raft-like workload for WAL crash tests, and the writer process running it.

``workload(seed)`` yields operations (save a Ready, create a snapshot, compact, install a
leader's snapshot) together with a model ``MemoryStorage`` holding the state after each
operation. The writer process (``python -m tests.storage.crash_writer DIR SEED START LIMIT
[STORE]``) replays the same operations into a ``WalStore`` (STORE ``wal``, the default) or a
``SegmentWalStore`` with small segments (STORE ``seg``) from operation START on and prints
``ACK <i>`` once operation ``i`` has returned, i.e. is durable. The parent kills it (or a
failpoint from ``ETCDPY_FAILPOINTS`` does), reopens the store and finds which model state
it equals: every acknowledged operation must be there, and no operation half-done.
"""

from __future__ import annotations

import hashlib
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from etcdpy.raft.storage import NO_LIMIT, ErrUnavailable, MemoryStorage
from etcdpy.raft.types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)

CS = ConfState(voters=(1, 2, 3))


@dataclass(frozen=True, slots=True)
class Op:
    kind: str  # "save" | "snapshot" | "compact" | "install"
    hard_state: HardState = EMPTY_HARD_STATE
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot = EMPTY_SNAPSHOT
    index: int = 0
    data: bytes = b""


def fingerprint(s: Any) -> str:
    """A digest of everything a LogStorage exposes (works for MemoryStorage and WalStore)."""
    h = hashlib.sha256()
    hs, cs = s.initial_state()
    first, last = s.first_index(), s.last_index()
    h.update(repr((hs, cs, first, last, s.term(first - 1))).encode())
    snap = s.snapshot()
    h.update(repr(snap.metadata).encode())
    h.update(snap.data)
    if last >= first:
        for e in s.entries(first, last + 1, NO_LIMIT):
            h.update(repr((e.index, e.term, int(e.type), len(e.data))).encode())
            h.update(e.data)
    return h.hexdigest()


def workload(seed: int) -> Iterator[tuple[Op, MemoryStorage]]:
    """Operations a raft node's storage sees, with the model state after each."""
    rng = random.Random(seed)
    m = MemoryStorage()
    term, vote, commit = 1, 1, 0
    while True:
        first, last = m.first_index(), m.last_index()
        snap_index = m.snapshot().metadata.index
        r = rng.random()
        if r < 0.06 and commit > snap_index and commit >= first:
            i = rng.randint(max(snap_index + 1, first), commit)
            op = Op("snapshot", index=i, data=b"snap-%d-" % i + rng.randbytes(rng.randint(0, 64)))
            m.create_snapshot(i, CS, op.data)
        elif r < 0.11 and snap_index >= first:
            op = Op("compact", index=rng.randint(first, snap_index))
            m.compact(op.index)
        elif r < 0.14:
            # a snapshot streamed in chunks from the leader, installed on its own
            idx = last + rng.randint(1, 40)
            snap = Snapshot(
                data=rng.randbytes(rng.randint(0, 200_000)),
                metadata=SnapshotMetadata(conf_state=CS, index=idx, term=term),
            )
            op = Op("install", snapshot=snap)
            m.apply_snapshot(snap)
        elif r < 0.18:
            # a follower installs the leader's snapshot, with a few entries after it
            term += 1
            vote = 0
            idx = last + rng.randint(1, 40)
            snap = Snapshot(
                data=b"leader-snap-%d" % idx,
                metadata=SnapshotMetadata(conf_state=CS, index=idx, term=term),
            )
            ents = _entries(rng, idx + 1, rng.randint(0, 5), term)
            commit = idx
            op = Op("save", HardState(term, vote, commit), tuple(ents), snap)
            m.save(op.hard_state, op.entries, op.snapshot)
        else:
            if rng.random() < 0.1:
                term += 1
                vote = rng.choice((0, 1, 2, 3))
            start = last + 1
            if rng.random() < 0.15 and last > max(commit, first - 1):
                # a new leader overwrites an uncommitted tail
                term += 1
                vote = rng.choice((0, 1, 2, 3))
                start = rng.randint(max(commit + 1, first), last)
            ents = _entries(rng, start, rng.randint(0, 16), term)
            new_last = ents[-1].index if ents else last
            commit = rng.randint(commit, max(commit, min(new_last, start - 1 + len(ents))))
            op = Op("save", HardState(term, vote, commit), tuple(ents))
            m.save(op.hard_state, op.entries, op.snapshot)
        yield op, m


def _entries(rng: random.Random, start: int, n: int, term: int) -> list[Entry]:
    return [
        Entry(
            term=term,
            index=i,
            type=EntryType.CONF_CHANGE if rng.random() < 0.02 else EntryType.NORMAL,
            data=rng.randbytes(rng.choice((0, 8, 64, 256))),
        )
        for i in range(start, start + n)
    ]


def apply(store: Any, op: Op) -> None:
    if op.kind == "save":
        store.save(op.hard_state, op.entries, op.snapshot)
    elif op.kind == "snapshot":
        store.create_snapshot(op.index, CS, op.data)
    elif op.kind == "compact":
        store.compact(op.index)
    elif op.kind == "install":
        data = op.snapshot.data
        chunks = (data[i : i + 16384] for i in range(0, len(data), 16384))
        store.install_snapshot_chunks(op.snapshot.metadata, chunks)
    else:
        raise ValueError(op.kind)


def model_fingerprints(seed: int, n: int) -> list[str]:
    """Fingerprints of the model state after 0, 1, ..., n operations."""
    out = [fingerprint(MemoryStorage())]
    for i, (_, m) in enumerate(workload(seed)):
        if i >= n:
            break
        out.append(fingerprint(m))
    return out


SEGMENT_SIZE = 64 << 10
"""Small segments in crash tests, so that kills also land while a segment is being cut."""


def open_store(kind: str, data_dir: str, **opts: Any) -> Any:
    """The store under test: ``wal`` (LMDB WalStore) or ``seg`` (SegmentWalStore)."""
    from etcdpy.storage.segment_wal import SegmentWalStore
    from etcdpy.storage.wal import WalStore

    if kind == "seg":
        return SegmentWalStore.open(data_dir, segment_size=SEGMENT_SIZE, **opts)
    if kind == "wal":
        return WalStore.open(data_dir, **opts)
    raise ValueError(kind)


def main(argv: list[str]) -> int:
    from etcdpy.util.failpoints import Failpoints

    data_dir, seed, start, limit = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    kind = argv[4] if len(argv) > 4 else "wal"
    store = open_store(kind, data_dir, failpoints=Failpoints.from_env(), max_snapshots=3)
    print("READY", flush=True)
    for i, (op, _) in enumerate(workload(seed)):
        if i >= limit:
            break
        if i < start:
            continue
        apply(store, op)
        sys.stdout.write(f"ACK {i}\n")
        sys.stdout.flush()
    store.close()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except ErrUnavailable as exc:  # pragma: no cover - shows up in the parent's stderr
        print(f"workload bug: {exc}", file=sys.stderr)
        raise
