"""Crash durability: SIGKILL a member process under write load; every acknowledged write
survives the restart (the WAL is fsynced before the answer; the KV replays after
consistent_index)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from tests.server.support import run
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etcdpy",
            "--data-dir",
            str(data_dir),
            "--listen-client-urls",
            url,
            "--advertise-client-urls",
            url,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _ready(stub: rpc.KVStub) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                await stub.Range(pb.RangeRequest(key=b"x"), timeout=1)
                return
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)


def test_acknowledged_puts_survive_sigkill(tmp_path: Path) -> None:
    port = free_port()

    async def load() -> set[bytes]:
        acked: set[bytes] = set()
        proc = _start(tmp_path, port)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                kv = rpc.KVStub(ch)
                await _ready(kv)

                async def writer(w: int) -> None:
                    i = 0
                    while True:
                        key = b"w%d-%05d" % (w, i)
                        try:
                            await kv.Put(pb.PutRequest(key=key, value=b"v"), timeout=5)
                        except grpc.aio.AioRpcError:
                            return
                        acked.add(key)
                        i += 1

                tasks = [asyncio.create_task(writer(w)) for w in range(8)]
                async with asyncio.timeout(20):
                    while len(acked) < 300:
                        await asyncio.sleep(0.01)
                proc.send_signal(signal.SIGKILL)
                await asyncio.gather(*tasks)
        finally:
            proc.kill()
            proc.wait()
        return acked

    async def check(acked: set[bytes]) -> None:
        proc = _start(tmp_path, port)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                kv = rpc.KVStub(ch)
                await _ready(kv)
                r = await kv.Range(pb.RangeRequest(key=b"w", range_end=b"x", keys_only=True))
                present = {kvp.key for kvp in r.kvs}
                assert acked <= present, sorted(acked - present)[:5]
                # one revision per put, no gap and no double apply after the replay
                assert r.header.revision == 1 + len(present)
        finally:
            proc.terminate()
            assert proc.wait(timeout=20) == 0

    acked = run(load(), timeout=60)
    run(check(acked), timeout=60)
