"""Members of the cluster, their IDs, and how they are stored (etcd's ``api/membership``).

Rules:
1. IDs are derived as etcd derives them, so the same flags give the same IDs:
   member ID = first 8 bytes (big-endian) of SHA-1(sorted peer URLs joined + cluster token
   [+ unix seconds when added at runtime]); cluster ID = SHA-1 over the sorted member IDs as
   8-byte big-endian words.
2. A member record is etcd's JSON (``{"id":..,"peerURLs":[..],"name":..,"clientURLs":[..]}``):
   it travels in ConfChange contexts and is stored under the member's hex ID in the
   ``members`` bucket; removed IDs go to ``members_removed``.
3. Pure: the backend is passed in (anything with ``unsafe_put``/``unsafe_delete``/
   ``unsafe_for_each``/``unsafe_get``), no I/O of its own.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

BUCKET_MEMBERS = b"members"
BUCKET_MEMBERS_REMOVED = b"members_removed"
BUCKET_CLUSTER = b"cluster"
CLUSTER_VERSION_KEY = b"clusterVersion"
CLUSTER_ID_KEY = b"clusterID"
LOCAL_ID_KEY = b"localMemberID"


def compute_member_id(
    peer_urls: Iterable[str], cluster_token: str, now_unix: int | None = None
) -> int:
    b = "".join(sorted(peer_urls)).encode() + cluster_token.encode()
    if now_unix is not None:
        b += str(now_unix).encode()
    return int(struct.unpack(">Q", hashlib.sha1(b).digest()[:8])[0])


def compute_cluster_id(member_ids: Iterable[int]) -> int:
    b = b"".join(struct.pack(">Q", i) for i in sorted(member_ids))
    return int(struct.unpack(">Q", hashlib.sha1(b).digest()[:8])[0])


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    name: str = ""
    peer_urls: tuple[str, ...] = ()
    client_urls: tuple[str, ...] = ()
    is_learner: bool = False

    def to_json(self) -> bytes:
        d: dict[str, object] = {"id": self.id, "peerURLs": list(self.peer_urls)}
        if self.is_learner:
            d["isLearner"] = True
        if self.name:
            d["name"] = self.name
        if self.client_urls:
            d["clientURLs"] = list(self.client_urls)
        return json.dumps(d, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Member:
        d = json.loads(raw)
        return cls(
            id=int(d["id"]),
            name=str(d.get("name", "")),
            peer_urls=tuple(d.get("peerURLs") or ()),
            client_urls=tuple(d.get("clientURLs") or ()),
            is_learner=bool(d.get("isLearner", False)),
        )


class BackendTxn(Protocol):
    def unsafe_put(self, bucket: bytes, key: bytes, value: bytes) -> None: ...
    def unsafe_delete(self, bucket: bytes, key: bytes) -> bool: ...
    def unsafe_get(self, bucket: bytes, key: bytes) -> bytes | None: ...
    def unsafe_for_each(self, bucket: bytes) -> Iterator[tuple[bytes, bytes]]: ...


class BackendReader(Protocol):
    def unsafe_get(self, bucket: bytes, key: bytes) -> bytes | None: ...
    def unsafe_for_each(self, bucket: bytes) -> Iterator[tuple[bytes, bytes]]: ...


def member_key(member_id: int) -> bytes:
    return f"{member_id:x}".encode()


class MembershipError(Exception):
    """A membership change that cannot be applied (mapped to etcd's errors by the server)."""


class ErrIDRemoved(MembershipError):
    pass


class ErrIDExists(MembershipError):
    pass


class ErrIDNotFound(MembershipError):
    pass


class ErrPeerURLExists(MembershipError):
    pass


@dataclass(slots=True)
class RaftCluster:
    """The membership as this member knows it (etcd's ``RaftCluster``)."""

    local_id: int
    cluster_id: int = 0
    token: str = "etcd-cluster"
    members: dict[int, Member] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)
    version: str | None = None

    @classmethod
    def from_initial_cluster(
        cls, local_name: str, initial: dict[str, list[str]], token: str
    ) -> RaftCluster:
        """Members from ``--initial-cluster`` (name → peer URLs), IDs as etcd computes them."""
        members: dict[int, Member] = {}
        local_id = 0
        for name, urls in initial.items():
            mid = compute_member_id(urls, token)
            members[mid] = Member(id=mid, name=name, peer_urls=tuple(sorted(urls)))
            if name == local_name:
                local_id = mid
        c = cls(local_id=local_id, token=token, members=members)
        c.cluster_id = compute_cluster_id(members)
        return c

    def member_ids(self) -> list[int]:
        return sorted(self.members)

    def voter_ids(self) -> list[int]:
        return sorted(m.id for m in self.members.values() if not m.is_learner)

    def local(self) -> Member | None:
        return self.members.get(self.local_id)

    # --- checks (etcd's ValidateConfigurationChange) -----------------------------------
    def validate_add(self, m: Member) -> None:
        if m.id in self.removed:
            raise ErrIDRemoved(f"membership: ID {m.id:x} removed")
        if m.id in self.members:
            raise ErrIDExists(f"membership: ID {m.id:x} exists")
        urls = {u for x in self.members.values() for u in x.peer_urls}
        if any(u in urls for u in m.peer_urls):
            raise ErrPeerURLExists("membership: peerURL exists")

    def validate_remove(self, member_id: int) -> None:
        if member_id in self.removed:
            raise ErrIDRemoved(f"membership: ID {member_id:x} removed")
        if member_id not in self.members:
            raise ErrIDNotFound(f"membership: ID {member_id:x} not found")

    # --- changes, each also written to the backend txn when one is given ----------------
    def add_member(self, m: Member, txn: BackendTxn | None = None) -> None:
        self.members[m.id] = m
        if txn is not None:
            txn.unsafe_put(BUCKET_MEMBERS, member_key(m.id), m.to_json())

    def remove_member(self, member_id: int, txn: BackendTxn | None = None) -> None:
        self.members.pop(member_id, None)
        self.removed.add(member_id)
        if txn is not None:
            txn.unsafe_delete(BUCKET_MEMBERS, member_key(member_id))
            txn.unsafe_put(BUCKET_MEMBERS_REMOVED, member_key(member_id), b"removed")

    def update_attributes(
        self, member_id: int, name: str, client_urls: Iterable[str], txn: BackendTxn | None
    ) -> None:
        m = self.members.get(member_id)
        if m is None:
            return
        m = replace(m, name=name, client_urls=tuple(client_urls))
        self.add_member(m, txn)

    def update_raft_attributes(
        self, member_id: int, peer_urls: Iterable[str], txn: BackendTxn | None
    ) -> None:
        m = self.members.get(member_id)
        if m is None:
            return
        self.add_member(replace(m, peer_urls=tuple(peer_urls)), txn)

    def promote(self, member_id: int, txn: BackendTxn | None) -> None:
        m = self.members.get(member_id)
        if m is None:
            return
        self.add_member(replace(m, is_learner=False), txn)

    def set_version(self, version: str, txn: BackendTxn | None) -> None:
        self.version = version
        if txn is not None:
            txn.unsafe_put(BUCKET_CLUSTER, CLUSTER_VERSION_KEY, version.encode())

    def save_ids(self, txn: BackendTxn) -> None:
        """Record the cluster ID and this member's ID (etcd keeps them in WAL metadata)."""
        txn.unsafe_put(BUCKET_CLUSTER, CLUSTER_ID_KEY, struct.pack(">Q", self.cluster_id))
        txn.unsafe_put(BUCKET_CLUSTER, LOCAL_ID_KEY, struct.pack(">Q", self.local_id))

    def load(self, txn: BackendReader) -> bool:
        """Replace members/removed/version/cluster ID by what the backend holds.

        Returns False when the backend holds no membership (a brand-new member).
        """
        members = {}
        for _, v in txn.unsafe_for_each(BUCKET_MEMBERS):
            m = Member.from_json(bytes(v))
            members[m.id] = m
        removed = {int(bytes(k), 16) for k, _ in txn.unsafe_for_each(BUCKET_MEMBERS_REMOVED)}
        cid = txn.unsafe_get(BUCKET_CLUSTER, CLUSTER_ID_KEY)
        lid = txn.unsafe_get(BUCKET_CLUSTER, LOCAL_ID_KEY)
        ver = txn.unsafe_get(BUCKET_CLUSTER, CLUSTER_VERSION_KEY)
        if not members and cid is None:
            return False
        self.members = members
        self.removed = removed
        if cid is not None:
            self.cluster_id = int(struct.unpack(">Q", cid)[0])
        if lid is not None:
            self.local_id = int(struct.unpack(">Q", lid)[0])
        self.version = ver.decode() if ver is not None else None
        return True
