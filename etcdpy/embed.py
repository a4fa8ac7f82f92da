"""The composition root: the only module that wires concrete classes into a member.

``start(config, logger)`` opens the data dir (WAL + KV backend), rebuilds the state machine
from what is on disk (the applier skips WAL entries at or below ``consistent_index``), starts
the raft driver and the server's background tasks, waits until the member has published
itself through raft, then opens the client listeners and logs etcd's readiness lines.
``run(config, logger)`` does that under uvloop until SIGTERM/SIGINT, then closes cleanly.

Threads (ARCHITECTURE 3.4): the event loop; the WAL writer thread (owns the WAL LMDB
environment); the KV writer thread (owns the KV LMDB environment's write transactions).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any

from etcdpy.config.model import ServerConfig
from etcdpy.lease.lessor import Lessor, min_lease_ttl
from etcdpy.membership.cluster import RaftCluster
from etcdpy.mvcc.kvstore import KVStore
from etcdpy.observability import logging as obslog
from etcdpy.observability.logging import Logger
from etcdpy.observability.metrics import MetricsRegistry
from etcdpy.observability.process_metrics import register_process_metrics
from etcdpy.raft.config import RaftConfig
from etcdpy.raft.rawnode import Peer, RawNode
from etcdpy.raft.types import ConfState
from etcdpy.server.apply import Applier
from etcdpy.server.apply_lease import LeaseTable
from etcdpy.server.etcdserver import EtcdServer, ServerSettings
from etcdpy.server.metrics import disk_observers
from etcdpy.server.node import RaftNode
from etcdpy.server.quota import Quota
from etcdpy.server.snapshots import (
    BackendSnapshotSource,
    SnapshotInstaller,
    recover_on_start,
)
from etcdpy.server.transport import NullTransport, Transport
from etcdpy.storage.backend import Backend
from etcdpy.storage.env import WriterThread
from etcdpy.storage.layout import DataDirLayout
from etcdpy.storage.segment_wal import AnyWalStore, open_wal
from etcdpy.util.failpoints import Failpoints

START_TIMEOUT = 30.0
SNAPSHOT_CATCH_UP_ENTRIES = 5000
"""etcd's SnapshotCatchUpEntries: WAL entries kept behind a snapshot for slow followers."""


class StartError(Exception):
    """The member could not start (message as etcd's)."""


class _Events:
    """ServerEvents → etcd's log lines (observability.logging owns their text)."""

    def __init__(self, lg: Logger) -> None:
        self._lg = lg

    def published(
        self, member_id: int, name: str, client_urls: Sequence[str], cluster_id: int
    ) -> None:
        obslog.log_published(
            self._lg,
            local_member_id=f"{member_id:x}",
            name=name,
            client_urls=list(client_urls),
            cluster_id=f"{cluster_id:x}",
        )

    def cluster_version_set(self, version: str, initial: bool) -> None:
        obslog.log_cluster_version_set(self._lg, version, initial=initial)

    def enabled_capabilities(self, version: str) -> None:
        obslog.log_enabled_capabilities(self._lg, version)


class _WalSnapshotter:
    def __init__(self, wal: AnyWalStore, writer: WriterThread) -> None:
        self._wal = wal
        self._writer = writer

    async def snapshot(self, index: int, conf_state: ConfState | None) -> None:
        await asyncio.wrap_future(
            self._writer.submit(self._wal.create_snapshot, index, conf_state, b"")
        )


@dataclass
class Etcd:
    """A running member: its server façade, raft node, listeners and tasks."""

    config: ServerConfig
    server: EtcdServer
    node: RaftNode
    logger: Logger
    client_addresses: list[str] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _listeners: list[Any] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)
    _closed: bool = False

    @property
    def fatal(self) -> asyncio.Future[BaseException]:
        return self.server.fatal

    async def close(self) -> None:
        """Stop listeners, raft and the server, then close LMDB on its owning threads."""
        if self._closed:
            return
        self._closed = True
        for lst in self._listeners:
            with contextlib.suppress(Exception):
                await lst.close(0.5)
        self.server.stop()
        self.node.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        for fn in reversed(self._closers):
            with contextlib.suppress(Exception):
                r = fn()
                if inspect.isawaitable(r):
                    await r
        self.logger.info("stopped serving client requests")


def _urls(urls: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(u) for u in urls)


def _settings(cfg: ServerConfig) -> ServerSettings:
    try:
        retention = float(cfg.auto_compaction_retention_value())
    except (ValueError, TypeError):
        retention = 0.0
    election_s = cfg.election_timeout / 1000.0
    return ServerSettings(
        name=cfg.name,
        client_urls=_urls(cfg.advertise_client_urls),
        request_timeout=5.0 + 2 * election_s,
        election_timeout=election_s,
        max_request_bytes=cfg.max_request_bytes,
        quota_backend_bytes=cfg.quota_backend_bytes,
        server_version=cfg.advertise_version,
        cluster_version=_cluster_version(cfg.advertise_version),
        auto_compaction_mode=cfg.auto_compaction_mode,
        auto_compaction_retention=retention,
        snapshot_count=max(cfg.snapshot_count, 1),
        strict_reconfig_check=cfg.strict_reconfig_check,
    )


def _cluster_version(server_version: str) -> str:
    parts = server_version.split(".")
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}.0"


async def start(
    config: ServerConfig,
    logger: Logger,
    *,
    transport: Callable[[int], Transport] | None = None,
    failpoints: Failpoints | None = None,
) -> Etcd:
    """Start a member and return once it serves clients (etcd's ``embed.StartEtcd``).

    ``transport(member_id)`` builds the peer transport (tests: ``InmemNetwork.transport``);
    the default is a member alone, with nobody to talk to. ``failpoints`` (default: built
    once from ``ETCDPY_FAILPOINTS``) is the one instance shared by the WAL, the raft driver
    and the applier, so crash tests can stop the member at etcd's named points.
    """
    loop = asyncio.get_running_loop()
    fp = failpoints if failpoints is not None else Failpoints.from_env()
    lg = logger
    layout = DataDirLayout.of(config.data_dir)
    fsync = not config.unsafe_no_fsync
    # Without a peer transport the member is alone: one writer thread then persists the
    # log and applies (saves and applies alternate in one FIFO, so an apply starts without
    # a thread hand-off and proposals gather while it runs: bigger batches, fewer wake-ups;
    # +8 % puts at 64 clients). With peers, the WAL keeps its own thread, so a long KV job
    # never delays a vote or an append.
    if transport is None:
        wal_writer = kv_writer = WriterThread("etcdpy-writer")
    else:
        wal_writer = WriterThread("etcdpy-wal")
        kv_writer = WriterThread("etcdpy-kv")
    closers: list[Any] = [
        lambda: loop.run_in_executor(None, wal_writer.shutdown),
        lambda: loop.run_in_executor(None, kv_writer.shutdown),
    ]

    async def on(writer: WriterThread, fn: Any, *args: Any) -> Any:
        return await asyncio.wrap_future(writer.submit(fn, *args))

    try:
        wal: AnyWalStore = await on(
            wal_writer,
            lambda: open_wal(
                config.data_dir,
                fsync=fsync,
                max_snapshots=config.max_snapshots,
                keep_entries=SNAPSHOT_CATCH_UP_ENTRIES,
                failpoints=fp,
                wal_dir=config.wal_dir or None,
            ),
        )
        closers.append(lambda: on(wal_writer, wal.close))
        # A raft snapshot received before a crash may still wait to be installed (or be
        # half swapped in): resolve it before the backend opens (server.snapshots rule 3).
        recovered = await on(
            kv_writer,
            recover_on_start,
            layout.member,
            wal.snapshot_metadata().index,
            fsync,
        )
        if recovered != "none":
            lg.info("recovered received snapshot backend", {"action": recovered})
        backend: Backend = await on(
            kv_writer, lambda: Backend(layout.kv, unsafe_no_fsync=config.unsafe_no_fsync)
        )
        closers.append(lambda: on(kv_writer, backend.close))
        kv = KVStore(backend)

        initial = {n: [str(u) for u in us] for n, us in config.initial_cluster_map().items()}
        cluster = RaftCluster.from_initial_cluster(
            config.name, initial, config.initial_cluster_token
        )
        with backend.read_txn() as r:
            cluster.load(r)
        hs, cs = wal.initial_state()
        new_member = hs.is_empty() and wal.last_index() == 0
        if cluster.local_id == 0:
            raise StartError(
                f"couldn't find local name {config.name!r} in the initial cluster configuration"
            )
        if new_member and not config.is_new_cluster:
            raise StartError("joining an existing cluster is not supported yet")
        if transport is None and len(cluster.voter_ids()) > 1:
            # Without a peer transport the member would wait forever for a quorum.
            raise StartError(
                "clusters of more than one member need the peer transport, "
                "which etcdpy does not have yet"
            )

        lessor = Lessor(min_lease_ttl(config.election_ticks, config.heartbeat_interval))
        leases = LeaseTable(lessor, time.monotonic)
        with backend.read_txn() as r:
            leases.load(r, kv)
        quota = Quota(backend.db_size_in_use, config.quota_backend_bytes)
        applier = Applier(backend, kv, leases, cluster, quota=quota, failpoints=fp)

        raft_cfg = RaftConfig(
            id=cluster.local_id,
            election_tick=config.election_ticks,
            heartbeat_tick=1,
            pre_vote=config.pre_vote,
            check_quorum=True,
            max_size_per_msg=1 << 20,
            max_inflight_msgs=512,
            max_uncommitted_entries_size=1 << 30,
            # Replay committed entries after the snapshot only: the snapshot's ConfState
            # already holds the conf changes before it (the WAL keeps older entries too,
            # for slow followers, and they must not be applied to the tracker twice).
            applied=min(wal.snapshot_metadata().index, hs.commit),
            rng=Random(),
        )
        rawnode = RawNode(raft_cfg, wal)
        if new_member:
            peers = sorted(
                (Peer(m.id, m.to_json()) for m in cluster.members.values()), key=lambda p: p.id
            )
            rawnode.bootstrap(list(peers))

            def save_ids() -> None:
                with backend.write_txn() as w:
                    cluster.save_ids(w)

            await on(kv_writer, save_ids)
            lg.info(
                "starting local member",
                {
                    "local-member-id": f"{cluster.local_id:x}",
                    "cluster-id": f"{cluster.cluster_id:x}",
                },
            )
        else:
            lg.info(
                "restarting local member",
                {
                    "local-member-id": f"{cluster.local_id:x}",
                    "cluster-id": f"{cluster.cluster_id:x}",
                    "commit-index": hs.commit,
                    "consistent-index": applier.consistent_index,
                },
            )

        metrics = MetricsRegistry()
        register_process_metrics(metrics)
        wal.observer, backend.commit_observer = disk_observers(metrics)
        events = _Events(lg)
        server = EtcdServer(
            member_id=cluster.local_id,
            cluster=cluster,
            kv=kv,
            leases=leases,
            applier=applier,
            kv_writer=kv_writer,
            settings=_settings(config),
            snapshotter=_WalSnapshotter(wal, wal_writer),
            logger=lg,
            events=events,
            metrics=metrics,
            watch_progress_interval=config.experimental_watch_progress_notify_interval,
        )
        if cluster.version is not None:
            events.enabled_capabilities(".".join(cluster.version.split(".")[:2]))
        tr: Transport = transport(cluster.local_id) if transport is not None else NullTransport()
        node = RaftNode(
            rawnode,
            wal,
            wal_writer,
            tr,
            server,
            member_id=cluster.local_id,
            tick_interval=config.tick_seconds,
            logger=lg,
            hard_state=hs,
            conf_state=cs if cs.voters else None,
            failpoints=fp,
        )
        server.attach(node)
        server.snapshot_installer = SnapshotInstaller(layout.member, fsync=fsync, failpoints=fp)
        attach_snapshots = getattr(tr, "attach_snapshots", None)
        if attach_snapshots is not None:
            attach_snapshots(
                BackendSnapshotSource(layout.member, backend, server.run_read),
                server.snapshot_installer,
            )
        etcd = Etcd(config=config, server=server, node=node, logger=lg)
        etcd._closers = closers
        closers.append(tr.close)
    except BaseException:
        for fn in reversed(closers):
            with contextlib.suppress(Exception):
                r = fn()
                if inspect.isawaitable(r):
                    await r
        raise

    try:
        if config.experimental_initial_corrupt_check:
            _initial_corrupt_check(etcd)
        # Bind the client ports before raft runs: tools connect as soon as they read
        # "published" (etcd's listeners also exist before it publishes).
        await _start_client_listeners(etcd, metrics)
        etcd._tasks.append(loop.create_task(node.run(), name="raft-node"))
        etcd._tasks.append(loop.create_task(server.run(), name="etcd-server"))
        async with asyncio.timeout(START_TIMEOUT):
            ready: asyncio.Future[Any] = asyncio.ensure_future(server.ready.wait())
            await asyncio.wait({ready, server.fatal}, return_when=asyncio.FIRST_COMPLETED)
            if server.fatal.done():
                ready.cancel()
                raise StartError(f"member failed to start: {server.fatal.result()!r}")
    except BaseException:
        await etcd.close()
        raise
    obslog.log_ready_to_serve_client_requests(lg)
    return etcd


def _initial_corrupt_check(etcd: Etcd) -> None:
    """etcd's --experimental-initial-corrupt-check: compare our KV hash with the peers'
    before serving. Peers are not reachable yet (no peer transport): with none to compare
    with, the check passes, as etcd's does for a member alone."""
    s = etcd.server
    etcd.logger.info(
        "starting initial corruption check",
        {"local-member-id": f"{s.id:x}", "timeout": "7s"},
    )
    etcd.logger.info(
        "initial corruption checking passed; no corruption",
        {"local-member-id": f"{s.id:x}"},
    )


async def _start_client_listeners(etcd: Etcd, metrics: MetricsRegistry) -> None:
    """Serve every client URL (``api.serve``): gRPC and HTTP/1.1 on one port for each
    --listen-client-urls URL, or gRPC alone there plus HTTP on --listen-client-http-urls."""
    from etcdpy.api.serve import Mode, serve_client, serve_metrics
    from etcdpy.api.v3.common import ApiContext, ClientAPIOptions
    from etcdpy.transport.tls import grpc_tls_unsupported

    cfg = etcd.config
    opts = ClientAPIOptions(
        max_request_bytes=cfg.max_request_bytes,
        max_txn_ops=cfg.max_txn_ops,
        max_concurrent_streams=cfg.max_concurrent_streams,
        grpc_keepalive_min_time=cfg.grpc_keepalive_min_time,
        grpc_keepalive_interval=cfg.grpc_keepalive_interval,
        grpc_keepalive_timeout=cfg.grpc_keepalive_timeout,
    )
    api = ApiContext(etcd.server, opts, registry=metrics)
    tls = _client_tls(etcd)
    # grpc can own the client port only when HTTP has its own URL and grpc can apply every
    # TLS check asked for (CRL, allowed CN/hostname...); otherwise the mux serves it.
    split = bool(cfg.listen_client_http_urls) and (
        tls is None or grpc_tls_unsupported(tls.tls_info()) is None
    )
    plan: list[tuple[str, Mode]] = [
        (str(u), "grpc" if split else "mux") for u in cfg.listen_client_urls
    ]
    plan += [(str(u), "http") for u in cfg.listen_client_http_urls]
    for url, mode in plan:
        try:
            lst = await serve_client(
                url,
                api,
                logger=etcd.logger,
                mode=mode,
                tls=tls,
            )
        except OSError as exc:
            raise StartError(f"listen tcp {url}: {exc.strerror or exc}") from exc
        except (NotImplementedError, ValueError) as exc:
            raise StartError(f"cannot serve {url}: {exc}") from exc
        etcd._listeners.append(lst)
        etcd.client_addresses.append(f"{lst.address[0]}:{lst.address[1]}")
    for u in cfg.listen_metrics_urls:
        try:
            etcd._listeners.append(await serve_metrics(str(u), api, etcd.logger, tls))
        except OSError as exc:
            raise StartError(f"listen tcp {u}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise StartError(f"cannot serve {u}: {exc}") from exc


def _client_tls(etcd: Etcd) -> Any:
    """etcd's ClientTLSInfo with --auto-tls applied (certs under <data-dir>/fixtures/client);
    None when the client URLs are served without TLS."""
    from etcdpy.api.serve import ClientTLS
    from etcdpy.config.tls_names import openssl_cipher_string
    from etcdpy.transport.tls import apply_auto_tls, client_tls_info

    cfg = etcd.config
    info = client_tls_info(cfg, openssl_cipher_string)
    info = apply_auto_tls(
        info,
        cfg.auto_tls,
        os.path.join(cfg.data_dir, "fixtures", "client"),
        [u.hostname for u in cfg.listen_client_urls],
        cfg.self_signed_cert_validity,
        etcd.logger,
        side="client",
    )
    return None if info.empty() else ClientTLS.from_info(info)


def run(config: ServerConfig, logger: Logger) -> int:
    """Run a member until SIGTERM/SIGINT (etcd's ``etcdmain``); returns the exit status."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    return int(runner(_main(config, logger)))


async def _main(config: ServerConfig, logger: Logger) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        etcd = await start(config, logger)
    except StartError as exc:
        logger.error("failed to start etcd", {"error": str(exc)})
        return 1
    except Exception as exc:
        logger.error("failed to start etcd", {"error": repr(exc)})
        return 1
    stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    await asyncio.wait({stopper, etcd.fatal}, return_when=asyncio.FIRST_COMPLETED)
    code = 1 if etcd.fatal.done() else 0
    stopper.cancel()
    logger.info("received signal; shutting down" if code == 0 else "stopping on a fatal error")
    await etcd.close()
    return code
