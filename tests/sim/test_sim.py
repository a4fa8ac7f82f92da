"""Seeded deterministic simulation of the Raft core (ARCHITECTURE 3.9 item 4).

CI runs seeds 0..1999 in 20 chunks. ``ETCDPY_SIM_SEEDS`` overrides the list: a count
(``5000`` -> 0..4999), a range (``1000-50000``) or a comma list. ``ETCDPY_SIM_SEED=N``
with ``-k replay`` replays one seed with its full event trace.
"""

from __future__ import annotations

import os

import pytest

from tests.support.sim import SimFailure, Simulation, parse_seeds, run_scenario

CHUNKS = 20
SEEDS = parse_seeds(os.environ.get("ETCDPY_SIM_SEEDS", "2000"))
MUTATION = os.environ.get("ETCDPY_SIM_MUTATION") or None
"""Run the seeds against a deliberately broken system (see tests.support.sim.MUTATIONS)."""


def _chunk(i: int) -> list[int]:
    per = -(-len(SEEDS) // CHUNKS)
    return SEEDS[i * per : (i + 1) * per]


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_seeds(chunk: int) -> None:
    failures: list[SimFailure] = []
    for seed in _chunk(chunk):
        try:
            run_scenario(seed, mutation=MUTATION)
        except SimFailure as f:
            failures.append(f)
    if failures:
        others = ", ".join(str(f.seed) for f in failures[1:])
        more = f"\n(also failing seeds: {others})" if others else ""
        pytest.fail(f"{len(failures)} seed(s) failed; first:\n{failures[0]}{more}", pytrace=False)


def test_replay() -> None:
    """Replay one seed with every event printed: ETCDPY_SIM_SEED=N pytest -k replay -s."""
    raw = os.environ.get("ETCDPY_SIM_SEED")
    if raw is None:
        pytest.skip("set ETCDPY_SIM_SEED=<seed> to replay one scenario")
    run_scenario(int(raw), trace=True, mutation=MUTATION)


def test_same_seed_same_run() -> None:
    """Determinism: the whole event sequence is a function of the seed."""

    def fingerprint(seed: int) -> list[str]:
        lines: list[str] = []
        sim = Simulation(seed, trace=True, out=lines.append)
        sim.run()
        return lines

    for seed in (3, 77):
        assert fingerprint(seed) == fingerprint(seed)
    assert fingerprint(3) != fingerprint(4)


def test_scenarios_exercise_the_features() -> None:
    """The chaos actually happens: crashes, partitions, snapshots, conf changes, reads."""
    total: dict[str, int] = {}
    acked = 0
    for seed in range(40):
        sim = run_scenario(seed)
        for k, v in sim.stats.items():
            total[k] = total.get(k, 0) + v
        acked += len(sim.checker.acked)
    for kind in (
        "crash",
        "restart",
        "partition",
        "compact",
        "confchange",
        "readstate",
        "transfer",
        "leader",
        "drop",
        "persist",
    ):
        assert total.get(kind, 0) > 0, kind
    assert acked > 100


def test_parse_seeds() -> None:
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("10-12") == [10, 11, 12]
    assert parse_seeds("5,9") == [5, 9]
    assert parse_seeds("1-2,7") == [1, 2, 7]
