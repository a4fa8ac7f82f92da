"""RaftLog (unstable tail + MemoryStorage) against a plain list model (hypothesis)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from etcdpy.raft import ConfState, Entry, MemoryStorage
from etcdpy.raft.log import RaftLog


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.storage = MemoryStorage.with_conf_state(ConfState(voters=(1,)))
        self.log = RaftLog(self.storage)
        self.model: list[int] = []  # model[i] = term of index i+1
        self.first = 1  # first index still available (after compaction)
        self.term = 1

    @rule(n=st.integers(1, 4), back=st.integers(0, 3), bump=st.booleans())
    def append(self, n: int, back: int, bump: bool) -> None:
        """Append n entries after max(committed, last - back), possibly overwriting."""
        after = max(self.log.committed, len(self.model) - back, self.first - 1)
        if bump:
            self.term += 1
        ents = [Entry(index=after + 1 + k, term=self.term) for k in range(n)]
        self.log.append(ents)
        del self.model[after:]
        self.model += [self.term] * n

    @rule()
    def persist(self) -> None:
        ents = self.log.unstable_entries()
        if ents:
            self.storage.append(ents)
            self.log.stable_to(ents[-1].index, ents[-1].term)
        assert not self.log.unstable.entries

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        to = data.draw(st.integers(0, len(self.model)))
        before = self.log.committed
        self.log.commit_to(to)
        assert self.log.committed == max(before, to)

    @precondition(lambda self: not self.log.unstable.entries)
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        hi = min(self.log.committed, self.storage.last_index())
        if hi < self.first:
            return
        i = data.draw(st.integers(self.first, hi))
        self.storage.create_snapshot(i, None, b"")
        self.storage.compact(i)
        self.first = i + 1

    @invariant()
    def matches_model(self) -> None:
        lg = self.log
        assert lg.last_index() == len(self.model)
        assert lg.first_index() == self.first
        for i in range(self.first, len(self.model) + 1):
            assert lg.term(i) == self.model[i - 1], i
        if self.first <= len(self.model):
            got = [(e.index, e.term) for e in lg.slice(self.first, len(self.model) + 1)]
            assert got == [(i, self.model[i - 1]) for i in range(self.first, len(self.model) + 1)]
        assert lg.committed <= lg.last_index()


LogMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestLogModel = LogMachine.TestCase
