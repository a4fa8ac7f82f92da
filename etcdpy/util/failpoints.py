"""Named failpoints, no-ops unless armed (etcd's gofail, same names: ``raftBeforeSave``...).

Armed by ``ETCDPY_FAILPOINTS`` (read once, when ``Failpoints.from_env`` builds the object),
or by ``Failpoints.parse``/``enable`` in tests. Syntax, a subset of gofail's:

    ETCDPY_FAILPOINTS="raftAfterSave=panic;raftBeforeSave=3*off->kill"

Each failpoint is a chain of terms ``[count*]action[(arg)]`` joined by ``->``; a term with a
count is used that many times and then the chain moves on (gofail's semantics). Actions:

    off          nothing
    panic        raise FailpointPanic (a BaseException: no ``except Exception`` swallows it)
    kill         SIGKILL this process (a crash that runs no cleanup, as in a power cut of
                 the process)
    exit(code)   os._exit(code)
    sleep(ms)    block this thread for ms milliseconds
    print        write "failpoint <name>" to stderr
    return(v)    hit() returns v, for code that wants to take another branch

There is no global state: one ``Failpoints`` is built at startup and handed to whoever has
hooks. ``hit`` on an unarmed name is a dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

ENV_VAR = "ETCDPY_FAILPOINTS"


class FailpointPanic(BaseException):
    """Raised by a failpoint armed with ``panic``."""


class FailpointSyntaxError(ValueError):
    pass


@dataclass(slots=True)
class _Term:
    action: str
    arg: str | None
    count: int | None  # None: forever


_ACTIONS = frozenset({"off", "panic", "kill", "exit", "sleep", "print", "return"})


def _parse_chain(spec: str) -> list[_Term]:
    terms: list[_Term] = []
    for raw in spec.split("->"):
        raw = raw.strip()
        count: int | None = None
        if "*" in raw:
            n, raw = raw.split("*", 1)
            try:
                count = int(n)
            except ValueError as exc:
                raise FailpointSyntaxError(f"bad count in {spec!r}") from exc
        arg: str | None = None
        if raw.endswith(")") and "(" in raw:
            raw, arg = raw[:-1].split("(", 1)
        if raw not in _ACTIONS:
            raise FailpointSyntaxError(f"unknown failpoint action {raw!r} in {spec!r}")
        if count != 0:  # "0*x" is a term used zero times
            terms.append(_Term(raw, arg, count))
    return terms


class Failpoints:
    """A set of armed failpoints; ``hit(name)`` at each hook."""

    def __init__(self, spec: str = "") -> None:
        self._lock = threading.Lock()
        self._chains: dict[str, list[_Term]] = {}
        self.hits: dict[str, int] = {}
        if spec:
            self.parse(spec)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Failpoints:
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_VAR, ""))

    def parse(self, spec: str) -> None:
        for item in spec.split(";"):
            item = item.strip()
            if not item:
                continue
            name, sep, chain = item.partition("=")
            if not sep:
                raise FailpointSyntaxError(f"failpoint {item!r} has no '='")
            self.enable(name.strip(), chain)

    def enable(self, name: str, chain: str) -> None:
        terms = _parse_chain(chain)
        with self._lock:
            self._chains[name] = terms

    def disable(self, name: str) -> None:
        with self._lock:
            self._chains.pop(name, None)

    def armed(self) -> bool:
        return bool(self._chains)

    def hit(self, name: str) -> str | None:
        """Run the failpoint ``name``; returns the argument of a ``return`` action."""
        if name not in self._chains:
            return None
        with self._lock:
            chain = self._chains.get(name)
            if not chain:
                return None
            self.hits[name] = self.hits.get(name, 0) + 1
            term = chain[0]
            if term.count is not None:
                term.count -= 1
                if term.count <= 0:
                    chain.pop(0)
            action, arg = term.action, term.arg
        return _run(name, action, arg)


def _run(name: str, action: str, arg: str | None) -> str | None:
    if action == "off":
        return None
    if action == "panic":
        raise FailpointPanic(name)
    if action == "kill":
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        return None  # not reached
    if action == "exit":
        sys.stdout.flush()
        os._exit(int(arg or "1"))
    if action == "sleep":
        time.sleep(int(arg or "0") / 1000.0)
        return None
    if action == "print":
        print(f"failpoint {name}", file=sys.stderr, flush=True)
        return None
    return arg if arg is not None else ""
