"""Which of etcd's flags etcdpy implements: the one place to change as features land.

* Rule 1: a flag in :data:`UNSUPPORTED_FLAGS` given a value different from its default
  (on the command line, in ``ETCD_*`` or in the config file) makes ``config.load`` fail
  with ``UnsupportedFlagError``; at its default it is harmless and accepted.
  Remove a flag from the set in the same change that implements it.
* Rule 2: a flag in :data:`NOOP_FLAGS` tunes something etcd has and etcdpy does not
  (bbolt's freelist, rafthttp's timeouts...): it is accepted and a warning says it has
  no effect, so scripts written for etcd keep working and nobody is misled.
"""

from __future__ import annotations

UNSUPPORTED_FLAGS: frozenset[str] = frozenset(
    {
        # bootstrap through the v2 discovery service, and the v2 proxy
        "discovery",
        "discovery-proxy",
        "discovery-fallback",
        "proxy",
        "proxy-failure-wait",
        "proxy-refresh-interval",
        "proxy-dial-timeout",
        "proxy-write-timeout",
        "proxy-read-timeout",
        "experimental-enable-v2v3",
        "v2-deprecation",
        # storage / listeners
        "force-new-cluster",
        "socket-reuse-port",
        "socket-reuse-address",
        "experimental-memory-mlock",
        "experimental-bootstrap-defrag-threshold-megabytes",
        "experimental-stop-grpc-service-on-defrag",
        # cluster features
        "experimental-corrupt-check-time",
        "experimental-compact-hash-check-enabled",
        "experimental-compact-hash-check-time",
        "experimental-enable-lease-checkpoint",
        "experimental-enable-lease-checkpoint-persist",
        "experimental-downgrade-check-time",
        # security
        "auth-token",
        "peer-crl-file",
        "client-cert-allowed-hostname",
        "peer-cert-allowed-cn",
        "peer-cert-allowed-hostname",
        "experimental-peer-skip-client-san-verification",
        "tls-min-version",
        "tls-max-version",
        # observability
        "metrics",
        "enable-log-rotation",
        "log-rotation-config-json",
        "experimental-enable-distributed-tracing",
        "experimental-distributed-tracing-address",
        "experimental-distributed-tracing-service-name",
        "experimental-distributed-tracing-instance-id",
        "experimental-distributed-tracing-sampling-rate",
    }
)

NOOP_FLAGS: frozenset[str] = frozenset(
    {
        "backend-bbolt-freelist-type",
        "backend-batch-interval",
        "backend-batch-limit",
        "experimental-txn-mode-write-with-shared-buffer",
        "experimental-compaction-sleep-interval",
        "raft-read-timeout",
        "raft-write-timeout",
        # etcd keeps at most N old 64 MB WAL segment files; etcdpy's WAL is one LMDB file
        # whose entries below (snapshot index - catch-up tail) are deleted at each snapshot,
        # so there are no segment files to count (--max-snapshots does apply)
        "max-wals",
        # Go's runtime profiler (/debug/pprof/*): there is no Go runtime to profile; the
        # endpoints are not served (404) and a warning says so
        "enable-pprof",
    }
)
