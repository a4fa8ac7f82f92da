"""etcdpy.version: advertised versions, ``--version`` text and ``/version`` body."""

from __future__ import annotations

import pytest

from etcdpy import version as V


def test_defaults() -> None:
    v = V.versions()
    assert (v.server, v.cluster, v.api, v.git_sha) == ("3.5.17", "3.5.0", "3.5", "etcdpy")
    assert V.parse_version(v.server) >= (3, 5, 13)  # Kubernetes gates watch progress on it


def test_configured_server_version_does_not_leak() -> None:
    assert V.versions("3.5.21").server == "3.5.21"
    assert V.versions().server == "3.5.17"


def test_version_text_format() -> None:
    lines = V.version_text("3.5.18").splitlines()
    assert lines[0] == "etcd Version: 3.5.18"
    assert lines[1] == "Git SHA: etcdpy"
    assert lines[2].startswith("Go Version: python3.")
    assert lines[3].startswith("Go OS/Arch: ") and "/" in lines[3]


def test_http_body() -> None:
    assert V.http_version_body() == {"etcdserver": "3.5.17", "etcdcluster": "3.5.0"}


@pytest.mark.parametrize("bad", ["3.5", "v3.5.1", "3.5.x", ""])
def test_invalid_versions_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        V.versions(bad) if bad else V.parse_version(bad)


def test_cluster_version_of() -> None:
    assert V.cluster_version_of("3.5.17") == "3.5.0"
    assert isinstance(V.etcdpy_version(), str)
