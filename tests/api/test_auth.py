"""The API side of v3 auth (api/v3/auth.py) over a fake façade with a toy auth store.

Checks the seam, not etcd's auth rules (those belong to the server's store): the Auth RPCs
are served only when the façade has an auth store; they relay request and caller; the token
in gRPC ``token`` / gateway ``Authorization`` metadata reaches the façade as an AuthInfo;
an invalid token is etcd's error; admin-only maintenance calls ask the store.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from etcdpy import errors
from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from etcdpy.api.serve import ClientTLS, serve_client
from etcdpy.api.v3 import auth as auth_api
from etcdpy.api.v3.gateway import CN_REFUSED
from tests.api.conftest import LoopThread, Served
from tests.api.fake_server import FakeServer
from tests.api.test_tls import _write_certs


@dataclass
class Who:
    username: str
    revision: int = 1


class AuthFakeServer(FakeServer):
    """Users with passwords, tokens "tok-<user>", root is the only admin."""

    def __init__(self) -> None:
        super().__init__()
        self.users: dict[str, str] = {}
        self.enabled = False
        self.seen: list[tuple[str, str | None]] = []  # (call, username)

    def _who(self, auth: Any) -> str | None:
        return None if auth is None else str(auth.username)

    async def auth_enable(self, req: Any, auth: Any) -> Any:
        if "root" not in self.users:
            raise errors.ErrGRPCRootUserNotExist()
        self.enabled = True
        return pb.AuthEnableResponse(header=self.header())

    async def auth_disable(self, req: Any, auth: Any) -> Any:
        self.enabled = False
        return pb.AuthDisableResponse(header=self.header())

    async def auth_status(self, req: Any, auth: Any) -> Any:
        return pb.AuthStatusResponse(header=self.header(), enabled=self.enabled)

    async def authenticate(self, req: Any, auth: Any) -> Any:
        if self.users.get(req.name) != req.password:
            raise errors.ErrGRPCAuthFailed()
        return pb.AuthenticateResponse(header=self.header(), token=f"tok-{req.name}")

    async def user_add(self, req: Any, auth: Any) -> Any:
        self.seen.append(("user_add", self._who(auth)))
        if req.name in self.users:
            raise errors.ErrGRPCUserAlreadyExist()
        self.users[req.name] = req.password
        return pb.AuthUserAddResponse(header=self.header())

    async def user_list(self, req: Any, auth: Any) -> Any:
        self.seen.append(("user_list", self._who(auth)))
        return pb.AuthUserListResponse(header=self.header(), users=sorted(self.users))

    def __getattr__(self, name: str) -> Any:
        if name in {attr for *_, attr in auth_api.RPCS}:

            async def unimplemented(req: Any, auth: Any) -> Any:
                raise errors.ErrGRPCInvalidAuthMgmt()

            return unimplemented
        raise AttributeError(name)

    def auth_info_from_token(self, token: str) -> Who | None:
        if not self.enabled:
            return None
        if not token.startswith("tok-") or token[4:] not in self.users:
            raise errors.ErrGRPCInvalidAuthToken()
        return Who(token[4:])

    def is_auth_enabled(self) -> bool:
        return self.enabled

    def is_admin_permitted(self, auth: Any) -> None:
        if not self.enabled:
            return
        if auth is None:
            raise errors.ErrGRPCUserEmpty()
        if auth.username != "root":
            raise errors.ErrGRPCPermissionDenied()


@pytest.fixture(scope="module")
def served_auth() -> Iterator[Served]:
    lt = LoopThread()
    fake = lt.call(AuthFakeServer)
    lst = lt.run(serve_client("http://127.0.0.1:0", fake, mode="mux"))
    try:
        yield Served(lt, fake, lst)
    finally:
        lt.run(lst.close())
        lt.stop()


def _code(exc: grpc.RpcError) -> tuple[Any, Any]:
    return exc.code(), exc.details()  # type: ignore[attr-defined]


def test_auth_rpcs_relay_with_token_and_admin_checks(served_auth: Served) -> None:
    fake: AuthFakeServer = served_auth.fake  # type: ignore[assignment]
    with served_auth.channel() as ch:
        a = rpc.AuthStub(ch)
        m = rpc.MaintenanceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            a.AuthEnable(pb.AuthEnableRequest())
        assert _code(e.value) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "etcdserver: root user does not exist",
        )
        a.UserAdd(pb.AuthUserAddRequest(name="root", password="rootpw"))
        a.UserAdd(pb.AuthUserAddRequest(name="bob", password="bobpw"))
        a.AuthEnable(pb.AuthEnableRequest())
        assert a.AuthStatus(pb.AuthStatusRequest()).enabled
        token = a.Authenticate(pb.AuthenticateRequest(name="root", password="rootpw")).token
        assert token == "tok-root"
        users = a.UserList(pb.AuthUserListRequest(), metadata=[("token", token)]).users
        assert list(users) == ["bob", "root"]
        assert fake.seen[-1] == ("user_list", "root")
        with pytest.raises(grpc.RpcError) as e:
            a.UserList(pb.AuthUserListRequest(), metadata=[("token", "tok-nobody")])
        assert _code(e.value) == (grpc.StatusCode.UNAUTHENTICATED, "etcdserver: invalid auth token")
        # admin-only maintenance
        m.Defragment(pb.DefragmentRequest(), metadata=[("token", token)])
        with pytest.raises(grpc.RpcError) as e:
            m.Defragment(pb.DefragmentRequest(), metadata=[("token", "tok-bob")])
        assert _code(e.value)[0] == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as e:
            list(m.Snapshot(pb.SnapshotRequest(), metadata=[("token", "tok-bob")]))
        assert _code(e.value)[0] == grpc.StatusCode.PERMISSION_DENIED
        m.Status(pb.StatusRequest(), metadata=[("token", "tok-bob")])  # not admin-only
        a.AuthDisable(pb.AuthDisableRequest(), metadata=[("token", token)])


def test_gateway_auth_routes_and_authorization_header(served_auth: Served) -> None:
    fake: AuthFakeServer = served_auth.fake  # type: ignore[assignment]

    async def run() -> tuple[Any, Any]:
        url = served_auth.url
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/v3/auth/user/add", json={"name": "gw", "password": "p"}):
                pass
            async with s.post(url + "/v3/auth/user/add", json={"name": "root", "password": "r"}):
                pass
            async with s.post(url + "/v3/auth/enable", data="{}") as r:
                assert r.status == 200
            body = {"name": "gw", "password": "p"}
            async with s.post(url + "/v3beta/auth/authenticate", json=body) as r:
                token = json.loads(await r.read())["token"]
            hdrs = {"Authorization": token}
            async with s.post(url + "/v3/auth/user/list", data="{}", headers=hdrs) as r:
                listed = json.loads(await r.read())
            async with s.post(url + "/v3/auth/disable", data="{}", headers=hdrs) as r:
                assert r.status == 200
            return token, listed

    fake.users.clear()
    token, listed = asyncio.run(run())
    assert token == "tok-gw"
    assert listed["users"] == ["gw", "root"]
    assert fake.seen[-1] == ("user_list", "gw")


def test_no_auth_store_no_auth_service() -> None:
    """A façade without an auth store: Auth stays Unimplemented (as before)."""
    lt = LoopThread()
    fake = lt.call(FakeServer)
    lst = lt.run(serve_client("http://127.0.0.1:0", fake, mode="mux"))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{lst.address[1]}") as ch:
            with pytest.raises(grpc.RpcError) as e:
                rpc.AuthStub(ch).AuthStatus(pb.AuthStatusRequest())
            assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    finally:
        lt.run(lst.close())
        lt.stop()


def test_gateway_refuses_client_cert_cn_when_auth_is_on(tmp_path: Path) -> None:
    """etcd's accessController: --client-cert-auth + auth enabled + a CN in the client cert
    -> the gateway answers 400 (the CN would be ignored, so etcd refuses rather than mislead)."""
    ca, cert, key = _write_certs(tmp_path)
    lt = LoopThread()
    fake = lt.call(AuthFakeServer)
    tls = ClientTLS(str(cert), str(key), str(ca), client_cert_auth=True)
    lst = lt.run(serve_client("https://127.0.0.1:0", fake, mode="mux", tls=tls))
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(tmp_path / "alice.pem"), str(tmp_path / "alice-key.pem"))
    url = f"https://127.0.0.1:{lst.address[1]}/v3/kv/range"

    async def post() -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.post(url, data='{"key":"YQ=="}', ssl=ctx) as r:
            return r.status, await r.text()

    try:
        assert asyncio.run(post())[0] == 200  # auth off: served
        lt.call(lambda: setattr(fake, "enabled", True))
        assert asyncio.run(post()) == (400, CN_REFUSED + "\n")
    finally:
        lt.run(lst.close())
        lt.stop()
