"""Auth service (etcd v3rpc/auth.go) and the token/CN resolver: the API side of v3 auth.

The RPCs relay to the façade, which owns the auth store (users, roles, permissions, the
enabled flag, tokens) and every check and error (``etcdpy.errors`` ErrGRPCUserAlreadyExist,
ErrGRPCRootUserNotExist, ...). A façade without an auth store (no ``auth_enable``) gets no
Auth service registered, so clients keep seeing Unimplemented rather than a half-built API.

Façade methods used, all ``async (request, auth) -> response`` (etcd's EtcdServer names):
auth_enable, auth_disable, auth_status, authenticate, user_add, user_delete,
user_change_password, user_grant_role, user_get, user_list, user_revoke_role, role_add,
role_grant_permission, role_get, role_list, role_revoke_permission, role_delete.

Who is calling (etcd's AuthInfoFromCtx), see ``token_resolver``:
1. a ``token`` (gRPC) or ``authorization`` (grpc-gateway) metadata value is an auth token:
   ``server.auth_info_from_token(token)`` (None when auth is off; raises
   ErrGRPCInvalidAuthToken for an unknown or expired token);
2. without a token, the verified client certificate's CN (--client-cert-auth):
   ``server.auth_info_from_cn(cn)``;
3. otherwise nobody (None).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy.api.v3.common import (
    TOKEN_FIELD_NAME_GRPC,
    TOKEN_FIELD_NAME_SWAGGER,
    ApiContext,
    AuthResolver,
    Metadata,
)
from etcdpy.api.v3.handlers import Method
from etcdpy.server.facade import AuthInfo

SERVICE = "etcdserverpb.Auth"

# (RPC, request, response, façade method) in rpc.proto's order
RPCS: tuple[tuple[str, Any, Any, str], ...] = (
    ("AuthEnable", pb.AuthEnableRequest, pb.AuthEnableResponse, "auth_enable"),
    ("AuthDisable", pb.AuthDisableRequest, pb.AuthDisableResponse, "auth_disable"),
    ("AuthStatus", pb.AuthStatusRequest, pb.AuthStatusResponse, "auth_status"),
    ("Authenticate", pb.AuthenticateRequest, pb.AuthenticateResponse, "authenticate"),
    ("UserAdd", pb.AuthUserAddRequest, pb.AuthUserAddResponse, "user_add"),
    ("UserGet", pb.AuthUserGetRequest, pb.AuthUserGetResponse, "user_get"),
    ("UserList", pb.AuthUserListRequest, pb.AuthUserListResponse, "user_list"),
    ("UserDelete", pb.AuthUserDeleteRequest, pb.AuthUserDeleteResponse, "user_delete"),
    (
        "UserChangePassword",
        pb.AuthUserChangePasswordRequest,
        pb.AuthUserChangePasswordResponse,
        "user_change_password",
    ),
    ("UserGrantRole", pb.AuthUserGrantRoleRequest, pb.AuthUserGrantRoleResponse, "user_grant_role"),
    (
        "UserRevokeRole",
        pb.AuthUserRevokeRoleRequest,
        pb.AuthUserRevokeRoleResponse,
        "user_revoke_role",
    ),
    ("RoleAdd", pb.AuthRoleAddRequest, pb.AuthRoleAddResponse, "role_add"),
    ("RoleGet", pb.AuthRoleGetRequest, pb.AuthRoleGetResponse, "role_get"),
    ("RoleList", pb.AuthRoleListRequest, pb.AuthRoleListResponse, "role_list"),
    ("RoleDelete", pb.AuthRoleDeleteRequest, pb.AuthRoleDeleteResponse, "role_delete"),
    (
        "RoleGrantPermission",
        pb.AuthRoleGrantPermissionRequest,
        pb.AuthRoleGrantPermissionResponse,
        "role_grant_permission",
    ),
    (
        "RoleRevokePermission",
        pb.AuthRoleRevokePermissionRequest,
        pb.AuthRoleRevokePermissionResponse,
        "role_revoke_permission",
    ),
)

# rpc.proto's google.api.http paths for the JSON gateway
GATEWAY_PATHS: dict[str, str] = {
    "/v3/auth/enable": "AuthEnable",
    "/v3/auth/disable": "AuthDisable",
    "/v3/auth/status": "AuthStatus",
    "/v3/auth/authenticate": "Authenticate",
    "/v3/auth/user/add": "UserAdd",
    "/v3/auth/user/get": "UserGet",
    "/v3/auth/user/list": "UserList",
    "/v3/auth/user/delete": "UserDelete",
    "/v3/auth/user/changepw": "UserChangePassword",
    "/v3/auth/user/grant": "UserGrantRole",
    "/v3/auth/user/revoke": "UserRevokeRole",
    "/v3/auth/role/add": "RoleAdd",
    "/v3/auth/role/get": "RoleGet",
    "/v3/auth/role/list": "RoleList",
    "/v3/auth/role/delete": "RoleDelete",
    "/v3/auth/role/grant": "RoleGrantPermission",
    "/v3/auth/role/revoke": "RoleRevokePermission",
}


def has_auth_store(server: Any) -> bool:
    return callable(getattr(server, "auth_enable", None))


def _relay(
    fn: Callable[[Any, AuthInfo | None], Awaitable[Any]],
) -> Callable[[Any, AuthInfo | None], Awaitable[Any]]:
    async def core(req: Any, auth: AuthInfo | None) -> Any:
        return await fn(req, auth)

    return core


def methods(api: ApiContext) -> list[Method]:
    s = api.server
    if not has_auth_store(s):
        return []
    return [
        Method(SERVICE, name, "unary", req, resp, _relay(getattr(s, attr)))
        for name, req, resp, attr in RPCS
    ]


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def token_resolver(server: Any) -> AuthResolver:
    """etcd's AuthInfoFromCtx over the façade's auth store (see the module rules)."""
    from_token: Callable[[str], AuthInfo | None] = server.auth_info_from_token
    from_cn: Callable[[str], AuthInfo | None] | None = getattr(server, "auth_info_from_cn", None)

    def resolve(md: Metadata, common_name: str | None) -> AuthInfo | None:
        for key, value in md:
            if key in (TOKEN_FIELD_NAME_GRPC, TOKEN_FIELD_NAME_SWAGGER):
                return from_token(_text(value))
        if common_name and from_cn is not None:
            return from_cn(common_name)
        return None

    return resolve
