"""ReadIndex: SAFE (heartbeat quorum), new-leader rule, forwarding, LEASE_BASED."""

from __future__ import annotations

from etcdpy.raft import MessageType, ReadOnlyOption, ReadState
from tests.raft.network import Network

MT = MessageType


def read_states(net: Network, i: int) -> list[ReadState]:
    """Drive node i and return (and forget) the ReadStates it produced so far."""
    n = net.nodes[i]
    net.deliver(n.handle_ready())
    out, n.read_states = n.read_states, []
    return out


def test_leader_read_index_needs_heartbeat_quorum() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"a")
    n1 = net.nodes[1]
    net.isolate(1)
    n1.rn.read_index(b"ctx1")
    rd = n1.rn.ready()
    assert rd.read_states == ()  # not yet: leadership must be confirmed first
    hbs = [m for m in rd.messages if m.type == MT.MsgHeartbeat]
    assert {m.to for m in hbs} == {2, 3} and all(m.context == b"ctx1" for m in hbs)
    n1.rn.advance(rd)
    net.recover()
    net.deliver(hbs)
    assert read_states(net, 1) == [ReadState(index=2, request_ctx=b"ctx1")]


def test_isolated_leader_never_answers() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(1)
    net.nodes[1].rn.read_index(b"x")
    net.tick(1, n=5)
    assert read_states(net, 1) == []


def test_follower_read_index_is_forwarded() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"a")
    net.nodes[3].rn.read_index(b"r3")
    got = read_states(net, 3)
    assert got == [ReadState(index=2, request_ctx=b"r3")]
    assert any(m.type == MT.MsgReadIndex and m.from_ == 3 and m.to == 1 for m in net.delivered)
    assert any(m.type == MT.MsgReadIndexResp and m.to == 3 for m in net.delivered)


def test_new_leader_answers_only_after_committing_its_own_entry() -> None:
    net = Network([1, 2, 3])
    net.drops.append(lambda m: m.type == MT.MsgApp)
    net.campaign(1)
    n1 = net.nodes[1]
    assert n1.committed == 0
    n1.rn.read_index(b"early")
    assert read_states(net, 1) == []
    net.recover()
    net.tick(1, n=2)
    net.stabilize()
    assert n1.committed == 1
    # the postponed request was released once the empty entry committed
    assert read_states(net, 1) == [ReadState(index=1, request_ctx=b"early")]
    n1.rn.read_index(b"later")
    got = read_states(net, 1)
    assert ReadState(index=1, request_ctx=b"later") in got


def test_postponed_read_released_with_commit() -> None:
    net = Network([1, 2, 3])
    net.drops.append(lambda m: m.type == MT.MsgApp)
    net.campaign(1)
    n1 = net.nodes[1]
    n1.rn.read_index(b"early")
    net.recover()
    collected: list[ReadState] = []
    for _ in range(3):
        n1.rn.tick()
        collected += read_states(net, 1)
    assert ReadState(index=1, request_ctx=b"early") in collected


def test_lease_based_read_answers_immediately() -> None:
    net = Network([1, 2, 3], read_only_option=ReadOnlyOption.LEASE_BASED)
    net.campaign(1)
    n1 = net.nodes[1]
    net.isolate(1)
    n1.rn.read_index(b"lease")
    assert read_states(net, 1) == [ReadState(index=1, request_ctx=b"lease")]


def test_single_node_read_index() -> None:
    net = Network([1])
    net.campaign(1)
    net.nodes[1].rn.read_index(b"s")
    assert read_states(net, 1) == [ReadState(index=1, request_ctx=b"s")]


def test_reads_released_in_order() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    n1 = net.nodes[1]
    net.isolate(1)
    n1.rn.read_index(b"a")
    n1.rn.read_index(b"b")
    rd = n1.rn.ready()
    n1.rn.advance(rd)
    net.recover()
    # only the heartbeat for "b" arrives: it releases "a" too
    net.deliver([m for m in rd.messages if m.context == b"b"])
    assert [s.request_ctx for s in read_states(net, 1)] == [b"a", b"b"]
