"""ETCD_* environment variables, with etcd 3.5's precedence and warnings."""

from __future__ import annotations

import pytest

from etcdpy.config import ConfigError, EnvConflictError, load, parse_config


def test_env_sets_flags() -> None:
    cfg = load(
        [],
        {
            "ETCD_NAME": "n1",
            "ETCD_SNAPSHOT_COUNT": "42",
            "ETCD_ENABLE_V2": "true",
            "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL": "5s",
            "ETCD_INITIAL_CLUSTER_STATE": "existing",
        },
    )
    assert (cfg.name, cfg.snapshot_count, cfg.enable_v2) == ("n1", 42, True)
    assert cfg.experimental_watch_progress_notify_interval == 5.0
    assert cfg.initial_cluster_state == "existing"
    assert {"name", "snapshot-count", "enable-v2"} <= cfg.flags_explicitly_set


def test_env_used_is_logged() -> None:
    result = parse_config([], {"ETCD_NAME": "n1"})
    assert any(
        n.msg == "recognized and used environment variable"
        and n.fields == {"variable-name": "ETCD_NAME", "variable-value": "n1"}
        for n in result.notices
    )


def test_empty_env_value_is_ignored() -> None:
    assert load([], {"ETCD_NAME": ""}).name == "default"


def test_flag_and_env_together_is_fatal_like_etcd_35() -> None:
    with pytest.raises(EnvConflictError) as e:
        load(["--name", "a"], {"ETCD_NAME": "b"})
    assert e.value.env_key == "ETCD_NAME"
    assert e.value.log_level == "fatal"
    assert e.value.log_msg.startswith(
        "conflicting environment variable is shadowed by corresponding command-line flag"
    )
    assert e.value.fields == {"environment-variable": "ETCD_NAME"}
    assert e.value.exit_code == 1


def test_unrecognized_etcd_variable_warns() -> None:
    result = parse_config([], {"ETCD_NOPE": "1", "ETCDCTL_API": "3", "HOME": "/root"})
    warnings = [n for n in result.notices if n.msg == "unrecognized environment variable"]
    assert [n.fields for n in warnings] == [{"environment-variable": "ETCD_NOPE=1"}]


def test_etcd_version_variable_is_special() -> None:
    result = parse_config([], {"ETCD_VERSION": "true"})
    assert result.print_version is False
    assert result.config is not None
    assert any(n.msg == "cannot set special environment variable" for n in result.notices)


def test_bad_env_value() -> None:
    with pytest.raises(ConfigError) as e:
        load([], {"ETCD_SNAPSHOT_COUNT": "many"})
    assert e.value.message == 'invalid value "many" for ETCD_SNAPSHOT_COUNT: parse error'
    assert e.value.exit_code == 1


def test_env_listen_client_urls_counts_as_set() -> None:
    """Go marks env-set flags as set: the default advertise URL is dropped, as with a flag."""
    with pytest.raises(ConfigError) as e:
        load([], {"ETCD_LISTEN_CLIENT_URLS": "http://127.0.0.1:2379"})
    assert e.value.message == (
        "--advertise-client-urls is required when --listen-client-urls is set explicitly"
    )


def test_etcdpy_advertise_version_env_and_flag() -> None:
    assert load([], {"ETCDPY_ADVERTISE_VERSION": "3.5.20"}).advertise_version == "3.5.20"
    cfg = load(["--etcdpy-advertise-version", "3.5.13"], {"ETCDPY_ADVERTISE_VERSION": "3.5.20"})
    assert cfg.advertise_version == "3.5.13"


def test_config_file_from_env(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "c.yml"  # type: ignore[operator]
    path.write_text("name: from-file\n")
    cfg = load([], {"ETCD_CONFIG_FILE": str(path), "ETCD_SNAPSHOT_COUNT": "3"})
    assert cfg.name == "from-file"
    assert cfg.snapshot_count == 100000  # env ignored when a config file is used
