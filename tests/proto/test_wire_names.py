"""Wire names and field numbers checked against a table written from etcd 3.5's .proto files.

A client (etcdctl, clientv3, python-etcd3) only sees full method names and field
numbers, so those are what must match etcd; the table is independent of our .proto text.
"""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor

from etcdpy._pb.authpb import auth_pb2
from etcdpy._pb.etcdserverpb import etcdserver_pb2, raft_internal_pb2, rpc_pb2
from etcdpy._pb.membershippb import membership_pb2
from etcdpy._pb.mvccpb import kv_pb2
from etcdpy._pb.raftpb import raft_pb2
from etcdpy._pb.v3electionpb import v3election_pb2
from etcdpy._pb.v3lockpb import v3lock_pb2

# (message full name, field name) -> field number, from etcd v3.5 sources.
FIELDS: dict[tuple[str, str], int] = {
    ("mvccpb.KeyValue", "key"): 1,
    ("mvccpb.KeyValue", "create_revision"): 2,
    ("mvccpb.KeyValue", "mod_revision"): 3,
    ("mvccpb.KeyValue", "version"): 4,
    ("mvccpb.KeyValue", "value"): 5,
    ("mvccpb.KeyValue", "lease"): 6,
    ("mvccpb.Event", "type"): 1,
    ("mvccpb.Event", "kv"): 2,
    ("mvccpb.Event", "prev_kv"): 3,
    ("etcdserverpb.ResponseHeader", "cluster_id"): 1,
    ("etcdserverpb.ResponseHeader", "member_id"): 2,
    ("etcdserverpb.ResponseHeader", "revision"): 3,
    ("etcdserverpb.ResponseHeader", "raft_term"): 4,
    ("etcdserverpb.RangeRequest", "key"): 1,
    ("etcdserverpb.RangeRequest", "range_end"): 2,
    ("etcdserverpb.RangeRequest", "limit"): 3,
    ("etcdserverpb.RangeRequest", "revision"): 4,
    ("etcdserverpb.RangeRequest", "sort_order"): 5,
    ("etcdserverpb.RangeRequest", "sort_target"): 6,
    ("etcdserverpb.RangeRequest", "serializable"): 7,
    ("etcdserverpb.RangeRequest", "keys_only"): 8,
    ("etcdserverpb.RangeRequest", "count_only"): 9,
    ("etcdserverpb.RangeRequest", "min_mod_revision"): 10,
    ("etcdserverpb.RangeRequest", "max_create_revision"): 13,
    ("etcdserverpb.RangeResponse", "kvs"): 2,
    ("etcdserverpb.RangeResponse", "more"): 3,
    ("etcdserverpb.RangeResponse", "count"): 4,
    ("etcdserverpb.PutRequest", "key"): 1,
    ("etcdserverpb.PutRequest", "value"): 2,
    ("etcdserverpb.PutRequest", "lease"): 3,
    ("etcdserverpb.PutRequest", "prev_kv"): 4,
    ("etcdserverpb.PutRequest", "ignore_value"): 5,
    ("etcdserverpb.PutRequest", "ignore_lease"): 6,
    ("etcdserverpb.DeleteRangeResponse", "prev_kvs"): 3,
    ("etcdserverpb.RequestOp", "request_txn"): 4,
    ("etcdserverpb.Compare", "target"): 2,
    ("etcdserverpb.Compare", "lease"): 8,
    ("etcdserverpb.Compare", "range_end"): 64,
    ("etcdserverpb.TxnResponse", "succeeded"): 2,
    ("etcdserverpb.WatchRequest", "progress_request"): 3,
    ("etcdserverpb.WatchCreateRequest", "key"): 1,
    ("etcdserverpb.WatchCreateRequest", "range_end"): 2,
    ("etcdserverpb.WatchCreateRequest", "start_revision"): 3,
    ("etcdserverpb.WatchCreateRequest", "progress_notify"): 4,
    ("etcdserverpb.WatchCreateRequest", "filters"): 5,
    ("etcdserverpb.WatchCreateRequest", "prev_kv"): 6,
    ("etcdserverpb.WatchCreateRequest", "watch_id"): 7,
    ("etcdserverpb.WatchCreateRequest", "fragment"): 8,
    ("etcdserverpb.WatchResponse", "compact_revision"): 5,
    ("etcdserverpb.WatchResponse", "cancel_reason"): 6,
    ("etcdserverpb.WatchResponse", "fragment"): 7,
    ("etcdserverpb.WatchResponse", "events"): 11,
    ("etcdserverpb.LeaseGrantRequest", "TTL"): 1,
    ("etcdserverpb.LeaseGrantRequest", "ID"): 2,
    ("etcdserverpb.LeaseGrantResponse", "error"): 4,
    ("etcdserverpb.LeaseCheckpoint", "remaining_TTL"): 2,
    ("etcdserverpb.LeaseTimeToLiveResponse", "grantedTTL"): 4,
    ("etcdserverpb.LeaseTimeToLiveResponse", "keys"): 5,
    ("etcdserverpb.Member", "ID"): 1,
    ("etcdserverpb.Member", "name"): 2,
    ("etcdserverpb.Member", "peerURLs"): 3,
    ("etcdserverpb.Member", "clientURLs"): 4,
    ("etcdserverpb.Member", "isLearner"): 5,
    ("etcdserverpb.MemberListRequest", "linearizable"): 1,
    ("etcdserverpb.StatusResponse", "version"): 2,
    ("etcdserverpb.StatusResponse", "dbSize"): 3,
    ("etcdserverpb.StatusResponse", "leader"): 4,
    ("etcdserverpb.StatusResponse", "raftIndex"): 5,
    ("etcdserverpb.StatusResponse", "raftTerm"): 6,
    ("etcdserverpb.StatusResponse", "raftAppliedIndex"): 7,
    ("etcdserverpb.StatusResponse", "errors"): 8,
    ("etcdserverpb.StatusResponse", "dbSizeInUse"): 9,
    ("etcdserverpb.StatusResponse", "isLearner"): 10,
    ("etcdserverpb.AlarmRequest", "memberID"): 2,
    ("etcdserverpb.AuthUserAddRequest", "hashedPassword"): 4,
    ("etcdserverpb.AuthStatusResponse", "authRevision"): 3,
    ("etcdserverpb.MoveLeaderRequest", "targetID"): 1,
    ("etcdserverpb.SnapshotResponse", "remaining_bytes"): 2,
    ("etcdserverpb.HashKVResponse", "compact_revision"): 3,
    ("etcdserverpb.RequestHeader", "auth_revision"): 3,
    ("etcdserverpb.InternalRaftRequest", "header"): 100,
    ("etcdserverpb.InternalRaftRequest", "v2"): 2,
    ("etcdserverpb.InternalRaftRequest", "lease_checkpoint"): 11,
    ("etcdserverpb.InternalRaftRequest", "auth_enable"): 1000,
    ("etcdserverpb.InternalRaftRequest", "authenticate"): 1012,
    ("etcdserverpb.InternalRaftRequest", "auth_status"): 1013,
    ("etcdserverpb.InternalRaftRequest", "auth_role_revoke_permission"): 1204,
    ("etcdserverpb.InternalRaftRequest", "cluster_member_attr_set"): 1301,
    ("etcdserverpb.InternalRaftRequest", "downgrade_info_set"): 1302,
    ("etcdserverpb.InternalAuthenticateRequest", "simple_token"): 3,
    ("etcdserverpb.Request", "PrevExist"): 8,
    ("etcdserverpb.Request", "Refresh"): 17,
    ("etcdserverpb.Metadata", "ClusterID"): 2,
    ("membershippb.ClusterMemberAttrSetRequest", "member_ID"): 1,
    ("membershippb.Attributes", "client_urls"): 2,
    ("authpb.User", "options"): 4,
    ("authpb.Permission", "permType"): 1,
    ("authpb.Role", "keyPermission"): 2,
    ("v3lockpb.LockRequest", "lease"): 2,
    ("v3electionpb.LeaderKey", "rev"): 3,
    ("v3electionpb.LeaderKey", "lease"): 4,
    ("raftpb.Entry", "Type"): 1,
    ("raftpb.Entry", "Term"): 2,
    ("raftpb.Entry", "Index"): 3,
    ("raftpb.Entry", "Data"): 4,
    ("raftpb.Message", "logTerm"): 5,
    ("raftpb.Message", "snapshot"): 9,
    ("raftpb.Message", "rejectHint"): 11,
    ("raftpb.Message", "context"): 12,
    ("raftpb.HardState", "commit"): 3,
    ("raftpb.ConfState", "auto_leave"): 5,
    ("raftpb.ConfChange", "id"): 1,
    ("raftpb.ConfChange", "type"): 2,
    ("raftpb.ConfChangeV2", "changes"): 2,
    ("raftpb.SnapshotMetadata", "conf_state"): 1,
}

METHODS = [
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/DeleteRange",
    "/etcdserverpb.KV/Txn",
    "/etcdserverpb.KV/Compact",
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseGrant",
    "/etcdserverpb.Lease/LeaseRevoke",
    "/etcdserverpb.Lease/LeaseKeepAlive",
    "/etcdserverpb.Lease/LeaseTimeToLive",
    "/etcdserverpb.Lease/LeaseLeases",
    "/etcdserverpb.Cluster/MemberAdd",
    "/etcdserverpb.Cluster/MemberRemove",
    "/etcdserverpb.Cluster/MemberUpdate",
    "/etcdserverpb.Cluster/MemberList",
    "/etcdserverpb.Cluster/MemberPromote",
    "/etcdserverpb.Maintenance/Alarm",
    "/etcdserverpb.Maintenance/Status",
    "/etcdserverpb.Maintenance/Defragment",
    "/etcdserverpb.Maintenance/Hash",
    "/etcdserverpb.Maintenance/HashKV",
    "/etcdserverpb.Maintenance/Snapshot",
    "/etcdserverpb.Maintenance/MoveLeader",
    "/etcdserverpb.Maintenance/Downgrade",
    "/etcdserverpb.Auth/AuthEnable",
    "/etcdserverpb.Auth/AuthDisable",
    "/etcdserverpb.Auth/AuthStatus",
    "/etcdserverpb.Auth/Authenticate",
    "/etcdserverpb.Auth/UserAdd",
    "/etcdserverpb.Auth/UserGet",
    "/etcdserverpb.Auth/UserList",
    "/etcdserverpb.Auth/UserDelete",
    "/etcdserverpb.Auth/UserChangePassword",
    "/etcdserverpb.Auth/UserGrantRole",
    "/etcdserverpb.Auth/UserRevokeRole",
    "/etcdserverpb.Auth/RoleAdd",
    "/etcdserverpb.Auth/RoleGet",
    "/etcdserverpb.Auth/RoleList",
    "/etcdserverpb.Auth/RoleDelete",
    "/etcdserverpb.Auth/RoleGrantPermission",
    "/etcdserverpb.Auth/RoleRevokePermission",
    "/v3lockpb.Lock/Lock",
    "/v3lockpb.Lock/Unlock",
    "/v3electionpb.Election/Campaign",
    "/v3electionpb.Election/Proclaim",
    "/v3electionpb.Election/Leader",
    "/v3electionpb.Election/Observe",
    "/v3electionpb.Election/Resign",
]

STREAMING = {  # method -> (client streaming, server streaming)
    "/etcdserverpb.Watch/Watch": (True, True),
    "/etcdserverpb.Lease/LeaseKeepAlive": (True, True),
    "/etcdserverpb.Maintenance/Snapshot": (False, True),
    "/v3electionpb.Election/Observe": (False, True),
}

MODULES = [
    kv_pb2,
    auth_pb2,
    rpc_pb2,
    raft_internal_pb2,
    etcdserver_pb2,
    membership_pb2,
    v3lock_pb2,
    v3election_pb2,
    raft_pb2,
]


def _messages() -> dict[str, Descriptor]:
    out: dict[str, Descriptor] = {}

    def walk(d: Descriptor) -> None:
        out[d.full_name] = d
        for n in d.nested_types:
            walk(n)

    for mod in MODULES:
        for d in mod.DESCRIPTOR.message_types_by_name.values():
            walk(d)
    return out


@pytest.mark.parametrize(("msg", "field"), sorted(FIELDS))
def test_field_number(msg: str, field: str) -> None:
    desc = _messages()[msg]
    assert desc.fields_by_name[field].number == FIELDS[(msg, field)]


def _methods() -> dict[str, tuple[bool, bool]]:
    out: dict[str, tuple[bool, bool]] = {}
    for mod in MODULES:
        for svc in mod.DESCRIPTOR.services_by_name.values():
            for m in svc.methods:
                path = f"/{svc.full_name}/{m.name}"
                out[path] = (m.client_streaming, m.server_streaming)
    return out


def test_method_paths_exact() -> None:
    assert sorted(_methods()) == sorted(METHODS)


def test_streaming_shapes() -> None:
    got = _methods()
    for path, shape in got.items():
        assert shape == STREAMING.get(path, (False, False)), path


def test_enums() -> None:
    assert kv_pb2.Event.DELETE == 1
    assert rpc_pb2.RangeRequest.DESCEND == 2
    assert rpc_pb2.RangeRequest.VALUE == 4
    assert rpc_pb2.Compare.NOT_EQUAL == 3
    assert rpc_pb2.Compare.LEASE == 4
    assert rpc_pb2.WatchCreateRequest.NODELETE == 1
    assert rpc_pb2.CORRUPT == 2
    assert rpc_pb2.AlarmRequest.DEACTIVATE == 2
    assert rpc_pb2.DowngradeRequest.CANCEL == 2
    assert auth_pb2.Permission.READWRITE == 2
    assert raft_pb2.MsgPreVoteResp == 18
    assert raft_pb2.ConfChangeAddLearnerNode == 3
    assert raft_pb2.EntryConfChangeV2 == 2


def test_wire_bytes_match_etcd_encoding() -> None:
    # PutRequest{key:"foo", value:"bar", lease:1}: hand-encoded per field numbers.
    raw = rpc_pb2.PutRequest(key=b"foo", value=b"bar", lease=1).SerializeToString()
    assert raw == b"\x0a\x03foo\x12\x03bar\x18\x01"
    hdr = raft_internal_pb2.RequestHeader(ID=5)
    req = raft_internal_pb2.InternalRaftRequest(header=hdr).SerializeToString()
    assert req == b"\xa2\x06\x02\x08\x05"  # field 100, wire type 2
