"""--wal-dir: the raft log lives on its own path and a restart finds it (etcd and etcdpy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Ctl, have_etcd, new_member


@pytest.mark.parametrize("kind", ["etcdpy", "etcd"])
def test_wal_dir_survives_restart(kind: str, tmp_path: Path) -> None:
    if kind == "etcd" and not have_etcd():
        pytest.skip("real etcd not installed")
    wal_dir = tmp_path / "wal-elsewhere"
    m = new_member(kind, tmp_path)
    m.start([f"--wal-dir={wal_dir}"])
    try:
        ctl = Ctl(m.client_url)
        ctl.out("put", "wd/a", "1")
        m.stop()
        assert any(p.is_file() and p.stat().st_size > 0 for p in wal_dir.rglob("*"))
        m.start([f"--wal-dir={wal_dir}"])
        assert ctl.out("get", "wd/a", "--print-value-only") == "1\n"
    finally:
        m.stop()
