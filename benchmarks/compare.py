"""Single-member speed, side by side: the bare floor, etcdpy and real etcd 3.4, one command.

    python benchmarks/compare.py [--quick] [--big] [--rounds N] [--servers floor,etcdpy,etcd]

Each server runs on a free 127.0.0.1 port with a fresh data directory and default flags
(etcdpy: default durability, no unsafe flags). Every workload runs on every server in turn,
interleaved (the order rotates per workload and round) and, by default, with the servers not
under test stopped (SIGSTOP) so that only one competes with the load for the two cores. The
load generator is ``../shared/perf``'s ``etcd-load`` (etcd's Go client) when built, else
``benchmarks/load.py``. Server CPU per op is ``/proc/PID/stat`` utime+stime across the run;
for the Python servers also by thread (``/proc/PID/task``: event loop, grpc's threads, the
splice thread, the writer threads, the rest); RSS is ``VmRSS``; syncs per put come from
``strace -f -c`` on a separate short put run (strace slows the server, so those runs are
not timed), and flushes per put at full speed from the
servers' own ``etcd_disk_wal_fsync_duration_seconds`` / ``..._backend_commit_...`` counts.
If etcdpy accepts ``--listen-client-http-urls`` (HTTP on its own port, grpc owning the client
port), put with 64 clients also runs against that configuration (``etcdpy-grpc``) to show
what the one-port multiplexer costs.

Writes ``benchmarks/results/compare-<UTC date-time>.json`` and the Markdown tables into
``benchmarks/results/README.md`` (between generated markers; the rest of that file is kept).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
ETCD_BIN = "/usr/bin/etcd"
ETCD_LOAD = os.environ.get("ETCD_LOAD_BIN", "/tmp/etcd-load/etcd-load")
READY = "ready to serve client requests"
TICK = os.sysconf("SC_CLK_TCK")
BEGIN, END = "<!-- compare.py:begin -->", "<!-- compare.py:end -->"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One server process under test; ``start`` returns seconds from spawn to ready."""

    name: str
    kind: str  # floor | etcdpy | etcd | api (cmux_server.py: API layer over a fake server)
    extra: list[str] = field(default_factory=list)
    ready: str = READY
    port: int = 0
    peer_port: int = 0
    data_dir: str = ""
    proc: subprocess.Popen[bytes] | None = None
    log_path: str = ""
    paused: bool = False

    def argv(self) -> list[str]:
        url = f"http://127.0.0.1:{self.port}"
        if self.kind == "floor":
            return [sys.executable, os.path.join(HERE, "floor_server.py"),
                    "--listen", f"127.0.0.1:{self.port}"]
        if self.kind == "api":
            return [sys.executable, os.path.join(HERE, "cmux_server.py"),
                    "--port", str(self.port), *self.extra]
        peer = f"http://127.0.0.1:{self.peer_port}"
        flags = ["--name", "bench", "--data-dir", os.path.join(self.data_dir, "data"),
                 "--listen-client-urls", url, "--advertise-client-urls", url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"bench={peer}", *self.extra]
        if self.kind == "etcd":
            return [ETCD_BIN, *flags]
        return [sys.executable, "-m", "etcdpy", *flags]

    def start(self, timeout: float = 60.0) -> float:
        if not self.port:
            self.port, self.peer_port = free_port(), free_port()
            self.data_dir = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
            self.log_path = os.path.join(self.data_dir, "server.log")
        env = dict(os.environ, PYTHONPATH=REPO)
        with open(self.log_path, "ab") as log:
            start_at = log.tell()
            t0 = time.perf_counter()
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=REPO, env=env, start_new_session=True)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            with open(self.log_path, "rb") as f:
                f.seek(start_at)
                if self.ready.encode() in f.read():
                    with contextlib.suppress(OSError), socket.create_connection(
                            ("127.0.0.1", self.port), timeout=1):
                        return time.perf_counter() - t0
            time.sleep(0.02)
        raise RuntimeError(f"{self.name} not ready in {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 600) -> str:
        with contextlib.suppress(OSError), open(self.log_path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
        return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # stat fields 14 and 15

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds so far by thread group (:func:`thread_group`), Python servers only."""
        return {} if self.kind == "etcd" else task_cpu(self.pid, thread_group)

    def rss_mib(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pause(self) -> None:
        if self.proc and self.proc.poll() is None and not self.paused:
            os.kill(self.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.proc and self.paused:
            os.kill(self.pid, signal.SIGCONT)
            self.paused = False

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class Workload:
    key: str
    label: str
    clients: int
    conns: int
    sub: list[str]
    servers: tuple[str, ...] = ()  # empty: every server


def workloads(quick: bool) -> list[Workload]:
    def n(q: int, full: int) -> str:
        return str(q if quick else full)

    return [
        Workload("put-1", "put, 1 client", 1, 1, ["put", "--total", n(500, 2000)]),
        Workload("put-16", "put, 16 clients", 16, 4, ["put", "--total", n(2000, 10000)]),
        Workload("put-64", "put, 64 clients", 64, 16, ["put", "--total", n(3000, 20000)]),
        Workload("put-256", "put, 256 clients", 256, 16, ["put", "--total", n(3000, 20000)]),
        Workload("txn-put-64", "txn-put, 64 clients", 64, 8, ["txn-put", "--total",
                                                               n(2000, 10000)]),
        Workload("range-s-64", "range 1 key serializable, 64 clients", 64, 8,
                 ["range", "--key", "00000000", "--consistency", "s", "--total",
                  n(3000, 20000)]),
        Workload("range-l-64", "range 1 key linearizable, 64 clients", 64, 8,
                 ["range", "--key", "00000000", "--consistency", "l", "--total",
                  n(3000, 20000)]),
        Workload("range-1000-16", "range 1,000 keys (prefix), 16 clients", 16, 4,
                 ["range", "--key", "00000", "--prefix", "--consistency", "l", "--total",
                  n(150, 1000)]),
        Workload("watch-fanout", "watch fan-out 1,000 watchers / 10 streams (events/s)", 16, 10,
                 ["watch-fanout", "--watchers", "1000", "--streams", "10", "--puts",
                  n(500, 2000)]),
    ]


MUX_WORKLOADS = ("put-64", "range-s-64")
# Servers that only run MUX_WORKLOADS: what the one-port multiplexer costs.
MUX_ONLY = ("etcdpy-grpc", "api-mux", "api-grpc")
# The api-* servers' in-memory fake has no index for ranges: they run put-64 only.
API_ONLY_WORKLOAD = "put-64"


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        if args.tool == "etcd-load" or (args.tool == "auto" and os.access(ETCD_LOAD, os.X_OK)):
            self.tool, self.tool_argv = "etcd-load", [ETCD_LOAD]
        else:
            self.tool, self.tool_argv = "load.py", [sys.executable,
                                                    os.path.join(HERE, "load.py")]

    def load(self, srv: Server, clients: int, conns: int, sub: list[str],
             timeout: float = 300.0, tool: list[str] | None = None) -> dict[str, Any]:
        argv = [*(tool or self.tool_argv), "--endpoints", srv.endpoint, "--clients", str(clients),
                "--conns", str(conns), *sub]
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"errors": 1, "first_error": f"load timed out after {timeout}s", "ops": 0}
        for line in reversed(p.stdout.strip().splitlines()):
            if line.startswith("{"):
                out: dict[str, Any] = json.loads(line)
                return out
        return {"errors": 1, "ops": 0,
                "first_error": f"exit {p.returncode}: {(p.stderr or p.stdout)[-300:]}"}

    def measured(self, srv: Server, wl: Workload,
                 tool: list[str] | None = None) -> dict[str, Any]:
        c0 = srv.cpu_seconds()
        t0 = srv.thread_cpu()
        r = self.load(srv, wl.clients, wl.conns, wl.sub, tool=tool)
        try:
            cpu = srv.cpu_seconds() - c0
            t1 = srv.thread_cpu()
            r["rss_mib"] = srv.rss_mib()
        except OSError:  # the server died under load: keep the run, say so
            r["errors"] = int(r.get("errors") or 0) + 1
            r["first_error"] = f"server exited: {last_line(srv.log_tail())}"
            r["server_cpu_ms_per_op"] = None
            return r
        ops = int(r.get("ops") or 0)
        r["server_cpu_ms_per_op"] = round(cpu * 1000 / ops, 4) if ops else None
        if ops and t1:
            r["thread_us_per_op"] = {g: round((t1[g] - t0.get(g, 0.0)) * 1e6 / ops, 1)
                                     for g in t1}
        return r

    def count_flushes(self, srv: Server, clients: int, conns: int, total: int) -> dict[str, Any]:
        """WAL fsyncs and backend commits per acknowledged put at full speed (no strace),
        from the servers' own ``etcd_disk_*`` histograms' counts."""
        before = flush_counters(srv)
        if before is None:
            return {"error": "no etcd_disk_* metrics"}
        r = self.load(srv, clients, conns, ["put", "--total", str(total)])
        after = flush_counters(srv)
        acked = int(r.get("ops") or 0)
        if after is None or not acked:
            return {"error": "no metrics after the run"}
        wal, be = (after[k] - before[k] for k in FLUSH_METRICS)
        return {"clients": clients, "puts": acked, "wal_fsyncs": int(wal),
                "backend_commits": int(be), "per_put": round((wal + be) / acked, 3)}

    def count_syncs(self, srv: Server, clients: int, conns: int, total: int) -> dict[str, Any]:
        """fsync/fdatasync/msync calls per acknowledged put, from ``strace -f -c``."""
        strace = shutil.which("strace")
        if not strace:
            return {"error": "strace not installed"}
        out = os.path.join(srv.data_dir, f"strace-{clients}.txt")
        st = subprocess.Popen([strace, "-f", "-c", "-e", "trace=fsync,fdatasync,msync",
                               "-o", out, "-p", str(srv.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)  # attach to every thread before the first put
            r = self.load(srv, clients, conns, ["put", "--total", str(total)])
        finally:
            st.send_signal(signal.SIGINT)
            try:
                st.wait(15)
            except subprocess.TimeoutExpired:
                st.kill()
                st.wait(5)
        calls: dict[str, int] = {}
        summary = False
        with contextlib.suppress(OSError), open(out) as f:
            for line in f:
                parts = line.split()
                summary = summary or parts[-1:] == ["syscall"]
                if parts and parts[-1] in ("fsync", "fdatasync", "msync"):
                    calls[parts[-1]] = int(parts[3])  # % time, seconds, usecs/call, calls
        acked = int(r.get("ops") or 0)
        if not summary:
            err = st.stderr.read().decode(errors="replace")[-200:] if st.stderr else ""
            return {"clients": clients, "puts": acked, "error": f"no strace summary: {err}"}
        total_calls = sum(calls.values())
        return {"clients": clients, "puts": acked, "calls": calls, "syncs": total_calls,
                "syncs_per_put": round(total_calls / acked, 3) if acked else None}


FLUSH_METRICS = ("etcd_disk_wal_fsync_duration_seconds_count",
                 "etcd_disk_backend_commit_duration_seconds_count")


def flush_counters(srv: Server) -> dict[str, float] | None:
    """etcd's disk metrics from ``/metrics`` on the client port (etcd and etcdpy both serve
    them): WAL fsyncs and backend commits so far; None when the server has none."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return None
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in FLUSH_METRICS:
            out[name] = float(value)
    return out if len(out) == len(FLUSH_METRICS) else None


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(),
            "loadavg_at_start": os.getloadavg()}


def etcdpy_has_http_urls() -> bool:
    try:
        p = subprocess.run([sys.executable, "-m", "etcdpy", "--help"], capture_output=True,
                           text=True, timeout=30, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    except subprocess.TimeoutExpired:
        return False
    return "--listen-client-http-urls" in (p.stdout + p.stderr)


def task_cpu(pid: int, key: Callable[[str, bool], str]) -> dict[str, float]:
    """CPU seconds so far of process ``pid``'s threads, summed by ``key(thread name, is the
    main thread)`` (``/proc/PID/task``; a thread that ends meanwhile is skipped)."""
    out: dict[str, float] = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"{base}/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        k = key(name, int(tid) == pid)
        out[k] = out.get(k, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


#: Thread groups of a Python server's CPU, in table order.
THREAD_GROUPS = ("loop", "grpc", "splice", "writer", "other")


def thread_group(name: str, main: bool) -> str:
    """Which part of a Python server a thread is: the event loop (the main thread),
    grpc's C-core threads, the one-port splice thread, the raft log / KV writer threads,
    or anything else (grpc.aio's poller, reader and executor threads)."""
    if main:
        return "loop"
    if name.startswith(("event_engine", "grpc", "default-executo", "resolver-execut")):
        return "grpc"
    if name == "cmux-splice":
        return "splice"
    if name in ("etcdpy-writer", "etcdpy-wal", "etcdpy-kv"):
        return "writer"
    return "other"


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("ops")]
    out: dict[str, Any] = {"rounds": len(runs), "errors": sum(int(r.get("errors") or 0)
                                                             for r in runs)}
    for k in ("ops_per_sec", "events_per_sec", "p50_ms", "p90_ms", "p99_ms",
              "server_cpu_ms_per_op", "client_cpu_ms_per_op", "rss_mib"):
        vals = [float(r[k]) for r in ok if r.get(k) is not None]
        if vals:
            out[k] = round(statistics.median(vals), 4)
    groups = sorted({g for r in ok for g in r.get("thread_us_per_op", {})})
    if groups:
        out["thread_us_per_op"] = {
            g: round(statistics.median(r.get("thread_us_per_op", {}).get(g, 0.0) for r in ok), 1)
            for g in groups}
    firsts = [r["first_error"] for r in runs if r.get("first_error")]
    if firsts:
        out["first_error"] = firsts[0]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    runner = Runner(args)
    wanted = args.servers.split(",")
    servers: list[Server] = []
    if "floor" in wanted:
        servers.append(Server("floor", "floor"))
    if "etcdpy" in wanted:
        servers.append(Server("etcdpy", "etcdpy"))
        if not args.no_mux_compare and etcdpy_has_http_urls():
            servers.append(Server("etcdpy-grpc", "etcdpy",
                                  ["--listen-client-http-urls",
                                   f"http://127.0.0.1:{free_port()}"]))
    if "etcd" in wanted and os.access(ETCD_BIN, os.X_OK):
        servers.append(Server("etcd", "etcd"))
    if "api" in wanted and not args.no_mux_compare:
        servers += [Server("api-mux", "api", ["--mode", "mux"], ready="serving"),
                    Server("api-grpc", "api", ["--mode", "grpc"], ready="serving")]
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "python benchmarks/compare.py " + " ".join(sys.argv[1:]),
        "machine": machine(), "tool": runner.tool, "quick": args.quick, "rounds": args.rounds,
        "pause_others": not args.no_pause, "servers": {}, "workloads": {}, "syncs": {},
        "big": {},
    }
    live: list[Server] = []
    wls = workloads(args.quick)

    def only(srv: Server) -> None:
        if args.no_pause:
            return
        for o in live:
            if o is not srv:
                o.pause()
        srv.resume()
        time.sleep(0.2)

    try:
        for srv in servers:
            info: dict[str, Any] = {"kind": srv.kind, "extra_flags": srv.extra}
            try:
                info["start_to_ready_s"] = round(srv.start(), 3)
            except Exception as e:  # a broken server is reported, the others still run
                info["error"] = str(e)[-500:]
                srv.stop()
                report["servers"][srv.name] = info
                print(f"[compare] {srv.name}: FAILED to start: {e}", flush=True)
                continue
            time.sleep(1.0)
            c0 = srv.cpu_seconds()
            time.sleep(2.0)
            info["idle_cpu_ms_per_s"] = round((srv.cpu_seconds() - c0) * 1000 / 2.0, 2)
            info["idle_rss_mib"] = srv.rss_mib()
            info["pid"] = srv.pid
            info["endpoint"] = srv.endpoint
            report["servers"][srv.name] = info
            live.append(srv)
            if not args.no_pause:
                srv.pause()
            print(f"[compare] {srv.name} ready on {srv.endpoint} "
                  f"({info['start_to_ready_s']}s, idle RSS {info['idle_rss_mib']} MiB)",
                  flush=True)
        # Every key the range workloads read exists before they run: 00000000..00000999.
        for srv in live if not args.only_big else []:
            only(srv)
            runner.load(srv, 16, 4, ["put", "--total", "1000"])
        raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
        turn = 0
        for rnd in range(0 if args.only_big else args.rounds):
            for wl in wls:
                targets = [s for s in live if s.alive()
                           and (s.name not in MUX_ONLY or wl.key in MUX_WORKLOADS)
                           and (s.kind != "api" or wl.key == API_ONLY_WORKLOAD)]
                turn += 1
                k = turn % max(1, len(targets))
                for srv in targets[k:] + targets[:k]:
                    only(srv)
                    r = runner.measured(srv, wl)
                    raw.setdefault(wl.key, {}).setdefault(srv.name, []).append(r)
                    rate = r.get("events_per_sec") or r.get("ops_per_sec") or 0
                    print(f"[compare] round {rnd + 1} {wl.key:14} {srv.name:12} "
                          f"{rate:12,.0f}/s p50 {r.get('p50_ms', 0):7.2f} ms "
                          f"p99 {r.get('p99_ms', 0):8.2f} ms server CPU "
                          f"{r.get('server_cpu_ms_per_op') or 0:.3f} ms/op"
                          + (f"  ERR {r.get('first_error')}" if r.get("errors") else ""),
                          flush=True)
        for wl in wls:
            report["workloads"][wl.key] = {
                "label": wl.label, "clients": wl.clients, "conns": wl.conns,
                "args": wl.sub,
                "results": {name: {"median": median_of(runs), "runs": runs}
                            for name, runs in raw.get(wl.key, {}).items()},
            }
        for srv in live:
            if srv.alive():
                report["servers"][srv.name]["rss_after_workloads_mib"] = srv.rss_mib()
            else:
                report["servers"][srv.name]["died"] = last_line(srv.log_tail())
        if not args.no_strace and not args.only_big:
            for srv in live:
                if srv.kind in ("floor", "api") or srv.name in MUX_ONLY or not srv.alive():
                    continue
                only(srv)
                report["syncs"][srv.name] = [
                    runner.count_syncs(srv, 1, 1, 100 if args.quick else 300),
                    runner.count_syncs(srv, 64, 16, 1000 if args.quick else 3000),
                ]
                print(f"[compare] syncs {srv.name}: "
                      + ", ".join(f"{s.get('clients')} clients {s.get('syncs_per_put')}/put"
                                  for s in report["syncs"][srv.name]), flush=True)
                report.setdefault("flushes", {})[srv.name] = [
                    runner.count_flushes(srv, 1, 1, 300 if args.quick else 1000),
                    runner.count_flushes(srv, 64, 16, 3000 if args.quick else 20000),
                ]
                print(f"[compare] flushes (metrics) {srv.name}: {report['flushes'][srv.name]}",
                      flush=True)
        if args.big or args.only_big:
            for srv in live:
                if srv.name in MUX_ONLY or not srv.alive():
                    continue
                only(srv)
                report["big"][srv.name] = big(runner, srv, args.big_keys)
                print(f"[compare] big {srv.name}: {report['big'][srv.name]}", flush=True)
    finally:
        for srv in servers:
            srv.cleanup()
    return report


def crosscheck(args: argparse.Namespace) -> dict[str, Any]:
    """load.py against etcd-load on the floor, interleaved: same workloads, both tools."""
    runner = Runner(args)
    tools = {"etcd-load": [ETCD_LOAD],
             "load.py": [sys.executable, os.path.join(HERE, "load.py")]}
    if not os.access(ETCD_LOAD, os.X_OK):
        raise SystemExit(f"--crosscheck needs {ETCD_LOAD} (../shared/perf/build.sh)")
    wls = [w for w in workloads(args.quick)
           if w.key in ("put-1", "put-64", "range-s-64", "watch-fanout")]
    srv = Server("floor", "floor")
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        srv.start()
        runner.load(srv, 16, 4, ["put", "--total", "1000"])
        for rnd in range(args.rounds):
            for wl in wls:
                order = list(tools.items())
                if rnd % 2:
                    order.reverse()
                for name, argv in order:
                    r = runner.measured(srv, wl, tool=argv)
                    raw.setdefault(wl.key, {}).setdefault(name, []).append(r)
                    rate = r.get("events_per_sec") or r.get("ops_per_sec") or 0
                    print(f"[crosscheck] round {rnd + 1} {wl.key:14} {name:10} {rate:12,.0f}/s "
                          f"p50 {r.get('p50_ms', 0):7.2f} ms client CPU "
                          f"{r.get('client_cpu_ms_per_op', 0):.3f} ms/op server CPU "
                          f"{r.get('server_cpu_ms_per_op') or 0:.3f} ms/op", flush=True)
    finally:
        srv.cleanup()
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python benchmarks/compare.py " + " ".join(sys.argv[1:]),
            "machine": machine(), "rounds": args.rounds,
            "workloads": {k: {t: {"median": median_of(v), "runs": v} for t, v in d.items()}
                          for k, d in raw.items()}}


def crosscheck_markdown(rep: dict[str, Any]) -> str:
    lines = [f"## Load tools cross-checked on the floor, {rep['date']}", "",
             f"Command: `{rep['command']}` ({rep['rounds']} rounds interleaved, medians).", "",
             "| workload | tool | ops/s (events/s) | p50 ms | p99 ms | tool CPU ms/op "
             "| floor CPU ms/op |", "|---|---|---:|---:|---:|---:|---:|"]
    for key, d in rep["workloads"].items():
        for tool, r in d.items():
            m = r["median"]
            rate = m.get("events_per_sec") or m.get("ops_per_sec")
            lines.append(f"| {key} | {tool} | {fmt(rate)} | {fmt(m.get('p50_ms'))} | "
                         f"{fmt(m.get('p99_ms'))} | {fmt(m.get('client_cpu_ms_per_op'), 3)} | "
                         f"{fmt(m.get('server_cpu_ms_per_op'), 3)} |")
    return "\n".join(lines) + "\n"


def big(runner: Runner, srv: Server, keys: int) -> dict[str, Any]:
    """RSS after ``keys`` (1,000,000) keys and (persistent servers) restart-to-ready time."""
    r = runner.load(srv, 256, 16, ["put", "--total", str(keys), "--key-space-size", str(keys)],
                    timeout=3600)
    out: dict[str, Any] = {"keys": keys, "puts": r.get("ops"),
                           "put_ops_per_sec": r.get("ops_per_sec"), "errors": r.get("errors"),
                           "rss_mib_loaded": srv.rss_mib()}
    if srv.kind != "floor":
        srv.stop()
        try:
            t0 = time.perf_counter()
            out["restart_to_ready_s"] = round(srv.start(timeout=600), 3)
            # Ready must mean serving the data: count every key with the first read.
            out["count_after_restart"] = count_keys(srv.endpoint)
            out["restart_to_first_count_s"] = round(time.perf_counter() - t0, 3)
            time.sleep(1.0)
            out["rss_mib_after_restart"] = srv.rss_mib()
        except Exception as e:
            out["restart_error"] = str(e)[-300:]
    return out


def count_keys(endpoint: str) -> int:
    """Range over the whole key space with count_only (one gRPC call)."""
    import grpc

    sys.path.insert(0, REPO)
    from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
    from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as pb_grpc

    with grpc.insecure_channel(endpoint) as ch:
        req = pb.RangeRequest(key=b"\x00", range_end=b"\x00", count_only=True)
        return int(pb_grpc.KVStub(ch).Range(req, timeout=600).count)


def last_line(text: str, n: int = 160) -> str:
    return text.strip().splitlines()[-1][-n:].replace("|", "/") if text.strip() else ""


def server_order(name: str) -> int:
    order = ["floor", "etcdpy", "etcdpy-grpc", "etcd", "api-mux", "api-grpc"]
    return order.index(name) if name in order else len(order)


def fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v >= 100:
        return f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return f"{v:,.{nd}f}" if isinstance(v, float) else str(v)


def markdown(rep: dict[str, Any]) -> str:
    m = rep["machine"]
    load = ", ".join(f"{x:.2f}" for x in m["loadavg_at_start"])
    load_end = ", ".join(f"{x:.2f}" for x in m.get("loadavg_at_end", ()))
    title = ("Single-member comparison" if any(w["results"] for w in rep["workloads"].values())
             else "Single member with a large key space")
    lines = [
        f"## {title}, {rep['date']}",
        "",
        f"Command: `{rep['command']}` (load generator: {rep['tool']}; "
        f"{rep['rounds']} round(s), medians; servers not under test "
        f"{'stopped with SIGSTOP' if rep['pause_others'] else 'left running'}).",
        f"Machine: {m['nproc']} CPUs, {m['cpu_model']}, Linux {m['kernel']}, Python "
        f"{m['python']}, load average at start {load}, at end {load_end}"
        " (other work shares the machine: compare within this run only).",
        "",
    ]
    if any(w["results"] for w in rep["workloads"].values()):
        lines += ["| workload | server | ops/s | p50 ms | p99 ms | server CPU ms/op | RSS MiB "
                  "| etcdpy/floor | etcdpy/etcd |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, w in rep["workloads"].items():
        res = w["results"]

        def rate(name: str, res: dict[str, Any] = res, key: str = key) -> float | None:
            med = res.get(name, {}).get("median", {})
            v = med.get("events_per_sec") if key == "watch-fanout" else med.get("ops_per_sec")
            return float(v) if v else None

        for name, r in sorted(res.items(), key=lambda kv: server_order(kv[0])):
            med = r["median"]
            ratio_floor = ratio_etcd = ""
            if name.startswith("etcdpy"):
                mine, fl, et = rate(name), rate("floor"), rate("etcd")
                ratio_floor = f"{mine / fl:.2f}" if mine and fl else "-"
                ratio_etcd = f"{mine / et:.2f}" if mine and et else "-"
            err = f" ({med['errors']} errors)" if med.get("errors") else ""
            unit = " ev/s" if key == "watch-fanout" else ""
            lines.append(
                f"| {w['label']} | {name}{err} | {fmt(rate(name))}{unit} | "
                f"{fmt(med.get('p50_ms'))} | {fmt(med.get('p99_ms'))} | "
                f"{fmt(med.get('server_cpu_ms_per_op'), 3)} | {fmt(med.get('rss_mib'), 1)} | "
                f"{ratio_floor} | {ratio_etcd} |")
    split = [(w["label"], name, r["median"]["thread_us_per_op"])
             for w in rep["workloads"].values()
             for name, r in sorted(w["results"].items(), key=lambda kv: server_order(kv[0]))
             if r["median"].get("thread_us_per_op")]
    if split:
        lines += ["", "Server CPU by thread, us per op (medians; `loop`: the event loop's "
                  "thread, `grpc`: grpc's C-core threads, `splice`: the one-port splice "
                  "thread, `writer`: the raft log / KV writer thread(s), `other`: grpc.aio's "
                  "completion-queue poller, reader and executor threads):", "",
                  "| workload | server | " + " | ".join(THREAD_GROUPS) + " |",
                  "|---|---|" + "---:|" * len(THREAD_GROUPS)]
        for label, name, t in split:
            lines.append(f"| {label} | {name} | "
                         + " | ".join(fmt(t.get(g), 1) if t.get(g) else "-"
                                      for g in THREAD_GROUPS) + " |")
    lines += ["", "| server | start-to-ready s | idle RSS MiB | idle CPU ms/s "
              "| RSS after workloads MiB | syncs per put (1 client) | syncs per put (64 clients) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in sorted(rep["servers"].items(), key=lambda kv: server_order(kv[0])):
        if "error" in s:
            why = last_line(s["error"])
            lines.append(f"| {name} | not run: {why} | | | | | |")
            continue
        sy = rep["syncs"].get(name, [])

        def spp(i: int, sy: list[dict[str, Any]] = sy) -> str:
            if i >= len(sy):
                return "-"
            d = sy[i]
            if d.get("syncs_per_put") is None:
                return str(d.get("error", "-"))
            return f"{d['syncs_per_put']:.2f} ({d['syncs']}/{d['puts']}: " + ", ".join(
                f"{k} {v}" for k, v in sorted(d["calls"].items())) + ")"

        lines.append(f"| {name} | {fmt(s.get('start_to_ready_s'))} | "
                     f"{fmt(s.get('idle_rss_mib'), 1)} | {fmt(s.get('idle_cpu_ms_per_s'), 1)} | "
                     f"{fmt(s.get('rss_after_workloads_mib'), 1)} | {spp(0)} | {spp(1)} |")
    flushes = rep.get("flushes") or {}
    if flushes:
        lines += ["", "Flushes per acknowledged put at full speed (no strace), from each "
                  "server's own `etcd_disk_wal_fsync_duration_seconds_count` and "
                  "`etcd_disk_backend_commit_duration_seconds_count`:", "",
                  "| server | 1 client: WAL fsyncs + backend commits per put | "
                  "64 clients: WAL fsyncs + backend commits per put |", "|---|---:|---:|"]
        for name, runs in sorted(flushes.items(), key=lambda kv: server_order(kv[0])):

            def fl(d: dict[str, Any]) -> str:
                if d.get("per_put") is None:
                    return str(d.get("error", "-"))
                return (f"{d['per_put']:.2f} ({d['wal_fsyncs']:,} + {d['backend_commits']:,} "
                        f"/ {d['puts']:,})")

            lines.append(f"| {name} | " + " | ".join(fl(d) for d in runs) + " |")
    if rep["big"]:
        nkeys = next(iter(rep["big"].values())).get("keys", 1_000_000)
        lines += ["", f"| server ({nkeys:,} keys) | puts/s loading | RSS MiB | "
                  "restart-to-ready s | restart-to-first-count s (count) "
                  "| RSS after restart MiB |", "|---|---:|---:|---:|---:|---:|"]
        for name, b in rep["big"].items():
            failed = " failed: " + last_line(b["restart_error"]) if b.get("restart_error") else ""
            lines.append(f"| {name} | {fmt(b.get('put_ops_per_sec'))} | "
                         f"{fmt(b.get('rss_mib_loaded'), 1)} | "
                         f"{fmt(b.get('restart_to_ready_s'))}"
                         f"{failed} | {fmt(b.get('restart_to_first_count_s'))} "
                         f"({fmt(b.get('count_after_restart'))}) | "
                         f"{fmt(b.get('rss_mib_after_restart'), 1)} |")
    if any(n in rep["workloads"].get(k, {}).get("results", {})
           for k in MUX_WORKLOADS for n in MUX_ONLY):
        lines += ["", "One-port multiplexer: `etcdpy` serves gRPC and HTTP on one client port "
                  "through `etcdpy/transport/cmux.py` (plaintext gRPC forwarded by the native "
                  "splice thread, `transport/_splice.c`); `etcdpy-grpc` is etcdpy with "
                  "`--listen-client-http-urls` (grpc.aio owns the client port); `api-mux`/"
                  "`api-grpc` are `benchmarks/cmux_server.py` (etcdpy's API layer over the "
                  "in-memory fake server of tests/api) in its `mux` and `grpc` modes."]
    for key in MUX_WORKLOADS:
        res = rep["workloads"].get(key, {}).get("results", {})
        label = rep["workloads"].get(key, {}).get("label", key)
        for a, b in (("etcdpy", "etcdpy-grpc"), ("api-mux", "api-grpc")):
            ma, mb = res.get(a, {}).get("median", {}), res.get(b, {}).get("median", {})
            if ma.get("ops_per_sec") and mb.get("ops_per_sec"):
                cpu = ""
                if ma.get("server_cpu_ms_per_op") and mb.get("server_cpu_ms_per_op"):
                    cpu = (f", server CPU {ma['server_cpu_ms_per_op']:.3f} vs "
                           f"{mb['server_cpu_ms_per_op']:.3f} ms/op")
                lines.append(f"- {label}: {a} {ma['ops_per_sec']:,.0f}/s vs {b} "
                             f"{mb['ops_per_sec']:,.0f}/s: multiplexed/direct = "
                             f"{ma['ops_per_sec'] / mb['ops_per_sec']:.2f}{cpu}.")
    return "\n".join(lines) + "\n"


def write_outputs(rep: dict[str, Any], only_big: bool = False) -> tuple[str, str]:
    os.makedirs(RESULTS, exist_ok=True)
    stamp = rep["date"].replace(":", "").replace("-", "")[:13]
    tag = "big-" if only_big else ""
    jpath = os.path.join(RESULTS, f"compare-{tag}{stamp}.json")
    with open(jpath, "w") as f:
        json.dump(rep, f, indent=1)
    return jpath, write_md(rep, jpath, only_big)


def write_md(rep: dict[str, Any], jpath: str, only_big: bool) -> str:
    """Put the tables of ``rep`` into results/README.md between this kind's markers."""
    md = markdown(rep)
    readme = os.path.join(RESULTS, "README.md")
    head = ("# Benchmark results\n\nGenerated tables from `benchmarks/compare.py` (raw figures in "
            "the `compare-*.json` beside this file); notes by hand below the generated block.\n\n")
    old = ""
    with contextlib.suppress(OSError), open(readme) as f:
        old = f.read()
    begin, end = (BEGIN.replace("begin", "big:begin"), END.replace("end", "big:end")) \
        if only_big else (BEGIN, END)
    block = f"{begin}\n{md}\nRaw: `{os.path.relpath(os.path.abspath(jpath), REPO)}`\n{end}"
    if begin in old and end in old:
        new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _m: block, old,
                     flags=re.S)
    elif only_big and END in old:
        new = old.replace(END, END + "\n\n" + block, 1)
    else:
        new = (old or head) + ("\n" if old else "") + block + "\n"
    with open(readme, "w") as f:
        f.write(new)
    return md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small totals, one round (< 2 min)")
    ap.add_argument("--big", action="store_true",
                    help="also RSS after 1,000,000 keys and restart-to-ready time")
    ap.add_argument("--big-keys", type=int, default=1_000_000, help="keys for --big")
    ap.add_argument("--only-big", action="store_true", help="--big without the workloads")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 1 quick, 3 full)")
    ap.add_argument("--servers", default="floor,etcdpy,etcd,api",
                    help="api = benchmarks/cmux_server.py in mux and grpc modes (put/64 only)")
    ap.add_argument("--tool", choices=["auto", "etcd-load", "load.py"], default="auto")
    ap.add_argument("--no-pause", action="store_true",
                    help="leave the servers not under test running instead of SIGSTOP")
    ap.add_argument("--no-strace", action="store_true", help="skip the syncs-per-put runs")
    ap.add_argument("--no-mux-compare", action="store_true",
                    help="skip etcdpy with --listen-client-http-urls")
    ap.add_argument("--no-write", action="store_true", help="print, do not write results/")
    ap.add_argument("--crosscheck", action="store_true",
                    help="instead: load.py vs etcd-load on the floor, interleaved")
    ap.add_argument("--render", metavar="JSON",
                    help="instead: rewrite results/README.md's block from a saved compare-*.json")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        only_big = not any(w["results"] for w in saved["workloads"].values())
        write_md(saved, args.render, only_big)
        return 0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.crosscheck:
        cc = crosscheck(args)
        md = crosscheck_markdown(cc)
        print(md)
        if not args.no_write:
            os.makedirs(RESULTS, exist_ok=True)
            with open(os.path.join(RESULTS, "crosscheck.json"), "w") as f:
                json.dump(cc, f, indent=1)
            with open(os.path.join(RESULTS, "crosscheck.md"), "w") as f:
                f.write(md)
        return 0
    t0 = time.perf_counter()
    rep = run(args)
    rep["wall_seconds"] = round(time.perf_counter() - t0, 1)
    rep["machine"]["loadavg_at_end"] = os.getloadavg()
    if args.no_write:
        print(markdown(rep))
    else:
        jpath, md = write_outputs(rep, args.only_big)
        print(md)
        print(f"[compare] wrote {jpath} and {os.path.join(RESULTS, 'README.md')} "
              f"in {rep['wall_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
