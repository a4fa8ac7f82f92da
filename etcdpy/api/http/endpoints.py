"""Plain HTTP endpoints on the client URL: /health, /livez, /readyz, /version, /metrics, /debug.

etcd's answers, literally:
- ``/health``: ``{"health":"true","reason":""}`` with 200, or ``"false"`` + reason with 503
  (etcd 3.5 etcdhttp/metrics.go: no leader -> "RAFT NO LEADER", an alarm -> "ALARM ...").
- ``/livez`` and ``/readyz`` (etcd 3.6's probes): ``ok`` or ``not ok``-style text and 200/503.
- ``/version``: ``{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}``.
- ``/metrics``: Prometheus text exposition from the member's registry.
"""

from __future__ import annotations

import json
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


def add_routes(
    app: web.Application, server: EtcdServerAPI, registries: list[MetricsRegistry]
) -> None:
    async def health(request: web.Request) -> web.Response:
        ok, reason = server.is_healthy()
        return _json({"health": "true" if ok else "false", "reason": reason}, 200 if ok else 503)

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
        return web.Response(
            text="".join(parts),
            content_type="text/plain",
            charset="utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def debug_vars(request: web.Request) -> web.Response:
        hdr = server.header()
        return _json(
            {
                "etcdserver": server.server_version,
                "etcdcluster": server.cluster_version,
                "member_id": f"{hdr.member_id:x}",
                "cluster_id": f"{hdr.cluster_id:x}",
                "revision": hdr.revision,
                "raft_term": hdr.raft_term,
            }
        )

    app.router.add_get("/health", health)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/version", version)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/debug/vars", debug_vars)
