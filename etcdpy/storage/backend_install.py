"""Replacing the KV backend with a copy received from the leader, atomically (etcd's
``recoverSnapshotBackend`` / ``applySnapshot`` backend swap).

Directories under ``<data-dir>/member/``:

    kv/               the live backend (storage.backend)
    kv.incoming.tmp/  a payload being received (debris after a crash: removed, unless it
                      was verified: then it becomes kv.incoming)
    kv.incoming/      a complete, fsynced, SHA-256-verified payload (``data.mdb``)
    kv.old/           the previous backend during the swap
    kv.outgoing.*     copies made to send to a peer (debris after a crash: removed)

Rules:
1. A payload becomes ``kv.incoming`` only whole: it is written to ``kv.incoming.tmp``,
   fsynced, checked against the sender's size and SHA-256, then renamed (and the member dir
   fsynced). A torn or corrupt transfer never reaches ``kv.incoming``.
2. The swap is two renames, ``kv`` → ``kv.old`` then ``kv.incoming`` → ``kv``, an fsync of the
   member dir, then ``kv.old`` is removed. Every crash point leaves a state :func:`recover`
   resolves to exactly the old or exactly the new backend, never a mix:
   ``kv`` + ``kv.incoming`` (before the first rename), ``kv.old`` + ``kv.incoming`` (between
   the renames: roll forward), ``kv`` + ``kv.old`` (after: drop the old).
3. Some values are the member's own, not the cluster's (its member ID in the ``cluster``
   bucket): the caller names them and they are copied from the old backend into the new one
   before the swap (idempotent, so redone after a crash).
4. ``consistent_index`` travels inside the payload: after the swap the server replays the
   WAL after it, exactly as after a restart.

Synchronous; run on the KV writer thread (the swap closes and reopens the live environment).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from etcdpy.storage.backend import Backend
from etcdpy.storage.layout import fsync_dir, fsync_path

INCOMING = "kv.incoming"
INCOMING_TMP = "kv.incoming.tmp"
OLD = "kv.old"
LIVE = "kv"
OUTGOING_PREFIX = "kv.outgoing."
DATA_FILE = "data.mdb"
VERIFIED = "VERIFIED"

PreservedKey = tuple[bytes, bytes]
"""(bucket, key) of a member-local value kept across an install (rule 3)."""


class PayloadError(Exception):
    """A received backend payload is truncated, corrupt or unusable."""


Hook = Callable[[str], object]
"""A failpoint hook: ``hit(name)`` (``util.failpoints.Failpoints.hit``)."""


def _no_hook(name: str) -> None:
    return None


class IncomingWriter:
    """Receives one payload chunk by chunk into ``kv.incoming.tmp`` (rule 1)."""

    def __init__(self, member_dir: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.member_dir = Path(member_dir)
        self._fsync = fsync
        self._tmp = self.member_dir / INCOMING_TMP
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp.mkdir(mode=0o700, parents=True)
        self._f: BinaryIO | None = open(self._tmp / DATA_FILE, "wb")
        self._h = hashlib.sha256()
        self._n = 0

    def write(self, chunk: bytes) -> None:
        assert self._f is not None, "writer finished"
        self._f.write(chunk)
        self._h.update(chunk)
        self._n += len(chunk)

    def finish(self, size: int, sha256: bytes) -> Path:
        """Check size and checksum, make it durable and publish it as ``kv.incoming``."""
        f = self._f
        assert f is not None, "writer finished"
        self._f = None
        try:
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
            f.close()
            if self._n != size:
                raise PayloadError(f"backend payload: got {self._n} bytes, expected {size}")
            if self._h.digest() != sha256:
                raise PayloadError("backend payload: sha256 mismatch")
            # The marker makes a verified copy recognisable while an older kv.incoming is
            # being replaced (recover promotes it), so no crash loses both.
            (self._tmp / VERIFIED).write_bytes(sha256)
            if self._fsync:
                fsync_path(self._tmp / VERIFIED)
                fsync_dir(self._tmp)
            final = self.member_dir / INCOMING
            shutil.rmtree(final, ignore_errors=True)
            os.rename(self._tmp, final)
            if self._fsync:
                fsync_dir(self.member_dir)
            return final
        except BaseException:
            f.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        shutil.rmtree(self._tmp, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class StagedPayload:
    """What :func:`stamp_incoming` found in a complete ``kv.incoming``."""

    path: Path
    consistent_index: int
    term: int


def has_incoming(member_dir: str | os.PathLike[str]) -> bool:
    return (Path(member_dir) / INCOMING / DATA_FILE).is_file()


def read_preserved(backend: Backend, keys: Sequence[PreservedKey]) -> dict[PreservedKey, bytes]:
    """The member-local values to carry into the new backend (rule 3)."""
    out: dict[PreservedKey, bytes] = {}
    with backend.read_txn() as r:
        for bucket, key in keys:
            v = r.unsafe_get(bucket, key)
            if v is not None:
                out[(bucket, key)] = v
    return out


def stamp_incoming(
    member_dir: str | os.PathLike[str],
    preserved: dict[PreservedKey, bytes],
    *,
    unsafe_no_fsync: bool = False,
) -> StagedPayload:
    """Open ``kv.incoming``, write the preserved values into it (durably) and report its
    ``consistent_index``. Raises PayloadError if there is none or it cannot be opened."""
    path = Path(member_dir) / INCOMING
    if not (path / DATA_FILE).is_file():
        raise PayloadError(f"no received backend payload in {path}")
    try:
        be = Backend(path, unsafe_no_fsync=unsafe_no_fsync)
    except Exception as exc:
        raise PayloadError(f"received backend payload unusable: {exc!r}") from exc
    (path / VERIFIED).unlink(missing_ok=True)  # only meaningful in kv.incoming.tmp
    try:
        if preserved:
            with be.write_txn() as w:
                for (bucket, key), value in preserved.items():
                    w.unsafe_put(bucket, key, value)
        with be.read_txn() as r:
            staged = StagedPayload(path, r.consistent_index(), r.term())
    finally:
        be.close()
    return staged


def swap_in(
    member_dir: str | os.PathLike[str], *, fsync: bool = True, hit: Hook = _no_hook
) -> None:
    """Rule 2: put ``kv.incoming`` in place of ``kv``. The live Backend must be closed."""
    m = Path(member_dir)
    live, old, incoming = m / LIVE, m / OLD, m / INCOMING
    shutil.rmtree(old, ignore_errors=True)
    hit("snapBeforeSwapBackend")
    if live.exists():
        os.rename(live, old)
    hit("snapBetweenSwapRenames")
    os.rename(incoming, live)
    if fsync:
        fsync_dir(m)
    hit("snapAfterSwapBackend")
    shutil.rmtree(old, ignore_errors=True)


def install_into(
    backend: Backend,
    preserve: Sequence[PreservedKey],
    *,
    min_index: int,
    hit: Hook = _no_hook,
) -> StagedPayload:
    """Swap the staged payload under an open Backend and reopen it in place.

    ``min_index``: the raft snapshot index; a payload whose ``consistent_index`` is below it
    would lose entries the WAL no longer has, and is refused (the old backend stays).
    Every transaction on ``backend`` must have ended (the caller gates readers).
    """
    kv_dir = Path(backend.path)
    member_dir = kv_dir.parent
    fsync = not backend._unsafe_no_fsync
    preserved = read_preserved(backend, preserve)
    staged = stamp_incoming(member_dir, preserved, unsafe_no_fsync=not fsync)
    if staged.consistent_index < min_index:
        raise PayloadError(
            f"received backend is at index {staged.consistent_index}, "
            f"behind the snapshot index {min_index}"
        )
    backend.close()
    try:
        swap_in(member_dir, fsync=fsync, hit=hit)
    finally:
        # Reopen whatever is in place now (the new backend, or the old one if the swap
        # failed before its first rename): the member keeps a usable backend object.
        if (kv_dir / DATA_FILE).is_file() or not (member_dir / OLD).exists():
            backend._open()
    return staged


def recover(
    member_dir: str | os.PathLike[str],
    snapshot_index: int,
    preserve: Sequence[PreservedKey],
    *,
    fsync: bool = True,
) -> str:
    """Resolve what a crash left (rule 2), before the KV backend is opened at start.

    ``snapshot_index`` is the WAL's snapshot index: a staged payload is installed only when
    the live backend is behind it (the WAL recorded the snapshot, the swap did not happen);
    otherwise the staged payload is stale and removed. Returns what was done (for logs):
    "none", "rolled-forward", "installed", "dropped-stale", "cleaned".
    """
    m = Path(member_dir)
    live, old, incoming = m / LIVE, m / OLD, m / INCOMING
    did = "none"
    tmp = m / INCOMING_TMP
    if (tmp / VERIFIED).is_file() and not has_incoming(m):
        # Crashed while a verified payload replaced an older staged one (rule 1).
        shutil.rmtree(incoming, ignore_errors=True)
        os.rename(tmp, incoming)
    shutil.rmtree(tmp, ignore_errors=True)
    for p in m.glob(OUTGOING_PREFIX + "*"):
        shutil.rmtree(p, ignore_errors=True)
    if not (live / DATA_FILE).is_file() and (old / DATA_FILE).is_file():
        # Crashed between the two renames: the WAL already holds the snapshot.
        if has_incoming(m):
            be = Backend(old, unsafe_no_fsync=not fsync)
            try:
                preserved = read_preserved(be, preserve)
            finally:
                be.close()
            stamp_incoming(m, preserved, unsafe_no_fsync=not fsync)
            shutil.rmtree(live, ignore_errors=True)
            os.rename(incoming, live)
            did = "rolled-forward"
        else:
            shutil.rmtree(live, ignore_errors=True)
            os.rename(old, live)
            did = "rolled-back"
        if fsync:
            fsync_dir(m)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
        did = "cleaned" if did == "none" else did
    if has_incoming(m) and (live / DATA_FILE).is_file():
        be = Backend(live, unsafe_no_fsync=not fsync)
        try:
            ci = be.consistent_index()
            preserved = read_preserved(be, preserve)
        finally:
            be.close()
        if ci < snapshot_index:
            staged = stamp_incoming(m, preserved, unsafe_no_fsync=not fsync)
            if staged.consistent_index >= snapshot_index:
                swap_in(m, fsync=fsync)
                return "installed"
        shutil.rmtree(incoming, ignore_errors=True)
        did = "dropped-stale"
    return did
