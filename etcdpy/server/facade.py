"""The contract between the client APIs (layer 6) and the server (layer 4).

The gRPC servicers, the grpc-gateway JSON API and the HTTP endpoints call only this.
Requests and responses are etcd's protobuf messages (``etcdpy._pb.etcdserverpb.rpc_pb2``)
so the hot path never converts between representations. Every response carries a filled
``header`` (cluster_id, member_id, revision, raft_term). Failures raise ``EtcdError``
subclasses from ``etcdpy.errors``; the API layer maps them to gRPC status / JSON once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from etcdpy._pb.etcdserverpb import rpc_pb2 as pb


class AuthInfo(Protocol):
    """Who is calling (auth token / client cert CN already resolved); empty when auth is off."""

    username: str
    revision: int


class EncodedWatchResponse(NamedTuple):
    """A ``WatchResponse`` already serialized (``data``), with the two fields the API layer
    looks at. gRPC writes ``data`` as is; the JSON gateway parses it back."""

    watch_id: int
    canceled: bool
    data: bytes


class WatchStream(Protocol):
    """One client watch stream (etcd's mvcc.WatchStream): many watchers, one ordered output.

    ``create`` answers synchronously with the created response (or raises EtcdError);
    events, progress notifications, compaction cancels and control replies come out of
    ``responses()`` in order, already fragmented when the watcher asked for it. A response
    may come as an :class:`EncodedWatchResponse`. ``responses()`` is lazy: take the next
    response only when ready to send it (what waits in the stream may still be merged).
    """

    def create(self, req: pb.WatchCreateRequest) -> pb.WatchResponse: ...

    def cancel(self, watch_id: int) -> pb.WatchResponse: ...

    def request_progress(self) -> None: ...

    def responses(self) -> AsyncIterator[pb.WatchResponse | EncodedWatchResponse]: ...

    def close(self) -> None: ...


class LeaseKeepAlive(Protocol):
    async def renew(self, lease_id: int) -> pb.LeaseKeepAliveResponse: ...


class EtcdServerAPI(Protocol):
    """What a member offers its clients. All coroutines run on the member's event loop."""

    # --- KV ---
    async def range(
        self, req: pb.RangeRequest, auth: AuthInfo | None = None
    ) -> pb.RangeResponse: ...
    async def put(self, req: pb.PutRequest, auth: AuthInfo | None = None) -> pb.PutResponse: ...
    async def delete_range(
        self, req: pb.DeleteRangeRequest, auth: AuthInfo | None = None
    ) -> pb.DeleteRangeResponse: ...
    async def txn(self, req: pb.TxnRequest, auth: AuthInfo | None = None) -> pb.TxnResponse: ...
    async def compact(
        self, req: pb.CompactionRequest, auth: AuthInfo | None = None
    ) -> pb.CompactionResponse: ...

    # Optional (found with getattr by api/v3/kv.py, implemented by EtcdServer):
    # async range_encoded(req, auth) -> bytes, the serialized RangeResponse of ``range``.

    # --- Watch ---
    def watch_stream(self, auth: AuthInfo | None = None) -> WatchStream: ...
    async def settle(self) -> None:
        """Return once every response already sent is visible to reads (a watch created
        after a write's response must not see that write as a new event)."""
        ...

    # --- Lease ---
    async def lease_grant(self, req: pb.LeaseGrantRequest) -> pb.LeaseGrantResponse: ...
    async def lease_revoke(self, req: pb.LeaseRevokeRequest) -> pb.LeaseRevokeResponse: ...
    async def lease_renew(self, lease_id: int) -> pb.LeaseKeepAliveResponse: ...
    async def lease_time_to_live(
        self, req: pb.LeaseTimeToLiveRequest
    ) -> pb.LeaseTimeToLiveResponse: ...
    async def lease_leases(self, req: pb.LeaseLeasesRequest) -> pb.LeaseLeasesResponse: ...

    # --- Cluster ---
    # Optional (found with getattr by api/v3/cluster.py, implemented by EtcdServer):
    # member_add / member_remove / member_update / member_promote(req) -> etcd's responses,
    # and has_leader() -> bool (the "hasleader" metadata check).
    async def member_list(self, req: pb.MemberListRequest) -> pb.MemberListResponse: ...

    # --- Maintenance ---
    async def status(self, req: pb.StatusRequest) -> pb.StatusResponse: ...
    async def hash(self, req: pb.HashRequest) -> pb.HashResponse: ...
    async def hash_kv(self, req: pb.HashKVRequest) -> pb.HashKVResponse: ...
    async def defragment(self, req: pb.DefragmentRequest) -> pb.DefragmentResponse: ...
    async def alarm(self, req: pb.AlarmRequest) -> pb.AlarmResponse: ...
    def snapshot(self) -> AsyncIterator[pb.SnapshotResponse]: ...
    async def move_leader(self, req: pb.MoveLeaderRequest) -> pb.MoveLeaderResponse: ...

    # --- health / identity (for /health, /version, /metrics, grpc.health.v1) ---
    def is_healthy(self) -> tuple[bool, str]:
        """(ok, reason): a leader is known, no NOSPACE/CORRUPT alarm, member started."""
        ...

    def header(self) -> pb.ResponseHeader:
        """A fresh header (cluster_id, member_id, current revision, raft_term)."""
        ...

    @property
    def server_version(self) -> str: ...

    @property
    def cluster_version(self) -> str: ...

    @property
    def metrics(self) -> Any:
        """The member's metrics registry (rendered by /metrics)."""
        ...
