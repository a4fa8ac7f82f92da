"""The raft log store over LMDB: ``WalStore`` implements ``raft.storage.LogStorage``.

Rules:
1. Persist before send (Raft §5.2; PySyncObj #84, #201): ``save(hard_state, entries,
   snapshot)`` writes everything of one Ready in ONE LMDB write transaction, committed
   durably (LMDB ``sync``) before it returns. A crash shows all of a batch or none of it.
2. Appending entries whose first index is at or below the last index replaces the tail
   (etcd's ``MemoryStorage.Append`` / WAL truncate on conflict).
3. ``compact(i)`` drops entries up to and including ``i`` but keeps the term of ``i`` (the
   log's "dummy" entry), so ``term(first_index() - 1)`` keeps working for the log-matching
   check of the next ``MsgApp``.
4. Snapshot payloads live in ``SnapStore`` files written *before* the transaction that records
   the snapshot metadata; ``apply_snapshot`` drops the whole log and sets the first index in
   that one transaction.
5. Term and vote never go backwards; a ``save`` that would do so is a bug and raises.
6. Reads (``term``, ``last_index``, recent ``entries``) are served from an immutable in-memory
   view swapped in after each commit, so the raft driver reads without locks or syscalls.
   ``save``, ``compact`` and the snapshot calls run on the WAL writer thread only.

On-disk layout (LMDB env ``member/wal``), sub-databases:
    entries     8-byte big-endian index -> Entry (header ``>QQB I`` + data; CRC32 of both)
    hardstate   b"hs" -> ``>QQQ`` term, vote, commit
    snapshot    b"meta" -> ``>QQ`` index, term + ConfState; b"logstart" -> ``>QQ`` the dummy
    confstate   b"cs" -> ConfState as of the snapshot (what ``initial_state`` returns)

Failpoints (etcd's names): raftBeforeSave, raftAfterSave, raftBeforeApplySnap,
raftAfterApplySnap, raftBeforeSaveSnap, raftAfterSaveSnap.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from etcdpy.raft.storage import (
    NO_LIMIT,
    ErrCompacted,
    ErrSnapOutOfDate,
    ErrUnavailable,
    entry_size,
    limit_size,
)
from etcdpy.raft.types import (
    EMPTY_HARD_STATE,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from etcdpy.storage.env import DEFAULT_MAP_SIZE, DirLock, LmdbEnv
from etcdpy.storage.layout import DataDirLayout
from etcdpy.storage.snap import DEFAULT_CHUNK_SIZE, SnapName, SnapshotNotFoundError, SnapStore
from etcdpy.util.failpoints import Failpoints

WAL_FORMAT = "etcdpy-wal"
WAL_FORMAT_VERSION = 1

TAIL_CACHE_ENTRIES = 1024
"""Recent entries kept decoded in memory: committed entries are applied right after they
are saved, and a follower catching up a little is served without touching LMDB."""

_KEY = struct.Struct(">Q")
_ENT_PREFIX = struct.Struct(">QQB")  # term, index, type
_CRC = struct.Struct(">I")
_ENT_HDR_LEN = _ENT_PREFIX.size + _CRC.size
_HS = struct.Struct(">QQQ")
_IDX_TERM = struct.Struct(">QQ")
_U32 = struct.Struct(">I")

_HS_KEY = b"hs"
_SNAP_KEY = b"meta"
_LOGSTART_KEY = b"logstart"
_CS_KEY = b"cs"


WalObserver = Callable[[int, "float | None"], None]
"""(bytes written, seconds the flush took or None without fsync), after each durable write."""


class WalCorruptError(Exception):
    """A stored record fails its checksum or does not match its key."""


# ---------------------------------------------------------------- record codecs


def encode_entry(e: Entry) -> bytes:
    prefix = _ENT_PREFIX.pack(e.term, e.index, e.type)
    return prefix + _CRC.pack(zlib.crc32(e.data, zlib.crc32(prefix))) + e.data


_ENTRY_TYPES = tuple(EntryType)
_HDR = struct.Struct(">QQBI")  # the prefix and its CRC, unpacked in one call
_PFX_LEN = _ENT_PREFIX.size


def decode_entry(buf: bytes) -> Entry:
    term, index, typ, crc = _HDR.unpack_from(buf)
    data = buf[_ENT_HDR_LEN:]
    if zlib.crc32(data, zlib.crc32(buf[:_PFX_LEN])) != crc:
        raise WalCorruptError(f"entry {index}: crc mismatch")
    return Entry(term, index, _ENTRY_TYPES[typ], data)


def _entry_term(buf: bytes) -> int:
    return int(_ENT_PREFIX.unpack_from(buf)[0])


def encode_hard_state(hs: HardState) -> bytes:
    return _HS.pack(hs.term, hs.vote, hs.commit)


def decode_hard_state(buf: bytes) -> HardState:
    term, vote, commit = _HS.unpack(buf)
    return HardState(term=term, vote=vote, commit=commit)


def encode_conf_state(cs: ConfState) -> bytes:
    parts = [bytes([1 if cs.auto_leave else 0])]
    for ids in (cs.voters, cs.learners, cs.voters_outgoing, cs.learners_next):
        parts.append(_U32.pack(len(ids)))
        parts.append(struct.pack(f">{len(ids)}Q", *ids))
    return b"".join(parts)


def decode_conf_state(buf: bytes) -> ConfState:
    auto_leave = buf[0] == 1
    pos = 1
    lists: list[tuple[int, ...]] = []
    for _ in range(4):
        (n,) = _U32.unpack_from(buf, pos)
        pos += 4
        lists.append(struct.unpack_from(f">{n}Q", buf, pos))
        pos += 8 * n
    return ConfState(
        voters=lists[0],
        learners=lists[1],
        voters_outgoing=lists[2],
        learners_next=lists[3],
        auto_leave=auto_leave,
    )


def encode_snapshot_metadata(m: SnapshotMetadata) -> bytes:
    return _IDX_TERM.pack(m.index, m.term) + encode_conf_state(m.conf_state)


def decode_snapshot_metadata(buf: bytes) -> SnapshotMetadata:
    index, term = _IDX_TERM.unpack_from(buf)
    return SnapshotMetadata(
        conf_state=decode_conf_state(buf[_IDX_TERM.size :]), index=index, term=term
    )


# ---------------------------------------------------------------- in-memory view


@dataclass(frozen=True, slots=True)
class _LogState:
    """Immutable view of the log, replaced wholesale after each commit."""

    compact_index: int  # the dummy entry: first_index() - 1
    compact_term: int
    last_index: int
    run_starts: tuple[int, ...]  # term runs: run k covers [run_starts[k], run_starts[k+1])
    run_terms: tuple[int, ...]
    hard_state: HardState
    snap_meta: SnapshotMetadata
    tail_start: int  # index of tail[0]
    tail: Sequence[Entry]
    """The last entries, decoded. A list that later views may extend in place (see
    ``plan_commit``): a view reads only ``tail[: last_index - tail_start + 1]``."""

    def term(self, i: int) -> int:
        if i < self.compact_index:
            raise ErrCompacted(f"term({i}): compacted, first index {self.compact_index + 1}")
        if i > self.last_index:
            raise ErrUnavailable(f"term({i}): last index {self.last_index}")
        return self.run_terms[bisect_right(self.run_starts, i) - 1]


def _runs_after_append(
    starts: tuple[int, ...], terms: tuple[int, ...], ents: Sequence[Entry]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Term runs once ``ents`` replaced everything from ``ents[0].index`` on."""
    k = bisect_right(starts, ents[0].index - 1)  # keep runs starting before the new entries
    new_starts = list(starts[:k])
    new_terms = list(terms[:k])
    last = new_terms[-1]
    for e in ents:
        if e.term != last:
            new_starts.append(e.index)
            new_terms.append(e.term)
            last = e.term
    return tuple(new_starts), tuple(new_terms)


def _tail_after_append(
    tail: Sequence[Entry], tail_start: int, last: int, ents: list[Entry]
) -> list[Entry]:
    """The tail once ``ents`` are saved. A plain append extends the current list in place:
    older views keep reading their own prefix of it, so a save copies nothing (a tuple
    rebuilt per save cost ~1,000 references each time). Replacing entries (rule 2), or a
    list longer than this view (a save that failed after planning), takes a new list."""
    first = ents[0].index
    n = last - tail_start + 1  # this view's part of the list
    if first <= tail_start:
        return list(ents)
    if isinstance(tail, list) and len(tail) == n and first == last + 1:
        tail.extend(ents)
        return tail
    return [*tail[: first - tail_start], *ents]


def check_hard_state(cur: HardState, hard_state: HardState) -> None:
    """Rule 5: term and vote never go back (a save that would do so is a bug)."""
    if hard_state.is_empty():
        return
    if hard_state.term < cur.term:
        raise ValueError(f"hard state term goes back: {cur.term} -> {hard_state.term}")
    if hard_state.term == cur.term and cur.vote not in (0, hard_state.vote):
        raise ValueError(f"vote changed within term {hard_state.term}")


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """What one save changes: the view after it and the records it must write."""

    state: _LogState
    entries: list[Entry]  # the entries to write (those at or below the compaction dropped)
    truncate: bool  # entries[0] replaces a tail (rule 2)
    write_hs: bool


def plan_commit(
    st: _LogState,
    hard_state: HardState,
    entries: Sequence[Entry],
    snap_meta: SnapshotMetadata | None,
) -> CommitPlan | None:
    """The view after one save (rules 2-4), without touching the disk; None: no change.

    Shared by every store so that all of them agree on the log a save leaves behind.
    The caller has checked the hard state and that a snapshot is newer.
    """
    c_index, c_term, last = st.compact_index, st.compact_term, st.last_index
    starts, terms = st.run_starts, st.run_terms
    tail_start, tail = st.tail_start, st.tail
    meta = st.snap_meta
    if snap_meta is not None:
        m = snap_meta
        meta = m
        c_index, c_term, last = m.index, m.term, m.index
        starts, terms = (m.index,), (m.term,)
        tail_start, tail = m.index + 1, ()
    ents = list(entries)
    if ents and ents[0].index <= c_index:
        ents = ents[c_index + 1 - ents[0].index :]  # already compacted: drop
    truncate = False
    if ents:
        first = ents[0].index
        if first > last + 1:
            raise ErrUnavailable(f"missing log entry [last: {last}, append at: {first}]")
        if ents[-1].index - first != len(ents) - 1:
            raise ValueError("entries to save are not contiguous")
        truncate = first <= last
        starts, terms = _runs_after_append(starts, terms, ents)
        tail = _tail_after_append(tail, tail_start, last, ents)
        if first <= tail_start:
            tail_start = first
        if len(tail) > 2 * TAIL_CACHE_ENTRIES:
            drop = len(tail) - TAIL_CACHE_ENTRIES
            tail = tail[drop:]
            tail_start += drop
        last = ents[-1].index
    write_hs = not hard_state.is_empty() and hard_state != st.hard_state
    if not ents and not write_hs and snap_meta is None:
        return None
    state = _LogState(
        compact_index=c_index,
        compact_term=c_term,
        last_index=last,
        run_starts=starts,
        run_terms=terms,
        hard_state=hard_state if write_hs else st.hard_state,
        snap_meta=meta,
        tail_start=tail_start,
        tail=tail,
    )
    return CommitPlan(state=state, entries=ents, truncate=truncate, write_hs=write_hs)


# ---------------------------------------------------------------- the store


class LogStore:
    """What every raft log store shares: the lock-free reads of the immutable view (rule 6)
    and the rules of a save, a snapshot and a compaction (rules 1-5). A store only says how
    its bytes reach the disk: ``_persist``, ``_persist_snap_meta``, ``_persist_compact``,
    ``_read_old`` (entries older than the decoded tail), ``_log_dropped`` and
    ``_close_storage``. ``WalStore`` keeps them in LMDB, ``segment_wal.SegmentWalStore`` in
    segment files.

    ``max_snapshots`` keeps that many payload files (``--max-snapshots``).
    ``keep_entries``, if set, is the ``--max-wals`` analogue: after each ``create_snapshot``
    the log is compacted to keep that many entries before the snapshot index, enough for a
    slow follower to catch up without a snapshot (etcd's ``SnapshotCatchUpEntries``).
    """

    _state: _LogState
    _fp: Failpoints
    _lock: DirLock
    _closed: bool
    _snap_cache: Snapshot | None
    snaps: SnapStore
    keep_entries: int | None
    observer: WalObserver | None
    """Told (bytes written, seconds in the flush or None without fsync) after each durable
    write: etcd's ``etcd_disk_wal_write_bytes_total`` and ``..._wal_fsync_duration_seconds``
    (the LMDB store's flush is its whole commit)."""

    def _init_common(self, failpoints: Failpoints | None, keep_entries: int | None) -> None:
        """The state every store starts with, before its disk side opens."""
        self._fp = failpoints if failpoints is not None else Failpoints()
        self.keep_entries = keep_entries
        self._snap_cache = None
        self._closed = False
        self.observer = None

    @classmethod
    def open(
        cls,
        data_dir: str | os.PathLike[str],
        *,
        fsync: bool = True,
        metasync: bool = True,
        max_snapshots: int = 5,
        keep_entries: int | None = None,
        failpoints: Failpoints | None = None,
        wal_dir: str | os.PathLike[str] | None = None,
        **store_options: Any,
    ) -> Self:
        """Open (creating if needed) the WAL of the member in ``data_dir``; ``wal_dir``
        (etcd's --wal-dir) puts the log on another path, e.g. a dedicated disk.
        ``store_options`` go to the store's constructor (e.g. ``segment_size``)."""
        layout = DataDirLayout.of(data_dir)
        layout.ensure(fsync=fsync)
        return cls(  # type: ignore[call-arg]
            layout.wal if not wal_dir else Path(wal_dir),
            layout.snap,
            fsync=fsync,
            metasync=metasync,
            max_snapshots=max_snapshots,
            keep_entries=keep_entries,
            failpoints=failpoints,
            **store_options,
        )

    # ------------------------------------------------------------ LogStorage (reads)

    def initial_state(self) -> tuple[HardState, ConfState]:
        st = self._state
        return st.hard_state, st.snap_meta.conf_state

    def first_index(self) -> int:
        return self._state.compact_index + 1

    def last_index(self) -> int:
        return self._state.last_index

    def term(self, i: int) -> int:
        return self._state.term(i)

    def entries(self, lo: int, hi: int, max_size: int = NO_LIMIT) -> Sequence[Entry]:
        st = self._state
        if lo <= st.compact_index:
            raise ErrCompacted(f"entries({lo}): compacted, first index {st.compact_index + 1}")
        if hi > st.last_index + 1:
            raise ErrUnavailable(f"entries' hi({hi}) is out of bound lastindex({st.last_index})")
        if st.last_index == st.compact_index:
            raise ErrUnavailable("log is empty")
        if lo >= hi:
            return []
        if lo >= st.tail_start:
            return limit_size(st.tail[lo - st.tail_start : hi - st.tail_start], max_size)
        return self._read_old(lo, hi, max_size)

    def _read_old(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries [lo, hi) older than the tail, from the disk (ErrCompacted if they went)."""
        raise NotImplementedError

    def snapshot(self) -> Snapshot:
        while True:
            meta = self._state.snap_meta
            cached = self._snap_cache
            if cached is not None and cached.metadata == meta:
                return cached
            if meta.index == 0:
                return Snapshot(metadata=meta)
            try:
                data = self.snaps.load(meta.term, meta.index)
            except SnapshotNotFoundError:
                if self._state.snap_meta != meta:
                    continue  # a newer snapshot replaced it (and retention removed it)
                raise
            snap = Snapshot(data=data, metadata=meta)
            self._snap_cache = snap
            return snap

    # ------------------------------------------------------------ extra reads

    @property
    def hard_state(self) -> HardState:
        return self._state.hard_state

    def snapshot_metadata(self) -> SnapshotMetadata:
        return self._state.snap_meta

    def snapshot_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """The current snapshot's payload in chunks, for streaming to a peer."""
        meta = self._state.snap_meta
        return self.snaps.iter_chunks(meta.term, meta.index, chunk_size)

    # ------------------------------------------------------------ writes (writer thread)

    def save(
        self,
        hard_state: HardState = EMPTY_HARD_STATE,
        entries: Sequence[Entry] = (),
        snapshot: Snapshot | None = None,
    ) -> None:
        """Persist one Ready: snapshot, entries and hard state in one durable write."""
        self._fp.hit("raftBeforeSave")
        has_snap = snapshot is not None and not snapshot.is_empty()
        if has_snap:
            assert snapshot is not None
            self._fp.hit("raftBeforeApplySnap")
            self._commit(hard_state, entries, snapshot)
            self._fp.hit("raftAfterApplySnap")
        else:
            self._commit(hard_state, entries, None)
        self._fp.hit("raftAfterSave")

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Install a snapshot received from the leader: drop the log, first index = index+1."""
        self._fp.hit("raftBeforeApplySnap")
        self._commit(EMPTY_HARD_STATE, (), snap)
        self._fp.hit("raftAfterApplySnap")

    def _commit(
        self,
        hard_state: HardState,
        entries: Sequence[Entry],
        snap: Snapshot | None,
        *,
        payload_in_memory: bool = True,
    ) -> None:
        st = self._state
        check_hard_state(st.hard_state, hard_state)
        if snap is not None:
            m = snap.metadata
            if m.index <= st.snap_meta.index:
                raise ErrSnapOutOfDate(f"snapshot {m.index} is not newer than {st.snap_meta.index}")
            if not self.snaps.has(m.term, m.index):
                self.snaps.save(m.term, m.index, snap.data)
        plan = plan_commit(st, hard_state, entries, None if snap is None else snap.metadata)
        if plan is None:
            return
        self._persist(plan, hard_state, snap)
        self._state = plan.state
        if snap is not None:
            meta = plan.state.snap_meta
            self._snap_cache = snap if payload_in_memory else None
            self.snaps.purge(keep=SnapName(index=meta.index, term=meta.term))
            self._log_dropped()

    def _persist(self, plan: CommitPlan, hard_state: HardState, snap: Snapshot | None) -> None:
        """Write ``plan`` durably (a snapshot first: it drops the log before it)."""
        raise NotImplementedError

    def append(self, entries: Sequence[Entry]) -> None:
        """Entries only (etcd's ``MemoryStorage.Append``); one durable write."""
        self.save(EMPTY_HARD_STATE, entries, None)

    def set_hard_state(self, hs: HardState) -> None:
        self.save(hs, (), None)

    def create_snapshot(self, index: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the applied state at ``index`` (payload file first).

        ``conf_state`` None keeps the membership of the previous snapshot.
        """
        st = self._state
        if conf_state is None:
            conf_state = st.snap_meta.conf_state
        if index <= st.snap_meta.index:
            raise ErrSnapOutOfDate(f"snapshot {index} is not newer than {st.snap_meta.index}")
        if index > st.last_index:
            raise ErrUnavailable(f"snapshot {index} is out of bound lastindex({st.last_index})")
        term = st.term(index)
        meta = SnapshotMetadata(conf_state=conf_state, index=index, term=term)
        self._fp.hit("raftBeforeSaveSnap")
        self.snaps.save(term, index, data)
        self._persist_snap_meta(meta)
        self._state = replace(self._state, snap_meta=meta)
        snap = Snapshot(data=data, metadata=meta)
        self._snap_cache = snap
        self._fp.hit("raftAfterSaveSnap")
        self.snaps.purge(keep=SnapName(index=index, term=term))
        if self.keep_entries is not None:
            target = index - self.keep_entries
            if target > self._state.compact_index:
                self.compact(target)
        return snap

    def _persist_snap_meta(self, meta: SnapshotMetadata) -> None:
        """Record durably that the snapshot ``meta`` exists (its payload file is written)."""
        raise NotImplementedError

    def install_snapshot_chunks(
        self,
        metadata: SnapshotMetadata,
        chunks: Iterable[bytes],
        *,
        expected_sha256: bytes | None = None,
    ) -> None:
        """Receive a snapshot payload in chunks (temp file, fsync, rename), then apply it."""
        if metadata.index <= self._state.snap_meta.index:
            raise ErrSnapOutOfDate(
                f"snapshot {metadata.index} is not newer than {self._state.snap_meta.index}"
            )
        self.snaps.save_chunks(
            metadata.term, metadata.index, chunks, expected_sha256=expected_sha256
        )
        self._fp.hit("raftBeforeApplySnap")
        # The payload stays in its file; snapshot() loads it when asked.
        self._commit(EMPTY_HARD_STATE, (), Snapshot(metadata=metadata), payload_in_memory=False)
        self._fp.hit("raftAfterApplySnap")

    def compact(self, index: int) -> None:
        """Drop entries up to ``index``; ``term(index)`` stays answerable."""
        st = self._state
        if index <= st.compact_index:
            raise ErrCompacted(f"compact({index}): already compacted to {st.compact_index}")
        if index > st.last_index:
            raise ErrUnavailable(f"compact {index} is out of bound lastindex({st.last_index})")
        term = st.term(index)
        self._persist_compact(index, term)
        self._state = _compacted(st, index, term)
        self._log_dropped()

    def _persist_compact(self, index: int, term: int) -> None:
        """Record durably that entries up to ``index`` (of ``term``) are dropped."""
        raise NotImplementedError

    def _log_dropped(self) -> None:
        """After a compaction or a snapshot replaced the log (the new view is in place)."""

    def _close_storage(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close_storage()
            self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WalStore(LogStore):
    """Raft log, hard state and snapshot metadata in one LMDB environment (the log of data
    dirs made before ``segment_wal``; the rules and options are ``LogStore``'s).

    ``fsync=False`` is ``--unsafe-no-fsync``: LMDB opens with ``sync=False`` and a crash of
    the machine (not of the process) may lose acknowledged writes.
    """

    def __init__(
        self,
        wal_dir: str | os.PathLike[str],
        snap_dir: str | os.PathLike[str],
        *,
        fsync: bool = True,
        metasync: bool = True,
        max_snapshots: int = 5,
        keep_entries: int | None = None,
        failpoints: Failpoints | None = None,
        map_size: int = DEFAULT_MAP_SIZE,
    ) -> None:
        self._init_common(failpoints, keep_entries)
        Path(wal_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = DirLock(wal_dir)
        try:
            self._open(wal_dir, snap_dir, fsync, metasync, max_snapshots, map_size)
        except BaseException:
            env = getattr(self, "_env", None)
            if env is not None:
                env.close()
            self._lock.release()
            raise

    def _open(
        self,
        wal_dir: str | os.PathLike[str],
        snap_dir: str | os.PathLike[str],
        fsync: bool,
        metasync: bool,
        max_snapshots: int,
        map_size: int,
    ) -> None:
        if any(name.endswith(".seg") for name in os.listdir(wal_dir)):
            raise WalCorruptError(f"{wal_dir} holds a segment WAL (storage.segment_wal)")
        self._fsync = fsync
        self._env = LmdbEnv(
            wal_dir,
            format_name=WAL_FORMAT,
            format_version=WAL_FORMAT_VERSION,
            max_dbs=4,
            map_size=map_size,
            sync=fsync,
            metasync=metasync and fsync,
        )
        self._ents = self._env.open_db(b"entries")
        self._hs_db = self._env.open_db(b"hardstate")
        self._snap_db = self._env.open_db(b"snapshot")
        self._cs_db = self._env.open_db(b"confstate")
        self.snaps = SnapStore(snap_dir, fsync=fsync, max_snapshots=max_snapshots)
        self._state = self._load()
        meta = self._state.snap_meta
        self.snaps.remove_newer_than(meta.index)

    # ------------------------------------------------------------ loading

    def _load(self) -> _LogState:
        with self._env.read() as txn:
            raw_hs = txn.get(_HS_KEY, db=self._hs_db)
            hs = decode_hard_state(raw_hs) if raw_hs is not None else EMPTY_HARD_STATE
            raw_meta = txn.get(_SNAP_KEY, db=self._snap_db)
            meta = (
                decode_snapshot_metadata(raw_meta) if raw_meta is not None else SnapshotMetadata()
            )
            raw_cs = txn.get(_CS_KEY, db=self._cs_db)
            if raw_cs is not None:
                meta = SnapshotMetadata(
                    conf_state=decode_conf_state(raw_cs), index=meta.index, term=meta.term
                )
            raw_start = txn.get(_LOGSTART_KEY, db=self._snap_db)
            c_index, c_term = _IDX_TERM.unpack(raw_start) if raw_start is not None else (0, 0)
            cur = txn.cursor(db=self._ents)
            last = _KEY.unpack(cur.key())[0] if cur.last() else c_index
            if last < c_index:
                raise WalCorruptError(f"last entry {last} below the compaction point {c_index}")
            starts, terms = self._scan_runs(txn, c_index, c_term, last)
            tail_start = max(c_index + 1, last - TAIL_CACHE_ENTRIES + 1)
            tail: list[Entry] = []
            if cur.set_key(_KEY.pack(tail_start)):
                for k, v in cur.iternext():
                    tail.append(self._decode_at(k, v))
            if len(tail) != last - tail_start + 1:
                raise WalCorruptError(f"log has a hole between {tail_start} and {last}")
        return _LogState(
            compact_index=c_index,
            compact_term=c_term,
            last_index=last,
            run_starts=starts,
            run_terms=terms,
            hard_state=hs,
            snap_meta=meta,
            tail_start=tail_start,
            tail=tuple(tail),
        )

    def _scan_runs(
        self, txn: Any, c_index: int, c_term: int, last: int
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Term runs by binary search: terms never decrease along the log."""

        def term_at(i: int) -> int:
            raw = txn.get(_KEY.pack(i), db=self._ents)
            if raw is None:
                raise WalCorruptError(f"log has a hole at {i}")
            return _entry_term(raw)

        starts, terms = [c_index], [c_term]
        cur = c_index + 1
        while cur <= last:
            t = term_at(cur)
            if t < terms[-1]:
                raise WalCorruptError(f"term goes backwards at {cur}")
            if t != terms[-1]:
                starts.append(cur)
                terms.append(t)
            lo, hi = cur, last  # find the last index holding term t
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if term_at(mid) == t:
                    lo = mid
                else:
                    hi = mid - 1
            cur = lo + 1
        return tuple(starts), tuple(terms)

    @staticmethod
    def _decode_at(key: bytes, value: bytes) -> Entry:
        e = decode_entry(value)
        if _KEY.pack(e.index) != key:
            raise WalCorruptError(f"entry under key {key.hex()} says index {e.index}")
        return e

    def _read_old(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        out: list[Entry] = []
        size = 0
        with self._env.read() as txn:
            cur = txn.cursor(db=self._ents)
            if not cur.set_key(_KEY.pack(lo)):
                raise ErrCompacted(f"entries({lo}): compacted meanwhile")
            for k, v in cur.iternext():
                e = self._decode_at(k, v)
                if e.index >= hi:
                    break
                size += entry_size(e)
                if out and size > max_size:
                    break
                out.append(e)
        if len(out) < hi - lo and (not out or size <= max_size):
            raise ErrCompacted(f"entries[{lo},{hi}): log changed during the read")
        return out

    # ------------------------------------------------------------ LogStore's disk side

    def _persist(self, plan: CommitPlan, hard_state: HardState, snap: Snapshot | None) -> None:
        """One LMDB write transaction, committed durably."""
        ents, truncate, write_hs = plan.entries, plan.truncate, plan.write_hs
        new = plan.state
        meta, c_index, c_term = new.snap_meta, new.compact_index, new.compact_term
        items = [(_KEY.pack(e.index), encode_entry(e)) for e in ents]

        def txn_fn(txn: Any) -> None:
            if snap is not None:
                txn.drop(self._ents, delete=False)
                txn.put(_SNAP_KEY, encode_snapshot_metadata(meta), db=self._snap_db)
                txn.put(_LOGSTART_KEY, _IDX_TERM.pack(c_index, c_term), db=self._snap_db)
                txn.put(_CS_KEY, encode_conf_state(meta.conf_state), db=self._cs_db)
            if items:
                cur = txn.cursor(db=self._ents)
                if truncate and cur.set_range(items[0][0]):
                    while cur.delete():
                        pass
                _, added = cur.putmulti(items, append=True)
                if added != len(items):
                    raise WalCorruptError("entries did not append at the end of the log")
            if write_hs:
                txn.put(_HS_KEY, encode_hard_state(hard_state), db=self._hs_db)

        t0 = time.perf_counter()
        self._env.write(txn_fn)
        if self.observer is not None:
            nbytes = sum(len(k) + len(v) for k, v in items)
            self.observer(nbytes, time.perf_counter() - t0 if self._fsync else None)

    def _persist_snap_meta(self, meta: SnapshotMetadata) -> None:
        def txn_fn(txn: Any) -> None:
            txn.put(_SNAP_KEY, encode_snapshot_metadata(meta), db=self._snap_db)
            txn.put(_CS_KEY, encode_conf_state(meta.conf_state), db=self._cs_db)

        self._env.write(txn_fn)

    def _persist_compact(self, index: int, term: int) -> None:
        end = _KEY.pack(index)

        def txn_fn(txn: Any) -> None:
            cur = txn.cursor(db=self._ents)
            if cur.first():
                while cur.key() <= end:
                    if not cur.delete():
                        break
            txn.put(_LOGSTART_KEY, _IDX_TERM.pack(index, term), db=self._snap_db)

        self._env.write(txn_fn)

    def _close_storage(self) -> None:
        self._env.close()


def _compacted(st: _LogState, index: int, term: int) -> _LogState:
    """The view once entries up to ``index`` (of term ``term``) are dropped (rule 3)."""
    k = bisect_right(st.run_starts, index) - 1
    tail_start, tail = st.tail_start, st.tail
    if tail_start <= index:
        tail = tail[index + 1 - tail_start :]
        tail_start = index + 1
    return replace(
        st,
        compact_index=index,
        compact_term=term,
        run_starts=(index, *st.run_starts[k + 1 :]),
        run_terms=(term, *st.run_terms[k + 1 :]),
        tail_start=tail_start,
        tail=tail,
    )
