"""The KV backend: one LMDB environment holding etcd's buckets (etcd's ``mvcc/backend``).

Rules:

1. One writer. LMDB allows one write transaction per environment at a time and a write
   transaction must stay on the thread that opened it; the server's KV writer thread owns every
   :class:`WriteTxn` (the applier opens one per batch of committed entries).
2. ``consistent_index`` (and the raft ``term`` of that entry) is written in the *same*
   transaction as the data it describes, so after a crash the KV content and the applied index
   always agree and the server replays from the WAL exactly the entries after it (etcd
   ``cindex``).
3. Readers are LMDB read transactions: a consistent snapshot, never blocked by the writer,
   usable from any thread (one transaction per thread at a time).
4. Durability: the environment opens with ``metasync=False`` (one flush per commit; a crash may
   only undo the last commits, which the WAL replays) and ``sync=True`` unless
   ``unsafe_no_fsync`` (etcd's ``--unsafe-no-fsync``); never ``sync=False`` otherwise, as LMDB can
   then be corrupted by a power loss.
5. Bucket names are etcd's (``key``, ``meta``, ``lease``, ``alarm``, ``cluster``, ``members``,
   ``members_removed``, ``auth``, ``authUsers``, ``authRoles``) plus ``key_index`` and
   ``key_live``, our on-disk MVCC key index (see :mod:`etcdpy.mvcc.key_index`).

The hash is computed with IEEE CRC-32 (``zlib.crc32``), not etcd's Castagnoli polynomial: no
crc32c implementation is available in C here and the value is only compared between etcdpy
members (corruption check), never with Go etcd.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import lmdb

from etcdpy.storage.layout import fsync_path

# etcd's bucket names (server/mvcc/buckets) + our key index.
BUCKET_KEY = b"key"
BUCKET_KEY_INDEX = b"key_index"
BUCKET_KEY_LIVE = b"key_live"
BUCKET_META = b"meta"
BUCKET_LEASE = b"lease"
BUCKET_ALARM = b"alarm"
BUCKET_CLUSTER = b"cluster"
BUCKET_MEMBERS = b"members"
BUCKET_MEMBERS_REMOVED = b"members_removed"
BUCKET_AUTH = b"auth"
BUCKET_AUTH_USERS = b"authUsers"
BUCKET_AUTH_ROLES = b"authRoles"

BUCKETS: tuple[bytes, ...] = (
    BUCKET_KEY,
    BUCKET_KEY_INDEX,
    BUCKET_KEY_LIVE,
    BUCKET_META,
    BUCKET_LEASE,
    BUCKET_ALARM,
    BUCKET_CLUSTER,
    BUCKET_MEMBERS,
    BUCKET_MEMBERS_REMOVED,
    BUCKET_AUTH,
    BUCKET_AUTH_USERS,
    BUCKET_AUTH_ROLES,
)
#: Buckets opened with DUPSORT|DUPFIXED (many fixed-size values per key).
DUPSORT_BUCKETS: frozenset[bytes] = frozenset({BUCKET_KEY_INDEX})

# meta bucket keys (etcd's names where etcd has one).
META_CONSISTENT_INDEX = b"consistent_index"
META_TERM = b"term"
META_STORAGE_VERSION = b"storageVersion"

#: Our on-disk format version, written at creation; bump on incompatible layout changes.
STORAGE_VERSION = b"etcdpy-kv-1"

#: Default LMDB map size: address space only (the file grows as pages are used). 64 GiB is
#: far above etcd's 8 GiB suggested maximum quota.
DEFAULT_MAP_SIZE = 64 << 30

_U64 = struct.Struct(">Q")


def _u64(b: bytes | None) -> int:
    return 0 if not b else int(_U64.unpack(b)[0])


class ReadTxn:
    """A consistent read-only snapshot of the backend (etcd's ``ReadTx``).

    Use as a context manager or call :meth:`close`. ``lmdb`` exposes the raw transaction for
    hot paths (the MVCC store walks cursors directly).
    """

    __slots__ = ("_backend", "_dbs", "lmdb")

    def __init__(self, backend: Backend, txn: Any) -> None:
        self._backend = backend
        self._dbs = backend._dbs
        #: The underlying ``lmdb.Transaction``.
        self.lmdb: Any = txn

    def db(self, bucket: bytes) -> Any:
        """The LMDB database handle of ``bucket``."""
        return self._dbs[bucket]

    def unsafe_get(self, bucket: bytes, key: bytes) -> bytes | None:
        """The value under ``key`` in ``bucket`` or None."""
        v = self.lmdb.get(key, db=self._dbs[bucket])
        return None if v is None else bytes(v)

    def unsafe_range(
        self, bucket: bytes, key: bytes, end: bytes | None = None, limit: int = 0
    ) -> list[tuple[bytes, bytes]]:
        """etcd's ``UnsafeRange``: ``end`` None → the single ``key``; else ``[key, end)``
        (``end == b""`` → to the end of the bucket). ``limit`` <= 0 means no limit."""
        db = self._dbs[bucket]
        if end is None:
            v = self.lmdb.get(key, db=db)
            return [] if v is None else [(key, bytes(v))]
        out: list[tuple[bytes, bytes]] = []
        cur = self.lmdb.cursor(db=db)
        if not cur.set_range(key):
            return out
        for k, v in cur.iternext():
            if end and k >= end:
                break
            out.append((k, v))
            if 0 < limit <= len(out):
                break
        return out

    def unsafe_for_each(self, bucket: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) of ``bucket`` in key order (etcd's ``UnsafeForEach``)."""
        cur = self.lmdb.cursor(db=self._dbs[bucket])
        if cur.first():
            yield from cur.iternext()

    def consistent_index(self) -> int:
        """The raft index of the last entry applied to this snapshot (0 if none)."""
        return _u64(self.lmdb.get(META_CONSISTENT_INDEX, db=self._dbs[BUCKET_META]))

    def term(self) -> int:
        """The raft term of the entry at :meth:`consistent_index` (0 if none)."""
        return _u64(self.lmdb.get(META_TERM, db=self._dbs[BUCKET_META]))

    def close(self) -> None:
        """End the read transaction (releases its snapshot)."""
        self.lmdb.abort()

    def __enter__(self) -> ReadTxn:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class WriteTxn(ReadTxn):
    """The single write transaction (etcd's ``BatchTx``), reads see its own writes.

    As a context manager it commits on normal exit and aborts on an exception. Commit hooks let
    layers above publish in-memory state (e.g. the MVCC current revision) only once durable.
    """

    __slots__ = ("_before_commit", "_done", "_on_abort", "_on_commit")

    def __init__(self, backend: Backend, txn: Any) -> None:
        super().__init__(backend, txn)
        self._before_commit: list[Callable[[], None]] = []
        self._on_commit: list[Callable[[], None]] = []
        self._on_abort: list[Callable[[], None]] = []
        self._done = False

    def unsafe_put(self, bucket: bytes, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key`` (overwrites)."""
        self.lmdb.put(key, value, db=self._dbs[bucket])

    def unsafe_delete(self, bucket: bytes, key: bytes) -> bool:
        """Delete ``key``; True if it existed."""
        return bool(self.lmdb.delete(key, db=self._dbs[bucket]))

    def set_consistent_index(self, index: int, term: int) -> None:
        """Record the applied raft index and its term in this transaction (rule 2)."""
        meta = self._dbs[BUCKET_META]
        self.lmdb.put(META_CONSISTENT_INDEX, _U64.pack(index), db=meta)
        self.lmdb.put(META_TERM, _U64.pack(term), db=meta)

    def before_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` just before the commit, inside the transaction (last writes)."""
        self._before_commit.append(fn)

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` right after a successful commit (in the writer thread)."""
        self._on_commit.append(fn)

    def on_abort(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` after an abort (to roll back in-memory state)."""
        self._on_abort.append(fn)

    def commit(self) -> None:
        """Commit (one flush; fsync unless ``unsafe_no_fsync``) and run commit hooks."""
        if self._done:
            return
        try:
            for fn in self._before_commit:
                fn()
        except BaseException:
            self.abort()
            raise
        self._done = True
        observe = self._backend.commit_observer
        t0 = time.perf_counter() if observe is not None else 0.0
        try:
            self.lmdb.commit()
        except BaseException:
            self._backend._write_done()
            for fn in self._on_abort:
                fn()
            raise
        if observe is not None:
            observe(time.perf_counter() - t0)
        self._backend.data_version += 1  # after the commit: see Backend.data_version
        self._backend._write_done()
        for fn in self._on_commit:
            fn()

    def abort(self) -> None:
        """Discard every write of this transaction and run abort hooks."""
        if self._done:
            return
        self._done = True
        self.lmdb.abort()
        self._backend._write_done()
        for fn in self._on_abort:
            fn()

    def close(self) -> None:
        """Abort unless already committed."""
        self.abort()

    def __enter__(self) -> WriteTxn:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class Backend:
    """The LMDB KV environment at ``<path>`` (a directory holding ``data.mdb``/``lock.mdb``)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        unsafe_no_fsync: bool = False,
        max_readers: int = 126,
    ) -> None:
        self._path = os.fspath(path)
        self._map_size = map_size
        self._unsafe_no_fsync = unsafe_no_fsync
        self._max_readers = max_readers
        self._lock = threading.Lock()
        self._writing = False
        self.commit_observer: Callable[[float], None] | None = None
        """Told the seconds each write commit took (etcd's
        ``etcd_disk_backend_commit_duration_seconds``)."""
        self._dbs: dict[bytes, Any] = {}
        self._env: Any = None
        self.data_version = 0
        """Grows after every write commit and every (re)open of the environment: a read
        snapshot taken at version V shows everything committed before V was read
        (``KVStore.shared_read`` keeps one while it does not grow)."""
        self._open()

    # --- lifecycle -----------------------------------------------------------------------------

    def _open(self) -> None:
        self.data_version += 1
        os.makedirs(self._path, exist_ok=True)
        self._env = lmdb.open(
            self._path,
            map_size=self._map_size,
            subdir=True,
            max_dbs=len(BUCKETS) + 4,
            max_readers=self._max_readers,
            metasync=False,
            sync=not self._unsafe_no_fsync,
            readahead=False,
            meminit=False,
        )
        dbs: dict[bytes, Any] = {}
        with self._env.begin(write=True) as txn:
            for name in BUCKETS:
                dup = name in DUPSORT_BUCKETS
                dbs[name] = self._env.open_db(name, txn=txn, dupsort=dup, dupfixed=dup)
            meta = dbs[BUCKET_META]
            if txn.get(META_STORAGE_VERSION, db=meta) is None:
                txn.put(META_STORAGE_VERSION, STORAGE_VERSION, db=meta)
        self._dbs = dbs

    @property
    def path(self) -> str:
        return self._path

    @property
    def env(self) -> Any:
        """The ``lmdb.Environment`` (for the MVCC store's hot paths)."""
        return self._env

    def close(self) -> None:
        """Close the environment; every transaction must have ended."""
        if self._env is not None:
            self.data_version += 1
            self._env.close()
            self._env = None

    # --- transactions --------------------------------------------------------------------------

    def read_txn(self) -> ReadTxn:
        """A new read snapshot (close it, or use ``with``)."""
        return ReadTxn(self, self._env.begin(buffers=False))

    def write_txn(self) -> WriteTxn:
        """Begin the write transaction (blocks while another writer holds LMDB's lock)."""
        txn = self._env.begin(write=True)
        with self._lock:
            self._writing = True
        return WriteTxn(self, txn)

    def _write_done(self) -> None:
        with self._lock:
            self._writing = False

    def db(self, bucket: bytes) -> Any:
        """The LMDB database handle of ``bucket``."""
        return self._dbs[bucket]

    # --- meta shortcuts ------------------------------------------------------------------------

    def consistent_index(self) -> int:
        """The committed ``consistent_index`` (its own read txn)."""
        with self.read_txn() as r:
            return r.consistent_index()

    def term(self) -> int:
        with self.read_txn() as r:
            return r.term()

    # --- size, hash, defrag, snapshot ----------------------------------------------------------

    def db_size(self) -> int:
        """Physical size of the data file in bytes (etcd's ``dbSize``)."""
        try:
            return os.path.getsize(os.path.join(self._path, "data.mdb"))
        except OSError:
            return 0

    def db_size_in_use(self) -> int:
        """Bytes of pages in use by the B-trees (etcd's ``dbSizeInUse``): the file minus free
        pages; grows back toward ``db_size`` only when defrag reclaims the free list."""
        psize = int(self._env.stat()["psize"])
        pages = 2  # the two LMDB meta pages
        with self._env.begin() as txn:
            main = self._env.stat()
            pages += main["branch_pages"] + main["leaf_pages"] + main["overflow_pages"]
            for db in self._dbs.values():
                s = txn.stat(db)
                pages += s["branch_pages"] + s["leaf_pages"] + s["overflow_pages"]
        return int(pages * psize)

    def hash(self) -> int:
        """CRC-32 over every bucket's name, keys and values (etcd's ``Maintenance.Hash``)."""
        h = 0
        with self._env.begin() as txn:
            for name in sorted(BUCKETS):
                if name == BUCKET_META:
                    continue  # node-local (consistent_index differs between members)
                h = zlib.crc32(name, h)
                cur = txn.cursor(db=self._dbs[name])
                for k, v in cur.iternext():
                    h = zlib.crc32(k, h)
                    h = zlib.crc32(v, h)
        return h

    def snapshot_to(self, dest_dir: str | os.PathLike[str], *, compact: bool = True) -> None:
        """Write a consistent copy of the environment to ``dest_dir`` (created; must not hold
        a database). Runs in a read transaction: writers continue meanwhile."""
        os.makedirs(dest_dir, exist_ok=True)
        self._env.copy(os.fspath(dest_dir), compact=compact)

    def copy_to_fd(self, fd: int, *, compact: bool = False) -> None:
        """Write a consistent copy of ``data.mdb`` to the file descriptor ``fd`` (a file or
        a pipe; for ``Maintenance.Snapshot``). Blocks until done; writers continue."""
        self._env.copyfd(fd, compact=compact)

    def defrag(self) -> None:
        """Rewrite the file without free pages (etcd's defragment) and reopen it.

        Copies with ``compact=True`` into a sibling directory, closes, swaps the files and
        reopens. The caller must hold the writer role and no other transaction may be open."""
        with self._lock:
            if self._writing:
                raise RuntimeError("defrag while a write transaction is open")
        tmp = self._path.rstrip(os.sep) + ".defrag"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        self._env.copy(tmp, compact=True)
        new_file = os.path.join(tmp, "data.mdb")
        fsync_path(new_file)
        self.close()
        os.replace(new_file, os.path.join(self._path, "data.mdb"))
        fsync_path(self._path)
        shutil.rmtree(tmp, ignore_errors=True)
        self._open()
