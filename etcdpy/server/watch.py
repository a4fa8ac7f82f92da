"""Watch streams over the MVCC watch hub (etcd's ``watchableStore`` + ``serverWatchStream``).

Rules (ARCHITECTURE 3.6):
1. The hub is owned by the event loop. Committed revisions reach it through the server's
   watch listener, in order, after their KV transaction committed (so a catch-up read can
   already see them and nothing is missed between history and live events).
2. Catch-up (unsynced watchers) reads history on a reader thread in chunks, then hands it to
   the hub, which drops what live notifications already cover: no gap, no duplicate.
3. Back-pressure: a response counts against its stream until the API layer takes it from
   ``responses()``; a full stream makes its watchers victims that catch up later (the hub's
   rule 3), never an event lost.
4. Progress replies (``RequestProgress``) are sent only when every watcher of the stream is
   synced, with the hub's revision, so no later event can undercut them (etcd #15220).
5. Batching: streams coalesce (the hub's rule 7). A batch waits in the stream as a
   ``WatchBatch`` and becomes a response only when the API layer takes it, so a watcher
   gets everything since its last write in one response. Anything else queued seals the
   stream's open batches first (nothing overtakes it).
6. Every event is serialized once (:class:`EncodedEvent`, with and without ``prev_kv``) and
   its bytes are shared by every watcher's response (``mvcc/wire.py``); responses with
   events leave as :class:`~etcdpy.server.facade.EncodedWatchResponse`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.mvccpb.kv_pb2 import KeyValue
from etcdpy.mvcc import wire
from etcdpy.mvcc.kvstore import Event
from etcdpy.mvcc.watch_hub import (
    CANCELED,
    WatchBatch,
    WatchHub,
    read_history,
)
from etcdpy.mvcc.watch_hub import WatchStream as HubStream
from etcdpy.server.facade import AuthInfo, EncodedWatchResponse

if TYPE_CHECKING:
    from etcdpy.server.etcdserver import EtcdServer

INVALID_WATCH_ID = -1
FILTER_NOPUT = 0
FILTER_NODELETE = 1

_Out = pb.WatchResponse | WatchBatch


class EncodedEvent(NamedTuple):
    """An :class:`~etcdpy.mvcc.kvstore.Event` (same first fields, so the hub handles it as
    one) with its ``events`` field bytes: ``data`` without ``prev_kv``, ``data_prev`` with
    it (None when the event has no previous version). The hub's ``_replace(prev_kv=None)``
    keeps both."""

    type: int
    kv: KeyValue
    prev_kv: KeyValue | None
    data: bytes
    data_prev: bytes | None


def encode_event(ev: Event) -> EncodedEvent:
    kvb = ev.kv.SerializeToString()
    data = wire.event_field(wire.event(ev.type, kvb, None))
    prev = None
    if ev.prev_kv is not None:
        prev = wire.event_field(wire.event(ev.type, kvb, ev.prev_kv.SerializeToString()))
    return EncodedEvent(ev.type, ev.kv, ev.prev_kv, data, prev)


def encode_events(events: list[Event]) -> list[Event]:
    """``events`` as :class:`EncodedEvent` (typed as events: that is what the hub sees)."""
    return cast(list[Event], [encode_event(ev) for ev in events])


class WatchServer:
    """All watch streams of one member: the hub, live fan-out and the catch-up loop."""

    def __init__(self, server: EtcdServer, progress_interval: float = 600.0) -> None:
        self.server = server
        self.hub = WatchHub(server.revision)
        self._streams: dict[HubStream, ServerWatchStream] = {}
        self._headers = wire.HeaderCache()
        self._sync_needed = asyncio.Event()
        self._progress_interval = progress_interval
        server.add_watch_listener(self._on_commit)

    def new_stream(self, auth: AuthInfo | None) -> ServerWatchStream:
        hs = self.hub.new_stream(coalesce=True)
        s = ServerWatchStream(self, hs)
        self._streams[hs] = s
        return s

    def _drop(self, s: ServerWatchStream) -> None:
        self.hub.close_stream(s.hub_stream)
        self._streams.pop(s.hub_stream, None)

    # --- live events -------------------------------------------------------------------
    def _on_commit(self, revision: int, events: list[Event]) -> None:
        hub = self.hub
        batches = hub.notify(revision, encode_events(events) if hub.has_synced() else events)
        if batches:
            self._deliver(batches)
        if self.hub.has_unsynced():
            self._sync_needed.set()

    def _deliver(self, batches: list[WatchBatch]) -> None:
        streams = self._streams
        for b in batches:
            s = streams.get(b.watcher.stream)
            if s is None:
                self.hub.taken(b)
                continue
            s._out.append(b)
            s._ready.set()

    def _header(self, revision: int) -> bytes:
        """The serialized header of an events response at ``revision`` (one cached)."""
        server = self.server
        return self._headers.get(server.cluster.cluster_id, server.id, revision, server.term)

    def encode(self, b: WatchBatch) -> list[pb.WatchResponse | EncodedWatchResponse]:
        """The response(s) of a batch the sender takes now (rule 5, 6)."""
        w = b.watcher
        if b.canceled or not b.events:
            resp = pb.WatchResponse(
                header=self.server.header(),
                watch_id=w.id,
                compact_revision=b.compact_revision,
                canceled=b.canceled,
            )
            # etcd's store cancels a compacted watcher with a response of revision 0
            resp.header.revision = 0 if b.compact_revision else b.revision
            return [resp]
        events = cast(list[EncodedEvent], b.events)
        if w.prev_kv:
            evs = [e.data if e.data_prev is None else e.data_prev for e in events]
        else:
            evs = [e.data for e in events]
        data = wire.watch_events_response(self._header(b.revision), w.id, evs)
        limit = self.server.settings.max_request_bytes
        if w.fragment and len(evs) > 1 and len(data) >= limit:
            return list(fragment(pb.WatchResponse.FromString(data), limit))
        return [EncodedWatchResponse(w.id, False, data)]

    # --- catch-up ----------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._sync_loop())
            if self._progress_interval > 0:
                tg.create_task(self._progress_loop())

    async def _sync_loop(self) -> None:
        kv = self.server.kv
        while True:
            await self._sync_needed.wait()
            self._sync_needed.clear()
            while self.hub.has_unsynced():
                plan = self.hub.sync_plan()
                if plan is None:
                    break  # every stream with unsynced watchers is full: wait for acks

                def read(p: Any = plan) -> Any:
                    with kv.read() as view:
                        chunk = read_history(view, p)
                    chunk.events = encode_events(chunk.events)
                    return chunk

                chunk = await self.server.run_read(read)
                batches = self.hub.apply_sync(plan, chunk)
                if batches:
                    self._deliver(batches)
                for s in list(self._streams.values()):
                    s._maybe_progress()

    async def _progress_loop(self) -> None:
        """``progress_notify`` watchers get an empty response every interval while synced."""
        while True:
            await asyncio.sleep(self._progress_interval)
            for s in list(self._streams.values()):
                s._periodic_progress()

    def watcher_count(self) -> int:
        return sum(len(s.hub_stream.watchers) for s in self._streams.values())

    def close_all(self) -> None:
        """The member stops: end every stream (their ``responses()`` finish)."""
        for s in list(self._streams.values()):
            s.close()

    def wake_sync(self) -> None:
        self._sync_needed.set()


class ServerWatchStream:
    """One client stream (implements ``server.facade.WatchStream``)."""

    def __init__(self, ws: WatchServer, hub_stream: HubStream) -> None:
        self._ws = ws
        self.hub_stream = hub_stream
        self._out: deque[_Out] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._next_id = 0
        self._progress_pending = False

    def _push(self, resp: pb.WatchResponse) -> None:
        """Queue a reply after everything queued so far (seals open batches, rule 5)."""
        self._ws.hub.seal(self.hub_stream)
        self._out.append(resp)
        self._ready.set()

    def create(self, req: pb.WatchCreateRequest) -> pb.WatchResponse:
        hub = self._ws.hub
        server = self._ws.server
        if self._closed:
            raise errors.ErrGRPCWatchCanceled()
        end = req.range_end
        if end and end != b"\x00" and req.key >= end:  # b"\x00": every key >= key
            raise errors.ErrEmptyWatcherRange()  # before an ID is taken, as etcd's store
        wid = req.watch_id
        watchers = self.hub_stream.watchers
        if wid == 0:  # etcd's AutoWatchID
            while self._next_id in watchers:
                self._next_id += 1
            wid = self._next_id
            self._next_id += 1
        elif wid in watchers:
            raise errors.ErrWatcherDuplicateID()
        filters = set(req.filters)
        hub.add(
            self.hub_stream,
            wid,
            req.key,
            req.range_end,
            req.start_revision,
            no_put=FILTER_NOPUT in filters,
            no_delete=FILTER_NODELETE in filters,
            prev_kv=req.prev_kv,
            progress_notify=req.progress_notify,
            fragment=req.fragment,
        )
        if hub.has_unsynced():
            self._ws.wake_sync()
        resp = pb.WatchResponse(header=server.header(), watch_id=wid, created=True)
        resp.header.revision = hub.current_revision
        return resp

    def cancel(self, watch_id: int) -> pb.WatchResponse:
        w = self.hub_stream.watchers.get(watch_id)
        if w is None:
            raise errors.ErrWatcherNotExist()
        self._ws.hub.cancel(w)
        resp = pb.WatchResponse(header=self._ws.server.header(), watch_id=watch_id, canceled=True)
        resp.header.revision = self._ws.hub.current_revision
        self._maybe_progress()
        return resp

    def request_progress(self) -> None:
        self._progress_pending = True
        self._maybe_progress()

    def _maybe_progress(self) -> None:
        if not self._progress_pending:
            return
        rev = self._ws.hub.progress_revision(self.hub_stream)
        if rev is None:
            return
        self._progress_pending = False
        resp = pb.WatchResponse(header=self._ws.server.header(), watch_id=INVALID_WATCH_ID)
        resp.header.revision = rev
        self._push(resp)

    def _periodic_progress(self) -> None:
        hub = self._ws.hub
        rev = hub.progress_revision(self.hub_stream)
        if rev is None:
            return
        for w in list(self.hub_stream.watchers.values()):
            if w.progress_notify and w.state != CANCELED:
                resp = pb.WatchResponse(header=self._ws.server.header(), watch_id=w.id)
                resp.header.revision = rev
                self._push(resp)

    async def responses(self) -> AsyncIterator[pb.WatchResponse | EncodedWatchResponse]:
        ws = self._ws
        hub = ws.hub
        out = self._out
        while True:
            while out:
                item = out.popleft()
                if type(item) is WatchBatch:
                    hub.taken(item)
                    if hub.has_unsynced():
                        ws.wake_sync()
                    for resp in ws.encode(item):
                        yield resp
                else:
                    yield cast(pb.WatchResponse, item)
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._ws._drop(self)
        self._ready.set()


def fragment(resp: pb.WatchResponse, max_bytes: int) -> list[pb.WatchResponse]:
    """etcd's sendFragments: split a large response; all parts but the last have
    ``fragment`` set, and each part holds at least one event."""
    if resp.ByteSize() < max_bytes:
        return [resp]
    events = list(resp.events)
    parts: list[pb.WatchResponse] = []
    i = 0
    while i < len(events):
        cur = pb.WatchResponse()
        cur.CopyFrom(resp)
        del cur.events[:]
        cur.fragment = True
        while i < len(events):
            cur.events.append(events[i])
            if len(cur.events) > 1 and cur.ByteSize() >= max_bytes:
                del cur.events[-1]
                break
            i += 1
        parts.append(cur)
    parts[-1].fragment = False
    return parts
