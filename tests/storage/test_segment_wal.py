"""SegmentWalStore's own format: segments, torn tails, the CRC chain, compaction, scale.

The shared behaviour (the LogStorage contract, WalStore's tests, the SIGKILL crash tests)
runs against both stores elsewhere; these tests look at the files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from etcdpy.raft.storage import NO_LIMIT, ErrCompacted
from etcdpy.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from etcdpy.storage.layout import DataDirLayout
from etcdpy.storage.segment_wal import (
    _ENTRY,
    SegmentWalStore,
    is_segment_wal_dir,
    open_wal,
)
from etcdpy.storage.wal import WalCorruptError, WalStore, encode_entry
from tests.storage.crash_writer import fingerprint
from tests.support.threads import with_reader

CS = ConfState(voters=(1, 2, 3))
SMALL = 4096


def ents(lo: int, hi: int, term: int, size: int = 40) -> list[Entry]:
    return [Entry(term=term, index=i, data=bytes([i % 251]) * size) for i in range(lo, hi)]


def segs(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "member" / "wal").glob("*.seg"))


def open_small(data_dir: Path, **opts: Any) -> SegmentWalStore:
    return SegmentWalStore.open(data_dir, segment_size=SMALL, **opts)


def fill(w: SegmentWalStore, lo: int, hi: int, term: int = 1, step: int = 5) -> None:
    for i in range(lo, hi, step):
        w.save(HardState(term=term, vote=term, commit=i - 1), ents(i, min(i + step, hi), term))


def test_segments_roll_over_and_reopen_to_the_same_state(tmp_path: Path) -> None:
    with open_small(tmp_path) as w:
        fill(w, 1, 400)
        w.save(HardState(term=2, vote=2, commit=300), ents(390, 420, 2))  # truncation
        w.create_snapshot(100, CS, b"snap")
        want = fingerprint(w)
    files = segs(tmp_path)
    assert len(files) > 5
    seqs = [int(p.name.split("-")[0], 16) for p in files]
    assert seqs == list(range(1, len(files) + 1))
    firsts = [int(p.stem.split("-")[1], 16) for p in files]
    assert firsts == sorted(firsts) and firsts[0] == 1
    for p in files[:-1]:  # cut segments end at their last record
        assert p.stat().st_size <= SMALL
    assert files[-1].stat().st_size == SMALL  # the current one is preallocated
    with open_small(tmp_path) as w:
        assert fingerprint(w) == want
        assert w.term(389) == 1 and w.term(390) == 2
        fill(w, 420, 500, term=2)  # writing resumes in the last segment
        want = fingerprint(w)
    with SegmentWalStore.open(tmp_path) as w:  # the segment size is not part of the format
        assert fingerprint(w) == want


def test_a_batch_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    with open_small(tmp_path) as w:
        fill(w, 1, 20)
        w.save(HardState(term=1, vote=1), ents(20, 40, 1, size=1000))
        w.save(HardState(term=1, vote=1), ents(40, 42, 1))
        want = fingerprint(w)
    assert len(segs(tmp_path)) == 3
    with open_small(tmp_path) as w:
        assert fingerprint(w) == want


def _last_batch(tmp_path: Path) -> tuple[Path, int, int, list[str]]:
    """A store with a few saves; (segment, start and end of the last batch, fingerprints)."""
    fps = []
    with SegmentWalStore.open(tmp_path, segment_size=1 << 16) as w:
        fill(w, 1, 11)
        fps.append(fingerprint(w))
        start = w._end
        w.save(HardState(term=2, vote=3, commit=9), ents(9, 13, 2))
        end = w._end
        fps.append(fingerprint(w))
    (seg,) = segs(tmp_path)
    return seg, start, end, fps


def test_a_torn_last_batch_is_dropped_at_every_byte(tmp_path: Path) -> None:
    seg, start, end, (before, after) = _last_batch(tmp_path)
    orig = seg.read_bytes()
    fd = os.open(seg, os.O_RDWR)
    try:
        for cut in range(start, end + 1):
            os.pwrite(fd, bytes(end - cut), cut)  # the write reached only [start, cut)
            with SegmentWalStore.open(tmp_path) as w:
                assert fingerprint(w) == (after if cut == end else before), cut
            os.pwrite(fd, orig[cut:end], cut)
    finally:
        os.close(fd)
    with SegmentWalStore.open(tmp_path) as w:
        assert fingerprint(w) == after


def test_a_file_cut_short_is_a_torn_tail_too(tmp_path: Path) -> None:
    seg, start, end, (before, after) = _last_batch(tmp_path)
    orig = seg.read_bytes()
    for cut in range(start, end + 1, 3):
        seg.write_bytes(orig[:cut])
        with SegmentWalStore.open(tmp_path) as w:
            assert fingerprint(w) == (after if cut == end else before), cut
        seg.write_bytes(orig)


def test_a_flipped_byte_in_the_last_batch_drops_it(tmp_path: Path) -> None:
    seg, start, end, (before, _) = _last_batch(tmp_path)
    orig = seg.read_bytes()
    fd = os.open(seg, os.O_RDWR)
    try:
        for at in range(start, end):
            os.pwrite(fd, bytes([orig[at] ^ 0x40]), at)
            with SegmentWalStore.open(tmp_path) as w:
                assert fingerprint(w) == before, at
            os.pwrite(fd, orig[at : at + 1], at)
    finally:
        os.close(fd)


def test_stale_records_after_a_shorter_rewrite_are_not_replayed(tmp_path: Path) -> None:
    """The CRC chain case: B1 = [e10, e11, hs, commit] was torn (e10 never reached the
    disk, the rest did); after the restart B2 = [e10', commit] has exactly e10's length, so
    B1's e11, hs and commit follow it intact. Each is a well-formed record, but seeded by
    B1's e10: the chain stops replay there."""
    with SegmentWalStore.open(tmp_path, segment_size=1 << 16) as w:
        fill(w, 1, 10)
        base = fingerprint(w)
        start = w._end
        w.save(HardState(term=1, vote=1, commit=10), [*ents(10, 11, 1, 12), *ents(11, 12, 1)])
        end = w._end
    (seg,) = segs(tmp_path)
    b1 = seg.read_bytes()[start:end]
    with open(seg, "r+b") as f:  # e10's record (9 + 21 + 12 bytes) never reached the disk
        f.seek(start)
        f.write(bytes(42))
    with SegmentWalStore.open(tmp_path, segment_size=1 << 16) as w:
        assert fingerprint(w) == base
        assert w._end == start
        e10 = Entry(term=1, index=10, data=b"new")
        w.save(HardState(), [e10])
        assert w._end == start + 42
    raw = seg.read_bytes()
    assert raw[start + 42 : end] == b1[42:]  # B1's tail is there, byte for byte
    with SegmentWalStore.open(tmp_path) as w:
        assert w.last_index() == 10
        assert list(w.entries(10, 11)) == [e10]
        assert w.hard_state == HardState(term=1, vote=1, commit=5)


def _three_segments(tmp_path: Path) -> list[Path]:
    with open_small(tmp_path) as w:
        fill(w, 1, 200)
    files = segs(tmp_path)
    assert len(files) >= 3
    return files


def test_a_corrupt_middle_segment_is_an_error(tmp_path: Path) -> None:
    files = _three_segments(tmp_path)
    raw = bytearray(files[1].read_bytes())
    raw[len(raw) // 2] ^= 1
    files[1].write_bytes(bytes(raw))
    with pytest.raises(WalCorruptError):
        SegmentWalStore.open(tmp_path)


def test_a_middle_segment_cut_short_is_an_error(tmp_path: Path) -> None:
    files = _three_segments(tmp_path)
    raw = files[1].read_bytes()
    files[1].write_bytes(raw[:-5])
    with pytest.raises(WalCorruptError):
        SegmentWalStore.open(tmp_path)


def test_a_missing_segment_is_an_error(tmp_path: Path) -> None:
    files = _three_segments(tmp_path)
    files[1].unlink()
    with pytest.raises(WalCorruptError, match="missing"):
        SegmentWalStore.open(tmp_path)


def test_a_missing_first_segment_is_an_error(tmp_path: Path) -> None:
    files = _three_segments(tmp_path)
    files[0].unlink()  # its entries were never compacted away
    with pytest.raises(WalCorruptError, match="missing"):
        SegmentWalStore.open(tmp_path)


def test_a_hole_in_the_indices_is_an_error(tmp_path: Path) -> None:
    with open_small(tmp_path) as w:
        fill(w, 1, 30)
        w._write([(_ENTRY, encode_entry(Entry(term=1, index=35, data=b"x")))])  # no 30..34
    with pytest.raises(WalCorruptError, match="hole"):
        open_small(tmp_path)


def test_a_leftover_temp_segment_is_ignored(tmp_path: Path) -> None:
    with open_small(tmp_path) as w:
        fill(w, 1, 30)
        want = fingerprint(w)
    (tmp_path / "member" / "wal" / "0000000000000002-000000000000001e.seg.tmp").write_bytes(
        b"half a cut"
    )
    with open_small(tmp_path) as w:
        assert fingerprint(w) == want
    assert not list((tmp_path / "member" / "wal").glob("*.tmp"))


def test_compaction_deletes_old_segments_and_survives_reopen(tmp_path: Path) -> None:
    with open_small(tmp_path) as w:
        fill(w, 1, 600)
        n = len(segs(tmp_path))
        w.compact(300)
        assert len(segs(tmp_path)) < n
        assert w.first_index() == 301 and w.term(300) == 1
        want = fingerprint(w)
        # the segment holding entry 301 and everything after it are kept
        assert int(segs(tmp_path)[0].stem.split("-")[1], 16) <= 301
    with open_small(tmp_path) as w:
        assert fingerprint(w) == want
        assert list(w.entries(301, 600)) == ents(301, 600, 1)
        w.compact(599)  # everything: only the current segment stays
        assert len(segs(tmp_path)) == 1
        fill(w, 600, 700)
        want = fingerprint(w)
    with open_small(tmp_path) as w:
        assert fingerprint(w) == want


def test_compaction_below_a_truncation_that_crossed_segments(tmp_path: Path) -> None:
    """Entries of the deleted segment were partly replaced from the next one on: the
    header's last index is stale, the rewrite and the compaction record must settle it."""
    with open_small(tmp_path) as w:
        fill(w, 1, 120)
        first_of_2 = int(segs(tmp_path)[1].stem.split("-")[1], 16)
        while len(segs(tmp_path)) < 3:
            last = w.last_index()
            w.save(HardState(term=1, vote=1), ents(last + 1, last + 6, 1))
        # a new leader rewrites from inside segment 1's range, in the last segment
        w.save(HardState(term=2, vote=2), ents(first_of_2 - 5, first_of_2 + 3, 2))
        w.compact(first_of_2 - 3)
        want = fingerprint(w)
        assert segs(tmp_path)[0].name.startswith("0000000000000003")
    with open_small(tmp_path) as w:
        assert fingerprint(w) == want
        assert w.term(first_of_2 - 3) == 2


def test_snapshot_install_drops_the_log_and_its_segments(tmp_path: Path) -> None:
    with open_small(tmp_path) as w:
        fill(w, 1, 300)
        snap = Snapshot(data=b"s", metadata=SnapshotMetadata(conf_state=CS, index=500, term=3))
        w.save(HardState(term=3, vote=0, commit=500), ents(501, 504, 3), snap)
        assert len(segs(tmp_path)) == 1
        assert (w.first_index(), w.last_index()) == (501, 503)
        want = fingerprint(w)
    with open_small(tmp_path) as w:
        assert fingerprint(w) == want
        assert w.snapshot() == snap


def test_one_pwrite_and_one_fdatasync_per_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def spy(name: str) -> None:
        real = getattr(os, name)

        def call(*args: Any) -> Any:
            calls.append(name)
            return real(*args)

        monkeypatch.setattr(os, name, call)

    with SegmentWalStore.open(tmp_path / "a") as w, open_small(tmp_path / "b", fsync=False) as u:
        for name in ("pwrite", "fdatasync", "fsync", "fstat", "lseek", "write", "writev"):
            spy(name)
        w.save(HardState(term=1, vote=1), ents(1, 50, 1))
        w.save(HardState(term=1, vote=1, commit=49))
        assert calls == ["pwrite", "fdatasync"] * 2
        calls.clear()
        fill(u, 1, 300)  # --unsafe-no-fsync: no sync at all, not even at a segment cut
        u.compact(200)
        assert len(segs(tmp_path / "b")) > 1
        assert set(calls) == {"pwrite"}


def test_open_wal_picks_the_store_by_what_the_dir_holds(tmp_path: Path) -> None:
    with open_wal(tmp_path / "new") as w:
        assert isinstance(w, SegmentWalStore)
        w.save(HardState(term=1), ents(1, 3, 1))
    assert is_segment_wal_dir(DataDirLayout.of(tmp_path / "new").wal)
    with open_wal(tmp_path / "new") as w:
        assert isinstance(w, SegmentWalStore) and w.last_index() == 2
    with WalStore.open(tmp_path / "old") as lw:
        lw.save(HardState(term=1), ents(1, 4, 1))
    with open_wal(tmp_path / "old") as w:
        assert isinstance(w, WalStore) and w.last_index() == 3
    with pytest.raises(WalCorruptError):
        SegmentWalStore.open(tmp_path / "old")
    with pytest.raises(WalCorruptError):
        WalStore.open(tmp_path / "new")
    with open_wal(tmp_path / "d", wal_dir=tmp_path / "elsewhere") as w:
        assert isinstance(w, SegmentWalStore)
    assert is_segment_wal_dir(tmp_path / "elsewhere")


def test_readers_meet_compaction_with_err_compacted_only(tmp_path: Path) -> None:
    with open_small(tmp_path, fsync=False) as w:
        fill(w, 1, 1000, step=50)
        reads = [0]

        def read_once() -> None:
            lo = w.first_index()
            try:
                got = w.entries(lo, lo + 200, NO_LIMIT)
            except ErrCompacted:
                return
            assert [e.index for e in got] == list(range(lo, lo + 200))
            reads[0] += 1

        def write() -> None:
            for i in range(10, 500, 10):
                w.compact(i)
                last = w.last_index()
                w.save(HardState(term=1, vote=1), ents(last + 1, last + 11, 1))

        with_reader(read_once, write)
        assert reads[0] > 0


@pytest.mark.timeout(120)
def test_100k_entries_reopen_and_old_reads_come_from_disk(tmp_path: Path) -> None:
    n = 100_000

    def want_term(i: int) -> int:  # the term of the batch of 1000 holding entry i
        return ((i - 1) // 1000 * 1000 + 1) // 20_000 + 1

    with SegmentWalStore.open(tmp_path, segment_size=1 << 20) as w:
        for lo in range(1, n + 1, 1000):
            w.save(HardState(term=lo // 20_000 + 1), ents(lo, lo + 1000, lo // 20_000 + 1, 16))
        want = fingerprint(w)
    assert len(segs(tmp_path)) > 3
    t0 = time.perf_counter()
    w = SegmentWalStore.open(tmp_path, segment_size=1 << 20)
    took = time.perf_counter() - t0
    try:
        print(f"reopen of {n} entries: {took * 1e3:.0f} ms")
        assert w._index.pos.typecode == "Q" and len(w._index.pos) == n
        assert fingerprint(w) == want
        for lo in (1, 777, 33_333, 99_000 - 1024):
            got = w.entries(lo, lo + 300)
            assert [(e.index, e.term) for e in got] == [
                (i, want_term(i)) for i in range(lo, lo + 300)
            ]
            assert [e.data for e in got] == [bytes([i % 251]) * 16 for i in range(lo, lo + 300)]
        assert [e.index for e in w.entries(1, n + 1, 1000)] == list(range(1, 1000 // 32 + 1))
    finally:
        w.close()
