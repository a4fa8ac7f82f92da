"""The machine's default host, for etcd's ``0.0.0.0`` advertise rule.

When a member listens on ``0.0.0.0`` but keeps the default advertised URL
(``http://localhost:2380`` / ``:2379``), etcd advertises the address of the interface
holding the default route instead (``embed.UpdateDefaultClusterFromName``), so other
machines can reach it.  :func:`get_default_host` finds that address; the rule itself is
pure and lives in :func:`apply_default_host`.
"""

from __future__ import annotations

import socket
from dataclasses import replace

from etcdpy.config.model import LogNotice, ServerConfig
from etcdpy.config.values import URL

DEFAULT_PEER_URL = "http://localhost:2380"
DEFAULT_CLIENT_URL = "http://localhost:2379"


def _has_default_route(path: str = "/proc/net/route") -> bool:
    try:
        with open(path, encoding="ascii") as f:
            next(f, None)
            return any(line.split()[1:2] == ["00000000"] for line in f)
    except OSError:
        return False


def get_default_host() -> tuple[str, str]:
    """(host, error): the IPv4 address of the default route's interface, or an error.

    Connecting a UDP socket sends nothing; it only asks the kernel which source address
    it would use towards a non-local destination, i.e. the default route's address.
    """
    if not _has_default_route():
        return "", "could not find default host"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed further than the gateway
            host = str(s.getsockname()[0])
    except OSError as e:
        return "", f"could not find default host: {e}"
    return host, ""


def apply_default_host(
    cfg: ServerConfig, default_host: str, notices: list[LogNotice]
) -> ServerConfig:
    """Replace default advertise URLs by ``default_host`` when listening on 0.0.0.0."""
    if not default_host:
        return cfg
    used = False
    ap = cfg.initial_advertise_peer_urls
    ac = cfg.advertise_client_urls
    lp, lc = cfg.listen_peer_urls, cfg.listen_client_urls
    if len(ap) == 1 and str(ap[0]) == DEFAULT_PEER_URL and lp and lp[0].hostname == "0.0.0.0":
        ap = (URL(ap[0].scheme, f"{default_host}:{lp[0].port}"),)
        used = True
    if len(ac) == 1 and str(ac[0]) == DEFAULT_CLIENT_URL and lc and lc[0].hostname == "0.0.0.0":
        ac = (URL(ac[0].scheme, f"{default_host}:{lc[0].port}"),)
        used = True
    if not used:
        return cfg
    notices.append(LogNotice("info", "detected default host for advertise", {"host": default_host}))
    return replace(cfg, initial_advertise_peer_urls=ap, advertise_client_urls=ac)
