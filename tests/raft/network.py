"""A tiny deterministic in-test network of RawNodes over MemoryStorage.

Every node is driven synchronously by the Ready contract: persist (MemoryStorage.save),
then send, then apply (conf changes through apply_conf_change), then advance. Messages are
delivered in FIFO order until the network is quiet. ``drop`` filters model partitions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from random import Random
from typing import Any

from etcdpy.raft import (
    ConfState,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    RaftConfig,
    RawNode,
    ReadState,
    StateType,
    StepPeerNotFound,
    decode_conf_change_entry,
)
from etcdpy.raft.core import Raft


class Node:
    def __init__(self, id_: int, storage: MemoryStorage, cfg: dict[str, Any], seed: int):
        self.id = id_
        self.storage = storage
        self.cfg = cfg
        self.seed = seed
        self.applied: list[Entry] = []
        self.applied_index = 0
        self.read_states: list[ReadState] = []
        self.conf_state: ConfState | None = None
        self.rn = self._new_rawnode(applied=0)

    def _new_rawnode(self, applied: int) -> RawNode:
        c = RaftConfig(
            id=self.id, applied=applied, rng=Random(self.seed * 1000 + self.id), **self.cfg
        )
        return RawNode(c, self.storage)

    def restart(self) -> None:
        """Crash and restart from what was persisted (nothing unpersisted survives)."""
        snap = self.storage.snapshot()
        self.applied = []
        self.applied_index = snap.metadata.index
        self.rn = self._new_rawnode(applied=snap.metadata.index)

    @property
    def raft(self) -> Raft:
        return self.rn.raft

    @property
    def state(self) -> StateType:
        return self.rn.raft.state

    @property
    def term(self) -> int:
        return self.rn.raft.term

    @property
    def committed(self) -> int:
        return self.rn.raft.raft_log.committed

    def applied_data(self) -> list[bytes]:
        return [e.data for e in self.applied if e.type == EntryType.NORMAL and e.data]

    def log(self) -> list[tuple[int, int]]:
        """(index, term) of the whole (stable + unstable) log after the snapshot."""
        lg = self.rn.raft.raft_log
        return [(e.index, e.term) for e in lg.entries(lg.first_index())]

    def compact(self, index: int | None = None) -> None:
        """Snapshot the applied state at ``index`` (default: applied) and compact the log."""
        i = self.applied_index if index is None else index
        if i <= self.storage.snapshot().metadata.index:
            return
        self.storage.create_snapshot(
            i, self.conf_state or self.rn.status().conf_state, b"snap@%d" % i
        )
        self.storage.compact(i)

    def handle_ready(self) -> list[Message]:
        out: list[Message] = []
        while self.rn.has_ready():
            rd = self.rn.ready()
            self.storage.save(rd.hard_state, rd.entries, rd.snapshot)
            out.extend(rd.messages)
            self.read_states.extend(rd.read_states)
            if not rd.snapshot.is_empty():
                self.applied_index = rd.snapshot.metadata.index
                self.conf_state = rd.snapshot.metadata.conf_state
            for e in rd.committed_entries:
                assert e.index == self.applied_index + 1, (e.index, self.applied_index)
                self.applied_index = e.index
                if e.type != EntryType.NORMAL:
                    cc = decode_conf_change_entry(e.type, e.data)
                    self.conf_state = self.rn.apply_conf_change(cc)
                self.applied.append(e)
            self.rn.advance(rd)
        return out


def voters_storage(ids: Iterable[int], learners: Iterable[int] = ()) -> MemoryStorage:
    return MemoryStorage.with_conf_state(
        ConfState(voters=tuple(sorted(ids)), learners=tuple(sorted(learners)))
    )


class Network:
    def __init__(
        self,
        ids: Iterable[int],
        *,
        learners: Iterable[int] = (),
        seed: int = 0,
        storages: dict[int, MemoryStorage] | None = None,
        **cfg: Any,
    ) -> None:
        ids = list(ids)
        learners = list(learners)
        self.cfg = cfg
        self.seed = seed
        self.nodes: dict[int, Node] = {}
        for i in ids + learners:
            st = (storages or {}).get(i) or voters_storage(ids, learners)
            self.nodes[i] = Node(i, st, cfg, seed)
        self.drops: list[Callable[[Message], bool]] = []
        self.cut: set[tuple[int, int]] = set()
        self.down: set[int] = set()
        self.delivered: list[Message] = []

    def add_node(self, id_: int, storage: MemoryStorage | None = None) -> Node:
        n = Node(id_, storage or MemoryStorage(), self.cfg, self.seed)
        self.nodes[id_] = n
        return n

    # --- faults ----------------------------------------------------------------------

    def isolate(self, id_: int) -> None:
        for j in self.nodes:
            if j != id_:
                self.cut.add((id_, j))
                self.cut.add((j, id_))

    def partition(self, *groups: Iterable[int]) -> None:
        gs = [set(g) for g in groups]
        for a in gs:
            for b in gs:
                if a is b:
                    continue
                for i in a:
                    for j in b:
                        self.cut.add((i, j))

    def recover(self) -> None:
        self.cut.clear()
        self.drops.clear()

    def _blocked(self, m: Message) -> bool:
        if m.to not in self.nodes or m.to in self.down or m.from_ in self.down:
            return True
        if (m.from_, m.to) in self.cut:
            return True
        return any(d(m) for d in self.drops)

    # --- driving ---------------------------------------------------------------------

    def deliver(self, msgs: Iterable[Message], *, filtered: bool = True) -> None:
        q: deque[Message] = deque(msgs)
        while q:
            m = q.popleft()
            if filtered and self._blocked(m):
                continue
            filtered = True  # only the first batch may bypass the filters
            n = self.nodes[m.to]
            self.delivered.append(m)
            try:
                n.rn.step(m)
            except StepPeerNotFound:
                pass
            q.extend(n.handle_ready())

    def inject(self, m: Message) -> None:
        """Deliver ``m`` to its recipient bypassing the filters (the replies are filtered)."""
        n = self.nodes[m.to]
        n.rn.step(m)
        self.deliver(n.handle_ready())

    def stabilize(self) -> None:
        while True:
            msgs: list[Message] = []
            for i, n in self.nodes.items():
                if i not in self.down:
                    msgs.extend(n.handle_ready())
            if not msgs:
                return
            self.deliver(msgs)

    def tick(self, id_: int | None = None, n: int = 1) -> None:
        ids = [id_] if id_ is not None else [i for i in self.nodes if i not in self.down]
        for _ in range(n):
            for i in ids:
                self.nodes[i].rn.tick()
            self.stabilize()

    def campaign(self, id_: int) -> None:
        self.nodes[id_].rn.campaign()
        self.stabilize()

    def propose(self, id_: int, data: bytes) -> None:
        self.nodes[id_].rn.propose(data)
        self.stabilize()

    def leader(self) -> int | None:
        leaders = [
            i for i, n in self.nodes.items() if i not in self.down and n.state == StateType.LEADER
        ]
        return max(leaders, key=lambda i: self.nodes[i].term) if leaders else None

    def crash(self, id_: int) -> None:
        self.down.add(id_)

    def restart(self, id_: int) -> None:
        self.down.discard(id_)
        self.nodes[id_].restart()
        self.stabilize()
