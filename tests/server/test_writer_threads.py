"""Which threads persist and apply: one writer for a member without peers, two with peers
(``embed``: saves and applies alternate in one FIFO when nobody else needs the WAL)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.server.transport import InmemNetwork
from tests.server.support import member, run, start_peer


def _writers(before: frozenset[threading.Thread] = frozenset()) -> list[str]:
    """Names of the writer threads started since ``before`` (other tests' are ignored)."""
    return sorted(
        t.name for t in threading.enumerate() if t.name.startswith("etcdpy-") and t not in before
    )


def test_member_without_peers_has_one_writer_thread(tmp_path: Path) -> None:
    async def body() -> None:
        before = frozenset(threading.enumerate())
        async with member(tmp_path) as e:
            assert _writers(before) == ["etcdpy-writer"]
            r = await e.server.put(pb.PutRequest(key=b"k", value=b"v"))
            got = await e.server.range(pb.RangeRequest(key=b"k", serializable=True))
            assert got.kvs[0].value == b"v" and got.header.revision == r.header.revision
        assert _writers(before) == []  # stopped with the member

    run(body())


def test_members_with_peers_keep_a_wal_thread_of_their_own(tmp_path: Path) -> None:
    names = ["a", "b", "c"]

    async def body() -> None:
        before = frozenset(threading.enumerate())
        net = InmemNetwork()
        members = await asyncio.gather(*[start_peer(tmp_path, net, n, names) for n in names])
        try:
            assert _writers(before) == ["etcdpy-kv"] * 3 + ["etcdpy-wal"] * 3
        finally:
            for m in members:
                await m.close()

    run(body(), timeout=60)
