"""LMDB storage: the raft log (``wal``), snapshot payloads (``snap``), the KV backend.

Everything here is synchronous and runs on the thread that owns the environment
(ARCHITECTURE 3.4): one writer thread per environment, short read transactions
anywhere. The data-dir layout and its format version live in ``layout``.
"""

from __future__ import annotations
