"""TLS for client and peer URLs, as etcd's ``pkg/transport`` (TLSInfo, SelfCert, listeners).

Rules:
1. ``TLSInfo`` is plain values; building it from the server configuration
   (``client_tls_info``/``peer_tls_info``) takes any object with etcd's field names
   (``ClientTLSSource``/``PeerTLSSource``) so this layer-5 module never imports ``config``.
2. Server contexts speak TLS >= 1.2 (etcd's MinVersion). A trusted CA file *or*
   ``--client-cert-auth`` makes a client certificate mandatory (etcd's ServerConfig:
   ``TrustedCAFile != "" || ClientCertAuth`` -> RequireAndVerifyClientCert).
3. ALPN: the server prefers ``http/1.1`` over ``h2`` (OpenSSL picks by the *server's* order).
   gRPC clients offer only ``h2`` (grpc-core also ``grpc-exp``) and get ``h2``; HTTP clients
   that offer both (curl, Go's http.Client) get ``http/1.1``, so the one-port multiplexer can
   route by the first decrypted bytes without decoding HPACK (etcd serves both over h2 and
   routes by content-type; clients see no difference).
4. CRL and allowed CN/hostname are checked *after* the handshake, as etcd's tlsListener and
   VerifyPeerCertificate do: a revoked serial listed in ``--client-crl-file`` drops the
   connection whatever the CRL's own validity dates (OpenSSL's CRL check would reject every
   client once the CRL's nextUpdate passed, as in etcd's own fixtures). Use
   ``checked_protocol_factory`` to run the check before the real protocol sees a byte.
5. Python 3.11 exposes only the verified *leaf* of the client's chain, so CRL checks cover
   the leaf (etcd checks every certificate the client sent).
6. Certificate and key files are re-read when they change (etcd reloads them on every
   handshake), so rotation needs no restart.

Serving TLS on the one client port (``cmux.ClientMux``): asyncio/uvloop terminate TLS
(``create_server(ssl=server_ssl_context(info))``), ``checked_protocol_factory`` runs
``conn_check(info)`` before the sniffer sees a byte, and the sniffer routes the decrypted
stream as without TLS; ``common_name(transport.get_extra_info("ssl_object"))`` is the CN
that auth needs. Measured cost: benchmarks/tls_mux.md.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import secrets
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

_TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS1.2": ssl.TLSVersion.TLSv1_2,
    "TLS1.3": ssl.TLSVersion.TLSv1_3,
}

# What a grpc client offers is h2 only; HTTP clients offering both get http/1.1 (rule 3).
DEFAULT_SERVER_ALPN: tuple[str, ...] = ("http/1.1", "h2")


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """etcd's transport.TLSInfo: what one side (client URLs or peer URLs) serves with.

    ``cipher_suites`` holds OpenSSL cipher names (etcd's Go names are mapped by the caller
    of ``client_tls_info``/``peer_tls_info``); ``self_cert`` marks an --auto-tls certificate,
    which peers' client contexts accept without verification (etcd's InsecureSkipVerify).
    """

    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    crl_file: str = ""
    cipher_suites: tuple[str, ...] = ()
    allowed_cn: str = ""
    allowed_hostname: str = ""
    min_version: str = ""  # "", "TLS1.2", "TLS1.3" (--tls-min-version)
    max_version: str = ""  # "" = no limit (--tls-max-version)
    self_cert: bool = False

    def empty(self) -> bool:
        """etcd's TLSInfo.Empty(): no certificate and no key given."""
        return not self.cert_file and not self.key_file

    def needs_client_cert(self) -> bool:
        return bool(self.trusted_ca_file) or self.client_cert_auth


class ClientTLSSource(Protocol):
    """The client-URL security fields of ``config.ServerConfig`` (etcd's names)."""

    @property
    def cert_file(self) -> str: ...
    @property
    def key_file(self) -> str: ...
    @property
    def trusted_ca_file(self) -> str: ...
    @property
    def client_cert_auth(self) -> bool: ...
    @property
    def client_crl_file(self) -> str: ...
    @property
    def client_cert_allowed_hostname(self) -> str: ...
    @property
    def cipher_suites(self) -> tuple[str, ...]: ...
    @property
    def tls_min_version(self) -> str: ...
    @property
    def tls_max_version(self) -> str: ...


class PeerTLSSource(Protocol):
    """The peer-URL security fields of ``config.ServerConfig``."""

    @property
    def peer_cert_file(self) -> str: ...
    @property
    def peer_key_file(self) -> str: ...
    @property
    def peer_trusted_ca_file(self) -> str: ...
    @property
    def peer_client_cert_auth(self) -> bool: ...
    @property
    def peer_crl_file(self) -> str: ...
    @property
    def peer_cert_allowed_cn(self) -> str: ...
    @property
    def peer_cert_allowed_hostname(self) -> str: ...
    @property
    def cipher_suites(self) -> tuple[str, ...]: ...
    @property
    def tls_min_version(self) -> str: ...
    @property
    def tls_max_version(self) -> str: ...


CipherMap = Callable[[tuple[str, ...]], str]
"""Go cipher-suite names -> OpenSSL cipher string (``config.tls_names.openssl_cipher_string``)."""


def _ciphers(names: tuple[str, ...], cipher_map: CipherMap | None) -> tuple[str, ...]:
    if not names:
        return ()
    if cipher_map is None:
        raise ValueError("--cipher-suites given but no cipher-name map passed")
    return tuple(n for n in cipher_map(names).split(":") if n)


def client_tls_info(cfg: ClientTLSSource, cipher_map: CipherMap | None = None) -> TLSInfo:
    """etcd's ``cfg.ClientTLSInfo`` (--cert-file, --key-file, --trusted-ca-file, ...)."""
    return TLSInfo(
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        trusted_ca_file=cfg.trusted_ca_file,
        client_cert_auth=cfg.client_cert_auth,
        crl_file=cfg.client_crl_file,
        cipher_suites=_ciphers(cfg.cipher_suites, cipher_map),
        allowed_hostname=cfg.client_cert_allowed_hostname,
        min_version=cfg.tls_min_version,
        max_version=cfg.tls_max_version,
    )


def peer_tls_info(cfg: PeerTLSSource, cipher_map: CipherMap | None = None) -> TLSInfo:
    """etcd's ``cfg.PeerTLSInfo`` (--peer-cert-file, ..., --peer-cert-allowed-cn)."""
    return TLSInfo(
        cert_file=cfg.peer_cert_file,
        key_file=cfg.peer_key_file,
        trusted_ca_file=cfg.peer_trusted_ca_file,
        client_cert_auth=cfg.peer_client_cert_auth,
        crl_file=cfg.peer_crl_file,
        cipher_suites=_ciphers(cfg.cipher_suites, cipher_map),
        allowed_cn=cfg.peer_cert_allowed_cn,
        allowed_hostname=cfg.peer_cert_allowed_hostname,
        min_version=cfg.tls_min_version,
        max_version=cfg.tls_max_version,
    )


class _InfoLogger(Protocol):
    def info(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> None: ...


def _split_host(host: str) -> str:
    """``host:port``, ``[v6]:port``, ``host`` or a URL -> the bare host."""
    if "://" in host:
        host = host.split("://", 1)[1].split("/", 1)[0]
    if host.startswith("["):
        return host[1 : host.index("]")]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host  # bare name, bare IPv4 or bare IPv6


def self_signed_cert(
    dirpath: str,
    hosts: Iterable[str],
    validity_years: int = 1,
    logger: _InfoLogger | None = None,
    *,
    client_auth: bool = False,
) -> TLSInfo:
    """etcd's transport.SelfCert for --auto-tls / --peer-auto-tls.

    ``dirpath`` is ``<data-dir>/fixtures/client`` or ``.../peer``; an existing cert.pem and
    key.pem pair there is reused unchanged (as etcd does). ``hosts`` are the listen URLs'
    hosts (``host:port``): IPs become IP SANs, names DNS SANs. ``client_auth`` adds the
    clientAuth extended key usage (peers dial each other with the same certificate).
    """
    # cryptography is imported here, not at module level: only --auto-tls needs it, and it
    # costs ~8 MiB of RSS that a member without TLS should not carry.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(dirpath, mode=0o700, exist_ok=True)
    cert_path = os.path.join(dirpath, "cert.pem")
    key_path = os.path.join(dirpath, "key.pem")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return TLSInfo(cert_file=cert_path, key_file=key_path, self_cert=True)

    ips: list[x509.GeneralName] = []
    names: list[x509.GeneralName] = []
    for h in hosts:
        bare = _split_host(h)
        if not bare:
            continue
        try:
            ips.append(x509.IPAddress(ipaddress.ip_address(bare)))
        except ValueError:
            names.append(x509.DNSName(bare))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    years = validity_years if validity_years > 0 else 1
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if client_auth:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etcd")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(127) + 1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if ips or names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names + ips), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    pem = serialization.Encoding.PEM
    _write_atomic(cert_path, cert.public_bytes(pem), 0o644)
    if logger is not None:
        logger.info("created cert file", path=cert_path)
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    _write_atomic(key_path, key_pem, 0o600)
    if logger is not None:
        logger.info("created key file", path=key_path)
    return TLSInfo(cert_file=cert_path, key_file=key_path, self_cert=True)


def _write_atomic(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _versions(ctx: ssl.SSLContext, info: TLSInfo) -> None:
    ctx.minimum_version = _TLS_VERSIONS.get(info.min_version, ssl.TLSVersion.TLSv1_2)
    if info.max_version:
        ctx.maximum_version = _TLS_VERSIONS[info.max_version]


def server_ssl_context(
    info: TLSInfo, *, alpn: tuple[str, ...] = DEFAULT_SERVER_ALPN, reload: bool = True
) -> ssl.SSLContext:
    """The context a TLS listener (client or peer URL) serves with; see rules 2-3.

    ``reload``: etcd re-reads the certificate and key on every handshake (GetCertificate),
    so rotated files take effect without a restart. Here an SNI callback (OpenSSL calls it
    for every ClientHello, with or without SNI) stats both files and, when they changed,
    switches the connection to a context built from the new files (two stat calls per
    handshake otherwise). CRL, allowed CN and allowed hostname are not in the context: run
    ``conn_check(info)`` on each accepted connection (``checked_protocol_factory``).
    """
    ctx = _build_server_context(info, alpn)
    if reload:
        ctx.sni_callback = _CertReloader(info, alpn, ctx)
    return ctx


def _build_server_context(info: TLSInfo, alpn: tuple[str, ...]) -> ssl.SSLContext:
    if info.empty():
        raise ValueError("KeyFile and CertFile must both be present")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions(ctx, info)
    ctx.load_cert_chain(info.cert_file, info.key_file)
    if info.needs_client_cert():
        ctx.verify_mode = ssl.CERT_REQUIRED
        if info.trusted_ca_file:
            ctx.load_verify_locations(cafile=info.trusted_ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if info.cipher_suites:
        ctx.set_ciphers(":".join(info.cipher_suites))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


class _CertReloader:
    """SNI callback: serve the current certificate files (etcd's per-handshake reload)."""

    __slots__ = ("_alpn", "_ctx", "_info", "_stamp")

    def __init__(self, info: TLSInfo, alpn: tuple[str, ...], ctx: ssl.SSLContext) -> None:
        self._info = info
        self._alpn = alpn
        self._ctx = ctx
        self._stamp = self._files_stamp()

    def _files_stamp(self) -> tuple[int, ...]:
        out: list[int] = []
        for path in (self._info.cert_file, self._info.key_file):
            try:
                st = os.stat(path)
            except OSError:
                return ()
            out += (st.st_mtime_ns, st.st_size, st.st_ino)
        return tuple(out)

    def __call__(self, obj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        stamp = self._files_stamp()
        if stamp and stamp != self._stamp:
            try:
                self._ctx = _build_server_context(self._info, self._alpn)
            except (OSError, ssl.SSLError, ValueError):
                return None  # half-written files: keep serving the previous pair
            self._stamp = stamp
        if obj.context is not self._ctx:
            obj.context = self._ctx
        return None


def client_ssl_context(
    info: TLSInfo, *, server_hostname_check: bool = True, alpn: tuple[str, ...] = ()
) -> ssl.SSLContext:
    """etcd's TLSInfo.ClientConfig, for dialing peers (and tests).

    A self-signed (--peer-auto-tls) info skips verification, as etcd's does.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _versions(ctx, info)
    if info.self_cert:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = server_hostname_check
        if info.trusted_ca_file:
            ctx.load_verify_locations(cafile=info.trusted_ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if not info.empty():
        ctx.load_cert_chain(info.cert_file, info.key_file)
    if info.cipher_suites:
        ctx.set_ciphers(":".join(info.cipher_suites))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


# --- per-connection checks (rule 4) -----------------------------------------------------

PeerCert = Mapping[str, Any]
"""``SSLObject.getpeercert()``'s dict (subject, subjectAltName, serialNumber, ...)."""


def common_name(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The CN of the verified client certificate, or None (no certificate / no CN)."""
    if ssl_object is None:
        return None
    return cert_common_name(ssl_object.getpeercert())


def cert_common_name(cert: PeerCert | None) -> str | None:
    if not cert:
        return None
    cn = None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = str(value)  # the last CN wins, as Go's pkix.Name.CommonName
    return cn


def _host_matches(pattern: str, host: str) -> bool:
    p, h = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if p == h:
        return True
    if p.startswith("*.") and "." in h:  # a wildcard covers exactly one left-most label
        return h.split(".", 1)[1] == p[2:]
    return False


def cert_matches_hostname(cert: PeerCert, hostname: str) -> bool:
    """Go's x509.Certificate.VerifyHostname: IPs against IP SANs, names against DNS SANs
    (wildcards in the left-most label); the CN is not consulted (Go >= 1.15)."""
    host = hostname.strip("[]")
    sans = cert.get("subjectAltName", ())
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return any(k == "DNS" and _host_matches(str(v), host) for k, v in sans)
    for k, v in sans:
        if k == "IP Address":
            try:
                if ipaddress.ip_address(str(v).strip()) == ip:
                    return True
            except ValueError:
                continue
    return False


def peer_cn_allowed(cert: PeerCert | None, allowed_cn: str, allowed_hostname: str) -> bool:
    """--peer-cert-allowed-cn / --peer-cert-allowed-hostname (and the client-side
    --client-cert-allowed-hostname): True when no restriction or the certificate passes."""
    if not allowed_cn and not allowed_hostname:
        return True
    if not cert:
        return False
    if allowed_hostname:
        return cert_matches_hostname(cert, allowed_hostname)
    return cert_common_name(cert) == allowed_cn


class CRL:
    """A --client-crl-file / --peer-crl-file, re-read when the file changes.

    etcd reads the file on every connection ("TODO: cache"); this keeps the revoked serials
    and re-reads only when (mtime, size) differ. DER or PEM. Only serials matter (etcd's
    checkCRL ignores the CRL's signature and dates).
    """

    __slots__ = ("_path", "_revoked", "_stamp")

    def __init__(self, path: str) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._revoked: frozenset[int] = frozenset()

    def revoked(self) -> frozenset[int]:
        st = os.stat(self._path)
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            from cryptography import x509

            with open(self._path, "rb") as f:
                data = f.read()
            if b"-----BEGIN" in data:
                crl = x509.load_pem_x509_crl(data)
            else:
                crl = x509.load_der_x509_crl(data)
            self._revoked = frozenset(r.serial_number for r in crl)
            self._stamp = stamp
        return self._revoked

    def check(self, cert_der: bytes | None) -> str | None:
        """An error message if the certificate's serial is revoked, else None."""
        if not cert_der:
            return None
        from cryptography import x509

        serial = x509.load_der_x509_certificate(cert_der).serial_number
        if serial in self.revoked():
            return f"transport: certificate serial {serial:x} revoked"
        return None


ConnCheck = Callable[[ssl.SSLObject | ssl.SSLSocket], "str | None"]
"""Runs after the handshake; returns why to drop the connection, or None to keep it."""


def conn_check(info: TLSInfo) -> ConnCheck | None:
    """The post-handshake checks ``info`` asks for (CRL, allowed CN/hostname), or None."""
    crl = CRL(info.crl_file) if info.crl_file else None
    allowed_cn, allowed_host = info.allowed_cn, info.allowed_hostname
    if crl is None and not allowed_cn and not allowed_host:
        return None
    if allowed_cn and allowed_host:
        raise ValueError(
            f"AllowedCN and AllowedHostname are mutually exclusive "
            f'(cn="{allowed_cn}", hostname="{allowed_host}")'
        )

    def check(obj: ssl.SSLObject | ssl.SSLSocket) -> str | None:
        if crl is not None:
            try:
                err = crl.check(obj.getpeercert(binary_form=True))
            except (OSError, ValueError) as e:  # unreadable CRL: refuse, as etcd does
                return f"transport: cannot check CRL {info.crl_file}: {e}"
            if err is not None:
                return err
        if (allowed_cn or allowed_host) and not peer_cn_allowed(
            obj.getpeercert(), allowed_cn, allowed_host
        ):
            return "client certificate authentication failed"
        return None

    return check


class _Checked(asyncio.Protocol):
    """Checks a fresh TLS connection, then gets out of the way (``set_protocol``): zero cost
    per byte afterwards."""

    __slots__ = ("_check", "_factory", "_on_reject")

    def __init__(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        check: ConnCheck,
        on_reject: Callable[[str, object], None] | None,
    ) -> None:
        self._factory = factory
        self._check = check
        self._on_reject = on_reject

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        obj = transport.get_extra_info("ssl_object")
        err = self._check(obj) if obj is not None else None
        if err is not None:
            if self._on_reject is not None:
                self._on_reject(err, transport.get_extra_info("peername"))
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
            else:
                transport.close()
            return
        proto = self._factory()
        transport.set_protocol(proto)
        proto.connection_made(transport)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - aborted transports
        pass


def checked_protocol_factory(
    factory: Callable[[], asyncio.BaseProtocol],
    check: ConnCheck | None,
    on_reject: Callable[[str, object], None] | None = None,
) -> Callable[[], asyncio.BaseProtocol]:
    """Wrap a ``loop.create_server(..., ssl=...)`` protocol factory with ``check``.

    asyncio (and uvloop) finish the handshake before ``connection_made``; the wrapper runs
    the check there, aborts a refused connection (``on_reject(reason, peername)`` may log
    etcd's "rejected connection") and otherwise installs ``factory()`` on the transport.
    """
    if check is None:
        return factory
    return lambda: _Checked(factory, check, on_reject)


class _WarnLogger(_InfoLogger, Protocol):
    def warn(self, msg: str, fields: Mapping[str, object] | None = None, **kw: object) -> None: ...


def log_rejected(logger: _WarnLogger) -> Callable[[str, object], None]:
    """An ``on_reject`` for ``checked_protocol_factory`` that logs etcd's handshake-failure
    line ("rejected connection", remote-addr, error)."""

    def on_reject(reason: str, peername: object) -> None:
        addr = peername
        if isinstance(peername, tuple) and len(peername) >= 2:
            addr = f"{peername[0]}:{peername[1]}"
        logger.warn("rejected connection", {"remote-addr": str(addr), "error": reason})

    return on_reject


def apply_auto_tls(
    info: TLSInfo,
    enabled: bool,
    dirpath: str,
    hosts: Iterable[str],
    validity_years: int = 1,
    logger: _WarnLogger | None = None,
    *,
    side: str = "client",
) -> TLSInfo:
    """etcd's Config.ClientSelfCert / PeerSelfCert for --auto-tls / --peer-auto-tls.

    Given certificates win ("ignoring client auto TLS since certs given"). Otherwise the
    whole TLSInfo is *replaced* by the self-signed pair, keeping only the cipher suites (etcd
    drops --client-cert-auth, CA and CRL then, too). ``dirpath`` is
    ``<data-dir>/fixtures/client`` or ``.../peer``; ``hosts`` the listen URLs' ``host:port``.
    """
    if not enabled:
        return info
    if not info.empty():
        if logger is not None:
            logger.warn(f"ignoring {side} auto TLS since certs given")
        return info
    auto = self_signed_cert(dirpath, hosts, validity_years, logger, client_auth=side == "peer")
    return replace(auto, cipher_suites=info.cipher_suites)


Lookup = Callable[[str], Awaitable[list[str]]]


async def _lookup_addr(ip: str) -> list[str]:
    """Reverse lookup (PTR names) of ``ip``, as Go's net.LookupAddr."""
    loop = asyncio.get_running_loop()
    try:
        name, _ = await loop.getnameinfo((ip, 0), socket.NI_NAMEREQD)
    except (OSError, socket.gaierror):
        return []
    return [name]


async def _lookup_host(name: str) -> list[str]:
    """Forward lookup of ``name`` to address strings, as Go's net.LookupHost."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _go_quote_list(items: list[str]) -> str:
    return "[" + " ".join(f'"{i}"' for i in items) + "]"


async def check_cert_san(
    cert: PeerCert | None,
    remote_host: str,
    lookup_addr: Lookup = _lookup_addr,
    lookup_host: Lookup = _lookup_host,
) -> str | None:
    """etcd's checkSAN on peer listeners: the client certificate's SANs must cover the
    address the connection came from (IP SAN, or a DNS SAN that the remote IP's PTR names
    match — ``*.`` suffixes too — or that resolves to the remote IP). A certificate without
    SANs passes. Returns the refusal reason or None. Skipped with
    --experimental-peer-skip-client-san-verification."""
    if not cert:
        return None
    sans = cert.get("subjectAltName", ())
    ips = [str(v).strip() for k, v in sans if k == "IP Address"]
    dns = [str(v) for k, v in sans if k == "DNS"]
    if not ips and not dns:
        return None
    if ips:
        if cert_matches_hostname(cert, remote_host):
            return None
        if not dns:
            return f"x509: certificate is valid for {', '.join(ips)}, not {remote_host}"
    wildcards = [d[1:] for d in dns if d.startswith("*.")]
    names = [d for d in dns if not d.startswith("*.")]
    err = ""
    try:
        for ptr in await lookup_addr(remote_host):
            ptr = ptr.rstrip(".")
            if any(ptr.endswith(w) for w in wildcards) or ptr in names:
                return None
    except OSError as e:
        err = str(e)
    for name in names:
        try:
            if remote_host in await lookup_host(name):
                return None
        except OSError as e:
            err = str(e)
    extra = f" ({err})" if err else ""
    return f'tls: "{remote_host}" does not match any of DNSNames {_go_quote_list(dns)}{extra}'


def grpc_tls_unsupported(info: TLSInfo) -> str | None:
    """Why grpc (``grpc.ssl_server_credentials``) cannot own a TLS port for ``info``, or
    None when it can. grpcio's Python API has no CRL, no allowed-CN/hostname hook and no
    cipher or version settings (only the process-wide GRPC_SSL_CIPHER_SUITES), so such
    listeners must terminate TLS in Python (the multiplexer) to keep etcd's behaviour."""
    if info.crl_file:
        return "--client-crl-file"
    if info.allowed_cn or info.allowed_hostname:
        return "allowed CN/hostname"
    if info.cipher_suites:
        return "--cipher-suites"
    if info.min_version not in ("", "TLS1.2") or info.max_version:
        return "--tls-min-version/--tls-max-version"
    return None
