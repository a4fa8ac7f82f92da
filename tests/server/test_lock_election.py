"""The server-side Lock and Election recipes (api/v3/lock.py, election.py) on a real member.

The member's watch streams hand events over already serialized for gRPC
(``EncodedWatchResponse``); tests/api's fake server does not, so only a real member shows
that a waiter which sees the deletion as a live event wakes up instead of failing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.v3electionpb import v3election_pb2 as epb
from etcdpy._pb.v3lockpb import v3lock_pb2 as lpb
from etcdpy.api.v3.election import ElectionCore
from etcdpy.api.v3.lock import LockCore
from tests.server.support import member, run, still_pending

LIMIT = 10.0


def test_second_lock_waits_for_the_first_unlock(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            locks = LockCore(e.server)
            first = await locks.lock(lpb.LockRequest(name=b"job"), None)
            second = asyncio.ensure_future(locks.lock(lpb.LockRequest(name=b"job"), None))
            assert await still_pending(second)
            await locks.unlock(lpb.UnlockRequest(key=first.key), None)
            async with asyncio.timeout(LIMIT):
                got = await second
            assert got.key.startswith(b"job/") and got.key != first.key
            assert got.header.revision > first.header.revision

    run(body())


def test_campaign_waits_and_observe_follows_leaders(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            el = ElectionCore(e.server)
            seen: list[bytes] = []

            async def observe() -> None:
                async for r in el.observe(epb.LeaderRequest(name=b"el"), None):
                    seen.append(bytes(r.kv.value))
                    if len(seen) == 3:
                        return

            watcher = asyncio.ensure_future(observe())  # starts before anyone campaigns
            a = await el.campaign(epb.CampaignRequest(name=b"el", value=b"a"), None)
            b_task = asyncio.ensure_future(
                el.campaign(epb.CampaignRequest(name=b"el", value=b"b"), None)
            )
            assert await still_pending(b_task)
            await el.proclaim(epb.ProclaimRequest(leader=a.leader, value=b"a2"), None)
            await el.resign(epb.ResignRequest(leader=a.leader), None)
            async with asyncio.timeout(LIMIT):
                b = await b_task
                await watcher
            assert b.leader.key != a.leader.key
            assert seen == [b"a", b"a2", b"b"]
            leader = await el.leader(epb.LeaderRequest(name=b"el"), None)
            assert leader.kv.value == b"b"
            resp = await e.server.range(pb.RangeRequest(key=b"el/", range_end=b"el0"), None)
            assert [kv.key for kv in resp.kvs] == [b.leader.key]

    run(body())
