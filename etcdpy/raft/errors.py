"""Errors the Raft core raises to its caller (etcd's raft package errors).

These are internal to the consensus layer; the server maps them to client-visible
errors from ``etcdpy/errors.py`` (e.g. a dropped proposal becomes a timeout or retry).
"""

from __future__ import annotations


class RaftError(Exception):
    """Base of every error raised by ``etcdpy.raft``."""


class ProposalDropped(RaftError):
    """The proposal was not accepted: no leader known, forwarding disabled, a leadership
    transfer in progress, this node removed, or the uncommitted-size limit reached
    (etcd's ``ErrProposalDropped``)."""

    def __init__(self, reason: str = "raft proposal dropped") -> None:
        super().__init__(reason)


class StepLocalMsg(RaftError):
    """A local-only message type (MsgHup, MsgBeat, ...) arrived through ``RawNode.step``."""

    def __init__(self) -> None:
        super().__init__("raft: cannot step raft local message")


class StepPeerNotFound(RaftError):
    """A response message came from a peer that is not in the configuration."""

    def __init__(self) -> None:
        super().__init__("raft: cannot step as peer not found")


class ConfigInvalid(RaftError, ValueError):
    """``RaftConfig.validate`` failed."""


class ConfChangeError(RaftError, ValueError):
    """A configuration change cannot be applied to the current configuration."""


class LogInvariantError(RaftError):
    """An internal invariant of the log was violated (etcd panics here).

    Seeing this means a bug in the core or storage that lost acknowledged state; the
    member must stop rather than diverge.
    """
