"""``etcdpy``: etcd's server command line (etcd 3.5's ``etcdmain``), then ``embed.run``.

Exit statuses follow etcd: 0 after ``--help``/``--version``; 2 for a command-line
syntax error (Go's flag package prints the error and the usage); 1 for any other
configuration error (logged as zap's ``failed to verify flags`` line) or start failure.
The logger is built here, once, from ``--log-level``/``--log-outputs`` and handed to
``embed.run(config, logger)``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from etcdpy.cli.help import flags_help, usage
from etcdpy.cli.subcommands import run_subcommand
from etcdpy.config import (
    ConfigError,
    FlagParseError,
    HelpRequested,
    ServerConfig,
    parse_config,
)
from etcdpy.config.defaulthost import get_default_host
from etcdpy.config.validate import ERR_UNSET_ADVERTISE_CLIENT_URLS
from etcdpy.observability.logging import Logger, attach_stdlib, build_logger
from etcdpy.version import version_text


def _report_config_error(err: ConfigError, args: Sequence[str], stderr: TextIO) -> int:
    """etcd 3.5 logs with a default zap logger (info, stderr), then exits 1."""
    lg = Logger(level="info", outputs=[stderr])
    lg.info("Running: ", {"args": list(args)})
    lg.log(err.log_level, err.log_msg, err.fields)
    if err.message == ERR_UNSET_ADVERTISE_CLIENT_URLS:
        lg.warn("advertise client URLs are not set", {"error": err.message})
    return err.exit_code


def _die_by_signal(sig: signal.Signals) -> int:
    """Leave like etcd's osutil.HandleInterrupts: re-raise the signal with its default
    action so the parent sees "killed by SIGINT" (etcd's e2e harness expects that), or
    exit 0 when running as PID 1 (a container's init)."""
    if os.getpid() == 1:
        return 0
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
    return 128 + int(sig)


def _run_server(cfg: ServerConfig, lg: Logger) -> int:
    try:
        embed = importlib.import_module("etcdpy.embed")
    except ImportError as e:
        lg.error("etcdpy.embed is not available; cannot start the server", {"error": str(e)})
        return 1
    _tune_gc()
    result = embed.run(cfg, lg)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return int(result or 0)


def _tune_gc() -> None:
    """A long-running server: move everything the imports created (modules, classes,
    descriptors: most of the heap) to the permanent generation, so the collector's
    older-generation passes stop re-scanning them under load."""
    import gc

    gc.collect()
    gc.freeze()


async def _await(aw: object) -> object:
    assert inspect.isawaitable(aw)
    return await aw


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    prog: str = "etcd",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Entry point of ``etcdpy`` and ``python -m etcdpy``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if args and args[0] in ("gateway", "grpc-proxy"):
        return run_subcommand(args, out, err)
    try:
        result = parse_config(args, env, default_host=get_default_host)
    except HelpRequested:
        err.write(usage(prog) + "\n")
        out.write(flags_help() + "\n")
        return 0
    except FlagParseError as e:
        err.write(f"{e.message}\n{usage(prog)}\n")
        return e.exit_code
    except ConfigError as e:
        return _report_config_error(e, [prog, *args], err)
    if result.print_version or result.config is None:
        out.write(version_text(result.advertise_version))
        return 0
    cfg = result.config
    try:
        lg = build_logger(cfg.log_level, cfg.log_outputs)
    except (OSError, ValueError) as e:
        err.write(f"failed to set up logging: {e}\n")
        return 1
    detach = attach_stdlib(lg)
    try:
        lg.info("Running: ", {"args": [prog, *args]})
        for notice in result.notices:
            lg.log(notice.level, notice.msg, notice.fields)
        return _run_server(cfg, lg)
    except KeyboardInterrupt:
        lg.info("received signal; shutting down", {"signal": "interrupt"})
        return _die_by_signal(signal.SIGINT)
    finally:
        detach()
        lg.close()


if __name__ == "__main__":
    raise SystemExit(main())
