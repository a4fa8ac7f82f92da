"""etcd-style unique ID generator (etcd's ``pkg/idutil``).

An ID is ``member_id_low16 << 48 | (unix_ms_low40 << 8) + counter`` — unique across members
(prefix) and across restarts (the wall clock at start, in milliseconds, seeds the suffix), and
cheap: ``next()`` is one add. etcd uses these as raft request IDs and lease IDs.
"""

from __future__ import annotations

TS_LEN = 5 * 8
CNT_LEN = 8
SUFFIX_LEN = TS_LEN + CNT_LEN


def _lowbit(x: int, n: int) -> int:
    return x & ((1 << n) - 1)


class Generator:
    """Generates IDs; one per member. Not thread-safe: call it from the event loop only."""

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, member_id: int, now_unix_ms: int) -> None:
        self._prefix = _lowbit(member_id, 16) << SUFFIX_LEN
        self._suffix = _lowbit(now_unix_ms, TS_LEN) << CNT_LEN

    def next(self) -> int:
        self._suffix += 1
        return self._prefix | _lowbit(self._suffix, SUFFIX_LEN)
