"""TLS for client URLs: real handshakes on 127.0.0.1 through a stand-in one-port mux."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import ssl
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcdpy.config.tls_names import openssl_cipher_string
from etcdpy.transport.tls import (
    CRL,
    TLSInfo,
    apply_auto_tls,
    cert_matches_hostname,
    check_cert_san,
    client_ssl_context,
    client_tls_info,
    conn_check,
    grpc_tls_unsupported,
    log_rejected,
    peer_cn_allowed,
    peer_tls_info,
    self_signed_cert,
    server_ssl_context,
)
from tests.transport.standin import StandInMux

FIXTURES = Path("/tmp/conf-e2e/tree/integration/fixtures")
ECHO = "/test.Echo/Echo"
PEM = serialization.Encoding.PEM


# --- a small PKI ------------------------------------------------------------------------


@dataclass
class PKI:
    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    alice_cert: Path
    alice_key: Path
    revoked_cert: Path
    revoked_key: Path
    crl: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _make_pki(d: Path) -> PKI:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(PEM))

    def leaf(name: str, cn: str, serial: int) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        c, k = d / f"{name}.pem", d / f"{name}-key.pem"
        c.write_bytes(cert.public_bytes(PEM))
        _write_key(k, key)
        return c, k

    sc, sk = leaf("server", "example.com", 10)
    ac, ak = leaf("alice", "alice", 11)
    rc, rk = leaf("revoked", "mallory", 0x4A3CF9F9DCC21A01)
    # A CRL whose nextUpdate has passed, like etcd's fixture: serials must still count.
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_name)
        .last_update(now - datetime.timedelta(days=10))
        .next_update(now - datetime.timedelta(days=3))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(0x4A3CF9F9DCC21A01)
            .revocation_date(now - datetime.timedelta(days=10))
            .build()
        )
        .sign(ca_key, hashes.SHA256())
    )
    (d / "revoke.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    return PKI(d, d / "ca.pem", sc, sk, ac, ak, rc, rk, d / "revoke.crl")


@pytest.fixture(scope="module")
def pki() -> Iterator[PKI]:
    d = Path(tempfile.mkdtemp(prefix="etcdpy-tls-"))
    try:
        yield _make_pki(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --- the stand-in server: grpc.aio on a unix socket + aiohttp, behind StandInMux ----------


async def _echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


def _grpc_server(path: str) -> grpc.aio.Server:
    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    srv = grpc.aio.server()
    srv.add_generic_rpc_handlers((handler,))
    srv.add_insecure_port(f"unix:{path}")
    return srv


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"health": "true"})


@asynccontextmanager
async def serving(info: TLSInfo) -> AsyncIterator[tuple[StandInMux, int]]:
    tmp = tempfile.mkdtemp(prefix="etcdpy-grpc-")
    path = os.path.join(tmp, "grpc.sock")
    gsrv = _grpc_server(path)
    await gsrv.start()
    app = web.Application()
    app.router.add_get("/health", _health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    mux = StandInMux(runner.server, path, server_ssl_context(info), conn_check(info))
    port = await mux.start()
    try:
        yield mux, port
    finally:
        await mux.close()
        await runner.cleanup()
        await gsrv.stop(0)
        shutil.rmtree(tmp, ignore_errors=True)


def run(
    coro_fn: Callable[[], Awaitable[None]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    async def main() -> None:
        async with asyncio.timeout(15):
            await coro_fn()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())


def _uvloop() -> Callable[[], asyncio.AbstractEventLoop]:
    uvloop = pytest.importorskip("uvloop")
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


LOOPS = pytest.mark.parametrize("loop", ["asyncio", "uvloop"])


def _loop(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    return _uvloop() if name == "uvloop" else None


def _client_ctx(pki: PKI, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def _health_get(port: int, ctx: ssl.SSLContext) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"https://127.0.0.1:{port}/health", ssl=ctx) as r,
    ):
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return body


async def _grpc_echo(port: int, pki: PKI, cert: Path | None, key: Path | None) -> bytes:
    creds = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", creds) as ch:
        call = ch.unary_unary(ECHO)
        out: bytes = await call(b"ping", timeout=5)
        return out


async def _refused(port: int, ctx: ssl.SSLContext) -> bool:
    """True when the server drops the connection instead of answering (TLS 1.3 reports a
    missing/refused client certificate only after the client's handshake completed)."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    except (ssl.SSLError, ConnectionError):
        return True
    try:
        w.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await w.drain()
        data = await r.read()
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        w.close()
    return data == b""


# --- tests ------------------------------------------------------------------------------


@LOOPS
def test_client_cert_auth_requires_a_certificate_and_exposes_cn(pki: PKI, loop: str) -> None:
    info = TLSInfo(str(pki.server_cert), str(pki.server_key), str(pki.ca), client_cert_auth=True)

    async def body() -> None:
        async with serving(info) as (mux, port):
            assert await _refused(port, _client_ctx(pki, None, None))
            good = _client_ctx(pki, pki.alice_cert, pki.alice_key)
            assert await _health_get(port, good) == {"health": "true"}
            assert "alice" in mux.common_names
            assert await _grpc_echo(port, pki, pki.alice_cert, pki.alice_key) == b"ping"
            assert mux.alpn[-1] == "h2"  # grpc-core offers h2 only

    run(body, _loop(loop))


def test_trusted_ca_alone_requires_client_cert(pki: PKI) -> None:
    """etcd's ServerConfig: TrustedCAFile != "" also means RequireAndVerifyClientCert."""
    info = TLSInfo(str(pki.server_cert), str(pki.server_key), str(pki.ca))

    async def body() -> None:
        async with serving(info) as (_, port):
            assert await _refused(port, _client_ctx(pki, None, None))

    run(body)


def test_server_only_tls_grpc_and_http_share_the_port(pki: PKI) -> None:
    info = TLSInfo(str(pki.server_cert), str(pki.server_key))

    async def body() -> None:
        async with serving(info) as (mux, port):
            assert await _grpc_echo(port, pki, None, None) == b"ping"
            assert await _health_get(port, _client_ctx(pki, None, None)) == {"health": "true"}
            assert mux.common_names == [None, None]

    run(body)


def test_alpn_prefers_http11_for_clients_that_offer_both(pki: PKI) -> None:
    """curl and Go's http.Client offer h2 and http/1.1: they must get http/1.1 so the
    decrypted bytes route to aiohttp; a client offering only h2 (gRPC) gets h2."""
    info = TLSInfo(str(pki.server_cert), str(pki.server_key))

    async def negotiated(offer: list[str], port: int) -> str | None:
        ctx = _client_ctx(pki, None, None)
        ctx.set_alpn_protocols(offer)
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        proto: str | None = w.get_extra_info("ssl_object").selected_alpn_protocol()
        w.close()
        return proto

    async def body() -> None:
        async with serving(info) as (_, port):
            assert await negotiated(["h2", "http/1.1"], port) == "http/1.1"
            assert await negotiated(["h2"], port) == "h2"

    run(body)


async def _curl_health(pki: PKI, port: int) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--cacert", str(pki.ca), f"https://127.0.0.1:{port}/health",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return out.strip()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_curl_over_https_reaches_http_side(pki: PKI) -> None:
    info = TLSInfo(str(pki.server_cert), str(pki.server_key))

    async def body() -> None:
        async with serving(info) as (_, port):
            assert await _curl_health(pki, port) == b'{"health": "true"}'

    run(body)


@LOOPS
def test_crl_refuses_revoked_even_when_crl_is_stale(pki: PKI, loop: str) -> None:
    info = TLSInfo(
        str(pki.server_cert),
        str(pki.server_key),
        str(pki.ca),
        client_cert_auth=True,
        crl_file=str(pki.crl),
    )

    async def body() -> None:
        async with serving(info) as (mux, port):
            assert await _refused(port, _client_ctx(pki, pki.revoked_cert, pki.revoked_key))
            assert mux.rejected and "revoked" in mux.rejected[0]
            good = _client_ctx(pki, pki.alice_cert, pki.alice_key)
            assert await _health_get(port, good) == {"health": "true"}

    run(body, _loop(loop))


@pytest.mark.skipif(not (FIXTURES / "revoke.crl").exists(), reason="no etcd fixtures")
def test_etcd_fixtures_crl() -> None:
    f = FIXTURES
    info = TLSInfo(
        str(f / "server.crt"),
        str(f / "server.key.insecure"),
        str(f / "ca.crt"),
        client_cert_auth=True,
        crl_file=str(f / "revoke.crl"),
    )

    def ctx(cert: str, key: str) -> ssl.SSLContext:
        c = ssl.create_default_context(cafile=str(f / "ca.crt"))
        c.load_cert_chain(str(f / cert), str(f / key))
        return c

    async def body() -> None:
        async with serving(info) as (mux, port):
            assert await _refused(port, ctx("server-revoked.crt", "server-revoked.key.insecure"))
            good = ctx("server.crt", "server.key.insecure")
            assert await _health_get(port, good) == {"health": "true"}
            assert mux.common_names[-1] == "example.com"

    run(body)


def test_crl_reloads_when_file_changes(pki: PKI, tmp_path: Path) -> None:
    p = tmp_path / "x.crl"
    shutil.copy(pki.crl, p)
    crl = CRL(str(p))
    assert 0x4A3CF9F9DCC21A01 in crl.revoked()
    der = x509.load_der_x509_crl(p.read_bytes())
    p.write_bytes(der.public_bytes(PEM) + b"\n")  # PEM now, and a different size
    assert 0x4A3CF9F9DCC21A01 in crl.revoked()


def test_allowed_cn_refuses_other_certificates(pki: PKI) -> None:
    base = TLSInfo(str(pki.server_cert), str(pki.server_key), str(pki.ca), True)
    refuse = TLSInfo(**{**_fields(base), "allowed_cn": "bob"})
    allow = TLSInfo(**{**_fields(base), "allowed_cn": "alice"})

    async def body() -> None:
        async with serving(refuse) as (mux, port):
            assert await _refused(port, _client_ctx(pki, pki.alice_cert, pki.alice_key))
            assert mux.rejected == ["client certificate authentication failed"]
        async with serving(allow) as (_, port):
            good = _client_ctx(pki, pki.alice_cert, pki.alice_key)
            assert await _health_get(port, good) == {"health": "true"}

    run(body)


def _fields(info: TLSInfo) -> dict[str, Any]:
    return {k: getattr(info, k) for k in info.__dataclass_fields__}


def test_cipher_suites_restrict_tls12(pki: PKI) -> None:
    info = TLSInfo(
        str(pki.server_cert),
        str(pki.server_key),
        cipher_suites=("ECDHE-ECDSA-AES128-GCM-SHA256",),
        max_version="TLS1.2",
    )

    async def body() -> None:
        async with serving(info) as (_, port):
            bad = _client_ctx(pki, None, None)
            bad.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
            with pytest.raises((ssl.SSLError, ConnectionError)):
                await asyncio.open_connection("127.0.0.1", port, ssl=bad)
            ok = _client_ctx(pki, None, None)
            _, w = await asyncio.open_connection("127.0.0.1", port, ssl=ok)
            assert w.get_extra_info("cipher")[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
            w.close()

    run(body)


def test_auto_tls_generates_sans_and_reuses(tmp_path: Path) -> None:
    d = tmp_path / "fixtures" / "client"
    hosts = ["127.0.0.1:2379", "localhost:2379", "[::1]:2379", "node1.example"]
    info = self_signed_cert(str(d), hosts, 2)
    assert info.self_cert and info.cert_file == str(d / "cert.pem")
    assert stat.S_IMODE(os.stat(info.key_file).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(Path(info.cert_file).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "node1.example"}
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert days == 730
    before = Path(info.cert_file).read_bytes()
    again = self_signed_cert(str(d), ["10.0.0.1:2379"], 1)
    assert again == info and Path(again.cert_file).read_bytes() == before

    async def body() -> None:
        async with serving(info) as (_, port):
            ctx = ssl.create_default_context(cafile=info.cert_file)  # verifies 127.0.0.1 SAN
            assert await _health_get(port, ctx) == {"health": "true"}
            peer = client_ssl_context(info)  # self cert: no verification, as etcd
            _, w = await asyncio.open_connection("127.0.0.1", port, ssl=peer)
            w.close()

    run(body)


def test_peer_auto_tls_has_client_auth_usage(tmp_path: Path) -> None:
    info = self_signed_cert(str(tmp_path / "peer"), ["127.0.0.1:2380"], client_auth=True)
    cert = x509.load_pem_x509_certificate(Path(info.cert_file).read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku and ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_hostname_and_cn_rules() -> None:
    cert = {
        "subject": ((("commonName", "etcd-peer"),),),
        "subjectAltName": (("DNS", "*.example.com"), ("IP Address", "10.0.0.1")),
    }
    assert peer_cn_allowed(cert, "", "")
    assert peer_cn_allowed(cert, "etcd-peer", "")
    assert not peer_cn_allowed(cert, "other", "")
    assert peer_cn_allowed(cert, "", "a.example.com")
    assert not peer_cn_allowed(cert, "", "a.b.example.com")
    assert not peer_cn_allowed(cert, "", "etcd-peer")  # no CN fallback (Go >= 1.15)
    assert cert_matches_hostname(cert, "10.0.0.1")
    assert not cert_matches_hostname(cert, "10.0.0.2")
    assert not peer_cn_allowed(None, "etcd-peer", "")


def test_conn_check_rejects_cn_and_hostname_together() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        conn_check(TLSInfo("c", "k", allowed_cn="a", allowed_hostname="b"))


def test_infos_from_duck_typed_config() -> None:
    cfg = SimpleNamespace(
        cert_file="s.crt",
        key_file="s.key",
        trusted_ca_file="ca.crt",
        client_cert_auth=True,
        client_crl_file="r.crl",
        client_cert_allowed_hostname="",
        cipher_suites=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
        tls_min_version="",
        tls_max_version="",
        peer_cert_file="p.crt",
        peer_key_file="p.key",
        peer_trusted_ca_file="pca.crt",
        peer_client_cert_auth=True,
        peer_crl_file="",
        peer_cert_allowed_cn="etcd",
        peer_cert_allowed_hostname="",
    )
    c = client_tls_info(cfg, openssl_cipher_string)
    assert c.crl_file == "r.crl" and c.client_cert_auth and not c.empty()
    assert c.cipher_suites == ("ECDHE-RSA-AES128-GCM-SHA256",)
    p = peer_tls_info(cfg, openssl_cipher_string)
    assert (p.cert_file, p.allowed_cn, p.trusted_ca_file) == ("p.crt", "etcd", "pca.crt")
    assert TLSInfo().empty()
    with pytest.raises(ValueError):
        client_tls_info(cfg)  # cipher names need the map from config


def test_apply_auto_tls_follows_etcd(tmp_path: Path) -> None:
    given = TLSInfo("c.pem", "k.pem", client_cert_auth=True)
    warned: list[str] = []
    log = SimpleNamespace(info=lambda *a, **k: None, warn=lambda m, *a, **k: warned.append(m))
    assert apply_auto_tls(given, True, str(tmp_path), ["127.0.0.1:1"], 1, log) is given
    assert warned == ["ignoring client auto TLS since certs given"]
    assert apply_auto_tls(TLSInfo(), False, str(tmp_path), []) == TLSInfo()
    wanted = TLSInfo(client_cert_auth=True, cipher_suites=("ECDHE-ECDSA-AES128-GCM-SHA256",))
    got = apply_auto_tls(wanted, True, str(tmp_path / "peer"), ["127.0.0.1:1"], side="peer")
    assert got.self_cert and not got.client_cert_auth  # etcd replaces the whole TLSInfo
    assert got.cipher_suites == wanted.cipher_suites
    assert Path(got.cert_file).parent == tmp_path / "peer"


def test_real_client_mux_serves_tls_from_server_ssl_context(pki: PKI) -> None:
    """The integration as it stands: cmux.ClientMux(ssl=server_ssl_context(info)); gRPC and
    an ALPN-offering HTTP client (aiohttp offers none; curl offers h2 + http/1.1) both work."""
    from etcdpy.transport.cmux import ClientMux

    info = TLSInfo(str(pki.server_cert), str(pki.server_key))

    async def body() -> None:
        tmp = tempfile.mkdtemp(prefix="etcdpy-grpc-")
        path = os.path.join(tmp, "grpc.sock")
        gsrv = _grpc_server(path)
        await gsrv.start()
        app = web.Application()
        app.router.add_get("/health", _health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        assert runner.server is not None
        mux = ClientMux(runner.server, path, ssl=server_ssl_context(info))
        try:
            _, port = await mux.start("127.0.0.1", 0)
            assert await _grpc_echo(port, pki, None, None) == b"ping"
            assert await _health_get(port, _client_ctx(pki, None, None)) == {"health": "true"}
            if shutil.which("curl"):  # offers h2 + http/1.1 and speaks h2 when it gets it
                assert await _curl_health(pki, port) == b'{"health": "true"}'
        finally:
            await mux.close()
            await runner.cleanup()
            await gsrv.stop(0)
            shutil.rmtree(tmp, ignore_errors=True)

    run(body)


def test_check_cert_san_like_etcd_peer_listener() -> None:
    ip_only = {"subjectAltName": (("IP Address", "10.0.0.1"),)}
    named = {"subjectAltName": (("DNS", "m1.example"), ("DNS", "*.peers.example"))}

    async def ptr(ip: str) -> list[str]:
        return {"10.0.0.7": ["x.peers.example."]}.get(ip, [])

    async def fwd(name: str) -> list[str]:
        return {"m1.example": ["10.0.0.5"]}.get(name, [])

    async def body() -> None:
        assert await check_cert_san(ip_only, "10.0.0.1", ptr, fwd) is None
        assert await check_cert_san(ip_only, "10.0.0.2", ptr, fwd) == (
            "x509: certificate is valid for 10.0.0.1, not 10.0.0.2"
        )
        assert await check_cert_san(named, "10.0.0.5", ptr, fwd) is None  # forward lookup
        assert await check_cert_san(named, "10.0.0.7", ptr, fwd) is None  # PTR wildcard
        assert await check_cert_san(named, "10.0.0.9", ptr, fwd) == (
            'tls: "10.0.0.9" does not match any of DNSNames ["m1.example" "*.peers.example"]'
        )
        assert await check_cert_san({"subject": ()}, "10.0.0.9", ptr, fwd) is None

    run(body)


def test_rotated_certificate_is_served_without_restart(pki: PKI, tmp_path: Path) -> None:
    cert, key = tmp_path / "s.pem", tmp_path / "s-key.pem"
    shutil.copy(pki.server_cert, cert)
    shutil.copy(pki.server_key, key)
    info = TLSInfo(str(cert), str(key))
    auto = self_signed_cert(str(tmp_path / "auto"), ["127.0.0.1"])

    async def served_cert(port: int) -> bytes:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        der: bytes = w.get_extra_info("ssl_object").getpeercert(binary_form=True)
        w.close()
        return der

    def der_of(path: Path | str) -> bytes:
        c = x509.load_pem_x509_certificate(Path(path).read_bytes())
        return c.public_bytes(serialization.Encoding.DER)

    async def body() -> None:
        async with serving(info) as (_, port):
            assert await served_cert(port) == der_of(pki.server_cert)
            shutil.copy(auto.key_file, key)
            shutil.copy(auto.cert_file, cert)
            assert await served_cert(port) == der_of(auto.cert_file)
            assert await served_cert(port) == der_of(auto.cert_file)

    run(body)


def test_grpc_tls_unsupported_names_the_reason() -> None:
    assert grpc_tls_unsupported(TLSInfo("c", "k", "ca", True)) is None
    assert grpc_tls_unsupported(TLSInfo("c", "k", crl_file="r")) == "--client-crl-file"
    assert grpc_tls_unsupported(TLSInfo("c", "k", cipher_suites=("X",))) == "--cipher-suites"


def test_log_rejected_uses_etcds_line() -> None:
    lines: list[tuple[str, Any]] = []
    log = SimpleNamespace(info=lambda *a, **k: None, warn=lambda m, f=None: lines.append((m, f)))
    log_rejected(log)("transport: certificate serial 1 revoked", ("127.0.0.1", 5000))
    assert lines == [
        (
            "rejected connection",
            {"remote-addr": "127.0.0.1:5000", "error": "transport: certificate serial 1 revoked"},
        )
    ]


def test_peer_mutual_tls_with_allowed_cn(pki: PKI) -> None:
    """Peer side: the dialing member presents its certificate from client_ssl_context; the
    listener requires it and checks --peer-cert-allowed-cn."""
    server = TLSInfo(
        str(pki.server_cert), str(pki.server_key), str(pki.ca), True, allowed_cn="alice"
    )
    alice = TLSInfo(str(pki.alice_cert), str(pki.alice_key), str(pki.ca))
    other = TLSInfo(str(pki.revoked_cert), str(pki.revoked_key), str(pki.ca))  # CN mallory

    async def body() -> None:
        async with serving(server) as (mux, port):
            ctx = client_ssl_context(alice, alpn=("http/1.1",))
            assert await _health_get(port, ctx) == {"health": "true"}
            assert await _refused(port, client_ssl_context(other))
            assert mux.rejected == ["client certificate authentication failed"]

    run(body)
