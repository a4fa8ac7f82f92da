"""Membership changes applied from committed ConfChange entries (etcd's applyConfChange).

The raft core's own configuration is changed by the driver (``RawNode.apply_conf_change``);
this records the member records in the backend, in the batch's transaction.
"""

from __future__ import annotations

from etcdpy import errors
from etcdpy.membership.cluster import (
    ErrIDNotFound,
    ErrIDRemoved,
    ErrPeerURLExists,
    Member,
    MembershipError,
    RaftCluster,
)
from etcdpy.raft.types import ConfChange, ConfChangeType, ConfChangeV2
from etcdpy.storage.backend import WriteTxn


def conf_change_id(cc: ConfChange | ConfChangeV2) -> int:
    """The request id a proposer waits on (etcd puts it in ``ConfChange.ID``)."""
    return cc.id if isinstance(cc, ConfChange) else 0


def _member_from_context(cluster: RaftCluster, node_id: int, context: bytes) -> Member:
    if context:
        m = Member.from_json(context)
        if m.id == node_id:
            return m
    known = cluster.members.get(node_id)
    return known if known is not None else Member(id=node_id)


def map_membership_error(exc: MembershipError) -> errors.EtcdError:
    if isinstance(exc, ErrIDRemoved):
        return errors.ErrGRPCMemberNotFound()
    if isinstance(exc, ErrIDNotFound):
        return errors.ErrGRPCMemberNotFound()
    if isinstance(exc, ErrPeerURLExists):
        return errors.ErrGRPCPeerURLExist()
    return errors.ErrGRPCMemberExist()


def apply_conf_change(
    cluster: RaftCluster, wtxn: WriteTxn, cc: ConfChange | ConfChangeV2
) -> errors.EtcdError | None:
    if isinstance(cc, ConfChangeV2):
        for ch in cc.changes:
            _apply_one(cluster, wtxn, ch.type, ch.node_id, cc.context)
        return None
    return _apply_one(cluster, wtxn, cc.type, cc.node_id, cc.context)


def _apply_one(
    cluster: RaftCluster, wtxn: WriteTxn, kind: ConfChangeType, node_id: int, context: bytes
) -> errors.EtcdError | None:
    if kind in (ConfChangeType.AddNode, ConfChangeType.AddLearnerNode):
        m = _member_from_context(cluster, node_id, context)
        existing = cluster.members.get(node_id)
        if existing is not None and kind == ConfChangeType.AddNode and existing.is_learner:
            cluster.promote(node_id, wtxn)
            return None
        if kind == ConfChangeType.AddLearnerNode and not m.is_learner:
            m = Member(m.id, m.name, m.peer_urls, m.client_urls, True)
        cluster.add_member(m, wtxn)
        return None
    if kind == ConfChangeType.RemoveNode:
        if node_id not in cluster.members:
            return errors.ErrGRPCMemberNotFound()
        cluster.remove_member(node_id, wtxn)
        return None
    if kind == ConfChangeType.UpdateNode:
        m = _member_from_context(cluster, node_id, context)
        cluster.update_raft_attributes(node_id, m.peer_urls, wtxn)
        return None
    return None
