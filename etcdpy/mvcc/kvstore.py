"""The MVCC key-value store over the LMDB backend (etcd ``mvcc/kvstore*.go``).

Rules:

1. Every write transaction (:class:`TxnWrite`) that changes something gets exactly one new
   main revision; its changes get sub revisions 0, 1, 2… (etcd ``storeTxnWrite``).
2. Values live in the ``key`` bucket under their 17-byte revision key as serialized
   ``mvccpb.KeyValue`` (etcd's format); a deletion stores ``KeyValue{key}`` under the 18-byte
   tombstone key. The ``key_index`` bucket orders ``(key, revision)`` (see
   :mod:`etcdpy.mvcc.key_index`).
3. Many :class:`TxnWrite` share one backend :class:`~etcdpy.storage.backend.WriteTxn` (the
   applier's batch). The store's committed ``current_revision``/``compact_revision`` move only
   when that backend transaction commits (commit hook); an abort forgets the pending ones.
4. The current and compacted revisions are stored in the ``meta`` bucket in the same
   transaction as the data, so a read snapshot always knows its own revision (no gap between
   "data visible" and "revision published").
5. Ranges follow etcd's server semantics (``etcdserver/apply.go`` ``Range``): ``count`` is the
   number of keys in the range at the revision, unaffected by ``limit`` and by the min/max
   revision filters; ``more`` says ``limit`` cut the (filtered, sorted) result.
6. Compaction at R keeps the latest version of every key live at R and every revision after R;
   reads below R fail with ``ErrCompacted`` as soon as :meth:`KVStore.compact` returns. The
   physical removal costs O(revisions written since the previous compaction) and runs in
   steps of a bounded size (:meth:`KVStore.compact_step`), each in some write transaction, so
   a big compaction never stalls the applier (etcd's batched ``scheduleCompaction``); its
   progress is persisted and resumes after a restart. :meth:`ReadView.hash_kv` hashes what
   the compaction keeps, so members agree whatever their progress.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple

from etcdpy._pb.mvccpb.kv_pb2 import KeyValue
from etcdpy.mvcc import key_index
from etcdpy.mvcc.errors import ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrKeyTooLong
from etcdpy.mvcc.revision import MARKED_REV_BYTES_LEN, main_of, rev_to_bytes
from etcdpy.storage.backend import (
    BUCKET_KEY,
    BUCKET_KEY_INDEX,
    BUCKET_KEY_LIVE,
    BUCKET_META,
    Backend,
    ReadTxn,
    WriteTxn,
)
from etcdpy.util.keys import prefix_end

__all__ = [
    "DELETE",
    "PUT",
    "SORT_ASCEND",
    "SORT_DESCEND",
    "SORT_NONE",
    "TARGET_CREATE",
    "TARGET_KEY",
    "TARGET_MOD",
    "TARGET_VALUE",
    "TARGET_VERSION",
    "Event",
    "HashKVResult",
    "KVStore",
    "KeyValue",
    "RangeResult",
    "RawRange",
    "ReadView",
    "TxnWrite",
    "WriteResult",
    "prefix_end",
]

# mvccpb.Event.EventType
PUT = 0
DELETE = 1
# etcdserverpb.RangeRequest.SortOrder / SortTarget (etcd's numbers)
SORT_NONE = 0
SORT_ASCEND = 1
SORT_DESCEND = 2
TARGET_KEY = 0
TARGET_VERSION = 1
TARGET_CREATE = 2
TARGET_MOD = 3
TARGET_VALUE = 4

# meta bucket: ours (current, compacted, physically finished compaction) and etcd's records.
META_MVCC_REV = b"mvcc_rev"
META_FINISHED_COMPACT_REV = b"finishedCompactRev"
META_SCHEDULED_COMPACT_REV = b"scheduledCompactRev"
#: Where an unfinished physical compaction resumes (a ``key`` bucket key).
META_COMPACT_CURSOR = b"compactCursor"
_REVS = struct.Struct(">qqq")
#: A new store, as etcd's ``newStore``: revision 1 (the first write gets 2), never compacted
#: (compact revision -1, so revision 0 and 1 can still be compacted).
INITIAL_REVS = (1, -1, -1)

#: Revisions examined per compaction step (etcd's ``--experimental-compaction-batch-limit``
#: default is 1000 deletions; a step here also costs one write transaction's time).
COMPACTION_BATCH_LIMIT = 10_000
#: Revisions of an unfinished compaction removed at the end of every write batch that used
#: the store, so compaction completes under load without anyone driving it (a few ms).
AUTO_COMPACTION_STEP = 1_000

_parse = KeyValue.FromString


class Event(NamedTuple):
    """One change of a write transaction (etcd ``mvccpb.Event``), shared by every watcher:
    treat ``kv``/``prev_kv`` as read-only. ``kv`` of a DELETE holds only ``key`` and
    ``mod_revision`` (etcd's tombstone event); ``prev_kv`` is the version it replaced, when
    known."""

    type: int
    kv: KeyValue
    prev_kv: KeyValue | None


@dataclass(slots=True)
class RangeResult:
    """etcd ``RangeResponse`` body: ``revision`` is the header revision (the store's current
    revision of the view, not the requested one)."""

    kvs: list[KeyValue]
    count: int
    more: bool
    revision: int


@dataclass(slots=True)
class RawRange:
    """:class:`RangeResult` with each ``KeyValue`` as its stored serialized bytes."""

    kvs: list[bytes]
    count: int
    more: bool
    revision: int


@dataclass(slots=True)
class WriteResult:
    """What :meth:`TxnWrite.end` returns: ``revision`` is the new main revision (or the
    unchanged current one if nothing changed) and ``events`` the changes in order."""

    revision: int
    events: list[Event] = field(default_factory=list)


class HashKVResult(NamedTuple):
    hash: int
    compact_revision: int
    hash_revision: int


def _sort_key(target: int) -> Callable[[KeyValue], Any]:
    if target == TARGET_KEY:
        return lambda kv: kv.key
    if target == TARGET_VERSION:
        return lambda kv: kv.version
    if target == TARGET_CREATE:
        return lambda kv: kv.create_revision
    if target == TARGET_MOD:
        return lambda kv: kv.mod_revision
    if target == TARGET_VALUE:
        return lambda kv: kv.value
    raise ValueError(f"unknown sort target {target}")


class ReadView:
    """A consistent read of the store at the revision of one backend snapshot (etcd
    ``TxnRead``). Close it (or use ``with``); it holds an LMDB read transaction."""

    __slots__ = (
        "_cur",
        "_finished",
        "_idx",
        "_kcur",
        "_keydb",
        "_lcur",
        "_live",
        "_own",
        "_txn",
        "compact_revision",
        "revision",
    )

    def __init__(
        self, rtxn: ReadTxn, *, own: bool, revs: tuple[int, int, int] | None = None
    ) -> None:
        self._own = rtxn if own else None
        self._txn: Any = rtxn.lmdb
        self._idx = rtxn.db(BUCKET_KEY_INDEX)
        self._keydb = rtxn.db(BUCKET_KEY)
        self._live = rtxn.db(BUCKET_KEY_LIVE)
        self._cur: Any = None
        self._lcur: Any = None
        self._kcur: Any = None
        if revs is None:
            raw = self._txn.get(META_MVCC_REV, db=rtxn.db(BUCKET_META))
            revs = _REVS.unpack(raw) if raw else INITIAL_REVS
        cur_rev, comp, finished = revs
        self._finished = finished
        #: The store revision this view reads at by default (header revision).
        self.revision: int = cur_rev
        #: Revisions below this are compacted.
        self.compact_revision: int = comp

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None

    def __enter__(self) -> ReadView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cursor(self) -> Any:
        c = self._cur
        if c is None:
            c = self._cur = self._txn.cursor(db=self._idx)
        return c

    def _live_cursor(self) -> Any:
        c = self._lcur
        if c is None:
            c = self._lcur = self._txn.cursor(db=self._live)
        return c

    def _check_rev(self, rev: int) -> bytes | None:
        """Validate a requested revision; the index bound to read at (None: latest)."""
        if rev > self.revision:
            raise ErrFutureRev()
        if rev <= 0 or rev == self.revision:
            if self.revision < self.compact_revision:
                raise ErrCompacted()
            return None
        if rev < self.compact_revision:
            raise ErrCompacted()
        return key_index.bound(rev + 1)

    def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
        sort_order: int = SORT_NONE,
        sort_target: int = TARGET_KEY,
    ) -> RangeResult:
        """etcd ``Range`` at ``revision`` (<= 0: the view's revision).

        ``range_end``: ``b""`` single key, ``b"\\x00"`` every key >= ``key``, else
        ``[key, range_end)``. Raises ``ErrFutureRev`` / ``ErrCompacted``.
        """
        upto = self._check_rev(revision)
        if count_only:
            if upto is None:
                n = key_index.count_live(self._live_cursor(), key, range_end)
            else:
                n = key_index.count(self._cursor(), key, range_end, upto)
            return RangeResult([], n, False, self.revision)
        filtered = bool(
            min_mod_revision or max_mod_revision or min_create_revision or max_create_revision
        )
        order = sort_order
        if sort_target != TARGET_KEY and order == SORT_NONE:
            order = SORT_ASCEND  # etcd sorts ascending by default when target is not KEY
        elif sort_target == TARGET_KEY and order == SORT_ASCEND:
            order = SORT_NONE  # already in key order
        # etcd fetches everything only for an explicit sort order or a filter; a sort target
        # alone sorts just the first limit+1 keys (in key order) — kept for compatibility.
        fetch = 0 if (filtered or sort_order != SORT_NONE) else (limit + 1 if limit > 0 else 0)
        get = self._txn.get
        keydb = self._keydb
        kvs: list[KeyValue] = []
        total = 0
        if upto is None:
            # Now: every entry is a put (17-byte key); count in C, fetch only what is needed.
            if fetch:
                total = key_index.count_live(self._live_cursor(), key, range_end)
            for _k, e in key_index.walk_live(self._live_cursor(), key, range_end):
                if fetch and len(kvs) >= fetch:
                    break
                kvs.append(_parse(get(e[:17], db=keydb)))
            if not fetch:
                total = len(kvs)
        else:
            for _k, e in key_index.walk(self._cursor(), key, range_end, upto):
                total += 1
                if fetch and total > fetch:
                    continue
                kvs.append(_parse(get(key_index.key_bucket_key(e), db=keydb)))
        if filtered:
            kvs = [
                kv
                for kv in kvs
                if not (max_mod_revision and kv.mod_revision > max_mod_revision)
                and not (min_mod_revision and kv.mod_revision < min_mod_revision)
                and not (max_create_revision and kv.create_revision > max_create_revision)
                and not (min_create_revision and kv.create_revision < min_create_revision)
            ]
        if order != SORT_NONE:
            kvs.sort(key=_sort_key(sort_target), reverse=order == SORT_DESCEND)
        more = False
        if 0 < limit < len(kvs):
            del kvs[limit:]
            more = True
        if keys_only:
            for kv in kvs:
                kv.value = b""
        return RangeResult(kvs, total, more, self.revision)

    def range_raw(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        descend: bool = False,
        max_keys: int = 0,
    ) -> RawRange | None:
        """:meth:`range` for the common shape (sorted by key, no filter, whole values) with
        the values as stored — serialized ``KeyValue`` messages, what a response carries —
        so nothing is parsed (see :mod:`etcdpy.mvcc.wire`). ``descend``: key order reversed
        (``SORT_DESCEND`` by ``TARGET_KEY``). Same errors as :meth:`range`.

        None when more than ``max_keys`` (> 0) values would be read (the caller then reads
        on a reader thread) or when an index entry has no value (the object path reports it).
        """
        upto = self._check_rev(revision)
        cap = 0 if (descend or limit <= 0) else limit
        bound = max_keys + 1 if max_keys > 0 else 0
        if upto is None:
            lcur = self._live_cursor()
            if cap:
                ents = key_index.live_entries(lcur, key, range_end, cap)
                total = len(ents)
                if total == cap:
                    total = key_index.count_live(lcur, key, range_end, bound)
            else:
                ents = key_index.live_entries(lcur, key, range_end, bound)
                total = len(ents)
        else:
            walk = key_index.walk(self._cursor(), key, range_end, upto)
            ents = [key_index.key_bucket_key(e) for _k, e in islice(walk, bound or None)]
            total = len(ents)
        if bound and total >= bound:
            return None
        more = False
        if descend:
            ents.reverse()
        if 0 < limit < len(ents):
            del ents[limit:]
            more = True
        elif cap and total > len(ents):
            more = True
        if not ents:
            return RawRange([], total, more, self.revision)
        if self._kcur is None:
            self._kcur = self._txn.cursor(db=self._keydb)
        pairs = self._kcur.getmulti(ents)
        if len(pairs) != len(ents):
            return None
        return RawRange([v for _k, v in pairs], total, more, self.revision)

    def get(self, key: bytes, revision: int = 0) -> KeyValue | None:
        """The version of ``key`` live at ``revision`` (<= 0: now) or None."""
        upto = self._check_rev(revision)
        if upto is None:
            e = self._txn.get(key, db=self._live) if len(key) <= key_index.MAX_KEY_LEN else None
        else:
            e = key_index.get(self._cursor(), key, upto)
        if e is None:
            return None
        return _parse(self._txn.get(key_index.key_bucket_key(e), db=self._keydb))

    def changes(
        self, start_rev: int, end_rev: int = 0, limit: int = 0, *, prev_kv: bool = False
    ) -> tuple[list[Event], int]:
        """Events of revisions ``start_rev..end_rev`` (<= 0: the view's revision) in order,
        for watch catch-up (etcd ``watchableStore.syncWatchers``).

        Stops at a revision boundary once ``limit`` (> 0) events are collected; returns the
        events and the next revision to read from. ``prev_kv`` fills each event's previous
        version when it is not compacted. Raises ``ErrCompacted`` if ``start_rev`` is below
        the compacted revision (a part of the history is gone).
        """
        end = self.revision if end_rev <= 0 else min(end_rev, self.revision)
        if start_rev < self.compact_revision:
            raise ErrCompacted()
        start = max(start_rev, 1)
        events: list[Event] = []
        if start > end:
            return events, start
        cur = self._txn.cursor(db=self._keydb)
        stop = rev_to_bytes(end + 1, 0)
        ok = cur.set_range(rev_to_bytes(start, 0))
        last_main = start - 1
        while ok:
            k = cur.key()
            if k >= stop:
                break
            main = main_of(k)
            if limit > 0 and len(events) >= limit and main != last_main:
                return events, main
            last_main = main
            kv = _parse(cur.value())
            if len(k) == MARKED_REV_BYTES_LEN:
                kv.mod_revision = main
                ev_type = DELETE
            else:
                ev_type = PUT
            prev = None
            if prev_kv and (ev_type == DELETE or kv.version > 1):
                prev = self._prev_version(kv.key, main - 1)
            events.append(Event(ev_type, kv, prev))
            ok = cur.next()
        return events, end + 1

    def _prev_version(self, key: bytes, rev: int) -> KeyValue | None:
        if rev < self.compact_revision or rev <= 0:
            return None
        e = key_index.get(self._cursor(), key, key_index.bound(rev + 1))
        if e is None:
            return None
        raw = self._txn.get(key_index.key_bucket_key(e), db=self._keydb)
        return None if raw is None else _parse(raw)

    def hash_kv(self, revision: int = 0) -> HashKVResult:
        """etcd ``HashByRev``: CRC-32 (IEEE, see backend) of ``b"key"`` and every ``key``
        bucket entry with main revision <= ``revision`` (0: current). Raises
        ``ErrCompacted`` if ``0 < revision <= compact_revision``, ``ErrFutureRev`` if
        ``revision`` is beyond the current revision."""
        if 0 < revision <= self.compact_revision:
            raise ErrCompacted()
        if revision > self.revision:
            raise ErrFutureRev()
        rev = revision if revision > 0 else self.revision
        h = zlib.crc32(BUCKET_KEY)
        stop = rev_to_bytes(rev + 1, 0)
        # While a physical compaction is unfinished, hash only what it will keep (etcd's
        # ``keep`` set), so members agree whatever their progress.
        lower = (
            rev_to_bytes(self.compact_revision + 1, 0)
            if self._finished < self.compact_revision
            else b""
        )
        upto = key_index.bound(self.compact_revision + 1)
        icur = self._cursor()
        cur = self._txn.cursor(db=self._keydb)
        if cur.first():
            for k, v in cur.iternext():
                if k >= stop:
                    break
                if k < lower:
                    e = key_index.get(icur, _parse(v).key, upto)
                    if e is None or key_index.key_bucket_key(e) != k:
                        continue
                h = zlib.crc32(v, zlib.crc32(k, h))
        return HashKVResult(h, self.compact_revision, rev)


class _Pending:
    """Revisions of the backend write transaction in progress (rule 3)."""

    __slots__ = ("compact", "finished", "rev", "wtxn")

    def __init__(self, wtxn: WriteTxn, rev: int, compact: int, finished: int) -> None:
        self.wtxn = wtxn
        self.rev = rev
        self.compact = compact
        self.finished = finished


class TxnWrite(ReadView):
    """One etcd write transaction: puts and deletes share one new main revision; ranges see
    the transaction's own writes (etcd ``storeTxnWrite``). Call :meth:`end` once."""

    __slots__ = ("_begin", "_events", "_pending", "_sub", "_wtxn")

    def __init__(self, wtxn: WriteTxn, pending: _Pending) -> None:
        super().__init__(wtxn, own=False, revs=(pending.rev, pending.compact, pending.finished))
        self._wtxn = wtxn
        self._pending = pending
        self._begin = pending.rev
        self._sub = 0
        self._events: list[Event] = []

    def put(
        self,
        key: bytes,
        value: bytes,
        lease: int = 0,
        *,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> KeyValue | None:
        """Write ``key`` at this transaction's revision; returns the previous version (its
        ``lease`` is what the lessor must detach) or None.

        ``ignore_value``/``ignore_lease`` keep the current value/lease and raise
        ``ErrKeyNotFound`` if the key does not exist (etcd's applier checks). Keys longer
        than ``key_index.MAX_KEY_LEN`` raise ``ErrKeyTooLong``. An op that raises writes
        nothing.
        """
        if len(key) > key_index.MAX_KEY_LEN:
            raise ErrKeyTooLong(f"key of {len(key)} bytes")
        main = self._begin + 1
        txn = self._txn
        keydb = self._keydb
        e = txn.get(key, db=self._live)
        prev: KeyValue | None = None
        if e is not None:
            prev = _parse(txn.get(e[:17], db=keydb))
            create = prev.create_revision
            version = prev.version + 1
        else:
            create = main
            version = 1
        if ignore_value or ignore_lease:
            if prev is None:
                raise ErrKeyNotFound()
            if ignore_value:
                value = prev.value
            if ignore_lease:
                lease = prev.lease
        sub = self._sub
        rb = rev_to_bytes(main, sub)
        kv = KeyValue(
            key=key,
            create_revision=create,
            mod_revision=main,
            version=version,
            value=value,
            lease=lease,
        )
        entry = rb + b"\x00"
        txn.put(rb, kv.SerializeToString(), db=keydb, append=True)
        txn.put(key, entry, db=self._idx)
        txn.put(key, entry, db=self._live)
        self._pending.rev = main
        self._sub = sub + 1
        self.revision = main
        self._events.append(Event(PUT, kv, prev))
        return prev

    def delete_range(self, key: bytes, range_end: bytes = b"") -> list[KeyValue]:
        """Delete the live keys of the range (etcd conventions, see :meth:`range`); returns
        the deleted versions in key order (each ``lease`` must be detached)."""
        txn = self._txn
        keydb = self._keydb
        live = self._live
        found = list(key_index.walk_live(self._live_cursor(), key, range_end))
        if not found:
            return []
        main = self._begin + 1
        sub = self._sub
        deleted: list[KeyValue] = []
        events = self._events
        for k, e in found:
            prev = _parse(txn.get(e[:17], db=keydb))
            rb = rev_to_bytes(main, sub)
            tomb = KeyValue(key=k)
            txn.put(rb + b"t", tomb.SerializeToString(), db=keydb, append=True)
            txn.put(k, rb + b"t", db=self._idx)
            txn.delete(k, db=live)
            tomb.mod_revision = main
            events.append(Event(DELETE, tomb, prev))
            deleted.append(prev)
            sub += 1
        self._pending.rev = main
        self._sub = sub
        self.revision = main
        return deleted

    def end(self) -> WriteResult:
        """Finish this write transaction (etcd ``End``): the new revision (or the unchanged
        one) and the changes for the watch hub. Call it even after an op raised: ops that
        succeeded are written (an op that raises writes nothing)."""
        if self._sub == 0:
            return WriteResult(self._begin, [])
        rev = self._begin + 1
        events = self._events
        self._events = []
        self._sub = 0
        self._begin = rev
        return WriteResult(rev, events)


class KVStore:
    """The MVCC store of one member over its :class:`~etcdpy.storage.backend.Backend`.

    Threads: writes (:meth:`write`, :meth:`compact`) on the backend's writer thread; reads
    (:meth:`read`, :meth:`range`, :meth:`hash_kv`) on any thread.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._shared: ReadView | None = None
        self._shared_version = 0
        self._pending: _Pending | None = None
        self._current = self._compact = self._finished = 0
        self.reload()

    @property
    def backend(self) -> Backend:
        return self._backend

    def reload(self) -> None:
        """Re-read the revisions after the backend was replaced under this store (a raft
        snapshot installed, ``server.snapshots``); writer thread, no write in progress."""
        self._pending = None
        with self._backend.read_txn() as r:
            raw = r.unsafe_get(BUCKET_META, META_MVCC_REV)
        cur, comp, fin = _REVS.unpack(raw) if raw else INITIAL_REVS
        self._current = int(cur)
        self._compact = int(comp)
        self._finished = int(fin)

    @property
    def current_revision(self) -> int:
        """The latest committed revision (etcd ``Rev``)."""
        return self._current

    @property
    def compact_revision(self) -> int:
        """The latest committed compaction revision (-1: never compacted, as etcd)."""
        return self._compact

    @property
    def compaction_pending(self) -> bool:
        """True while the physical removal of the last compaction is unfinished. Every
        write batch that touches the store advances it by ``AUTO_COMPACTION_STEP``; an idle
        member should call :meth:`compact_step` (also after a restart)."""
        return self._finished < self._compact

    # --- reads ---------------------------------------------------------------------------------

    def read(self) -> ReadView:
        """A read view at the latest committed revision (close it or use ``with``)."""
        return ReadView(self._backend.read_txn(), own=True)

    def shared_read(self) -> ReadView:
        """A read view at the latest committed revision, kept open and handed out again
        until the backend commits (``Backend.data_version`` grows): between writes, reads
        cost no LMDB transaction of their own (about half of a one-key range's time here).

        For one thread only (the event loop's); never close it: :meth:`drop_shared`
        releases it, and must run before the environment is closed or swapped (a defrag or
        a snapshot install) and after commits, so an old snapshot does not stay pinned."""
        version = self._backend.data_version  # before opening: the view is at least this new
        v = self._shared
        if v is not None:
            if self._shared_version == version:
                return v
            self.drop_shared()
        v = ReadView(self._backend.read_txn(), own=True)
        self._shared, self._shared_version = v, version
        return v

    def drop_shared(self, stale_only: bool = False) -> None:
        """Release :meth:`shared_read`'s view (only if the backend moved past it, with
        ``stale_only``); same thread as ``shared_read``."""
        v = self._shared
        if v is None or (stale_only and self._shared_version == self._backend.data_version):
            return
        self._shared = None
        v.close()

    def range(self, key: bytes, range_end: bytes = b"", **opts: Any) -> RangeResult:
        """One-shot :meth:`ReadView.range` in its own read transaction."""
        with self.read() as v:
            return v.range(key, range_end, **opts)

    def hash_kv(self, revision: int = 0) -> HashKVResult:
        with self.read() as v:
            return v.hash_kv(revision)

    # --- writes --------------------------------------------------------------------------------

    def _pending_for(self, wtxn: WriteTxn) -> _Pending:
        p = self._pending
        if p is not None and p.wtxn is wtxn:
            return p
        p = self._pending = _Pending(wtxn, self._current, self._compact, self._finished)
        start = (self._current, self._compact, self._finished)

        def record() -> None:
            if p.finished < p.compact:
                self._compact_step(wtxn, p, AUTO_COMPACTION_STEP)
            revs = (p.rev, p.compact, p.finished)
            if revs != start:
                wtxn.unsafe_put(BUCKET_META, META_MVCC_REV, _REVS.pack(*revs))

        def committed() -> None:
            self._current = p.rev
            self._compact = p.compact
            self._finished = p.finished
            if self._pending is p:
                self._pending = None

        def aborted() -> None:
            if self._pending is p:
                self._pending = None

        wtxn.before_commit(record)
        wtxn.on_commit(committed)
        wtxn.on_abort(aborted)
        return p

    def pending_revision(self, wtxn: WriteTxn) -> int:
        """The store revision including the writes made so far in ``wtxn`` (the header
        revision of a response produced inside the batch)."""
        return self._pending_for(wtxn).rev

    def write(self, wtxn: WriteTxn) -> TxnWrite:
        """Begin one etcd write transaction inside the backend write transaction ``wtxn``
        (many per ``wtxn``, one after the other; end each with :meth:`TxnWrite.end`)."""
        return TxnWrite(wtxn, self._pending_for(wtxn))

    def compact(self, wtxn: WriteTxn, revision: int, limit: int = COMPACTION_BATCH_LIMIT) -> int:
        """Compact history at ``revision`` inside ``wtxn`` (rule 6). Reads below it fail from
        now on; the physical removal runs here for up to ``limit`` revisions and continues in
        :meth:`compact_step` calls (see :attr:`compaction_pending`). Returns how many
        revisions were removed now. Raises ``ErrCompacted`` if ``revision`` <= the compacted
        revision and ``ErrFutureRev`` if it is beyond the current revision (etcd's order)."""
        p = self._pending_for(wtxn)
        if revision <= p.compact:
            raise ErrCompacted()
        if revision > p.rev:
            raise ErrFutureRev()
        meta = wtxn.db(BUCKET_META)
        txn = wtxn.lmdb
        if p.finished == p.compact:  # no removal in progress: start after the last one
            txn.put(META_COMPACT_CURSOR, rev_to_bytes(p.finished + 1, 0), db=meta)
        # else: an unfinished removal continues from its cursor towards the new target.
        txn.put(META_SCHEDULED_COMPACT_REV, rev_to_bytes(revision, 0), db=meta)
        p.compact = revision
        return self._compact_step(wtxn, p, limit)

    def compact_step(self, wtxn: WriteTxn, limit: int = COMPACTION_BATCH_LIMIT) -> bool:
        """Continue the physical compaction for up to ``limit`` revisions of history;
        True when nothing is left to do."""
        p = self._pending_for(wtxn)
        if p.finished >= p.compact:
            return True
        self._compact_step(wtxn, p, limit)
        return p.finished >= p.compact

    def _compact_step(self, wtxn: WriteTxn, p: _Pending, limit: int) -> int:
        txn = wtxn.lmdb
        keydb = wtxn.db(BUCKET_KEY)
        idx = wtxn.db(BUCKET_KEY_INDEX)
        meta = wtxn.db(BUCKET_META)
        target = p.compact
        start = txn.get(META_COMPACT_CURSOR, db=meta) or rev_to_bytes(p.finished + 1, 0)
        stop = rev_to_bytes(target + 1, 0)
        # Only keys written since the previous compaction can have droppable entries.
        keys: set[bytes] = set()
        cur = txn.cursor(db=keydb)
        ok = cur.set_range(start)
        seen = 0
        resume = stop
        while ok:
            k = cur.key()
            if k >= stop:
                break
            if seen >= limit:
                resume = k
                break
            keys.add(_parse(cur.value()).key)
            seen += 1
            ok = cur.next()
        upto = key_index.bound(target + 1)
        icur = txn.cursor(db=idx)
        removed = 0
        for key in sorted(keys):
            removed += key_index.compact_key(txn, idx, keydb, icur, key, upto)
        if resume >= stop:
            p.finished = target
            txn.delete(META_COMPACT_CURSOR, db=meta)
            txn.put(META_FINISHED_COMPACT_REV, rev_to_bytes(target, 0), db=meta)
        else:
            txn.put(META_COMPACT_CURSOR, resume, db=meta)
        return removed
