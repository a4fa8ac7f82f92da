"""--config-file: etcd's YAML keys; the file alone decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdpy.config import ConfigError, load, parse_config
from etcdpy.config.values import URL

SAMPLE = """
name: 'infra1'
data-dir: /var/lib/etcd/infra1
snapshot-count: 10000
heartbeat-interval: 200
election-timeout: 2000
quota-backend-bytes: 0
listen-peer-urls: http://127.0.0.1:12380
listen-client-urls: http://127.0.0.1:12379,http://127.0.0.2:12379
max-snapshots: 5
max-wals: 5
cors:
initial-advertise-peer-urls: http://127.0.0.1:12380
advertise-client-urls: http://127.0.0.1:12379
discovery:
discovery-fallback: 'proxy'
discovery-proxy:
discovery-srv:
initial-cluster: infra1=http://127.0.0.1:12380
initial-cluster-token: 'etcd-cluster'
initial-cluster-state: 'new'
strict-reconfig-check: true
enable-v2: true
enable-pprof: false
proxy: 'off'
proxy-failure-wait: 5000
proxy-refresh-interval: 30000
proxy-dial-timeout: 1000
proxy-write-timeout: 5000
proxy-read-timeout: 0
client-transport-security:
  cert-file: /c.crt
  key-file: /c.key
  client-cert-auth: true
  trusted-ca-file: /ca.crt
  auto-tls: false
peer-transport-security:
  cert-file: /p.crt
  key-file: /p.key
  client-cert-auth: false
  trusted-ca-file:
  auto-tls: true
self-signed-cert-validity: 1
log-level: debug
logger: zap
log-outputs: [stderr]
force-new-cluster: false
auto-compaction-mode: periodic
auto-compaction-retention: "1"
grpc-keepalive-min-time: 1000000000
experimental-watch-progress-notify-interval: 5s
cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
"""


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "etcd.conf.yml"
    p.write_text(text)
    return str(p)


def test_etcd_sample_config(tmp_path: Path) -> None:
    path = _write(tmp_path, SAMPLE)
    cfg = load(["--config-file", path], {})
    assert cfg.name == "infra1"
    assert cfg.data_dir == "/var/lib/etcd/infra1"
    assert (cfg.snapshot_count, cfg.heartbeat_interval, cfg.election_timeout) == (10000, 200, 2000)
    assert cfg.listen_client_urls == (
        URL("http", "127.0.0.1:12379"),
        URL("http", "127.0.0.2:12379"),
    )
    assert cfg.initial_cluster == "infra1=http://127.0.0.1:12380"
    assert (cfg.cert_file, cfg.key_file, cfg.client_cert_auth) == ("/c.crt", "/c.key", True)
    assert cfg.trusted_ca_file == "/ca.crt"
    assert (cfg.peer_cert_file, cfg.peer_auto_tls, cfg.auto_tls) == ("/p.crt", True, False)
    assert cfg.log_level == "debug"
    assert cfg.log_outputs == ("stderr",)
    assert cfg.grpc_keepalive_min_time == 1.0
    assert cfg.experimental_watch_progress_notify_interval == 5.0
    assert cfg.cors == ("*",)
    assert cfg.config_file == path
    assert cfg.auto_compaction_retention_value() == 3600.0


def test_file_wins_over_flags_and_env(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: f\n")
    result = parse_config(["--config-file", path, "--name", "flag"], {"ETCD_NAME": "env"})
    assert result.config is not None
    assert result.config.name == "f"
    assert any(n.msg.startswith("loaded server configuration") for n in result.notices)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load(["--config-file", _write(tmp_path, "")], {})
    assert cfg.name == "default"
    assert cfg.advertise_client_urls == (URL("http", "localhost:2379"),)


def test_listen_client_urls_alone_keeps_default_advertise(tmp_path: Path) -> None:
    """Unlike the command line, the file keeps the default advertise URL (etcd's rule)."""
    cfg = load(["--config-file", _write(tmp_path, "listen-client-urls: http://127.0.0.1:1\n")], {})
    assert cfg.advertise_client_urls == (URL("http", "localhost:2379"),)


def test_file_discovery_srv_clears_default_cluster(tmp_path: Path) -> None:
    cfg = load(["--config-file", _write(tmp_path, "discovery-srv: example.com\n")], {})
    assert cfg.initial_cluster == ""
    assert cfg.discovery_srv == "example.com"


def test_unknown_key_warns(tmp_path: Path) -> None:
    result = parse_config(["--config-file", _write(tmp_path, "cert-file: /x\nnmae: a\n")], {})
    keys = [n.fields.get("key") for n in result.notices if "unrecognized key" in n.msg]
    assert keys == ["cert-file", "nmae"]


def test_missing_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yml")
    with pytest.raises(ConfigError) as e:
        load(["--config-file", missing], {})
    assert e.value.message == f"open {missing}: no such file or directory"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "listen-client-urls: localhost:2379\n",
            "unexpected error setting up listen-client-urls: "
            "URL scheme must be http, https, unix, or unixs: localhost:2379",
        ),
        ("heartbeat-interval: 800\n", "should be at least as 5 times as"),
        ("election-timeout: 60000\nheartbeat-interval: 10000\n", "is too long"),
        ("heartbeat-interval: 0\n", "--heartbeat-interval must be >0 (set to 0ms)"),
        ("snapshot-count: many\n", "cannot unmarshal str"),
        ("- a\n- b\n", "cannot unmarshal list"),
        ("name: [\n", "error converting YAML to JSON"),
    ],
)
def test_file_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load(["--config-file", _write(tmp_path, text)], {})
    assert message in e.value.message
