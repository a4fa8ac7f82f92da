"""The raft log in append-only segment files: one ``pwrite`` + one ``fdatasync`` per save.

``SegmentWalStore`` has ``WalStore``'s API and rules (see ``storage.wal``: one durable write
per Ready, conflict truncation, the compaction dummy, snapshot payloads in ``SnapStore``
files first, term/vote never back, lock-free reads of an immutable view). Only the disk
format differs: an LMDB commit flushes twice (data pages, then the meta page); a segment
append flushes once, as etcd's WAL does.

Files (in the wal dir): ``<seq:016x>-<first index:016x>.seg``, seq 1, 2, 3... with no gaps.
Each is preallocated (``segment_size``, 64 MiB like etcd) and holds records:

    u32 payload length | u8 type | payload | u32 CRC32 (zlib) of (length, type, payload)

The CRC is seeded with the previous record's CRC (etcd chains them too), starting from 0 at
each segment's HEADER. After a crash the valid part of a torn batch may be followed by
older bytes; once a later, shorter batch overwrites the start, those older records would
look valid on their own, but their CRC was seeded by another predecessor: the chain stops
replay at them.

Record types: HEADER (first record of each segment: magic, version, seq and the full state
at the cut: compaction point, last index, hard state, snapshot metadata; so a segment is
self-describing and older ones can be deleted), ENTRY (``wal.encode_entry``), HARD_STATE,
SNAPSHOT (metadata + conf state; drops the log before it, like ``apply_snapshot``),
SNAP_META (``create_snapshot``), COMPACT (index, term) and COMMIT. One save writes its
records followed by a COMMIT; replay applies records only at their COMMIT, so a crash shows
all of a batch or none of it, even when the kernel wrote only part of the ``pwrite``.

Loading: segments in order; in the LAST segment the first invalid or zero record, or records
without their COMMIT, end the log (a torn tail) and writing resumes there. A segment is
truncated to its end before the next is cut, so in any other segment an invalid record, an
uncommitted tail, a header that disagrees with the replayed state, a missing seq, or a hole
in the indices is ``WalCorruptError``.

Compaction (and a snapshot that drops the log) deletes, oldest first, every segment before
the one holding the first live entry, never the current one. Replay then starts from the
oldest remaining HEADER; the entries it counts but no longer finds must all be dropped by a
later COMPACT or SNAPSHOT record, else a segment is missing (``WalCorruptError``).

Threads: ``save``, ``compact`` and the snapshot calls run on the WAL writer thread; reads
run anywhere. The writer swaps the position index, then the view; the position arrays only
grow in place (compaction and truncation build new ones) and deleted segments' descriptors
are closed one deletion round later, so a reader racing a compaction gets ``ErrCompacted``.

Reads: the last ``TAIL_CACHE_ENTRIES`` entries are decoded in memory; older ones are read
with ``os.pread`` through a compact position index (``array('Q')`` of seq<<40|offset and
``array('I')`` of payload lengths, no Python object per entry).
"""

from __future__ import annotations

import os
import re
import struct
import time
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from etcdpy.raft.storage import (
    NO_LIMIT,
    ErrCompacted,
    entry_size,
)
from etcdpy.raft.types import (
    EMPTY_HARD_STATE,
    Entry,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from etcdpy.storage.env import DirLock
from etcdpy.storage.layout import DataDirLayout, fsync_dir
from etcdpy.storage.snap import SnapStore
from etcdpy.storage.wal import (
    TAIL_CACHE_ENTRIES,
    CommitPlan,
    LogStore,
    WalCorruptError,
    WalStore,
    _LogState,
    decode_entry,
    decode_hard_state,
    decode_snapshot_metadata,
    encode_entry,
    encode_hard_state,
    encode_snapshot_metadata,
)
from etcdpy.util.failpoints import Failpoints

SEGMENT_MAGIC = b"etcdpySW"
SEGMENT_FORMAT_VERSION = 1
DEFAULT_SEGMENT_SIZE = 64 << 20

_HEADER, _ENTRY, _HARD_STATE, _SNAPSHOT, _SNAP_META, _COMPACT, _COMMIT = range(1, 8)

_REC = struct.Struct(">IB")  # payload length, type
_U32 = struct.Struct(">I")
_REC_HDR = _REC.size
_REC_OVERHEAD = _REC_HDR + _U32.size
_SEG_HDR = struct.Struct(">8sHQQQQ")  # magic, version, seq, compact index/term, last index
_IDX_TERM = struct.Struct(">QQ")
_ENT_TERM_INDEX = struct.Struct(">QQ")  # encode_entry starts with term, index
_HS_LEN = len(encode_hard_state(EMPTY_HARD_STATE))

_SEQ_SHIFT = 40  # a position is seq << 40 | offset: segments up to 1 TiB, 2**24 of them
_OFF_MASK = (1 << _SEQ_SHIFT) - 1
_READ_SPAN = 64 << 10
_LOAD_CHUNK = 1 << 20  # bytes one pread may cover when reading old entries
_UNKNOWN_TERM = -1  # entries of deleted segments, before the COMPACT record that drops them
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.seg$")


def segment_name(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}.seg"


def is_segment_wal_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` holds segment WAL files (whatever else it holds)."""
    try:
        return any(_NAME.match(n) for n in os.listdir(path))
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------- in-memory view


@dataclass(frozen=True, slots=True)
class _PosIndex:
    """Where entries ``base .. base+len(pos)-1`` are on disk.

    Appends extend the arrays in place (readers of an older view only look below its last
    index); compaction, truncation and snapshots build new arrays, so no reader ever sees
    an array shrink under it.
    """

    base: int
    pos: array[int]  # seq << 40 | offset of the record
    lens: array[int]  # payload length (the encoded entry)


def _empty_index(base: int) -> _PosIndex:
    return _PosIndex(base, array("Q"), array("I"))


def _frame(records: Sequence[tuple[int, bytes]], crc: int) -> tuple[bytes, int]:
    """Records framed and CRC-chained from ``crc``, then a COMMIT; (bytes, last CRC)."""
    parts: list[bytes] = []
    for typ, payload in records:
        hdr = _REC.pack(len(payload), typ)
        crc = zlib.crc32(payload, zlib.crc32(hdr, crc))
        parts += (hdr, payload, _U32.pack(crc))
    hdr = _REC.pack(0, _COMMIT)
    crc = zlib.crc32(hdr, crc)
    parts += (hdr, _U32.pack(crc))
    return b"".join(parts), crc


# ---------------------------------------------------------------- replay


class _Replay:
    """Rebuilds the log from the records of all segments, as the saves built it in memory."""

    def __init__(self) -> None:
        self.c_index = 0
        self.c_term = 0
        self.last = 0
        self.starts: list[int] = [0]
        self.terms: list[int] = [0]
        self.hs = EMPTY_HARD_STATE
        self.meta = SnapshotMetadata()
        self.index = _empty_index(1)
        self.missing_hi = 0  # entries (c_index, missing_hi] were in deleted segments
        self.seq = 0

    def header(self, seq: int, payload: bytes, first: bool) -> None:
        if len(payload) < _SEG_HDR.size + _HS_LEN:
            raise WalCorruptError(f"segment {seq}: short header")
        magic, version, hseq, c_index, c_term, last = _SEG_HDR.unpack_from(payload)
        if magic != SEGMENT_MAGIC:
            raise WalCorruptError(f"segment {seq}: not a segment WAL file")
        if version != SEGMENT_FORMAT_VERSION:
            raise WalCorruptError(f"segment {seq}: format version {version}")
        if hseq != seq:
            raise WalCorruptError(f"segment {seq}: header says seq {hseq}")
        pos = _SEG_HDR.size
        hs = decode_hard_state(payload[pos : pos + _HS_LEN])
        meta = decode_snapshot_metadata(payload[pos + _HS_LEN :])
        if not first:
            got = (c_index, c_term, last, hs, meta)
            want = (self.c_index, self.c_term, self.last, self.hs, self.meta)
            if got != want:
                raise WalCorruptError(f"segment {seq}: header {got} disagrees with the log {want}")
            return
        if last < c_index:
            raise WalCorruptError(f"segment {seq}: last index {last} below {c_index}")
        self.c_index, self.c_term, self.last, self.hs, self.meta = c_index, c_term, last, hs, meta
        self.starts, self.terms = [c_index], [c_term]
        n = last - c_index
        self.index = _PosIndex(c_index + 1, array("Q", bytes(8 * n)), array("I", bytes(4 * n)))
        if n:  # those entries were in segments deleted after a compaction
            self.starts.append(c_index + 1)
            self.terms.append(_UNKNOWN_TERM)
            self.missing_hi = last

    def apply(self, seq: int, pending: list[tuple[int, int, int, bytes]]) -> None:
        for typ, off, ln, payload in pending:
            if typ == _ENTRY:
                self.entry(seq, off, ln, payload)
            elif typ == _HARD_STATE:
                self.hs = decode_hard_state(payload)
            elif typ == _SNAPSHOT:
                m = decode_snapshot_metadata(payload)
                self.meta = m
                self.c_index, self.c_term, self.last = m.index, m.term, m.index
                self.starts, self.terms = [m.index], [m.term]
                self.index = _empty_index(m.index + 1)
                self.missing_hi = 0
            elif typ == _SNAP_META:
                self.meta = decode_snapshot_metadata(payload)
            elif typ == _COMPACT:
                self.compact(*_IDX_TERM.unpack(payload))
            else:
                raise WalCorruptError(f"segment {seq}: unknown record type {typ}")

    def entry(self, seq: int, off: int, ln: int, prefix: bytes) -> None:
        term, index = _ENT_TERM_INDEX.unpack(prefix)
        if index <= self.c_index:
            return  # saved together with a snapshot that covers it
        if index > self.last + 1:
            raise WalCorruptError(f"log has a hole between {self.last} and {index}")
        ix = self.index
        if index <= self.last:  # a new leader's entries replace the tail
            k = index - ix.base
            del ix.pos[k:]
            del ix.lens[k:]
            j = bisect_right(self.starts, index - 1)
            del self.starts[j:]
            del self.terms[j:]
            self.missing_hi = min(self.missing_hi, index - 1)
        ix.pos.append(seq << _SEQ_SHIFT | off)
        ix.lens.append(ln)
        if term != self.terms[-1]:
            self.starts.append(index)
            self.terms.append(term)
        self.last = index

    def compact(self, index: int, term: int) -> None:
        if index <= self.c_index:
            return
        if index > self.last:
            raise WalCorruptError(f"compaction point {index} beyond last index {self.last}")
        ix = self.index
        k = index + 1 - ix.base
        self.index = _PosIndex(index + 1, ix.pos[k:], ix.lens[k:])
        j = bisect_right(self.starts, index) - 1
        self.starts = [index, *self.starts[j + 1 :]]
        self.terms = [term, *self.terms[j + 1 :]]
        self.c_index, self.c_term = index, term

    def segment(self, seq: int, fd: int, first: bool, last_seg: bool) -> tuple[int, int, int]:
        """Replay one segment; (offset after its last COMMIT, the CRC there, header end).

        Reads in chunks and stops at the end of the records, not of the preallocation.
        """
        size = os.fstat(fd).st_size
        buf, bs = b"", 0  # buf holds the file's bytes [bs, bs + len(buf))
        mv = memoryview(buf)
        off = crc = header_end = 0
        end_off = end_crc = -1
        pending: list[tuple[int, int, int, bytes]] = []
        while off + _REC_OVERHEAD <= size:
            rel = off - bs
            if rel + _REC_OVERHEAD > len(buf):
                buf, bs, rel = _refill(fd, buf, bs, off, _REC_OVERHEAD), off, 0
                mv = memoryview(buf)
            ln, typ = _REC.unpack_from(buf, rel)
            end = rel + _REC_HDR + ln
            if typ == 0 or off + _REC_OVERHEAD + ln > size:
                break
            if end + 4 > len(buf):
                buf, bs, rel = _refill(fd, buf, bs, off, _REC_OVERHEAD + ln), off, 0
                mv = memoryview(buf)
                end = _REC_HDR + ln
                if end + 4 > len(buf):
                    break
            c = zlib.crc32(mv[rel:end], crc)
            if c != _U32.unpack_from(buf, end)[0]:
                break
            crc = c
            if typ == _COMMIT:
                self.apply(seq, pending)
                pending.clear()
            elif typ == _HEADER:
                if off != 0:
                    raise WalCorruptError(f"segment {seq}: header at offset {off}")
                self.header(seq, buf[rel + _REC_HDR : end], first)
                header_end = off + _REC_OVERHEAD + ln
            elif off == 0:
                break
            elif typ == _ENTRY:  # only its term and index: the data stays on disk
                pending.append((typ, off, ln, buf[rel + _REC_HDR : rel + _REC_HDR + 16]))
            else:
                pending.append((typ, off, ln, buf[rel + _REC_HDR : end]))
            off += _REC_OVERHEAD + ln
            if not pending:
                end_off, end_crc = off, crc
        if end_off < 0:
            raise WalCorruptError(f"segment {seq}: no valid header")
        if not last_seg and end_off != size:
            raise WalCorruptError(f"segment {seq}: invalid or uncommitted record at {end_off}")
        return end_off, end_crc, header_end

    def check(self) -> None:
        """After the last segment: entries of deleted segments must all be compacted."""
        if self.missing_hi > self.c_index:
            raise WalCorruptError(
                f"entries {self.c_index + 1}..{self.missing_hi} are in a missing segment"
            )

    def state(self, tail_start: int, tail: tuple[Entry, ...]) -> _LogState:
        return _LogState(
            compact_index=self.c_index,
            compact_term=self.c_term,
            last_index=self.last,
            run_starts=tuple(self.starts),
            run_terms=tuple(self.terms),
            hard_state=self.hs,
            snap_meta=self.meta,
            tail_start=tail_start,
            tail=tail,
        )


# ---------------------------------------------------------------- the store


class SegmentWalStore(LogStore):
    """Raft log, hard state and snapshot metadata in preallocated, append-only segments.

    ``LogStore``'s API and rules; only the disk side is this class's. ``fsync=False``
    (``--unsafe-no-fsync``) skips every fsync; ``metasync`` is accepted for ``LogStore.open``'s
    signature and means nothing here.
    ``segment_size`` is the preallocation and the size at which a new segment is cut.
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
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        del metasync
        self._init_common(failpoints, keep_entries)
        self._dir = Path(wal_dir)
        self._fsync = fsync
        self._segment_size = segment_size
        self._fds: dict[int, int] = {}
        self._paths: dict[int, Path] = {}
        self._retired: list[int] = []
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = DirLock(self._dir)
        try:
            if (self._dir / "data.mdb").exists():
                raise WalCorruptError(f"{self._dir} holds an LMDB WAL (use WalStore)")
            self.snaps = SnapStore(snap_dir, fsync=fsync, max_snapshots=max_snapshots)
            self._load()
            self.snaps.remove_newer_than(self._state.snap_meta.index)
        except BaseException:
            self._close_fds()
            self._lock.release()
            raise

    # ------------------------------------------------------------ loading

    def _segments(self) -> list[tuple[int, Path]]:
        segs: list[tuple[int, Path]] = []
        for name in os.listdir(self._dir):
            if name.endswith(".seg.tmp"):
                os.unlink(self._dir / name)  # a cut that did not finish
                continue
            m = _NAME.match(name)
            if m:
                segs.append((int(m.group(1), 16), self._dir / name))
        segs.sort()
        for k, (seq, path) in enumerate(segs):
            if seq != segs[0][0] + k:
                raise WalCorruptError(f"segment {segs[0][0] + k} is missing (next: {path.name})")
        return segs

    def _load(self) -> None:
        segs = self._segments()
        if not segs:
            self._index = _empty_index(1)
            self._state = _LogState(
                compact_index=0,
                compact_term=0,
                last_index=0,
                run_starts=(0,),
                run_terms=(0,),
                hard_state=EMPTY_HARD_STATE,
                snap_meta=SnapshotMetadata(),
                tail_start=1,
                tail=(),
            )
            self._seq = 0
            self._create_segment(1)
            return
        replay = _Replay()
        end = crc = 0
        for k, (seq, path) in enumerate(segs):
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            self._fds[seq] = fd
            self._paths[seq] = path
            end, crc, self._header_end = replay.segment(seq, fd, k == 0, k == len(segs) - 1)
        replay.check()
        self._seq = segs[-1][0]
        self._fd = self._fds[self._seq]
        self._end, self._crc = end, crc
        self._index = replay.index
        last = replay.last
        tail_start = max(replay.c_index + 1, last - TAIL_CACHE_ENTRIES + 1)
        tail: tuple[Entry, ...] = ()
        if last >= tail_start:
            tail = tuple(self._read_entries(replay.index, tail_start, last + 1, NO_LIMIT))
        self._state = replay.state(tail_start, tail)

    # ------------------------------------------------------------ LogStore's disk side

    def _read_old(self, lo: int, hi: int, max_size: int) -> list[Entry]:
        ix = self._index  # read after _state: at least as new (the writer swaps it first)
        try:
            return self._read_entries(ix, lo, hi, max_size)
        except (KeyError, IndexError, OSError, WalCorruptError):
            if self._state.compact_index >= lo or ix.base > lo:
                raise ErrCompacted(f"entries[{lo},{hi}): compacted during the read") from None
            raise

    def _read_entries(self, ix: _PosIndex, lo: int, hi: int, max_size: int) -> list[Entry]:
        """Entries [lo, hi) from the segment files, a few preads for a contiguous range."""
        if lo < ix.base:
            raise IndexError(lo)
        pos, lens, base, fds = ix.pos, ix.lens, ix.base, self._fds
        out: list[Entry] = []
        size = 0
        i = lo
        while i < hi:
            p = pos[i - base]
            seq, start = p >> _SEQ_SHIFT, p & _OFF_MASK
            end = start + _REC_OVERHEAD + lens[i - base]
            j = i + 1
            while j < hi:
                q = pos[j - base]
                q_off = q & _OFF_MASK
                q_end = q_off + _REC_OVERHEAD + lens[j - base]
                if q >> _SEQ_SHIFT != seq or q_off < end or q_end - start > _READ_SPAN:
                    break
                end = q_end
                j += 1
            buf = os.pread(fds[seq], end - start, start)
            if len(buf) != end - start:
                raise WalCorruptError(f"segment {seq}: short read at {start}")
            for k in range(i, j):
                o = (pos[k - base] & _OFF_MASK) - start + _REC_HDR
                e = decode_entry(buf[o : o + lens[k - base]])
                if e.index != k:
                    raise WalCorruptError(f"entry {k}: record says index {e.index}")
                size += entry_size(e)
                if out and size > max_size:
                    return out
                out.append(e)
            i = j
        return out

    # ------------------------------------------------------------ the disk (writer thread)

    def _write(self, records: Sequence[tuple[int, bytes]]) -> int:
        """Append one batch durably: one pwrite, one fdatasync. Returns its offset."""
        size = sum(_REC_OVERHEAD + len(p) for _, p in records) + _REC_OVERHEAD
        if self._end + size > self._segment_size and self._end > self._header_end:
            self._cut()
        buf, crc = _frame(records, self._crc)
        start = self._end
        _pwrite_all(self._fd, buf, start)
        took: float | None = None
        if self._fsync:
            t0 = time.perf_counter()
            os.fdatasync(self._fd)
            took = time.perf_counter() - t0
        if self.observer is not None:
            self.observer(len(buf), took)
        self._end = start + len(buf)
        self._crc = crc
        return start

    def _cut(self) -> None:
        """Close the current segment at its end and start the next one."""
        os.ftruncate(self._fd, self._end)  # no stale bytes: replay demands a clean end
        if self._fsync:
            os.fsync(self._fd)
        self._create_segment(self._seq + 1)

    def _create_segment(self, seq: int) -> None:
        """Create, preallocate, fill in the header, sync; then rename into place."""
        st = self._state
        name = segment_name(seq, st.last_index + 1)
        path = self._dir / name
        tmp = self._dir / (name + ".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, self._segment_size)
            except OSError:
                pass  # a filesystem without preallocation: the file grows as written
            payload = (
                _SEG_HDR.pack(
                    SEGMENT_MAGIC,
                    SEGMENT_FORMAT_VERSION,
                    seq,
                    st.compact_index,
                    st.compact_term,
                    st.last_index,
                )
                + encode_hard_state(st.hard_state)
                + encode_snapshot_metadata(st.snap_meta)
            )
            hdr = _REC.pack(len(payload), _HEADER)
            crc = zlib.crc32(payload, zlib.crc32(hdr, 0))
            buf = hdr + payload + _U32.pack(crc)
            _pwrite_all(fd, buf, 0)
            if self._fsync:
                os.fsync(fd)
            os.rename(tmp, path)
            if self._fsync:
                fsync_dir(self._dir)
        except BaseException:
            os.close(fd)
            raise
        self._fds[seq] = fd
        self._paths[seq] = path
        self._seq, self._fd = seq, fd
        self._end = self._header_end = len(buf)
        self._crc = crc

    def _drop_old_segments(self) -> None:
        """Delete the segments before the one holding the first live entry (or the current
        one when the log is empty): the next segment's header carries the state they held."""
        st, ix = self._state, self._index
        keep = ix.pos[0] >> _SEQ_SHIFT if st.last_index > st.compact_index else self._seq
        old = sorted(s for s in self._fds if s < keep)
        if not old:
            return
        retired = []
        for s in old:
            os.unlink(self._paths.pop(s))
            retired.append(self._fds.pop(s))
        if self._fsync:
            fsync_dir(self._dir)
        # a reader may still be in a pread on a descriptor dropped by the previous round
        for fd in self._retired:
            os.close(fd)
        self._retired = retired

    def _persist(self, plan: CommitPlan, hard_state: HardState, snap: Snapshot | None) -> None:
        """One append of the batch's records, then the position index for its entries."""
        new = plan.state
        records: list[tuple[int, bytes]] = []
        if snap is not None:
            records.append((_SNAPSHOT, encode_snapshot_metadata(new.snap_meta)))
        ents = plan.entries
        payloads = [encode_entry(e) for e in ents]
        records += [(_ENTRY, p) for p in payloads]
        if plan.write_hs:
            records.append((_HARD_STATE, encode_hard_state(hard_state)))
        off = self._write(records)
        ix = self._index
        if snap is not None:
            ix = _empty_index(new.compact_index + 1)
        if ents:
            if plan.truncate and snap is None:
                k = ents[0].index - ix.base
                ix = _PosIndex(ix.base, ix.pos[:k], ix.lens[:k])
            seq_bits = self._seq << _SEQ_SHIFT
            if snap is not None:
                off += _REC_OVERHEAD + len(records[0][1])
            pos, lens = ix.pos, ix.lens
            for p in payloads:
                pos.append(seq_bits | off)
                lens.append(len(p))
                off += _REC_OVERHEAD + len(p)
        self._index = ix  # before the view (LogStore swaps it next): a reader finds them

    def _persist_snap_meta(self, meta: SnapshotMetadata) -> None:
        self._write([(_SNAP_META, encode_snapshot_metadata(meta))])

    def _persist_compact(self, index: int, term: int) -> None:
        self._write([(_COMPACT, _IDX_TERM.pack(index, term))])
        ix = self._index
        k = index + 1 - ix.base
        self._index = _PosIndex(index + 1, ix.pos[k:], ix.lens[k:])

    def _log_dropped(self) -> None:
        self._drop_old_segments()

    def _close_fds(self) -> None:
        for fd in [*self._fds.values(), *self._retired]:
            os.close(fd)
        self._fds.clear()
        self._retired.clear()

    def _close_storage(self) -> None:
        self._close_fds()


def _refill(fd: int, buf: bytes, bs: int, off: int, need: int) -> bytes:
    """The file's bytes from ``off`` on: what ``buf`` (from ``bs``) has, then at least
    ``need`` bytes in all (fewer at the end of the file), read in 1 MiB steps."""
    keep = buf[off - bs :] if off - bs < len(buf) else b""
    want = max(_LOAD_CHUNK, need - len(keep))
    more = os.pread(fd, want, off + len(keep))
    return keep + more


def _pwrite_all(fd: int, buf: bytes, offset: int) -> None:
    n = os.pwrite(fd, buf, offset)
    while n < len(buf):  # only a full disk or a signal makes a regular-file write short
        buf = buf[n:]
        offset += n
        n = os.pwrite(fd, buf, offset)


# ---------------------------------------------------------------- choosing the store

AnyWalStore: TypeAlias = LogStore


def open_wal(
    data_dir: str | os.PathLike[str],
    *,
    fsync: bool = True,
    metasync: bool = True,
    max_snapshots: int = 5,
    keep_entries: int | None = None,
    failpoints: Failpoints | None = None,
    wal_dir: str | os.PathLike[str] | None = None,
) -> AnyWalStore:
    """The member's WAL: an existing LMDB one (``data.mdb`` in the wal dir) stays LMDB, so
    members created before segments still start; a new or segment WAL uses segments."""
    path = Path(wal_dir) if wal_dir else DataDirLayout.of(data_dir).wal
    cls: type[WalStore] | type[SegmentWalStore] = (
        WalStore if (path / "data.mdb").exists() else SegmentWalStore
    )
    return cls.open(
        data_dir,
        fsync=fsync,
        metasync=metasync,
        max_snapshots=max_snapshots,
        keep_entries=keep_entries,
        failpoints=failpoints,
        wal_dir=wal_dir,
    )
