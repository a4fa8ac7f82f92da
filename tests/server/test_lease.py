"""Leases on a real member: grant/revoke through raft, keepalive and expiry on the leader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from tests.server.support import eventually, member, run

FAST = ("--heartbeat-interval", "10", "--election-timeout", "100")  # min lease TTL 1 s


def test_grant_attach_revoke_deletes_keys_in_one_revision(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            s = e.server
            b = s.revision
            g = await s.lease_grant(pb.LeaseGrantRequest(TTL=60))
            assert g.ID > 0 and g.TTL == 60
            with pytest.raises(errors.ErrGRPCLeaseExist):
                await s.lease_grant(pb.LeaseGrantRequest(ID=g.ID, TTL=60))
            await s.put(pb.PutRequest(key=b"l1", value=b"a", lease=g.ID))
            await s.put(pb.PutRequest(key=b"l2", value=b"b", lease=g.ID))
            await s.put(pb.PutRequest(key=b"other", value=b"c"))
            ttl = await s.lease_time_to_live(pb.LeaseTimeToLiveRequest(ID=g.ID, keys=True))
            assert ttl.grantedTTL == 60 and 0 < ttl.TTL <= 60
            assert list(ttl.keys) == [b"l1", b"l2"]
            ka = await s.lease_renew(g.ID)
            assert ka.ID == g.ID and ka.TTL == 60
            ls = await s.lease_leases(pb.LeaseLeasesRequest())
            assert [x.ID for x in ls.leases] == [g.ID]
            r = await s.lease_revoke(pb.LeaseRevokeRequest(ID=g.ID))
            assert r.header.revision == b + 4  # both keys deleted at one revision
            got = await s.range(pb.RangeRequest(key=b"\x00", range_end=b"\x00"))
            assert [kv.key for kv in got.kvs] == [b"other"]
            with pytest.raises(errors.ErrGRPCLeaseNotFound):
                await s.lease_revoke(pb.LeaseRevokeRequest(ID=g.ID))
            with pytest.raises(errors.ErrGRPCLeaseNotFound):
                await s.lease_renew(g.ID)
            with pytest.raises(errors.ErrGRPCLeaseNotFound):
                await s.put(pb.PutRequest(key=b"x", value=b"y", lease=g.ID))

    run(body())


def test_lease_expires_on_leader(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path, *FAST) as e:
            s = e.server
            g = await s.lease_grant(pb.LeaseGrantRequest(TTL=1))
            await s.put(pb.PutRequest(key=b"eph", value=b"v", lease=g.ID))

            async def gone() -> bool:
                r = await s.range(pb.RangeRequest(key=b"eph"))
                return r.count == 0

            await eventually(gone, timeout=10)
            with pytest.raises(errors.ErrGRPCLeaseNotFound):
                await s.lease_time_to_live(pb.LeaseTimeToLiveRequest(ID=g.ID))

    run(body())


def test_leases_survive_restart(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            g = await e.server.lease_grant(pb.LeaseGrantRequest(TTL=300))
            await e.server.put(pb.PutRequest(key=b"k", value=b"v", lease=g.ID))
        async with member(tmp_path) as e:
            s = e.server
            ttl = await s.lease_time_to_live(pb.LeaseTimeToLiveRequest(ID=g.ID, keys=True))
            assert ttl.grantedTTL == 300 and list(ttl.keys) == [b"k"]
            await s.lease_revoke(pb.LeaseRevokeRequest(ID=g.ID))
            assert (await s.range(pb.RangeRequest(key=b"k"))).count == 0
            await asyncio.sleep(0)

    run(body())
