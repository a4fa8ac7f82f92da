"""etcdpy's own cost per put without gRPC: concurrent ``EtcdServer.put`` calls in-process.

    python benchmarks/core_put.py [--clients 64] [--total 20000] [--rounds 2]

Starts a single member (fresh data dir, default durability) inside this process and drives
``EtcdServer.put`` from ``--clients`` coroutines on its own event loop: raft, the WAL with its
fsyncs, the apply and the answer, but no gRPC, no API layer and no client sockets. Prints
puts/s and the CPU per put of each thread (``/proc/self/task``), so a change to the core can
be measured without the noise of the gRPC stack, and the gap between these figures and
``compare.py``'s shows what running under gRPC costs (smaller batches, a shared GIL).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import uvloop
from compare import task_cpu  # benchmarks/, this script's own directory

from etcdpy import embed
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.config import parse_config
from etcdpy.observability.logging import Logger


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far per thread name (the main thread is ``loop``)."""
    return task_cpu(os.getpid(), lambda name, main: "loop" if main else name)


async def run(clients: int, total: int, rounds: int) -> None:
    data = tempfile.mkdtemp(prefix="core-put-")
    cfg = parse_config(["--data-dir", os.path.join(data, "d"),
                        "--listen-client-urls", "http://127.0.0.1:0",
                        "--advertise-client-urls", "http://127.0.0.1:2379"], {}).config
    e = await embed.start(cfg, Logger(outputs=[io.StringIO()]))
    s = e.server
    try:
        while s.cluster_version == "not_decided":
            await asyncio.sleep(0.01)
        value = b"v" * 256
        each = total // clients

        async def client(i: int) -> None:
            for j in range(each):
                key = b"%08d" % ((i * 7919 + j * 104729) % 100_000)
                await s.put(pb.PutRequest(key=key, value=value))

        for _ in range(rounds):
            before, t0 = thread_cpu(), time.perf_counter()
            await asyncio.gather(*(client(i) for i in range(clients)))
            elapsed, after = time.perf_counter() - t0, thread_cpu()
            n = each * clients
            # every thread, idle ones too (CPU is counted in 10 ms ticks: a short run may
            # show 0.0 for a thread that did work)
            split = ", ".join(f"{k} {(after[k] - before.get(k, 0.0)) * 1e6 / n:.1f}"
                              for k in sorted(after))
            print(f"{clients} clients: {n / elapsed:,.0f} puts/s; us of CPU per put: {split}")
    finally:
        await e.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--total", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    uvloop.run(run(a.clients, a.total, a.rounds))


if __name__ == "__main__":
    main()
