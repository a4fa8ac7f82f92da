"""MVCC errors: etcd's ``mvcc.ErrCompacted``/``ErrFutureRev`` and the applier's
``ErrKeyNotFound``, as subclasses of the catalogue's classes in :mod:`etcdpy.errors` (same
messages, same ``grpc_error`` mapping) with a common :class:`MvccError` base so callers can
catch "anything the store refused" in one clause."""

from __future__ import annotations

from etcdpy import errors


class MvccError(errors.EtcdError):
    """Base of the errors raised by :mod:`etcdpy.mvcc`."""


class ErrCompacted(MvccError, errors.ErrCompacted):
    """etcd: "mvcc: required revision has been compacted"."""


class ErrFutureRev(MvccError, errors.ErrFutureRev):
    """etcd: "mvcc: required revision is a future revision"."""


class ErrKeyNotFound(MvccError, errors.ErrKeyNotFound):
    """Put with ignore_value/ignore_lease on a missing key: "etcdserver: key not found"."""


class ErrKeyTooLong(MvccError, errors.ErrRequestTooLarge):
    """A key longer than LMDB's key limit (``key_index.MAX_KEY_LEN``, 511 bytes). etcd has
    no such limit; the closest client-visible error is "etcdserver: request is too large".
    Check with ``key_index.MAX_KEY_LEN`` before applying a multi-op txn."""
