"""A write is answered once applied, before its KV commit (apply.py rule 5), and no read on
the member sees a state older than a write it acknowledged (the read gate: ``settle``).

The KV commit is held on a threading event at the ``beforeCommit`` failpoint, so every
assertion below is about order, never about time: while the commit is held, the put has
returned and every read that would need it is still waiting."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from etcdpy import embed, errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.observability.logging import Logger
from etcdpy.util.failpoints import Failpoints
from tests.server.support import config, run, still_pending

HOLD_LIMIT = 20.0
"""Seconds the held commit waits at most (a broken test must not hang the suite)."""


class HeldCommit(Failpoints):
    """``beforeCommit`` blocks the KV writer thread while armed, until released."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.reached = threading.Event()
        self.release = threading.Event()

    def hit(self, name: str) -> str | None:
        if name == "beforeCommit" and self.armed:
            self.armed = False
            self.reached.set()
            self.release.wait(HOLD_LIMIT)
        return super().hit(name)


@asynccontextmanager
async def _held_member(tmp_path: Path) -> AsyncIterator[tuple[embed.Etcd, HeldCommit]]:
    """A member whose ``beforeCommit`` can be held, once its own proposals (attributes,
    cluster version) are applied, so an armed hold catches the test's next write."""
    fp = HeldCommit()
    e = await embed.start(config(tmp_path), Logger(outputs=[io.StringIO()]), failpoints=fp)
    try:
        async with asyncio.timeout(HOLD_LIMIT / 2):
            while e.server.cluster_version == "not_decided":
                await asyncio.sleep(0.01)
        await e.server.settle()
        yield e, fp
    finally:
        fp.release.set()
        await e.close()


def test_put_answered_before_commit_and_reads_wait_for_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with _held_member(tmp_path) as (e, fp):
            s = e.server
            await s.put(pb.PutRequest(key=b"k", value=b"old"))
            await s.settle()
            fp.armed = True
            async with asyncio.timeout(HOLD_LIMIT / 2):
                put = await s.put(pb.PutRequest(key=b"k", value=b"new"))
            # answered: the writer thread is now at (or about to reach) the held commit
            assert await asyncio.to_thread(fp.reached.wait, HOLD_LIMIT / 2)
            assert not fp.release.is_set()
            rev = put.header.revision
            reads = {
                "serializable": asyncio.ensure_future(
                    s.range(pb.RangeRequest(key=b"k", serializable=True))
                ),
                "linearizable": asyncio.ensure_future(s.range(pb.RangeRequest(key=b"k"))),
                "encoded": asyncio.ensure_future(
                    s.range_encoded(pb.RangeRequest(key=b"k", serializable=True))
                ),
                "txn": asyncio.ensure_future(
                    s.txn(
                        pb.TxnRequest(
                            success=[
                                pb.RequestOp(
                                    request_range=pb.RangeRequest(key=b"k", serializable=True)
                                )
                            ]
                        )
                    )
                ),
                "status": asyncio.ensure_future(s.status(pb.StatusRequest())),
                "settle": asyncio.ensure_future(s.settle()),
            }
            for name, task in reads.items():
                assert await still_pending(task), f"{name} read did not wait for the KV commit"
            fp.release.set()
            async with asyncio.timeout(HOLD_LIMIT / 2):
                await asyncio.gather(*reads.values())
            for name in ("serializable", "linearizable"):
                r = reads[name].result()
                assert r.kvs[0].value == b"new" and r.header.revision == rev, name
            enc = pb.RangeResponse.FromString(reads["encoded"].result())
            assert enc.kvs[0].value == b"new" and enc.header.revision == rev
            t = reads["txn"].result()
            assert t.responses[0].response_range.kvs[0].value == b"new"
            assert reads["status"].result().header.revision == rev

    run(body())


def test_nothing_waits_when_every_answer_is_committed(tmp_path: Path) -> None:
    """The gate costs nothing at rest: ``settle`` returns at once and reads do not wait."""

    async def body() -> None:
        e = await embed.start(config(tmp_path), Logger(outputs=[io.StringIO()]))
        s = e.server
        try:
            put = await s.put(pb.PutRequest(key=b"k", value=b"v"))
            await s.settle()
            assert s.applied_index >= s._answered
            await asyncio.wait_for(s.settle(), timeout=HOLD_LIMIT)  # returns, no waiter left
            r = await s.range(pb.RangeRequest(key=b"k", serializable=True))
            assert r.kvs[0].value == b"v" and r.header.revision == put.header.revision
        finally:
            await e.close()

    run(body())


def test_a_read_waiting_for_a_commit_that_does_not_come_times_out(tmp_path: Path) -> None:
    """etcd's ErrTimeout, as a linearizable read gives, instead of a read that hangs."""

    async def body() -> None:
        async with _held_member(tmp_path) as (e, fp):
            s = e.server
            s.settings = dataclasses.replace(s.settings, request_timeout=0.2)
            fp.armed = True
            async with asyncio.timeout(HOLD_LIMIT / 2):
                await s.put(pb.PutRequest(key=b"k", value=b"v"))
            with pytest.raises(errors.ErrGRPCTimeout):
                await s.range(pb.RangeRequest(key=b"k", serializable=True))
            fp.release.set()
            async with asyncio.timeout(HOLD_LIMIT / 2):
                r = await s.range(pb.RangeRequest(key=b"k", serializable=True))
            assert r.kvs[0].value == b"v"

    run(body())
