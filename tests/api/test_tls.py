"""https client URLs: TLS terminated by the multiplexer (or by grpc in grpc mode)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from etcdpy._pb.etcdserverpb import rpc_pb2 as pb
from etcdpy._pb.etcdserverpb import rpc_pb2_grpc as rpc
from etcdpy.api.serve import ClientListener, ClientTLS, Mode, serve_client
from etcdpy.api.v3.common import ApiContext
from tests.api.conftest import LoopThread, Served
from tests.api.fake_server import FakeServer

ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def _issue(
    d: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, cn: str, serial: int
) -> tuple[Path, Path]:
    """A leaf certificate for ``cn`` (valid for 127.0.0.1), signed by the test CA."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert_path, key_path = d / f"{cn}.pem", d / f"{cn}-key.pem"
    cert_path.write_bytes(cert.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _write_certs(d: Path) -> tuple[Path, Path, Path]:
    """(CA, server cert, server key) in ``d``; also a client cert for CN "alice"."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcdpy test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = d / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = _issue(d, ca, ca_key, "server", 2)
    _issue(d, ca, ca_key, "alice", 3)
    return ca_path, cert_path, key_path


@pytest.fixture(scope="module", params=["mux", "grpc"])
def tls_served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Served, Path]]:
    ca, cert, key = _write_certs(tmp_path_factory.mktemp("tls"))
    mode: Mode = request.param
    lt = LoopThread()
    fake = lt.call(FakeServer)
    tls = ClientTLS(str(cert), str(key))
    lst = lt.run(serve_client("https://127.0.0.1:0", fake, mode=mode, tls=tls))
    try:
        yield Served(lt, fake, lst), ca
    finally:
        lt.run(lst.close())
        lt.stop()


@pytest.mark.skipif(not os.path.exists(ETCDCTL), reason="etcdctl not installed")
def test_etcdctl_over_tls(tls_served: tuple[Served, Path]) -> None:
    served, ca = tls_served
    env = {**os.environ, "ETCDCTL_API": "3"}
    base = [ETCDCTL, f"--endpoints=https://{served.endpoint}", f"--cacert={ca}"]
    p = subprocess.run(
        [*base, "put", "t", "v"], env=env, capture_output=True, text=True, timeout=10
    )
    assert p.returncode == 0 and p.stdout == "OK\n", p.stderr
    p = subprocess.run([*base, "get", "t"], env=env, capture_output=True, text=True, timeout=10)
    assert p.stdout == "t\nv\n", p.stderr


def test_health_over_tls_on_the_mux_port(tls_served: tuple[Served, Path]) -> None:
    served, ca = tls_served
    if served.listener.mode != "mux":
        pytest.skip("HTTP shares the port only in mux mode")
    ctx = ssl.create_default_context(cafile=str(ca))

    async def run() -> tuple[int, str]:
        url = f"https://{served.endpoint}/health"
        async with aiohttp.ClientSession() as s, s.get(url, ssl=ctx) as r:
            return r.status, await r.text()

    assert asyncio.run(run()) == (200, '{"health":"true","reason":""}')


@pytest.mark.parametrize("mode", ["mux", "grpc"])
def test_client_cert_cn_reaches_auth(mode: Mode, tmp_path: Path) -> None:
    """--client-cert-auth: the verified certificate's CN is handed to the auth resolver,
    also when the multiplexer terminated TLS and spliced the call to grpc."""
    ca, cert, key = _write_certs(tmp_path)
    seen: list[str | None] = []

    def resolver(md: object, cn: str | None) -> None:
        seen.append(cn)

    lt = LoopThread()
    fake = lt.call(FakeServer)

    async def start() -> ClientListener:
        api = ApiContext(fake, auth_resolver=resolver)
        tls = ClientTLS(str(cert), str(key), str(ca), client_cert_auth=True)
        return await serve_client("https://127.0.0.1:0", api, mode=mode, tls=tls)

    lst = lt.run(start())
    try:
        creds = grpc.ssl_channel_credentials(
            ca.read_bytes(),
            (tmp_path / "alice-key.pem").read_bytes(),
            (tmp_path / "alice.pem").read_bytes(),
        )
        with grpc.secure_channel(f"127.0.0.1:{lst.address[1]}", creds) as ch:
            rpc.KVStub(ch).Put(pb.PutRequest(key=b"cn", value=b"v"), timeout=5)
        assert seen == ["alice"]
    finally:
        lt.run(lst.close())
        lt.stop()
