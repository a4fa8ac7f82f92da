"""The LMDB MVCC store against a dict-of-revisions model (hypothesis stateful testing).

Every response is compared, including errors: ranges at any revision with limit, count,
keys_only, revision filters and sorting; write results and events; watch-history reads;
compaction; close/reopen; aborted batches; consistent_index written with the data.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from etcdpy.mvcc.errors import (
    ErrCompacted,
    ErrFutureRev,
    ErrKeyNotFound,
    ErrKeyTooLong,
    MvccError,
)
from etcdpy.mvcc.kvstore import KeyValue, KVStore, prefix_end
from etcdpy.storage.backend import Backend
from tests.mvcc.model import KV, Model, ModelError

LONG = b"ab" + b"z" * 600  # longer than LMDB's key limit: refused, but fine as a bound
KEYS = [b"a", b"a\x00", b"ab", b"abc", LONG, b"b", b"ba", b"c", b"\xff", b"\xff\xff"]
keys = st.sampled_from(KEYS)
values = st.sampled_from([b"", b"v1", b"v2", b"x" * 50])
leases = st.sampled_from([0, 0, 7, 9])


@st.composite
def ranges(draw: Any) -> tuple[bytes, bytes]:
    kind = draw(st.sampled_from(["single", "range", "prefix", "from", "all", "all"]))
    k = draw(keys)
    if kind == "single":
        return k, b""
    if kind == "range":
        return k, draw(keys)
    if kind == "prefix":
        p = draw(st.sampled_from([b"a", b"ab", b"b", b"\xff", b"\xff\xff"]))
        return p, prefix_end(p)
    if kind == "from":
        return k, b"\x00"
    return b"\x00", b"\x00"


rare = st.sampled_from([False, False, False, True])
put_ops = st.tuples(st.just("put"), keys, values, leases, rare, rare)
del_ops = ranges().map(lambda r: ("del", r[0], r[1]))
ops = st.lists(st.one_of(put_ops, put_ops, put_ops, put_ops, del_ops), min_size=1, max_size=6)


def t(kv: KeyValue | None) -> KV | None:
    if kv is None:
        return None
    return (kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease)


def err_name(e: Exception) -> str:
    for cls in (ErrCompacted, ErrFutureRev, ErrKeyNotFound, ErrKeyTooLong):
        if isinstance(e, cls):
            return cls.__name__
    raise e


class _Abort(Exception):
    pass


class KVMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="mvcc-model-")
        self.backend = Backend(self.dir, map_size=1 << 26)
        self.kv = KVStore(self.backend)
        self.model = Model()
        self.ci = 0

    def teardown(self) -> None:
        self.backend.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _txn(self, kvs: KVStore, w: Any, txn_ops: list[tuple[Any, ...]]) -> tuple[int, Any]:
        tw = kvs.write(w)
        out: list[object] = []
        for op in txn_ops:
            if op[0] == "put":
                _, key, value, lease, iv, il = op
                try:
                    out.append(t(tw.put(key, value, lease, ignore_value=iv, ignore_lease=il)))
                except (ErrKeyNotFound, ErrKeyTooLong) as e:
                    out.append(err_name(e))
            else:
                out.append([t(kv) for kv in tw.delete_range(op[1], op[2])])
        res = tw.end()
        return res.revision, (out, res.events)

    def _check_txn(self, txn_ops: list[tuple[Any, ...]], got: tuple[int, Any]) -> None:
        before = len(self.model.events)
        rev, want = self.model.txn(txn_ops)
        want = [w.name if isinstance(w, ModelError) else w for w in want]
        got_rev, (got_out, got_events) = got
        assert got_rev == rev
        assert got_out == want
        new = self.model.events[before:]
        assert [(rev, e.type, t(e.kv)) for e in got_events] == [
            (r, ty, kv if ty == 0 else (kv[0], 0, r, 0, b"", 0)) for r, ty, kv in new
        ]
        assert [t(e.prev_kv) for e in got_events] == self.model.prevs[before:]

    @rule(txn_ops=ops)
    def write_txn(self, txn_ops: list[tuple[Any, ...]]) -> None:
        self.ci += 1
        with self.backend.write_txn() as w:
            got = self._txn(self.kv, w, txn_ops)
            w.set_consistent_index(self.ci, 3)
        self._check_txn(txn_ops, got)

    @rule(batch=st.lists(ops, min_size=1, max_size=4), abort=st.booleans())
    def write_batch(self, batch: list[list[tuple[Any, ...]]], abort: bool) -> None:
        """Several etcd txns in one backend txn (the applier's batch), maybe aborted."""
        results = []
        try:
            with self.backend.write_txn() as w:
                for txn_ops in batch:
                    results.append(self._txn(self.kv, w, txn_ops))
                w.set_consistent_index(self.ci + 1, 3)
                if abort:
                    raise RuntimeError("abort")
        except RuntimeError:
            assert abort
            return
        self.ci += 1
        for txn_ops, got in zip(batch, results, strict=True):
            self._check_txn(txn_ops, got)

    @rule(data=st.data(), limit=st.sampled_from([1, 2, 1000]))
    def compact(self, data: st.DataObject, limit: int) -> None:
        r = data.draw(st.integers(min_value=0, max_value=self.model.rev + 1))
        try:
            self.model.do_compact(r)
            want = None
        except ModelError as e:
            want = e.name
        try:
            with self.backend.write_txn() as w:
                self.kv.compact(w, r, limit)
            got = None
        except MvccError as e:
            got = err_name(e)
        assert got == want

    @rule(
        data=st.data(),
        rng=ranges(),
        limit=st.sampled_from([0, 0, 1, 2, 3]),
        count_only=st.booleans(),
        keys_only=st.booleans(),
        filt=st.sampled_from(["none", "none", "minmod", "maxmod", "mincreate", "maxcreate"]),
        sort_order=st.sampled_from([0, 0, 1, 2]),
        sort_target=st.sampled_from([0, 0, 1, 2, 3, 4]),
    )
    def range(
        self,
        data: st.DataObject,
        rng: tuple[bytes, bytes],
        limit: int,
        count_only: bool,
        keys_only: bool,
        filt: str,
        sort_order: int,
        sort_target: int,
    ) -> None:
        m = self.model
        revision = data.draw(
            st.one_of(
                st.just(0),
                st.just(m.rev),
                st.integers(min_value=max(m.compact, 1), max_value=max(m.rev, 1)),
                st.integers(min_value=-1, max_value=m.rev + 1),
            )
        )
        opts: dict[str, Any] = dict(
            revision=revision,
            limit=limit,
            count_only=count_only,
            keys_only=keys_only,
            sort_order=sort_order,
            sort_target=sort_target,
        )
        if filt != "none":
            opts[f"{filt[:3]}_{filt[3:]}_revision"] = data.draw(
                st.integers(min_value=1, max_value=max(1, self.model.rev))
            )
        self._compare_range(rng, opts)

    @rule(
        data=st.data(),
        rng=ranges(),
        limit=st.sampled_from([0, 1, 2, 3]),
        keys_only=st.booleans(),
    )
    def simple_range(
        self, data: st.DataObject, rng: tuple[bytes, bytes], limit: int, keys_only: bool
    ) -> None:
        m = self.model
        revision = data.draw(
            st.one_of(st.just(0), st.integers(min_value=max(m.compact, 1), max_value=max(m.rev, 1)))
        )
        self._compare_range(rng, dict(revision=revision, limit=limit, keys_only=keys_only))

    def _compare_range(self, rng: tuple[bytes, bytes], opts: dict[str, Any]) -> None:
        try:
            want: Any = self.model.range(rng[0], rng[1], **opts)
        except ModelError as e:
            want = e.name
        try:
            r = self.kv.range(rng[0], rng[1], **opts)
            got: Any = ([t(kv) for kv in r.kvs], r.count, r.more, r.revision)
        except MvccError as e:
            got = err_name(e)
        assert got == want

    @rule(data=st.data(), limit=st.sampled_from([0, 1, 3]), prev=st.booleans())
    def history(self, data: st.DataObject, limit: int, prev: bool) -> None:
        """Watch catch-up reads, in chunks, agree with the model's event log."""
        if self.model.rev <= self.model.compact:
            return
        start = data.draw(st.integers(min_value=self.model.compact + 1, max_value=self.model.rev))
        got = []
        nxt = start
        with self.kv.read() as v:
            while True:
                evs, nxt2 = v.changes(nxt, 0, limit, prev_kv=prev)
                if not evs:
                    assert nxt2 == v.revision + 1
                    break
                assert nxt2 > nxt
                got.extend(evs)
                nxt = nxt2
        want = [
            (r, ty, kv if ty == 0 else (kv[0], 0, r, 0, b"", 0))
            for r, ty, kv in self.model.events
            if r >= start
        ]
        assert [(e.kv.mod_revision, e.type, t(e.kv)) for e in got] == want
        if prev:
            for e in got:
                r = e.kv.mod_revision
                if r - 1 < self.model.compact or (e.type == 0 and e.kv.version == 1):
                    assert e.prev_kv is None
                else:
                    assert t(e.prev_kv) == self.model.states[r - 1].get(e.kv.key)

    @rule(limit=st.sampled_from([1, 3]))
    def compact_step(self, limit: int) -> None:
        with self.backend.write_txn() as w:
            done = self.kv.compact_step(w, limit)
        assert done == (not self.kv.compaction_pending)

    @rule(data=st.data())
    def hash_ignores_compaction_progress(self, data: st.DataObject) -> None:
        """hash_kv during an unfinished compaction equals the hash after it finishes."""
        m = self.model
        rev = data.draw(st.sampled_from([0, m.rev, max(m.rev, m.compact + 1)]))
        if rev > m.rev or (0 < rev <= m.compact):
            return
        before = self.kv.hash_kv(rev)
        try:
            with self.backend.write_txn() as w:
                while not self.kv.compact_step(w, 2):
                    pass
                after = self.kv.write(w).hash_kv(rev)
                raise _Abort  # leave the compaction unfinished
        except _Abort:
            pass
        assert after == before

    @rule()
    def reopen(self) -> None:
        self.backend.close()
        self.backend = Backend(self.dir, map_size=1 << 26)
        self.kv = KVStore(self.backend)

    @invariant()
    def revisions_agree(self) -> None:
        assert self.kv.current_revision == self.model.rev
        assert self.kv.compact_revision == self.model.compact
        assert self.backend.consistent_index() == self.ci
        with self.kv.read() as v:
            assert v.revision == self.model.rev
            assert v.compact_revision == self.model.compact


KVMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestKVStoreModel = KVMachine.TestCase
