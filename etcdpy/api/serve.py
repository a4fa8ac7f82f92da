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
from etcdpy.transport.tls import (
    DEFAULT_SERVER_ALPN,
    TLSInfo,
    checked_protocol_factory,
    conn_check,
    server_ssl_context,
)

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
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace)
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
    app = web.Application()
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
        runner = web.AppRunner(build_http_app(api), handler_cancellation=True, access_log=None)
        await runner.setup()
        ctx = tls.ssl_context(http2=False) if tls is not None else None
        site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ctx)
        # (CRL / allowed-CN checks on an HTTP-only TLS listener: not wired yet)
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
        mux = ClientMux(
            runner.server,
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
            runner=runner,
            mux=mux,
            _tmpdir=tmpdir,
            _api=api,
        )
    if logger is not None:
        log_serving_client_traffic(logger, f"{host}:{lst.address[1]}", secure=secure)
    return lst
