"""The HTTP/1.1 side of a client listener is built on its first connection (``LazyHttp``):
connections that arrive together while it is being built are all answered, in both the
multiplexed and the HTTP-only listener."""

from __future__ import annotations

import asyncio

import pytest

from etcdpy.api.serve import Mode
from tests.api.conftest import _serve


async def _raw_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


@pytest.mark.parametrize("mode", ["mux", "http"])
def test_first_connections_together_are_all_answered(mode: Mode) -> None:
    for served in _serve(mode):
        assert served.listener.http is not None and served.listener.http.runner is None

        async def burst(port: int) -> list[bytes]:
            async with asyncio.timeout(20):
                return list(await asyncio.gather(*(_raw_get(port, "/health") for _ in range(8))))

        for resp in asyncio.run(burst(served.port)):
            assert resp.startswith(b"HTTP/1.1 200"), resp[:80]
            assert resp.endswith(b'{"health":"true","reason":""}')
        assert served.listener.http.runner is not None
