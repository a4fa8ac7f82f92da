"""SIGKILL a process applying batches: consistent_index always matches the KV content."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from etcdpy.mvcc.kvstore import KVStore
from etcdpy.storage.backend import Backend

CHILD = r"""
import sys
from etcdpy.storage.backend import Backend
from etcdpy.mvcc.kvstore import KVStore
b = Backend(sys.argv[1], map_size=1 << 27)
kv = KVStore(b)
i = b.consistent_index()
while True:
    i += 1
    with b.write_txn() as w:
        t = kv.write(w)
        t.put(b"k%08d" % i, b"v" * 100)
        t.put(b"last", b"%d" % i)
        t.end()
        w.set_consistent_index(i, 1)
    print(i, flush=True)
"""


def test_kill_during_apply_keeps_index_and_data_together(tmp_path: Path) -> None:
    path = str(tmp_path / "kv")
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=root)
    acked = 0
    for _round in range(3):
        p = subprocess.Popen(
            [sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, env=env, text=True
        )
        assert p.stdout is not None
        deadline = time.monotonic() + 20
        target = acked + 150
        while acked < target and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            acked = int(line)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        p.stdout.close()
        assert acked >= target, "child did not make progress"

        b = Backend(path, map_size=1 << 27)
        try:
            kv = KVStore(b)
            ci = b.consistent_index()
            assert ci >= acked  # everything acknowledged survived
            assert kv.current_revision == ci + 1  # one revision per batch, from 1
            r = kv.range(b"k", b"l", count_only=True)
            assert r.count == ci
            last = kv.range(b"last").kvs[0]
            assert last.value == b"%d" % ci and last.version == ci
            assert not kv.range(b"k%08d" % (ci + 1)).kvs
            acked = ci
        finally:
            b.close()
