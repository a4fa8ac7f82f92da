"""Answering an asyncio loop from another thread (the writer threads, after every job)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


def call_on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    """``fn(*args)`` on ``loop``, from any thread; nothing once the loop is closed (the
    member is gone and nobody waits any more)."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass


def resolve(fut: asyncio.Future[Any], res: Any, exc: BaseException | None) -> None:
    """On the loop: settle ``fut`` with ``res`` or ``exc``, unless its waiter gave up."""
    if fut.done():
        return
    if exc is None:
        fut.set_result(res)
    else:
        fut.set_exception(exc)
