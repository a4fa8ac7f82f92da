"""Lessor behaviour (etcd server/lease semantics), with time passed in explicitly."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcdpy import errors
from etcdpy.lease import MAX_LEASE_TTL, NO_LEASE, LeaseRecord, Lessor, min_lease_ttl


def primary(min_ttl: int = 2, **kw: object) -> Lessor:
    le = Lessor(min_ttl, **kw)  # type: ignore[arg-type]
    le.promote(0.0, 0.0)
    return le


def test_min_lease_ttl_matches_etcd_defaults() -> None:
    assert min_lease_ttl(10, 100) == 2  # 1.5 * 1000 ms, ceil
    assert min_lease_ttl(10, 10) == 1
    assert min_lease_ttl(50, 100) == 8  # 75 ticks * 100 ms = 7.5 s


def test_grant_applies_min_ttl_and_rejects_bad_requests() -> None:
    le = primary(min_ttl=5)
    assert le.grant(1, 1, now=0).ttl == 5
    assert le.grant(2, 60, now=0).ttl == 60
    with pytest.raises(errors.ErrLeaseExists):
        le.grant(1, 10, now=0)
    with pytest.raises(errors.ErrLeaseTTLTooLarge):
        le.grant(3, MAX_LEASE_TTL + 1, now=0)
    with pytest.raises(errors.ErrLeaseNotFound):
        le.grant(NO_LEASE, 10, now=0)
    le.grant(4, MAX_LEASE_TTL, now=0)


def test_expiry_only_on_primary() -> None:
    le = Lessor(1)
    le.grant(7, 10, now=0)
    assert le.expired_leases(1e9) == []
    le.promote(100.0, extend=1.0)
    assert le.expired_leases(110.5) == []
    assert le.expired_leases(111.0) == [7]
    le.demote()
    assert le.expired_leases(1e9) == []


def test_expired_lease_is_retried_not_repeated() -> None:
    le = primary(expired_retry_interval=3.0)
    le.grant(1, 10, now=0)
    assert le.expired_leases(10.0) == [1]
    assert le.expired_leases(12.9) == []
    assert le.expired_leases(13.0) == [1]  # revoke never applied: ask again
    le.revoke(1)
    assert le.expired_leases(100.0) == []


def test_renew_restarts_clock_and_reports_expired() -> None:
    le = primary()
    le.grant(1, 10, now=0)
    r = le.renew(1, now=8.0)
    assert (r.ttl, r.expired) == (10, False)
    assert le.expired_leases(17.9) == []
    assert le.expired_leases(18.0) == [1]
    assert le.renew(1, now=18.5).expired
    with pytest.raises(errors.ErrLeaseNotFound):
        le.renew(99, now=0)
    le.demote()
    with pytest.raises(errors.ErrNotPrimary):
        le.renew(1, now=0)


def test_attach_detach_revoke_and_time_to_live() -> None:
    le = primary()
    le.grant(1, 30, now=0)
    le.grant(2, 30, now=0)
    for k in (b"c", b"a", b"b"):
        le.attach(1, k)
    le.attach(2, b"b")  # a key has one lease: moves
    le.detach(1, b"b")  # stale detach from the old lease must not unhook it
    assert le.get_lease(b"b") == 2
    ttl = le.time_to_live(1, now=10.4, keys=True)
    assert (ttl.ttl, ttl.granted_ttl, ttl.keys) == (19, 30, (b"a", b"c"))
    assert le.revoke(1) == [b"a", b"c"]
    assert le.get_lease(b"a") == NO_LEASE
    assert not le.exists(1)
    with pytest.raises(errors.ErrLeaseNotFound):
        le.revoke(1)
    with pytest.raises(errors.ErrLeaseNotFound):
        le.attach(1, b"x")
    with pytest.raises(errors.ErrLeaseNotFound):
        le.time_to_live(1, now=0)


def test_checkpoint_survives_leader_change() -> None:
    le = Lessor(1, checkpoint_interval=5.0)
    le.promote(0.0, 0.0)
    le.grant(1, 100, now=0)
    assert le.due_checkpoints(4.9) == []
    cps = le.due_checkpoints(5.0)
    assert [(c.id, c.remaining_ttl) for c in cps] == [(1, 95)]
    le.checkpoint(1, 95, now=5.0)  # applied through raft
    le.demote()
    le.promote(50.0, extend=2.0)  # new leader restarts from the checkpoint, not 100
    assert le.time_to_live(1, now=50.0).ttl == 97
    assert le.record(1) == LeaseRecord(1, 100, 95)
    r = le.renew(1, now=60.0)
    assert r.clear_checkpoint and r.ttl == 100
    assert le.time_to_live(1, now=60.0).ttl == 100


def test_restore_rebuilds_from_records() -> None:
    le = Lessor(5)
    le.restore([LeaseRecord(1, 2), LeaseRecord(2, 60, 30)], [(b"k", 2), (b"orphan", 9)])
    assert le.lookup(1) is not None and le.record(1).ttl == 5
    assert le.get_lease(b"k") == 2 and le.get_lease(b"orphan") == NO_LEASE
    le.promote(0.0, 0.0)
    assert le.time_to_live(2, now=0.0).ttl == 30
    assert [lease.id for lease in le.leases()] == [1, 2]


def test_promote_spreads_pile_up() -> None:
    le = Lessor(1, revoke_rate=40)
    for i in range(1, 101):
        le.grant(i, 10, now=0)
    le.promote(0.0, 0.0)
    per_second: dict[int, int] = {}
    for lease in le.leases():
        per_second[int(lease.expiry)] = per_second.get(int(lease.expiry), 0) + 1
    assert max(per_second.values()) <= 30  # 3/4 of the revoke rate
    assert min(lease.expiry for lease in le.leases()) == 10.0


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_expired_matches_naive_model(seed: int) -> None:
    rng = random.Random(seed)
    le = primary(min_ttl=1, expired_retry_interval=1000.0)
    model: dict[int, float] = {}
    now = 0.0
    for _ in range(60):
        now += rng.random() * 3
        op = rng.randrange(4)
        lid = rng.randrange(1, 12)
        if op == 0 and lid not in model:
            ttl = rng.randrange(1, 10)
            le.grant(lid, ttl, now)
            model[lid] = now + ttl
        elif op == 1 and lid in model and model[lid] > now:
            le.renew(lid, now)
            model[lid] = now + le.record(lid).ttl
        elif op == 2 and lid in model:
            le.revoke(lid)
            del model[lid]
        else:
            due = sorted(le.expired_leases(now))
            want = sorted(i for i, t in model.items() if t <= now)
            assert due == want
            for i in due:  # pretend the revokes applied
                le.revoke(i)
                del model[i]


def test_checkpoint_chain_on_primary() -> None:
    le = Lessor(1, checkpoint_interval=5.0)
    le.promote(0.0, 0.0)
    le.grant(1, 100, now=0)
    (cp,) = le.due_checkpoints(5.0)
    le.checkpoint(cp.id, cp.remaining_ttl, now=5.0)
    assert le.time_to_live(1, now=5.0).ttl == 95  # the running clock is unchanged
    assert le.due_checkpoints(9.9) == []
    assert [c.remaining_ttl for c in le.due_checkpoints(10.0)] == [90]
    short = Lessor(1, checkpoint_interval=5.0)
    short.promote(0.0, 0.0)
    short.grant(2, 5, now=0)  # TTL not above the interval: never checkpointed
    assert short.due_checkpoints(100.0) == []
