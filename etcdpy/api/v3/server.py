"""Build the member's grpc.aio server: every v3 service, options from etcd's flags.

Options (etcd v3rpc/grpc.go and embed/etcd.go):
- max receive = --max-request-bytes + 512 KiB of gRPC overhead; max send = MaxInt32;
- max concurrent streams = --max-concurrent-streams;
- keepalive as etcd: clients may ping every --grpc-keepalive-min-time (5 s) even with no call
  open; the server pings idle clients every --grpc-keepalive-interval (2 h) and drops them
  after --grpc-keepalive-timeout (20 s). grpcio's own defaults (a ping less than 5 minutes
  after the previous one is a strike; two strikes close the connection) would cut the idle
  watches of a client pinging every 30 s, as kube-apiserver does.
"""

from __future__ import annotations

from typing import Any

import grpc

from etcdpy.api.v3 import auth, cluster, election, health, kv, lease, lock, maintenance, watch
from etcdpy.api.v3.common import MAX_SEND_BYTES, ApiContext, ClientAPIOptions
from etcdpy.api.v3.handlers import GRPC_TYPE, Method, grpc_handlers, register


def grpc_options(opts: ClientAPIOptions) -> list[tuple[str, Any]]:
    min_time_ms = int(opts.grpc_keepalive_min_time * 1000)
    return [
        ("grpc.max_receive_message_length", opts.max_recv_bytes),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ("grpc.max_concurrent_streams", min(opts.max_concurrent_streams, 2**31 - 1)),
        ("grpc.keepalive_time_ms", int(opts.grpc_keepalive_interval * 1000)),
        ("grpc.keepalive_timeout_ms", int(opts.grpc_keepalive_timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", min_time_ms),
        ("grpc.http2.min_ping_interval_without_data_ms", min_time_ms),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.so_reuseport", 0),
    ]


def all_methods(api: ApiContext) -> list[Method]:
    """Every v3 RPC this member serves (also the JSON gateway's routing table)."""
    return [
        *kv.methods(api),
        *watch.methods(api),
        *lease.methods(api),
        *cluster.methods(api),
        *maintenance.methods(api),
        *lock.methods(api),
        *election.methods(api),
        *auth.methods(api),
    ]


def build_grpc_server(api: ApiContext) -> tuple[grpc.aio.Server, list[Method]]:
    """A grpc.aio server with all services registered; the caller adds ports and starts it."""
    server = grpc.aio.server(options=grpc_options(api.options))
    methods = all_methods(api)
    register(server, grpc_handlers(api, methods))
    _, health_table = health.grpc_handlers(api)
    register(server, health_table)
    # etcd registers go-grpc-prometheus after its etcdserverpb services and grpc health, and
    # before v3lock/v3election: those are the series /metrics shows from the start.
    api.metrics.preregister(
        [
            (GRPC_TYPE[m.kind], m.service, m.name)
            for m in methods
            if m.service.startswith("etcdserverpb.")
        ]
        + [("unary", health.SERVICE, "Check"), ("server_stream", health.SERVICE, "Watch")]
    )
    return server, methods
