"""What every v3 servicer shares: options, per-call helpers, gRPC metrics, auth seam.

Rules:
1. Servicers are thin: validate, resolve auth, call the façade, map errors (``status.py``).
2. The "core" of each RPC is a plain coroutine ``(request, auth) -> response`` raising
   ``EtcdError``, so the gRPC servicer and the JSON gateway run the same code.
3. Nothing per call allocates more than it must: the hot path is Put/Range (ARCHITECTURE 3.11).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from etcdpy import errors
from etcdpy.observability.logging import Logger
from etcdpy.observability.metrics import MetricsRegistry
from etcdpy.server.facade import AuthInfo, EtcdServerAPI

# etcd's v3rpc/grpc.go: requests may be this much larger than --max-request-bytes on the wire.
GRPC_OVERHEAD_BYTES = 512 * 1024
MAX_SEND_BYTES = 2**31 - 1

# rpctypes/md.go and metadatafields.go
METADATA_REQUIRE_LEADER_KEY = "hasleader"
METADATA_HAS_LEADER = "true"
TOKEN_FIELD_NAME_GRPC = "token"
TOKEN_FIELD_NAME_SWAGGER = "authorization"

Metadata = Sequence[tuple[str, str | bytes]]
# (call metadata, verified client-certificate CN or None) -> who is calling; etcd's
# AuthInfoFromCtx: the token in metadata first, else the CN when --client-cert-auth is on.
AuthResolver = Callable[[Metadata, str | None], AuthInfo | None]
PeerLookup = Callable[[str], Any]  # grpc context.peer() -> object with .common_name, or None


def no_auth(_md: Metadata, _cn: str | None) -> AuthInfo | None:
    return None


@dataclass(frozen=True, slots=True)
class ClientAPIOptions:
    """The client API's knobs, from etcd's flags (embed maps ServerConfig onto this)."""

    max_request_bytes: int = 1_572_864  # --max-request-bytes (1.5 MiB)
    max_txn_ops: int = 128  # --max-txn-ops
    max_concurrent_streams: int = 2**32 - 1  # --max-concurrent-streams
    grpc_keepalive_min_time: float = 5.0  # --grpc-keepalive-min-time (s)
    grpc_keepalive_interval: float = 7200.0  # --grpc-keepalive-interval (s)
    grpc_keepalive_timeout: float = 20.0  # --grpc-keepalive-timeout (s)
    # etcd's monitorLeader: streams opened with "hasleader" end after this long without a
    # leader (etcd: maxNoLeaderCnt=3 election timeouts; --election-timeout 1000 ms).
    leader_lost_timeout: float = 3.0

    @property
    def max_recv_bytes(self) -> int:
        return self.max_request_bytes + GRPC_OVERHEAD_BYTES


# Go's codes.Code.String(), the label go-grpc-prometheus writes.
_GO_CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


class GrpcMetrics:
    """go-grpc-prometheus' server counters (what etcd exposes for every RPC)."""

    __slots__ = ("_handled", "_started")

    def __init__(self, registry: MetricsRegistry) -> None:
        labels = ("grpc_type", "grpc_service", "grpc_method")
        self._started = registry.counter(
            "grpc_server_started_total", "Total number of RPCs started on the server.", labels
        )
        self._handled = registry.counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            (*labels, "grpc_code"),
        )

    def preregister(self, methods: Iterable[tuple[str, str, str]]) -> None:
        """Zero series for every (grpc_type, service, method) and every status code, as
        go-grpc-prometheus' ``Register`` does at etcd's start: dashboards and rate() see
        each RPC before its first call (etcd 3.4 shows 41 methods x 17 codes)."""
        started, handled = self._started, self._handled
        codes = sorted(set(_GO_CODE_NAMES.values()))
        for kind, service, method in methods:
            started.inc(kind, service, method, amount=0.0)
            for code in codes:
                handled.inc(kind, service, method, code, amount=0.0)

    def started(self, kind: str, service: str, method: str) -> None:
        self._started.inc(kind, service, method)

    def unary_counters(
        self, kind: str, service: str, method: str
    ) -> tuple[Callable[[], None], Callable[[], None]]:
        """``(started, handled OK)`` of one RPC as two calls without arguments: the label
        tuples are built once, not per request (the unary hot path)."""
        return (
            self._started.bound(kind, service, method),
            self._handled.bound(kind, service, method, "OK"),
        )

    def handled(self, kind: str, service: str, method: str, code: grpc.StatusCode) -> None:
        self._handled.inc(kind, service, method, _GO_CODE_NAMES.get(code, "Unknown"))


class ApiContext:
    """Shared by all servicers of one member: the façade, options, metrics and auth seam."""

    __slots__ = (
        "auth_resolver",
        "cert_cn_auth",
        "logger",
        "metrics",
        "options",
        "peer_lookups",
        "registry",
        "server",
    )

    def __init__(
        self,
        server: EtcdServerAPI,
        options: ClientAPIOptions | None = None,
        registry: MetricsRegistry | None = None,
        auth_resolver: AuthResolver | None = None,
        logger: Logger | None = None,
    ) -> None:
        self.server = server
        self.logger = logger
        self.options = options or ClientAPIOptions()
        reg = registry
        if reg is None:
            m = getattr(server, "metrics", None)
            reg = m if isinstance(m, MetricsRegistry) else MetricsRegistry()
        self.registry = reg
        self.metrics = GrpcMetrics(reg)
        if auth_resolver is None and callable(getattr(server, "auth_info_from_token", None)):
            from etcdpy.api.v3.auth import token_resolver  # (auth.py imports this module)

            auth_resolver = token_resolver(server)
        self.auth_resolver: AuthResolver = auth_resolver or no_auth
        # --client-cert-auth: resolve the CN per call (off by default: it costs a lookup)
        self.cert_cn_auth = False
        self.peer_lookups: list[PeerLookup] = []  # one per multiplexer (TLS ends there)

    def log_unexpected(self, method: str, exc: BaseException) -> None:
        """A non-EtcdError escaping a handler is our bug: clients get Unknown, we get a line."""
        if self.logger is not None and not isinstance(exc, errors.EtcdError):
            self.logger.log(
                "warn", "unexpected error serving request", {"method": method, "error": repr(exc)}
            )

    @staticmethod
    def requires_leader(md: Metadata | None) -> bool:
        if not md:
            return False
        return any(k == METADATA_REQUIRE_LEADER_KEY and v == METADATA_HAS_LEADER for k, v in md)

    async def run_requiring_leader(self, call: Coroutine[Any, Any, None]) -> None:
        """Run a stream's coroutine; end it with ErrGRPCNoLeader once the member has had no
        leader for ``leader_lost_timeout`` (etcd's monitorLeader for require-leader streams)."""
        task = asyncio.ensure_future(call)
        step = self.options.leader_lost_timeout / 3
        missed = 0
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=step)
                if done:
                    task.result()
                    return
                missed = 0 if self.has_leader() else missed + 1
                if missed >= 3:
                    raise errors.ErrGRPCNoLeader()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def has_leader(self) -> bool:
        fn = getattr(self.server, "has_leader", None)
        if fn is None:
            return True
        return bool(fn())

    def check_metadata(
        self, md: Metadata | None, common_name: str | None = None
    ) -> AuthInfo | None:
        """etcd's unary/stream interceptor: "hasleader" requirement, then who is calling."""
        if md:
            for key, value in md:
                if key == METADATA_REQUIRE_LEADER_KEY and value == METADATA_HAS_LEADER:
                    if not self.has_leader():
                        raise errors.ErrGRPCNoLeader()
        elif common_name is None:
            return None
        return self.auth_resolver(md or (), common_name)

    def common_name(self, context: Any) -> str | None:
        """CN of the caller's verified client certificate: from grpc's TLS when grpc owns the
        port, else from the multiplexer that terminated TLS for this spliced connection."""
        cns = context.auth_context().get("x509_common_name")
        if cns:
            return bytes(cns[0]).decode()
        peer = context.peer()
        for lookup in self.peer_lookups:
            info = lookup(peer)
            if info is not None:
                return info.common_name  # type: ignore[no-any-return]
        return None

    def auth_from_context(self, context: Any) -> AuthInfo | None:
        if self.auth_resolver is no_auth and not self.cert_cn_auth and self.has_leader():
            # Nothing in the metadata can matter (no auth, no CN, and a "hasleader"
            # requirement holds): skip building it, ~4 us per request on the loop.
            return None
        cn = self.common_name(context) if self.cert_cn_auth else None
        return self.check_metadata(context.invocation_metadata(), cn)
