"""Progress state machine and Inflights (etcd's tracker tests, our own cases)."""

from __future__ import annotations

import pytest

from etcdpy.raft.tracker import Inflights, Progress, ProgressState


def test_inflights_add_free() -> None:
    inf = Inflights(3)
    for i in (5, 7, 9):
        assert not inf.full()
        inf.add(i)
    assert inf.full()
    with pytest.raises(OverflowError):
        inf.add(10)
    inf.free_le(6)
    assert inf.count() == 2 and not inf.full()
    inf.free_le(100)
    assert inf.count() == 0
    inf.add(1)
    inf.add(2)
    inf.free_first_one()
    assert inf.count() == 1
    inf.reset()
    assert inf.count() == 0


def test_progress_probe_pauses_after_send_and_unpauses_on_ack() -> None:
    pr = Progress(match=0, next_=5, max_inflight=4)
    assert pr.state == ProgressState.PROBE and not pr.is_paused()
    pr.probe_sent = True
    assert pr.is_paused()
    assert pr.maybe_update(4)
    assert not pr.is_paused() and pr.match == 4 and pr.next == 5
    assert not pr.maybe_update(3)  # stale ack
    assert pr.match == 4


def test_progress_replicate_window() -> None:
    pr = Progress(match=3, next_=4, max_inflight=2)
    pr.become_replicate()
    assert pr.next == 4
    pr.optimistic_update(6)
    pr.inflights.add(6)
    pr.optimistic_update(8)
    pr.inflights.add(8)
    assert pr.is_paused()
    pr.maybe_update(6)
    pr.inflights.free_le(6)
    assert not pr.is_paused()


def test_maybe_decr_to_replicate() -> None:
    pr = Progress(match=5, next_=10, max_inflight=4)
    pr.become_replicate()
    pr.next = 10
    assert not pr.maybe_decr_to(5, 5)  # rejection at or below match is stale
    assert pr.maybe_decr_to(9, 9)
    assert pr.next == 6


def test_maybe_decr_to_probe_uses_hint() -> None:
    pr = Progress(match=0, next_=10, max_inflight=4)
    assert not pr.maybe_decr_to(5, 3)  # not the index we probed (next-1 == 9)
    pr.probe_sent = True
    assert pr.maybe_decr_to(9, 3)
    assert pr.next == 4 and not pr.probe_sent
    pr2 = Progress(match=2, next_=10, max_inflight=4)
    assert pr2.maybe_decr_to(9, 0)
    assert pr2.next == 3  # never below match + 1


def test_snapshot_state() -> None:
    pr = Progress(match=1, next_=2, max_inflight=4)
    pr.become_snapshot(10)
    assert pr.is_paused() and pr.pending_snapshot == 10
    pr.become_probe()
    assert pr.state == ProgressState.PROBE and pr.next == 11
    pr.become_snapshot(10)
    pr.pending_snapshot = 0  # failed snapshot
    pr.become_probe()
    assert pr.next == 2
