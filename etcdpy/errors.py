"""THE catalogue of client-visible errors, with etcd 3.5's exact codes and strings.

Rules:
1. Nothing else in etcdpy defines an error a client can see; raise one of these.
2. gRPC-level errors (``ErrGRPC*``, etcd's api/v3rpc/rpctypes) carry the status code and
   message clients match on (clientv3 and python-etcd3 compare messages literally).
3. Domain errors (mvcc, lease, auth, membership, etcdserver) carry etcd's internal message
   and, where etcd's ``togRPCError`` maps them, ``grpc_error``: ``to_grpc()`` converts. An
   unmapped domain error reaches gRPC clients as code Unknown with its own message, as in etcd.
4. v2 errors are :class:`V2Error` (etcd's v2error.Error: errorCode, message, cause, index);
   ``to_v2()`` turns any error into one the way etcd's v2 keys handler does (code 300).
5. Layer 0: no grpc import. :class:`Code` mirrors ``grpc.StatusCode`` member names and numbers,
   so the API layer maps with ``grpc.StatusCode[err.grpc_code.name]``.

``detail`` is extra context for logs (e.g. the key or revision); it never changes ``message``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from types import MappingProxyType
from typing import ClassVar


class Code(IntEnum):
    """gRPC status codes; names equal ``grpc.StatusCode`` members, values the wire numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# HTTP status the grpc-gateway (v1.16, used by etcd 3.5's /v3/* JSON API) answers per code.
GATEWAY_HTTP_STATUS: Mapping[Code, int] = MappingProxyType(
    {
        Code.OK: 200,
        Code.CANCELLED: 408,
        Code.UNKNOWN: 500,
        Code.INVALID_ARGUMENT: 400,
        Code.DEADLINE_EXCEEDED: 504,
        Code.NOT_FOUND: 404,
        Code.ALREADY_EXISTS: 409,
        Code.PERMISSION_DENIED: 403,
        Code.RESOURCE_EXHAUSTED: 429,
        Code.FAILED_PRECONDITION: 400,  # deliberately not 412, as grpc-gateway does
        Code.ABORTED: 409,
        Code.OUT_OF_RANGE: 400,
        Code.UNIMPLEMENTED: 501,
        Code.INTERNAL: 500,
        Code.UNAVAILABLE: 503,
        Code.DATA_LOSS: 500,
        Code.UNAUTHENTICATED: 401,
    }
)


# v2 error codes (etcd server/etcdserver/api/v2error). Exported names follow etcd's Ecode*.
V2_ECODE_KEY_NOT_FOUND = 100
V2_ECODE_TEST_FAILED = 101
V2_ECODE_NOT_FILE = 102
V2_ECODE_NO_MORE_PEER = 103
V2_ECODE_NOT_DIR = 104
V2_ECODE_NODE_EXIST = 105
V2_ECODE_KEY_IS_PRESERVED = 106
V2_ECODE_ROOT_RONLY = 107
V2_ECODE_DIR_NOT_EMPTY = 108
V2_ECODE_EXISTING_PEER_ADDR = 109
V2_ECODE_UNAUTHORIZED = 110
V2_ECODE_VALUE_REQUIRED = 200
V2_ECODE_PREV_VALUE_REQUIRED = 201
V2_ECODE_TTL_NAN = 202
V2_ECODE_INDEX_NAN = 203
V2_ECODE_VALUE_OR_TTL_REQUIRED = 204
V2_ECODE_TIMEOUT_NAN = 205
V2_ECODE_NAME_REQUIRED = 206
V2_ECODE_INDEX_OR_VALUE_REQUIRED = 207
V2_ECODE_INDEX_VALUE_MUTEX = 208
V2_ECODE_INVALID_FIELD = 209
V2_ECODE_INVALID_FORM = 210
V2_ECODE_REFRESH_VALUE = 211
V2_ECODE_REFRESH_TTL_REQUIRED = 212
V2_ECODE_RAFT_INTERNAL = 300
V2_ECODE_LEADER_ELECT = 301
V2_ECODE_WATCHER_CLEARED = 400
V2_ECODE_EVENT_INDEX_CLEARED = 401
V2_ECODE_STANDBY_INTERNAL = 402
V2_ECODE_INVALID_ACTIVE_SIZE = 403
V2_ECODE_INVALID_REMOVE_DELAY = 404
V2_ECODE_CLIENT_INTERNAL = 500

V2_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        V2_ECODE_KEY_NOT_FOUND: "Key not found",
        V2_ECODE_TEST_FAILED: "Compare failed",
        V2_ECODE_NOT_FILE: "Not a file",
        V2_ECODE_NO_MORE_PEER: "Reached the max number of peers in the cluster",
        V2_ECODE_NOT_DIR: "Not a directory",
        V2_ECODE_NODE_EXIST: "Key already exists",
        V2_ECODE_KEY_IS_PRESERVED: "The prefix of given key is a keyword in etcd",
        V2_ECODE_ROOT_RONLY: "Root is read only",
        V2_ECODE_DIR_NOT_EMPTY: "Directory not empty",
        V2_ECODE_EXISTING_PEER_ADDR: "Peer address has existed",
        V2_ECODE_UNAUTHORIZED: "The request requires user authentication",
        V2_ECODE_VALUE_REQUIRED: "Value is Required in POST form",
        V2_ECODE_PREV_VALUE_REQUIRED: "PrevValue is Required in POST form",
        V2_ECODE_TTL_NAN: "The given TTL in POST form is not a number",
        V2_ECODE_INDEX_NAN: "The given index in POST form is not a number",
        V2_ECODE_VALUE_OR_TTL_REQUIRED: "Value or TTL is required in POST form",
        V2_ECODE_TIMEOUT_NAN: "The given timeout in POST form is not a number",
        V2_ECODE_NAME_REQUIRED: "Name is required in POST form",
        V2_ECODE_INDEX_OR_VALUE_REQUIRED: "Index or value is required",
        V2_ECODE_INDEX_VALUE_MUTEX: "Index and value cannot both be specified",
        V2_ECODE_INVALID_FIELD: "Invalid field",
        V2_ECODE_INVALID_FORM: "Invalid POST form",
        V2_ECODE_REFRESH_VALUE: "Value provided on refresh",
        V2_ECODE_REFRESH_TTL_REQUIRED: "A TTL must be provided on refresh",
        V2_ECODE_RAFT_INTERNAL: "Raft Internal Error",
        V2_ECODE_LEADER_ELECT: "During Leader Election",
        V2_ECODE_WATCHER_CLEARED: "watcher is cleared due to etcd recovery",
        V2_ECODE_EVENT_INDEX_CLEARED: "The event in requested index is outdated and cleared",
        V2_ECODE_STANDBY_INTERNAL: "Standby Internal Error",
        V2_ECODE_INVALID_ACTIVE_SIZE: "Invalid active size",
        V2_ECODE_INVALID_REMOVE_DELAY: "Standby remove delay",
        V2_ECODE_CLIENT_INTERNAL: "Client Internal Error",
    }
)

# HTTP status per v2 code (etcd's errorStatus); anything else is 400 Bad Request.
V2_HTTP_STATUS: Mapping[int, int] = MappingProxyType(
    {
        V2_ECODE_KEY_NOT_FOUND: 404,
        V2_ECODE_NOT_FILE: 403,
        V2_ECODE_DIR_NOT_EMPTY: 403,
        V2_ECODE_UNAUTHORIZED: 401,
        V2_ECODE_TEST_FAILED: 412,
        V2_ECODE_NODE_EXIST: 412,
        V2_ECODE_RAFT_INTERNAL: 500,
        V2_ECODE_LEADER_ELECT: 500,
    }
)


class EtcdError(Exception):
    """Base of every client-visible error.

    Class attributes hold etcd's constants; raise with an optional ``detail`` for logs::

        raise ErrCompacted(f"rev {rev} < compact {compact_rev}")
    """

    grpc_code: Code = Code.UNKNOWN
    message: str = ""
    v2_code: int | None = None
    # For domain errors: the gRPC-level error etcd's togRPCError maps this one to.
    grpc_error: ClassVar[type[EtcdError] | None] = None

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(self.message if detail is None else f"{self.message} ({detail})")
        self.detail = detail

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        extra = "" if self.detail is None else f", detail={self.detail!r}"
        return f"{type(self).__name__}({self.message!r}{extra})"


class V2Error(EtcdError):
    """etcd's v2error.Error: the JSON body ``{errorCode, message, cause, index}`` of the v2 API."""

    def __init__(self, error_code: int, cause: str = "", index: int = 0) -> None:
        self.v2_code = error_code
        self.message = V2_MESSAGES.get(error_code, "")
        self.cause = cause
        self.index = index
        super().__init__(cause or None)

    @property
    def http_status(self) -> int:
        return V2_HTTP_STATUS.get(self.v2_code if self.v2_code is not None else 0, 400)

    def to_json(self) -> dict[str, object]:
        """Body fields in etcd's order; ``cause`` is omitted when empty (``omitempty``)."""
        body: dict[str, object] = {"errorCode": self.v2_code, "message": self.message}
        if self.cause:
            body["cause"] = self.cause
        body["index"] = self.index
        return body

    def __str__(self) -> str:
        return f"{self.message} ({self.cause})"


# ---------------------------------------------------------------------------------------------
# gRPC-level errors: etcd api/v3rpc/rpctypes/error.go (3.5; a few 3.6 additions are harmless).


class ErrGRPCEmptyKey(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: key is not provided"


class ErrGRPCKeyNotFound(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: key not found"


class ErrGRPCValueProvided(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: value is provided"


class ErrGRPCLeaseProvided(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: lease is provided"


class ErrGRPCTooManyOps(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: too many operations in txn request"


class ErrGRPCDuplicateKey(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: duplicate key given in txn request"


class ErrGRPCInvalidClientAPIVersion(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: invalid client api version"


class ErrGRPCInvalidSortOption(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: invalid sort option"


class ErrGRPCCompacted(EtcdError):
    grpc_code = Code.OUT_OF_RANGE
    message = "etcdserver: mvcc: required revision has been compacted"


class ErrGRPCFutureRev(EtcdError):
    grpc_code = Code.OUT_OF_RANGE
    message = "etcdserver: mvcc: required revision is a future revision"


class ErrGRPCNoSpace(EtcdError):
    grpc_code = Code.RESOURCE_EXHAUSTED
    message = "etcdserver: mvcc: database space exceeded"


class ErrGRPCLeaseNotFound(EtcdError):
    grpc_code = Code.NOT_FOUND
    message = "etcdserver: requested lease not found"


class ErrGRPCLeaseExist(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: lease already exists"


class ErrGRPCLeaseTTLTooLarge(EtcdError):
    grpc_code = Code.OUT_OF_RANGE
    message = "etcdserver: too large lease TTL"


class ErrGRPCWatchCanceled(EtcdError):
    grpc_code = Code.CANCELLED
    message = "etcdserver: watch canceled"


class ErrGRPCMemberExist(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: member ID already exist"


class ErrGRPCPeerURLExist(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: Peer URLs already exists"


class ErrGRPCMemberNotEnoughStarted(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: re-configuration failed due to not enough started members"


class ErrGRPCMemberBadURLs(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: given member URLs are invalid"


class ErrGRPCMemberNotFound(EtcdError):
    grpc_code = Code.NOT_FOUND
    message = "etcdserver: member not found"


class ErrGRPCMemberNotLearner(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: can only promote a learner member"


class ErrGRPCLearnerNotReady(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: can only promote a learner member which is in sync with leader"


class ErrGRPCTooManyLearners(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: too many learner members in cluster"


class ErrGRPCClusterIDMismatch(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: cluster ID mismatch"


class ErrGRPCRequestTooLarge(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: request is too large"


class ErrGRPCRequestTooManyRequests(EtcdError):
    grpc_code = Code.RESOURCE_EXHAUSTED
    message = "etcdserver: too many requests"


class ErrGRPCRootUserNotExist(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: root user does not exist"


class ErrGRPCRootRoleNotExist(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: root user does not have root role"


class ErrGRPCUserAlreadyExist(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: user name already exists"


class ErrGRPCUserEmpty(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: user name is empty"


class ErrGRPCUserNotFound(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: user name not found"


class ErrGRPCRoleAlreadyExist(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: role name already exists"


class ErrGRPCRoleNotFound(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: role name not found"


class ErrGRPCRoleEmpty(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: role name is empty"


class ErrGRPCAuthFailed(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: authentication failed, invalid user ID or password"


class ErrGRPCPermissionNotGiven(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: permission not given"


class ErrGRPCPermissionDenied(EtcdError):
    grpc_code = Code.PERMISSION_DENIED
    message = "etcdserver: permission denied"


class ErrGRPCRoleNotGranted(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: role is not granted to the user"


class ErrGRPCPermissionNotGranted(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: permission is not granted to the role"


class ErrGRPCAuthNotEnabled(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: authentication is not enabled"


class ErrGRPCInvalidAuthToken(EtcdError):
    grpc_code = Code.UNAUTHENTICATED
    message = "etcdserver: invalid auth token"


class ErrGRPCInvalidAuthMgmt(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: invalid auth management"


class ErrGRPCAuthOldRevision(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: revision of auth store is old"


class ErrGRPCNoLeader(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: no leader"


class ErrGRPCNotLeader(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: not leader"


class ErrGRPCLeaderChanged(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: leader changed"


class ErrGRPCNotCapable(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: not capable"


class ErrGRPCStopped(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: server stopped"


class ErrGRPCTimeout(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: request timed out"


class ErrGRPCTimeoutDueToLeaderFail(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: request timed out, possibly due to previous leader failure"


class ErrGRPCTimeoutDueToConnectionLost(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: request timed out, possibly due to connection lost"


class ErrGRPCTimeoutWaitAppliedIndex(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: request timed out, waiting for the applied index took too long"


class ErrGRPCUnhealthy(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: unhealthy cluster"


class ErrGRPCCorrupt(EtcdError):
    grpc_code = Code.DATA_LOSS
    message = "etcdserver: corrupt cluster"


class ErrGRPCNotSupportedForLearner(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: rpc not supported for learner"


class ErrGRPCBadLeaderTransferee(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: bad leader transferee"


class ErrGRPCClusterVersionUnavailable(EtcdError):
    grpc_code = Code.UNAVAILABLE
    message = "etcdserver: cluster version not found during downgrade"


class ErrGRPCWrongDowngradeVersionFormat(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: wrong downgrade target version format"


class ErrGRPCInvalidDowngradeTargetVersion(EtcdError):
    grpc_code = Code.INVALID_ARGUMENT
    message = "etcdserver: invalid downgrade target version"


class ErrGRPCDowngradeInProcess(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: cluster has a downgrade job in progress"


class ErrGRPCNoInflightDowngrade(EtcdError):
    grpc_code = Code.FAILED_PRECONDITION
    message = "etcdserver: no inflight downgrade job"


class ErrGRPCCanceled(EtcdError):
    grpc_code = Code.CANCELLED
    message = "etcdserver: request canceled"


class ErrGRPCDeadlineExceeded(EtcdError):
    grpc_code = Code.DEADLINE_EXCEEDED
    message = "etcdserver: context deadline exceeded"


# ------------------------------------------------------------------------------------------------
# Internal errors (etcd's domain packages). The API layer converts them with to_grpc(),
# which follows etcd's togRPCError map; unmapped ones reach clients as Unknown + message.


# mvcc


class ErrCompacted(EtcdError):
    message = "mvcc: required revision has been compacted"
    grpc_error = ErrGRPCCompacted


class ErrFutureRev(EtcdError):
    message = "mvcc: required revision is a future revision"
    grpc_error = ErrGRPCFutureRev


class ErrClosed(EtcdError):
    message = "mvcc: closed"


class ErrWatcherNotExist(EtcdError):
    message = "mvcc: watcher does not exist"


class ErrEmptyWatcherRange(EtcdError):
    message = "mvcc: watcher range is empty"


class ErrWatcherDuplicateID(EtcdError):
    message = "mvcc: duplicate watch ID provided on the WatchStream"


# lease


class ErrNotPrimary(EtcdError):
    message = "not a primary lessor"


class ErrLeaseNotFound(EtcdError):
    message = "lease not found"
    grpc_error = ErrGRPCLeaseNotFound


class ErrLeaseExists(EtcdError):
    message = "lease already exists"
    grpc_error = ErrGRPCLeaseExist


class ErrLeaseTTLTooLarge(EtcdError):
    message = "too large lease TTL"
    grpc_error = ErrGRPCLeaseTTLTooLarge


# auth


class ErrRootUserNotExist(EtcdError):
    message = "auth: root user does not exist"
    grpc_error = ErrGRPCRootUserNotExist


class ErrRootRoleNotExist(EtcdError):
    message = "auth: root user does not have root role"
    grpc_error = ErrGRPCRootRoleNotExist


class ErrUserAlreadyExist(EtcdError):
    message = "auth: user already exists"
    grpc_error = ErrGRPCUserAlreadyExist


class ErrUserEmpty(EtcdError):
    message = "auth: user name is empty"
    grpc_error = ErrGRPCUserEmpty


class ErrUserNotFound(EtcdError):
    message = "auth: user not found"
    grpc_error = ErrGRPCUserNotFound


class ErrRoleAlreadyExist(EtcdError):
    message = "auth: role already exists"
    grpc_error = ErrGRPCRoleAlreadyExist


class ErrRoleNotFound(EtcdError):
    message = "auth: role not found"
    grpc_error = ErrGRPCRoleNotFound


class ErrRoleEmpty(EtcdError):
    message = "auth: role name is empty"
    grpc_error = ErrGRPCRoleEmpty


class ErrPermissionNotGiven(EtcdError):
    message = "auth: permission not given"
    grpc_error = ErrGRPCPermissionNotGiven


class ErrAuthFailed(EtcdError):
    message = "auth: authentication failed, invalid user ID or password"
    grpc_error = ErrGRPCAuthFailed


class ErrNoPasswordUser(EtcdError):
    message = "auth: authentication failed, password was given for no password user"


class ErrPermissionDenied(EtcdError):
    message = "auth: permission denied"
    grpc_error = ErrGRPCPermissionDenied


class ErrRoleNotGranted(EtcdError):
    message = "auth: role is not granted to the user"
    grpc_error = ErrGRPCRoleNotGranted


class ErrPermissionNotGranted(EtcdError):
    message = "auth: permission is not granted to the role"
    grpc_error = ErrGRPCPermissionNotGranted


class ErrAuthNotEnabled(EtcdError):
    message = "auth: authentication is not enabled"
    grpc_error = ErrGRPCAuthNotEnabled


class ErrAuthOldRevision(EtcdError):
    message = "auth: revision in header is old"
    grpc_error = ErrGRPCAuthOldRevision


class ErrInvalidAuthToken(EtcdError):
    message = "auth: invalid auth token"
    grpc_error = ErrGRPCInvalidAuthToken


class ErrInvalidAuthOpts(EtcdError):
    message = "auth: invalid auth options"


class ErrInvalidAuthMgmt(EtcdError):
    message = "auth: invalid auth management"
    grpc_error = ErrGRPCInvalidAuthMgmt


class ErrInvalidAuthMethod(EtcdError):
    message = "auth: invalid auth signature"


class ErrMissingKey(EtcdError):
    message = "auth: missing key data"


class ErrKeyMismatch(EtcdError):
    message = "auth: public and private keys don't match"


class ErrVerifyOnly(EtcdError):
    message = "auth: token signing attempted with verify-only key"


# membership


class ErrIDRemoved(EtcdError):
    message = "membership: ID removed"
    grpc_error = ErrGRPCMemberNotFound


class ErrIDExists(EtcdError):
    message = "membership: ID exists"
    grpc_error = ErrGRPCMemberExist


class ErrIDNotFound(EtcdError):
    message = "membership: ID not found"
    grpc_error = ErrGRPCMemberNotFound


class ErrPeerURLexists(EtcdError):
    message = "membership: peerURL exists"
    grpc_error = ErrGRPCPeerURLExist


class ErrMemberNotLearner(EtcdError):
    message = "membership: can only promote a learner member"
    grpc_error = ErrGRPCMemberNotLearner


class ErrTooManyLearners(EtcdError):
    message = "membership: too many learner members in cluster"
    grpc_error = ErrGRPCTooManyLearners


# etcdserver


class ErrUnknownMethod(EtcdError):
    message = "etcdserver: unknown method"
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrStopped(EtcdError):
    message = "etcdserver: server stopped"
    grpc_error = ErrGRPCStopped
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrCanceled(EtcdError):
    message = "etcdserver: request cancelled"
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrTimeout(EtcdError):
    message = "etcdserver: request timed out"
    grpc_error = ErrGRPCTimeout
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrTimeoutDueToLeaderFail(EtcdError):
    message = "etcdserver: request timed out, possibly due to previous leader failure"
    grpc_error = ErrGRPCTimeoutDueToLeaderFail
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrTimeoutDueToConnectionLost(EtcdError):
    message = "etcdserver: request timed out, possibly due to connection lost"
    grpc_error = ErrGRPCTimeoutDueToConnectionLost
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrTimeoutLeaderTransfer(EtcdError):
    message = "etcdserver: request timed out, leader transfer took too long"
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrTimeoutWaitAppliedIndex(EtcdError):
    message = "etcdserver: request timed out, waiting for the applied index took too long"
    grpc_error = ErrGRPCTimeoutWaitAppliedIndex
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrLeaderChanged(EtcdError):
    message = "etcdserver: leader changed"
    grpc_error = ErrGRPCLeaderChanged
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrNotEnoughStartedMembers(EtcdError):
    message = "etcdserver: re-configuration failed due to not enough started members"
    grpc_error = ErrGRPCMemberNotEnoughStarted
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrLearnerNotReady(EtcdError):
    message = "etcdserver: can only promote a learner member which is in sync with leader"
    grpc_error = ErrGRPCLearnerNotReady
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrNoLeader(EtcdError):
    message = "etcdserver: no leader"
    grpc_error = ErrGRPCNoLeader
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrNotLeader(EtcdError):
    message = "etcdserver: not leader"
    grpc_error = ErrGRPCNotLeader
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrRequestTooLarge(EtcdError):
    message = "etcdserver: request is too large"
    grpc_error = ErrGRPCRequestTooLarge
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrNoSpace(EtcdError):
    message = "etcdserver: no space"
    grpc_error = ErrGRPCNoSpace
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrTooManyRequests(EtcdError):
    message = "etcdserver: too many requests"
    grpc_error = ErrGRPCRequestTooManyRequests
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrUnhealthy(EtcdError):
    message = "etcdserver: unhealthy cluster"
    grpc_error = ErrGRPCUnhealthy
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrKeyNotFound(EtcdError):
    message = "etcdserver: key not found"
    grpc_error = ErrGRPCKeyNotFound
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrCorrupt(EtcdError):
    message = "etcdserver: corrupt cluster"
    grpc_error = ErrGRPCCorrupt
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrBadLeaderTransferee(EtcdError):
    message = "etcdserver: bad leader transferee"
    grpc_error = ErrGRPCBadLeaderTransferee
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrClusterVersionUnavailable(EtcdError):
    message = "etcdserver: cluster version not found during downgrade"
    grpc_error = ErrGRPCClusterVersionUnavailable
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrWrongDowngradeVersionFormat(EtcdError):
    message = "etcdserver: wrong downgrade target version format"
    grpc_error = ErrGRPCWrongDowngradeVersionFormat
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrInvalidDowngradeTargetVersion(EtcdError):
    message = "etcdserver: invalid downgrade target version"
    grpc_error = ErrGRPCInvalidDowngradeTargetVersion
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrDowngradeInProcess(EtcdError):
    message = "etcdserver: cluster has a downgrade job in progress"
    grpc_error = ErrGRPCDowngradeInProcess
    v2_code = V2_ECODE_RAFT_INTERNAL


class ErrNoInflightDowngrade(EtcdError):
    message = "etcdserver: no inflight downgrade job"
    grpc_error = ErrGRPCNoInflightDowngrade
    v2_code = V2_ECODE_RAFT_INTERNAL


# v3election (etcd's server-side election service returns these plain errors: code Unknown)


class ErrElectionNotLeader(EtcdError):
    message = "election: not leader"


class ErrElectionNoLeader(EtcdError):
    message = "election: no leader"


class ErrMissingLeaderKey(EtcdError):
    message = '"leader" field must be provided'


# ---------------------------------------------------------------------------------------------
# Lookups and conversions.


def _subclasses(base: type[EtcdError]) -> list[type[EtcdError]]:
    out: list[type[EtcdError]] = []
    for sub in base.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


CATALOGUE: Mapping[str, type[EtcdError]] = MappingProxyType(
    {c.__name__: c for c in _subclasses(EtcdError) if c is not V2Error}
)
"""Every error class by its etcd name (``"ErrGRPCNoLeader"``, ``"ErrCompacted"``...)."""

GRPC_ERRORS_BY_MESSAGE: Mapping[str, type[EtcdError]] = MappingProxyType(
    {c.message: c for c in CATALOGUE.values() if c.__name__.startswith("ErrGRPC")}
)
"""etcd's errStringToError: gRPC status message -> error class."""


def from_grpc_message(message: str) -> type[EtcdError] | None:
    """The gRPC-level error a status message names, as clientv3's rpctypes.Error does."""
    return GRPC_ERRORS_BY_MESSAGE.get(message)


def to_grpc(err: EtcdError) -> EtcdError:
    """etcd's togRPCError: the error as clients see it (code + message)."""
    target = type(err).grpc_error
    if target is None:
        return err
    return target(err.detail)


def grpc_status(err: EtcdError) -> tuple[Code, str]:
    """(code, message) to put in the gRPC status for ``err``."""
    g = to_grpc(err)
    return g.grpc_code, g.message


def to_v2(err: EtcdError, index: int = 0) -> V2Error:
    """The v2 JSON error for ``err``: v2 errors as they are, others as 300 with the cause."""
    if isinstance(err, V2Error):
        return err
    return V2Error(err.v2_code or V2_ECODE_RAFT_INTERNAL, err.message, index)
