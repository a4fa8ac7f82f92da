"""Real etcdctl (v3 API) talks to a toy server built on our generated stubs.

Proves the wire contract end to end: method paths, message field numbers and the response
shapes etcdctl decodes. The toy KV answers from a dict; nothing of etcdpy's server is used.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent import futures
from typing import Any

import pytest

grpc = pytest.importorskip("grpc")

from etcdpy._pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc  # noqa: E402
from etcdpy._pb.mvccpb import kv_pb2  # noqa: E402

ETCDCTL = shutil.which("etcdctl")


class ToyKV(rpc_pb2_grpc.KVServicer):
    def __init__(self) -> None:
        self.data: dict[bytes, kv_pb2.KeyValue] = {}
        self.rev = 1

    def _header(self) -> rpc_pb2.ResponseHeader:
        return rpc_pb2.ResponseHeader(cluster_id=1, member_id=2, revision=self.rev, raft_term=3)

    def Put(self, request: rpc_pb2.PutRequest, context: Any) -> rpc_pb2.PutResponse:
        self.rev += 1
        old = self.data.get(request.key)
        self.data[request.key] = kv_pb2.KeyValue(
            key=request.key,
            value=request.value,
            create_revision=old.create_revision if old else self.rev,
            mod_revision=self.rev,
            version=(old.version if old else 0) + 1,
            lease=request.lease,
        )
        return rpc_pb2.PutResponse(header=self._header())

    def Range(self, request: rpc_pb2.RangeRequest, context: Any) -> rpc_pb2.RangeResponse:
        kvs = [self.data[request.key]] if request.key in self.data else []
        return rpc_pb2.RangeResponse(header=self._header(), kvs=kvs, count=len(kvs))

    # The mypy-protobuf stubs declare every servicer method abstract.
    def DeleteRange(self, request: Any, context: Any) -> Any:
        raise NotImplementedError

    def Txn(self, request: Any, context: Any) -> Any:
        raise NotImplementedError

    def Compact(self, request: Any, context: Any) -> Any:
        raise NotImplementedError


@pytest.mark.skipif(ETCDCTL is None, reason="etcdctl not installed")
def test_etcdctl_put_get_over_generated_stubs() -> None:
    assert ETCDCTL is not None
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rpc_pb2_grpc.add_KVServicer_to_server(ToyKV(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        base = [ETCDCTL, f"--endpoints=127.0.0.1:{port}", "--dial-timeout=5s"]
        env = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
        put = subprocess.run(
            [*base, "put", "foo", "bar"], capture_output=True, text=True, timeout=20, env=env
        )
        assert put.returncode == 0, put.stderr
        assert put.stdout.strip() == "OK"
        get = subprocess.run(
            [*base, "get", "foo", "-w", "json"],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
        )
        assert get.returncode == 0, get.stderr
        assert '"key":"Zm9v"' in get.stdout and '"value":"YmFy"' in get.stdout
        assert '"mod_revision":2' in get.stdout and '"raft_term":3' in get.stdout
    finally:
        server.stop(grace=None)
