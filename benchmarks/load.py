"""A Python load generator for etcd v3 servers, with etcd ``benchmark``'s knobs.

    python benchmarks/load.py --endpoints 127.0.0.1:2379 --clients 64 --conns 16 put --total 20000
    python benchmarks/load.py ... range --key k --consistency s --total 20000
    python benchmarks/load.py ... range --key r/ --prefix --total 2000
    python benchmarks/load.py ... txn-put --total 20000
    python benchmarks/load.py ... watch-fanout --watchers 1000 --streams 10 --puts 2000

It exists beside ``../shared/perf``'s Go ``etcd-load`` for machines without it and to check
that tool's figures; its output has the same fields (one JSON object, last line). It keeps its
own cost low because load and server share the cores: grpc.aio on uvloop, request messages
built before the clock starts, ``--conns`` channels (each its own TCP connection) and
``--clients`` coroutines sharing them round-robin. ``client_cpu_ms_per_op`` is this process's
CPU (user+system, all threads, ``getrusage``) over the run divided by the operations.
Exit status 1 if any request failed or a watcher missed an event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import grpc
import uvloop

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as pb_grpc
from etcdpy.util.keys import prefix_end

WATCH_PREFIX = b"watch-fanout/"


@dataclass
class Result:
    workload: str
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    ops_per_sec: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    client_cpu_ms_per_op: float = 0.0
    events: int = 0
    events_per_sec: float = 0.0
    first_error: str = ""
    tool: str = "load.py"


class _Progress:
    """The callers' shared cursor and error tally (one event loop: no lock needed)."""

    def __init__(self) -> None:
        self.next = 0
        self.errors = 0
        self.first = ""

    def error(self, e: grpc.aio.AioRpcError) -> None:
        self.errors += 1
        if not self.first:
            self.first = f"{e.code().name}: {e.details()}"


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def summarize(name: str, lat_ns: list[int], seconds: float, cpu: float) -> Result:
    lat_ns.sort()

    def pct(p: float) -> float:
        if not lat_ns:
            return 0.0
        return round(lat_ns[int(p * (len(lat_ns) - 1))] / 1e6, 3)

    r = Result(name, ops=len(lat_ns), seconds=round(seconds, 4))
    r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms = pct(0.5), pct(0.9), pct(0.99), pct(1.0)
    if seconds > 0:
        r.ops_per_sec = round(len(lat_ns) / seconds, 1)
    if lat_ns:
        r.client_cpu_ms_per_op = round(cpu * 1000 / len(lat_ns), 4)
    return r


def open_channels(endpoints: list[str], n: int) -> list[grpc.aio.Channel]:
    """``n`` channels, each with its own subchannel pool, hence its own TCP connection."""
    opts = [("grpc.use_local_subchannel_pool", 1)]
    return [grpc.aio.insecure_channel(endpoints[i % len(endpoints)], options=opts)
            for i in range(n)]


async def wait_ready(chans: list[grpc.aio.Channel], timeout: float) -> None:
    await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in chans)), timeout)


async def run_unary(
    name: str, args: argparse.Namespace, method: str, reqs: list[Any],
) -> Result:
    """Send ``reqs[i]`` for i in range(total) from ``--clients`` coroutines."""
    chans = open_channels(args.endpoints, args.conns)
    try:
        await wait_ready(chans, 5.0)
        stubs = [getattr(pb_grpc.KVStub(c), method) for c in chans]
        total, timeout = len(reqs), args.timeout
        state = _Progress()
        lats: list[int] = []
        clock = time.perf_counter_ns

        async def client(w: int) -> None:
            call = stubs[w % len(stubs)]
            append = lats.append
            while True:
                i = state.next
                if i >= total:
                    return
                state.next = i + 1
                s = clock()
                try:
                    await call(reqs[i], timeout=timeout)
                except grpc.aio.AioRpcError as e:
                    state.error(e)
                    continue
                append(clock() - s)

        cpu0, t0 = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(client(w) for w in range(args.clients)))
        el, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        r = summarize(name, lats, el, cpu)
        r.errors, r.first_error = state.errors, state.first
        return r
    finally:
        await asyncio.gather(*(c.close() for c in chans))


def key_picker(args: argparse.Namespace) -> Callable[[int], bytes]:
    rng = random.Random(args.seed)

    def pick(i: int) -> bytes:
        n = i % args.key_space_size if args.sequential_keys else rng.randrange(args.key_space_size)
        return str(n).zfill(args.key_size).encode()

    return pick


def build_requests(args: argparse.Namespace) -> tuple[str, str, list[Any]]:
    """(workload name, KV method, one prebuilt request per operation)."""
    value = b"v" * args.val_size
    if args.cmd == "range":
        key = args.key.encode()
        req = pb.RangeRequest(key=key, serializable=args.consistency == "s")
        if args.prefix:
            req.range_end = prefix_end(key)
        return f"range-{args.consistency}", "Range", [req] * args.total
    pick = key_picker(args)
    cache: dict[bytes, Any] = {}
    reqs: list[Any] = []
    for i in range(args.total):
        k = pick(i)
        r = cache.get(k)
        if r is None:
            if args.cmd == "put":
                r = pb.PutRequest(key=k, value=value)
            else:  # txn-put: if version(k) > -1 then put(k)
                r = pb.TxnRequest(
                    compare=[pb.Compare(result=pb.Compare.GREATER, target=pb.Compare.VERSION,
                                        key=k, version=-1)],
                    success=[pb.RequestOp(request_put=pb.PutRequest(key=k, value=value))],
                )
            cache[k] = r
        reqs.append(r)
    return args.cmd, "Put" if args.cmd == "put" else "Txn", reqs


async def watch_fanout(args: argparse.Namespace) -> Result:
    """``--watchers`` prefix watchers over ``--streams`` streams (one connection each), then
    ``--puts`` puts from ``--clients`` callers; every watcher must see every put."""
    chans = open_channels(args.endpoints, args.streams)
    put_chans = open_channels(args.endpoints, max(1, min(args.conns, args.clients)))
    calls: list[Any] = []
    try:
        await wait_ready(chans + put_chans, 5.0)
        puts, watchers = args.puts, args.watchers
        create = pb.WatchRequest(create_request=pb.WatchCreateRequest(
            key=WATCH_PREFIX, range_end=prefix_end(WATCH_PREFIX)))
        per_stream = [watchers // args.streams + (1 if s < watchers % args.streams else 0)
                      for s in range(args.streams)]
        events = 0
        last_event = 0.0
        lat: list[int] = []
        created = asyncio.Event()
        n_created = 0
        finished = 0
        all_done = asyncio.Event()

        async def reader(call: Any, n_watchers: int) -> None:
            nonlocal events, last_event, n_created, finished
            seen: dict[int, int] = {}
            my_ids: dict[int, int] = {}
            done_here = 0
            async for resp in call:
                if resp.created:
                    my_ids[resp.watch_id] = len(my_ids)
                    n_created += 1
                    if n_created == watchers:
                        created.set()
                    continue
                n = len(resp.events)
                if not n:
                    continue
                now = time.time_ns()
                wid = resp.watch_id
                if my_ids.get(wid, 1) % 10 == 0:  # sample latency on a tenth of the watchers
                    for ev in resp.events:
                        v = ev.kv.value
                        lat.append(now - int(v[:19]))
                events += n
                last_event = time.perf_counter()
                c = seen.get(wid, 0) + n
                seen[wid] = c
                if c >= puts and c - n < puts:
                    done_here += 1
                    finished += 1
                    if finished == watchers:
                        all_done.set()
                    if done_here == n_watchers:
                        return

        async def opener(s: int) -> None:
            call = pb_grpc.WatchStub(chans[s]).Watch(
                metadata=(("hasleader", "true"),))
            calls.append(call)
            readers.append(asyncio.ensure_future(reader(call, per_stream[s])))
            for _ in range(per_stream[s]):
                await call.write(create)

        readers: list[asyncio.Future[None]] = []
        await asyncio.gather(*(opener(s) for s in range(args.streams)))
        await asyncio.wait_for(created.wait(), 30)

        value = b"v" * args.val_size
        stubs = [pb_grpc.KVStub(c).Put for c in put_chans]
        state = _Progress()

        async def putter(c: int) -> None:
            call = stubs[c % len(stubs)]
            while True:
                i = state.next
                if i >= puts:
                    return
                state.next = i + 1
                k = WATCH_PREFIX + str(i).zfill(args.key_size).encode()
                v = str(time.time_ns()).encode() + value
                try:
                    await call(pb.PutRequest(key=k, value=v), timeout=args.timeout)
                except grpc.aio.AioRpcError as e:
                    state.error(e)

        cpu0, t0 = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(putter(c) for c in range(args.clients)))
        try:
            await asyncio.wait_for(all_done.wait(), 30)
        except TimeoutError:
            pass
        cpu = cpu_seconds() - cpu0
        el = (last_event or time.perf_counter()) - t0
        r = summarize("watch-fanout", lat, el, cpu)
        r.ops, r.errors, r.first_error = puts, state.errors, state.first
        r.client_cpu_ms_per_op = round(cpu * 1000 / puts, 4)
        r.events = events
        if el > 0:
            r.events_per_sec = round(events / el, 1)
            r.ops_per_sec = round(puts / el, 1)
        if events < puts * watchers:
            r.first_error = r.first_error or f"only {events} of {puts * watchers} events delivered"
            r.errors += 1
        for f in readers:
            f.cancel()
        return r
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*(c.close() for c in chans + put_chans))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoints", default=argparse.SUPPRESS,
                        help="comma-separated host:port (default 127.0.0.1:2379)")
    common.add_argument("--clients", type=int, default=argparse.SUPPRESS,
                        help="concurrent callers (default 1)")
    common.add_argument("--conns", type=int, default=argparse.SUPPRESS,
                        help="gRPC connections the callers share (default 1)")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="per-request timeout, seconds (default 10)")
    ap = argparse.ArgumentParser(description=__doc__, parents=[common],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    keyed = argparse.ArgumentParser(add_help=False)
    keyed.add_argument("--total", type=int, default=10000, help="operations")
    keyed.add_argument("--key-size", type=int, default=8, help="key bytes")
    keyed.add_argument("--val-size", type=int, default=256, help="value bytes")
    keyed.add_argument("--key-space-size", type=int, default=100000, help="distinct keys")
    keyed.add_argument("--sequential-keys", action=argparse.BooleanOptionalAction, default=True,
                       help="keys in order (default) instead of random")
    keyed.add_argument("--seed", type=int, default=1, help="random keys' seed")
    sub.add_parser("put", parents=[common, keyed])
    sub.add_parser("txn-put", parents=[common, keyed])
    rp = sub.add_parser("range", parents=[common, keyed])
    rp.add_argument("--key", default="bench-range-key", help="the key (or prefix with --prefix)")
    rp.add_argument("--prefix", action="store_true", help="every key under --key")
    rp.add_argument("--consistency", choices=["l", "s"], default="l",
                    help="l (linearizable) or s (serializable)")
    wp = sub.add_parser("watch-fanout", parents=[common, keyed])
    wp.add_argument("--watchers", type=int, default=1000)
    wp.add_argument("--streams", type=int, default=10, help="watch streams, one connection each")
    wp.add_argument("--puts", type=int, default=2000, help="puts after the watchers are set up")
    args = ap.parse_args(argv)
    for name, default in (("endpoints", "127.0.0.1:2379"), ("clients", 1), ("conns", 1),
                          ("timeout", 10.0)):
        if not hasattr(args, name):
            setattr(args, name, default)
    args.endpoints = [e.strip().removeprefix("http://") for e in args.endpoints.split(",")]
    args.conns = max(1, args.conns)
    return args


async def amain(args: argparse.Namespace) -> Result:
    if args.cmd == "watch-fanout":
        return await watch_fanout(args)
    name, method, reqs = build_requests(args)
    return await run_unary(name, args, method, reqs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    r = uvloop.run(amain(args))
    print(f"{r.workload}: {r.ops} ops in {r.seconds:.2f}s = {r.ops_per_sec:.0f} ops/s; "
          f"latency ms p50 {r.p50_ms:.2f} p90 {r.p90_ms:.2f} p99 {r.p99_ms:.2f} "
          f"max {r.max_ms:.2f}; client CPU {r.client_cpu_ms_per_op:.3f} ms/op; "
          f"errors {r.errors}")
    if r.events:
        print(f"events delivered: {r.events} = {r.events_per_sec:.0f} events/s "
              "(latency above: put sent -> event received)")
    if r.first_error:
        print("first error:", r.first_error)
    out = {k: v for k, v in asdict(r).items() if v or k in ("ops", "errors")}
    print(json.dumps(out), flush=True)
    return 1 if r.errors else 0


if __name__ == "__main__":
    sys.exit(main())
