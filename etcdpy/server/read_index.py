"""Linearizable reads (etcd's ``linearizableReadLoop``), batched.

Rules:
1. Readers that arrive while a ReadIndex round is in flight wait for the next round: one
   raft round (and one heartbeat quorum on a cluster) serves every read queued behind it.
2. A read is served once the member has applied at least the index the leader confirmed,
   so it observes every write acknowledged before it started (Raft §6.4).
3. A round that gets no answer is retried every ``retry_interval`` (leader change, lost
   message) until the readers' own deadline expires (etcd: ErrTimeout for the caller).
Everything runs on the event loop; one long-lived task, no task per read.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import struct
from collections.abc import Callable, Sequence

from etcdpy.raft.types import ReadState

_CTX = struct.Struct(">Q")


class AppliedWaiter:
    """Futures waiting for the applied index to reach a value."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._failed: BaseException | None = None
        self.applied = 0

    def wait(self, index: int) -> asyncio.Future[None]:
        """A future done once ``index`` is applied; failed at once after ``fail_all`` (the
        member stopped: nothing more will be applied)."""
        fut: asyncio.Future[None] = self._loop.create_future()
        if index <= self.applied:
            fut.set_result(None)
        elif self._failed is not None:
            fut.set_exception(self._failed)
        else:
            heapq.heappush(self._heap, (index, next(self._seq), fut))
        return fut

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index
        heap = self._heap
        while heap and heap[0][0] <= self.applied:
            _, _, fut = heapq.heappop(heap)
            if not fut.done():
                fut.set_result(None)

    def fail_all(self, exc: BaseException) -> None:
        self._failed = exc
        heap, self._heap = self._heap, []
        for _, _, fut in heap:
            if not fut.done():
                fut.set_exception(exc)


class ReadIndexer:
    def __init__(
        self,
        send_read_index: Callable[[bytes], None],
        applied: AppliedWaiter,
        *,
        retry_interval: float = 0.5,
    ) -> None:
        self._send = send_read_index
        self._applied = applied
        self._retry = retry_interval
        self._pending: list[asyncio.Future[None]] = []
        self._kick = asyncio.Event()
        self._answer: asyncio.Future[int] | None = None
        self._ctx = b""
        self._seq = itertools.count(1)
        self._stopped = False

    def wait(self) -> asyncio.Future[None]:
        """A future resolved once a linearizable read may be served."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(fut)
        self._kick.set()
        return fut

    def on_read_states(self, states: Sequence[ReadState]) -> None:
        ans = self._answer
        if ans is None or ans.done():
            return
        for rs in states:
            if rs.request_ctx == self._ctx:
                ans.set_result(rs.index)
                return

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopped:
            await self._kick.wait()
            self._kick.clear()
            # Let the readers that arrive in this loop turn join the round (rule 1).
            await asyncio.sleep(0)
            batch, self._pending = self._pending, []
            batch = [f for f in batch if not f.done()]
            if not batch:
                continue
            index = None
            while index is None:
                self._ctx = _CTX.pack(next(self._seq))
                self._answer = loop.create_future()
                self._send(self._ctx)
                try:
                    async with asyncio.timeout(self._retry):
                        index = await self._answer
                except TimeoutError:
                    batch = [f for f in batch if not f.done()]
                    if not batch or self._stopped:
                        break
            self._answer = None
            if index is None:
                continue
            await self._applied.wait(index)
            for f in batch:
                if not f.done():
                    f.set_result(None)

    def stop(self, exc: BaseException) -> None:
        self._stopped = True
        self._kick.set()
        pending, self._pending = self._pending, []
        for f in pending:
            if not f.done():
                f.set_exception(exc)
