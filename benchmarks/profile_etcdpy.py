"""Profile etcdpy under put load with py-spy, in one command, and summarise the top frames.

    pip install py-spy
    python benchmarks/profile_etcdpy.py [--clients 64] [--seconds 8] [--out /tmp/put64]

Starts etcdpy (fresh data dir, default flags, free 127.0.0.1 port), drives it with etcd-load
(or load.py) ``put`` for longer than the sampling window, records ``py-spy record --gil
--native --format raw`` (only the thread holding the GIL: the CPU that limits a Python
server) and a plain wall-clock flame graph (``OUT.svg``), then prints
``pyspy_summary.py``'s table with microseconds per put from the load's measured rate.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc
from compare import ETCD_LOAD, HERE, REPO, Server

sys.path.insert(0, REPO)
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as pb_grpc


def revision(endpoint: str) -> int:
    """The store's revision: one more per put, so two reads count the puts between them."""
    with grpc.insecure_channel(endpoint) as ch:
        resp = pb_grpc.KVStub(ch).Range(pb.RangeRequest(key=b"x", serializable=True), timeout=10)
        return int(resp.header.revision)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--out", default="/tmp/etcdpy-profile")
    ap.add_argument("--svg", action="store_true", help="also record a wall-clock flame graph")
    a = ap.parse_args()
    pyspy = shutil.which("py-spy")
    if not pyspy:
        raise SystemExit("py-spy not found: pip install py-spy")
    tool = [ETCD_LOAD] if os.access(ETCD_LOAD, os.X_OK) else [
        sys.executable, os.path.join(HERE, "load.py")]
    srv = Server("etcdpy", "etcdpy")
    load: subprocess.Popen[str] | None = None
    try:
        srv.start()
        # Enough puts to outlast the sampling at a pessimistic 5,000 puts/s.
        total = int(5000 * (a.seconds + 3) * (2 if a.svg else 1))
        load = subprocess.Popen(
            [*tool, "--endpoints", srv.endpoint, "--clients", str(a.clients),
             "--conns", str(min(a.clients, 16)), "put", "--total", str(total)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        time.sleep(1.0)
        raw = a.out + ".txt"
        r0, c0, t0 = revision(srv.endpoint), srv.cpu_seconds(), time.perf_counter()
        subprocess.run([pyspy, "record", "--pid", str(srv.pid), "-d", str(a.seconds),
                        "-r", str(a.rate), "--gil", "--native", "--format", "raw", "-o", raw],
                       check=True, timeout=a.seconds + 60, capture_output=True)
        if a.svg:
            subprocess.run([pyspy, "record", "--pid", str(srv.pid), "-d", str(a.seconds),
                            "-r", str(a.rate), "-o", a.out + ".svg"],
                           check=True, timeout=a.seconds + 60, capture_output=True)
        cpu, el = srv.cpu_seconds() - c0, time.perf_counter() - t0
        puts = revision(srv.endpoint) - r0
        load.kill()
        load.wait(10)
        rate = puts / el
        print(f"while sampling ({el:.1f}s, py-spy attached): {puts} puts = {rate:,.0f}/s, "
              f"server CPU {cpu * 1000 / max(puts, 1):.3f} ms/put")
        subprocess.run([sys.executable, os.path.join(HERE, "pyspy_summary.py"), raw,
                        "--rate", str(a.rate), "--duration", str(a.seconds),
                        "--ops-per-sec", str(rate)], check=True)
        print(f"raw profile: {raw}" + (f"; flame graph: {a.out}.svg" if a.svg else ""))
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait(5)
        srv.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
