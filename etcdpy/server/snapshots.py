"""Raft snapshots that carry the member's state (etcd's merged snapshot message + the
receiver's ``applySnapshot``).

The raft ``Snapshot`` stays small (metadata, and whatever ``Snapshot.data`` the WAL keeps);
the state itself is the KV backend (key space, leases, auth, membership, alarms), which
travels beside ``MsgSnap`` as a separate payload, as etcd's rafthttp sends the bbolt file
after the raft message. Rules:

1. **Sender** (``BackendSnapshotSource``): when the leader must send ``MsgSnap``, the
   transport asks for a payload; a consistent copy of the backend is made right then (one
   LMDB read transaction, ``compact=True``, on a reader thread: writers go on). Its
   ``consistent_index`` is at or after the snapshot index (the leader applied at least that
   far), exactly as etcd sends its current backend with an older raft snapshot; entries in
   between are skipped by the receiver's applier (index <= consistent_index).
2. **Transfer**: the transport sends ``SnapshotPayloadHeader`` (size + SHA-256) and the
   chunks, then the raft message. The receiver stages the chunks (``receive``: fsynced,
   verified, published as ``kv.incoming``, see ``storage.backend_install``) *before* the
   message is stepped, so when raft hands the snapshot to the application the payload is
   already durable here (etcd saves ``<index>.snap.db`` before stepping too).
3. **Install** (``install_on_kv_thread``, called by ``EtcdServer.apply_snapshot`` after the
   WAL recorded the snapshot): on the KV writer thread, with every reader gated off, the
   backend is swapped atomically and reopened in place, then the state machine is rebuilt
   from it the way a restart does (MVCC revisions, lessor, membership, alarms, applied
   index). A crash anywhere is resolved at the next start by ``recover_on_start``: the WAL
   already names the snapshot, so a staged payload newer than the live backend is installed;
   a stale one is dropped.
4. The member's own ID lives in the backend's ``cluster`` bucket; it is carried over from
   the old backend into the new one (the leader's copy holds the leader's ID).

Failpoints (crash tests): ``snapBeforeSwapBackend``, ``snapBetweenSwapRenames``,
``snapAfterSwapBackend`` inside the swap, ``applyAfterInstallSnapshot`` once the state is
rebuilt.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.membership.cluster import LOCAL_ID_KEY, RaftCluster
from etcdpy.mvcc.kvstore import KVStore
from etcdpy.raft.types import Snapshot, SnapshotMetadata
from etcdpy.server.apply import Applier
from etcdpy.server.apply_lease import LeaseTable
from etcdpy.storage import backend_install
from etcdpy.storage.backend import BUCKET_ALARM, BUCKET_CLUSTER, Backend
from etcdpy.util.failpoints import Failpoints

PAYLOAD_CHUNK = 256 * 1024
"""Bytes per chunk of a backend payload on the wire."""

MEMBER_LOCAL_KEYS: tuple[backend_install.PreservedKey, ...] = ((BUCKET_CLUSTER, LOCAL_ID_KEY),)
"""Values of the backend that belong to this member, not to the cluster (rule 4)."""


@dataclass(frozen=True, slots=True)
class SnapshotPayloadHeader:
    """Sent before the chunks: which raft snapshot they go with, their size and SHA-256."""

    index: int
    term: int
    size: int
    sha256: bytes


class OutgoingSnapshot:
    """One backend copy being sent; ``close`` removes it (always call it)."""

    def __init__(self, header: SnapshotPayloadHeader, path: Path, chunk_size: int) -> None:
        self.header = header
        self._path = path
        self._chunk = chunk_size

    async def chunks(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        with open(self._path / backend_install.DATA_FILE, "rb") as f:
            while True:
                chunk = await loop.run_in_executor(None, f.read, self._chunk)
                if not chunk:
                    return
                yield chunk

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: shutil.rmtree(self._path, ignore_errors=True))


class SnapshotPayloadSource(Protocol):
    """The sender's side: a payload for the raft snapshot a ``MsgSnap`` carries."""

    async def open(self, meta: SnapshotMetadata) -> OutgoingSnapshot: ...


class SnapshotPayloadSink(Protocol):
    """The receiver's side: stage a payload before its ``MsgSnap`` is stepped."""

    async def receive(
        self, header: SnapshotPayloadHeader, chunks: AsyncIterable[bytes]
    ) -> None: ...


RunRead = Callable[..., Awaitable[Any]]
"""``EtcdServer.run_read``: run a backend read on a reader thread (gated by defrag/install)."""


class BackendSnapshotSource:
    """Rule 1: copies the live backend for each snapshot sent."""

    def __init__(
        self,
        member_dir: str | os.PathLike[str],
        backend: Backend,
        run_read: RunRead,
        *,
        chunk_size: int = PAYLOAD_CHUNK,
    ) -> None:
        self._dir = Path(member_dir)
        self._backend = backend
        self._run_read = run_read
        self._chunk = chunk_size

    async def open(self, meta: SnapshotMetadata) -> OutgoingSnapshot:
        loop = asyncio.get_running_loop()
        tmp = Path(
            await loop.run_in_executor(
                None,
                lambda: tempfile.mkdtemp(prefix=backend_install.OUTGOING_PREFIX, dir=self._dir),
            )
        )
        try:
            await self._run_read(self._backend.snapshot_to, tmp)
            size, digest, ci = await loop.run_in_executor(None, _describe_copy, tmp)
            if ci < meta.index:
                raise backend_install.PayloadError(
                    f"backend copy at index {ci} is behind snapshot {meta.index}"
                )
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        header = SnapshotPayloadHeader(meta.index, meta.term, size, digest)
        return OutgoingSnapshot(header, tmp, self._chunk)


def _describe_copy(path: Path) -> tuple[int, bytes, int]:
    """Size, SHA-256 and consistent_index of a backend copy."""
    data = path / backend_install.DATA_FILE
    be = Backend(path)  # opened before hashing: the checksum covers the final bytes
    try:
        ci = be.consistent_index()
    finally:
        be.close()
    h = hashlib.sha256()
    with open(data, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return os.path.getsize(data), h.digest(), ci


@dataclass(slots=True)
class InstallResult:
    consistent_index: int
    revision: int
    compact_revision: int


class SnapshotInstaller:
    """Rules 2-4 on the receiving member."""

    def __init__(
        self,
        member_dir: str | os.PathLike[str],
        *,
        fsync: bool = True,
        failpoints: Failpoints | None = None,
        preserve: Sequence[backend_install.PreservedKey] = MEMBER_LOCAL_KEYS,
    ) -> None:
        self.member_dir = Path(member_dir)
        self._fsync = fsync
        self._fp = failpoints if failpoints is not None else Failpoints()
        self._preserve = tuple(preserve)
        self._receiving = asyncio.Lock()
        # Publishing kv.incoming (reader pool) and consuming it (KV writer) never overlap.
        self._staging = threading.Lock()
        self._staged_index = 0
        self.received = 0
        """Payloads staged (for tests and metrics)."""
        self.installed = 0

    async def receive(self, header: SnapshotPayloadHeader, chunks: AsyncIterable[bytes]) -> None:
        """Stage a payload as ``kv.incoming`` (rule 2); raises if it does not verify."""
        loop = asyncio.get_running_loop()
        async with self._receiving:
            if header.index <= self._staged_index and backend_install.has_incoming(self.member_dir):
                # A payload for this snapshot or a newer one is staged already: keep it (it
                # serves any snapshot at or below its index), so a late payload from a
                # deposed leader cannot replace it.
                return
            w = await loop.run_in_executor(
                None, lambda: backend_install.IncomingWriter(self.member_dir, fsync=self._fsync)
            )
            try:
                async for chunk in chunks:
                    await loop.run_in_executor(None, w.write, chunk)
                await loop.run_in_executor(None, self._publish, w, header)
            except BaseException:
                await loop.run_in_executor(None, w.abort)
                raise
            self.received += 1

    def _publish(self, w: backend_install.IncomingWriter, header: SnapshotPayloadHeader) -> None:
        with self._staging:
            w.finish(header.size, header.sha256)
            self._staged_index = header.index

    def install_on_kv_thread(
        self,
        snap: Snapshot,
        backend: Backend,
        kv: KVStore,
        leases: LeaseTable,
        cluster: RaftCluster,
        applier: Applier,
    ) -> InstallResult:
        """Rule 3: swap the backend and rebuild the state machine from it (KV writer thread;
        no read or write transaction may be open)."""
        with self._staging:
            backend_install.install_into(
                backend, self._preserve, min_index=snap.metadata.index, hit=self._fp.hit
            )
            self._staged_index = 0
        kv.reload()
        with backend.read_txn() as r:
            cluster.load(r)
            leases.load(r, kv)
        applier.consistent_index = backend.consistent_index()
        applier.alarms = _load_alarms(backend)
        self.installed += 1
        self._fp.hit("applyAfterInstallSnapshot")
        return InstallResult(applier.consistent_index, kv.current_revision, kv.compact_revision)


def _load_alarms(backend: Backend) -> set[tuple[int, int]]:
    alarms: set[tuple[int, int]] = set()
    with backend.read_txn() as r:
        for k, _ in r.unsafe_for_each(BUCKET_ALARM):
            am = pb.AlarmMember.FromString(bytes(k))
            alarms.add((am.memberID, am.alarm))
    return alarms


def recover_on_start(
    member_dir: str | os.PathLike[str], snapshot_index: int, fsync: bool = True
) -> str:
    """Rule 3 at start (before the backend is opened); see ``backend_install.recover``."""
    return backend_install.recover(member_dir, snapshot_index, MEMBER_LOCAL_KEYS, fsync=fsync)
