"""Errors raised while turning argv, environment and config file into a ServerConfig.

etcd reports configuration problems in two ways, and the CLI must keep them apart
because scripts (and etcd's e2e suite) look at the exit code:

* Rule 1: a *command-line syntax* problem (unknown flag, missing argument, a value the
  flag type cannot parse) is reported by Go's ``flag`` package: the error text, then the
  short usage, on stderr; etcd exits with status 2.  -> :class:`FlagParseError`.
* Rule 2: everything found *after* parsing (environment variables, the config file,
  ``Config.Validate()``) is logged by zap as ``"failed to verify flags"`` with the error,
  and etcd exits with status 1.  -> :class:`ConfigError` and its subclasses.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration problem found after command-line parsing (etcd exits 1).

    ``message`` is etcd's error text.  ``log_msg``/``log_level``/``fields`` say how the
    CLI should log it: by default as etcd's ``failed to verify flags`` warning with an
    ``error`` field, but a few errors are logged by etcd as their own (fatal) line.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        log_msg: str = "failed to verify flags",
        log_level: str = "warn",
        fields: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.log_msg = log_msg
        self.log_level = log_level
        self.fields: dict[str, object] = dict(fields) if fields else {"error": message}


class FlagParseError(ConfigError):
    """Go ``flag`` package error: printed with the usage text, exit status 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)


class EnvConflictError(ConfigError):
    """``ETCD_X`` set while ``--x`` is given on the command line.

    etcd 3.5 treats this as fatal (``lg.Fatal`` in ``pkg/flags.verifyEnv``), not as
    "flag wins": it refuses to start so the operator removes one of the two.
    """

    def __init__(self, env_key: str) -> None:
        super().__init__(
            f"conflicting environment variable {env_key!r} is shadowed by corresponding "
            "command-line flag (either unset environment variable or disable flag)",
            log_msg=(
                "conflicting environment variable is shadowed by corresponding command-line "
                "flag (either unset environment variable or disable flag))"
            ),
            log_level="fatal",
            fields={"environment-variable": env_key},
        )
        self.env_key = env_key


class UnsupportedFlagError(ConfigError):
    """A flag etcd has but etcdpy does not implement yet, given a non-default value.

    Refusing is the only honest answer: silently ignoring ``--unsafe-no-fsync`` or
    ``--auth-token=jwt`` would run a server that is not the one the operator asked for.
    """

    def __init__(self, flags: list[str]) -> None:
        names = ", ".join(f"--{f}" for f in flags)
        super().__init__(
            f"etcdpy does not support {names} yet (given a non-default value); "
            "remove the flag or use its default"
        )
        self.flags = tuple(flags)


class HelpRequested(Exception):
    """``-h``/``--help`` was given: print usage (stderr) and flags (stdout), exit 0."""


class VersionRequested(Exception):
    """``--version`` was given: print the four version lines, exit 0."""
