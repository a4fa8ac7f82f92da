"""Installing a received backend is atomic: a crash at any step, then the start-up recovery,
leaves exactly the old or exactly the new state, and the member's own ID survives."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from etcdpy.storage import backend_install as bi
from etcdpy.storage.backend import BUCKET_CLUSTER, BUCKET_KEY, Backend
from etcdpy.util.failpoints import FailpointPanic, Failpoints

LOCAL = (BUCKET_CLUSTER, b"localMemberID")
POINTS = ["snapBeforeSwapBackend", "snapBetweenSwapRenames", "snapAfterSwapBackend"]
OLD_KEYS = {b"old-%d" % i for i in range(50)}
NEW_KEYS = {b"new-%d" % i for i in range(80)}


def _fill(path: Path, keys: set[bytes], index: int, local_id: bytes) -> None:
    be = Backend(path, unsafe_no_fsync=True)
    try:
        with be.write_txn() as w:
            for k in keys:
                w.unsafe_put(BUCKET_KEY, k, b"v" * 100)
            w.unsafe_put(*LOCAL, local_id)
            w.set_consistent_index(index, 2)
    finally:
        be.close()


def _setup(tmp_path: Path) -> Path:
    """member/kv holds the old state (index 5); member/kv.incoming the leader's (index 10)."""
    member = tmp_path / "member"
    _fill(member / "kv", OLD_KEYS, 5, b"mine")
    leader = tmp_path / "leader"
    _fill(leader, NEW_KEYS, 10, b"leader")
    copy = tmp_path / "copy"
    be = Backend(leader)
    be.snapshot_to(copy)
    be.close()
    data = (copy / "data.mdb").read_bytes()
    w = bi.IncomingWriter(member)
    for i in range(0, len(data), 4096):
        w.write(data[i : i + 4096])
    w.finish(len(data), hashlib.sha256(data).digest())
    return member


def _read(member: Path) -> tuple[set[bytes], bytes | None, int]:
    be = Backend(member / "kv")
    try:
        with be.read_txn() as r:
            keys = {bytes(k) for k, _ in r.unsafe_for_each(BUCKET_KEY)}
            return keys, r.unsafe_get(*LOCAL), r.consistent_index()
    finally:
        be.close()


def test_install_swaps_in_place_and_keeps_local_values(tmp_path: Path) -> None:
    member = _setup(tmp_path)
    be = Backend(member / "kv")
    staged = bi.install_into(be, [LOCAL], min_index=10)
    assert staged.consistent_index == 10
    with be.read_txn() as r:  # the same object, reopened on the new files
        assert {bytes(k) for k, _ in r.unsafe_for_each(BUCKET_KEY)} == NEW_KEYS
        assert r.unsafe_get(*LOCAL) == b"mine"
    be.close()
    assert sorted(p.name for p in member.iterdir()) == ["kv"]


def test_install_refuses_a_payload_behind_the_snapshot(tmp_path: Path) -> None:
    member = _setup(tmp_path)
    be = Backend(member / "kv")
    with pytest.raises(bi.PayloadError):
        bi.install_into(be, [LOCAL], min_index=11)
    with be.read_txn() as r:
        assert {bytes(k) for k, _ in r.unsafe_for_each(BUCKET_KEY)} == OLD_KEYS
    be.close()


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("wal_has_snapshot", [True, False])
def test_crash_during_install_recovers_old_or_new(
    tmp_path: Path, point: str, wal_has_snapshot: bool
) -> None:
    member = _setup(tmp_path)
    fp = Failpoints()
    fp.enable(point, "panic")
    be = Backend(member / "kv")
    with pytest.raises(FailpointPanic):
        bi.install_into(be, [LOCAL], min_index=10, hit=fp.hit)
    be.close()  # the process "dies": nothing more runs, then it starts again
    bi.recover(member, 10 if wal_has_snapshot else 0, [LOCAL])
    keys, local, ci = _read(member)
    assert keys in (OLD_KEYS, NEW_KEYS)
    assert local == b"mine"
    if wal_has_snapshot or point != "snapBeforeSwapBackend":
        # The WAL names the snapshot (or the old dir was already moved): roll forward.
        assert (keys, ci) == (NEW_KEYS, 10)
    else:
        assert (keys, ci) == (OLD_KEYS, 5)
    assert sorted(p.name for p in member.iterdir()) == ["kv"]


@pytest.mark.parametrize("point", POINTS)
def test_killed_process_recovers_old_or_new(tmp_path: Path, point: str) -> None:
    """A real SIGKILL at each step (no finally blocks, no cleanup) in a child process."""
    member = _setup(tmp_path)
    code = textwrap.dedent(
        f"""
        from etcdpy.storage import backend_install as bi
        from etcdpy.storage.backend import Backend
        from etcdpy.util.failpoints import Failpoints
        fp = Failpoints({point + "=kill"!r})
        be = Backend({str(member / "kv")!r})
        bi.install_into(be, [({LOCAL[0]!r}, {LOCAL[1]!r})], min_index=10, hit=fp.hit)
        raise SystemExit("not killed")
        """
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=False)
    assert proc.returncode == -9
    bi.recover(member, 10, [LOCAL])
    assert _read(member) == (NEW_KEYS, b"mine", 10)


def test_torn_or_corrupt_transfer_never_becomes_incoming(tmp_path: Path) -> None:
    member = tmp_path / "member"
    _fill(member / "kv", OLD_KEYS, 5, b"mine")
    w = bi.IncomingWriter(member)
    w.write(b"x" * 100)
    with pytest.raises(bi.PayloadError):
        w.finish(100, hashlib.sha256(b"y" * 100).digest())
    assert not bi.has_incoming(member)
    w = bi.IncomingWriter(member)
    w.write(b"x" * 10)  # the process dies mid-transfer: kv.incoming.tmp stays behind
    assert bi.recover(member, 10, [LOCAL]) == "none"
    assert sorted(p.name for p in member.iterdir()) == ["kv"]
    assert _read(member) == (OLD_KEYS, b"mine", 5)


def test_stale_payload_is_dropped_at_start(tmp_path: Path) -> None:
    member = _setup(tmp_path)
    # The live backend already reached the snapshot index: the staged copy is not needed.
    assert bi.recover(member, 5, [LOCAL]) == "dropped-stale"
    assert _read(member) == (OLD_KEYS, b"mine", 5)


def test_verified_payload_survives_a_crash_while_replacing_the_staged_one(
    tmp_path: Path,
) -> None:
    member = _setup(tmp_path)
    # The crash hit after the newer copy was verified and the older kv.incoming removed,
    # before the rename: the verified copy is promoted and installed.
    os.rename(member / bi.INCOMING, member / bi.INCOMING_TMP)
    assert (member / bi.INCOMING_TMP / bi.VERIFIED).is_file()
    assert bi.recover(member, 10, [LOCAL]) == "installed"
    assert _read(member) == (NEW_KEYS, b"mine", 10)
