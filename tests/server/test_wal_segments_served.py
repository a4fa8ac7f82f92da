"""The segment WAL under a serving member: segments are cut while writes flow, snapshots
compact the log and delete whole old segments, and a restart replays what is left."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

from etcdpy import embed
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.storage import segment_wal
from etcdpy.storage.layout import DataDirLayout
from tests.server.support import member, run

KEYS = 1200


def _segments(data_dir: Path) -> list[str]:
    return sorted(p.name for p in DataDirLayout.of(data_dir).wal.glob("*.seg"))


def test_segments_cut_compacted_and_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = functools.partial(segment_wal.SegmentWalStore.open.__func__, segment_size=16 << 10)
    monkeypatch.setattr(segment_wal.SegmentWalStore, "open", classmethod(small))
    monkeypatch.setattr(embed, "SNAPSHOT_CATCH_UP_ENTRIES", 100)

    async def body() -> None:
        async with member(tmp_path, "--snapshot-count", "200") as e:
            for lo in range(0, KEYS, 100):
                await asyncio.gather(
                    *[
                        e.server.put(pb.PutRequest(key=b"k%05d" % i, value=b"v" * 200))
                        for i in range(lo, lo + 100)
                    ]
                )
            rev = (await e.server.put(pb.PutRequest(key=b"last", value=b"1"))).header.revision
        segs = _segments(tmp_path)
        # ~300 KiB of entries went through 16 KiB segments; only the live tail is kept
        assert segs and not segs[0].startswith("0000000000000001-"), segs
        assert len(segs) < 12, segs
        async with member(tmp_path) as e:
            r = await e.server.range(pb.RangeRequest(key=b"k", range_end=b"l", count_only=True))
            assert r.count == KEYS and r.header.revision == rev
            again = await e.server.put(pb.PutRequest(key=b"after", value=b"restart"))
            assert again.header.revision == rev + 1

    run(body(), timeout=120)
