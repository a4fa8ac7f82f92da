"""Auto compaction (``--auto-compaction-mode``/``--auto-compaction-retention``), leader only.

Simplified from etcd's compactors: ``revision`` mode compacts every 5 minutes to the current
revision minus the retention; ``periodic`` mode samples the revision every tenth of the
retention period (at most hourly, at least every second) and compacts to the revision seen
one retention period ago. Compaction goes through raft like a client's Compact.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb

if TYPE_CHECKING:
    from etcdpy.server.etcdserver import EtcdServer

REVISION_MODE_INTERVAL = 300.0


async def run_compactor(server: EtcdServer) -> None:
    retention = server.settings.auto_compaction_retention
    loop = asyncio.get_running_loop()
    if server.settings.auto_compaction_mode == "revision":
        while not server.stopped:
            await asyncio.sleep(REVISION_MODE_INTERVAL)
            target = server.revision - int(retention)
            if server.is_leader and target > server.compact_revision:
                await _compact(server, target)
        return
    interval = max(min(retention / 10, 3600.0), 1.0)
    samples: list[tuple[float, int]] = []
    while not server.stopped:
        await asyncio.sleep(interval)
        now = loop.time()
        samples.append((now, server.revision))
        old = [rev for t, rev in samples if now - t >= retention]
        if old:
            samples = [(t, rev) for t, rev in samples if now - t < retention]
            target = old[-1]
            if server.is_leader and target > server.compact_revision:
                await _compact(server, target)


async def _compact(server: EtcdServer, rev: int) -> None:
    try:
        await server.compact(pb.CompactionRequest(revision=rev))
        server.log.info("completed auto compaction", {"revision": rev})
    except errors.EtcdError as exc:
        server.log.warn("failed auto compaction", {"revision": rev, "error": str(exc)})
