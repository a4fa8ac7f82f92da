"""The watch hub with coalescing streams (watch_hub rule 7, what the server uses): the model
test of test_watch_hub.py again — every watcher gets exactly its events, in order — with
open batches that grow until taken, and seals at random; plus the rule's unit cases."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from etcdpy.mvcc.kvstore import prefix_end
from etcdpy.mvcc.watch_hub import MAX_BATCH_EVENTS, SYNCED, UNSYNCED
from tests.mvcc.test_watch_hub import Env, HubMachine


class CoalescingHubMachine(HubMachine):
    def __init__(self) -> None:
        super().__init__()
        self.streams = [self.env.hub.new_stream(capacity=c, coalesce=True) for c in (1, 2, 64)]

    @rule()
    def seal(self) -> None:
        for s in self.streams:
            self.env.hub.seal(s)

    @rule(si=st.integers(0, 2), n=st.integers(1, 3))
    def consume(self, si: int, n: int) -> None:
        q = self.queues[si]
        taken = q[:n]
        del q[:n]
        for b in taken:
            self.env.hub.taken(b)  # closes it: read its events only now
            if b.canceled:
                self.compacted[b.watcher] = b.compact_revision
            if b.watcher in self.received:
                self.received[b.watcher].extend(b.events)


CoalescingHubMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCoalescingHubModel = CoalescingHubMachine.TestCase


def test_open_batch_takes_later_revisions_until_taken(env: Env) -> None:
    s = env.hub.new_stream(capacity=1, coalesce=True)
    w = env.hub.add(s, 1, b"k", prefix_end(b"k"))
    (b,) = env.put(b"k1", b"1")
    assert env.put(b"k2", b"2") == []  # joined b: no new batch, no victim
    assert env.put(b"k3", b"3") == []
    assert w.state == SYNCED and s.pending == 1
    assert [e.kv.value for e in b.events] == [b"1", b"2", b"3"]
    assert b.revision == env.kv.current_revision
    env.hub.taken(b)
    assert s.pending == 0
    (b2,) = env.put(b"k4", b"4")
    assert b2 is not b and [e.kv.value for e in b2.events] == [b"4"]


def test_seal_closes_open_batches(env: Env) -> None:
    s = env.hub.new_stream(capacity=8, coalesce=True)
    env.hub.add(s, 1, b"k")
    (b,) = env.put(b"k", b"1")
    env.hub.seal(s)  # e.g. a progress notification was queued after b
    (b2,) = env.put(b"k", b"2")
    assert [e.kv.value for e in b.events] == [b"1"]
    assert [e.kv.value for e in b2.events] == [b"2"]


def test_full_batch_takes_no_more(env: Env) -> None:
    s = env.hub.new_stream(capacity=1, coalesce=True)
    w = env.hub.add(s, 1, b"k")
    (b,) = env.put(b"k", b"0")
    for i in range(MAX_BATCH_EVENTS - 1):
        assert env.put(b"k", b"%d" % i) == []
    assert len(b.events) == MAX_BATCH_EVENTS
    assert env.put(b"k", b"x") == []  # stream full and b full: a victim, nothing lost
    assert w.state == UNSYNCED and w.victim
    env.hub.taken(b)
    got = env.sync()
    assert [e.kv.value for x in got for e in x.events] == [b"x"]
    assert w.state == SYNCED
