"""Snapshot payload files: checksummed, written atomically, streamed in chunks, retained.

Rules:
1. One file per snapshot, ``<term:016x>-<index:016x>.snap`` (etcd's naming), holding a
   header (magic, format version, term, index, payload length), the payload and a SHA-256
   of the payload as trailer.
2. A file appears only complete: it is written to ``*.snap.tmp``, fsynced, renamed, and the
   directory fsynced (etcd's snapshotter does the same). A crash leaves at most a ``.tmp``,
   removed at the next open.
3. The payload file is written *before* the WAL records the snapshot, so a snapshot the WAL
   names always has its payload; files newer than the one the WAL names are debris of a crash
   and ``remove_newer_than`` deletes them.
4. Retention (``--max-snapshots``) keeps the N newest files and never the one in use.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from etcdpy.storage.layout import fsync_dir

MAGIC = b"ETCDPYSN"
SNAP_FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sIQQQ")  # magic, version, term, index, payload length
_TRAILER_LEN = 32  # sha256
SUFFIX = ".snap"
TMP_SUFFIX = ".snap.tmp"
DEFAULT_CHUNK_SIZE = 1 << 20


class SnapshotCorruptError(Exception):
    """A snapshot file is truncated, mislabelled or fails its checksum."""


class SnapshotNotFoundError(Exception):
    pass


@dataclass(frozen=True, slots=True, order=True)
class SnapName:
    index: int
    term: int

    @property
    def filename(self) -> str:
        return f"{self.term:016x}-{self.index:016x}{SUFFIX}"

    @classmethod
    def parse(cls, filename: str) -> SnapName | None:
        if not filename.endswith(SUFFIX):
            return None
        stem = filename[: -len(SUFFIX)]
        term_s, sep, index_s = stem.partition("-")
        if not sep or len(term_s) != 16 or len(index_s) != 16:
            return None
        try:
            return cls(index=int(index_s, 16), term=int(term_s, 16))
        except ValueError:
            return None


class SnapStore:
    """The snapshot payload directory (``member/snap``)."""

    def __init__(
        self, directory: str | os.PathLike[str], *, fsync: bool = True, max_snapshots: int = 5
    ) -> None:
        if max_snapshots < 1:
            raise ValueError("max_snapshots must be at least 1")
        self.dir = Path(directory)
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fsync = fsync
        self.max_snapshots = max_snapshots
        for p in self.dir.glob("*" + TMP_SUFFIX):
            p.unlink(missing_ok=True)

    def path(self, term: int, index: int) -> Path:
        return self.dir / SnapName(index=index, term=term).filename

    def names(self) -> list[SnapName]:
        """Complete snapshot files, oldest first."""
        names = (SnapName.parse(p.name) for p in self.dir.iterdir())
        return sorted(n for n in names if n is not None)

    def has(self, term: int, index: int) -> bool:
        return self.path(term, index).is_file()

    def save(self, term: int, index: int, data: bytes) -> Path:
        return self.save_chunks(term, index, (data,), size=len(data))

    def save_chunks(
        self,
        term: int,
        index: int,
        chunks: Iterable[bytes],
        *,
        size: int | None = None,
        expected_sha256: bytes | None = None,
    ) -> Path:
        """Write a payload arriving in chunks (e.g. from a peer) atomically.

        ``size`` is the payload length if known in advance (the header is patched
        otherwise). A checksum mismatch with ``expected_sha256`` leaves nothing behind.
        """
        final = self.path(term, index)
        tmp = final.with_name(final.name[: -len(SUFFIX)] + TMP_SUFFIX)
        h = hashlib.sha256()
        n = 0
        try:
            with open(tmp, "wb") as f:
                f.write(_HEADER.pack(MAGIC, SNAP_FORMAT_VERSION, term, index, size or 0))
                for chunk in chunks:
                    h.update(chunk)
                    f.write(chunk)
                    n += len(chunk)
                digest = h.digest()
                if expected_sha256 is not None and digest != expected_sha256:
                    raise SnapshotCorruptError(f"snapshot {term}/{index}: sha256 mismatch")
                f.write(digest)
                if size != n:
                    f.seek(0)
                    f.write(_HEADER.pack(MAGIC, SNAP_FORMAT_VERSION, term, index, n))
                f.flush()
                if self.fsync:
                    os.fdatasync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if self.fsync:
            fsync_dir(self.dir)
        return final

    def read_header(self, term: int, index: int) -> int:
        """Check a file's header against its name; return the payload length."""
        p = self.path(term, index)
        try:
            with open(p, "rb") as f:
                raw = f.read(_HEADER.size)
                total = os.fstat(f.fileno()).st_size
        except FileNotFoundError as exc:
            raise SnapshotNotFoundError(f"no snapshot {term}/{index}") from exc
        return self._check_header(p, raw, total, term, index)

    @staticmethod
    def _check_header(p: Path, raw: bytes, total: int, term: int, index: int) -> int:
        if len(raw) != _HEADER.size:
            raise SnapshotCorruptError(f"{p}: truncated header")
        magic, version, h_term, h_index, length = _HEADER.unpack(raw)
        if magic != MAGIC or version != SNAP_FORMAT_VERSION:
            raise SnapshotCorruptError(f"{p}: not a snapshot file of format {SNAP_FORMAT_VERSION}")
        if (h_term, h_index) != (term, index):
            raise SnapshotCorruptError(f"{p}: header names {h_term}/{h_index}")
        if total != _HEADER.size + length + _TRAILER_LEN:
            raise SnapshotCorruptError(f"{p}: size {total}, header says payload {length}")
        return int(length)

    def iter_chunks(
        self, term: int, index: int, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Yield the payload in chunks; raises SnapshotCorruptError at the end on a bad sum.

        For sending a snapshot to a peer without holding it in memory; pair with
        ``sha256`` so the receiver can pass ``expected_sha256`` to ``save_chunks``.
        """
        p = self.path(term, index)
        try:
            f = open(p, "rb")
        except FileNotFoundError as exc:
            raise SnapshotNotFoundError(f"no snapshot {term}/{index}") from exc
        try:
            length = self._check_header(
                p, f.read(_HEADER.size), os.fstat(f.fileno()).st_size, term, index
            )
            h = hashlib.sha256()
            left = length
            while left:
                chunk = f.read(min(chunk_size, left))
                if not chunk:
                    raise SnapshotCorruptError(f"{p}: truncated payload")
                left -= len(chunk)
                h.update(chunk)
                yield chunk
            if f.read(_TRAILER_LEN) != h.digest():
                raise SnapshotCorruptError(f"{p}: sha256 mismatch")
        finally:
            f.close()

    def load(self, term: int, index: int) -> bytes:
        return b"".join(self.iter_chunks(term, index))

    def sha256(self, term: int, index: int) -> bytes:
        """The stored checksum of the payload (the file's trailer)."""
        p = self.path(term, index)
        self.read_header(term, index)
        with open(p, "rb") as f:
            f.seek(-_TRAILER_LEN, os.SEEK_END)
            return f.read(_TRAILER_LEN)

    def remove_newer_than(self, index: int) -> list[SnapName]:
        """Delete payloads newer than the snapshot the WAL names (crash debris)."""
        gone = [n for n in self.names() if n.index > index]
        for n in gone:
            self.path(n.term, n.index).unlink(missing_ok=True)
        return gone

    def purge(self, keep: SnapName | None = None) -> list[SnapName]:
        """Apply ``max_snapshots``: delete the oldest files beyond N, never ``keep``."""
        names = self.names()
        excess = len(names) - self.max_snapshots
        gone: list[SnapName] = []
        for n in names:
            if excess <= 0:
                break
            if n == keep:
                continue
            self.path(n.term, n.index).unlink(missing_ok=True)
            gone.append(n)
            excess -= 1
        return gone
