"""One client port for gRPC (HTTP/2) and HTTP/1.1, as etcd serves both on its client URL.

grpcio owns its sockets and cannot adopt an accepted one (``grpc_server_add_channel_from_fd``
is not exported by grpcio), so the multiplexer accepts every connection, looks at its first
bytes and then:
- HTTP/2 connection preface (``PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n``, what every gRPC client
  sends first): the connection is spliced, byte for byte, to the grpc.aio server listening on
  a private unix socket (in a 0700 directory);
- anything else: the same transport is handed to the HTTP/1.1 protocol (aiohttp's
  ``web.Server`` instance from an ``AppRunner``) together with the bytes already read, so
  aiohttp parses the request as if it had accepted the connection itself.

Rules:
1. No byte is read twice and none is lost: the sniffed bytes go first to whoever takes over.
2. Backpressure both ways: a side whose write buffer is full pauses reading on the other.
3. Either side closing closes the other (HTTP/2 does not use half-close).
4. TLS terminates here when ``ssl`` is given. Each splice's unix socket is bound to a unique
   abstract name, which grpc reports as the call's ``context.peer()``; ``peer_info(peer)``
   maps it back to the real client (address, verified certificate CN) so --client-cert-auth
   can reach the gRPC auth layer (``api.v3.common.ApiContext.common_name``).

Cost: every gRPC byte crosses this process twice more (client->mux->grpc). Plaintext
connections are therefore handed, once sniffed, to the native splice thread of
``transport/_splice.c`` (epoll + recv/send without the GIL, on whichever core is free);
the Python splice below remains for TLS (the bytes must be decrypted here) and for builds
without a C compiler. See ``benchmarks/cmux.md``. With ``--listen-client-http-urls`` etcd
moves HTTP elsewhere and grpc owns the client port: no mux at all.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import ssl as ssl_mod
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _native_splicer() -> Any:
    """A started ``_splice.Splicer``, or None where the extension was not built."""
    try:
        from etcdpy.transport._splice import Splicer  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Splicer()


class _Upstream(asyncio.Protocol):
    """grpc's side of a spliced connection: bytes from grpc go to the client."""

    __slots__ = ("client", "transport")

    def __init__(self, client: _Sniffer) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        ct = self.client.transport
        if ct is not None:
            ct.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        ct = self.client.transport
        if ct is not None:
            ct.close()

    def pause_writing(self) -> None:  # grpc is not reading: stop reading the client
        ct = self.client.transport
        if ct is not None:
            ct.pause_reading()

    def resume_writing(self) -> None:
        ct = self.client.transport
        if ct is not None:
            ct.resume_reading()


class _Sniffer(asyncio.Protocol):
    """The client's side: decides by the first bytes, then forwards or hands over."""

    __slots__ = ("_buf", "_mux", "_peer_key", "_upstream", "transport")

    def __init__(self, mux: ClientMux) -> None:
        self._mux = mux
        self._peer_key: str | None = None
        self._buf = b""
        self._upstream: _Upstream | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._mux._conns.add(self)

    def data_received(self, data: bytes) -> None:
        up = self._upstream
        if up is not None:
            if up.transport is not None:
                up.transport.write(data)
            else:
                self._buf += data  # still connecting
            return
        buf = self._buf + data
        n = min(len(buf), len(HTTP2_PREFACE))
        if buf[:n] == HTTP2_PREFACE[:n]:
            if n < len(HTTP2_PREFACE):
                self._buf = buf
                return
            self._buf = buf
            self._to_grpc()
            return
        self._to_http(buf)

    def _to_http(self, buf: bytes) -> None:
        t = self.transport
        assert t is not None
        self._mux._conns.discard(self)
        self._buf = b""
        if self._mux._main_loop is None:  # same loop: switch protocols on this transport
            _start_http(t, self._mux.http_factory, buf)
            return
        # The mux runs in its own thread: move the socket to the main loop, where aiohttp
        # lives. A dup'ed descriptor survives closing this transport (no FIN is sent).
        sock = t.get_extra_info("socket")
        fd = os.dup(sock.fileno())
        self.transport = None
        t.abort()
        self._mux._main_loop.call_soon_threadsafe(self._mux._adopt_http, fd, buf)

    def _to_grpc(self) -> None:
        t = self.transport
        assert t is not None
        t.pause_reading()
        if self._mux._splicer is not None and t.get_extra_info("sslcontext") is None:
            task = asyncio.get_running_loop().create_task(self._connect_native())
            self._mux._tasks.add(task)
            task.add_done_callback(self._mux._tasks.discard)
            return
        self._upstream = _Upstream(self)
        task = asyncio.get_running_loop().create_task(self._connect())
        self._mux._tasks.add(task)
        task.add_done_callback(self._mux._tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        up = self._upstream
        assert up is not None
        sock, name = self._mux._upstream_socket()
        try:
            await loop.sock_connect(sock, self._mux.grpc_path)
            await loop.create_unix_connection(lambda: up, sock=sock)
        except OSError:
            sock.close()
            if self.transport is not None:
                self.transport.close()
            return
        if name is not None and self.transport is not None:
            self._peer_key = name
            self._mux.peers[name] = PeerInfo.of(self.transport)
        t = self.transport
        if t is None or t.is_closing():
            if up.transport is not None:
                up.transport.close()
            return
        assert up.transport is not None
        buf, self._buf = self._buf, b""
        up.transport.write(buf)
        t.resume_reading()

    async def _connect_native(self) -> None:
        """Connect to grpc, then give both sockets to the native splice thread.

        The client's socket is dup'ed and its transport aborted: closing one descriptor of
        a socket sends nothing (no FIN), and the paused transport has not read past the
        sniffed bytes, which the splicer writes to grpc before anything else.
        """
        loop = asyncio.get_running_loop()
        mux = self._mux
        sock, name = mux._upstream_socket()
        try:
            await loop.sock_connect(sock, mux.grpc_path)
        except OSError:
            sock.close()
            if self.transport is not None:
                self.transport.close()
            return
        t = self.transport
        splicer = mux._splicer
        if t is None or t.is_closing() or splicer is None:
            sock.close()
            return
        cfd = os.dup(t.get_extra_info("socket").fileno())
        tag = next(mux._seq)
        if name is not None:
            mux.peers[name] = PeerInfo.of(t)
            mux._spliced[tag] = name
        buf, self._buf = self._buf, b""
        self.transport = None
        mux._conns.discard(self)
        t.abort()
        ufd = sock.detach()
        try:
            splicer.add(cfd, ufd, buf, tag)
        except (OSError, RuntimeError):
            os.close(cfd)
            os.close(ufd)
            mux._forget_spliced([tag])

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._mux._conns.discard(self)
        if self._peer_key is not None:
            self._mux.peers.pop(self._peer_key, None)
        up = self._upstream
        if up is not None and up.transport is not None:
            up.transport.close()

    def pause_writing(self) -> None:  # the client is not reading: stop reading grpc
        up = self._upstream
        if up is not None and up.transport is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self._upstream
        if up is not None and up.transport is not None:
            up.transport.resume_reading()


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Who is really on the other end of a spliced gRPC connection."""

    remote_address: str
    common_name: str | None  # CN of the verified client certificate, if any

    @staticmethod
    def of(t: asyncio.BaseTransport) -> PeerInfo:
        addr = t.get_extra_info("peername")
        remote = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else str(addr)
        cert = t.get_extra_info("peercert")
        cn = None
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        cn = value
        return PeerInfo(remote, cn)


class _Replay(asyncio.Protocol):
    """Installs the HTTP protocol on an adopted socket and replays the sniffed bytes first."""

    def __init__(self, factory: Callable[[], Any], buf: bytes) -> None:
        self._factory = factory
        self._buf = buf

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _start_http(transport, self._factory, self._buf)  # type: ignore[arg-type]


def _start_http(t: asyncio.Transport, factory: Callable[[], Any], buf: bytes) -> None:
    """Give ``t`` to a fresh HTTP protocol as if it had just accepted it and read ``buf``."""
    proto = factory()
    t.set_protocol(proto)
    proto.connection_made(t)
    if buf:
        proto.data_received(buf)


def private_unix_path(name: str = "grpc.sock") -> tuple[str, str]:
    """(directory, socket path) in a fresh 0700 directory only this user can reach."""
    d = tempfile.mkdtemp(prefix="etcdpy-")
    os.chmod(d, 0o700)
    return d, os.path.join(d, name)


class ClientMux:
    """Accepts on one TCP address and routes each connection to gRPC or HTTP/1.1.

    ``threaded=True`` runs the accept loop and every gRPC splice on a private event loop in a
    thread of its own (``loop_factory``, e.g. ``uvloop.new_event_loop``) so the splice's
    callbacks do not interleave with grpc.aio's on the main loop; HTTP/1.1 connections are
    moved to the calling loop. Measured no better than the same-loop layout on 2 busy cores
    and worse at one client (thread hand-offs), so it is off by default (benchmarks/cmux.md).
    """

    def __init__(
        self,
        http_factory: Callable[[], Any],
        grpc_path: str,
        ssl: ssl_mod.SSLContext | None = None,
        threaded: bool = False,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
        wrap_protocol: Callable[[Callable[[], Any]], Callable[[], Any]] | None = None,
        native: bool = True,
    ) -> None:
        self.http_factory = http_factory
        self.grpc_path = grpc_path
        self.ssl = ssl
        if threaded and ssl is not None:
            raise ValueError("threaded mux with TLS is not supported: TLS state is per loop")
        self._threaded = threaded
        self._loop_factory = loop_factory or asyncio.new_event_loop
        # e.g. transport.tls.checked_protocol_factory: CRL / allowed-CN after the handshake
        self._wrap = wrap_protocol
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[_Sniffer] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main_loop: asyncio.AbstractEventLoop | None = None
        self._mux_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # grpc's context.peer() ("unix-abstract:<name>") -> the real client behind the splice
        self.peers: dict[str, PeerInfo] = {}
        self._seq = itertools.count(1)
        self._abstract = sys.platform.startswith("linux")
        # The native splice thread (plaintext gRPC connections); started with the listener.
        self._native = native and not threaded
        self._splicer: Any = None
        self._spliced: dict[int, str] = {}  # splicer tag -> key in ``peers``

    @property
    def native_splice(self) -> bool:
        """True when plaintext gRPC connections are spliced by the native thread."""
        return self._splicer is not None

    def spliced_count(self) -> int:
        """Connections the native thread is splicing now (0 without it)."""
        return 0 if self._splicer is None else int(self._splicer.count())

    def _on_spliced_closed(self) -> None:
        if self._splicer is not None:
            self._forget_spliced(self._splicer.drain_closed())

    def _forget_spliced(self, tags: list[int]) -> None:
        for tag in tags:
            name = self._spliced.pop(tag, None)
            if name is not None:
                self.peers.pop(name, None)

    def peer_info(self, grpc_peer: str) -> PeerInfo | None:
        """The client behind a gRPC call's ``context.peer()``, for logs and cert-CN auth."""
        return self.peers.get(grpc_peer)

    def _upstream_socket(self) -> tuple[socket.socket, str | None]:
        """A unix socket for one splice, bound to a unique abstract name on Linux so that
        grpc reports it as the call's peer (and ``peers`` can say who is behind it)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        if not self._abstract:
            return sock, None
        name = f"etcdpy-cmux-{os.getpid()}-{id(self):x}-{next(self._seq)}"
        try:
            sock.bind("\0" + name)
        except OSError:
            return sock, None
        return sock, f"unix-abstract:{name}"

    async def start(self, host: str, port: int, backlog: int = 1024) -> tuple[str, int]:
        if not self._threaded:
            return await self._listen(host, port, backlog)
        self._main_loop = asyncio.get_running_loop()
        loop = self._loop_factory()
        self._mux_loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="cmux", daemon=True)
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._listen(host, port, backlog), loop)
        return await asyncio.wrap_future(fut)

    async def _listen(self, host: str, port: int, backlog: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        if self._native and self.ssl is None and self._splicer is None:
            self._splicer = _native_splicer()
            if self._splicer is not None:
                loop.add_reader(self._splicer.fileno(), self._on_spliced_closed)
        factory: Callable[[], Any] = lambda: _Sniffer(self)  # noqa: E731
        if self._wrap is not None:
            factory = self._wrap(factory)
        self._server = await loop.create_server(
            factory,
            host,
            port,
            ssl=self.ssl,
            backlog=backlog,
            reuse_address=True,
        )
        addr = self._server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    def _adopt_http(self, fd: int, buf: bytes) -> None:
        """On the main loop: serve an HTTP/1.1 connection the mux thread sniffed."""
        loop = asyncio.get_running_loop()
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        factory = self.http_factory
        task = loop.create_task(_adopt(loop, sock, factory, buf))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._splicer is not None:
            asyncio.get_running_loop().remove_reader(self._splicer.fileno())
            self._splicer.close()
            self._splicer = None
            self._spliced.clear()
        for c in list(self._conns):
            if c.transport is not None:
                c.transport.close()
            up = c._upstream
            if up is not None and up.transport is not None:
                up.transport.close()
        for t in list(self._tasks):
            if t.get_loop() is asyncio.get_running_loop():
                t.cancel()

    async def close(self) -> None:
        loop = self._mux_loop
        if loop is None:
            await self._shutdown()
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        await asyncio.wrap_future(fut)
        here = asyncio.get_running_loop()
        for t in list(self._tasks):
            if t.get_loop() is here:
                t.cancel()
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5)
        loop.close()
        self._mux_loop = None


async def _adopt(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: Callable[[], Any], buf: bytes
) -> None:
    try:
        await loop.connect_accepted_socket(lambda: _Replay(factory, buf), sock)
    except OSError:
        sock.close()
