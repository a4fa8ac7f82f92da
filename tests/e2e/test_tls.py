"""Client TLS like etcd's: --cert-file/--key-file, --client-cert-auth with a CA, --auto-tls.

Certificates are made by the test (a CA, a server cert for 127.0.0.1, a client cert);
every case runs against etcdpy and real etcd with the same etcdctl commands.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.harness import Ctl, Member, have_etcd, new_member


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _cert(
    subject_cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer_name, signing_key = issuer if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = Path(tmp_path_factory.mktemp("certs"))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test-ca", ca_key, None, ca=True)
    out: dict[str, Path] = {"ca": d / "ca.crt"}
    out["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"{role}-cn", key, (ca.subject, ca_key), server=server)
        out[role] = d / f"{role}.crt"
        out[role].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[f"{role}-key"] = d / f"{role}.key"
        _write_key(out[f"{role}-key"], key)
    return out


@pytest.fixture(scope="module", params=["etcdpy", "etcd"])
def tls_member(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    certs: dict[str, Path],
) -> Iterator[Member]:
    if request.param == "etcd" and not have_etcd():
        pytest.skip("real etcd not installed")
    m = new_member(request.param, Path(tmp_path_factory.mktemp("tls")))
    m.scheme = "https"
    m.start(
        [
            "--cert-file",
            str(certs["server"]),
            "--key-file",
            str(certs["server-key"]),
            "--trusted-ca-file",
            str(certs["ca"]),
            "--client-cert-auth",
        ]
    )
    try:
        yield m
    finally:
        m.stop()


def test_client_cert_auth(tls_member: Member, certs: dict[str, Path]) -> None:
    ctl = Ctl(tls_member.client_url)
    tls = [f"--cacert={certs['ca']}", f"--cert={certs['client']}", f"--key={certs['client-key']}"]
    assert ctl.out(*tls, "put", "tls/a", "1") == "OK\n"
    assert ctl.out(*tls, "get", "tls/a", "--print-value-only") == "1\n"
    refused = ctl.run(f"--cacert={certs['ca']}", "--dial-timeout=2s", "get", "tls/a", check=False)
    assert refused.returncode != 0


@pytest.fixture(scope="module", params=["etcdpy", "etcd"])
def auto_tls_member(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Member]:
    if request.param == "etcd" and not have_etcd():
        pytest.skip("real etcd not installed")
    m = new_member(request.param, Path(tmp_path_factory.mktemp("autotls")))
    m.scheme = "https"
    m.start(["--auto-tls"])
    try:
        yield m
    finally:
        m.stop()


def test_auto_tls(auto_tls_member: Member) -> None:
    ctl = Ctl(auto_tls_member.client_url)
    assert (
        ctl.out("--insecure-transport=false", "--insecure-skip-tls-verify", "put", "auto/a", "1")
        == "OK\n"
    )
    assert (
        ctl.out(
            "--insecure-transport=false",
            "--insecure-skip-tls-verify",
            "get",
            "auto/a",
            "--print-value-only",
        )
        == "1\n"
    )
    fixtures = auto_tls_member.data_dir / "fixtures" / "client"
    assert (fixtures / "cert.pem").exists() and (fixtures / "key.pem").exists()
