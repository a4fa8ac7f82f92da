"""--experimental-watch-progress-notify-interval: an idle watcher that asked for progress
notifications gets empty responses carrying the current revision (etcd and etcdpy alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from tests.e2e.harness import Member, have_etcd, new_member


@pytest.fixture(scope="module", params=["etcdpy", "etcd"])
def progress_member(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Member]:
    if request.param == "etcd" and not have_etcd():
        pytest.skip("real etcd not installed")
    m = new_member(request.param, Path(tmp_path_factory.mktemp("progress")))
    m.start(["--experimental-watch-progress-notify-interval=1s"])
    try:
        yield m
    finally:
        m.stop()


async def _progress_responses(target: str, n: int) -> tuple[int, list[pb.WatchResponse]]:
    async with grpc.aio.insecure_channel(target) as ch:
        kv = rpc.KVStub(ch)
        put = await kv.Put(pb.PutRequest(key=b"pn/a", value=b"1"))
        watch = rpc.WatchStub(ch)
        requests: asyncio.Queue[pb.WatchRequest | None] = asyncio.Queue()
        await requests.put(
            pb.WatchRequest(
                create_request=pb.WatchCreateRequest(
                    key=b"pn/", range_end=b"pn0", progress_notify=True
                )
            )
        )

        async def gen():  # type: ignore[no-untyped-def]
            while (r := await requests.get()) is not None:
                yield r

        call = watch.Watch(gen())
        got: list[pb.WatchResponse] = []
        async with asyncio.timeout(15):
            async for resp in call:
                got.append(resp)
                if len(got) >= n:
                    break
        call.cancel()
        return put.header.revision, got


def test_idle_watch_gets_progress_notifications(progress_member: Member) -> None:
    target = f"127.0.0.1:{progress_member.client_port}"
    revision, got = asyncio.run(_progress_responses(target, 3))
    assert got[0].created
    for resp in got[1:]:
        assert not resp.events and not resp.created and not resp.canceled
        assert resp.header.revision == revision
