"""Serve the API layer over the fake façade with and without TLS, to measure TLS termination
in the one-port multiplexer (``etcdpy/transport/tls.py``) against grpc owning the port.

    python benchmarks/tls_mux_server.py --mode mux|mux-tls|grpc|grpc-tls --port 23900 --dir D

TLS modes write an --auto-tls style certificate for 127.0.0.1 to ``D/cert.pem`` (use it as
the load tool's CA). Results: benchmarks/tls_mux.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import uvloop

from etcdpy.api.serve import ClientTLS, serve_client
from etcdpy.transport.tls import self_signed_cert
from tests.api.fake_server import FakeServer


async def main(mode: str, port: int, d: str) -> None:
    tls = None
    scheme = "http"
    if mode.endswith("-tls"):
        info = self_signed_cert(d, ["127.0.0.1"])
        tls = ClientTLS.from_info(info)  # server_ssl_context + conn_check
        scheme = "https"
    lst = await serve_client(
        f"{scheme}://127.0.0.1:{port}",
        FakeServer(),
        mode="grpc" if mode.startswith("grpc") else "mux",
        tls=tls,
    )
    print("serving", mode, lst.address, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await lst.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="mux", choices=["mux", "mux-tls", "grpc", "grpc-tls"])
    ap.add_argument("--port", type=int, default=23900)
    ap.add_argument("--dir", default="/tmp/etcdpy-tls-bench")
    a = ap.parse_args()
    uvloop.run(main(a.mode, a.port, a.dir))
