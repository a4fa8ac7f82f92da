"""ReadIndex bookkeeping on the leader (etcd's ``read_only.go``).

SAFE: a read request records the commit index at arrival, and is answered once a quorum
acknowledged a heartbeat carrying the request's context (proof that no newer leader
existed when the index was taken). Requests are answered in arrival order: an ack for a
later request also releases all earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdpy.raft.config import ReadOnlyOption
from etcdpy.raft.types import Message


@dataclass(slots=True)
class ReadIndexStatus:
    req: Message
    index: int
    acks: dict[int, bool] = field(default_factory=dict)


class ReadOnly:
    __slots__ = ("option", "pending_read_index", "read_index_queue")

    def __init__(self, option: ReadOnlyOption) -> None:
        self.option = option
        self.pending_read_index: dict[bytes, ReadIndexStatus] = {}
        self.read_index_queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        ctx = m.entries[0].data
        if ctx in self.pending_read_index:
            return
        self.pending_read_index[ctx] = ReadIndexStatus(req=m, index=index)
        self.read_index_queue.append(ctx)

    def recv_ack(self, id_: int, context: bytes) -> dict[int, bool] | None:
        rs = self.pending_read_index.get(context)
        if rs is None:
            return None
        rs.acks[id_] = True
        return rs.acks

    def advance(self, context: bytes) -> list[ReadIndexStatus]:
        """Dequeue every request up to and including ``context``."""
        if context not in self.pending_read_index:
            return []
        out: list[ReadIndexStatus] = []
        i = 0
        for ctx in self.read_index_queue:
            i += 1
            out.append(self.pending_read_index.pop(ctx))
            if ctx == context:
                break
        del self.read_index_queue[:i]
        return out

    def last_pending_request_ctx(self) -> bytes:
        return self.read_index_queue[-1] if self.read_index_queue else b""
