"""The watch hub: which watcher gets which events, in order, without gaps (etcd
``mvcc/watchable_store.go``). Pure and synchronous: no asyncio, no threads, no clock.

Rules:

1. A watcher wants every matching event with revision >= its ``min_rev``, once, in revision
   order. It is **synced** when ``min_rev == current_revision + 1`` (it only needs what
   :meth:`WatchHub.notify` will bring) and **unsynced** otherwise (it needs history).
2. :meth:`WatchHub.notify` is called once per committed revision, in order, after the KV
   transaction committed. It matches synced watchers by key range and filters and returns
   one :class:`WatchBatch` per matching watcher.
3. Back-pressure is per stream (etcd: the stream's 128-response channel). A stream whose
   ``pending`` batches reached ``capacity`` gets nothing more: a synced watcher that cannot
   take its batch becomes a **victim** — it moves to unsynced with ``min_rev`` = that
   revision and catches up from the store later. No event is dropped (etcd #17529) and none
   is sent out of order. The sender calls :meth:`WatchHub.ack` for each batch it has sent.
4. Catch-up is two-phase so the read can run on a reader thread: :meth:`WatchHub.sync_plan`
   picks unsynced watchers and the revision to read from; :func:`read_history` reads a chunk
   of history from a :class:`~etcdpy.mvcc.kvstore.ReadView`; :meth:`WatchHub.apply_sync`
   delivers it. History beyond the hub's current revision is ignored (those revisions reach
   synced watchers through ``notify``); a watcher joins synced only when its ``min_rev``
   passes the hub's current revision, so nothing is missed or sent twice.
5. A watcher whose ``min_rev`` is below the compacted revision gets one batch with
   ``compact_revision`` set and ``canceled`` True, and is removed (etcd's compacted watcher).
6. Progress: :meth:`WatchHub.progress_revision` answers a revision only when every watcher of
   the stream is synced, so a progress notification never undercuts a later event (#15220).
7. Coalescing (streams created with ``coalesce=True``, what the server uses): a batch stays
   *open* until the sender takes it (:meth:`WatchHub.taken`); events of later revisions for
   its watcher join it instead of making a new batch (no new ``pending``), so a busy stream
   sends one response per watcher with everything since its last write, like etcd's
   catch-up. A revision's events always stay in one batch; a batch takes no more after
   :data:`MAX_BATCH_EVENTS` events or once :meth:`WatchHub.seal` was called for its stream
   (something else was queued after it, e.g. a progress notification, that later events
   must not overtake).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdpy.mvcc.kvstore import DELETE, PUT, Event, ReadView

#: etcd's ``chanBufLen``: responses a stream may hold before its watchers become victims.
DEFAULT_STREAM_CAPACITY = 128
#: etcd's ``maxWatchersPerSync``.
MAX_WATCHERS_PER_SYNC = 512
#: Events read per catch-up chunk (a chunk ends on a revision boundary).
HISTORY_CHUNK = 1000
#: An open batch takes the events of another revision only while it holds fewer (rule 7).
MAX_BATCH_EVENTS = 500

SYNCED = "synced"
UNSYNCED = "unsynced"
CANCELED = "canceled"


@dataclass(eq=False, slots=True)
class WatchStream:
    """One client stream's budget (etcd ``watchStream``); watchers keyed by their ID."""

    capacity: int = DEFAULT_STREAM_CAPACITY
    pending: int = 0
    watchers: dict[int, Watcher] = field(default_factory=dict)
    #: Rule 7: batches stay open for more events (the sender calls ``taken``).
    coalesce: bool = False
    #: Bumped by ``seal``: only batches opened in the current epoch take more events.
    epoch: int = 0

    def has_room(self) -> bool:
        return self.pending < self.capacity


@dataclass(eq=False, slots=True)
class Watcher:
    """One watcher (etcd ``watcher``). ``range_end``: ``b""`` single key, ``b"\\x00"`` every
    key >= ``key``, else ``[key, range_end)``. ``progress_notify``/``fragment`` are carried
    for the API layer; the hub does not use them."""

    stream: WatchStream
    id: int
    key: bytes
    range_end: bytes
    min_rev: int
    no_put: bool = False
    no_delete: bool = False
    prev_kv: bool = False
    progress_notify: bool = False
    fragment: bool = False
    state: str = SYNCED
    #: True once it fell behind because its stream was full (until it is synced again).
    victim: bool = False
    #: Its batch not yet taken by the sender, that more events may join (rule 7).
    open: WatchBatch | None = None
    #: Index of the event list it gets in ``notify``: its filters and prev_kv as bits.
    kind: int = 0

    def matches(self, key: bytes) -> bool:
        end = self.range_end
        if not end:
            return key == self.key
        if end == b"\x00":
            return key >= self.key
        return self.key <= key < end


class WatchBatch:
    """What to send for one watcher (a ``WatchResponse`` before fragmentation): ``revision``
    is the header revision; ``canceled`` with ``compact_revision`` ends a compacted watcher.
    An open batch (rule 7) still grows: read it when the sender takes it."""

    __slots__ = ("canceled", "compact_revision", "epoch", "events", "revision", "watcher")

    def __init__(
        self,
        watcher: Watcher,
        revision: int,
        events: list[Event],
        compact_revision: int = 0,
        canceled: bool = False,
    ) -> None:
        self.watcher = watcher
        self.revision = revision
        self.events = events
        self.compact_revision = compact_revision
        self.canceled = canceled
        self.epoch = watcher.stream.epoch

    def __repr__(self) -> str:
        return (
            f"WatchBatch(watch_id={self.watcher.id}, revision={self.revision}, "
            f"events={len(self.events)}, canceled={self.canceled})"
        )


@dataclass(slots=True)
class SyncPlan:
    """Unsynced watchers to catch up and the first revision any of them needs."""

    watchers: list[Watcher]
    min_rev: int
    prev_kv: bool


@dataclass(slots=True)
class HistoryChunk:
    """History read for a plan: events of revisions ``start..next_rev-1`` in order, and the
    compacted revision of the snapshot they came from."""

    start: int
    events: list[Event]
    next_rev: int
    compact_revision: int


def read_history(view: ReadView, plan: SyncPlan, limit: int = HISTORY_CHUNK) -> HistoryChunk:
    """Read the next chunk of history for ``plan`` (any thread; does not touch the hub)."""
    start = max(plan.min_rev, view.compact_revision, 1)
    events, nxt = view.changes(start, 0, limit, prev_kv=plan.prev_kv)
    return HistoryChunk(start, events, nxt, view.compact_revision)


class WatchHub:
    """All watchers of one member. Owned by one thread (the event loop)."""

    def __init__(self, current_revision: int) -> None:
        self._current = current_revision
        self._single: dict[bytes, dict[Watcher, None]] = {}
        # Range watchers grouped by their range: many watchers usually share a few prefixes.
        self._ranges: dict[tuple[bytes, bytes], dict[Watcher, None]] = {}
        self._unsynced: dict[Watcher, None] = {}

    @property
    def current_revision(self) -> int:
        """The last revision passed to :meth:`notify` (or the start revision)."""
        return self._current

    # --- streams and watchers ------------------------------------------------------------------

    def new_stream(
        self, capacity: int = DEFAULT_STREAM_CAPACITY, *, coalesce: bool = False
    ) -> WatchStream:
        return WatchStream(capacity, coalesce=coalesce)

    def close_stream(self, stream: WatchStream) -> None:
        """Cancel every watcher of ``stream``."""
        for w in list(stream.watchers.values()):
            self.cancel(w)

    def add(
        self,
        stream: WatchStream,
        watch_id: int,
        key: bytes,
        range_end: bytes = b"",
        start_rev: int = 0,
        *,
        no_put: bool = False,
        no_delete: bool = False,
        prev_kv: bool = False,
        progress_notify: bool = False,
        fragment: bool = False,
    ) -> Watcher:
        """Create a watcher (etcd ``watchStream.Watch``): ``start_rev`` <= 0 means "from the
        next revision"; a ``start_rev`` <= current revision makes it unsynced (history
        first); a later one waits in synced. ``watch_id`` must be unused in the stream."""
        if watch_id in stream.watchers:
            raise ValueError(f"watch id {watch_id} already in use")
        min_rev = self._current + 1 if start_rev <= 0 else start_rev
        w = Watcher(
            stream,
            watch_id,
            key,
            range_end,
            min_rev,
            no_put,
            no_delete,
            prev_kv,
            progress_notify,
            fragment,
        )
        w.kind = (1 if no_put else 0) | (2 if no_delete else 0) | (4 if prev_kv else 0)
        stream.watchers[watch_id] = w
        if min_rev > self._current:
            self._add_synced(w)
        else:
            w.state = UNSYNCED
            self._unsynced[w] = None
        return w

    def cancel(self, w: Watcher) -> bool:
        """Remove a watcher; False if it was already gone."""
        if w.state == CANCELED:
            return False
        if w.state == SYNCED:
            self._remove_synced(w)
        else:
            self._unsynced.pop(w, None)
        w.state = CANCELED
        w.stream.watchers.pop(w.id, None)
        return True

    def _add_synced(self, w: Watcher) -> None:
        w.state = SYNCED
        w.victim = False
        if w.range_end:
            self._ranges.setdefault((w.key, w.range_end), {})[w] = None
        else:
            self._single.setdefault(w.key, {})[w] = None

    def _remove_synced(self, w: Watcher) -> None:
        if w.range_end:
            rkey = (w.key, w.range_end)
            group = self._ranges.get(rkey)
            if group is not None:
                group.pop(w, None)
                if not group:
                    del self._ranges[rkey]
        else:
            group = self._single.get(w.key)
            if group is not None:
                group.pop(w, None)
                if not group:
                    del self._single[w.key]

    def ack(self, stream: WatchStream, n: int = 1) -> None:
        """``n`` batches of ``stream`` have been sent (frees room, rule 3)."""
        stream.pending = max(0, stream.pending - n)

    def taken(self, batch: WatchBatch) -> None:
        """The sender took ``batch``: it is closed (rule 7) and acknowledged (rule 3)."""
        w = batch.watcher
        if w.open is batch:
            w.open = None
        s = w.stream
        if s.pending > 0:
            s.pending -= 1

    def seal(self, stream: WatchStream) -> None:
        """Close every open batch of ``stream``: what is queued after now must not be
        overtaken by events joining an earlier batch (rule 7)."""
        stream.epoch += 1

    # --- live events ---------------------------------------------------------------------------

    def notify(self, revision: int, events: list[Event]) -> list[WatchBatch]:
        """Deliver the events of ``revision`` to synced watchers (rule 2, 3, 7); returns the
        new batches (events joining an open batch are not returned again)."""
        if revision <= self._current:
            raise ValueError(f"notify({revision}) after {self._current}")
        self._current = revision
        # Every watcher is in exactly one group (its key or its range): match per group,
        # then give each watcher of a group the group's event list for its filters.
        hits: dict[int, tuple[dict[Watcher, None], list[Event]]] = {}
        single = self._single
        ranges = self._ranges
        for ev in events:
            key = ev.kv.key
            group = single.get(key)
            if group:
                hit = hits.get(id(group))
                if hit is None:
                    hits[id(group)] = (group, [ev])
                else:
                    hit[1].append(ev)
            for (lo, end), rgroup in ranges.items():
                if key >= lo and (key < end or end == b"\x00"):
                    hit = hits.get(id(rgroup))
                    if hit is None:
                        hits[id(rgroup)] = (rgroup, [ev])
                    else:
                        hit[1].append(ev)
        out: list[WatchBatch] = []
        victims: list[Watcher] = []
        for group, evs in hits.values():
            by_kind: list[list[Event] | None] = [None] * 8
            for w in group:
                wevs = by_kind[w.kind]
                if wevs is None:
                    wevs = by_kind[w.kind] = _filtered(evs, w.kind)
                if not wevs or w.min_rev > revision:
                    continue  # nothing for it, or waits for a future start revision
                s = w.stream
                b = w.open
                if b is not None and b.epoch == s.epoch and len(b.events) < MAX_BATCH_EVENTS:
                    b.events += wevs
                    b.revision = revision
                    continue
                if s.pending >= s.capacity:
                    victims.append(w)
                    continue
                s.pending += 1
                b = WatchBatch(w, revision, list(wevs))
                if s.coalesce:
                    w.open = b
                out.append(b)
        for w in victims:
            self._remove_synced(w)
            w.state = UNSYNCED
            w.victim = True
            w.min_rev = revision
            self._unsynced[w] = None
        return out

    def restore(self, current_revision: int) -> None:
        """The store was replaced (raft snapshot installed, etcd ``watchableStore.Restore``):
        every synced watcher becomes unsynced and catches up from the new store (or is
        canceled if what it needs was compacted away)."""
        synced = [w for group in self._single.values() for w in group]
        synced += [w for group in self._ranges.values() for w in group]
        self._single.clear()
        self._ranges.clear()
        for w in synced:
            w.state = UNSYNCED
            # A synced watcher has seen everything up to the old current revision.
            w.min_rev = max(w.min_rev, self._current + 1)
            self._unsynced[w] = None
        self._current = current_revision

    # --- catch-up ------------------------------------------------------------------------------

    def has_unsynced(self) -> bool:
        return bool(self._unsynced)

    def has_synced(self) -> bool:
        """True if some watcher waits for :meth:`notify` (else it only moves the revision)."""
        return bool(self._single or self._ranges)

    def sync_plan(self, max_watchers: int = MAX_WATCHERS_PER_SYNC) -> SyncPlan | None:
        """Pick up to ``max_watchers`` unsynced watchers whose stream has room; None if none."""
        picked: list[Watcher] = []
        for w in self._unsynced:
            if w.stream.has_room():
                picked.append(w)
                if len(picked) >= max_watchers:
                    break
        if not picked:
            return None
        return SyncPlan(picked, min(w.min_rev for w in picked), any(w.prev_kv for w in picked))

    def apply_sync(self, plan: SyncPlan, chunk: HistoryChunk) -> list[WatchBatch]:
        """Deliver a history chunk to the plan's watchers (rule 4, 5)."""
        cur = self._current
        end = min(chunk.next_rev, cur + 1)  # revisions [.., end) are covered by this chunk
        events = [e for e in chunk.events if e.kv.mod_revision < end]
        out: list[WatchBatch] = []
        for w in plan.watchers:
            if w.state != UNSYNCED:
                continue
            s = w.stream
            if not s.has_room():
                continue
            if w.min_rev < chunk.compact_revision:
                s.pending += 1
                self.cancel(w)
                out.append(WatchBatch(w, cur, [], chunk.compact_revision, True))
                continue
            if w.min_rev < chunk.start:
                continue  # chunk starts after what it needs (plan is stale); next round
            if w.min_rev >= end:
                if w.min_rev > cur:
                    self._unsynced.pop(w, None)
                    self._add_synced(w)
                continue
            evs: list[Event] = []
            for ev in events:
                if ev.kv.mod_revision >= w.min_rev and w.matches(ev.kv.key):
                    _add_event_to(evs, w, ev)
            if evs:
                s.pending += 1
                b = WatchBatch(w, cur, evs)
                if s.coalesce:
                    w.open = b
                out.append(b)
            w.min_rev = end
            if end > cur:
                self._unsynced.pop(w, None)
                self._add_synced(w)
        return out

    # --- progress ------------------------------------------------------------------------------

    def progress_revision(self, stream: WatchStream) -> int | None:
        """The revision a progress notification may carry for ``stream``, or None while any
        of its watchers is unsynced (rule 6)."""
        for w in stream.watchers.values():
            if w.state != SYNCED:
                return None
        return self._current


def _add_event_to(evs: list[Event], w: Watcher, ev: Event) -> None:
    if ev.type == PUT:
        if w.no_put:
            return
    elif ev.type == DELETE and w.no_delete:
        return
    if not w.prev_kv and ev.prev_kv is not None:
        ev = ev._replace(prev_kv=None)
    evs.append(ev)


def _filtered(events: list[Event], kind: int) -> list[Event]:
    """``events`` as a watcher of ``kind`` (``Watcher.kind`` bits) gets them."""
    no_put, no_delete, prev_kv = kind & 1, kind & 2, kind & 4
    out: list[Event] = []
    for ev in events:
        if ev.type == PUT:
            if no_put:
                continue
        elif ev.type == DELETE and no_delete:
            continue
        if not prev_kv and ev.prev_kv is not None:
            ev = ev._replace(prev_kv=None)
        out.append(ev)
    return out
