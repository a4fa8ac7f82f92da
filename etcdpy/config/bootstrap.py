"""Bootstrap checks on ``--initial-cluster`` (etcd's ``ServerConfig.VerifyBootstrap``).

etcd makes these checks when the server starts, not while parsing flags, because the
cluster may come from DNS SRV records instead of ``--initial-cluster``; the server calls
:func:`verify_bootstrap` (new cluster) or :func:`verify_join_existing` with the cluster
it ended up with.  Messages are etcd's.

``resolve`` turns ``host:port`` into resolved ``ip:port`` strings; etcd resolves both
sides before deciding that advertised peer URLs and the cluster's entry differ (so
``localhost`` matches ``127.0.0.1``).  Without a resolver, URLs compare as strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from etcdpy.config.errors import ConfigError
from etcdpy.config.model import ServerConfig
from etcdpy.config.values import URL, parse_urls_map, urls_map_string

Resolver = Callable[[str], Sequence[str]]
UrlsMap = dict[str, tuple[URL, ...]]


def _go_list(items: Sequence[str]) -> str:
    return "[" + " ".join(f'"{s}"' for s in items) + "]"


def _cluster_map(cfg: ServerConfig, urlsmap: UrlsMap | None) -> UrlsMap:
    if urlsmap is not None:
        return urlsmap
    try:
        return parse_urls_map(cfg.initial_cluster)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _has_local_member(cfg: ServerConfig, m: UrlsMap) -> None:
    if not m.get(cfg.name):
        raise ConfigError(
            f'couldn\'t find local name "{cfg.name}" in the initial cluster configuration'
        )


def _has_duplicate_url(m: UrlsMap) -> bool:
    seen: set[str] = set()
    for urls in m.values():
        for u in urls:
            if str(u) in seen:
                return True
            seen.add(str(u))
    return False


def _urls_equal(a: list[str], b: list[str], resolve: Resolver | None) -> tuple[bool, str]:
    """netutil.URLStringsEqual: equal as strings, or equal once hosts are resolved."""
    if len(a) != len(b):
        return False, f"len({_go_list(a)}) != len({_go_list(b)})"
    if a == b:
        return True, ""
    if resolve is None:
        return False, f"{_go_list(a)} != {_go_list(b)}"

    def resolved(urls: list[str]) -> list[str]:
        out = []
        for text in urls:
            scheme, _, host = text.partition("://")
            addrs = list(resolve(host)) or [host]
            out.append(f"{scheme}://{sorted(addrs)[0]}")
        return sorted(out)

    ra, rb = resolved(a), resolved(b)
    if ra == rb:
        return True, ""
    left = f"{_go_list(ra)}(resolved from {_go_list(a)})"
    right = f"{_go_list(rb)}(resolved from {_go_list(b)})"
    return False, f"{left} != {right}"


def _advertise_matches_cluster(cfg: ServerConfig, m: UrlsMap, resolve: Resolver | None) -> None:
    cluster_urls = sorted(str(u) for u in m.get(cfg.name, ()))
    apurls = sorted(str(u) for u in cfg.initial_advertise_peer_urls)
    ok, err = _urls_equal(apurls, cluster_urls, resolve)
    if ok:
        return
    missing = [u for u in cluster_urls if u not in apurls]
    if missing:
        mstr = ",".join(f"{cfg.name}={u}" for u in missing)
        raise ConfigError(
            f"--initial-cluster has {mstr} but missing from "
            f"--initial-advertise-peer-urls={','.join(apurls)} ({err})"
        )
    missing = [u for u in apurls if u not in cluster_urls]
    if missing:
        umap = urls_map_string({cfg.name: cfg.initial_advertise_peer_urls})
        raise ConfigError(
            f"--initial-advertise-peer-urls has {','.join(missing)} but missing from "
            f"--initial-cluster={umap}"
        )
    umap = urls_map_string({cfg.name: m.get(cfg.name, ())})
    raise ConfigError(
        f"failed to resolve {','.join(apurls)} to match --initial-cluster={umap} ({err})"
    )


def verify_bootstrap(
    cfg: ServerConfig, urlsmap: UrlsMap | None = None, *, resolve: Resolver | None = None
) -> None:
    """Checks before bootstrapping a new cluster; raises ConfigError (etcd exits 1)."""
    m = _cluster_map(cfg, urlsmap)
    _has_local_member(cfg, m)
    _advertise_matches_cluster(cfg, m, resolve)
    if _has_duplicate_url(m):
        raise ConfigError(f"initial cluster {urls_map_string(m)} has duplicate url")
    if not urls_map_string(m) and not cfg.discovery:
        raise ConfigError("initial cluster unset and no discovery URL found")


def verify_join_existing(
    cfg: ServerConfig, urlsmap: UrlsMap | None = None, *, resolve: Resolver | None = None
) -> None:
    """Checks before joining an existing cluster (``--initial-cluster-state=existing``)."""
    m = _cluster_map(cfg, urlsmap)
    _has_local_member(cfg, m)
    _advertise_matches_cluster(cfg, m, resolve)
    if _has_duplicate_url(m):
        raise ConfigError(f"initial cluster {urls_map_string(m)} has duplicate url")
    if cfg.discovery:
        raise ConfigError("discovery URL should not be set when joining existing initial cluster")
