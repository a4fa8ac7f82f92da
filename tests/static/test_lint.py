"""ruff and mypy run as part of the test command, so a red lint is a red build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# ARCHITECTURE 3.9: mypy --strict on the core packages (those that exist so far); the rest of
# etcdpy is held to it too, as a bug in api/ showed that a package outside the set can hide.
STRICT_PACKAGES = ["raft", "codec", "storage", "mvcc", "lease", "auth", "membership", "server",
                   "api", "config", "cli", "observability", "transport", "util", "embed.py",
                   "errors.py", "version.py", "__main__.py"]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_clean() -> None:
    res = _run(["ruff", "check", "etcdpy", "tests", "benchmarks", "proto"])
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_core() -> None:
    targets = [f"etcdpy/{p}" for p in STRICT_PACKAGES if (ROOT / "etcdpy" / p).exists()]
    res = _run([sys.executable, "-m", "mypy", "--strict", *targets])
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
