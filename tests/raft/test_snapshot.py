"""Log compaction and snapshot catch-up."""

from __future__ import annotations

from etcdpy.raft import (
    ConfState,
    ErrSnapshotTemporarilyUnavailable,
    Message,
    MessageType,
    ProgressState,
    Snapshot,
    SnapshotMetadata,
)
from etcdpy.raft.storage import MemoryStorage
from tests.raft.network import Network

MT = MessageType


def lagging(net: Network, n_props: int = 5) -> None:
    net.campaign(1)
    net.isolate(3)
    for i in range(n_props):
        net.propose(1, b"p%d" % i)
    net.nodes[1].compact()
    net.nodes[2].compact()
    assert net.nodes[1].storage.first_index() > 2


def test_lagging_follower_catches_up_by_snapshot() -> None:
    net = Network([1, 2, 3])
    lagging(net)
    net.recover()
    net.tick(n=3)
    snaps = [m for m in net.delivered if m.type == MT.MsgSnap]
    assert len(snaps) == 1 and snaps[0].to == 3
    n3 = net.nodes[3]
    assert n3.storage.snapshot().metadata.index == 6
    assert n3.storage.snapshot().data == b"snap@6"
    assert n3.applied_index == 6 and n3.committed == 6
    # the follower is back to normal replication
    net.propose(1, b"after")
    assert n3.applied_data() == [b"after"]
    assert net.nodes[1].rn.status().progress[3].state == ProgressState.REPLICATE


def test_snapshot_in_ready_must_be_persisted_and_is_applied() -> None:
    net = Network([1, 2, 3])
    lagging(net)
    net.recover()
    captured: list[Message] = []

    def capture_snap(m: Message) -> bool:
        if m.type == MT.MsgSnap:
            captured.append(m)
            return True
        return False

    net.drops.append(capture_snap)
    net.tick(1, n=1)
    n3 = net.nodes[3]
    n3.rn.step(captured[0])
    rd = n3.rn.ready()
    assert rd.snapshot.metadata.index == 6 and rd.hard_state.commit == 6
    assert rd.committed_entries == ()
    (resp,) = rd.messages
    assert resp.type == MT.MsgAppResp and resp.index == 6


def test_failed_snapshot_is_retried_after_report() -> None:
    net = Network([1, 2, 3])
    lagging(net)
    net.recover()
    net.drops.append(lambda m: m.type == MT.MsgSnap)
    net.tick(1)
    n1 = net.nodes[1]
    assert n1.rn.status().progress[3].state == ProgressState.SNAPSHOT
    net.tick(1, n=3)
    assert n1.rn.status().progress[3].state == ProgressState.SNAPSHOT  # waits for report
    n1.rn.report_snapshot(3, failed=True)
    assert n1.rn.status().progress[3].state == ProgressState.PROBE
    net.recover()
    net.tick(n=3)
    assert net.nodes[3].applied_index == net.nodes[1].applied_index


def test_stale_or_foreign_snapshot_ignored() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"a")
    n2 = net.nodes[2]
    stale = Snapshot(
        metadata=SnapshotMetadata(index=1, term=1, conf_state=ConfState(voters=(1, 2, 3)))
    )
    n2.rn.step(Message(type=MT.MsgSnap, to=2, from_=1, term=1, snapshot=stale))
    rd = n2.rn.ready()
    assert rd.snapshot.is_empty() and rd.messages[0].index == 2
    n2.rn.advance(rd)
    foreign = Snapshot(
        metadata=SnapshotMetadata(index=10, term=1, conf_state=ConfState(voters=(1, 3)))
    )
    n2.rn.step(Message(type=MT.MsgSnap, to=2, from_=1, term=1, snapshot=foreign))
    rd = n2.rn.ready()
    assert rd.snapshot.is_empty() and rd.messages[0].index == 2


def test_restart_after_compaction_replays_from_snapshot() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    for i in range(4):
        net.propose(1, b"p%d" % i)
    n2 = net.nodes[2]
    n2.compact(3)
    n2.restart()
    # entries after the snapshot are delivered again for applying
    net.stabilize()
    assert [e.index for e in n2.applied] == [4, 5]
    assert n2.applied_data() == [b"p2", b"p3"]


class FlakyStorage(MemoryStorage):
    busy = False

    def snapshot(self) -> Snapshot:
        if self.busy:
            raise ErrSnapshotTemporarilyUnavailable()
        return super().snapshot()


def test_snapshot_temporarily_unavailable() -> None:
    conf = ConfState(voters=(1, 2, 3))
    st1 = FlakyStorage()
    st1._snapshot = Snapshot(metadata=SnapshotMetadata(conf_state=conf))
    net = Network([1, 2, 3], storages={1: st1})
    lagging(net)
    st1.busy = True
    net.recover()
    net.tick(n=3)
    assert not [m for m in net.delivered if m.type == MT.MsgSnap]
    st1.busy = False
    net.tick(n=3)
    assert net.nodes[3].applied_index == net.nodes[1].applied_index
