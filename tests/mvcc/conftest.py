"""Fixtures shared by the watch hub's tests (plain and coalescing streams)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mvcc.test_watch_hub import Env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A fresh store with its watch hub."""
    e = Env(str(tmp_path / "kv"))
    yield e
    e.close()
