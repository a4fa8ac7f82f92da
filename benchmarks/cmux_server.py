"""Serve the API layer over the in-memory fake façade, to measure the one-port multiplexer.

    python benchmarks/cmux_server.py --mode mux|mux-threaded|grpc --port 23800

Drive it with ../shared/perf's etcd-load and compare the modes' throughput and server CPU
(``/proc/PID/stat`` utime+stime) within one run; see benchmarks/cmux.md for results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import uvloop

from etcdpy.api.serve import serve_client
from tests.api.fake_server import FakeServer


async def main(mode: str, port: int) -> None:
    url = f"http://127.0.0.1:{port}"
    if mode == "mux-threaded":
        lst = await serve_client(url, FakeServer(), mode="mux", threaded_mux=True)
    else:
        lst = await serve_client(url, FakeServer(), mode=mode)  # type: ignore[arg-type]
    print("serving", mode, lst.address, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await lst.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="mux", choices=["mux", "mux-threaded", "grpc"])
    ap.add_argument("--port", type=int, default=23800)
    a = ap.parse_args()
    uvloop.run(main(a.mode, a.port))
