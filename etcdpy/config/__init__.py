"""Configuration: argv + environment (or a YAML file) -> one frozen ServerConfig.

Precedence, as etcd 3.5's ``etcdmain.config.parse``:

1. ``--config-file`` (or ``ETCD_CONFIG_FILE`` when the flag is absent): the file alone
   decides; other flags and ``ETCD_*`` variables are ignored (a notice says so).
2. Otherwise command-line flags, then ``ETCD_*`` variables for flags not given
   (giving both is fatal, as in etcd 3.5), then defaults.

Use :func:`load` for the config, or :func:`parse_config` to also get the log notices
(environment variables used, unrecognized ones...) that the CLI logs once its logger
exists.  ``argv`` never includes the program name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from etcdpy.config import support
from etcdpy.config.defaulthost import apply_default_host
from etcdpy.config.env import apply_env
from etcdpy.config.errors import (
    ConfigError,
    EnvConflictError,
    FlagParseError,
    HelpRequested,
    UnsupportedFlagError,
    VersionRequested,
)
from etcdpy.config.file import load_config_file
from etcdpy.config.flags import FLAGS, FLAGS_BY_NAME, NON_CONFIG_FLAGS, parse_command_line
from etcdpy.config.model import LogNotice, ServerConfig
from etcdpy.config.support import NOOP_FLAGS, UNSUPPORTED_FLAGS
from etcdpy.config.values import URL
from etcdpy.version import DEFAULT_SERVER_VERSION

__all__ = [
    "FLAGS",
    "NOOP_FLAGS",
    "UNSUPPORTED_FLAGS",
    "URL",
    "ConfigError",
    "EnvConflictError",
    "FlagParseError",
    "HelpRequested",
    "LoadResult",
    "LogNotice",
    "ServerConfig",
    "UnsupportedFlagError",
    "VersionRequested",
    "default_advertise_version",
    "default_config",
    "load",
    "parse_config",
]

DEFAULT_INITIAL_CLUSTER = "default=http://localhost:2380"
DefaultHost = Callable[[], tuple[str, str]]


def default_advertise_version() -> str:
    """The etcd version etcdpy claims unless configured (etcdpy.version's default)."""
    return DEFAULT_SERVER_VERSION


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What the command line asked for, plus notices to log."""

    config: ServerConfig | None  # None when print_version is set
    notices: tuple[LogNotice, ...]
    print_version: bool = False
    advertise_version: str = DEFAULT_SERVER_VERSION


def _advertise_version(values: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    return (
        values.get("etcdpy-advertise-version")
        or environ.get("ETCDPY_ADVERTISE_VERSION", "")
        or default_advertise_version()
    )


def _initial_cluster_from_name(name: str, apurls: tuple[URL, ...]) -> str:
    """embed.Config.InitialClusterFromName."""
    n = name or "default"
    return ",".join(f"{n}={u}" for u in apurls)


def _build(
    values: dict[str, Any],
    given: list[str],
    config_file: str,
    environ: Mapping[str, str],
    notices: list[LogNotice],
    default_host: DefaultHost | None,
) -> ServerConfig:
    kwargs: dict[str, Any] = {
        spec.field: values[spec.name] for spec in FLAGS if spec.name not in NON_CONFIG_FLAGS
    }
    stages = values["v2-deprecation"]
    kwargs["v2_deprecation"] = stages[-1] if stages else "not-yet"
    kwargs["config_file"] = config_file
    kwargs["advertise_version"] = _advertise_version(values, environ)
    kwargs["flags_explicitly_set"] = frozenset(given)
    cfg = ServerConfig(**kwargs)
    cfg.validate()
    # etcdmain.startEtcdOrProxyV2, after validation: embed.UpdateDefaultClusterFromName.
    if default_host is not None and any(
        u.hostname == "0.0.0.0" for u in cfg.listen_peer_urls[:1] + cfg.listen_client_urls[:1]
    ):
        host, err = default_host()
        if err:
            notices.append(LogNotice("info", "failed to detect default host", {"error": err}))
        cfg = apply_default_host(cfg, host, notices)
    changes: dict[str, Any] = {}
    if cfg.name != "default" and cfg.initial_cluster == DEFAULT_INITIAL_CLUSTER:
        changes["initial_cluster"] = _initial_cluster_from_name(
            cfg.name, cfg.initial_advertise_peer_urls
        )
    if not cfg.data_dir:
        changes["data_dir"] = f"{cfg.name}.etcd"
        notices.append(
            LogNotice(
                "warn", "'data-dir' was empty; using default", {"data-dir": changes["data_dir"]}
            )
        )
    return dataclasses.replace(cfg, **changes) if changes else cfg


def _check_support(cfg: ServerConfig, values: Mapping[str, Any], notices: list[LogNotice]) -> None:
    refused = sorted(
        name
        for name in support.UNSUPPORTED_FLAGS
        if name in values and values[name] != FLAGS_BY_NAME[name].default
    )
    if refused:
        raise UnsupportedFlagError(refused)
    for name in sorted(support.NOOP_FLAGS):
        if name in cfg.flags_explicitly_set and values[name] != FLAGS_BY_NAME[name].default:
            notices.append(
                LogNotice("warn", "flag has no effect in etcdpy; ignoring", {"flag": f"--{name}"})
            )
    if values.get("enable-v2"):
        # etcd 3.5 serves the v2 API under /v2/ with --enable-v2; etcdpy accepts the flag (so
        # configuration files written for etcd keep working) but has no v2 store
        notices.append(
            LogNotice(
                "warn",
                "etcdpy does not serve the v2 API; --enable-v2 is ignored (/v2/* answers 404)",
                {"flag": "--enable-v2"},
            )
        )


def parse_config(
    argv: Sequence[str],
    environ: Mapping[str, str],
    *,
    default_host: DefaultHost | None = None,
) -> LoadResult:
    """Parse like ``etcd``: raises FlagParseError (exit 2), HelpRequested, ConfigError.

    ``default_host`` (the CLI passes :func:`~etcdpy.config.defaulthost.get_default_host`)
    enables etcd's rule that advertises the machine's address instead of ``localhost``
    when listening on ``0.0.0.0``; without it parsing does no I/O besides the file.
    """
    cl = parse_command_line(argv)
    notices: list[LogNotice] = []
    if cl.positional:
        raise ConfigError(f"'{cl.positional[0]}' is not a valid flag")
    if cl.values["version"]:
        return LoadResult(None, (), True, _advertise_version(cl.values, environ))
    for name in cl.given:
        if FLAGS_BY_NAME[name].kind == "ignored":
            notices.append(LogNotice("warn", f'flag "-{name}" is no longer supported - ignoring.'))
    config_file = cl.values["config-file"] or environ.get("ETCD_CONFIG_FILE", "")
    if config_file:
        values, given = load_config_file(config_file, notices)
        notices.append(
            LogNotice(
                "info",
                "loaded server configuration, other configuration command line flags and "
                "environment variables will be ignored if provided",
                {"path": config_file},
            )
        )
    else:
        values, given = cl.values, list(cl.given)
        apply_env(values, given, environ, notices)
        # disable default advertise-client-urls if listen-client-urls is set
        if "listen-client-urls" in given and "advertise-client-urls" not in given:
            if values["proxy"] == "off" and not (
                values["discovery"] and values["discovery-fallback"] == "proxy"
            ):
                values["advertise-client-urls"] = ()
        # disable the default initial-cluster if discovery is set
        if (values["discovery"] or values["discovery-srv"] or values["discovery-srv-name"]) and (
            "initial-cluster" not in given
        ):
            values["initial-cluster"] = ""
    cfg = _build(values, given, config_file, environ, notices, default_host)
    _check_support(cfg, values, notices)
    return LoadResult(cfg, tuple(notices), False, cfg.advertise_version)


def default_config(**overrides: Any) -> ServerConfig:
    """etcd's defaults with some fields replaced (for tests and embedding); validated."""
    cfg = dataclasses.replace(load([], {}), **overrides)
    cfg.validate()
    return cfg


def load(argv: Sequence[str], environ: Mapping[str, str]) -> ServerConfig:
    """Build the ServerConfig; raises HelpRequested/VersionRequested for those flags."""
    result = parse_config(argv, environ)
    if result.print_version or result.config is None:
        raise VersionRequested()
    return result.config
