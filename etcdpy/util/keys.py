"""Key-range helpers shared by the store and the client-side recipes (etcd's clientv3)."""

from __future__ import annotations


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` selecting every key with ``prefix`` (etcd ``GetPrefixRangeEnd``):
    the prefix with its last non-0xff byte incremented, or ``b"\\x00"`` (no end)."""
    b = bytearray(prefix)
    for i in range(len(b) - 1, -1, -1):
        if b[i] < 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return b"\x00"
