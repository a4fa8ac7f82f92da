"""Plain HTTP endpoints on the client URL: /health, /livez, /readyz, /version, /metrics, /debug.

etcd's answers, literally:
- ``/health``: ``{"health":"true","reason":""}`` with 200, or ``"false"`` + reason with 503
  (etcd 3.5 etcdhttp/metrics.go: no leader -> "RAFT NO LEADER", an alarm -> "ALARM ...").
- ``/livez`` and ``/readyz`` (etcd 3.6's probes): ``ok`` or ``not ok``-style text and 200/503.
- ``/version``: ``{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}``.
- ``/metrics``: Prometheus text exposition from the member's registry.
- ``/debug/vars``: Go's expvar page with etcd's variables (``raft.status`` in Go raft's JSON).
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from etcdpy.observability.metrics import MetricsRegistry
from etcdpy.server.facade import EtcdServerAPI


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


_GATEWAY_PREFIXES = ("/v3/", "/v3beta/", "/v3alpha/")


def _go_error(status: int, text: str) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@web.middleware
async def go_http_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown paths and methods answer as etcd's Go server does: ``404 page not found``
    (net/http), ``Not Found`` under the grpc-gateway's ``/v3`` prefixes, ``Method Not
    Allowed``; text, not aiohttp's own pages."""
    try:
        resp: web.StreamResponse = await handler(request)
        return resp
    except web.HTTPNotFound:
        gateway = request.path.startswith(_GATEWAY_PREFIXES)
        return _go_error(404, "Not Found\n" if gateway else "404 page not found\n")
    except web.HTTPMethodNotAllowed:
        return _go_error(405, "Method Not Allowed\n")


def expvars(raft_status: Callable[[], dict[str, Any] | None] | None) -> str:
    """etcd's /debug/vars: Go's expvar page, with the variables etcd publishes that mean
    something here (``cmdline``, ``file_descriptor_limit``, ``raft.status``; not Go's
    ``memstats``), sorted by name, one per line, as Go's handler writes them."""
    values: dict[str, Any] = {
        "cmdline": sys.argv,
        "file_descriptor_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }
    status = raft_status() if raft_status is not None else None
    if status is not None:
        values["raft.status"] = status
    lines = [f"{json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
             for k, v in sorted(values.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def add_routes(
    app: web.Application, server: EtcdServerAPI, registries: list[MetricsRegistry]
) -> None:
    async def health(request: web.Request) -> web.Response:
        ok, reason = server.is_healthy()
        body = json.dumps({"health": "true" if ok else "false", "reason": reason},
                          separators=(",", ":"))
        # etcd writes the JSON without a Content-Type; Go's sniffing then says text/plain
        return web.Response(text=body, status=200 if ok else 503, content_type="text/plain",
                            charset="utf-8")

    async def livez(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(request: web.Request) -> web.Response:
        ok, reason = server.is_healthy()
        if ok:
            return web.Response(text="ok")
        return web.Response(text=f"[-]{reason} failed\nreadyz check failed", status=503)

    async def version(request: web.Request) -> web.Response:
        return _json({"etcdserver": server.server_version, "etcdcluster": server.cluster_version})

    async def metrics(request: web.Request) -> web.Response:
        parts: list[str] = []
        seen: set[int] = set()
        for reg in registries:
            if id(reg) not in seen:
                seen.add(id(reg))
                parts.append(reg.render())
        own = getattr(server, "metrics", None)
        if own is not None and id(own) not in seen and hasattr(own, "render"):
            parts.append(str(own.render()))
        # client_golang's exposition type, version included (scrapers negotiate on it)
        resp = web.Response(text="".join(parts), headers={"X-Content-Type-Options": "nosniff"})
        resp.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
        return resp

    async def debug_vars(request: web.Request) -> web.Response:
        return web.Response(
            text=expvars(getattr(server, "raft_status", None)),
            content_type="application/json",
            charset="utf-8",
        )

    app.router.add_get("/health", health)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/version", version)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/debug/vars", debug_vars)
