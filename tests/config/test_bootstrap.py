"""VerifyBootstrap / VerifyJoinExisting messages."""

from __future__ import annotations

import pytest

from etcdpy.config import ConfigError, load
from etcdpy.config.bootstrap import verify_bootstrap, verify_join_existing


def test_default_config_bootstraps() -> None:
    verify_bootstrap(load([], {}))


def test_local_name_missing() -> None:
    cfg = load(["--name", "a", "--initial-cluster", "b=http://127.0.0.1:2380"], {})
    with pytest.raises(ConfigError) as e:
        verify_bootstrap(cfg)
    assert e.value.message == ('couldn\'t find local name "a" in the initial cluster configuration')


def test_cluster_url_missing_from_advertise() -> None:
    cfg = load(
        [
            "--name", "a",
            "--initial-cluster", "a=http://127.0.0.1:2380,a=http://127.0.0.1:2381",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        ],
        {},
    )  # fmt: skip
    with pytest.raises(ConfigError) as e:
        verify_bootstrap(cfg)
    assert e.value.message.startswith(
        "--initial-cluster has a=http://127.0.0.1:2381 but missing from "
        "--initial-advertise-peer-urls=http://127.0.0.1:2380 (len("
    )


def test_advertise_url_missing_from_cluster() -> None:
    cfg = load(
        [
            "--name", "a",
            "--initial-cluster", "a=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380,http://127.0.0.1:2381",
        ],
        {},
    )  # fmt: skip
    with pytest.raises(ConfigError) as e:
        verify_bootstrap(cfg)
    assert e.value.message == (
        "--initial-advertise-peer-urls has http://127.0.0.1:2381 but missing from "
        "--initial-cluster=a=http://127.0.0.1:2380,a=http://127.0.0.1:2381"
    )


def test_resolver_makes_localhost_match() -> None:
    cfg = load(
        [
            "--name", "a",
            "--initial-cluster", "a=http://localhost:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        ],
        {},
    )  # fmt: skip
    with pytest.raises(ConfigError):
        verify_bootstrap(cfg)
    verify_bootstrap(
        cfg, resolve=lambda hp: ["127.0.0.1:2380"] if hp.startswith("localhost") else [hp]
    )


def test_duplicate_url() -> None:
    cfg = load(
        [
            "--name", "a",
            "--initial-cluster", "a=http://127.0.0.1:2380,b=http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        ],
        {},
    )  # fmt: skip
    with pytest.raises(ConfigError, match="has duplicate url"):
        verify_bootstrap(cfg)


def test_join_existing_ok() -> None:
    cfg = load(["--initial-cluster-state", "existing"], {})
    verify_join_existing(cfg)
