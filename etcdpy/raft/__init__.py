"""etcdpy's Raft core: pure, deterministic, sans-IO (modelled on etcd's raft package).

Public API: ``RawNode`` + ``RaftConfig`` + ``MemoryStorage`` and the record types.
"""

from __future__ import annotations

from etcdpy.raft.confchange_codec import (
    decode as decode_conf_change_entry,
)
from etcdpy.raft.confchange_codec import (
    decode_conf_change,
    decode_conf_change_v2,
    encode_conf_change,
    encode_conf_change_v2,
)
from etcdpy.raft.confchange_codec import (
    encode as encode_conf_change_entry,
)
from etcdpy.raft.config import RaftConfig, ReadOnlyOption
from etcdpy.raft.errors import (
    ConfChangeError,
    ConfigInvalid,
    LogInvariantError,
    ProposalDropped,
    RaftError,
    StepLocalMsg,
    StepPeerNotFound,
)
from etcdpy.raft.rawnode import Peer, ProgressStatus, RawNode, Status
from etcdpy.raft.storage import (
    ErrCompacted,
    ErrSnapOutOfDate,
    ErrSnapshotTemporarilyUnavailable,
    ErrUnavailable,
    LogStorage,
    MemoryStorage,
)
from etcdpy.raft.tracker import ProgressState
from etcdpy.raft.types import (
    EMPTY_HARD_STATE,
    EMPTY_SNAPSHOT,
    NONE,
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)

__all__ = [
    "EMPTY_HARD_STATE",
    "EMPTY_SNAPSHOT",
    "NONE",
    "ConfChange",
    "ConfChangeError",
    "ConfChangeSingle",
    "ConfChangeTransition",
    "ConfChangeType",
    "ConfChangeV2",
    "ConfState",
    "ConfigInvalid",
    "Entry",
    "EntryType",
    "ErrCompacted",
    "ErrSnapOutOfDate",
    "ErrSnapshotTemporarilyUnavailable",
    "ErrUnavailable",
    "HardState",
    "LogInvariantError",
    "LogStorage",
    "MemoryStorage",
    "Message",
    "MessageType",
    "Peer",
    "ProgressState",
    "ProgressStatus",
    "ProposalDropped",
    "RaftConfig",
    "RaftError",
    "RawNode",
    "ReadOnlyOption",
    "ReadState",
    "Ready",
    "Snapshot",
    "SnapshotMetadata",
    "SoftState",
    "StateType",
    "Status",
    "StepLocalMsg",
    "StepPeerNotFound",
    "decode_conf_change",
    "decode_conf_change_entry",
    "decode_conf_change_v2",
    "encode_conf_change",
    "encode_conf_change_entry",
    "encode_conf_change_v2",
]
