"""Lease bookkeeping (etcd's server/lease), pure: time is passed in, nothing waits."""

from __future__ import annotations

from etcdpy.lease.lessor import (
    MAX_LEASE_TTL,
    NO_LEASE,
    Checkpoint,
    Lease,
    LeaseRecord,
    Lessor,
    Renewal,
    TimeToLive,
    min_lease_ttl,
)

__all__ = [
    "MAX_LEASE_TTL",
    "NO_LEASE",
    "Checkpoint",
    "Lease",
    "LeaseRecord",
    "Lessor",
    "Renewal",
    "TimeToLive",
    "min_lease_ttl",
]
