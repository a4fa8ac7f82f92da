"""The MVCC key index, kept in LMDB (etcd's ``treeIndex``/``keyIndex``, but on disk).

Layout: the ``key_index`` bucket is a DUPSORT/DUPFIXED database. Its keys are the user keys
(LMDB's byte order = etcd's ``bytes.Compare``); the sorted duplicate values of a key are its
revisions, each an 18-byte *index entry*::

    rev17 (8-byte BE main, b"_", 8-byte BE sub) + flag   flag = 0x00 put, b"t" tombstone

so a key's entries are in revision order and ``entry < bound(R + 1)`` means "main <= R".

Rules:

1. A read at revision R is a cursor seek per key: the key's latest entry with main <= R; the
   key exists at R iff that entry is a put (etcd: the generation containing R is not ended).
2. Generations are implicit: a tombstone ends one; the next put starts a new one with
   ``create_revision = its revision`` and ``version = 1`` (computed by the store from the
   previous KeyValue, which records ``create_revision`` and ``version``).
3. Compaction at R keeps, per key, only its latest entry with main <= R, and drops it too when
   it is a tombstone (etcd ``keyIndex.compact``); entries after R are untouched.
4. The ``key_live`` bucket maps every key live *now* to its latest (put) entry. It is
   redundant with rule 1 but makes the common case — reads at the current revision, counts,
   and the store's own "previous version" lookups — one plain cursor walk or one get.
5. Nothing here is cached in Python: restart is instant and RSS does not grow with the keys.

LMDB limits keys to 511 bytes, so user keys longer than :data:`MAX_KEY_LEN` are refused.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import islice
from typing import Any

from etcdpy.mvcc.revision import rev_to_bytes

ENTRY_LEN = 18
FLAG_PUT = 0x00
FLAG_TOMBSTONE = 0x74
#: LMDB's compile-time maximum key size.
MAX_KEY_LEN = 511

#: ``range_end`` meaning "every key >= key" (etcd's ``\x00``).
RANGE_END_ALL = b"\x00"


def put_entry(main: int, sub: int) -> bytes:
    """Index entry of a put at ``(main, sub)``."""
    return rev_to_bytes(main, sub) + b"\x00"


def tombstone_entry(main: int, sub: int) -> bytes:
    """Index entry of a deletion at ``(main, sub)``."""
    return rev_to_bytes(main, sub) + b"t"


def bound(main: int) -> bytes:
    """The smallest entry with this main revision: ``e < bound(R + 1)`` ⟺ ``e.main <= R``."""
    return rev_to_bytes(main, 0) + b"\x00"


def key_bucket_key(entry: bytes) -> bytes:
    """The ``key`` bucket key of an index entry (17 bytes, or 18 with etcd's tombstone mark)."""
    return entry if entry[17] == FLAG_TOMBSTONE else entry[:17]


def seek(cur: Any, key: bytes) -> bool:
    """``cur.set_range(key)`` that also accepts keys longer than LMDB's limit (no stored key
    can equal one, so the first key after it is the first stored key > it)."""
    if len(key) <= MAX_KEY_LEN:
        return bool(cur.set_range(key))
    if not cur.set_range(key[:MAX_KEY_LEN]):
        return False
    if cur.key() < key:
        return bool(cur.next_nodup())
    return True


def set_key(cur: Any, key: bytes) -> bool:
    """``cur.set_key(key)``; False for keys too long to be stored."""
    return len(key) <= MAX_KEY_LEN and bool(cur.set_key(key))


def entry_at(cur: Any, key: bytes, upto: bytes | None) -> bytes | None:
    """The entry of ``key`` visible below ``upto`` (None: the latest one), or None.

    ``cur`` must be positioned on the *first* entry of ``key``; it is left on an entry of
    ``key``, so ``cur.next_nodup()`` moves to the next key.
    """
    if upto is None:
        cur.last_dup()
        return bytes(cur.value())
    first = cur.value()
    if first >= upto:
        return None
    cur.last_dup()
    last = cur.value()
    if last < upto:
        return bytes(last)
    # Some entry >= upto exists, and the first is < upto: seek, then step back once.
    cur.set_range_dup(key, upto)
    cur.prev_dup()
    return bytes(cur.value())


def latest_entry(cur: Any, key: bytes) -> bytes | None:
    """The newest entry of ``key`` (put or tombstone) or None if the key has none."""
    if not set_key(cur, key):
        return None
    cur.last_dup()
    return bytes(cur.value())


def get(cur: Any, key: bytes, upto: bytes | None) -> bytes | None:
    """The put entry of ``key`` live below ``upto`` (None: now), or None."""
    if not set_key(cur, key):
        return None
    e = entry_at(cur, key, upto)
    if e is None or e[17] != FLAG_PUT:
        return None
    return e


def walk(cur: Any, key: bytes, end: bytes, upto: bytes | None) -> Iterator[tuple[bytes, bytes]]:
    """``(key, put entry)`` of every key in ``[key, end)`` live below ``upto``, in key order.

    etcd's conventions: ``end == b""`` is the single ``key``; ``end == b"\\x00"`` is every key
    ``>= key``; an ``end <= key`` selects nothing.
    """
    if not end:
        e = get(cur, key, upto)
        if e is not None:
            yield key, e
        return
    unbounded = end == RANGE_END_ALL
    ok = seek(cur, key)
    while ok:
        k = cur.key()
        if not unbounded and k >= end:
            return
        e = entry_at(cur, k, upto)
        if e is not None and e[17] == FLAG_PUT:
            yield k, e
        ok = cur.next_nodup()


def count(cur: Any, key: bytes, end: bytes, upto: bytes | None) -> int:
    """How many keys of the range are live below ``upto`` (no value is read)."""
    n = 0
    for _ in walk(cur, key, end, upto):
        n += 1
    return n


def walk_live(cur: Any, key: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Like :func:`walk` at the current revision, over a ``key_live`` cursor."""
    if not end:
        if set_key(cur, key):
            yield key, cur.value()
        return
    if not seek(cur, key):
        return
    if end == RANGE_END_ALL:
        yield from cur.iternext()
        return
    for k, e in cur.iternext():
        if k >= end:
            return
        yield k, e


def live_entries(cur: Any, key: bytes, end: bytes, cap: int = 0) -> list[bytes]:
    """The ``key`` bucket keys (17 bytes) of the first ``cap`` (0: all) live keys of the
    range, in key order, over a ``key_live`` cursor: :func:`walk_live` without a Python
    object per key beyond the result (the hot path of big ranges)."""
    if not end:
        return [cur.value()[:17]] if set_key(cur, key) else []
    if not seek(cur, key):
        return []
    out: list[bytes] = []
    ap = out.append
    if end == RANGE_END_ALL:
        it = cur.iternext(keys=False)
        for e in islice(it, cap) if cap > 0 else it:
            ap(e[:17])
        return out
    it = cur.iternext()
    for k, e in islice(it, cap) if cap > 0 else it:
        if k >= end:
            break
        ap(e[:17])
    return out


def count_live(cur: Any, key: bytes, end: bytes, cap: int = 0) -> int:
    """:func:`count` at the current revision, over a ``key_live`` cursor (keys only);
    counts at most ``cap`` keys when ``cap`` > 0.

    Keys are read in growing chunks, each one ``islice`` in C and cut at ``end`` by one
    ``bisect``: a Python step per key was most of the cost of counting a big range (every
    page of a paginated list counts its whole range)."""
    if not end:
        return 1 if set_key(cur, key) else 0
    if not seek(cur, key):
        return 0
    it = cur.iternext(values=False)
    if cap > 0:
        it = islice(it, cap)
    n = 0
    size = _FIRST_COUNT_CHUNK
    while True:
        chunk = list(islice(it, size))
        if end != RANGE_END_ALL and chunk and chunk[-1] >= end:
            return n + bisect_left(chunk, end)
        n += len(chunk)
        if len(chunk) < size:
            return n
        size = min(size * 4, _MAX_COUNT_CHUNK)


#: Chunk sizes of :func:`count_live`: a small range reads a few keys past its end at most.
_FIRST_COUNT_CHUNK = 16
_MAX_COUNT_CHUNK = 4096


def compact_key(txn: Any, index_db: Any, key_db: Any, cur: Any, key: bytes, upto: bytes) -> int:
    """Apply rule 3 to ``key`` for entries below ``upto``; returns revisions removed."""
    if not set_key(cur, key):
        return 0
    below: list[bytes] = []
    for e in cur.iternext_dup():
        if e >= upto:
            break
        below.append(bytes(e))
    if not below:
        return 0
    drop = below if below[-1][17] == FLAG_TOMBSTONE else below[:-1]
    for e in drop:
        txn.delete(key, e, db=index_db)
        txn.delete(key_bucket_key(e), db=key_db)
    return len(drop)
