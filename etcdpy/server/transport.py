"""The seam between the raft driver and the network (ARCHITECTURE 3.7, layer 4 → 5).

The server defines what it needs from a transport; ``etcdpy.transport`` (TCP/TLS peers) and
tests (``InmemNetwork``) implement it. Rules:

1. ``send`` never blocks and never raises for a peer that is down: a full or broken outbox
   drops the message and reports the peer unreachable through the sink, as etcd's
   ``rafthttp`` does. Raft retries on its own schedule.
2. Messages arriving from peers are handed to ``RaftSink.step`` on the event loop thread;
   the driver queues them and steps them in its next iteration.
3. ``MsgSnap`` travels with the member's state (``server.snapshots``). A transport that
   can carry it has ``attach_snapshots(source, sink)`` (``embed`` calls it when present).
   For each ``MsgSnap`` it must: ``out = await source.open(m.snapshot.metadata)`` on the
   sender, stream ``out.header`` + ``out.chunks()`` to the receiver, ``await out.close()``;
   on the receiver ``await sink.receive(header, chunks)`` and only when that returned,
   ``RaftSink.step(m)``; then the sender reports ``report_snapshot(to, failed)`` (and
   ``report_unreachable`` on failure). ``InmemNetwork`` does exactly this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from etcdpy.raft.types import Message, MessageType
from etcdpy.server.snapshots import SnapshotPayloadSink, SnapshotPayloadSource


class RaftSink(Protocol):
    """What a transport calls back into (implemented by ``server.node.RaftNode``)."""

    def step(self, m: Message) -> None: ...

    def report_unreachable(self, peer_id: int) -> None: ...

    def report_snapshot(self, peer_id: int, failed: bool) -> None: ...


class Transport(Protocol):
    def start(self, sink: RaftSink) -> None: ...

    def send(self, messages: Sequence[Message]) -> None: ...

    def add_peer(self, peer_id: int, urls: Sequence[str]) -> None: ...

    def remove_peer(self, peer_id: int) -> None: ...

    async def close(self) -> None: ...


class NullTransport:
    """A member alone in its cluster: nothing to send to (messages to others are dropped)."""

    def __init__(self) -> None:
        self._sink: RaftSink | None = None

    def start(self, sink: RaftSink) -> None:
        self._sink = sink

    def send(self, messages: Sequence[Message]) -> None:
        sink = self._sink
        if sink is None:
            return
        for m in messages:
            sink.report_unreachable(m.to)

    def add_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        return None

    def remove_peer(self, peer_id: int) -> None:
        return None

    async def close(self) -> None:
        self._sink = None


class InmemNetwork:
    """Members of one process talking through direct calls (tests; hashicorp's InmemTransport).

    ``transport(member_id)`` gives each member its endpoint; ``isolate``/``heal`` cut links.
    Delivery is asynchronous (``call_soon``) so a step never re-enters the sender's driver.
    """

    def __init__(self) -> None:
        self._sinks: dict[int, RaftSink] = {}
        self._cut: set[int] = set()
        self._snap_sources: dict[int, SnapshotPayloadSource] = {}
        self._snap_sinks: dict[int, SnapshotPayloadSink] = {}
        self._snap_tasks: dict[asyncio.Task[None], tuple[int, int]] = {}
        self.snapshots_sent = 0
        self.last_snapshot_error: BaseException | None = None

    def transport(self, member_id: int) -> InmemTransport:
        return InmemTransport(self, member_id)

    def isolate(self, member_id: int) -> None:
        self._cut.add(member_id)

    def heal(self, member_id: int) -> None:
        self._cut.discard(member_id)

    def _register(self, member_id: int, sink: RaftSink) -> None:
        self._sinks[member_id] = sink

    def _unregister(self, member_id: int) -> None:
        self._sinks.pop(member_id, None)
        self._snap_sources.pop(member_id, None)
        self._snap_sinks.pop(member_id, None)
        for task, ends in list(self._snap_tasks.items()):
            if member_id in ends:
                task.cancel()

    def _reachable(self, src: int, dst: int) -> bool:
        return dst in self._sinks and src not in self._cut and dst not in self._cut

    def _deliver(self, src: int, m: Message) -> None:
        dst = self._sinks.get(m.to)
        if dst is None or src in self._cut or m.to in self._cut:
            me = self._sinks.get(src)
            if me is not None:
                me.report_unreachable(m.to)
            return
        if m.type == MessageType.MsgSnap and src in self._snap_sources:
            task = asyncio.get_running_loop().create_task(self._send_snapshot(src, m))
            self._snap_tasks[task] = (src, m.to)
            task.add_done_callback(lambda t: self._snap_tasks.pop(t, None))
            return
        dst.step(m)

    async def _send_snapshot(self, src: int, m: Message) -> None:
        """``MsgSnap`` with its backend payload (server.snapshots rule 2): stage the payload
        on the receiver, then step the message there, then report to the sender's raft."""
        source = self._snap_sources.get(src)
        ok = False
        try:
            sink = self._snap_sinks.get(m.to)
            if (
                source is not None
                and sink is not None
                and m.snapshot is not None
                and self._reachable(src, m.to)
            ):
                out = await source.open(m.snapshot.metadata)
                try:
                    await sink.receive(out.header, out.chunks())
                finally:
                    await out.close()
                dst = self._sinks.get(m.to)
                if dst is not None and self._reachable(src, m.to):
                    dst.step(m)
                    ok = True
        except Exception as exc:
            self.last_snapshot_error = exc
            ok = False
        me = self._sinks.get(src)
        if me is not None:
            if not ok:
                me.report_unreachable(m.to)
            me.report_snapshot(m.to, not ok)
        if ok:
            self.snapshots_sent += 1


class InmemTransport:
    def __init__(self, network: InmemNetwork, member_id: int) -> None:
        self._net = network
        self._id = member_id

    def start(self, sink: RaftSink) -> None:
        self._net._register(self._id, sink)

    def attach_snapshots(self, source: SnapshotPayloadSource, sink: SnapshotPayloadSink) -> None:
        """Carry backend payloads with ``MsgSnap`` (from and to this member)."""
        self._net._snap_sources[self._id] = source
        self._net._snap_sinks[self._id] = sink

    def send(self, messages: Sequence[Message]) -> None:
        loop = asyncio.get_running_loop()
        for m in messages:
            loop.call_soon(self._net._deliver, self._id, m)

    def add_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        return None

    def remove_peer(self, peer_id: int) -> None:
        return None

    async def close(self) -> None:
        self._net._unregister(self._id)
