"""MVCC revisions and their on-disk keys (etcd ``mvcc/revision.go``).

A revision is ``(main, sub)``: ``main`` is the store revision of a write transaction, ``sub``
the index of the change inside it. In the ``key`` bucket a revision is stored as etcd does:
8-byte big-endian ``main``, ``b"_"``, 8-byte big-endian ``sub`` (17 bytes, so byte order is
revision order); a deletion appends ``b"t"`` (18 bytes, the tombstone mark).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

REV_BYTES_LEN = 17
MARKED_REV_BYTES_LEN = 18
MARK_TOMBSTONE = 0x74  # b"t"

_REV = struct.Struct(">QBQ")
_MAIN = struct.Struct(">Q")


class Revision(NamedTuple):
    """``(main, sub)``; tuples order like etcd's ``revision.GreaterThan``."""

    main: int
    sub: int = 0

    def to_bytes(self, tombstone: bool = False) -> bytes:
        """The ``key`` bucket key of this revision (18 bytes with the tombstone mark)."""
        b = _REV.pack(self.main, 0x5F, self.sub)
        return b + b"t" if tombstone else b


def rev_to_bytes(main: int, sub: int = 0) -> bytes:
    """17-byte key of ``(main, sub)`` (hot path: no Revision object)."""
    return _REV.pack(main, 0x5F, sub)


def bytes_to_rev(b: bytes) -> Revision:
    """Decode a 17- or 18-byte revision key (the tombstone mark is ignored)."""
    main, _, sub = _REV.unpack_from(b)
    return Revision(main, sub)


def main_of(b: bytes) -> int:
    """The main revision of a revision key, without decoding ``sub``."""
    return int(_MAIN.unpack_from(b)[0])


def is_tombstone(b: bytes) -> bool:
    """True for an 18-byte key carrying the tombstone mark."""
    return len(b) == MARKED_REV_BYTES_LEN and b[-1] == MARK_TOMBSTONE
