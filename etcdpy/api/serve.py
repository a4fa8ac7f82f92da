"""Serve one client URL: gRPC (all v3 services) and HTTP/1.1 (/health, /version, /metrics,
/v3/* JSON gateway) on the same port, as etcd does; or only one of them.

Modes (etcd 3.5 flags):
- ``"mux"`` (a --listen-client-urls URL when no --listen-client-http-urls is given): one port,
  connections routed by their first bytes (``transport/cmux.py``), gRPC spliced to a private
  unix socket;
- ``"grpc"`` (a --listen-client-urls URL when --listen-client-http-urls is given): grpc.aio
  owns the port, no multiplexer on the gRPC path;
- ``"http"`` (a --listen-client-http-urls URL): aiohttp owns the port.

``embed`` builds one ``ApiContext`` per member and calls ``serve_client`` once per URL.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import grpc
from aiohttp import web

from etcdpy.api.http.endpoints import add_routes
from etcdpy.api.v3.common import ApiContext, ClientAPIOptions
from etcdpy.api.v3.gateway import Gateway
from etcdpy.api.v3.server import build_grpc_server
from etcdpy.observability.logging import Logger, log_serving_client_traffic
from etcdpy.server.facade import EtcdServerAPI
from etcdpy.transport.cmux import ClientMux, private_unix_path

Mode = Literal["mux", "grpc", "http"]


def build_http_app(api: ApiContext, methods: list[Any] | None = None) -> web.Application:
    """The HTTP/1.1 side: etcd's plain endpoints plus the grpc-gateway JSON API."""
    app = web.Application(client_max_size=api.options.max_recv_bytes)
    add_routes(app, api.server, [api.registry])
    if methods is None:
        from etcdpy.api.v3.server import all_methods

        methods = all_methods(api)
    Gateway(api, methods).add_routes(app)
    return app


@dataclass
class ClientListener:
    """One served client URL; ``address`` is the bound (host, port)."""

    url: str
    address: tuple[str, int]
    mode: Mode
    grpc_server: grpc.aio.Server | None = None
    runner: web.AppRunner | None = None
    mux: ClientMux | None = None
    http_site: web.BaseSite | None = None
    _tmpdir: str | None = None
    _closed: bool = field(default=False)

    async def close(self, grace: float | None = 0.0) -> None:
        if self._closed:
            return
        self._closed = True
        if self.mux is not None:
            await self.mux.close()
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace)
        if self.runner is not None:
            await self.runner.cleanup()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def _host_port(url: str) -> tuple[str, int, bool]:
    u = urlsplit(url)
    if u.scheme not in ("http", "https"):
        raise ValueError(f"unsupported client URL scheme {u.scheme!r} in {url!r}")
    if u.hostname is None or u.port is None:
        raise ValueError(f"client URL {url!r} needs host:port")
    return u.hostname, u.port, u.scheme == "https"


async def serve_client(
    url: str,
    server_api: EtcdServerAPI | ApiContext,
    options: ClientAPIOptions | None = None,
    logger: Logger | None = None,
    mode: Mode = "mux",
    threaded_mux: bool = True,
) -> ClientListener:
    """Start serving ``url`` (``http://host:port``; port 0 picks one) and return the listener.

    TLS (``https://``) is not implemented yet: the seam is ``ClientMux(ssl=...)`` (mux) and
    ``add_secure_port`` (grpc mode).
    """
    if isinstance(server_api, ApiContext):
        api = server_api
        if api.logger is None:
            api.logger = logger
    else:
        api = ApiContext(server_api, options, logger=logger)
    host, port, secure = _host_port(url)
    if secure:
        raise NotImplementedError("https client URLs are not supported yet")

    if mode == "grpc":
        gsrv, _ = build_grpc_server(api)
        bound = gsrv.add_insecure_port(f"{host}:{port}")
        await gsrv.start()
        lst = ClientListener(url, (host, bound), mode, grpc_server=gsrv)
    elif mode == "http":
        runner = web.AppRunner(build_http_app(api), handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        addr = runner.addresses[0]
        lst = ClientListener(url, (host, int(addr[1])), mode, runner=runner, http_site=site)
    else:
        gsrv, methods = build_grpc_server(api)
        tmpdir, path = private_unix_path()
        gsrv.add_insecure_port(f"unix:{path}")
        await gsrv.start()
        runner = web.AppRunner(
            build_http_app(api, methods), handler_cancellation=True, access_log=None
        )
        await runner.setup()
        assert runner.server is not None
        mux = ClientMux(runner.server, path, threaded=threaded_mux, loop_factory=_loop_factory())
        _, bound = await mux.start(host, port)
        lst = ClientListener(
            url, (host, bound), mode, grpc_server=gsrv, runner=runner, mux=mux, _tmpdir=tmpdir
        )
    if logger is not None:
        log_serving_client_traffic(logger, f"{host}:{lst.address[1]}", secure=secure)
    return lst
