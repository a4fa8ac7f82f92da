"""WAL benchmark: durable appends per second next to the disk's raw fsync latency.

    python benchmarks/storage_bench.py [--dir DIR] [--seconds 2] [--entry-size 256]

For batch sizes 1, 16 and 256 it calls ``WalStore.save(hard_state, entries)`` in a loop (one
LMDB write transaction, committed durably, per call: what one raft Ready costs) and reports
entries/s, MB/s and the commit latency. Variants: LMDB's default (``sync`` + ``metasync``:
one flush of the data pages, one of the meta page), ``metasync=False`` (one flush; a crash
of the machine may undo the last commit), ``--unsafe-no-fsync`` and ``segments``
(``SegmentWalStore``: one pwrite + one fdatasync per save). The raw figure is
``os.fdatasync`` after a small append to a file in the same directory. Results go to
``benchmarks/results/storage.json``; nothing here is a pass/fail assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from etcdpy.raft.types import Entry, HardState
from etcdpy.storage.env import WriterThread
from etcdpy.storage.segment_wal import SegmentWalStore
from etcdpy.storage.wal import WalStore, decode_entry, encode_entry

RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"
BATCHES = (1, 16, 256)


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


class RawFsync:
    """A small append + ``os.fdatasync``: the floor under any durable commit here."""

    def __init__(self, directory: Path, size: int) -> None:
        self.path = directory / "raw-fsync.bin"
        self.buf = os.urandom(size)
        self.lat: list[float] = []
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def run(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            os.write(self.fd, self.buf)
            os.fdatasync(self.fd)
            self.lat.append(time.perf_counter() - t0)

    def close(self) -> dict[str, Any]:
        os.close(self.fd)
        self.path.unlink()
        lat = self.lat
        return {
            "ops": len(lat),
            "ops_per_s": len(lat) / sum(lat),
            "lat_ms_p50": _pct(lat, 0.5) * 1e3,
            "lat_ms_p99": _pct(lat, 0.99) * 1e3,
            "lat_ms_mean": statistics.fmean(lat) * 1e3,
        }


class WalAppend:
    """``WalStore.save`` of ``batch`` entries per call, as the raft driver does per Ready."""

    def __init__(self, directory: Path, batch: int, entry_size: int, **opts: Any) -> None:
        self.data_dir = Path(tempfile.mkdtemp(dir=directory))
        self.batch = batch
        self.entry_size = entry_size
        self.payload = os.urandom(entry_size)
        self.lat: list[float] = []
        self.index = 1
        store = opts.pop("store", "lmdb")
        self.store: WalStore | SegmentWalStore = (
            SegmentWalStore.open(self.data_dir, **opts)
            if store == "segment"
            else WalStore.open(self.data_dir, **opts)
        )

    def run(self, seconds: float) -> None:
        w, batch, payload = self.store, self.batch, self.payload
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            i = self.index
            ents = [Entry(term=1, index=j, data=payload) for j in range(i, i + batch)]
            hs = HardState(term=1, vote=1, commit=i - 1)
            t0 = time.perf_counter()
            w.save(hs, ents, None)
            self.lat.append(time.perf_counter() - t0)
            self.index = i + batch

    def close(self) -> dict[str, Any]:
        self.store.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        lat, n = self.lat, len(self.lat)
        total = sum(lat)
        return {
            "batch": self.batch,
            "commits": n,
            "entries_per_s": n * self.batch / total,
            "mb_per_s": n * self.batch * self.entry_size / total / 1e6,
            "commit_ms_p50": _pct(lat, 0.5) * 1e3,
            "commit_ms_p99": _pct(lat, 0.99) * 1e3,
            "commit_ms_mean": statistics.fmean(lat) * 1e3,
        }


class WalAppendViaWriter(WalAppend):
    """The server's path: the event loop awaits ``save`` run on the WAL writer thread."""

    def __init__(self, directory: Path, batch: int, entry_size: int, **opts: Any) -> None:
        super().__init__(directory, batch, entry_size, **opts)
        self.writer = WriterThread("bench-wal")

    def run(self, seconds: float) -> None:
        asyncio.run(self._run(seconds))

    async def _run(self, seconds: float) -> None:
        w, batch, payload = self.store, self.batch, self.payload
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            i = self.index
            ents = [Entry(term=1, index=j, data=payload) for j in range(i, i + batch)]
            hs = HardState(term=1, vote=1, commit=i - 1)
            t0 = time.perf_counter()
            await asyncio.wrap_future(self.writer.submit(w.save, hs, ents, None))
            self.lat.append(time.perf_counter() - t0)
            self.index = i + batch

    def close(self) -> dict[str, Any]:
        self.writer.shutdown()
        return super().close()


def codec(entry_size: int, n: int = 200_000) -> dict[str, float]:
    e = Entry(term=3, index=123456, data=os.urandom(entry_size))
    t0 = time.perf_counter()
    for _ in range(n):
        raw = encode_entry(e)
    t1 = time.perf_counter()
    for _ in range(n):
        decode_entry(raw)
    t2 = time.perf_counter()
    return {"encode_us": (t1 - t0) / n * 1e6, "decode_us": (t2 - t1) / n * 1e6}


def reads(directory: Path, entry_size: int) -> dict[str, float]:
    """term() and entries() costs: the raft core calls these on the event loop."""
    data_dir = Path(tempfile.mkdtemp(dir=directory))
    try:
        with WalStore.open(data_dir, fsync=False) as w:
            payload = os.urandom(entry_size)
            for lo in range(1, 20_001, 1000):
                w.save(HardState(term=1), [Entry(1, i, data=payload) for i in range(lo, lo + 1000)])
            n = 100_000
            t0 = time.perf_counter()
            for i in range(n):
                w.term(1 + i % 20_000)
            t1 = time.perf_counter()
            reps = 200
            for _ in range(reps):
                w.entries(19_745, 20_001)  # in the tail cache
            t2 = time.perf_counter()
            for _ in range(reps):
                w.entries(1_001, 1_257)  # read and decoded from LMDB
            t3 = time.perf_counter()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "term_us": (t1 - t0) / n * 1e6,
        "entries256_tail_us": (t2 - t1) / reps * 1e6,
        "entries256_lmdb_us": (t3 - t2) / reps * 1e6,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement, in total")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    ap.add_argument("--entry-size", type=int, default=256)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="etcdpy-storage-bench-", dir=base))
    try:
        variants: dict[str, dict[str, Any]] = {
            "fsync": {},
            "metasync_off": {"fsync": True, "metasync": False},
            "unsafe_no_fsync": {"fsync": False},
            "segments": {"store": "segment"},
        }
        raw = RawFsync(work, args.entry_size)
        runs: dict[tuple[str, int], WalAppend] = {
            (name, b): WalAppend(work, b, args.entry_size, **dict(opts))
            for name, opts in variants.items()
            for b in BATCHES
        }
        variants["fsync_writer_thread"] = {}
        variants["segments_writer_thread"] = {}
        for b in BATCHES:
            runs[("fsync_writer_thread", b)] = WalAppendViaWriter(work, b, args.entry_size)
            runs[("segments_writer_thread", b)] = WalAppendViaWriter(
                work, b, args.entry_size, store="segment"
            )
        # Interleave short rounds so the disk's noise (neighbours, throttling) spreads
        # evenly over every measurement instead of landing on one of them.
        per_round = args.seconds / args.rounds
        for _ in range(args.rounds):
            raw.run(per_round)
            for r in runs.values():
                r.run(per_round)
        result: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(),
            "python": platform.python_version(),
            "dir": str(base),
            "entry_size": args.entry_size,
            "seconds_each": args.seconds,
            "rounds": args.rounds,
            "raw_fdatasync": raw.close(),
            "variants": {name: [] for name in variants},
        }
        for (name, _), r in runs.items():
            result["variants"][name].append(r.close())
        result["codec"] = codec(args.entry_size)
        result["reads"] = reads(work, args.entry_size)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwritten to {out}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    raw = r["raw_fdatasync"]
    print(
        f"raw fdatasync ({r['entry_size']} B append): {raw['ops_per_s']:.0f}/s, "
        f"p50 {raw['lat_ms_p50']:.3f} ms, p99 {raw['lat_ms_p99']:.3f} ms"
    )
    print(
        f"{'variant':<20} {'batch':>5} {'entries/s':>10} {'MB/s':>7} "
        f"{'commit p50 ms':>13} {'p99 ms':>8}"
    )
    for name, rows in r["variants"].items():
        for row in rows:
            print(
                f"{name:<20} {row['batch']:>5} {row['entries_per_s']:>10.0f} "
                f"{row['mb_per_s']:>7.2f} {row['commit_ms_p50']:>13.3f} "
                f"{row['commit_ms_p99']:>8.3f}"
            )
    c, rd = r["codec"], r["reads"]
    print(
        f"entry codec: encode {c['encode_us']:.2f} us, decode {c['decode_us']:.2f} us; "
        f"term() {rd['term_us']:.2f} us; entries(256): tail {rd['entries256_tail_us']:.0f} us, "
        f"lmdb {rd['entries256_lmdb_us']:.0f} us"
    )


if __name__ == "__main__":
    raise SystemExit(main())
