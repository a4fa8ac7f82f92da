"""Request id → Future registry (etcd's ``pkg/wait``).

A proposer registers its request id before proposing and awaits the future; the applier
triggers it with the apply result once the entry is applied on this member. Entries proposed
elsewhere (or replayed at restart) trigger nothing: ``trigger`` on an unknown id is a no-op.
Everything runs on the event loop thread, so a plain dict suffices.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Wait:
    __slots__ = ("_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: dict[int, asyncio.Future[Any]] = {}

    def register(self, req_id: int) -> asyncio.Future[Any]:
        if req_id in self._pending:
            raise ValueError(f"dup id {req_id:x}")
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._pending[req_id] = fut
        return fut

    def cancel(self, req_id: int) -> None:
        """Forget a request whose caller gave up (timeout, cancelled, proposal dropped)."""
        self._pending.pop(req_id, None)

    def is_registered(self, req_id: int) -> bool:
        return req_id in self._pending

    def trigger(self, req_id: int, result: Any) -> None:
        fut = self._pending.pop(req_id, None)
        if fut is not None and not fut.done():
            fut.set_result(result)

    def fail(self, req_id: int, exc: BaseException) -> None:
        fut = self._pending.pop(req_id, None)
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def fail_all(self, exc: BaseException) -> None:
        """Stop: every waiting proposer gets ``exc`` (etcd answers ErrStopped)."""
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)

    def __len__(self) -> int:
        return len(self._pending)
