"""Bytes encoding of ConfChange / ConfChangeV2 carried in conf-change log entries.

A compact, stable, versioned format of our own (peers speak our protocol, and entry data
lives in our WAL):

    v1:  b"\\x01" | type:u8 | node_id:u64 | id:u64 | context...
    v2:  b"\\x01" | transition:u8 | n:u16 | n * (type:u8 | node_id:u64) | context...

All integers big-endian. An empty byte string decodes as the empty ConfChangeV2, which
is what a leader appends to leave a joint configuration automatically (etcd does the same
with a nil-data EntryConfChangeV2).
"""

from __future__ import annotations

import struct

from etcdpy.raft.types import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    EntryType,
)

_VERSION = 1
_V1 = struct.Struct(">BBQQ")
_V2_HEAD = struct.Struct(">BBH")
_V2_ONE = struct.Struct(">BQ")


class ConfChangeDecodeError(ValueError):
    """The bytes are not a conf change in our format."""


def encode_conf_change(cc: ConfChange) -> bytes:
    return _V1.pack(_VERSION, int(cc.type), cc.node_id, cc.id) + cc.context


def decode_conf_change(data: bytes) -> ConfChange:
    if len(data) < _V1.size:
        raise ConfChangeDecodeError("conf change too short")
    ver, typ, node_id, id_ = _V1.unpack_from(data)
    if ver != _VERSION:
        raise ConfChangeDecodeError(f"unknown conf change version {ver}")
    try:
        t = ConfChangeType(typ)
    except ValueError as e:
        raise ConfChangeDecodeError(f"unknown conf change type {typ}") from e
    return ConfChange(type=t, node_id=node_id, context=bytes(data[_V1.size :]), id=id_)


def encode_conf_change_v2(cc: ConfChangeV2) -> bytes:
    if not cc.changes and cc.transition == ConfChangeTransition.Auto and not cc.context:
        return b""
    parts = [_V2_HEAD.pack(_VERSION, int(cc.transition), len(cc.changes))]
    parts += [_V2_ONE.pack(int(c.type), c.node_id) for c in cc.changes]
    parts.append(cc.context)
    return b"".join(parts)


def decode_conf_change_v2(data: bytes) -> ConfChangeV2:
    if not data:
        return ConfChangeV2()
    if len(data) < _V2_HEAD.size:
        raise ConfChangeDecodeError("conf change v2 too short")
    ver, tr, n = _V2_HEAD.unpack_from(data)
    if ver != _VERSION:
        raise ConfChangeDecodeError(f"unknown conf change v2 version {ver}")
    off = _V2_HEAD.size
    if len(data) < off + n * _V2_ONE.size:
        raise ConfChangeDecodeError("conf change v2 truncated")
    changes = []
    try:
        for _ in range(n):
            typ, node_id = _V2_ONE.unpack_from(data, off)
            off += _V2_ONE.size
            changes.append(ConfChangeSingle(type=ConfChangeType(typ), node_id=node_id))
        transition = ConfChangeTransition(tr)
    except ValueError as e:
        raise ConfChangeDecodeError("bad conf change v2 enum value") from e
    return ConfChangeV2(changes=tuple(changes), transition=transition, context=bytes(data[off:]))


def encode(cc: ConfChange | ConfChangeV2) -> tuple[EntryType, bytes]:
    """The entry type and data to carry ``cc`` in the log."""
    if isinstance(cc, ConfChange):
        return EntryType.CONF_CHANGE, encode_conf_change(cc)
    return EntryType.CONF_CHANGE_V2, encode_conf_change_v2(cc)


def decode(entry_type: EntryType, data: bytes) -> ConfChange | ConfChangeV2:
    """Inverse of ``encode``: decode a conf-change entry's data by its entry type."""
    if entry_type == EntryType.CONF_CHANGE:
        return decode_conf_change(data)
    if entry_type == EntryType.CONF_CHANGE_V2:
        return decode_conf_change_v2(data)
    raise ConfChangeDecodeError(f"entry type {entry_type!r} is not a conf change")
