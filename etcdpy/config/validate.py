"""etcd 3.5's configuration checks, with etcd's messages, in etcd's order.

Order follows ``embed.Config.Validate`` (logging set-up first, then bind/host URL
checks, bootstrap-flag conflicts, cluster state, raft timing, advertise URLs,
compaction mode, lease checkpoint, TLS versions) and then the checks etcd makes a
little later at start (compaction retention, cipher suites), so one bad config fails
before anything listens.  The first problem wins, as in etcd.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from etcdpy.config.errors import ConfigError
from etcdpy.config.tls_names import CIPHER_SUITES
from etcdpy.config.values import URL, go_quote, parse_go_duration_ns, split_host_port
from etcdpy.version import parse_version

if TYPE_CHECKING:
    from etcdpy.config.model import ServerConfig

MAX_ELECTION_MS = 50000
LOG_LEVELS = ("debug", "info", "warn", "error", "dpanic", "panic", "fatal")
TLS_VERSIONS = {"": 0, "TLS1.2": 0x0303, "TLS1.3": 0x0304}

ERR_CONFLICT_BOOTSTRAP_FLAGS = (
    "multiple discovery or bootstrap flags are set. "
    'Choose one of "initial-cluster", "discovery" or "discovery-srv"'
)
ERR_UNSET_ADVERTISE_CLIENT_URLS = (
    "--advertise-client-urls is required when --listen-client-urls is set explicitly"
)


def _fail(message: str) -> ConfigError:
    return ConfigError(message)


def check_bind_urls(urls: tuple[URL, ...]) -> None:
    """embed.checkBindURLs: listen URLs must name an IP (or localhost), not a host."""
    for u in urls:
        if u.is_unix:
            continue
        try:
            host, _ = split_host_port(u.host)
        except ValueError as e:
            raise _fail(str(e)) from None
        if host == "localhost":
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise _fail(f"expected IP in URL for binding ({u})") from None


def _check_host_urls(urls: tuple[URL, ...]) -> str | None:
    for u in urls:
        try:
            host, _ = split_host_port(u.host)
        except ValueError as e:
            return str(e)
        if host == "":
            return f"unexpected empty host ({u})"
    return None


def setup_logging_check(cfg: ServerConfig) -> None:
    """embed.Config.setupLogging's failure cases."""
    if cfg.logger == "capnslog":
        raise _fail("--logger=capnslog is removed in v3.5")
    if cfg.logger != "zap":
        raise _fail(f"unknown logger option {go_quote(cfg.logger)}")
    outputs = cfg.log_outputs or ("default",)
    if len(outputs) > 1 and "default" in outputs:
        raise _fail('multi logoutput for "default" is not supported yet')
    if "systemd/journal" in outputs:
        # etcd writes to journald natively; etcdpy does not (yet): refuse, never ignore.
        raise _fail("etcdpy does not support --log-outputs=systemd/journal yet")
    if cfg.enable_log_rotation:
        files = [o for o in outputs if o not in ("default", "stderr", "stdout", "systemd/journal")]
        if len(outputs) > 1 or len(files) != 1:
            raise _fail(
                "--log-outputs requires a single file path when --log-rotate-config-json is defined"
            )
    if cfg.log_level not in LOG_LEVELS:
        raise _fail(f"unrecognized level: {go_quote(cfg.log_level)}")


def compaction_retention(mode: str, retention: str) -> float | int:
    """embed.parseCompactionRetention: hours/revisions for integers, else a duration."""
    try:
        h = int(retention, 10) if retention.lstrip("+-").isdigit() else None
    except ValueError:
        h = None
    if h is not None and h >= 0:
        if mode == "revision":
            return h
        if mode == "periodic":
            return float(h * 3600)
        raise _fail("--auto-compaction-mode is undefined")
    try:
        ns = parse_go_duration_ns(retention)
    except ValueError as e:
        raise _fail(f"error parsing CompactionRetention: {e}") from None
    return ns if mode == "revision" else ns / 1e9


def validate(cfg: ServerConfig) -> None:
    """Raise ConfigError with etcd's message for the first invalid setting."""
    setup_logging_check(cfg)
    check_bind_urls(cfg.listen_peer_urls)
    check_bind_urls(cfg.listen_client_urls)
    check_bind_urls(cfg.listen_client_http_urls)
    check_bind_urls(cfg.listen_metrics_urls)
    err = _check_host_urls(cfg.initial_advertise_peer_urls)
    if err is not None:
        addrs = ",".join(str(u) for u in cfg.initial_advertise_peer_urls)
        raise _fail(f'--initial-advertise-peer-urls {go_quote(addrs)} must be "host:port" ({err})')
    err = _check_host_urls(cfg.advertise_client_urls)
    if err is not None:
        addrs = ",".join(str(u) for u in cfg.advertise_client_urls)
        raise _fail(f'--advertise-client-urls {go_quote(addrs)} must be "host:port" ({err})')
    n_set = sum(1 for v in (cfg.discovery, cfg.initial_cluster, cfg.discovery_srv) if v)
    if cfg.initial_cluster_state not in ("new", "existing"):
        raise _fail(f"unexpected clusterState {go_quote(cfg.initial_cluster_state)}")
    if n_set > 1:
        raise _fail(ERR_CONFLICT_BOOTSTRAP_FLAGS)
    if cfg.heartbeat_interval == 0:
        raise _fail(f"--heartbeat-interval must be >0 (set to {cfg.heartbeat_interval}ms)")
    if cfg.election_timeout == 0:
        raise _fail(f"--election-timeout must be >0 (set to {cfg.election_timeout}ms)")
    if 5 * cfg.heartbeat_interval > cfg.election_timeout:
        raise _fail(
            f"--election-timeout[{cfg.election_timeout}ms] should be at least as 5 times as "
            f"--heartbeat-interval[{cfg.heartbeat_interval}ms]"
        )
    if cfg.election_timeout > MAX_ELECTION_MS:
        raise _fail(
            f"--election-timeout[{cfg.election_timeout}ms] is too long, and should be set "
            f"less than {MAX_ELECTION_MS}ms"
        )
    if cfg.listen_client_urls and not cfg.advertise_client_urls and cfg.proxy == "off":
        raise _fail(ERR_UNSET_ADVERTISE_CLIENT_URLS)
    if cfg.auto_compaction_mode not in ("", "periodic", "revision"):
        raise _fail(f"unknown auto-compaction-mode {go_quote(cfg.auto_compaction_mode)}")
    if (
        cfg.experimental_enable_lease_checkpoint_persist
        and not cfg.experimental_enable_lease_checkpoint
    ):
        raise _fail(
            "setting experimental-enable-lease-checkpoint-persist requires "
            "experimental-enable-lease-checkpoint"
        )
    for v in (cfg.tls_min_version, cfg.tls_max_version):
        if v not in TLS_VERSIONS:
            raise _fail(f"unexpected TLS version {go_quote(v)} (must be one of: TLS1.2, TLS1.3)")
    lo, hi = TLS_VERSIONS[cfg.tls_min_version], TLS_VERSIONS[cfg.tls_max_version]
    if hi != 0 and lo > hi:
        raise _fail(
            f"min version ({cfg.tls_min_version}) is greater than max version "
            f"({cfg.tls_max_version})"
        )
    if cfg.tls_min_version == "TLS1.3" and cfg.cipher_suites:
        raise _fail("cipher suites cannot be configured when only TLS1.3 is enabled")
    # Checks etcd makes when starting (embed.StartEtcd), before listening.
    if cfg.auto_compaction_mode:
        compaction_retention(cfg.auto_compaction_mode, cfg.auto_compaction_retention)
    for suite in cfg.cipher_suites:
        if suite not in CIPHER_SUITES:
            raise _fail(f"unexpected TLS cipher suite {go_quote(suite)}")
    try:
        parse_version(cfg.advertise_version)
    except ValueError:
        raise _fail(
            f"invalid --etcdpy-advertise-version {go_quote(cfg.advertise_version)}: "
            "want MAJOR.MINOR.PATCH"
        ) from None
