"""Protobuf wire encoding by concatenation, for the read hot paths (Range, Watch).

The ``key`` bucket already holds every revision as a serialized ``mvccpb.KeyValue``, so a
``RangeResponse`` or a ``WatchResponse`` can be written as "tag + length + stored bytes"
without parsing a value into a message and serializing it again (what the object path spends
most of its time on for big ranges and wide fan-outs).

Rules:

1. The output is what ``SerializeToString()`` of the equivalent message produces: fields in
   field-number order, scalar fields at their default value omitted, a present sub-message
   written even when empty (tests compare both, byte for byte, over random cases).
2. Only the shapes used on the hot paths are covered; everything else stays on the object
   path. Pure functions, no state.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Tag bytes ``(field << 3) | wire_type`` of the fields written here.
_T_HEADER = 0x0A  # RangeResponse.header / WatchResponse.header (1, length-delimited)
_T_KVS = 0x12  # RangeResponse.kvs (2, length-delimited)
_T_MORE = 0x18  # RangeResponse.more (3, varint)
_T_COUNT = 0x20  # RangeResponse.count (4, varint)
_T_WATCH_ID = 0x10  # WatchResponse.watch_id (2, varint)
_T_FRAGMENT = 0x38  # WatchResponse.fragment (7, varint)
_T_EVENTS = 0x5A  # WatchResponse.events (11, length-delimited)
_T_EV_TYPE = 0x08  # mvccpb.Event.type (1, varint)
_T_EV_KV = 0x12  # mvccpb.Event.kv (2, length-delimited)
_T_EV_PREV = 0x1A  # mvccpb.Event.prev_kv (3, length-delimited)

#: ``tag 0x12 + one-byte length`` for every length below 128 (the common small KeyValue).
_KVS_SHORT = tuple(bytes((_T_KVS, n)) for n in range(128))
_COUNT_ONE = bytes((_T_COUNT, 1))


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of ``n``; negative numbers as their 64-bit two's complement
    (how int64 fields are encoded)."""
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(tag: int, data: bytes) -> bytes:
    """``tag + varint(len) + data`` (one field of a message)."""
    return bytes((tag,)) + varint(len(data)) + data


def response_header(cluster_id: int, member_id: int, revision: int, raft_term: int) -> bytes:
    """The ``header`` field (1) of a response: an ``etcdserverpb.ResponseHeader``."""
    body = b""
    if cluster_id:
        body += b"\x08" + varint(cluster_id)
    if member_id:
        body += b"\x10" + varint(member_id)
    if revision:
        body += b"\x18" + varint(revision)
    if raft_term:
        body += b"\x20" + varint(raft_term)
    return length_delimited(_T_HEADER, body)


class HeaderCache:
    """The serialized header of the last response, rebuilt only when one of its fields
    changes: responses between two writes share it (four varints in Python were ~5 % of a
    one-key range's time on the event loop). Ranges and watch events each keep one."""

    __slots__ = ("_bytes", "_key")

    def __init__(self) -> None:
        self._key: tuple[int, int, int, int] | None = None
        self._bytes = b""

    def get(self, cluster_id: int, member_id: int, revision: int, raft_term: int) -> bytes:
        key = (cluster_id, member_id, revision, raft_term)
        if key != self._key:
            self._bytes = response_header(cluster_id, member_id, revision, raft_term)
            self._key = key
        return self._bytes


def range_response(header: bytes, kvs: Iterable[bytes], more: bool, count: int) -> bytes:
    """A serialized ``RangeResponse``: ``header`` from :func:`response_header`, ``kvs`` the
    serialized ``KeyValue`` messages in response order."""
    parts = [header]
    ap = parts.append
    short = _KVS_SHORT
    for v in kvs:
        n = len(v)
        if n < 128:
            ap(short[n])
        elif n < 16384:  # two varint bytes, without varint()'s loop (values of 128 B-16 KiB)
            ap(bytes((_T_KVS, (n & 0x7F) | 0x80, n >> 7)))
        else:
            ap(bytes((_T_KVS,)) + varint(n))
        ap(v)
    if more:
        ap(b"\x18\x01")
    if count:
        ap(_COUNT_ONE if count == 1 else bytes((_T_COUNT,)) + varint(count))
    return b"".join(parts)


def event(ev_type: int, kv: bytes, prev_kv: bytes | None) -> bytes:
    """A serialized ``mvccpb.Event`` (``kv`` always present, ``prev_kv`` when not None)."""
    out = (b"\x08" + varint(ev_type) if ev_type else b"") + length_delimited(_T_EV_KV, kv)
    if prev_kv is not None:
        out += length_delimited(_T_EV_PREV, prev_kv)
    return out


def event_field(ev: bytes) -> bytes:
    """One ``events`` entry (field 11) of a ``WatchResponse``."""
    return length_delimited(_T_EVENTS, ev)


def watch_events_response(
    header: bytes, watch_id: int, events: Iterable[bytes], fragment: bool = False
) -> bytes:
    """A serialized ``WatchResponse`` carrying events: ``events`` are already framed with
    :func:`event_field`."""
    parts = [header]
    if watch_id:
        parts.append(bytes((_T_WATCH_ID,)) + varint(watch_id))
    if fragment:
        parts.append(b"\x38\x01")
    parts += events
    return b"".join(parts)
