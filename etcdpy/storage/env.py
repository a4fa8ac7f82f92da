"""Opening LMDB environments: map-size growth, the format version, one writer thread.

Rules (ARCHITECTURE 3.4, 3.11):
1. One thread owns an environment's write transactions (LMDB allows one writer and a write
   transaction must stay on the thread that began it); ``WriterThread`` is that thread.
2. Read transactions are short and may run on any thread; ``LmdbEnv.read()`` registers them
   so the map can be grown safely (LMDB's ``mdb_env_set_mapsize`` requires that no
   transaction of this process is open).
3. A write that does not fit (``MapFullError``) is aborted, the map doubled, and the write
   function run again: write functions must not change anything outside the transaction.
4. Every environment carries a format name and version in its ``__meta__`` sub-database;
   opening one written by another format or version fails instead of misreading it.
5. ``sync=False`` only for ``--unsafe-no-fsync``; the KV environment may use
   ``metasync=False`` because the WAL replays what a crash undoes. Never ``sync=False``
   otherwise: a power loss can then corrupt LMDB.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any, TypeVar

import lmdb

from etcdpy.storage.layout import FormatVersionError
from etcdpy.util.loop import call_on_loop, resolve
from etcdpy.util.threads import set_os_thread_name

if TYPE_CHECKING:  # typing only: the storage layer itself never runs asyncio code
    import asyncio

T = TypeVar("T")

META_DB = b"__meta__"
FORMAT_KEY = b"format"

DEFAULT_MAP_SIZE = 1 << 30
"""Initial map size. It only reserves address space; the file grows with the data."""

MAX_MAP_SIZE = 1 << 40


class _ResizeGuard:
    """A readers/writer gate: many short readers, or one map resize."""

    __slots__ = ("_cond", "_readers", "_resizing")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._resizing = False

    def enter(self) -> None:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._readers += 1

    def leave(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._resizing = False
                self._cond.notify_all()


class LmdbEnv:
    """An LMDB environment with growth on MapFullError and a checked format version."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format_name: str,
        format_version: int,
        max_dbs: int = 8,
        map_size: int = DEFAULT_MAP_SIZE,
        sync: bool = True,
        metasync: bool = True,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        if not readonly:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env: Any = lmdb.open(
            str(self.path),
            map_size=map_size,
            max_dbs=max_dbs + 1,
            sync=sync,
            metasync=metasync,
            readonly=readonly,
            readahead=False,
            subdir=True,
            lock=True,
        )
        self._guard = _ResizeGuard()
        self._meta = self.open_db(META_DB)
        self._check_format(format_name, format_version, readonly)

    def open_db(self, name: bytes, **flags: Any) -> Any:
        """Open (creating if needed) a named sub-database; call before any concurrent use.

        ``flags`` go to ``lmdb.Environment.open_db`` (``dupsort=True``, ...).
        """
        return self.env.open_db(name, create=not self.env.flags()["readonly"], **flags)

    def _check_format(self, name: str, version: int, readonly: bool) -> None:
        want = f"{name}:{version}".encode()
        with self.env.begin(db=self._meta) as txn:
            got = txn.get(FORMAT_KEY, db=self._meta)
        if got is None:
            if readonly:
                raise FormatVersionError(f"{self.path}: no format record")
            self.write(lambda txn: txn.put(FORMAT_KEY, want, db=self._meta))
        elif bytes(got) != want:
            raise FormatVersionError(
                f"{self.path}: on-disk format {bytes(got).decode(errors='replace')!r}, "
                f"this build reads {want.decode()!r}"
            )

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A read-only transaction; keep it short (it blocks map growth while open)."""
        self._guard.enter()
        try:
            try:
                txn = self.env.begin(buffers=False)
            except lmdb.MapResizedError:
                # Another process grew the map: adopt its size, then retry once.
                self._guard.leave()
                with self._guard.exclusive():
                    self.env.set_mapsize(0)
                self._guard.enter()
                txn = self.env.begin(buffers=False)
            try:
                yield txn
            finally:
                txn.abort()
        finally:
            self._guard.leave()

    def write(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(txn)`` in one write transaction and commit it (durably if ``sync``).

        On ``MapFullError`` the transaction is aborted, the map doubled and ``fn`` run
        again, so ``fn`` must only touch the transaction.
        """
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    return fn(txn)
            except lmdb.MapFullError:
                self.grow()
            except lmdb.MapResizedError:
                with self._guard.exclusive():  # another process grew it: adopt its size
                    self.env.set_mapsize(0)

    def grow(self) -> None:
        size = self.env.info()["map_size"]
        if size >= MAX_MAP_SIZE:
            raise lmdb.MapFullError(f"{self.path}: map size limit {MAX_MAP_SIZE} reached")
        with self._guard.exclusive():
            self.env.set_mapsize(min(size * 2, MAX_MAP_SIZE))

    def map_size(self) -> int:
        return int(self.env.info()["map_size"])

    def sync(self) -> None:
        """Force a flush (for environments opened with ``sync=False``)."""
        self.env.sync(True)

    def close(self) -> None:
        self.env.close()


class DirLockedError(Exception):
    """Another process (or another open store in this one) holds the directory."""


class DirLock:
    """An exclusive ``flock`` on ``<dir>/LOCK``, held while a store is open.

    LMDB itself lets several processes write one environment; two members sharing a data
    dir would interleave two raft logs. etcd locks its WAL files for the same reason.
    Released by ``release()`` or by the death of the process.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        path = Path(directory) / "LOCK"
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._fd)
            self._fd = None
            raise DirLockedError(f"{directory} is in use by another store") from exc

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class WriterThread:
    """The one thread that owns an environment's writes (ARCHITECTURE 3.4).

    Jobs run one at a time, in submission order, on one thread fed by a ``SimpleQueue``
    (no executor machinery: a job costs one queue put and, for asyncio callers, one
    ``call_soon_threadsafe``). Two ways to hand it a job with an answer:
    - ``submit(fn, *args) -> concurrent.futures.Future`` (any thread; blocking callers);
    - ``run_async(loop, fn, *args) -> asyncio.Future`` (on the loop; await it).
    ``post(fn, *args)`` runs ``fn`` with no answer (the hot paths: the job itself tells the
    loop, ``util.loop.call_on_loop``); exceptions are the caller's concern.
    Like ``ThreadPoolExecutor``, the thread finishes the queued jobs and exits at
    ``shutdown`` or at interpreter exit.
    """

    def __init__(self, name: str) -> None:
        q: SimpleQueue[_Job | None] = SimpleQueue()
        self._q = q
        self._shutdown = False
        self._thread = threading.Thread(target=_writer_loop, args=(q, name), name=name)
        self._thread.start()
        self._ident: int | None = self._thread.ident
        register = getattr(threading, "_register_atexit", None)
        if register is not None:  # what ThreadPoolExecutor does: drain and join at exit
            register(_stop_at_exit, q)

    def _put(self, job: _Job) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new jobs after shutdown")
        self._q.put(job)

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        fut.set_running_or_notify_cancel()
        self._put((fn, args, _set_cfuture, fut, None))
        return fut

    def run_async(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., T], /, *args: Any
    ) -> asyncio.Future[T]:
        fut: asyncio.Future[T] = loop.create_future()
        self._put((fn, args, _resolve_on_loop, fut, loop))
        return fut

    def post(self, fn: Callable[..., Any], /, *args: Any) -> None:
        self._put((fn, args, None, None, None))

    def on_thread(self) -> bool:
        """True when called from the writer thread (for ownership assertions)."""
        return threading.get_ident() == self._ident

    def shutdown(self, wait: bool = True) -> None:
        if not self._shutdown:
            self._shutdown = True
            self._q.put(None)
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()


_Job = tuple[Callable[..., Any], tuple[Any, ...], Any, Any, Any]
"""(fn, args, answer(target, loop, result, exc) or None, target, loop)"""


def _writer_loop(q: SimpleQueue[_Job | None], name: str) -> None:
    set_os_thread_name(name)
    get = q.get
    while True:
        job = get()
        if job is None:
            return
        fn, args, answer, target, loop = job
        del job
        res: Any = None
        err: BaseException | None = None
        try:
            res = fn(*args)
        except BaseException as exc:
            err = exc
        if answer is not None:
            try:
                answer(target, loop, res, err)
            except Exception:  # never let one answer kill the writer thread
                pass
        del fn, args, answer, target, loop, res, err


def _stop_at_exit(q: SimpleQueue[_Job | None]) -> None:
    q.put(None)


def _set_cfuture(fut: Future[Any], _loop: Any, res: Any, exc: BaseException | None) -> None:
    if exc is None:
        fut.set_result(res)
    else:
        fut.set_exception(exc)


def _resolve_on_loop(
    fut: asyncio.Future[Any],
    loop: asyncio.AbstractEventLoop,
    res: Any,
    exc: BaseException | None,
) -> None:
    call_on_loop(loop, resolve, fut, res, exc)
