"""The Raft core's records: entries, messages, hard state, snapshots and the Ready batch.

Names and numeric values follow etcd's ``raftpb`` so a reader can hold etcd's
``raft.proto`` next to this file. Every record is a frozen, slotted dataclass with
tuples for sequences: the core hands them out and never mutates them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

NONE = 0
"""The zero node ID: "no leader", "voted for nobody"."""


class EntryType(IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1
    CONF_CHANGE_V2 = 2


class MessageType(IntEnum):
    """etcd's raftpb.MessageType, same numbers."""

    MsgHup = 0
    MsgBeat = 1
    MsgProp = 2
    MsgApp = 3
    MsgAppResp = 4
    MsgVote = 5
    MsgVoteResp = 6
    MsgSnap = 7
    MsgHeartbeat = 8
    MsgHeartbeatResp = 9
    MsgUnreachable = 10
    MsgSnapStatus = 11
    MsgCheckQuorum = 12
    MsgTransferLeader = 13
    MsgTimeoutNow = 14
    MsgReadIndex = 15
    MsgReadIndexResp = 16
    MsgPreVote = 17
    MsgPreVoteResp = 18


class StateType(IntEnum):
    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2
    PRE_CANDIDATE = 3


#: Go raft's names of the states (``StateType.String``), as etcd prints them.
STATE_NAMES: dict[StateType, str] = {
    StateType.FOLLOWER: "StateFollower",
    StateType.CANDIDATE: "StateCandidate",
    StateType.LEADER: "StateLeader",
    StateType.PRE_CANDIDATE: "StatePreCandidate",
}


class ConfChangeType(IntEnum):
    AddNode = 0
    RemoveNode = 1
    UpdateNode = 2
    AddLearnerNode = 3


class ConfChangeTransition(IntEnum):
    """How a ConfChangeV2 with several changes is carried out (etcd's values)."""

    Auto = 0
    JointImplicit = 1
    JointExplicit = 2


@dataclass(frozen=True, slots=True)
class Entry:
    term: int = 0
    index: int = 0
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on disk before any message that depends on it leaves the node."""

    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == NONE and self.commit == 0


EMPTY_HARD_STATE = HardState()


@dataclass(frozen=True, slots=True)
class ConfState:
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    voters_outgoing: tuple[int, ...] = ()
    learners_next: tuple[int, ...] = ()
    auto_leave: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotMetadata:
    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    data: bytes = b""
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    def is_empty(self) -> bool:
        return self.metadata.index == 0


EMPTY_SNAPSHOT = Snapshot()


@dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    to: int = NONE
    from_: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A single-step membership change (etcd's v1 ConfChange)."""

    type: ConfChangeType
    node_id: int
    context: bytes = b""
    id: int = 0


@dataclass(frozen=True, slots=True)
class ConfChangeSingle:
    type: ConfChangeType
    node_id: int


@dataclass(frozen=True, slots=True)
class ConfChangeV2:
    """Several changes at once; more than one voter change goes through joint consensus.

    An empty ConfChangeV2 leaves a joint configuration.
    """

    changes: tuple[ConfChangeSingle, ...] = ()
    transition: ConfChangeTransition = ConfChangeTransition.Auto
    context: bytes = b""


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth telling the application about; never persisted."""

    lead: int = NONE
    raft_state: StateType = StateType.FOLLOWER


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once the applied index reaches ``index``."""

    index: int
    request_ctx: bytes


@dataclass(frozen=True, slots=True)
class Ready:
    """One batch of work for the application.

    Order of duties (etcd's contract): persist ``hard_state``, ``entries`` and
    ``snapshot`` (one durable write); then send ``messages``; then apply
    ``committed_entries``; then call ``RawNode.advance(ready)``.
    """

    soft_state: SoftState | None = None
    hard_state: HardState = EMPTY_HARD_STATE
    read_states: tuple[ReadState, ...] = ()
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot = EMPTY_SNAPSHOT
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    must_sync: bool = False
