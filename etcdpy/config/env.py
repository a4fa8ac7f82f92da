"""``ETCD_*`` environment variables, with etcd 3.5's rules (``pkg/flags.SetFlagsFromEnv``).

* Rule 1: every flag ``--some-flag`` can be given as ``ETCD_SOME_FLAG``; an empty value
  counts as not given.  A value is parsed exactly like the flag's command-line value;
  a bad one fails with ``invalid value "v" for ETCD_SOME_FLAG: <reason>``.
* Rule 2: giving both ``--some-flag`` and ``ETCD_SOME_FLAG`` is fatal in etcd 3.5
  (``conflicting environment variable is shadowed by corresponding command-line flag``)
  -- the flag does not silently win.
* Rule 3: any other variable starting with ``ETCD_`` is reported as
  ``unrecognized environment variable`` (a warning; etcd still starts).
* Rule 4: ``ETCD_VERSION`` is special: it would print the version instead of starting,
  so etcd ignores it with a warning.
* Rule 5 (etcdpy): etcdpy's own variables (``ETCDPY_ADVERTISE_VERSION``) lose quietly to
  their flag; they are not etcd's and etcd's fatal rule does not apply to them.
* The environment is only read when no config file is used (see ``config.load``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etcdpy.config.errors import ConfigError, EnvConflictError
from etcdpy.config.flags import FLAGS, set_value
from etcdpy.config.model import LogNotice
from etcdpy.config.values import go_quote


def apply_env(
    values: dict[str, Any],
    given: list[str],
    environ: Mapping[str, str],
    notices: list[LogNotice],
) -> None:
    """Fill ``values`` from ``environ`` for flags not given on the command line.

    Flags set from the environment are appended to ``given`` (Go marks them as set, which
    matters for e.g. the advertise-client-urls rule).  Raises ConfigError/EnvConflictError.
    """
    env = dict(environ)
    version_val = env.pop("ETCD_VERSION", "")
    if version_val:
        notices.append(
            LogNotice(
                "warn",
                "cannot set special environment variable",
                {"key": "ETCD_VERSION", "value": version_val},
            )
        )
    already_set = {FLAGS_ENV[name] for name in given if name in FLAGS_ENV}
    used: set[str] = set()
    error: ConfigError | None = None
    for spec in sorted(FLAGS, key=lambda f: f.name):  # Go's VisitAll order
        key = spec.env_key
        if key in already_set:
            continue
        val = env.get(key, "")
        if not val:
            continue
        used.add(key)
        try:
            values[spec.name] = set_value(spec, values[spec.name], val)
        except ValueError as e:
            error = ConfigError(f"invalid value {go_quote(val)} for {key}: {e}")
            continue
        if spec.name not in given:
            given.append(spec.name)
        notices.append(
            LogNotice(
                "info",
                "recognized and used environment variable",
                {"variable-name": key, "variable-value": val},
            )
        )
    for key, val in env.items():
        if key in used:
            continue
        if key in already_set and key not in OWN_ENV_KEYS:
            raise EnvConflictError(key)
        if key.startswith("ETCD_"):
            notices.append(
                LogNotice(
                    "warn",
                    "unrecognized environment variable",
                    {"environment-variable": f"{key}={val}"},
                )
            )
    if error is not None:
        raise error


FLAGS_ENV: dict[str, str] = {f.name: f.env_key for f in FLAGS}
OWN_ENV_KEYS = frozenset(f.env_key for f in FLAGS if f.env is not None)
