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
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import grpc

from etcdpy.api.v3.common import ApiContext, ClientAPIOptions
from etcdpy.api.v3.server import build_grpc_server
from etcdpy.observability.logging import Logger, log_serving_client_traffic
from etcdpy.server.facade import EtcdServerAPI
from etcdpy.transport.cmux import ClientMux, private_unix_path
from etcdpy.transport.tls import (
    DEFAULT_SERVER_ALPN,
    TLSInfo,
    checked_protocol_factory,
    conn_check,
    server_ssl_context,
)

if TYPE_CHECKING:
    from aiohttp import web

Mode = Literal["mux", "grpc", "http"]

HTTP_BACKLOG = 128
"""aiohttp's ``TCPSite`` default, kept for the lazily built HTTP side."""


def build_http_app(api: ApiContext, methods: list[Any] | None = None) -> web.Application:
    """The HTTP/1.1 side: etcd's plain endpoints plus the grpc-gateway JSON API."""
    from aiohttp import web

    from etcdpy.api.http.endpoints import add_routes, go_http_errors
    from etcdpy.api.v3.gateway import Gateway

    app = web.Application(
        client_max_size=api.options.max_recv_bytes, middlewares=[go_http_errors]
    )
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
    http: LazyHttp | None = None
    """The HTTP/1.1 side of ``"mux"``/``"http"`` listeners, built on its first connection."""
    _http_server: asyncio.AbstractServer | None = None
    _tmpdir: str | None = None
    _api: ApiContext | None = None
    _closed: bool = field(default=False)

    async def close(self, grace: float | None = 0.0) -> None:
        if self._closed:
            return
        self._closed = True
        if self.mux is not None:
            if self._api is not None and self.mux.peer_info in self._api.peer_lookups:
                self._api.peer_lookups.remove(self.mux.peer_info)
            await self.mux.close()
        if self._http_server is not None:
            self._http_server.close()
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace)
        if self.http is not None:
            await self.http.close()
        if self.runner is not None:
            await self.runner.cleanup()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def _conn_checker(
    tls: ClientTLS | None,
) -> Callable[[Callable[[], Any]], Callable[[], Any]] | None:
    """CRL / allowed CN / allowed hostname, checked per connection after the handshake."""
    check = conn_check(tls.tls_info()) if tls is not None else None
    if check is None:
        return None
    return lambda factory: checked_protocol_factory(factory, check)


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


@dataclass(frozen=True)
class ClientTLS:
    """etcd's --cert-file/--key-file/--trusted-ca-file/--client-cert-auth for client URLs.

    ``info`` (``transport.tls.client_tls_info(config)``) carries the rest of etcd's flags
    (CRL, allowed CN/hostname, ciphers, TLS versions); without it one is built from the four
    fields. ``transport.tls`` owns the SSL context and the per-connection checks.
    """

    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    info: TLSInfo | None = None

    @staticmethod
    def from_info(info: TLSInfo) -> ClientTLS:
        return ClientTLS(
            info.cert_file, info.key_file, info.trusted_ca_file, info.client_cert_auth, info
        )

    def tls_info(self) -> TLSInfo:
        if self.info is not None:
            return self.info
        return TLSInfo(
            cert_file=self.cert_file,
            key_file=self.key_file,
            trusted_ca_file=self.trusted_ca_file,
            client_cert_auth=self.client_cert_auth,
        )

    def ssl_context(self, http2: bool = True) -> ssl.SSLContext:
        """For the multiplexer (ALPN prefers http/1.1, gRPC clients offer only h2 and get it:
        see ``transport.tls`` rule 3) or an HTTP-only listener (http/1.1 only)."""
        alpn = DEFAULT_SERVER_ALPN if http2 else ("http/1.1",)
        return server_ssl_context(self.tls_info(), alpn=alpn)

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """For grpc owning the port (no CRL / allowed-CN checks there yet)."""
        info = self.tls_info()

        def read(path: str) -> bytes:
            with open(path, "rb") as f:
                return f.read()

        return grpc.ssl_server_credentials(
            [(read(info.key_file), read(info.cert_file))],
            root_certificates=read(info.trusted_ca_file) if info.trusted_ca_file else None,
            require_client_auth=info.needs_client_cert(),
        )


async def serve_metrics(
    url: str, api: ApiContext, logger: Logger | None = None, tls: ClientTLS | None = None
) -> ClientListener:
    """etcd's --listen-metrics-urls: an extra HTTP listener answering /metrics and /health
    (and the other plain endpoints), without the gRPC or JSON APIs."""
    host, port, secure = _host_port(url)
    if secure and tls is None:
        raise ValueError(f"{url}: https metrics URL needs --cert-file and --key-file")
    from aiohttp import web

    from etcdpy.api.http.endpoints import add_routes, go_http_errors

    app = web.Application(middlewares=[go_http_errors])
    add_routes(app, api.server, [api.registry])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = tls.ssl_context(http2=False) if (secure and tls is not None) else None
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ctx)
    await site.start()
    addr = runner.addresses[0]
    if logger is not None:
        logger.info("serving metrics", {"address": f"{host}:{addr[1]}"})
    return ClientListener(url, (host, int(addr[1])), "http", runner=runner, http_site=site)


async def serve_client(
    url: str,
    server_api: EtcdServerAPI | ApiContext,
    options: ClientAPIOptions | None = None,
    logger: Logger | None = None,
    mode: Mode = "mux",
    threaded_mux: bool = False,
    tls: ClientTLS | None = None,
    native_splice: bool = True,
) -> ClientListener:
    """Start serving ``url`` (``http(s)://host:port``; port 0 picks one); return the listener.

    ``https://`` needs ``tls``. With TLS the multiplexer terminates TLS itself (Python's ssl)
    and splices plaintext to grpc; in ``"grpc"`` mode grpc terminates TLS. The client
    certificate's CN reaches auth in grpc mode through ``context.auth_context()``; in mux mode
    it is available per connection in the mux (``transport.get_extra_info("peercert")``)
    but not yet passed on to the gRPC handlers (see the report / docs). ``native_splice``
    lets plaintext gRPC connections be spliced by the native thread when it was built
    (``transport/_splice.c``); False keeps them on the Python splice (tests compare both).
    """
    if isinstance(server_api, ApiContext):
        api = server_api
        if api.logger is None:
            api.logger = logger
    else:
        api = ApiContext(server_api, options, logger=logger)
    host, port, secure = _host_port(url)
    if secure and tls is None:
        raise ValueError(f"{url}: https client URL needs --cert-file and --key-file")
    if not secure:
        tls = None
    if tls is not None and threaded_mux:
        threaded_mux = False  # TLS state lives on one loop
    if tls is not None and tls.client_cert_auth:
        api.cert_cn_auth = True

    if mode == "grpc":
        gsrv, _ = build_grpc_server(api)
        if tls is not None:
            bound = gsrv.add_secure_port(f"{host}:{port}", tls.grpc_credentials())
        else:
            bound = gsrv.add_insecure_port(f"{host}:{port}")
        await gsrv.start()
        lst = ClientListener(url, (host, bound), mode, grpc_server=gsrv)
    elif mode == "http":
        http = LazyHttp(api, None)
        ctx = tls.ssl_context(http2=False) if tls is not None else None
        # (CRL / allowed-CN checks on an HTTP-only TLS listener: not wired yet)
        srv = await asyncio.get_running_loop().create_server(
            http, host, port, ssl=ctx, backlog=HTTP_BACKLOG, reuse_address=True
        )
        addr = srv.sockets[0].getsockname()
        lst = ClientListener(url, (host, int(addr[1])), mode, http=http, _http_server=srv)
    else:
        gsrv, methods = build_grpc_server(api)
        tmpdir, path = private_unix_path()
        gsrv.add_insecure_port(f"unix:{path}")
        await gsrv.start()
        http = LazyHttp(api, methods)
        mux = ClientMux(
            http,
            path,
            ssl=tls.ssl_context() if tls is not None else None,
            threaded=threaded_mux,
            loop_factory=_loop_factory(),
            wrap_protocol=_conn_checker(tls),
            native=native_splice,
        )
        _, bound = await mux.start(host, port)
        api.peer_lookups.append(mux.peer_info)
        lst = ClientListener(
            url,
            (host, bound),
            mode,
            grpc_server=gsrv,
            http=http,
            mux=mux,
            _tmpdir=tmpdir,
            _api=api,
        )
    if logger is not None:
        log_serving_client_traffic(logger, f"{host}:{lst.address[1]}", secure=secure)
    return lst


class LazyHttp:
    """The HTTP/1.1 side of a client listener as a protocol factory that builds the aiohttp
    application on the first HTTP connection: aiohttp and the JSON gateway (~11 MiB of a
    member's idle RSS) are imported only by members that are asked for HTTP. Connections
    accepted while it is being built wait in ``_PendingHttp`` (their bytes buffered) and
    are handed to aiohttp's protocol as if it had accepted them."""

    def __init__(self, api: ApiContext, methods: list[Any] | None) -> None:
        self._api = api
        self._methods = methods
        self.runner: web.AppRunner | None = None
        self._factory: Callable[[], asyncio.BaseProtocol] | None = None
        self._waiting: list[_PendingHttp] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def __call__(self) -> asyncio.BaseProtocol:
        if self._factory is not None:
            return self._factory()
        p = _PendingHttp()
        self._waiting.append(p)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._build())
        return p

    async def _build(self) -> None:
        from aiohttp import web

        try:
            runner = web.AppRunner(
                build_http_app(self._api, self._methods),
                handler_cancellation=True,
                access_log=None,
            )
            await runner.setup()
        except BaseException:
            self._task = None  # the next connection tries again
            waiting, self._waiting = self._waiting, []
            for p in waiting:
                p.abort()
            raise
        if self._closed:
            await runner.cleanup()
            waiting, self._waiting = self._waiting, []
            for p in waiting:
                p.abort()
            return
        assert runner.server is not None
        self.runner = runner
        self._factory = runner.server
        waiting, self._waiting = self._waiting, []
        for p in waiting:
            p.hand_over(runner.server)

    async def close(self) -> None:
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait({task})
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        waiting, self._waiting = self._waiting, []
        for p in waiting:
            p.abort()


class _PendingHttp(asyncio.Protocol):
    """An HTTP connection accepted before the aiohttp application exists: remembers what
    happened to it until the application is there (``hand_over``) and it is connected
    (the loop calls ``connection_made`` after the factory, possibly after ``hand_over``)."""

    def __init__(self) -> None:
        self._transport: asyncio.BaseTransport | None = None
        self._factory: Callable[[], asyncio.BaseProtocol] | None = None
        self._buf: list[bytes] = []
        self._eof = False
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._factory is not None:
            self._switch(transport, self._factory)

    def data_received(self, data: bytes) -> None:
        self._buf.append(data)

    def eof_received(self) -> bool:
        self._eof = True
        return True  # keep the transport until the real protocol decides

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True

    def hand_over(self, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._factory = factory
        if self._transport is not None:
            self._switch(self._transport, factory)

    def _switch(
        self, t: asyncio.BaseTransport, factory: Callable[[], asyncio.BaseProtocol]
    ) -> None:
        if self._lost:
            return
        proto = factory()
        t.set_protocol(proto)
        proto.connection_made(t)
        assert isinstance(proto, asyncio.Protocol)
        for data in self._buf:
            proto.data_received(data)
        self._buf = []
        if self._eof and not proto.eof_received():
            t.close()

    def abort(self) -> None:
        if self._transport is not None and not self._lost:
            self._transport.close()
        self._lost = True
