"""The lessor: which leases exist, what they hold, and when they expire (etcd server/lease).

Pure and synchronous: every method that needs the time takes ``now`` (monotonic seconds);
nothing here sleeps, proposes, or touches storage. The server shell drives it:

Rule 1 (state through raft). ``grant``, ``revoke`` and ``checkpoint`` are called only when
    the matching raft entry is applied, on every member, so all members hold the same leases.
    ``attach``/``detach`` are called by the KV applier inside the same apply.
Rule 2 (time only on the primary). Only the leader (primary) runs expiry clocks. A member
    that is not primary keeps every lease "forever"; ``promote(now, extend)`` starts the
    clocks (extended by the election timeout, as etcd does) and ``demote()`` stops them.
Rule 3 (expiry is a proposal, not a deletion). ``expired_leases(now)`` names the leases the
    leader should revoke through raft; it does not remove them. Each named lease is re-armed
    ``expired_retry_interval`` later in case the revoke proposal is lost (etcd's 3 s retry).
Rule 4 (persistence is the caller's). ``record(id)`` gives what to store (etcd's leasepb.Lease
    {ID, TTL, RemainingTTL}); ``restore(records, attachments)`` rebuilds after a restart or a
    snapshot. TTLs below the minimum are raised to it on grant and on restore.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from etcdpy.errors import (
    ErrLeaseExists,
    ErrLeaseNotFound,
    ErrLeaseTTLTooLarge,
    ErrNotPrimary,
)

NO_LEASE = 0
"""Lease ID meaning "no lease" (etcd's NoLease)."""

MAX_LEASE_TTL = 9_000_000_000
"""Largest TTL in seconds etcd accepts (lease.MaxLeaseTTL); larger is ErrLeaseTTLTooLarge."""

FOREVER = math.inf

DEFAULT_EXPIRED_RETRY_INTERVAL = 3.0
"""Seconds before an expired-but-not-yet-revoked lease is reported again."""

LEASE_REVOKE_RATE = 1000
"""Revocations per second etcd allows; ``promote`` spreads pile-ups below 3/4 of it."""


def min_lease_ttl(election_ticks: int, heartbeat_ms: int) -> int:
    """etcd's minimum TTL: ceil(1.5 election timeouts); a shorter lease could expire during
    a leader election before any keepalive can reach the new leader (1000/100 ms -> 2 s)."""
    min_ttl_ms = ((3 * election_ticks) // 2) * heartbeat_ms
    return max(1, math.ceil(min_ttl_ms / 1000))


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """What the backend's ``lease`` bucket stores (etcd leasepb.Lease)."""

    id: int
    ttl: int
    remaining_ttl: int = 0


@dataclass(slots=True)
class Lease:
    """One lease. ``ttl`` is the granted TTL (after the minimum is applied)."""

    id: int
    ttl: int
    remaining_ttl: int = 0
    """Checkpointed remaining TTL (0: none); used instead of ``ttl`` when the clock restarts."""
    expiry: float = FOREVER
    keys: set[bytes] = field(default_factory=set)

    def _refresh(self, now: float, extend: float) -> None:
        base = self.remaining_ttl if self.remaining_ttl > 0 else self.ttl
        self.expiry = now + extend + base

    def remaining(self, now: float) -> float:
        """Seconds until expiry (``inf`` when no clock runs: not primary)."""
        return self.expiry - now

    def record(self) -> LeaseRecord:
        return LeaseRecord(self.id, self.ttl, self.remaining_ttl)


@dataclass(frozen=True, slots=True)
class Renewal:
    """Outcome of a keepalive on the primary.

    ``expired``: the lease already ran out and its revoke is pending; etcd makes the keepalive
    wait for the revoke and then answers "not found" (TTL 0 on the stream), never renews.
    ``clear_checkpoint``: propose ``LeaseCheckpoint(id, remaining_TTL=0)`` so the other members
    forget the old checkpointed remaining TTL too.
    """

    ttl: int
    expired: bool = False
    clear_checkpoint: bool = False


@dataclass(frozen=True, slots=True)
class TimeToLive:
    """LeaseTimeToLive answer: remaining seconds (truncated, as Go's int64(d.Seconds()))."""

    id: int
    ttl: int
    granted_ttl: int
    keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A LeaseCheckpoint to propose: the lease's remaining TTL in whole seconds (ceil)."""

    id: int
    remaining_ttl: int


class Lessor:
    """Leases of one member. Not thread-safe: owned by the applier / its thread."""

    def __init__(
        self,
        min_ttl: int = 2,
        *,
        checkpoint_interval: float | None = None,
        expired_retry_interval: float = DEFAULT_EXPIRED_RETRY_INTERVAL,
        revoke_rate: int = LEASE_REVOKE_RATE,
    ) -> None:
        self.min_ttl = min_ttl
        self.checkpoint_interval = checkpoint_interval
        self.expired_retry_interval = expired_retry_interval
        self.revoke_rate = revoke_rate
        self._leases: dict[int, Lease] = {}
        self._owner: dict[bytes, int] = {}  # key -> lease (etcd's itemMap)
        self._primary = False
        # Min-heaps of (time, id) with lazy deletion: an entry is live only while
        # self._armed[id] (resp. self._cp_armed[id]) still equals its time.
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, float] = {}
        self._cp_heap: list[tuple[float, int]] = []
        self._cp_armed: dict[int, float] = {}

    # ------------------------------------------------------------------ queries

    @property
    def is_primary(self) -> bool:
        return self._primary

    def __len__(self) -> int:
        return len(self._leases)

    def exists(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def lookup(self, lease_id: int) -> Lease | None:
        return self._leases.get(lease_id)

    def get_lease(self, key: bytes) -> int:
        """The lease a key is attached to, or NO_LEASE (etcd's GetLease)."""
        return self._owner.get(key, NO_LEASE)

    def leases(self) -> list[Lease]:
        """All leases, soonest expiry first (etcd's Leases(), used by LeaseLeases)."""
        return sorted(self._leases.values(), key=lambda lease: (lease.expiry, lease.id))

    def record(self, lease_id: int) -> LeaseRecord:
        return self._get(lease_id).record()

    def time_to_live(self, lease_id: int, now: float, *, keys: bool = False) -> TimeToLive:
        """Remaining and granted TTL (and the attached keys, sorted) of a lease.

        Meaningful on the primary; elsewhere no clock runs and the remaining TTL is reported
        as the granted one (etcd forwards this call to the leader). The API answers a
        missing lease with TTL -1 rather than an error, as etcd's v3rpc does.
        """
        lease = self._get(lease_id)
        left = lease.remaining(now)
        ttl = (lease.remaining_ttl or lease.ttl) if math.isinf(left) else int(left)
        attached = tuple(sorted(lease.keys)) if keys else ()
        return TimeToLive(lease.id, ttl, lease.ttl, attached)

    # ------------------------------------------------------------------ applied changes

    def grant(self, lease_id: int, ttl: int, now: float) -> Lease:
        """Apply LeaseGrant. The TTL is raised to the minimum (the response carries it)."""
        if lease_id == NO_LEASE:
            raise ErrLeaseNotFound(f"lease id {lease_id}")
        if ttl > MAX_LEASE_TTL:
            raise ErrLeaseTTLTooLarge(f"ttl {ttl}")
        if lease_id in self._leases:
            raise ErrLeaseExists(f"lease id {lease_id:x}")
        lease = Lease(lease_id, max(ttl, self.min_ttl))
        self._leases[lease_id] = lease
        if self._primary:
            lease._refresh(now, 0.0)
            self._arm(lease)
            self._schedule_checkpoint(lease, now)
        return lease

    def revoke(self, lease_id: int) -> list[bytes]:
        """Apply LeaseRevoke: forget the lease and return its keys, sorted, for the caller to
        delete in the same backend transaction (etcd deletes them in key order)."""
        lease = self._get(lease_id)
        del self._leases[lease_id]
        self._armed.pop(lease_id, None)
        self._cp_armed.pop(lease_id, None)
        for key in lease.keys:
            if self._owner.get(key) == lease_id:
                del self._owner[key]
        return sorted(lease.keys)

    def checkpoint(self, lease_id: int, remaining_ttl: int, now: float) -> None:
        """Apply LeaseCheckpoint: remember the remaining TTL so a new leader restarts the
        clock from it instead of from the full TTL. The running clock is not touched (etcd:
        promote applies it); the primary schedules the next checkpoint. Unknown leases are
        ignored, as in etcd."""
        lease = self._leases.get(lease_id)
        if lease is None:
            return
        lease.remaining_ttl = remaining_ttl
        if self._primary:
            self._schedule_checkpoint(lease, now)

    def attach(self, lease_id: int, key: bytes) -> None:
        """Attach a key (KV applier, on put with a lease). A key has at most one lease."""
        lease = self._get(lease_id)
        previous = self._owner.get(key)
        if previous is not None and previous != lease_id and previous in self._leases:
            self._leases[previous].keys.discard(key)
        lease.keys.add(key)
        self._owner[key] = lease_id

    def detach(self, lease_id: int, key: bytes) -> None:
        """Detach a key (KV applier, on delete or re-put). Only undoes this lease's claim."""
        lease = self._get(lease_id)
        lease.keys.discard(key)
        if self._owner.get(key) == lease_id:
            del self._owner[key]

    # ------------------------------------------------------------------ primary only

    def renew(self, lease_id: int, now: float) -> Renewal:
        """Keepalive on the primary: restart the lease's clock at its full TTL."""
        if not self._primary:
            raise ErrNotPrimary()
        lease = self._get(lease_id)
        if lease.remaining(now) <= 0:
            return Renewal(-1, expired=True)
        clear = self.checkpoint_interval is not None and lease.remaining_ttl > 0
        lease.remaining_ttl = 0
        lease._refresh(now, 0.0)
        self._arm(lease)
        return Renewal(lease.ttl, clear_checkpoint=clear)

    def promote(self, now: float, extend: float) -> None:
        """Become primary: start every clock ``extend`` seconds late (etcd passes the election
        timeout, so keepalives have time to find the new leader), then spread pile-ups so no
        second has to revoke more than 3/4 of the revoke rate."""
        self._primary = True
        for lease in self._leases.values():
            lease._refresh(now, extend)
        self._spread(now, extend)
        self._heap = []
        self._armed = {}
        self._cp_heap = []
        self._cp_armed = {}
        for lease in self._leases.values():
            self._arm(lease)
            self._schedule_checkpoint(lease, now)

    def demote(self) -> None:
        """Stop being primary: every lease lives forever until the next promote."""
        self._primary = False
        for lease in self._leases.values():
            lease.expiry = FOREVER
        self._heap = []
        self._armed = {}
        self._cp_heap = []
        self._cp_armed = {}

    def expired_leases(self, now: float, limit: int | None = None) -> list[int]:
        """Leases whose time is up, soonest first, for the leader to propose LeaseRevoke.

        Each one is re-armed ``expired_retry_interval`` later, so it comes back if its revoke
        never applies (lost proposal) and is not proposed twice in a row meanwhile.
        """
        out: list[int] = []
        while self._heap and (limit is None or len(out) < limit):
            when, lease_id = self._heap[0]
            if self._armed.get(lease_id) != when:
                heapq.heappop(self._heap)  # stale entry
                continue
            if when > now:
                break
            heapq.heappop(self._heap)
            lease = self._leases.get(lease_id)
            if lease is None:
                del self._armed[lease_id]
                continue
            if lease.expiry > now:  # refreshed since armed; re-arm at the real expiry
                self._arm(lease)
                continue
            out.append(lease_id)
            self._arm_at(lease_id, now + self.expired_retry_interval)
        return out

    def next_expiry(self) -> float:
        """Earliest armed time (for the caller's timer), ``inf`` if none."""
        while self._heap and self._armed.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else FOREVER

    def due_checkpoints(self, now: float, limit: int | None = None) -> list[Checkpoint]:
        """LeaseCheckpoints to propose (only with ``checkpoint_interval`` set, etcd's
        --experimental-enable-lease-checkpoint): remaining TTL, ceil'd, of leases whose
        checkpoint time has come and that have run for at least a second."""
        out: list[Checkpoint] = []
        while self._cp_heap and (limit is None or len(out) < limit):
            when, lease_id = self._cp_heap[0]
            if self._cp_armed.get(lease_id) != when:
                heapq.heappop(self._cp_heap)
                continue
            if when > now:
                break
            heapq.heappop(self._cp_heap)
            del self._cp_armed[lease_id]
            lease = self._leases.get(lease_id)
            if lease is None or lease.expiry <= now:
                continue
            remaining = math.ceil(lease.expiry - now)
            if remaining >= lease.ttl:
                continue
            out.append(Checkpoint(lease_id, remaining))
        return out

    # ------------------------------------------------------------------ rebuild

    def restore(
        self,
        records: Iterable[LeaseRecord],
        attachments: Iterable[tuple[bytes, int]] = (),
        *,
        now: float = 0.0,
    ) -> None:
        """Replace all state from stored records and (key, lease) pairs (restart, snapshot).

        Keys naming an unknown lease are skipped. Clocks run again only if primary (then
        from ``now``, with no extension: a promote follows a real leadership change).
        """
        self._leases = {}
        self._owner = {}
        self._heap, self._armed, self._cp_heap, self._cp_armed = [], {}, [], {}
        for rec in records:
            self._leases[rec.id] = Lease(rec.id, max(rec.ttl, self.min_ttl), rec.remaining_ttl)
        for key, lease_id in attachments:
            lease = self._leases.get(lease_id)
            if lease is not None:
                lease.keys.add(key)
                self._owner[key] = lease_id
        if self._primary:
            for lease in self._leases.values():
                lease._refresh(now, 0.0)
                self._arm(lease)

    # ------------------------------------------------------------------ internals

    def _get(self, lease_id: int) -> Lease:
        lease = self._leases.get(lease_id)
        if lease is None:
            raise ErrLeaseNotFound(f"lease id {lease_id:x}")
        return lease

    def _arm(self, lease: Lease) -> None:
        if math.isinf(lease.expiry):
            self._armed.pop(lease.id, None)
            return
        self._arm_at(lease.id, lease.expiry)

    def _arm_at(self, lease_id: int, when: float) -> None:
        self._armed[lease_id] = when
        heapq.heappush(self._heap, (when, lease_id))
        if len(self._heap) > 2 * len(self._armed) + 1024:
            self._heap = [(t, i) for i, t in self._armed.items()]
            heapq.heapify(self._heap)

    def _schedule_checkpoint(self, lease: Lease, now: float) -> None:
        interval = self.checkpoint_interval
        if interval is None or not self._primary or lease.ttl <= interval:
            return
        when = now + interval
        self._cp_armed[lease.id] = when
        heapq.heappush(self._cp_heap, (when, lease.id))

    def _spread(self, now: float, extend: float) -> None:
        """etcd's Promote overlap adjustment, in seconds."""
        leases = sorted(self._leases.values(), key=lambda lease: (lease.expiry, lease.id))
        if len(leases) < self.revoke_rate:
            return
        target = (3 * self.revoke_rate) // 4
        base = leases[0].remaining(now)
        next_window = base + 1.0
        expires = 0
        for lease in leases:
            remaining = lease.remaining(now)
            if remaining > next_window:
                base = remaining
                next_window = base + 1.0
                expires = 1
                continue
            expires += 1
            if expires <= target:
                continue
            delay = expires / target - (remaining - base)
            next_window = base + delay
            lease._refresh(now, delay + extend)
