"""``--config-file``: etcd's YAML configuration file (``embed.ConfigFromFile``).

* Rule 1: keys are etcd's flag names (``name``, ``data-dir``, ``initial-cluster``...);
  a missing key keeps the flag's default.  The command line and ``ETCD_*`` variables
  are then ignored entirely (etcd logs that it does so).
* Rule 2: URL lists are comma-separated strings (``listen-client-urls:
  http://a:2379,http://b:2379``); ``cipher-suites`` and ``log-outputs`` are lists.
* Rule 3: TLS settings live under ``client-transport-security`` and
  ``peer-transport-security`` (``cert-file``, ``key-file``, ``client-cert-file``,
  ``client-key-file``, ``client-cert-auth``, ``trusted-ca-file``, ``auto-tls``, and
  etcdpy also reads ``crl-file``, ``allowed-cn``, ``allowed-hostname`` there).
* Rule 4: durations are integer nanoseconds as in etcd (Go's JSON encoding of
  ``time.Duration``); etcdpy also accepts Go duration strings such as ``"5s"``.
* Rule 5: keys etcd does not know are ignored by etcd; etcdpy reports each one as a
  warning so a typo does not go unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etcdpy.config.errors import ConfigError
from etcdpy.config.flags import FLAGS_BY_NAME, FlagSpec, defaults
from etcdpy.config.model import LogNotice
from etcdpy.config.values import parse_go_duration_ns, parse_urls

_SECURITY_KEYS_DOC = "client-transport-security/peer-transport-security"

#: flags that etcd's config file cannot set at top level (process globals, cmdline-only
#: options, and TLS settings, which etcd reads only from the *-transport-security maps).
NOT_IN_FILE = frozenset(
    {
        "config-file",
        "version",
        "raft-read-timeout",
        "raft-write-timeout",
        "socket-reuse-port",
        "socket-reuse-address",
    }
)

_SECURITY_KEYS: dict[str, tuple[str, str]] = {
    # yaml key: (client flag, peer flag)
    "cert-file": ("cert-file", "peer-cert-file"),
    "key-file": ("key-file", "peer-key-file"),
    "client-cert-file": ("client-cert-file", "peer-client-cert-file"),
    "client-key-file": ("client-key-file", "peer-client-key-file"),
    "client-cert-auth": ("client-cert-auth", "peer-client-cert-auth"),
    "trusted-ca-file": ("trusted-ca-file", "peer-trusted-ca-file"),
    "auto-tls": ("auto-tls", "peer-auto-tls"),
    "crl-file": ("client-crl-file", "peer-crl-file"),
    "allowed-cn": ("", "peer-cert-allowed-cn"),
    "allowed-hostname": ("client-cert-allowed-hostname", "peer-cert-allowed-hostname"),
    "skip-client-san-verification": ("", "experimental-peer-skip-client-san-verification"),
}

#: TLS flags: etcd ignores them at the top level of the file (a classic pitfall).
TLS_ONLY_IN_SECTIONS = frozenset(f for pair in _SECURITY_KEYS.values() for f in pair if f)


def _type_error(key: str, value: object, want: str) -> ConfigError:
    got = type(value).__name__
    return ConfigError(
        f"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {got} "
        f"into Go struct field configYAML.{key} of type {want}"
    )


def _convert(spec: FlagSpec, key: str, value: object) -> Any:
    """One YAML value to the flag's Python value (etcd's JSON decoding, a bit lenient)."""
    kind = spec.kind
    if kind in ("string", "enum"):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
        if value is None:
            return ""
        raise _type_error(key, value, "string")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _type_error(key, value, "bool")
    if kind in ("uint", "uint64", "uint32", "int", "int64"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(key, value, kind)
        if kind.startswith("uint") and value < 0:
            raise _type_error(key, value, kind)
        return value
    if kind == "duration":
        if isinstance(value, bool):
            raise _type_error(key, value, "time.Duration")
        if isinstance(value, int):
            return value / 1e9
        if isinstance(value, str):
            try:
                return parse_go_duration_ns(value) / 1e9
            except ValueError as e:
                raise ConfigError(f"invalid {key} {value!r}: {e}") from None
        raise _type_error(key, value, "time.Duration")
    if kind == "urls":
        if not isinstance(value, str):
            raise _type_error(key, value, "string")
        if value == "":
            return spec.default
        try:
            return parse_urls(value)
        except ValueError as e:
            raise ConfigError(f"unexpected error setting up {key}: {e}") from None
    if kind == "cors":
        if not isinstance(value, str):
            raise _type_error(key, value, "string")
        if value in ("", "*"):
            return ("*",) if value == "*" else spec.default
        try:
            return tuple(sorted({str(u) for u in parse_urls(value)}))
        except ValueError as e:
            raise ConfigError(f"unexpected error setting up cors: {e}") from None
    if kind in ("unique_strings", "strings"):
        if isinstance(value, str):
            items = value.split(",") if value else []
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            items = list(value)
        else:
            raise _type_error(key, value, "[]string")
        return tuple(sorted(set(items))) if kind == "unique_strings" else tuple(items)
    if kind == "enum_multi":
        if not isinstance(value, str):
            raise _type_error(key, value, "string")
        items = [v for v in value.split(",") if v]
        for item in items:
            if item not in spec.choices:
                raise ConfigError(f'invalid value "{item}" for {key}')
        return tuple(sorted(items))
    raise _type_error(key, value, kind)


def read_config_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"open {path}: no such file or directory") from None
    except OSError as e:
        raise ConfigError(f"open {path}: {e.strerror or e}") from None


def load_config_file(path: str, notices: list[LogNotice]) -> tuple[dict[str, Any], list[str]]:
    """Read ``path``; return flag values (defaults + file) and the flags the file set."""
    import yaml  # only a member started with --config-file pays for it

    text = read_config_file(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"error converting YAML to JSON: yaml: {e}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise ConfigError(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
            f"{type(doc).__name__} into Go value of type embed.configYAML"
        )
    values = defaults()
    given: list[str] = []

    def put(flag: str, key: str, value: object) -> None:
        if value is None:  # JSON null leaves a Go field unchanged
            return
        values[flag] = _convert(FLAGS_BY_NAME[flag], key, value)
        if flag not in given:
            given.append(flag)

    for raw_key, value in doc.items():
        key = str(raw_key)
        if key in ("client-transport-security", "peer-transport-security"):
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise _type_error(key, value, "embed.securityConfig")
            side = 0 if key.startswith("client") else 1
            for sub_key, sub_value in value.items():
                target = _SECURITY_KEYS.get(str(sub_key), ("", ""))[side]
                if not target:
                    notices.append(
                        LogNotice(
                            "warn",
                            "unrecognized key in configuration file; ignoring",
                            {"key": f"{key}.{sub_key}", "path": path},
                        )
                    )
                    continue
                put(target, f"{key}.{sub_key}", sub_value)
            continue
        spec = FLAGS_BY_NAME.get(key)
        if key in TLS_ONLY_IN_SECTIONS:
            notices.append(
                LogNotice(
                    "warn",
                    "unrecognized key in configuration file; ignoring (TLS settings belong "
                    f"under {_SECURITY_KEYS_DOC})",
                    {"key": key, "path": path},
                )
            )
            continue
        if spec is None or spec.kind == "ignored" or key in NOT_IN_FILE:
            notices.append(
                LogNotice(
                    "warn",
                    "unrecognized key in configuration file; ignoring",
                    {"key": key, "path": path},
                )
            )
            continue
        put(key, key, value)

    # embed.configFromFile's fix-ups.
    default_cluster = FLAGS_BY_NAME["initial-cluster"].default
    if (values["discovery"] or values["discovery-srv"]) and values[
        "initial-cluster"
    ] == default_cluster:
        values["initial-cluster"] = ""
    if values["initial-cluster-state"] == "":
        values["initial-cluster-state"] = "new"
    if values["self-signed-cert-validity"] == 0:
        values["self-signed-cert-validity"] = 1
    for name in ("discovery-fallback", "proxy"):
        spec = FLAGS_BY_NAME[name]
        if values[name] not in spec.choices:
            raise ConfigError(f"unexpected error setting up {name} flag: invalid value")
    return values, given
