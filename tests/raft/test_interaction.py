"""Runs the interaction scripts in tests/raft/testdata (ETCDPY_REWRITE=1 to regenerate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.raft.datadriven import run_file
from tests.raft.interaction import Env

TESTDATA = Path(__file__).parent / "testdata"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.name)
def test_interaction(path: Path) -> None:
    env = Env()
    run_file(path, env.handle)
