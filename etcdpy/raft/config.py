"""RaftConfig: every knob of one Raft node, frozen, checked by ``validate()``.

Names follow etcd's ``raft.Config``. The random source is injected (``rng``) so that a
seeded simulation replays exactly: the core never touches the global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from random import Random

from etcdpy.raft.errors import ConfigInvalid
from etcdpy.raft.types import NONE


class ReadOnlyOption(IntEnum):
    """How ReadIndex confirms leadership (etcd's ``ReadOnlyOption``)."""

    SAFE = 0
    """A heartbeat round to a quorum proves leadership before answering."""
    LEASE_BASED = 1
    """Trust the leader lease (needs check_quorum; unsafe under unbounded clock drift)."""


NO_LIMIT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class RaftConfig:
    id: int
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    max_size_per_msg: int = 1 << 20
    max_committed_size_per_ready: int = 0
    """0 means: same as max_size_per_msg (etcd's default)."""
    max_uncommitted_entries_size: int = 0
    """0 means no limit."""
    max_inflight_msgs: int = 256
    check_quorum: bool = True
    pre_vote: bool = True
    read_only_option: ReadOnlyOption = ReadOnlyOption.SAFE
    disable_proposal_forwarding: bool = False
    step_down_on_removal: bool = True
    """A leader removed from (or demoted out of) the voters steps down when it applies the
    change, instead of leading a group it is no longer part of (etcd raft 3.6 option)."""
    rng: Random = field(kw_only=True)

    def validate(self) -> None:
        """Raise ConfigInvalid with etcd's wording when the config cannot work."""
        if self.id == NONE:
            raise ConfigInvalid("cannot use none as id")
        if self.heartbeat_tick <= 0:
            raise ConfigInvalid("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigInvalid("election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise ConfigInvalid("max inflight messages must be greater than 0")
        if self.max_size_per_msg < 0 or self.max_uncommitted_entries_size < 0:
            raise ConfigInvalid("sizes must not be negative")
        if self.read_only_option == ReadOnlyOption.LEASE_BASED and not self.check_quorum:
            raise ConfigInvalid(
                "CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased"
            )
        if self.applied < 0:
            raise ConfigInvalid("applied must not be negative")

    @property
    def effective_max_committed_size_per_ready(self) -> int:
        return self.max_committed_size_per_ready or self.max_size_per_msg or NO_LIMIT

    @property
    def effective_max_uncommitted_entries_size(self) -> int:
        return self.max_uncommitted_entries_size or NO_LIMIT
