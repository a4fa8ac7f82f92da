"""Versions etcdpy reports: the etcd server/cluster/API versions it speaks, and its own.

The *advertised* server version is configurable (ARCHITECTURE "Decisions"): Kubernetes gates
watch-progress requests on it and parses ``etcd --version``, so it defaults to a 3.5 release
at or above 3.5.13. Nothing here is mutable: callers pass the configured version to the
functions below instead of changing a module global.
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass

DEFAULT_SERVER_VERSION = "3.5.17"
"""etcd release we advertise unless configured otherwise."""

CLUSTER_VERSION = "3.5.0"
"""Cluster version a cluster of our members settles on (etcd: min member major.minor.0)."""

MIN_CLUSTER_VERSION = "3.0.0"
"""Oldest cluster version a member of this release can join (etcd 3.5's MinClusterVersion)."""

API_VERSION = "3.5"
"""etcd API version (major.minor), as in etcd's version.APIVersion."""

GIT_SHA = "etcdpy"
"""Placeholder for etcd's ``Git SHA`` line: we are not a build of etcd's tree."""

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")


def parse_version(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a semver string; ValueError if it is not one."""
    m = _SEMVER.match(text)
    if m is None:
        raise ValueError(f"invalid version {text!r}: want MAJOR.MINOR.PATCH")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def cluster_version_of(server_version: str) -> str:
    """``major.minor.0`` of a server version, the unit etcd's cluster version moves in."""
    major, minor, _ = parse_version(server_version)
    return f"{major}.{minor}.0"


def etcdpy_version() -> str:
    """etcdpy's own version from the installed package metadata (or a placeholder in place)."""
    try:
        from importlib import metadata  # only here: ~1 MiB of idle RSS otherwise

        return metadata.version("etcdpy")
    except ImportError:
        return "0.0.0+unknown"


@dataclass(frozen=True, slots=True)
class Versions:
    """Everything version-shaped one server reports."""

    server: str
    cluster: str
    api: str
    etcdpy: str
    git_sha: str


def versions(server_version: str | None = None, cluster_version: str | None = None) -> Versions:
    """The versions for a server advertising ``server_version`` (default 3.5.17)."""
    server = server_version or DEFAULT_SERVER_VERSION
    parse_version(server)
    return Versions(
        server=server,
        cluster=cluster_version or CLUSTER_VERSION,
        api=API_VERSION,
        etcdpy=etcdpy_version(),
        git_sha=GIT_SHA,
    )


def runtime_version() -> str:
    """What fills etcd's ``Go Version`` line: the Python runtime, honestly named."""
    return f"python{platform.python_version()}"


def os_arch() -> str:
    """``GOOS/GOARCH``-style platform, e.g. ``linux/amd64``."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"{sys.platform}/{arch}"


def version_text(server_version: str | None = None) -> str:
    """Output of ``etcd --version``, line for line in etcd's format (tools parse line 1)::

    etcd Version: 3.5.17
    Git SHA: etcdpy
    Go Version: python3.11.9
    Go OS/Arch: linux/amd64
    """
    v = versions(server_version)
    return (
        f"etcd Version: {v.server}\n"
        f"Git SHA: {v.git_sha}\n"
        f"Go Version: {runtime_version()}\n"
        f"Go OS/Arch: {os_arch()}\n"
    )


def http_version_body(
    server_version: str | None = None, cluster_version: str | None = None
) -> dict[str, str]:
    """JSON body of ``GET /version``: ``{"etcdserver": ..., "etcdcluster": ...}``."""
    v = versions(server_version, cluster_version)
    return {"etcdserver": v.server, "etcdcluster": v.cluster}
