"""The native splice thread (etcdpy/transport/_splice.c) on socket pairs: order, no loss under
backpressure, the sniffed bytes first, either side's EOF closing both, close() and reports."""

from __future__ import annotations

import os
import random
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.waiting import wait_until

splice = pytest.importorskip("etcdpy.transport._splice")


class Rig:
    """client <-> [a | splicer | b] <-> server, with the splicer owning a and b."""

    def __init__(self, sp: object, initial: bytes = b"", tag: int = 1) -> None:
        self.client, a = socket.socketpair()
        b, self.server = socket.socketpair()
        for s in (a, b):
            s.setblocking(False)
        sp.add(a.detach(), b.detach(), initial, tag)  # type: ignore[attr-defined]
        self.client.settimeout(10)
        self.server.settimeout(10)

    def close(self) -> None:
        self.client.close()
        self.server.close()


@pytest.fixture
def sp() -> Iterator[object]:
    s = splice.Splicer()
    try:
        yield s
    finally:
        s.close()


def _recv_exactly(sock: socket.socket, n: int, slow: bool = False) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(65536, n - len(out)) if not slow else 7919)
        if not chunk:
            break
        out += chunk
        if slow:
            time.sleep(0.0005)
    return bytes(out)


def test_initial_bytes_go_first_then_both_directions(sp: object) -> None:
    r = Rig(sp, initial=b"PRI * HTTP/2.0")
    try:
        r.client.sendall(b" then this")
        assert _recv_exactly(r.server, 24) == b"PRI * HTTP/2.0 then this"
        r.server.sendall(b"answer")
        assert _recv_exactly(r.client, 6) == b"answer"
    finally:
        r.close()


@pytest.mark.parametrize("direction", ["up", "down"])
def test_large_transfer_with_a_slow_reader_loses_nothing(sp: object, direction: str) -> None:
    """8 MiB into a reader slower than the writer: the splicer must buffer and pause the
    sender's side (backpressure), never drop or reorder."""
    data = random.Random(7).randbytes(8 << 20)
    r = Rig(sp)
    src, dst = (r.client, r.server) if direction == "up" else (r.server, r.client)
    writer = threading.Thread(target=src.sendall, args=(data,))
    writer.start()
    try:
        got = _recv_exactly(dst, len(data), slow=True)
        writer.join(10)
        assert got == data
    finally:
        r.close()


@pytest.mark.parametrize("closer", ["client", "server"])
def test_eof_on_either_side_closes_both_and_reports_the_tag(sp: object, closer: str) -> None:
    r = Rig(sp, tag=42)
    try:
        assert wait_until(lambda: sp.count() == 1)  # type: ignore[attr-defined]
        (r.client if closer == "client" else r.server).close()
        other = r.server if closer == "client" else r.client
        assert other.recv(10) == b""  # the splicer closed its side
        ready, _, _ = select.select([sp.fileno()], [], [], 5)  # type: ignore[attr-defined]
        assert ready
        assert sp.drain_closed() == [42]  # type: ignore[attr-defined]
        assert sp.count() == 0  # type: ignore[attr-defined]
        assert sp.drain_closed() == []  # type: ignore[attr-defined]
    finally:
        r.close()


def test_many_pairs_at_once_stay_separate(sp: object) -> None:
    rigs = [Rig(sp, initial=b"%03d:" % i, tag=i) for i in range(50)]
    try:
        for i, rg in enumerate(rigs):
            rg.client.sendall(b"x" * i)
        for i, rg in enumerate(rigs):
            assert _recv_exactly(rg.server, 4 + i) == b"%03d:" % i + b"x" * i
            rg.server.sendall(b"%d" % i)
            assert _recv_exactly(rg.client, len(b"%d" % i)) == b"%d" % i
    finally:
        for rg in rigs:
            rg.close()
    assert wait_until(lambda: sp.count() == 0)  # type: ignore[attr-defined]
    assert sorted(sp.drain_closed()) == list(range(50))  # type: ignore[attr-defined]


def test_close_stops_the_thread_and_closes_every_pair() -> None:
    s = splice.Splicer()
    r = Rig(s)
    try:
        s.close()
        assert r.client.recv(10) == b"" and r.server.recv(10) == b""
        s.close()  # idempotent
        a, b = socket.socketpair()
        with pytest.raises(RuntimeError):
            s.add(a.fileno(), b.fileno(), b"", 1)
        a.close()
        b.close()
    finally:
        r.close()


def _splice_and_drop_twenty_pairs() -> None:
    sp = splice.Splicer()
    rigs = [Rig(sp, tag=i) for i in range(20)]
    for rg in rigs:
        rg.close()
    assert wait_until(lambda: sp.count() == 0)
    sp.close()


def test_no_descriptor_leaks() -> None:
    before = len(os.listdir("/proc/self/fd"))
    _splice_and_drop_twenty_pairs()  # the splicer's own eventfds/epoll go with the object
    assert len(os.listdir("/proc/self/fd")) <= before
