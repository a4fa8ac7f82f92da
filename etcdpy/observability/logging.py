"""Structured logging in etcd 3.5's zap JSON format, one Logger object passed around.

A line looks like etcd's::

    {"level":"info","ts":"2026-11-24T07:22:39.710720Z","caller":"embed/etcd.go:124",
     "msg":"ready to serve client requests","address":"127.0.0.1:2379"}

Rules:

* Rule 1: keys in zap's order: ``level``, ``ts`` (UTC, microseconds, ``Z``), ``caller``
  (``<dir>/<file>:<line>`` of the call site), ``msg``, then the logger's bound fields
  (:meth:`Logger.with_fields`), then the call's fields.
* Rule 2: levels ``debug < info < warn < error < dpanic < panic < fatal``; ``panic``
  logs then raises RuntimeError, ``fatal`` logs then raises ``SystemExit(1)`` (zap's
  ``Fatal`` exits the process).
* Rule 3: outputs are etcd's ``--log-outputs``: ``default``/``stderr``, ``stdout`` or
  file paths (appended to); one lock per sink so lines from threads never interleave.
* Rule 4: no global state: the CLI builds one Logger with :func:`build_logger` and hands
  it down; tests build their own (e.g. ``Logger(outputs=[io.StringIO()])``).
* Rule 5: the lines tools wait for (``ready to serve client requests``, ``published``,
  ``enabled capabilities for version``...) are emitted through the helpers at the end
  of this module, so their text is written once.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, NoReturn

LEVELS: dict[str, int] = {
    "debug": -1,
    "info": 0,
    "warn": 1,
    "error": 2,
    "dpanic": 3,
    "panic": 4,
    "fatal": 5,
}


class _Sink:
    """Where lines go: a set of text streams, a lock, the files this sink opened."""

    def __init__(self, streams: Sequence[IO[str]], owned: Sequence[IO[str]] = ()) -> None:
        self.streams = tuple(streams)
        self.owned = tuple(owned)
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            for s in self.streams:
                try:
                    s.write(line)
                    s.flush()
                except (OSError, ValueError):
                    # A closed/broken output must not take the server down with it.
                    pass

    def close(self) -> None:
        with self.lock:
            for s in self.owned:
                s.close()


def _encode(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, BaseException):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_encode(v) for v in value]
    return str(value)


def short_caller(path: str, lineno: int) -> str:
    """zap's short caller: ``<dir>/<file>:<line>``."""
    return f"{os.path.basename(os.path.dirname(path))}/{os.path.basename(path)}:{lineno}"


def format_ts(t: float) -> str:
    """etcd 3.5's time encoding: UTC with microseconds and a ``Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Logger:
    """A zap-like structured logger; cheap to copy with extra bound fields."""

    __slots__ = ("_fields", "_level", "_sink", "_wall")

    def __init__(
        self,
        *,
        level: str = "info",
        outputs: Sequence[IO[str]] | None = None,
        wall: Callable[[], float] = time.time,
        _sink: _Sink | None = None,
        _fields: Mapping[str, object] | None = None,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f'unrecognized level: "{level}"')
        self._level = LEVELS[level]
        self._sink = _sink if _sink is not None else _Sink(outputs or [sys.stderr])
        self._wall = wall
        self._fields: dict[str, object] = dict(_fields or {})

    @property
    def level(self) -> str:
        return next(k for k, v in LEVELS.items() if v == self._level)

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self._level

    def with_fields(self, fields: Mapping[str, object] | None = None, **kw: object) -> Logger:
        """zap's ``With``: a logger that adds these fields to every line."""
        merged = {**self._fields, **(fields or {}), **kw}
        return Logger(level=self.level, wall=self._wall, _sink=self._sink, _fields=merged)

    def log(
        self,
        level: str,
        msg: str,
        fields: Mapping[str, object] | None = None,
        *,
        depth: int = 1,
        caller: str | None = None,
        **kw: object,
    ) -> None:
        """Write one line if ``level`` is enabled.

        ``depth`` counts frames from here to the call site named in ``caller``; pass
        ``caller`` explicitly when forwarding records that carry their own origin.
        """
        if LEVELS[level] < self._level:
            return
        if caller is None:
            try:
                frame = sys._getframe(depth)
                caller = short_caller(frame.f_code.co_filename, frame.f_lineno)
            except ValueError:
                caller = "unknown"
        record: dict[str, object] = {
            "level": level,
            "ts": format_ts(self._wall()),
            "caller": caller,
            "msg": msg,
        }
        for src in (self._fields, fields or {}, kw):
            for k, v in src.items():
                record[k] = _encode(v)
        self._sink.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def debug(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> None:
        self.log("debug", msg, {**(fields or {}), **kw}, depth=2)

    def info(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> None:
        self.log("info", msg, {**(fields or {}), **kw}, depth=2)

    def warn(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> None:
        self.log("warn", msg, {**(fields or {}), **kw}, depth=2)

    def error(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> None:
        self.log("error", msg, {**(fields or {}), **kw}, depth=2)

    def panic(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> NoReturn:
        self.log("panic", msg, {**(fields or {}), **kw}, depth=2)
        raise RuntimeError(msg)

    def fatal(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> NoReturn:
        """Log and exit the process with status 1, as zap's ``Fatal`` (etcd's lg.Fatal)."""
        self.log("fatal", msg, {**(fields or {}), **kw}, depth=2)
        raise SystemExit(1)

    def close(self) -> None:
        """Close the log files this logger opened (not stderr/stdout)."""
        self._sink.close()


def build_logger(
    log_level: str = "info",
    log_outputs: Sequence[str] = ("default",),
    *,
    wall: Callable[[], float] = time.time,
) -> Logger:
    """The Logger for ``--log-level`` and ``--log-outputs`` (etcd's setupLogging).

    ``default`` and ``stderr`` are standard error, ``stdout`` standard output, anything
    else a file path opened for appending.  Raises ValueError/OSError on a bad level or
    an unopenable path (the caller reports it like etcd's start-up errors).
    """
    streams: list[IO[str]] = []
    owned: list[IO[str]] = []
    for out in log_outputs or ("default",):
        if out in ("default", "stderr"):
            stream: IO[str] = sys.stderr
        elif out == "stdout":
            stream = sys.stdout
        else:
            stream = open(out, "a", encoding="utf-8")  # owned (closed) by the sink
            owned.append(stream)
        if stream not in streams:
            streams.append(stream)
    return Logger(level=log_level, wall=wall, _sink=_Sink(streams, owned))


_STDLIB_LEVELS = (
    (logging.ERROR, "error"),
    (logging.WARNING, "warn"),
    (logging.INFO, "info"),
)


class StdlibBridge(logging.Handler):
    """Forwards stdlib ``logging`` records (grpc, aiohttp, asyncio) into a Logger.

    One logging path: third-party warnings come out as the same JSON lines, with the
    record's own caller and a ``logger`` field naming its source.  CRITICAL maps to
    ``error``: a library's record must never exit the process the way ``fatal`` does.
    """

    def __init__(self, lg: Logger) -> None:
        super().__init__(level=logging.DEBUG)
        self._lg = lg

    def emit(self, record: logging.LogRecord) -> None:
        level = next((name for no, name in _STDLIB_LEVELS if record.levelno >= no), "debug")
        fields: dict[str, object] = {"logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = str(record.exc_info[1])
        try:
            msg = record.getMessage()
        except (TypeError, ValueError):
            msg = str(record.msg)
        self._lg.log(level, msg, fields, caller=short_caller(record.pathname, record.lineno))


def attach_stdlib(lg: Logger, root: logging.Logger | None = None) -> Callable[[], None]:
    """Send the stdlib root logger's records to ``lg``; returns a function that undoes it.

    The stdlib root logger is process-global by nature; the CLI attaches once, tests
    attach to a private ``logging.Logger`` or detach when done.
    """
    target = root if root is not None else logging.getLogger()
    handler = StdlibBridge(lg)
    previous = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG if lg.enabled("debug") else logging.INFO)

    def detach() -> None:
        target.removeHandler(handler)
        target.setLevel(previous)

    return detach


# --- etcd's readiness lines: tools (etcd's e2e suite, operators' scripts) wait for these.


def log_serving_client_traffic(lg: Logger, address: str, *, secure: bool) -> None:
    """embed/serve.go, once a client listener serves."""
    if secure:
        lg.log(
            "info",
            "serving client traffic securely",
            {"traffic": "grpc+http", "address": address},
            depth=2,
        )
    else:
        lg.log(
            "info",
            "serving client traffic insecurely; this is strongly discouraged!",
            {"traffic": "grpc+http", "address": address},
            depth=2,
        )


def log_serving_peer_traffic(lg: Logger, address: str) -> None:
    lg.log("info", "serving peer traffic", {"address": address}, depth=2)


def log_ready_to_serve_client_requests(lg: Logger) -> None:
    """embed/serve.go: the member is ready for clients."""
    lg.log("info", "ready to serve client requests", depth=2)


def log_published(
    lg: Logger,
    *,
    local_member_id: str,
    name: str,
    client_urls: Sequence[str],
    cluster_id: str,
    publish_timeout: str = "7s",
) -> None:
    """etcdserver/server.go publishV3: the member's attributes are committed.

    etcd 3.4's e2e suite waits for a line holding ``published``; the attributes use
    Go's ``%+v`` form ``{Name:n ClientURLs:[u1 u2]}``.
    """
    lg.log(
        "info",
        "published local member to cluster through raft",
        {
            "local-member-id": local_member_id,
            "local-member-attributes": f"{{Name:{name} ClientURLs:[{' '.join(client_urls)}]}}",
            "cluster-id": cluster_id,
            "publish-timeout": publish_timeout,
        },
        depth=2,
    )


def log_enabled_capabilities(lg: Logger, cluster_version: str) -> None:
    """etcdserver/api/capability.go: waited for by etcd's e2e suite."""
    lg.log(
        "info", "enabled capabilities for version", {"cluster-version": cluster_version}, depth=2
    )


def log_cluster_version_set(lg: Logger, cluster_version: str, *, initial: bool) -> None:
    """membership/cluster.go: ``set initial cluster version`` / ``updated cluster version``."""
    msg = "set initial cluster version" if initial else "updated cluster version"
    lg.log("info", msg, {"cluster-version": cluster_version}, depth=2)
