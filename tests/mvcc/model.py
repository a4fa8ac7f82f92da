"""A deliberately naive MVCC model: one dict of live keys per revision.

Used as the oracle for the LMDB-backed :class:`etcdpy.mvcc.kvstore.KVStore` in property tests.
A key's state is ``(create_revision, mod_revision, version, value, lease)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KV = tuple[bytes, int, int, int, bytes, int]  # key, create, mod, version, value, lease
State = dict[bytes, KV]


class ModelError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def in_range(k: bytes, key: bytes, end: bytes) -> bool:
    if not end:
        return k == key
    if end == b"\x00":
        return k >= key
    return key <= k < end


@dataclass
class Model:
    # states[rev]; a new etcd store is at revision 1 (the first write gets 2)
    states: list[State] = field(default_factory=lambda: [{}, {}])
    events: list[tuple[int, int, KV]] = field(default_factory=list)  # (rev, type, kv)
    prevs: list[KV | None] = field(default_factory=list)  # prev_kv of each event
    compact: int = -1  # never compacted

    @property
    def rev(self) -> int:
        return len(self.states) - 1

    def txn(self, ops: list[tuple[object, ...]]) -> tuple[int, list[object]]:
        """Apply ops of one write txn; returns (revision, per-op results or ModelError)."""
        st = dict(self.states[-1])
        rev = self.rev + 1
        changed = False
        out: list[object] = []
        evs: list[tuple[int, int, KV]] = []
        prevs: list[KV | None] = []
        for op in ops:
            if op[0] == "put":
                _, key, value, lease, ign_v, ign_l = op
                assert isinstance(key, bytes) and isinstance(value, bytes)
                assert isinstance(lease, int)
                prev = st.get(key)
                if len(key) > 511:
                    out.append(ModelError("ErrKeyTooLong"))
                    continue
                if (ign_v or ign_l) and prev is None:
                    out.append(ModelError("ErrKeyNotFound"))
                    continue
                if ign_v:
                    assert prev is not None
                    value = prev[4]
                if ign_l:
                    assert prev is not None
                    lease = prev[5]
                if prev is None:
                    kv = (key, rev, rev, 1, value, lease)
                else:
                    kv = (key, prev[1], rev, prev[3] + 1, value, lease)
                st[key] = kv
                evs.append((rev, 0, kv))
                prevs.append(prev)
                out.append(prev)
                changed = True
            else:
                _, key, end = op
                assert isinstance(key, bytes) and isinstance(end, bytes)
                dels = sorted(k for k in st if in_range(k, key, end))
                deleted = []
                for k in dels:
                    deleted.append(st.pop(k))
                    evs.append((rev, 1, (k, 0, rev, 0, b"", 0)))
                    prevs.append(deleted[-1])
                    changed = True
                out.append(deleted)
        if changed:
            self.states.append(st)
            self.events.extend(evs)
            self.prevs.extend(prevs)
            return rev, out
        return self.rev, out

    def do_compact(self, r: int) -> None:
        if r <= self.compact:
            raise ModelError("ErrCompacted")
        if r > self.rev:
            raise ModelError("ErrFutureRev")
        self.compact = r

    def range(
        self,
        key: bytes,
        end: bytes,
        *,
        revision: int = 0,
        limit: int = 0,
        count_only: bool = False,
        keys_only: bool = False,
        min_mod_revision: int = 0,
        max_mod_revision: int = 0,
        min_create_revision: int = 0,
        max_create_revision: int = 0,
        sort_order: int = 0,
        sort_target: int = 0,
    ) -> tuple[list[KV], int, bool, int]:
        cur = self.rev
        if revision > cur:
            raise ModelError("ErrFutureRev")
        rev = cur if revision <= 0 else revision
        if rev < self.compact:
            raise ModelError("ErrCompacted")
        kvs = sorted(
            (kv for k, kv in self.states[rev].items() if in_range(k, key, end)),
            key=lambda kv: kv[0],
        )
        count = len(kvs)
        if count_only:
            return [], count, False, cur
        if (
            limit > 0
            and not sort_order
            and not (
                min_mod_revision or max_mod_revision or min_create_revision or max_create_revision
            )
        ):
            kvs = kvs[: limit + 1]  # etcd: a sort target without an order sorts only these
        kvs = [
            kv
            for kv in kvs
            if not (max_mod_revision and kv[2] > max_mod_revision)
            and not (min_mod_revision and kv[2] < min_mod_revision)
            and not (max_create_revision and kv[1] > max_create_revision)
            and not (min_create_revision and kv[1] < min_create_revision)
        ]
        order = sort_order
        if sort_target != 0 and order == 0:
            order = 1
        if order != 0:
            idx = {0: 0, 1: 3, 2: 1, 3: 2, 4: 4}[sort_target]
            kvs.sort(key=lambda kv: kv[idx], reverse=order == 2)
        more = False
        if 0 < limit < len(kvs):
            kvs = kvs[:limit]
            more = True
        if keys_only:
            kvs = [(kv[0], kv[1], kv[2], kv[3], b"", kv[5]) for kv in kvs]
        return kvs, count, more, cur
