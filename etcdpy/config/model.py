"""ServerConfig: the whole configuration of one etcdpy member, as one frozen value.

Built only by :func:`etcdpy.config.load` (argv + environment, or a config file, with
etcd 3.5's precedence) and passed explicitly to whoever needs it; nothing reads
``os.environ`` after startup.

Field rules:

* Rule 1: one field per etcd flag, named after the flag in snake_case
  (``--listen-client-urls`` -> ``listen_client_urls``), holding the value etcd would use.
* Rule 2: types: URL lists are tuples of :class:`~etcdpy.config.values.URL` (sorted, as
  etcd sorts them); string lists are tuples; Go durations are ``float`` seconds;
  etcd's millisecond/second integer flags keep etcd's unit (``heartbeat_interval`` and
  ``election_timeout`` are milliseconds, ``auth_token_ttl`` seconds, ``proxy_*`` ms).
* Rule 3: derived values are resolved once here: ``data_dir`` is ``<name>.etcd`` when
  empty, ``initial_cluster`` is rebuilt from ``name`` and the advertised peer URLs when
  the name was changed but the cluster was not (etcd's ``UpdateDefaultClusterFromName``),
  ``v2_deprecation`` is the effective stage, ``advertise_version`` is never empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdpy.config import validate as _validate
from etcdpy.config.values import URL, parse_urls_map


@dataclass(frozen=True, slots=True)
class LogNotice:
    """A line the CLI logs once the logger exists (config never logs by itself)."""

    level: str
    msg: str
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Configuration of one member; see the module docstring for the field rules."""

    # Member
    name: str
    data_dir: str
    wal_dir: str
    snapshot_count: int
    heartbeat_interval: int
    election_timeout: int
    initial_election_tick_advance: bool
    listen_peer_urls: tuple[URL, ...]
    listen_client_urls: tuple[URL, ...]
    listen_client_http_urls: tuple[URL, ...]
    max_snapshots: int
    max_wals: int
    quota_backend_bytes: int
    backend_bbolt_freelist_type: str
    backend_batch_interval: float
    backend_batch_limit: int
    max_txn_ops: int
    max_request_bytes: int
    max_concurrent_streams: int
    enable_grpc_gateway: bool
    grpc_keepalive_min_time: float
    grpc_keepalive_interval: float
    grpc_keepalive_timeout: float
    socket_reuse_port: bool
    socket_reuse_address: bool
    raft_read_timeout: float
    raft_write_timeout: float
    # Clustering
    initial_advertise_peer_urls: tuple[URL, ...]
    initial_cluster: str
    initial_cluster_state: str
    initial_cluster_token: str
    advertise_client_urls: tuple[URL, ...]
    discovery: str
    discovery_fallback: str
    discovery_proxy: str
    discovery_srv: str
    discovery_srv_name: str
    strict_reconfig_check: bool
    pre_vote: bool
    auto_compaction_retention: str
    auto_compaction_mode: str
    enable_v2: bool
    v2_deprecation: str
    # Security
    cert_file: str
    key_file: str
    client_cert_auth: bool
    client_cert_file: str
    client_key_file: str
    client_crl_file: str
    client_cert_allowed_hostname: str
    trusted_ca_file: str
    auto_tls: bool
    peer_cert_file: str
    peer_key_file: str
    peer_client_cert_auth: bool
    peer_trusted_ca_file: str
    peer_cert_allowed_cn: str
    peer_cert_allowed_hostname: str
    peer_auto_tls: bool
    peer_client_cert_file: str
    peer_client_key_file: str
    self_signed_cert_validity: int
    peer_crl_file: str
    cipher_suites: tuple[str, ...]
    cors: tuple[str, ...]
    host_whitelist: tuple[str, ...]
    tls_min_version: str
    tls_max_version: str
    # Auth
    auth_token: str
    bcrypt_cost: int
    auth_token_ttl: int
    # Profiling and Monitoring
    enable_pprof: bool
    metrics: str
    listen_metrics_urls: tuple[URL, ...]
    # Logging
    logger: str
    log_outputs: tuple[str, ...]
    log_level: str
    enable_log_rotation: bool
    log_rotation_config_json: str
    # Experimental distributed tracing
    experimental_enable_distributed_tracing: bool
    experimental_distributed_tracing_address: str
    experimental_distributed_tracing_service_name: str
    experimental_distributed_tracing_instance_id: str
    experimental_distributed_tracing_sampling_rate: int
    # v2 Proxy (to be deprecated in v3.6)
    proxy: str
    proxy_failure_wait: int
    proxy_refresh_interval: int
    proxy_dial_timeout: int
    proxy_write_timeout: int
    proxy_read_timeout: int
    # Experimental feature
    experimental_initial_corrupt_check: bool
    experimental_corrupt_check_time: float
    experimental_compact_hash_check_enabled: bool
    experimental_compact_hash_check_time: float
    experimental_enable_v2v3: str
    experimental_enable_lease_checkpoint: bool
    experimental_enable_lease_checkpoint_persist: bool
    experimental_compaction_batch_limit: int
    experimental_compaction_sleep_interval: float
    experimental_peer_skip_client_san_verification: bool
    experimental_watch_progress_notify_interval: float
    experimental_downgrade_check_time: float
    experimental_memory_mlock: bool
    experimental_warning_apply_duration: float
    experimental_txn_mode_write_with_shared_buffer: bool
    experimental_bootstrap_defrag_threshold_megabytes: int
    experimental_stop_grpc_service_on_defrag: bool
    # Unsafe feature
    force_new_cluster: bool
    unsafe_no_fsync: bool
    # etcdpy
    etcdpy_advertise_version: str
    # hidden
    config_file: str
    # derived / bookkeeping
    advertise_version: str = "3.5.17"
    flags_explicitly_set: frozenset[str] = frozenset()

    # --- conveniences for the server; each follows an etcd helper of the same name
    @property
    def is_new_cluster(self) -> bool:
        """embed.Config.IsNewCluster."""
        return self.initial_cluster_state == "new"

    @property
    def election_ticks(self) -> int:
        """embed.Config.ElectionTicks: election timeout counted in heartbeat ticks."""
        return self.election_timeout // self.heartbeat_interval

    @property
    def tick_seconds(self) -> float:
        """Length of one raft tick (the heartbeat interval) in seconds."""
        return self.heartbeat_interval / 1000.0

    @property
    def client_tls_info_empty(self) -> bool:
        """transport.TLSInfo.Empty() for the client side (no cert and no key given)."""
        return not self.cert_file and not self.key_file

    @property
    def peer_tls_info_empty(self) -> bool:
        return not self.peer_cert_file and not self.peer_key_file

    def initial_cluster_map(self) -> dict[str, tuple[URL, ...]]:
        """types.NewURLsMap(initial_cluster); ValueError with etcd's URL messages."""
        return parse_urls_map(self.initial_cluster) if self.initial_cluster else {}

    def auto_compaction_retention_value(self) -> float | int:
        """embed's parseCompactionRetention: seconds (periodic) or revisions (revision).

        An integer means hours in periodic mode and a revision count in revision mode;
        anything else is parsed as a Go duration. ``validate()`` already checked it.
        """
        return _validate.compaction_retention(
            self.auto_compaction_mode, self.auto_compaction_retention
        )

    def validate(self) -> None:
        """embed.Config.Validate (+ the start-up checks etcd makes on the same fields).

        Raises ConfigError with etcd's message for the first problem found.
        """
        _validate.validate(self)
