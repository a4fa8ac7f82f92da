"""Randomized safety check of the core (a small cousin of tests/sim): random delivery
order, drops, duplicates, partitions, crashes that lose everything unpersisted, restarts.

Invariants checked after every step: at most one leader per term; the applied sequences
of all nodes are prefixes of one another; commit indexes never decrease; persisted term
never decreases and the vote never changes within a term.
"""

from __future__ import annotations

from random import Random

import pytest

from etcdpy.raft import EntryType, HardState, Message, StateType, StepPeerNotFound
from tests.raft.network import Node, voters_storage


def run(seed: int, steps: int = 600, n: int = 3, **cfg: object) -> int:
    rng = Random(seed)
    ids = list(range(1, n + 1))
    cfg.setdefault("election_tick", 4)
    nodes = {i: Node(i, voters_storage(ids), dict(cfg), seed) for i in ids}
    pool: list[Message] = []
    down: set[int] = set()
    cut: set[tuple[int, int]] = set()
    leaders: dict[int, int] = {}
    applied_at: dict[int, tuple[int, bytes]] = {}  # index -> (term, data) applied anywhere
    seen: dict[int, int] = {i: 0 for i in ids}  # how many applied entries were checked
    last_hs: dict[int, HardState] = {i: HardState() for i in ids}
    next_val = 0

    def flush(i: int) -> None:
        pool.extend(nodes[i].handle_ready())

    for step in range(steps):
        r = rng.random()
        if r < 0.55 and pool:
            m = pool.pop(rng.randrange(len(pool)))
            if m.to in down or (m.from_, m.to) in cut or rng.random() < 0.05:
                if m.type == m.type.MsgSnap and m.from_ not in down:
                    nodes[m.from_].rn.report_snapshot(m.to, True)
                    flush(m.from_)
                continue
            if rng.random() < 0.03:
                pool.append(m)  # duplicate
            if m.type == m.type.MsgSnap and m.from_ not in down:
                # etcd's transport contract: report every snapshot's outcome
                nodes[m.from_].rn.report_snapshot(m.to, False)
                flush(m.from_)
            try:
                nodes[m.to].rn.step(m)
            except StepPeerNotFound:
                pass
            flush(m.to)
        elif r < 0.75:
            i = rng.choice(ids)
            if i not in down:
                nodes[i].rn.tick()
                flush(i)
        elif r < 0.88:
            i = rng.choice(ids)
            if i not in down:
                try:
                    nodes[i].rn.propose(b"v%d" % next_val)
                    next_val += 1
                except Exception:
                    pass
                flush(i)
        elif r < 0.90:
            i = rng.choice(ids)
            if i not in down and len(down) < (n - 1) // 2 + 1:
                down.add(i)
        elif r < 0.93 and down:
            i = rng.choice(sorted(down))
            down.discard(i)
            nodes[i].restart()
            flush(i)
        elif r < 0.95:
            a, b = rng.sample(ids, 2)
            cut.add((a, b))
            cut.add((b, a))
        elif r < 0.98:
            cut.clear()
        elif r < 0.99:
            i = rng.choice(ids)
            if i not in down:
                nodes[i].compact()
        # invariants
        for i, nd in nodes.items():
            if i in down:
                continue
            rf = nd.raft
            if rf.state == StateType.LEADER:
                prev = leaders.setdefault(rf.term, i)
                assert prev == i, f"seed {seed} step {step}: two leaders in term {rf.term}"
            hs = nd.storage.hard_state
            old = last_hs[i]
            assert hs.term >= old.term, f"seed {seed}: persisted term decreased"
            if hs.term == old.term and old.vote != 0:
                assert hs.vote == old.vote, f"seed {seed}: vote changed in term {hs.term}"
            assert hs.commit >= old.commit or hs.is_empty(), f"seed {seed}: commit decreased"
            if not hs.is_empty():
                last_hs[i] = hs
            if len(nd.applied) < seen[i]:
                seen[i] = 0  # restarted
            for e in nd.applied[seen[i] :]:
                got = applied_at.setdefault(e.index, (e.term, e.data))
                assert got == (e.term, e.data), f"seed {seed} step {step}: divergence at {e}"
            seen[i] = len(nd.applied)
    # heal and make progress: everything must converge
    cut.clear()
    for i in sorted(down):
        nodes[i].restart()
    down.clear()
    for i in ids:
        flush(i)
    for _ in range(400):
        while pool:
            m = pool.pop(0)
            try:
                nodes[m.to].rn.step(m)
            except StepPeerNotFound:
                pass
            flush(m.to)
        for i in ids:
            nodes[i].rn.tick()
            flush(i)
    lead = [i for i in ids if nodes[i].raft.state == StateType.LEADER]
    assert len(lead) == 1, f"seed {seed}: no single leader after healing: {lead}"
    nodes[lead[0]].rn.propose(b"final")
    flush(lead[0])
    for _ in range(20):
        while pool:
            m = pool.pop(0)
            nodes[m.to].rn.step(m)
            flush(m.to)
        for i in ids:
            nodes[i].rn.tick()
            flush(i)
    for i in ids:
        data = [e.data for e in nodes[i].applied if e.type == EntryType.NORMAL and e.data]
        assert data and data[-1] == b"final", f"seed {seed}: node {i} did not apply"
        for e in nodes[i].applied:
            got = applied_at.setdefault(e.index, (e.term, e.data))
            assert got == (e.term, e.data), f"seed {seed}: divergence after healing at {e}"
    logs = {i: nodes[i].log() for i in ids}
    for i, lg in logs.items():
        d = dict(lg)
        for idx, t in logs[lead[0]]:
            assert d.get(idx, t) == t, f"seed {seed}: logs of {i} and leader differ at {idx}"

    return len(applied_at)


@pytest.mark.parametrize("seed", range(40))
def test_random_safety_prevote_checkquorum(seed: int) -> None:
    run(seed)


@pytest.mark.parametrize("seed", range(15))
def test_random_safety_plain(seed: int) -> None:
    run(seed, pre_vote=False, check_quorum=False)


@pytest.mark.parametrize("seed", range(10))
def test_random_safety_five_nodes(seed: int) -> None:
    run(seed, n=5, max_size_per_msg=1, max_inflight_msgs=2)
