"""A minimal one-port multiplexer, the shape of ``etcdpy/transport/cmux.py``, for TLS tests.

TLS is terminated by asyncio (``create_server(ssl=...)``, MemoryBIO underneath); the
wrapper from ``checked_protocol_factory`` runs the CRL / allowed-CN check; the sniffer routes
decrypted HTTP/2 (the preface) to a grpc.aio server on a private unix socket and anything
else to an aiohttp ``web.Server`` on the same transport. Also serves the benchmark.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from etcdpy.transport.tls import ConnCheck, checked_protocol_factory, common_name

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Up(asyncio.Protocol):
    def __init__(self, down: asyncio.Transport) -> None:
        self.down = down
        self.t: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.down.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.close()

    def pause_writing(self) -> None:
        self.down.pause_reading()

    def resume_writing(self) -> None:
        self.down.resume_reading()


class _Sniff(asyncio.Protocol):
    def __init__(self, mux: StandInMux) -> None:
        self.mux = mux
        self.t: asyncio.Transport | None = None
        self.buf = b""
        self.up: _Up | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        self.mux.common_names.append(common_name(transport.get_extra_info("ssl_object")))
        self.mux.alpn.append(transport.get_extra_info("ssl_object").selected_alpn_protocol())

    def data_received(self, data: bytes) -> None:
        if self.up is not None:
            if self.up.t is not None:
                self.up.t.write(data)
            else:
                self.buf += data
            return
        buf = self.buf + data
        n = min(len(buf), len(PREFACE))
        if buf[:n] != PREFACE[:n]:
            assert self.t is not None
            proto = self.mux.http_factory()
            self.t.set_protocol(proto)
            proto.connection_made(self.t)
            proto.data_received(buf)
            return
        self.buf = buf
        if n == len(PREFACE):
            assert self.t is not None
            self.t.pause_reading()
            self.up = _Up(self.t)
            task = asyncio.get_running_loop().create_task(self._connect())
            self.mux.tasks.add(task)
            task.add_done_callback(self.mux.tasks.discard)

    async def _connect(self) -> None:
        assert self.up is not None and self.t is not None
        up = self.up
        await asyncio.get_running_loop().create_unix_connection(lambda: up, self.mux.grpc_path)
        assert up.t is not None
        up.t.write(self.buf)
        self.buf = b""
        self.t.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.up is not None and self.up.t is not None:
            self.up.t.close()

    def pause_writing(self) -> None:
        if self.up is not None and self.up.t is not None:
            self.up.t.pause_reading()

    def resume_writing(self) -> None:
        if self.up is not None and self.up.t is not None:
            self.up.t.resume_reading()


class StandInMux:
    def __init__(
        self,
        http_factory: Callable[[], Any],
        grpc_path: str,
        ctx: ssl.SSLContext,
        check: ConnCheck | None = None,
    ) -> None:
        self.http_factory = http_factory
        self.grpc_path = grpc_path
        self.ctx = ctx
        self.check = check
        self.common_names: list[str | None] = []
        self.alpn: list[str | None] = []
        self.rejected: list[str] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        factory = checked_protocol_factory(
            lambda: _Sniff(self), self.check, lambda why, _peer: self.rejected.append(why)
        )
        self.server = await loop.create_server(factory, "127.0.0.1", 0, ssl=self.ctx)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()
