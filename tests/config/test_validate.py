"""embed.Config.Validate's checks and messages, and derived values."""

from __future__ import annotations

import pytest

from etcdpy.config import ConfigError, load, parse_config
from etcdpy.config.values import URL

ENV: dict[str, str] = {}
LC = ["--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls"]


def test_defaults_match_etcd_35() -> None:
    cfg = load([], ENV)
    assert cfg.name == "default"
    assert cfg.data_dir == "default.etcd"
    assert cfg.listen_client_urls == (URL("http", "localhost:2379"),)
    assert cfg.advertise_client_urls == (URL("http", "localhost:2379"),)
    assert cfg.listen_peer_urls == (URL("http", "localhost:2380"),)
    assert cfg.initial_advertise_peer_urls == (URL("http", "localhost:2380"),)
    assert cfg.initial_cluster == "default=http://localhost:2380"
    assert cfg.initial_cluster_state == "new" and cfg.is_new_cluster
    assert cfg.initial_cluster_token == "etcd-cluster"
    assert (cfg.snapshot_count, cfg.heartbeat_interval, cfg.election_timeout) == (100000, 100, 1000)
    assert cfg.election_ticks == 10 and cfg.tick_seconds == 0.1
    assert (cfg.quota_backend_bytes, cfg.max_txn_ops, cfg.max_request_bytes) == (0, 128, 1572864)
    assert (cfg.auto_compaction_mode, cfg.auto_compaction_retention) == ("periodic", "0")
    assert cfg.enable_v2 is False and cfg.pre_vote is True and cfg.strict_reconfig_check is True
    assert cfg.experimental_watch_progress_notify_interval == 600.0
    assert (cfg.grpc_keepalive_min_time, cfg.grpc_keepalive_interval) == (5.0, 7200.0)
    assert cfg.grpc_keepalive_timeout == 20.0
    assert (cfg.max_snapshots, cfg.max_wals, cfg.max_concurrent_streams) == (5, 5, 2**32 - 1)
    assert cfg.listen_metrics_urls == () and cfg.listen_client_http_urls == ()
    assert (cfg.logger, cfg.log_level, cfg.log_outputs) == ("zap", "info", ("default",))
    assert (cfg.auth_token, cfg.bcrypt_cost, cfg.auth_token_ttl) == ("simple", 10, 300)
    assert cfg.cors == ("*",) and cfg.host_whitelist == ("*",)
    assert cfg.v2_deprecation == "not-yet"
    assert cfg.advertise_version == "3.5.17"
    assert cfg.flags_explicitly_set == frozenset()


def test_name_rebuilds_default_initial_cluster() -> None:
    cfg = load(["--name", "infra0", "--initial-advertise-peer-urls", "http://10.0.0.1:2380"], ENV)
    assert cfg.initial_cluster == "infra0=http://10.0.0.1:2380"
    assert cfg.data_dir == "infra0.etcd"
    assert cfg.initial_cluster_map() == {"infra0": (URL("http", "10.0.0.1:2380"),)}


def test_explicit_initial_cluster_kept() -> None:
    ic = "a=http://127.0.0.1:1,b=http://127.0.0.1:2,a=http://127.0.0.1:3"
    cfg = load(["--name", "a", "--initial-cluster", ic], ENV)
    assert cfg.initial_cluster == ic
    assert cfg.initial_cluster_map()["a"] == (
        URL("http", "127.0.0.1:1"),
        URL("http", "127.0.0.1:3"),
    )


def test_discovery_srv_clears_default_initial_cluster() -> None:
    cfg = load(["--discovery-srv", "example.com"], ENV)
    assert cfg.initial_cluster == ""


def test_listen_without_advertise() -> None:
    with pytest.raises(ConfigError) as e:
        load(["--listen-client-urls", "http://127.0.0.1:2379"], ENV)
    assert e.value.message == (
        "--advertise-client-urls is required when --listen-client-urls is set explicitly"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--heartbeat-interval", "300"],
            "--election-timeout[1000ms] should be at least as 5 times as "
            "--heartbeat-interval[300ms]",
        ),
        (
            ["--election-timeout", "60000"],
            "--election-timeout[60000ms] is too long, and should be set less than 50000ms",
        ),
        (["--heartbeat-interval", "0"], "--heartbeat-interval must be >0 (set to 0ms)"),
        (["--election-timeout", "0"], "--election-timeout must be >0 (set to 0ms)"),
        (
            ["--discovery-srv", "example.com", "--initial-cluster", "a=http://127.0.0.1:1"],
            "multiple discovery or bootstrap flags are set. "
            'Choose one of "initial-cluster", "discovery" or "discovery-srv"',
        ),
        (["--auto-compaction-mode", "daily"], 'unknown auto-compaction-mode "daily"'),
        (
            ["--auto-compaction-retention", "5x"],
            'error parsing CompactionRetention: time: unknown unit "x" in duration "5x"',
        ),
        (
            ["--listen-peer-urls", "http://example.com:2380"],
            "expected IP in URL for binding (http://example.com:2380)",
        ),
        (
            [*LC, "http://:2379"],
            '--advertise-client-urls "http://:2379" must be "host:port" '
            "(unexpected empty host (http://:2379))",
        ),
        (
            ["--initial-advertise-peer-urls", "http://:2380"],
            '--initial-advertise-peer-urls "http://:2380" must be "host:port" '
            "(unexpected empty host (http://:2380))",
        ),
        (["--logger", "capnslog"], "--logger=capnslog is removed in v3.5"),
        (["--logger", "glog"], 'unknown logger option "glog"'),
        (["--log-level", "loud"], 'unrecognized level: "loud"'),
        (
            ["--log-outputs", "default,stdout"],
            'multi logoutput for "default" is not supported yet',
        ),
        (
            ["--experimental-enable-lease-checkpoint-persist"],
            "setting experimental-enable-lease-checkpoint-persist requires "
            "experimental-enable-lease-checkpoint",
        ),
        (["--cipher-suites", "TLS_NOPE"], 'unexpected TLS cipher suite "TLS_NOPE"'),
        (
            ["--etcdpy-advertise-version", "3.5"],
            'invalid --etcdpy-advertise-version "3.5": want MAJOR.MINOR.PATCH',
        ),
    ],
)
def test_validation_messages(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(argv, ENV)
    assert e.value.message == message
    assert e.value.exit_code == 1


def test_localhost_and_unix_allowed_for_binding() -> None:
    cfg = load(
        ["--listen-peer-urls", "unix://localhost:1234,http://localhost:2380,http://[::1]:2381"],
        ENV,
    )
    assert len(cfg.listen_peer_urls) == 3


@pytest.mark.parametrize(
    ("mode", "retention", "value"),
    [
        ("periodic", "0", 0.0),
        ("periodic", "1", 3600.0),
        ("periodic", "30m", 1800.0),
        ("revision", "1000", 1000),
    ],
)
def test_compaction_retention(mode: str, retention: str, value: float) -> None:
    cfg = load(["--auto-compaction-mode", mode, "--auto-compaction-retention", retention], ENV)
    assert cfg.auto_compaction_retention_value() == value


def test_config_is_frozen() -> None:
    cfg = load([], ENV)
    with pytest.raises(AttributeError):
        cfg.name = "x"  # type: ignore[misc]


def test_noop_flag_warns() -> None:
    result = parse_config(["--backend-batch-limit", "10"], ENV)
    assert any(
        n.msg == "flag has no effect in etcdpy; ignoring"
        and n.fields == {"flag": "--backend-batch-limit"}
        for n in result.notices
    )


def test_journal_output_refused() -> None:
    with pytest.raises(ConfigError, match="systemd/journal"):
        load(["--log-outputs", "systemd/journal"], ENV)


def test_default_config_overrides() -> None:
    from etcdpy.config import default_config

    cfg = default_config(name="m1", snapshot_count=5)
    assert (cfg.name, cfg.snapshot_count) == ("m1", 5)
    with pytest.raises(ConfigError):
        default_config(heartbeat_interval=0)


def test_default_host_replaces_localhost_advertise_when_listening_on_any() -> None:
    result = parse_config(
        ["--name", "m1", "--listen-peer-urls", "http://0.0.0.0:12380",
         "--listen-client-urls", "http://0.0.0.0:12379",
         "--advertise-client-urls", "http://localhost:2379"],
        ENV,
        default_host=lambda: ("10.1.2.3", ""),
    )  # fmt: skip
    cfg = result.config
    assert cfg is not None
    assert [str(u) for u in cfg.initial_advertise_peer_urls] == ["http://10.1.2.3:12380"]
    assert [str(u) for u in cfg.advertise_client_urls] == ["http://10.1.2.3:12379"]
    assert cfg.initial_cluster == "m1=http://10.1.2.3:12380"
    assert any(n.msg == "detected default host for advertise" for n in result.notices)


def test_default_host_not_used_for_explicit_advertise() -> None:
    cfg = parse_config(
        ["--listen-peer-urls", "http://0.0.0.0:2380",
         "--initial-advertise-peer-urls", "http://127.0.0.1:2380"],
        ENV,
        default_host=lambda: ("10.1.2.3", ""),
    ).config  # fmt: skip
    assert cfg is not None
    assert [str(u) for u in cfg.initial_advertise_peer_urls] == ["http://127.0.0.1:2380"]
