"""Crash a whole member at etcd's named failpoints (and at random moments), then restart it.

Each case starts ``python -m etcdpy`` with ``ETCDPY_FAILPOINTS="<name>=N*off->kill"`` (the
process SIGKILLs itself at the N+1-th hit; N from a seeded ``Random``) and drives concurrent
writes over gRPC: puts, three-key txns, deletes, lease grants with an attached key and
compactions, recording what was acknowledged. After the process is dead the test reads the
data dir offline: the applied index never passes the durable commit index (etcd #14370), and the
writes of every committed WAL entry are noted. It then restarts the member WITHOUT
failpoints (in this process, to keep the test fast) and checks:

- every acknowledged write is there with its value, and nothing that was never sent;
- every committed entry is applied (committed means it happened, acknowledged or not);
- no torn batch: a txn's three keys are all there or none;
- no entry applied twice and none skipped: the current revision is 1 + the number of write
  revisions the visible key space implies, and the applied index catches up the commit index;
- acknowledged leases exist;
- a second restart changes nothing: same revision, key space and ``HashKV``.

A second test panics in the applier around the KV commit (``beforeCommit``/``afterCommit``)
through the ``Failpoints`` handed to ``embed.start``.

fsync stays on: durability is what is tested.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

import grpc
import pytest

from etcdpy import embed, errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from etcdpy._pb.etcdserverpb.raft_internal_pb2 import InternalRaftRequest
from etcdpy._pb.mvccpb.kv_pb2 import KeyValue
from etcdpy.observability.logging import Logger
from etcdpy.raft.types import EntryType
from etcdpy.server.etcdserver import EtcdServer
from etcdpy.server.transport import InmemNetwork
from etcdpy.storage.backend import Backend
from etcdpy.storage.layout import DataDirLayout
from etcdpy.storage.segment_wal import open_wal
from etcdpy.util.failpoints import FailpointPanic, Failpoints
from tests.server.support import config, run, start_peer
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("ETCDPY_CRASH_SEED", "20261124"))
WRITERS = 6
MAX_OPS = 40
"""Per writer: bounds a case whose failpoint is never reached."""
LEASE_TTL = 600

# (failpoint, smallest N, largest N): N is drawn in that range. The smallest N skips most
# of the hits of the start (bootstrap, election, publish) so the crash lands under load; the
# snapshot points fire once per --snapshot-count entries; the conf-change one only while
# the bootstrap entries are applied (a crash during the very first start).
NAMED: list[tuple[str, int, int]] = [
    ("raftBeforeSave", 6, 25),
    ("raftAfterSave", 6, 25),
    ("raftBeforeAdvance", 6, 25),
    ("beforeApplyOneEntryNormal", 6, 60),
    ("beforeCommit", 6, 25),
    ("afterCommit", 6, 25),
    ("raftBeforeSaveSnap", 0, 2),
    ("raftAfterSaveSnap", 0, 2),
    ("beforeApplyOneConfChange", 0, 0),
]
RANDOM_KILLS = 2


def _start(data_dir: Path, port: int, failpoints: str = "") -> subprocess.Popen[bytes]:
    """Start a member process; its log goes to ``<data_dir>.log`` (appended, for failures)."""
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "ETCDPY_FAILPOINTS"}
    env["PYTHONPATH"] = str(ROOT)
    if failpoints:
        env["ETCDPY_FAILPOINTS"] = failpoints
    with open(f"{data_dir}.log", "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etcdpy",
                "--data-dir",
                str(data_dir),
                "--listen-client-urls",
                url,
                "--advertise-client-urls",
                url,
                "--snapshot-count",
                "20",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _log_tail(data_dir: Path, n: int = 2000) -> str:
    try:
        return Path(f"{data_dir}.log").read_bytes()[-n:].decode(errors="replace")
    except OSError:
        return ""


async def _ready(stub: rpc.KVStub, proc: subprocess.Popen[bytes]) -> bool:
    """True once the member answers; False if the process died first."""
    async with asyncio.timeout(30):
        while proc.poll() is None:
            try:
                await stub.Range(pb.RangeRequest(key=b"x"), timeout=1)
                return True
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
    return False


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """True if the process exited by itself within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while proc.poll() is None:
                await asyncio.sleep(0.02)
        return True
    except TimeoutError:
        return False


@dataclass
class History:
    """What was sent and what was acknowledged."""

    puts: dict[bytes, bytes] = field(default_factory=dict)
    acked_puts: set[bytes] = field(default_factory=set)
    txns: dict[tuple[bytes, ...], bytes] = field(default_factory=dict)
    acked_txns: set[tuple[bytes, ...]] = field(default_factory=set)
    deletes: set[bytes] = field(default_factory=set)
    acked_deletes: set[bytes] = field(default_factory=set)
    leases: set[int] = field(default_factory=set)
    acked_leases: set[int] = field(default_factory=set)
    lease_keys: dict[bytes, int] = field(default_factory=dict)
    acked_compact: int = 0
    """The highest acknowledged compaction revision (writer 0 compacts now and then)."""

    @property
    def acked(self) -> int:
        return len(self.acked_puts) + len(self.acked_txns) + len(self.acked_deletes)


async def _writer(
    ch: grpc.aio.Channel, w: int, rng: Random, h: History, stop: asyncio.Event
) -> None:
    kv = rpc.KVStub(ch)
    lease = rpc.LeaseStub(ch)
    mine: list[bytes] = []  # acknowledged plain puts of this writer, not deleted
    try:
        for i in range(MAX_OPS):
            if stop.is_set():
                return
            op = rng.random()
            val = b"v%d" % rng.randrange(1 << 30)
            if op < 0.2:
                keys = tuple(b"t%d-%03d-%s" % (w, i, s) for s in (b"a", b"b", b"c"))
                h.txns[keys] = val
                await kv.Txn(
                    pb.TxnRequest(
                        success=[
                            pb.RequestOp(request_put=pb.PutRequest(key=k, value=val)) for k in keys
                        ]
                    ),
                    timeout=10,
                )
                h.acked_txns.add(keys)
            elif op < 0.35 and mine:
                key = mine.pop(rng.randrange(len(mine)))
                h.deletes.add(key)
                await kv.DeleteRange(pb.DeleteRangeRequest(key=key), timeout=10)
                h.acked_deletes.add(key)
            elif op < 0.45:
                lid = (w + 1) * 1000 + i
                h.leases.add(lid)
                await lease.LeaseGrant(pb.LeaseGrantRequest(TTL=LEASE_TTL, ID=lid), timeout=10)
                h.acked_leases.add(lid)
                key = b"l%d-%03d" % (w, i)
                h.puts[key] = val
                h.lease_keys[key] = lid
                await kv.Put(pb.PutRequest(key=key, value=val, lease=lid), timeout=10)
                h.acked_puts.add(key)
            else:
                key = b"p%d-%03d" % (w, i)
                h.puts[key] = val
                resp = await kv.Put(pb.PutRequest(key=key, value=val), timeout=10)
                h.acked_puts.add(key)
                mine.append(key)
                if w == 0 and rng.random() < 0.4:  # one compactor: its revisions only increase
                    rev = resp.header.revision
                    await kv.Compact(pb.CompactionRequest(revision=rev), timeout=10)
                    h.acked_compact = rev
    except grpc.aio.AioRpcError:
        return  # the member died (or is dying): the last request is in doubt


async def _load(data_dir: Path, port: int, failpoints: str, rng: Random) -> tuple[History, bool]:
    """Run the workload until the member dies; returns the history and whether it died
    by itself (False: the test killed it, at a random moment or because the failpoint
    was never reached)."""
    h = History()
    proc = _start(data_dir, port, failpoints)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            if not await _ready(rpc.KVStub(ch), proc):
                assert failpoints, "member died while starting:\n" + _log_tail(data_dir)
                return h, True  # died while starting (a failpoint on the bootstrap path)
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(_writer(ch, w, Random(rng.random()), h, stop))
                for w in range(WRITERS)
            ]
            if not failpoints:
                # a random moment: after a random number of acknowledged writes
                target = rng.randrange(5, WRITERS * MAX_OPS // 2)
                async with asyncio.timeout(30):
                    while h.acked < target and not all(t.done() for t in tasks):
                        await asyncio.sleep(0.005)
                proc.send_signal(signal.SIGKILL)
            await asyncio.wait(tasks, timeout=40)
            stop.set()
            died = await _wait_exit(proc, 2.0 if failpoints else 10.0)
            await asyncio.gather(*tasks)
            return h, died and bool(failpoints)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@dataclass
class Committed:
    """What the WAL holds as committed when the member died: all of it must be applied
    after the restart, acknowledged or not (committed means it happened)."""

    puts: dict[bytes, bytes] = field(default_factory=dict)
    deleted: set[bytes] = field(default_factory=set)


def _check_offline(data_dir: Path) -> Committed:
    """Nothing applied beyond what the WAL holds as committed (apply only what is durable,
    etcd #14370); returns the writes of the committed entries."""
    out = Committed()
    layout = DataDirLayout.of(data_dir)
    if not (Path(layout.kv).exists() and Path(layout.wal).exists()):
        return out  # killed before the stores existed
    wal = open_wal(data_dir)
    try:
        commit = wal.hard_state.commit
        last = wal.last_index()
        first = wal.first_index()
        ents = wal.entries(first, commit + 1) if commit >= first else ()
    finally:
        wal.close()
    be = Backend(layout.kv)
    try:
        ci = be.consistent_index()
    finally:
        be.close()
    assert ci <= commit <= last, (ci, commit, last)
    assert first == 1, "these runs are too short for the WAL to be compacted"
    for e in ents:
        if e.type != EntryType.NORMAL or not e.data:
            continue
        r = InternalRaftRequest.FromString(e.data)
        puts = [r.put] if r.HasField("put") else []
        puts += [op.request_put for op in r.txn.success if op.HasField("request_put")]
        for p in puts:
            out.puts[p.key] = p.value
            out.deleted.discard(p.key)
        if r.HasField("delete_range"):
            out.puts.pop(r.delete_range.key, None)
            out.deleted.add(r.delete_range.key)
    return out


async def _key_space(server: EtcdServer) -> tuple[int, dict[bytes, KeyValue]]:
    r = await server.range(pb.RangeRequest(key=b"\0", range_end=b"\0"))
    return r.header.revision, {x.key: x for x in r.kvs}


def _check_history(h: History, c: Committed, rev: int, kvs: dict[bytes, KeyValue]) -> None:
    for key, val in c.puts.items():
        assert key in kvs, f"committed put not applied after the restart: {key!r}"
        assert kvs[key].value == val
    for key in c.deleted:
        assert key not in kvs, f"committed delete not applied after the restart: {key!r}"
    expected_writes = 0
    issued = set(h.puts) | {k for ks in h.txns for k in ks}
    unknown = set(kvs) - issued
    assert not unknown, f"keys never written: {sorted(unknown)[:5]}"
    for key, val in h.puts.items():
        got = kvs.get(key)
        if got is None:
            assert key not in h.acked_puts or key in h.deletes, f"acknowledged put lost: {key!r}"
            expected_writes += 2 if key in h.deletes else 0  # a put and its delete
            continue
        assert key not in h.acked_deletes, f"acknowledged delete lost: {key!r}"
        assert got.value == val, (key, got.value, val)
        assert got.version == 1 and got.create_revision == got.mod_revision, got
        if key in h.lease_keys:
            assert got.lease == h.lease_keys[key], (key, got.lease)
        expected_writes += 1
    for keys, val in h.txns.items():
        present = [kvs[k] for k in keys if k in kvs]
        assert len(present) in (0, len(keys)), f"torn txn: {[k for k in keys if k in kvs]}"
        if not present:
            assert keys not in h.acked_txns, f"acknowledged txn lost: {keys}"
            continue
        assert {p.value for p in present} == {val}
        assert len({p.mod_revision for p in present}) == 1
        expected_writes += 1
    # one revision per applied write: none applied twice, none skipped
    assert rev == 1 + expected_writes, (rev, expected_writes)


async def _check(data_dir: Path, h: History, c: Committed) -> None:
    """Restart (in this process: no interpreter start, and no failpoints) and check; then
    restart once more and check that the second start changes nothing."""
    lg = Logger(outputs=[io.StringIO()])
    e = await embed.start(config(data_dir), lg, failpoints=Failpoints())
    try:
        s = e.server
        async with asyncio.timeout(10):
            while s.applied_index < s.committed_index:
                await asyncio.sleep(0.01)
        st = await s.status(pb.StatusRequest())
        assert st.raftAppliedIndex >= st.raftIndex, st
        rev, kvs = await _key_space(s)
        _check_history(h, c, rev, kvs)
        if h.acked_compact:
            assert s.compact_revision >= h.acked_compact, "acknowledged compaction lost"
        for lid in h.acked_leases:
            ttl = await s.lease_time_to_live(pb.LeaseTimeToLiveRequest(ID=lid))
            assert ttl.TTL > 0, f"acknowledged lease {lid} lost"
        hash1 = (await s.hash_kv(pb.HashKVRequest(revision=rev))).hash
    finally:
        await e.close()
    e = await embed.start(config(data_dir), lg, failpoints=Failpoints())
    try:
        rev2, kvs2 = await _key_space(e.server)
        assert rev2 == rev
        assert kvs2 == kvs
        hash2 = (await e.server.hash_kv(pb.HashKVRequest(revision=rev))).hash
        assert hash2 == hash1
    finally:
        await e.close()


def _cases() -> list[tuple[str, str]]:
    rng = Random(SEED)
    cases = [(name, f"{name}={rng.randint(lo, hi)}*off->kill") for name, lo, hi in NAMED]
    cases += [(f"random-{i}", "") for i in range(RANDOM_KILLS)]
    return cases


@pytest.mark.parametrize(("name", "spec"), _cases(), ids=[c[0] for c in _cases()])
def test_crash_at_failpoint(tmp_path: Path, name: str, spec: str) -> None:
    rng = Random(f"{SEED}-{name}")
    port = free_port()
    data = tmp_path / "data"  # the members' logs: tmp_path / "data.log"
    h, fired = run(_load(data, port, spec, rng), timeout=60)
    print(
        f"{name}: {spec or 'SIGKILL'}: acked {h.acked} writes, {len(h.acked_leases)} leases;"
        f" sent {len(h.puts) + len(h.txns) + len(h.deletes)}; compacted at {h.acked_compact}"
    )
    if spec:
        assert fired, f"failpoint {spec!r} was not reached"
    committed = _check_offline(data)
    run(_check(data, h, committed), timeout=60)


@pytest.mark.parametrize(
    ("point", "kv_committed"), [("beforeCommit", False), ("afterCommit", True)]
)
def test_panic_in_apply_stops_member_and_restart_recovers(
    tmp_path: Path, point: str, kv_committed: bool
) -> None:
    """One ``Failpoints`` reaches the applier through ``embed.start``: a panic around the KV
    commit stops the member (etcd panics). The response left before the commit (apply.py
    rule 5), so the put is acknowledged either way. The KV batch is all there (afterCommit)
    or not at all (beforeCommit: ``consistent_index`` unchanged); either way the entry is
    committed in the WAL, so the restart shows the acknowledged write exactly once."""

    async def main() -> None:
        fp = Failpoints()
        lg = Logger(outputs=[io.StringIO()])
        e = await embed.start(config(tmp_path), lg, failpoints=fp)
        try:
            await e.server.put(pb.PutRequest(key=b"before", value=b"1"))
            # The member's own proposals at start (attributes, cluster version) must be
            # applied first, so the armed failpoint fires in the batch of the next put.
            await e.server.ready.wait()
            async with asyncio.timeout(10):
                while e.server.cluster_version == "not_decided":
                    await asyncio.sleep(0.01)
            await e.server.put(pb.PutRequest(key=b"before", value=b"1"))
            await e.server.settle()
            ci0 = e.server.applier.consistent_index
            fp.enable(point, "panic")
            r = await e.server.put(pb.PutRequest(key=b"k", value=b"v"))
            assert r.header.revision == 4
            async with asyncio.timeout(10):
                assert isinstance(await asyncio.shield(e.fatal), FailpointPanic)
            with pytest.raises(errors.EtcdError):  # stopped: reads fail, never stale
                await e.server.range(pb.RangeRequest(key=b"k", serializable=True))
            assert fp.hits[point] == 1
        finally:
            await e.close()
        be = Backend(DataDirLayout.of(tmp_path).kv)
        try:
            ci = be.consistent_index()
        finally:
            be.close()
        assert (ci > ci0) if kv_committed else (ci == ci0), (ci, ci0)
        e = await embed.start(config(tmp_path), lg, failpoints=Failpoints())
        try:
            r = await e.server.range(pb.RangeRequest(key=b"\0", range_end=b"\0"))
            assert {kv.key: kv.value for kv in r.kvs} == {b"before": b"1", b"k": b"v"}
            assert r.header.revision == 4
        finally:
            await e.close()

    run(main(), timeout=60)


def test_follower_panic_before_send_then_restart_catches_up(tmp_path: Path) -> None:
    """Three members over the in-memory transport: the send hooks are reached by role, a
    follower that stops at ``raftBeforeFollowerSend`` (its entries saved, its reply not
    sent) leaves a working quorum, and once restarted it catches up."""
    names = ["a", "b", "c"]

    async def main() -> None:
        net = InmemNetwork()
        fps = {n: Failpoints("raftBeforeLeaderSend=off;raftBeforeFollowerSend=off") for n in names}

        async def start(n: str, fp: Failpoints) -> embed.Etcd:
            return await start_peer(tmp_path, net, n, names, failpoints=fp)

        started = await asyncio.gather(*[start(n, fps[n]) for n in names])
        members = dict(zip(names, started, strict=True))
        try:
            async with asyncio.timeout(10):
                while not any(m.server.is_leader for m in members.values()):
                    await asyncio.sleep(0.02)
            lead = next(n for n, m in members.items() if m.server.is_leader)
            fol = next(n for n in names if n != lead)
            await members[lead].server.put(pb.PutRequest(key=b"k0", value=b"v"))
            assert fps[lead].hits.get("raftBeforeLeaderSend", 0) > 0
            assert fps[fol].hits.get("raftBeforeFollowerSend", 0) > 0
            fps[fol].enable("raftBeforeFollowerSend", "panic")
            for i in range(1, 6):
                await members[lead].server.put(pb.PutRequest(key=b"k%d" % i, value=b"v"))
            async with asyncio.timeout(10):
                assert isinstance(await asyncio.shield(members[fol].fatal), FailpointPanic)
            await members[fol].close()
            members[fol] = await start(fol, Failpoints())
            want = await members[lead].server.range(pb.RangeRequest(key=b"k", range_end=b"l"))
            assert len(want.kvs) == 6
            async with asyncio.timeout(15):
                while True:
                    got = await members[fol].server.range(
                        pb.RangeRequest(key=b"k", range_end=b"l", serializable=True)
                    )
                    if list(got.kvs) == list(want.kvs):
                        break
                    await asyncio.sleep(0.02)
        finally:
            for m in members.values():
                await m.close()

    run(main(), timeout=60)
