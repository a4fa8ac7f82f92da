"""Start real server processes (etcdpy, or real etcd as the oracle) and drive them with etcdctl.

Each member gets free loopback ports and its own data dir; readiness is the log line both
servers print ("ready to serve client requests"). Processes are always killed on exit.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

READY_LINE = "ready to serve client requests"
ETCD_BIN = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL_BIN = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def etcdpy_command() -> list[str]:
    return [sys.executable, "-m", "etcdpy"]


@dataclass
class Member:
    """One running server process and how to reach it."""

    kind: str  # "etcdpy" or "etcd"
    name: str
    data_dir: Path
    client_port: int
    peer_port: int
    proc: subprocess.Popen[bytes] | None = None
    scheme: str = "http"
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def argv(self, extra: Sequence[str] = ()) -> list[str]:
        base = etcdpy_command() if self.kind == "etcdpy" else [ETCD_BIN]
        return [
            *base,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self.name}={self.peer_url}",
            *extra,
        ]

    def start(self, extra: Sequence[str] = (), timeout: float = 30.0) -> None:
        env = dict(os.environ)
        env.pop("ETCDCTL_API", None)
        self.output = []
        self.proc = subprocess.Popen(
            self.argv(extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(READY_LINE in line for line in self.output):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        tail = "".join(self.output[-40:])
        self.stop()
        raise RuntimeError(f"{self.kind} {self.name} did not become ready:\n{tail}")

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            self.output.append(raw.decode(errors="replace"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(2)
        rc = self.proc.returncode
        self.proc = None
        return rc


def new_member(kind: str, tmp: Path, name: str = "m1") -> Member:
    return Member(kind, name, tmp / f"{kind}-{name}.etcd", free_port(), free_port())


@dataclass
class Ctl:
    """etcdctl bound to one endpoint and API version."""

    endpoint: str
    api: str = "3"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["ETCDCTL_API"] = self.api
        return env

    def run(
        self, *args: str, input: str | None = None, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [ETCDCTL_BIN, f"--endpoints={self.endpoint}", *args]
        res = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, env=self.env()
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"etcdctl {' '.join(args)} failed ({res.returncode}):\n{res.stdout}{res.stderr}"
            )
        return res

    def out(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input).stdout

    def json(self, *args: str) -> object:
        return json.loads(self.out("-w", "json", *args))

    def popen(self, *args: str) -> subprocess.Popen[str]:
        cmd = [ETCDCTL_BIN, f"--endpoints={self.endpoint}", *args]
        return subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=self.env(), bufsize=1,
        )


class LineReader:
    """All lines a process prints, read by one thread, so a timed-out wait loses nothing."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, ""):
            self.lines.put(line.rstrip("\n"))

    def read(self, n: int, timeout: float = 10.0) -> list[str]:
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                out.append(self.lines.get(timeout=left))
            except queue.Empty:
                break
        return out


_readers: dict[int, LineReader] = {}


def read_lines(proc: subprocess.Popen[str], n: int, timeout: float = 10.0) -> list[str]:
    """Read n lines from a process's stdout, giving up after timeout instead of hanging."""
    reader = _readers.get(id(proc))
    if reader is None or reader.proc is not proc:
        reader = _readers[id(proc)] = LineReader(proc)
    return reader.read(n, timeout)


def normalize(obj: object) -> object:
    """Drop what legitimately differs between two servers: IDs, terms, versions, sizes."""
    drop = {"cluster_id", "member_id", "raft_term", "ID", "id", "leader", "raftTerm",
            "dbSize", "dbSizeInUse", "version", "raftIndex", "raftAppliedIndex", "hash"}
    if isinstance(obj, dict):
        return {k: normalize(v) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list):
        return [normalize(v) for v in obj]
    return obj


def have_etcd() -> bool:
    return Path(ETCD_BIN).exists()


def have_etcdctl() -> bool:
    return Path(ETCDCTL_BIN).exists()


def iter_members(kinds: Sequence[str], tmp: Path) -> Iterator[Member]:
    for kind in kinds:
        yield new_member(kind, tmp)
