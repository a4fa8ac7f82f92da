"""The simulator must catch the Raft bugs PySyncObj shipped (ARCHITECTURE "Lessons").

Each mutation breaks the system on purpose, in the application or in the core:

* ``forget_vote`` (#84): term/vote not durable, a restart forgets the vote;
* ``send_before_persist`` (#201): messages leave before the Ready is on disk;
* ``commit_regress`` (#166): the commit index follows whatever a (stale) message says;
* ``old_term_commit`` (#169): a leader commits entries of older terms by counting;
* ``vote_without_log_check``: votes ignore whether the candidate's log is up to date;
* ``read_without_quorum``: ReadIndex answers without confirming leadership.

The first four are found by ordinary random seeds; #169 needs a precise interleaving
(thesis figure 3.7), and a stale read needs a deposed leader asked at the right time, so
directed scenarios drive the simulator into those; each script must also pass against the
unmodified core.
"""

from __future__ import annotations

from typing import Any

import pytest

from etcdpy.raft.types import Message, MessageType
from tests.support.sim import Params, SimFailure, Simulation, run_scenario


def _first_caught(mutation: str, seeds: range) -> SimFailure | None:
    for seed in seeds:
        try:
            run_scenario(seed, mutation=mutation)
        except SimFailure as f:
            return f
    return None


@pytest.mark.parametrize(
    ("mutation", "props"),
    [
        (
            "forget_vote",
            ("vote-stable", "election-safety", "leader-completeness", "committed-entry"),
        ),
        ("send_before_persist", ("persist-before-send",)),
        ("commit_regress", ("commit-monotonic",)),
        (
            "vote_without_log_check",
            ("leader-completeness", "committed-entry", "state-machine-safety"),
        ),
    ],
)
def test_random_seeds_catch_mutation(mutation: str, props: tuple[str, ...]) -> None:
    f = _first_caught(mutation, range(60))
    assert f is not None, f"{mutation} survived 60 seeds"
    assert "InvariantViolation" in f.reason, f.reason
    assert any(p in f.reason for p in props), f.reason


def _quiet_params(mutation: str | None) -> Params:
    """Three nodes, no random faults, one entry per MsgApp, no pre-vote or check-quorum."""
    return Params(
        n=3,
        chaos_ticks=0,
        p_drop=0.0,
        p_dup=0.0,
        max_delay=1,
        p_slow=0.0,
        crash_rate=0.0,
        p_crash_mid_ready=0.0,
        partition_rate=0.0,
        p_propose=0.0,
        p_read=0.0,
        p_transfer=0.0,
        p_compact=0.0,
        conf_changes=False,
        pre_vote=False,
        check_quorum=False,
        p_durable_sm=1.0,
        max_size_per_msg=1,
        p_campaign=0.0,
        election_tick=10,
        heartbeat_tick=2,
        bootstrap_api=False,
        max_uncommitted_size=0,
        disable_forwarding=False,
        mutation=mutation,
    )


def _figure_3_7(sim: Simulation) -> None:
    """A (1) writes e at index 3 in term 2 alone; C (3) leads term 3 with its own entry at
    3 alone; A leads term 4 and replicates e to B (2) in a message carrying e only; A is cut
    off before B gets A's term-4 entry; C then wins term 5 with B's vote. A correct leader
    never counted e as committed; a #169 leader did, and C erases it."""

    def is_leader(nid: int) -> Any:
        return lambda kind, detail: kind == "leader" and detail.startswith(f"node {nid} ")

    sim.campaign(1)
    sim.run_until_event(is_leader(1))
    sim.run_for(5)  # the term-2 empty entry (index 2) reaches everyone
    sim.partition([1], [2, 3])
    sim.propose(sim.nodes[1])  # e: index 3, term 2, only on A
    sim.run_for(2)
    sim.campaign(3)
    sim.run_until_event(is_leader(3))
    sim.partition([1], [2], [3])  # C's term-3 entry at index 3 stays on C
    sim.run_for(3)
    sim.crash(sim.nodes[1], "(scripted)")  # A forgets it led term 2
    sim.restart(sim.nodes[1])
    sim.partition([1, 2], [3])
    _win(sim, 1)  # term 3 is refused (B voted for C), term 4 wins with B's vote

    def ack_of_e(kind: str, detail: Any) -> bool:
        return (
            kind == "deliver"
            and isinstance(detail, Message)
            and detail.type == MessageType.MsgAppResp
            and detail.from_ == 2
            and detail.to == 1
            and not detail.reject
            and detail.index == 3
        )

    sim.run_until_event(ack_of_e)
    sim.partition([1], [2, 3])  # A is cut off before B gets the term-4 entry
    sim.run_for(1)
    sim.crash(sim.nodes[3], "(scripted)")  # C forgets it led term 3
    sim.restart(sim.nodes[3])
    _win(sim, 3)  # term 4 is refused (B voted for A), term 5 wins with B's vote
    sim.run_for(5)


def _win(sim: Simulation, nid: int) -> None:
    for _ in range(4):
        sim.campaign(nid)
        sim.run_for(4)
        if sim.nodes[nid].is_leader:
            return
    raise AssertionError(f"scripted scenario: node {nid} did not win an election")


def test_figure_3_7_passes_on_the_real_core() -> None:
    Simulation(1, params=_quiet_params(None)).run(_figure_3_7)


def test_figure_3_7_catches_old_term_commit() -> None:
    with pytest.raises(SimFailure, match=r"leader-completeness|committed-entry"):
        Simulation(1, params=_quiet_params("old_term_commit")).run(_figure_3_7)


def _stale_read(sim: Simulation) -> None:
    """Leader A (1) is cut off; B (2) wins a later term and commits; A, still believing it
    leads (no check-quorum), is asked for a ReadIndex. A correct A needs a heartbeat quorum
    and never answers; a broken one answers with its stale commit index."""
    sim.campaign(1)
    sim.run_for(20)
    sim.partition([1], [2, 3])
    _win(sim, 2)
    sim.propose(sim.nodes[2])
    sim.run_for(20)
    node = sim.nodes[1]
    assert node.rn is not None and node.is_leader
    sim.checker.on_read_issued(1, b"stale?")
    node.rn.read_index(b"stale?")
    sim.handle_ready(node)
    sim.run_for(20)


def test_stale_read_passes_on_the_real_core() -> None:
    Simulation(1, params=_quiet_params(None)).run(_stale_read)


def test_stale_read_catches_read_without_quorum() -> None:
    with pytest.raises(SimFailure, match="read-index-stale"):
        Simulation(1, params=_quiet_params("read_without_quorum")).run(_stale_read)
