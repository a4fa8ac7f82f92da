"""The error catalogue, entry by entry, against etcd 3.5's codes and strings.

The tables below are written from etcd's rpctypes/error.go, v3rpc/util.go (togRPCError),
server errors, auth/store.go, lease/lessor.go, membership/errors.go and v2error/error.go.
"""

from __future__ import annotations

import pytest

from etcdpy import errors as E

# name -> (gRPC code name, exact message)
GRPC: dict[str, tuple[str, str]] = {
    "ErrGRPCEmptyKey": ("INVALID_ARGUMENT", "etcdserver: key is not provided"),
    "ErrGRPCKeyNotFound": ("INVALID_ARGUMENT", "etcdserver: key not found"),
    "ErrGRPCValueProvided": ("INVALID_ARGUMENT", "etcdserver: value is provided"),
    "ErrGRPCLeaseProvided": ("INVALID_ARGUMENT", "etcdserver: lease is provided"),
    "ErrGRPCTooManyOps": ("INVALID_ARGUMENT", "etcdserver: too many operations in txn request"),
    "ErrGRPCDuplicateKey": ("INVALID_ARGUMENT", "etcdserver: duplicate key given in txn request"),
    "ErrGRPCInvalidClientAPIVersion": (
        "INVALID_ARGUMENT",
        "etcdserver: invalid client api version",
    ),
    "ErrGRPCInvalidSortOption": ("INVALID_ARGUMENT", "etcdserver: invalid sort option"),
    "ErrGRPCCompacted": ("OUT_OF_RANGE", "etcdserver: mvcc: required revision has been compacted"),
    "ErrGRPCFutureRev": (
        "OUT_OF_RANGE",
        "etcdserver: mvcc: required revision is a future revision",
    ),
    "ErrGRPCNoSpace": ("RESOURCE_EXHAUSTED", "etcdserver: mvcc: database space exceeded"),
    "ErrGRPCLeaseNotFound": ("NOT_FOUND", "etcdserver: requested lease not found"),
    "ErrGRPCLeaseExist": ("FAILED_PRECONDITION", "etcdserver: lease already exists"),
    "ErrGRPCLeaseTTLTooLarge": ("OUT_OF_RANGE", "etcdserver: too large lease TTL"),
    "ErrGRPCWatchCanceled": ("CANCELLED", "etcdserver: watch canceled"),
    "ErrGRPCMemberExist": ("FAILED_PRECONDITION", "etcdserver: member ID already exist"),
    "ErrGRPCPeerURLExist": ("FAILED_PRECONDITION", "etcdserver: Peer URLs already exists"),
    "ErrGRPCMemberNotEnoughStarted": (
        "FAILED_PRECONDITION",
        "etcdserver: re-configuration failed due to not enough started members",
    ),
    "ErrGRPCMemberBadURLs": ("INVALID_ARGUMENT", "etcdserver: given member URLs are invalid"),
    "ErrGRPCMemberNotFound": ("NOT_FOUND", "etcdserver: member not found"),
    "ErrGRPCMemberNotLearner": (
        "FAILED_PRECONDITION",
        "etcdserver: can only promote a learner member",
    ),
    "ErrGRPCLearnerNotReady": (
        "FAILED_PRECONDITION",
        "etcdserver: can only promote a learner member which is in sync with leader",
    ),
    "ErrGRPCTooManyLearners": (
        "FAILED_PRECONDITION",
        "etcdserver: too many learner members in cluster",
    ),
    "ErrGRPCClusterIDMismatch": ("FAILED_PRECONDITION", "etcdserver: cluster ID mismatch"),
    "ErrGRPCRequestTooLarge": ("INVALID_ARGUMENT", "etcdserver: request is too large"),
    "ErrGRPCRequestTooManyRequests": ("RESOURCE_EXHAUSTED", "etcdserver: too many requests"),
    "ErrGRPCRootUserNotExist": ("FAILED_PRECONDITION", "etcdserver: root user does not exist"),
    "ErrGRPCRootRoleNotExist": (
        "FAILED_PRECONDITION",
        "etcdserver: root user does not have root role",
    ),
    "ErrGRPCUserAlreadyExist": ("FAILED_PRECONDITION", "etcdserver: user name already exists"),
    "ErrGRPCUserEmpty": ("INVALID_ARGUMENT", "etcdserver: user name is empty"),
    "ErrGRPCUserNotFound": ("FAILED_PRECONDITION", "etcdserver: user name not found"),
    "ErrGRPCRoleAlreadyExist": ("FAILED_PRECONDITION", "etcdserver: role name already exists"),
    "ErrGRPCRoleNotFound": ("FAILED_PRECONDITION", "etcdserver: role name not found"),
    "ErrGRPCRoleEmpty": ("INVALID_ARGUMENT", "etcdserver: role name is empty"),
    "ErrGRPCAuthFailed": (
        "INVALID_ARGUMENT",
        "etcdserver: authentication failed, invalid user ID or password",
    ),
    "ErrGRPCPermissionNotGiven": ("INVALID_ARGUMENT", "etcdserver: permission not given"),
    "ErrGRPCPermissionDenied": ("PERMISSION_DENIED", "etcdserver: permission denied"),
    "ErrGRPCRoleNotGranted": ("FAILED_PRECONDITION", "etcdserver: role is not granted to the user"),
    "ErrGRPCPermissionNotGranted": (
        "FAILED_PRECONDITION",
        "etcdserver: permission is not granted to the role",
    ),
    "ErrGRPCAuthNotEnabled": ("FAILED_PRECONDITION", "etcdserver: authentication is not enabled"),
    "ErrGRPCInvalidAuthToken": ("UNAUTHENTICATED", "etcdserver: invalid auth token"),
    "ErrGRPCInvalidAuthMgmt": ("INVALID_ARGUMENT", "etcdserver: invalid auth management"),
    "ErrGRPCAuthOldRevision": ("INVALID_ARGUMENT", "etcdserver: revision of auth store is old"),
    "ErrGRPCNoLeader": ("UNAVAILABLE", "etcdserver: no leader"),
    "ErrGRPCNotLeader": ("FAILED_PRECONDITION", "etcdserver: not leader"),
    "ErrGRPCLeaderChanged": ("UNAVAILABLE", "etcdserver: leader changed"),
    "ErrGRPCNotCapable": ("UNAVAILABLE", "etcdserver: not capable"),
    "ErrGRPCStopped": ("UNAVAILABLE", "etcdserver: server stopped"),
    "ErrGRPCTimeout": ("UNAVAILABLE", "etcdserver: request timed out"),
    "ErrGRPCTimeoutDueToLeaderFail": (
        "UNAVAILABLE",
        "etcdserver: request timed out, possibly due to previous leader failure",
    ),
    "ErrGRPCTimeoutDueToConnectionLost": (
        "UNAVAILABLE",
        "etcdserver: request timed out, possibly due to connection lost",
    ),
    "ErrGRPCTimeoutWaitAppliedIndex": (
        "UNAVAILABLE",
        "etcdserver: request timed out, waiting for the applied index took too long",
    ),
    "ErrGRPCUnhealthy": ("UNAVAILABLE", "etcdserver: unhealthy cluster"),
    "ErrGRPCCorrupt": ("DATA_LOSS", "etcdserver: corrupt cluster"),
    "ErrGRPCNotSupportedForLearner": ("UNAVAILABLE", "etcdserver: rpc not supported for learner"),
    "ErrGRPCBadLeaderTransferee": ("FAILED_PRECONDITION", "etcdserver: bad leader transferee"),
    "ErrGRPCClusterVersionUnavailable": (
        "UNAVAILABLE",
        "etcdserver: cluster version not found during downgrade",
    ),
    "ErrGRPCWrongDowngradeVersionFormat": (
        "INVALID_ARGUMENT",
        "etcdserver: wrong downgrade target version format",
    ),
    "ErrGRPCInvalidDowngradeTargetVersion": (
        "INVALID_ARGUMENT",
        "etcdserver: invalid downgrade target version",
    ),
    "ErrGRPCDowngradeInProcess": (
        "FAILED_PRECONDITION",
        "etcdserver: cluster has a downgrade job in progress",
    ),
    "ErrGRPCNoInflightDowngrade": ("FAILED_PRECONDITION", "etcdserver: no inflight downgrade job"),
    "ErrGRPCCanceled": ("CANCELLED", "etcdserver: request canceled"),
    "ErrGRPCDeadlineExceeded": ("DEADLINE_EXCEEDED", "etcdserver: context deadline exceeded"),
}

# name -> (internal message, gRPC error it maps to or None)
INTERNAL: dict[str, tuple[str, str | None]] = {
    # mvcc
    "ErrCompacted": ("mvcc: required revision has been compacted", "ErrGRPCCompacted"),
    "ErrFutureRev": ("mvcc: required revision is a future revision", "ErrGRPCFutureRev"),
    "ErrClosed": ("mvcc: closed", None),
    "ErrWatcherNotExist": ("mvcc: watcher does not exist", None),
    "ErrEmptyWatcherRange": ("mvcc: watcher range is empty", None),
    "ErrWatcherDuplicateID": ("mvcc: duplicate watch ID provided on the WatchStream", None),
    # lease
    "ErrNotPrimary": ("not a primary lessor", None),
    "ErrLeaseNotFound": ("lease not found", "ErrGRPCLeaseNotFound"),
    "ErrLeaseExists": ("lease already exists", "ErrGRPCLeaseExist"),
    "ErrLeaseTTLTooLarge": ("too large lease TTL", "ErrGRPCLeaseTTLTooLarge"),
    # auth
    "ErrRootUserNotExist": ("auth: root user does not exist", "ErrGRPCRootUserNotExist"),
    "ErrRootRoleNotExist": ("auth: root user does not have root role", "ErrGRPCRootRoleNotExist"),
    "ErrUserAlreadyExist": ("auth: user already exists", "ErrGRPCUserAlreadyExist"),
    "ErrUserEmpty": ("auth: user name is empty", "ErrGRPCUserEmpty"),
    "ErrUserNotFound": ("auth: user not found", "ErrGRPCUserNotFound"),
    "ErrRoleAlreadyExist": ("auth: role already exists", "ErrGRPCRoleAlreadyExist"),
    "ErrRoleNotFound": ("auth: role not found", "ErrGRPCRoleNotFound"),
    "ErrRoleEmpty": ("auth: role name is empty", "ErrGRPCRoleEmpty"),
    "ErrPermissionNotGiven": ("auth: permission not given", "ErrGRPCPermissionNotGiven"),
    "ErrAuthFailed": (
        "auth: authentication failed, invalid user ID or password",
        "ErrGRPCAuthFailed",
    ),
    "ErrNoPasswordUser": (
        "auth: authentication failed, password was given for no password user",
        None,
    ),
    "ErrPermissionDenied": ("auth: permission denied", "ErrGRPCPermissionDenied"),
    "ErrRoleNotGranted": ("auth: role is not granted to the user", "ErrGRPCRoleNotGranted"),
    "ErrPermissionNotGranted": (
        "auth: permission is not granted to the role",
        "ErrGRPCPermissionNotGranted",
    ),
    "ErrAuthNotEnabled": ("auth: authentication is not enabled", "ErrGRPCAuthNotEnabled"),
    "ErrAuthOldRevision": ("auth: revision in header is old", "ErrGRPCAuthOldRevision"),
    "ErrInvalidAuthToken": ("auth: invalid auth token", "ErrGRPCInvalidAuthToken"),
    "ErrInvalidAuthOpts": ("auth: invalid auth options", None),
    "ErrInvalidAuthMgmt": ("auth: invalid auth management", "ErrGRPCInvalidAuthMgmt"),
    "ErrInvalidAuthMethod": ("auth: invalid auth signature", None),
    "ErrMissingKey": ("auth: missing key data", None),
    "ErrKeyMismatch": ("auth: public and private keys don't match", None),
    "ErrVerifyOnly": ("auth: token signing attempted with verify-only key", None),
    # membership
    "ErrIDRemoved": ("membership: ID removed", "ErrGRPCMemberNotFound"),
    "ErrIDExists": ("membership: ID exists", "ErrGRPCMemberExist"),
    "ErrIDNotFound": ("membership: ID not found", "ErrGRPCMemberNotFound"),
    "ErrPeerURLexists": ("membership: peerURL exists", "ErrGRPCPeerURLExist"),
    "ErrMemberNotLearner": (
        "membership: can only promote a learner member",
        "ErrGRPCMemberNotLearner",
    ),
    "ErrTooManyLearners": (
        "membership: too many learner members in cluster",
        "ErrGRPCTooManyLearners",
    ),
    # etcdserver
    "ErrUnknownMethod": ("etcdserver: unknown method", None),
    "ErrStopped": ("etcdserver: server stopped", "ErrGRPCStopped"),
    "ErrCanceled": ("etcdserver: request cancelled", None),
    "ErrTimeout": ("etcdserver: request timed out", "ErrGRPCTimeout"),
    "ErrTimeoutDueToLeaderFail": (
        "etcdserver: request timed out, possibly due to previous leader failure",
        "ErrGRPCTimeoutDueToLeaderFail",
    ),
    "ErrTimeoutDueToConnectionLost": (
        "etcdserver: request timed out, possibly due to connection lost",
        "ErrGRPCTimeoutDueToConnectionLost",
    ),
    "ErrTimeoutLeaderTransfer": (
        "etcdserver: request timed out, leader transfer took too long",
        None,
    ),
    "ErrTimeoutWaitAppliedIndex": (
        "etcdserver: request timed out, waiting for the applied index took too long",
        "ErrGRPCTimeoutWaitAppliedIndex",
    ),
    "ErrLeaderChanged": ("etcdserver: leader changed", "ErrGRPCLeaderChanged"),
    "ErrNotEnoughStartedMembers": (
        "etcdserver: re-configuration failed due to not enough started members",
        "ErrGRPCMemberNotEnoughStarted",
    ),
    "ErrLearnerNotReady": (
        "etcdserver: can only promote a learner member which is in sync with leader",
        "ErrGRPCLearnerNotReady",
    ),
    "ErrNoLeader": ("etcdserver: no leader", "ErrGRPCNoLeader"),
    "ErrNotLeader": ("etcdserver: not leader", "ErrGRPCNotLeader"),
    "ErrRequestTooLarge": ("etcdserver: request is too large", "ErrGRPCRequestTooLarge"),
    "ErrNoSpace": ("etcdserver: no space", "ErrGRPCNoSpace"),
    "ErrTooManyRequests": ("etcdserver: too many requests", "ErrGRPCRequestTooManyRequests"),
    "ErrUnhealthy": ("etcdserver: unhealthy cluster", "ErrGRPCUnhealthy"),
    "ErrKeyNotFound": ("etcdserver: key not found", "ErrGRPCKeyNotFound"),
    "ErrCorrupt": ("etcdserver: corrupt cluster", "ErrGRPCCorrupt"),
    "ErrBadLeaderTransferee": ("etcdserver: bad leader transferee", "ErrGRPCBadLeaderTransferee"),
    "ErrClusterVersionUnavailable": (
        "etcdserver: cluster version not found during downgrade",
        "ErrGRPCClusterVersionUnavailable",
    ),
    "ErrWrongDowngradeVersionFormat": (
        "etcdserver: wrong downgrade target version format",
        "ErrGRPCWrongDowngradeVersionFormat",
    ),
    "ErrInvalidDowngradeTargetVersion": (
        "etcdserver: invalid downgrade target version",
        "ErrGRPCInvalidDowngradeTargetVersion",
    ),
    "ErrDowngradeInProcess": (
        "etcdserver: cluster has a downgrade job in progress",
        "ErrGRPCDowngradeInProcess",
    ),
    "ErrNoInflightDowngrade": (
        "etcdserver: no inflight downgrade job",
        "ErrGRPCNoInflightDowngrade",
    ),
    # v3election (concurrency package errors, unmapped: code Unknown)
    "ErrElectionNotLeader": ("election: not leader", None),
    "ErrElectionNoLeader": ("election: no leader", None),
    "ErrMissingLeaderKey": ('"leader" field must be provided', None),
}

V2: dict[int, tuple[str, int]] = {
    100: ("Key not found", 404),
    101: ("Compare failed", 412),
    102: ("Not a file", 403),
    104: ("Not a directory", 400),
    105: ("Key already exists", 412),
    107: ("Root is read only", 400),
    108: ("Directory not empty", 403),
    110: ("The request requires user authentication", 401),
    200: ("Value is Required in POST form", 400),
    201: ("PrevValue is Required in POST form", 400),
    202: ("The given TTL in POST form is not a number", 400),
    203: ("The given index in POST form is not a number", 400),
    209: ("Invalid field", 400),
    210: ("Invalid POST form", 400),
    211: ("Value provided on refresh", 400),
    212: ("A TTL must be provided on refresh", 400),
    300: ("Raft Internal Error", 500),
    301: ("During Leader Election", 500),
    400: ("watcher is cleared due to etcd recovery", 400),
    401: ("The event in requested index is outdated and cleared", 400),
}


@pytest.mark.parametrize("name", sorted(GRPC))
def test_grpc_entry(name: str) -> None:
    cls = E.CATALOGUE[name]
    code, message = GRPC[name]
    assert cls.grpc_code is E.Code[code]
    assert cls.message == message
    assert cls.grpc_error is None
    assert E.from_grpc_message(message) is cls


@pytest.mark.parametrize("name", sorted(INTERNAL))
def test_internal_entry(name: str) -> None:
    cls = E.CATALOGUE[name]
    message, target = INTERNAL[name]
    assert cls.message == message
    err = cls("detail")
    code, sent = E.grpc_status(err)
    if target is None:
        assert (code, sent) == (E.Code.UNKNOWN, message)  # etcd: codes.Unknown, err.Error()
    else:
        assert (code.name, sent) == GRPC[target]


def test_catalogue_is_complete() -> None:
    assert set(E.CATALOGUE) == set(GRPC) | set(INTERNAL)


@pytest.mark.parametrize("ecode", sorted(V2))
def test_v2_entry(ecode: int) -> None:
    err = E.V2Error(ecode, "/foo", 7)
    message, status = V2[ecode]
    assert err.message == message
    assert err.http_status == status
    assert err.to_json() == {"errorCode": ecode, "message": message, "cause": "/foo", "index": 7}
    assert str(err) == f"{message} (/foo)"


def test_v2_omits_empty_cause_and_wraps_server_errors() -> None:
    assert E.V2Error(100).to_json() == {"errorCode": 100, "message": "Key not found", "index": 0}
    v2 = E.to_v2(E.ErrTimeout(), index=9)
    assert v2.to_json() == {
        "errorCode": 300,
        "message": "Raft Internal Error",
        "cause": "etcdserver: request timed out",
        "index": 9,
    }


def test_raise_with_detail_keeps_exact_message() -> None:
    with pytest.raises(E.ErrCompacted) as info:
        raise E.ErrCompacted("rev 3 < 5")
    assert info.value.message == "mvcc: required revision has been compacted"
    assert str(info.value) == info.value.message
    assert info.value.detail == "rev 3 < 5"
    g = E.to_grpc(info.value)
    assert isinstance(g, E.ErrGRPCCompacted) and g.detail == "rev 3 < 5"


def test_codes_match_grpc_statuscode() -> None:
    grpc = pytest.importorskip("grpc")
    for code in E.Code:
        assert grpc.StatusCode[code.name].value[0] == code.value


def test_gateway_http_status_covers_every_code() -> None:
    assert set(E.GATEWAY_HTTP_STATUS) == set(E.Code)
    assert E.GATEWAY_HTTP_STATUS[E.ErrGRPCCompacted.grpc_code] == 400
    assert E.GATEWAY_HTTP_STATUS[E.ErrGRPCNoLeader.grpc_code] == 503
    assert E.GATEWAY_HTTP_STATUS[E.ErrGRPCInvalidAuthToken.grpc_code] == 401
