"""etcd's server and MVCC metrics (names as etcd's, so dashboards and tests keep working).

The registry is passed in (one per member, never global); this module only needs the
``counter``/``gauge``/``gauge_func`` methods of ``observability.metrics.MetricsRegistry``.
Counters move on the event loop when results come back from the applier; gauges that are
expensive or always current (sizes, indexes, leader) are computed at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from etcdpy.mvcc.kvstore import PUT, Event

Samples = Iterable[tuple[tuple[str, ...], float]]


class Registry(Protocol):
    def counter(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> Any: ...
    def gauge(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> Any: ...
    def gauge_func(
        self,
        name: str,
        help: str,
        fn: Callable[[], Samples],
        labelnames: tuple[str, ...] = (),
    ) -> None: ...


def _one(fn: Callable[[], float]) -> Callable[[], Samples]:
    return lambda: [((), float(fn()))]


def _backend(server: Any, fn: Callable[[], float]) -> Callable[[], Samples]:
    """A gauge read from the KV environment: nothing while a defragment reopens it."""

    def samples() -> Samples:
        if server.defragmenting:
            return []
        return [((), float(fn()))]

    return samples


class ServerMetrics:
    """The member's metric handles; ``None`` registry → every call is a cheap no-op."""

    def __init__(self, reg: Registry | None) -> None:
        self.enabled = reg is not None
        if reg is None:
            return
        c = reg.counter
        self.put_total = c("etcd_mvcc_put_total", "Total number of puts seen by this member.")
        self.delete_total = c(
            "etcd_mvcc_delete_total", "Total number of deletes seen by this member."
        )
        self.range_total = c("etcd_mvcc_range_total", "Total number of ranges seen by this member.")
        self.txn_total = c("etcd_mvcc_txn_total", "Total number of txns seen by this member.")
        self.leader_changes = c(
            "etcd_server_leader_changes_seen_total", "The number of leader changes seen."
        )
        self.proposals_failed = c(
            "etcd_server_proposals_failed_total", "The total number of failed proposals seen."
        )
        self.reg = reg

    def bind(self, server: Any) -> None:
        """Register the scrape-time gauges of ``server`` (an ``EtcdServer``)."""
        if not self.enabled:
            return
        g = self.reg.gauge_func
        g(
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
            _one(lambda: 1 if server.leader else 0),
        )
        g(
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            _one(lambda: 1 if server.is_leader else 0),
        )
        g(
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed.",
            _one(lambda: server.committed_index),
        )
        g(
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied.",
            _one(lambda: server.applied_index),
        )
        g(
            "etcd_server_proposals_pending",
            "The current number of pending proposals to commit.",
            _one(lambda: server.pending_proposals),
        )
        g(
            "etcd_server_id",
            "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
            lambda: [((f"{server.id:x}",), 1.0)],
            ("server_id",),
        )
        g(
            "etcd_server_version",
            "Which version is running. 1 for 'server_version' label with current version.",
            lambda: [((server.server_version,), 1.0)],
            ("server_version",),
        )
        g(
            "etcd_cluster_version",
            "Which version is running. 1 for 'cluster_version' label with current cluster version",
            lambda: [((server.cluster_version,), 1.0)],
            ("cluster_version",),
        )
        g(
            "etcd_server_quota_backend_bytes",
            "Current backend storage quota size in bytes.",
            _one(lambda: server.quota_bytes),
        )
        g(
            "etcd_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
            _backend(server, lambda: server.kv.backend.db_size()),
        )
        g(
            "etcd_mvcc_db_total_size_in_use_in_bytes",
            "Total size of the underlying database logically in use in bytes.",
            _backend(server, lambda: server.kv.backend.db_size_in_use()),
        )
        g(
            "etcd_debugging_mvcc_current_revision",
            "The current revision of store.",
            _one(lambda: server.revision),
        )
        g(
            "etcd_debugging_mvcc_compact_revision",
            "The revision of the last compaction in store.",
            _one(lambda: server.compact_revision),
        )
        g(
            "etcd_debugging_mvcc_keys_total",
            "Total number of keys.",
            _backend(server, lambda: server.kv.range(b"\x00", b"\x00", count_only=True).count),
        )
        g(
            "etcd_debugging_mvcc_watcher_total",
            "Total number of watchers.",
            _one(lambda: server.watch_server.watcher_count()),
        )

    def applied_events(self, batches: list[tuple[int, list[Event]]]) -> None:
        if not self.enabled:
            return
        puts = deletes = 0
        for _, evs in batches:
            for ev in evs:
                if ev.type == PUT:
                    puts += 1
                else:
                    deletes += 1
        if puts:
            self.put_total.inc(amount=puts)
        if deletes:
            self.delete_total.inc(amount=deletes)

    def ranged(self) -> None:
        if self.enabled:
            self.range_total.inc()

    def txn(self) -> None:
        if self.enabled:
            self.txn_total.inc()

    def leader_changed(self) -> None:
        if self.enabled:
            self.leader_changes.inc()

    def proposal_failed(self) -> None:
        if self.enabled:
            self.proposals_failed.inc()


DISK_BUCKETS = tuple(0.001 * 2**i for i in range(14))
"""etcd's disk histograms: ``prometheus.ExponentialBuckets(0.001, 2, 14)``, 1 ms to 8 s."""


class HistogramRegistry(Protocol):
    def counter(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> Any: ...
    def histogram(self, name: str, help: str, buckets: tuple[float, ...]) -> Any: ...


def disk_observers(
    reg: HistogramRegistry,
) -> tuple[Callable[[int, float | None], None], Callable[[float], None]]:
    """(WAL observer, backend commit observer) feeding etcd's disk metrics: what operators
    watch to tell a slow disk (and how many flushes acknowledged writes cost)."""
    wal_fsync = reg.histogram(
        "etcd_disk_wal_fsync_duration_seconds",
        "The latency distributions of fsync called by WAL.",
        DISK_BUCKETS,
    )
    wal_bytes = reg.counter(
        "etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL."
    )
    commit = reg.histogram(
        "etcd_disk_backend_commit_duration_seconds",
        "The latency distributions of commit called by backend.",
        DISK_BUCKETS,
    )

    def on_wal_write(nbytes: int, fsync_seconds: float | None) -> None:
        wal_bytes.inc(amount=nbytes)
        if fsync_seconds is not None:
            wal_fsync.observe(fsync_seconds)

    return on_wal_write, commit.observe
