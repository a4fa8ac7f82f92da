"""WalStore beyond the LogStorage contract: persistence, atomicity, caches, snapshots.

Tests taking ``open_store`` run against both stores: ``WalStore`` (LMDB) and
``SegmentWalStore`` (with small segments, so that they also cross segment boundaries).
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
import pytest

from etcdpy.raft.storage import NO_LIMIT, ErrCompacted, ErrSnapOutOfDate
from etcdpy.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from etcdpy.storage import wal as walmod
from etcdpy.storage.env import LmdbEnv
from etcdpy.storage.layout import FORMAT_VERSION, DataDirLayout, FormatVersionError
from etcdpy.storage.segment_wal import SegmentWalStore
from etcdpy.storage.snap import SnapshotCorruptError, SnapStore
from etcdpy.storage.wal import (
    WalCorruptError,
    WalStore,
    decode_conf_state,
    decode_entry,
    encode_conf_state,
    encode_entry,
)
from etcdpy.util.failpoints import FailpointPanic, Failpoints
from tests.support.threads import with_reader

CS = ConfState(voters=(1, 2, 3))

Opener = Callable[..., Any]


@pytest.fixture(params=["wal", "seg"])
def open_store(request: pytest.FixtureRequest) -> Opener:
    """``open_store(data_dir, **opts)``: ``WalStore.open`` or ``SegmentWalStore.open``."""
    if request.param == "seg":
        return functools.partial(SegmentWalStore.open, segment_size=64 << 10)
    return WalStore.open


def ents(lo: int, hi: int, term: int, size: int = 8) -> list[Entry]:
    return [
        Entry(term=term, index=i, data=i.to_bytes(8, "big") * (size // 8)) for i in range(lo, hi)
    ]


def snap(index: int, term: int, data: bytes = b"payload") -> Snapshot:
    return Snapshot(data=data, metadata=SnapshotMetadata(conf_state=CS, index=index, term=term))


def test_layout_is_under_member_with_a_version(tmp_path: Path) -> None:
    WalStore.open(tmp_path).close()
    layout = DataDirLayout.of(tmp_path)
    assert layout.exists()
    assert layout.read_version() == FORMAT_VERSION
    assert (tmp_path / "member" / "wal" / "data.mdb").is_file()
    assert (tmp_path / "member" / "snap").is_dir()
    assert layout.kv == tmp_path / "member" / "kv"


def test_layout_refuses_other_format_versions(tmp_path: Path) -> None:
    DataDirLayout.of(tmp_path).ensure()
    (tmp_path / "member" / "VERSION").write_text("etcdpy-format 999\n")
    with pytest.raises(FormatVersionError):
        WalStore.open(tmp_path)


def test_env_refuses_another_format(tmp_path: Path) -> None:
    LmdbEnv(tmp_path / "e", format_name="a", format_version=1).close()
    with pytest.raises(FormatVersionError):
        LmdbEnv(tmp_path / "e", format_name="a", format_version=2)
    with pytest.raises(FormatVersionError):
        LmdbEnv(tmp_path / "e", format_name="b", format_version=1)


def test_codecs_round_trip() -> None:
    e = Entry(term=7, index=2**40, type=EntryType.CONF_CHANGE_V2, data=b"\x00\xffdata")
    assert decode_entry(encode_entry(e)) == e
    cs = ConfState(voters=(1, 2**63), learners=(5,), voters_outgoing=(1,), auto_leave=True)
    assert decode_conf_state(encode_conf_state(cs)) == cs
    bad = bytearray(encode_entry(e))
    bad[-1] ^= 1
    with pytest.raises(WalCorruptError):
        decode_entry(bytes(bad))


def test_everything_survives_reopen(tmp_path: Path, open_store: Opener) -> None:
    with open_store(tmp_path) as w:
        w.save(HardState(term=1, vote=1, commit=0), ents(1, 50, 1), None)
        w.save(HardState(term=2, vote=2, commit=40), ents(45, 60, 2), None)
        w.save(HardState(term=3, vote=0, commit=55), ents(60, 70, 3), None)
        w.compact(10)
        w.create_snapshot(20, CS, b"snap20")
        want = list(w.entries(11, 70))
    with open_store(tmp_path) as w:
        assert w.initial_state() == (HardState(term=3, vote=0, commit=55), CS)
        assert w.first_index() == 11
        assert w.last_index() == 69
        assert w.term(10) == 1
        assert [w.term(i) for i in (44, 45, 59, 60, 69)] == [1, 2, 2, 3, 3]
        assert list(w.entries(11, 70)) == want
        assert w.snapshot() == Snapshot(
            data=b"snap20", metadata=SnapshotMetadata(conf_state=CS, index=20, term=1)
        )


def test_reads_beyond_the_tail_cache_come_from_disk(tmp_path: Path, open_store: Opener) -> None:
    n = walmod.TAIL_CACHE_ENTRIES * 2 + 10
    with open_store(tmp_path) as w:
        for lo in range(1, n, 100):
            w.save(HardState(term=lo // 500 + 1), ents(lo, min(lo + 100, n), lo // 500 + 1))
        assert w._state.tail_start > 1
        got = w.entries(1, n)
        assert [e.index for e in got] == list(range(1, n))
        assert [e.term for e in got] == [(e.index - 1) // 500 + 1 for e in got]
        limited = w.entries(3, n, 5 * 24)
        assert [e.index for e in limited] == [3, 4, 5, 6, 7]
    with open_store(tmp_path) as w:
        assert list(w.entries(1, n)) == list(got)
        assert [w.term(i) for i in range(1, n)] == [e.term for e in got]


def test_term_runs_after_many_elections_and_truncations(tmp_path: Path, open_store: Opener) -> None:
    rng = random.Random(7)
    model: list[Entry] = []
    term = 1
    with open_store(tmp_path) as w:
        for _ in range(200):
            term += rng.choice((0, 0, 1, 2))
            start = rng.randint(max(1, len(model) - 5), len(model) + 1)
            new = ents(start, start + rng.randint(1, 8), term)
            w.save(HardState(term=term), new)
            model = model[: start - 1] + new
            assert w.last_index() == len(model)
        assert [w.term(i) for i in range(1, len(model) + 1)] == [e.term for e in model]
    with open_store(tmp_path) as w:
        assert [w.term(i) for i in range(1, len(model) + 1)] == [e.term for e in model]
        assert list(w.entries(1, len(model) + 1)) == model


def test_term_and_vote_never_go_back(tmp_path: Path, open_store: Opener) -> None:
    with open_store(tmp_path) as w:
        w.save(HardState(term=5, vote=2, commit=0))
        with pytest.raises(ValueError):
            w.save(HardState(term=4, vote=2, commit=0))
        with pytest.raises(ValueError):
            w.save(HardState(term=5, vote=3, commit=0))
        w.save(HardState(term=5, vote=2, commit=0))
        w.save(HardState(term=6, vote=0, commit=0))
        assert w.hard_state == HardState(term=6)


def test_failed_save_leaves_nothing(tmp_path: Path, open_store: Opener) -> None:
    with open_store(tmp_path) as w:
        w.save(HardState(term=1), ents(1, 5, 1))
        with pytest.raises(ValueError):
            w.save(HardState(term=1), [*ents(5, 7, 1), *ents(8, 9, 1)])  # a hole
        assert w.last_index() == 4
    with open_store(tmp_path) as w:
        assert w.last_index() == 4


def test_map_grows_when_full(tmp_path: Path) -> None:
    layout = DataDirLayout.of(tmp_path)
    layout.ensure()
    w = WalStore(layout.wal, layout.snap, map_size=1 << 20)
    try:
        w.save(HardState(term=1), ents(1, 1001, 1, size=4096))  # ~4 MB in one txn
        assert w._env.map_size() > 1 << 20
        assert w.entries(1000, 1001)[0].data == (1000).to_bytes(8, "big") * 512
    finally:
        w.close()


def test_snapshot_retention_keeps_newest(tmp_path: Path, open_store: Opener) -> None:
    with open_store(tmp_path, max_snapshots=2) as w:
        w.save(HardState(term=1), ents(1, 20, 1))
        for i in range(2, 12, 2):
            w.create_snapshot(i, CS, b"s%d" % i)
        assert [n.index for n in w.snaps.names()] == [8, 10]
        w.apply_snapshot(snap(30, 2, b"thirty"))
        assert [n.index for n in w.snaps.names()] == [10, 30]
        assert w.snapshot().data == b"thirty"


def test_keep_entries_compacts_after_snapshot(tmp_path: Path, open_store: Opener) -> None:
    with open_store(tmp_path, keep_entries=5) as w:
        w.save(HardState(term=1), ents(1, 31, 1))
        w.create_snapshot(20, CS, b"x")
        assert w.first_index() == 16
        assert w.term(15) == 1
        with pytest.raises(ErrCompacted):
            w.entries(15, 20)


def test_snapshot_streams_in_chunks_and_installs_from_chunks(
    tmp_path: Path, open_store: Opener
) -> None:
    payload = bytes(random.Random(1).randbytes(300_000))
    with open_store(tmp_path / "a") as leader, open_store(tmp_path / "b") as follower:
        leader.save(HardState(term=3), ents(1, 100, 3))
        leader.create_snapshot(90, CS, payload)
        chunks = list(leader.snapshot_chunks(chunk_size=64 * 1024))
        assert len(chunks) == 5
        assert b"".join(chunks) == payload
        meta = leader.snapshot_metadata()
        digest = leader.snaps.sha256(meta.term, meta.index)
        assert digest == hashlib.sha256(payload).digest()

        follower.save(HardState(term=3), ents(1, 10, 3))
        with pytest.raises(SnapshotCorruptError):
            follower.install_snapshot_chunks(meta, iter(chunks[:-1]), expected_sha256=digest)
        assert follower.snaps.names() == []
        assert follower.first_index() == 1
        follower.install_snapshot_chunks(meta, iter(chunks), expected_sha256=digest)
        assert follower.first_index() == 91
        assert follower.snapshot().data == payload
        with pytest.raises(ErrSnapOutOfDate):
            follower.install_snapshot_chunks(meta, iter(chunks))
    with open_store(tmp_path / "b") as follower:
        assert follower.snapshot().data == payload
        assert follower.last_index() == 90


def test_corrupt_snapshot_file_is_detected(tmp_path: Path) -> None:
    store = SnapStore(tmp_path)
    p = store.save(2, 9, b"hello world")
    raw = bytearray(p.read_bytes())
    raw[40] ^= 0x55
    p.write_bytes(bytes(raw))
    with pytest.raises(SnapshotCorruptError):
        store.load(2, 9)
    p.write_bytes(bytes(raw[:-3]))
    with pytest.raises(SnapshotCorruptError):
        store.load(2, 9)


def test_orphan_payloads_newer_than_the_wal_are_removed(tmp_path: Path, open_store: Opener) -> None:
    with open_store(tmp_path) as w:
        w.save(HardState(term=1), ents(1, 10, 1))
        w.create_snapshot(5, CS, b"five")
        w.snaps.save(1, 8, b"orphan")  # as if we crashed before the WAL recorded it
        (w.snaps.dir / "0000000000000001-0000000000000009.snap.tmp").write_bytes(b"x")
    with open_store(tmp_path) as w:
        assert [n.index for n in w.snaps.names()] == [5]
        assert not list(w.snaps.dir.glob("*.tmp"))
        assert w.snapshot().data == b"five"


def test_failpoints_fire_around_save(tmp_path: Path, open_store: Opener) -> None:
    fp = Failpoints("raftAfterSave=1*off->panic;raftBeforeApplySnap=print")
    with open_store(tmp_path, failpoints=fp) as w:
        w.save(HardState(term=1), ents(1, 3, 1))
        with pytest.raises(FailpointPanic):
            w.save(HardState(term=1), ents(3, 5, 1))
        assert w.last_index() == 4  # the panic came after the commit
        fp.disable("raftAfterSave")
        w.apply_snapshot(snap(10, 2))
        assert fp.hits == {"raftAfterSave": 2, "raftBeforeApplySnap": 1}


def test_failpoints_syntax() -> None:
    fp = Failpoints.from_env({"ETCDPY_FAILPOINTS": "a=2*return(x)->off; b=sleep(0)"})
    assert [fp.hit("a"), fp.hit("a"), fp.hit("a")] == ["x", "x", None]
    assert fp.hit("b") is None
    assert fp.hit("unarmed") is None
    with pytest.raises(ValueError):
        Failpoints("a=explode")
    assert not Failpoints.from_env({}).armed()


def test_unsafe_no_fsync_opens_without_sync(tmp_path: Path) -> None:
    with WalStore.open(tmp_path, fsync=False) as w:
        assert w._env.env.flags()["sync"] is False
        w.save(HardState(term=1), ents(1, 4, 1))
    with WalStore.open(tmp_path) as w:
        assert w._env.env.flags()["sync"] is True
        assert w.last_index() == 3


def test_entries_survive_a_reader_in_another_thread(tmp_path: Path, open_store: Opener) -> None:
    with open_store(tmp_path) as w:
        w.save(HardState(term=1), ents(1, 2, 1))

        def read_once() -> None:
            last = w.last_index()
            got = w.entries(1, last + 1, NO_LIMIT)
            assert len(got) >= 1
            assert w.term(last) == 1

        def write() -> None:
            for lo in range(2, 3000, 50):
                w.save(HardState(term=1), ents(lo, lo + 50, 1))

        with_reader(read_once, write)
        assert w.last_index() == 3001


def test_lmdb_is_really_used(tmp_path: Path) -> None:
    """The store is an LMDB env other tools can open (e.g. a dump tool)."""
    WalStore.open(tmp_path).close()
    env = lmdb.open(str(tmp_path / "member" / "wal"), max_dbs=8, readonly=True)
    try:
        with env.begin() as txn:
            assert txn.get(b"entries") is not None
    finally:
        env.close()


def test_writer_thread_runs_jobs_in_order_on_one_thread(tmp_path: Path, open_store: Opener) -> None:
    import threading

    from etcdpy.storage.env import WriterThread

    wt = WriterThread("wal-writer")
    try:
        with open_store(tmp_path) as w:
            futs = [
                wt.submit(w.save, HardState(term=1), ents(lo, lo + 10, 1), None)
                for lo in range(1, 101, 10)
            ]
            for f in futs:
                f.result(timeout=30)
            assert w.last_index() == 100
            assert wt.submit(wt.on_thread).result(timeout=30)
            assert not wt.on_thread()
            names = {wt.submit(lambda: threading.current_thread().name).result() for _ in range(3)}
            assert len(names) == 1
    finally:
        wt.shutdown()


def test_matches_memory_storage_over_a_long_workload(tmp_path: Path, open_store: Opener) -> None:
    """The crash tests' workload, without crashes, checked step by step against the twin."""
    from tests.storage.crash_writer import apply, fingerprint, workload

    w = open_store(tmp_path, max_snapshots=3)
    try:
        for i, (op, model) in enumerate(workload(5)):
            if i >= 400:
                break
            apply(w, op)
            assert w.last_index() == model.last_index()
            assert w.first_index() == model.first_index()
            if i % 40 == 0:
                assert fingerprint(w) == fingerprint(model), i
                w.close()
                w = open_store(tmp_path, max_snapshots=3)
                assert fingerprint(w) == fingerprint(model), i
        assert len(w.snaps.names()) <= 3
    finally:
        w.close()


def test_map_grows_while_another_thread_reads(tmp_path: Path) -> None:
    import threading

    layout = DataDirLayout.of(tmp_path)
    layout.ensure()
    w = WalStore(layout.wal, layout.snap, map_size=1 << 20)
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                last = w.last_index()
                if last:
                    assert w.entries(1, min(last, 50) + 1)[0].index == 1
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for lo in range(1, 3001, 300):
            w.save(HardState(term=1), ents(lo, lo + 300, 1, size=2048))
    finally:
        stop.set()
        t.join(timeout=10)
        size = w._env.map_size()
        w.close()
    assert not errors
    assert size >= 8 << 20


def test_a_data_dir_is_opened_by_one_store_at_a_time(tmp_path: Path, open_store: Opener) -> None:
    from etcdpy.storage.env import DirLockedError

    w = open_store(tmp_path)
    try:
        with pytest.raises(DirLockedError):
            open_store(tmp_path)
    finally:
        w.close()
    open_store(tmp_path).close()


def _view_entries(st: walmod._LogState) -> list[tuple[int, int]]:
    """(index, term) of what a view shows of its tail."""
    part = st.tail[: st.last_index - st.tail_start + 1]
    return [(e.index, e.term) for e in part]


def test_views_keep_their_tail_while_later_saves_extend_or_replace_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Saves extend the tail list in place; a view taken earlier still reads exactly its
    own entries, through appends, a conflict replacement, a failed save's plan and the
    trim that bounds the list."""
    monkeypatch.setattr(walmod, "TAIL_CACHE_ENTRIES", 4)
    st = walmod._LogState(0, 0, 0, (0,), (0,), HardState(), SnapshotMetadata(), 1, ())

    def save(view: walmod._LogState, first: int, n: int, term: int) -> walmod._LogState:
        ents = [Entry(term=term, index=i, data=b"%d" % i) for i in range(first, first + n)]
        plan = walmod.plan_commit(view, HardState(), ents, None)
        assert plan is not None
        return plan.state

    v1 = save(st, 1, 3, 1)
    v2 = save(v1, 4, 2, 1)
    assert v2.tail is v1.tail  # extended in place, nothing copied
    v3 = save(v2, 5, 2, 2)  # replaces entry 5: a new list
    assert v3.tail is not v2.tail
    save(v3, 7, 1, 2)  # planned, then "failed": the list grew past v3's view
    v4 = save(v3, 7, 2, 2)
    v5 = save(v4, 9, 5, 2)  # longer than twice the cache: trimmed to the last 4
    assert _view_entries(v1) == [(1, 1), (2, 1), (3, 1)]
    assert _view_entries(v2) == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]
    assert _view_entries(v3) == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 2), (6, 2)]
    assert _view_entries(v4)[-4:] == [(5, 2), (6, 2), (7, 2), (8, 2)]
    assert v5.tail_start == 10 and _view_entries(v5) == [(i, 2) for i in range(10, 14)]


@pytest.mark.parametrize("fsync", [True, False])
def test_observer_hears_every_durable_write(
    tmp_path: Path, open_store: Opener, fsync: bool
) -> None:
    """One call per save that writes: bytes written and the flush's seconds (None when
    ``fsync=False``); a save that changes nothing writes nothing."""
    heard: list[tuple[int, float | None]] = []
    with open_store(tmp_path, fsync=fsync) as w:
        w.observer = lambda n, took: heard.append((n, took))
        w.save(HardState(term=1), ents(1, 4, 1, size=64))
        w.save(HardState(term=1), ents(4, 5, 1, size=64))
        w.save(HardState(term=1), ())  # unchanged: no write
    assert len(heard) == 2
    assert all(n >= 64 for n, _ in heard) and heard[0][0] > heard[1][0]
    assert all((took is not None and took >= 0) if fsync else took is None for _, took in heard)
