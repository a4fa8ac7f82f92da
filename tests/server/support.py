"""Start in-process members on a tmp data dir (real LMDB, real gRPC on 127.0.0.1:0)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from etcdpy import embed
from etcdpy.config import parse_config
from etcdpy.config.model import ServerConfig
from etcdpy.observability.logging import Logger
from etcdpy.server.transport import InmemNetwork
from etcdpy.util.failpoints import Failpoints

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def config(data_dir: Path, *flags: str) -> ServerConfig:
    args = [
        "--data-dir",
        str(data_dir),
        "--listen-client-urls",
        "http://127.0.0.1:0",
        "--advertise-client-urls",
        "http://127.0.0.1:2379",
        *flags,
    ]
    return parse_config(args, {}).config


@asynccontextmanager
async def member(
    data_dir: Path, *flags: str, log: io.StringIO | None = None
) -> AsyncIterator[embed.Etcd]:
    lg = Logger(outputs=[log if log is not None else io.StringIO()])
    e = await embed.start(config(data_dir, *flags), lg)
    try:
        yield e
    finally:
        await e.close()


async def still_pending(task: asyncio.Future[Any], rounds: int = 20) -> bool:
    """Let the loop run a while (``rounds`` short sleeps), then: is ``task`` still not done?
    For a task that must wait on something the test holds back."""
    for _ in range(rounds):
        await asyncio.sleep(0.005)
    return not task.done()


async def eventually(pred: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll ``pred`` until true (no sleeps to synchronize: a deadline bounds the wait)."""
    async with asyncio.timeout(timeout):
        while not await pred():
            await asyncio.sleep(0.02)


def cluster_flags(name: str, names: list[str]) -> list[str]:
    """Flags of member ``name`` in a new cluster of ``names`` (peer URLs only name them)."""
    initial = ",".join(f"{n}=http://127.0.0.1:{23800 + i}" for i, n in enumerate(names))
    me = names.index(name)
    return [
        "--name",
        name,
        "--initial-cluster",
        initial,
        "--initial-advertise-peer-urls",
        f"http://127.0.0.1:{23800 + me}",
        "--listen-peer-urls",
        f"http://127.0.0.1:{23800 + me}",
        "--heartbeat-interval",
        "20",
        "--election-timeout",
        "300",
    ]


async def start_peer(
    data_dir: Path,
    net: InmemNetwork,
    name: str,
    names: list[str],
    *flags: str,
    failpoints: Failpoints | None = None,
) -> embed.Etcd:
    """Member ``name`` of the cluster ``names`` over ``net`` (its data in ``data_dir/name``)."""
    return await embed.start(
        config(data_dir / name, *cluster_flags(name, names), *flags),
        Logger(outputs=[io.StringIO()]),
        transport=net.transport,
        failpoints=failpoints,
    )
