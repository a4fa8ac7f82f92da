"""The member through its gRPC client port (grpc.aio client stubs, etcd's wire protocol)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from tests.server.support import member, run


def test_kv_lease_maintenance_over_grpc(tmp_path: Path) -> None:
    async def body() -> None:
        async with member(tmp_path) as e:
            addr = e.client_addresses[0]
            async with grpc.aio.insecure_channel(addr) as ch:
                kv = rpc.KVStub(ch)
                r = await kv.Put(pb.PutRequest(key=b"foo", value=b"bar"))
                g = await kv.Range(pb.RangeRequest(key=b"foo", serializable=True))
                assert g.kvs[0].value == b"bar"  # read-your-writes, even before the KV commit
                assert r.header.revision == g.header.revision == e.server.revision
                with pytest.raises(grpc.aio.AioRpcError) as ei:
                    await kv.Range(pb.RangeRequest(key=b"foo", revision=9))
                assert ei.value.code() == grpc.StatusCode.OUT_OF_RANGE
                assert ei.value.details() == (
                    "etcdserver: mvcc: required revision is a future revision"
                )
                lease = rpc.LeaseStub(ch)
                lg = await lease.LeaseGrant(pb.LeaseGrantRequest(TTL=30))
                assert lg.TTL == 30
                m = rpc.MaintenanceStub(ch)
                st = await m.Status(pb.StatusRequest())
                assert st.leader == e.server.id and st.raftIndex >= st.raftAppliedIndex > 0
                assert st.version == e.server.server_version
                ml = await rpc.ClusterStub(ch).MemberList(pb.MemberListRequest())
                assert ml.members[0].clientURLs == ["http://127.0.0.1:2379"]
                chunks = [c async for c in m.Snapshot(pb.SnapshotRequest())]
                assert chunks[-1].remaining_bytes == 0 and len(chunks[-1].blob) == 32

    run(body())
