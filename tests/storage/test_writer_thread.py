"""``storage.env.WriterThread``: one thread, jobs in order, answers on the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from etcdpy.storage.env import WriterThread


def test_jobs_of_every_kind_run_in_order_on_one_thread() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wt = WriterThread("test-writer")
        try:
            seen: list[tuple[str, int]] = []

            def job(tag: str) -> int:
                seen.append((tag, threading.get_ident()))
                return len(seen)

            cf = wt.submit(job, "submit")
            wt.post(job, "post")
            fut = wt.run_async(loop, job, "async")
            assert await fut == 3
            assert cf.result(timeout=10) == 1
            assert [t for t, _ in seen] == ["submit", "post", "async"]
            assert len({tid for _, tid in seen}) == 1
            assert await wt.run_async(loop, wt.on_thread) is True
            assert not wt.on_thread()
        finally:
            wt.shutdown()

    asyncio.run(main())


def test_exceptions_reach_the_caller_and_the_thread_survives() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wt = WriterThread("test-writer")
        try:

            def boom() -> None:
                raise KeyError("boom")

            with pytest.raises(KeyError):
                await wt.run_async(loop, boom)
            with pytest.raises(KeyError):
                wt.submit(boom).result(timeout=10)
            wt.post(boom)  # nobody to tell: the thread goes on
            assert await wt.run_async(loop, lambda: 7) == 7
        finally:
            wt.shutdown()

    asyncio.run(main())


def test_shutdown_runs_queued_jobs_then_refuses_new_ones() -> None:
    wt = WriterThread("test-writer")
    gate = threading.Event()
    ran: list[int] = []
    wt.post(gate.wait, 10)
    futs = [wt.submit(ran.append, i) for i in range(5)]
    gate.set()
    wt.shutdown()
    assert ran == [0, 1, 2, 3, 4]
    assert all(f.done() for f in futs)
    with pytest.raises(RuntimeError):
        wt.submit(ran.append, 5)
