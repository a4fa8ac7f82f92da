"""The API layer served by the fake façade on one mux port, in a background event loop.

Tests talk to it like real clients do (grpc channels, etcdctl, HTTP), from the test thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Generator, Iterator
from typing import Any, TypeVar

import grpc
import pytest

from etcdpy.api.serve import ClientListener, Mode, serve_client
from etcdpy.api.v3.common import ClientAPIOptions
from tests.api.fake_server import FakeServer

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._t = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._t.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def _c() -> T:
            return fn()

        return self.run(_c())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._t.join(5)
        self.loop.close()


class Served:
    def __init__(self, lt: LoopThread, fake: FakeServer, lst: ClientListener) -> None:
        self.lt = lt
        self.fake = fake
        self.listener = lst
        self.port = lst.address[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}"

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.endpoint)


def _serve(
    mode: Mode, options: ClientAPIOptions | None = None, **listener: Any
) -> Generator[Served, None, None]:
    """A fake-backed listener; ``listener`` goes to ``serve_client`` (layout switches)."""
    lt = LoopThread()
    fake = lt.call(FakeServer)
    lst = lt.run(serve_client("http://127.0.0.1:0", fake, options, mode=mode, **listener))
    try:
        yield Served(lt, fake, lst)
    finally:
        lt.run(lst.close())
        lt.stop()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    yield from _serve("mux", ClientAPIOptions(max_txn_ops=8, leader_lost_timeout=0.3))
