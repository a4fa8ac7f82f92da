"""``--quota-backend-bytes``: when the KV backend is full, writes fail with NOSPACE."""

from __future__ import annotations

from collections.abc import Callable


class Quota:
    """``--quota-backend-bytes`` (etcd's backendQuota): 0 → 2 GiB default, < 0 → none.

    Measured against the bytes the backend's B-trees use (``db_size_in_use``), not the file:
    LMDB's copy-on-write keeps freed pages in the file until reused, and a fresh
    environment's fixed pages would otherwise eat a small quota. The measure is refreshed
    when the estimate (last measure + costs since) nears the quota, or every 1024 writes,
    so the common write does no syscall (runs on the KV writer thread).
    """

    DEFAULT = 2 * 1024 * 1024 * 1024
    REFRESH_EVERY = 1024

    def __init__(self, size_fn: Callable[[], int], quota_bytes: int) -> None:
        self._size = size_fn
        self.bytes = self.DEFAULT if quota_bytes == 0 else quota_bytes
        self._measured = -1
        self._since = 0
        self._calls = 0

    def available(self, cost: int) -> bool:
        if self.bytes < 0:
            return True
        self._calls += 1
        if (
            self._measured < 0
            or self._calls >= self.REFRESH_EVERY
            or self._measured + self._since + cost > self.bytes * 0.9
        ):
            self._measured = self._size()
            self._since = 0
            self._calls = 0
        if self._measured + self._since + cost > self.bytes:
            return False
        self._since += cost
        return True
