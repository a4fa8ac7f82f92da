"""etcd 3.5's server flags, and a command-line parser with Go ``flag`` semantics.

The table :data:`FLAGS` is the single source of truth: names, types, defaults, help
sections and texts (``etcd --help`` is generated from it), the config-file keys and the
``ETCD_*`` environment names all derive from it.

Parsing rules (Go's ``flag`` package, as ``etcdmain`` uses it):

* Rule 1: ``-f`` and ``--f`` are the same; a value is ``-f=v`` or the next argument
  ``-f v`` (even if that argument starts with ``-``).
* Rule 2: booleans take no separate argument: ``--x`` is true, ``--x=false`` is false;
  ``--x false`` leaves ``false`` as a positional argument (which etcd then rejects).
* Rule 3: parsing stops at the first non-flag argument, at ``-`` or after ``--``.
* Rule 4: a flag given twice: the last value wins (URL and list flags are replaced,
  not merged), except ``--v2-deprecation`` which accumulates, as in etcd.
* Rule 5: ``-h``/``-help``/``--help`` ask for help; an unknown flag is
  ``flag provided but not defined: -name``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from etcdpy.config.errors import FlagParseError, HelpRequested
from etcdpy.config.values import (
    MAX_UINT32,
    go_quote,
    parse_bool,
    parse_duration_flag,
    parse_int,
    parse_uint,
    parse_uint32_etcd,
    parse_urls,
)

Kind = Literal[
    "string",
    "bool",
    "uint",
    "uint64",
    "int",
    "int64",
    "uint32",
    "duration",
    "urls",
    "cors",
    "unique_strings",
    "strings",
    "enum",
    "enum_multi",
    "ignored",
]


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """One flag: etcd's name, its value type, default (already parsed) and help."""

    name: str
    kind: Kind
    default: Any
    help: str
    section: str
    shown: str | None = None  # default as etcd's help prints it; None: derived
    choices: tuple[str, ...] = ()
    env: str | None = None  # environment variable; None: ETCD_<UPPER_SNAKE>
    hidden: bool = False  # not listed in --help (ignored legacy flags)

    @property
    def field(self) -> str:
        """ServerConfig field name: the flag name in snake_case."""
        return self.name.replace("-", "_")

    @property
    def env_key(self) -> str:
        return self.env or "ETCD_" + self.name.upper().replace("-", "_")

    @property
    def is_bool(self) -> bool:
        return self.kind in ("bool", "ignored")


def _s(name: str, default: str, help: str, section: str, **kw: Any) -> FlagSpec:
    return FlagSpec(name, "string", default, help, section, **kw)


def _b(name: str, default: bool, help: str, section: str, **kw: Any) -> FlagSpec:
    return FlagSpec(name, "bool", default, help, section, **kw)


def _u(name: str, default: int, help: str, section: str, **kw: Any) -> FlagSpec:
    return FlagSpec(name, "uint", default, help, section, **kw)


def _d(name: str, default: float, shown: str, help: str, section: str) -> FlagSpec:
    return FlagSpec(name, "duration", default, help, section, shown=shown)


def _urls(name: str, default: str, help: str, section: str) -> FlagSpec:
    value = parse_urls(default) if default else ()
    return FlagSpec(name, "urls", value, help, section, shown=f"'{default}'")


MEMBER = "Member"
CLUSTERING = "Clustering"
SECURITY = "Security"
AUTH = "Auth"
PROFILING = "Profiling and Monitoring"
LOGGING = "Logging"
TRACING = "Experimental distributed tracing"
PROXY = "v2 Proxy (to be deprecated in v3.6)"
EXPERIMENTAL = "Experimental feature"
UNSAFE = "Unsafe feature"
ETCDPY = "etcdpy"
HIDDEN = "hidden"

DEFAULT_LOG_ROTATION_CONFIG = (
    '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}'
)

_SERVER_FLAGS: tuple[FlagSpec, ...] = (
    # --- Member
    _s("name", "default", "Human-readable name for this member.", MEMBER),
    _s("data-dir", "", "Path to the data directory.", MEMBER, shown="'${name}.etcd'"),
    _s("wal-dir", "", "Path to the dedicated wal directory.", MEMBER),
    FlagSpec(
        "snapshot-count",
        "uint64",
        100000,
        "Number of committed transactions to trigger a snapshot to disk.",
        MEMBER,
        shown="'100000'",
    ),
    _u(
        "heartbeat-interval",
        100,
        "Time (in milliseconds) of a heartbeat interval.",
        MEMBER,
        shown="'100'",
    ),
    _u(
        "election-timeout",
        1000,
        "Time (in milliseconds) for an election to timeout. See tuning documentation for details.",
        MEMBER,
        shown="'1000'",
    ),
    _b(
        "initial-election-tick-advance",
        True,
        "Whether to fast-forward initial election ticks on boot for faster election.",
        MEMBER,
    ),
    _urls(
        "listen-peer-urls",
        "http://localhost:2380",
        "List of URLs to listen on for peer traffic.",
        MEMBER,
    ),
    _urls(
        "listen-client-urls",
        "http://localhost:2379",
        "List of URLs to listen on for client grpc traffic and http as long as "
        "--listen-client-http-urls is not specified.",
        MEMBER,
    ),
    _urls(
        "listen-client-http-urls",
        "",
        "List of URLs to listen on for http only client traffic. "
        "Enabling this flag removes http services from --listen-client-urls.",
        MEMBER,
    ),
    _u(
        "max-snapshots",
        5,
        "Maximum number of snapshot files to retain (0 is unlimited).",
        MEMBER,
        shown="'5'",
    ),
    _u(
        "max-wals",
        5,
        "Maximum number of wal files to retain (0 is unlimited).",
        MEMBER,
        shown="'5'",
    ),
    FlagSpec(
        "quota-backend-bytes",
        "int64",
        0,
        "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).",
        MEMBER,
        shown="'0'",
    ),
    _s(
        "backend-bbolt-freelist-type",
        "map",
        "BackendFreelistType specifies the type of freelist that boltdb backend uses"
        "(array and map are supported types).",
        MEMBER,
    ),
    _d(
        "backend-batch-interval",
        0.0,
        "''",
        "BackendBatchInterval is the maximum time before commit the backend transaction.",
        MEMBER,
    ),
    FlagSpec(
        "backend-batch-limit",
        "int",
        0,
        "BackendBatchLimit is the maximum operations before commit the backend transaction.",
        MEMBER,
        shown="'0'",
    ),
    _u(
        "max-txn-ops",
        128,
        "Maximum number of operations permitted in a transaction.",
        MEMBER,
        shown="'128'",
    ),
    _u(
        "max-request-bytes",
        1572864,
        "Maximum client request size in bytes the server will accept.",
        MEMBER,
        shown="'1572864'",
    ),
    FlagSpec(
        "max-concurrent-streams",
        "uint32",
        MAX_UINT32,
        "Maximum concurrent streams that each client can open at a time.",
        MEMBER,
        shown="'math.MaxUint32'",
    ),
    _b("enable-grpc-gateway", True, "Enable GRPC gateway.", MEMBER, shown=""),
    _d(
        "grpc-keepalive-min-time",
        5.0,
        "'5s'",
        "Minimum duration interval that a client should wait before pinging server.",
        MEMBER,
    ),
    _d(
        "grpc-keepalive-interval",
        7200.0,
        "'2h'",
        "Frequency duration of server-to-client ping to check if a connection is alive "
        "(0 to disable).",
        MEMBER,
    ),
    _d(
        "grpc-keepalive-timeout",
        20.0,
        "'20s'",
        "Additional duration of wait before closing a non-responsive connection (0 to disable).",
        MEMBER,
    ),
    _b(
        "socket-reuse-port",
        False,
        "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port "
        "already in use.",
        MEMBER,
    ),
    _b(
        "socket-reuse-address",
        False,
        "Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address "
        "in TIME_WAIT state.",
        MEMBER,
    ),
    _d("raft-read-timeout", 5.0, "'5s'", "Read timeout set on each rafthttp connection", MEMBER),
    _d("raft-write-timeout", 5.0, "'5s'", "Write timeout set on each rafthttp connection", MEMBER),
    # --- Clustering
    _urls(
        "initial-advertise-peer-urls",
        "http://localhost:2380",
        "List of this member's peer URLs to advertise to the rest of the cluster.",
        CLUSTERING,
    ),
    _s(
        "initial-cluster",
        "default=http://localhost:2380",
        "Initial cluster configuration for bootstrapping.",
        CLUSTERING,
    ),
    FlagSpec(
        "initial-cluster-state",
        "enum",
        "new",
        "Initial cluster state ('new' when bootstrapping a new cluster or 'existing' when "
        "adding new members to an existing cluster).\n"
        "After successful initialization (bootstrapping or adding), flag is ignored on restarts.",
        CLUSTERING,
        choices=("new", "existing"),
    ),
    _s(
        "initial-cluster-token",
        "etcd-cluster",
        "Initial cluster token for the etcd cluster during bootstrap.\n"
        "Specifying this can protect you from unintended cross-cluster interaction when "
        "running multiple clusters.",
        CLUSTERING,
    ),
    _urls(
        "advertise-client-urls",
        "http://localhost:2379",
        "List of this member's client URLs to advertise to the public.\n"
        "The client URLs advertised should be accessible to machines that talk to etcd "
        "cluster. etcd client libraries parse these URLs to connect to the cluster.",
        CLUSTERING,
    ),
    _s("discovery", "", "Discovery URL used to bootstrap the cluster.", CLUSTERING),
    FlagSpec(
        "discovery-fallback",
        "enum",
        "proxy",
        "Expected behavior ('exit' or 'proxy') when discovery services fails.\n"
        '"proxy" supports v2 API only.',
        CLUSTERING,
        choices=("proxy", "exit"),
    ),
    _s("discovery-proxy", "", "HTTP proxy to use for traffic to discovery service.", CLUSTERING),
    _s("discovery-srv", "", "DNS srv domain used to bootstrap the cluster.", CLUSTERING),
    _s(
        "discovery-srv-name",
        "",
        "Suffix to the dns srv name queried when bootstrapping.",
        CLUSTERING,
    ),
    _b(
        "strict-reconfig-check",
        True,
        "Reject reconfiguration requests that would cause quorum loss.",
        CLUSTERING,
    ),
    _b("pre-vote", True, "Enable to run an additional Raft election phase.", CLUSTERING),
    _s(
        "auto-compaction-retention",
        "0",
        "Auto compaction retention length. 0 means disable auto compaction.",
        CLUSTERING,
    ),
    _s(
        "auto-compaction-mode",
        "periodic",
        "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for "
        "duration based retention, defaulting to hours if no time unit is provided "
        "(e.g. '5m'). 'revision' for revision number based retention.",
        CLUSTERING,
    ),
    _b(
        "enable-v2",
        False,
        "Accept etcd V2 client requests. Deprecated and to be decommissioned in v3.6.",
        CLUSTERING,
    ),
    FlagSpec(
        "v2-deprecation",
        "enum_multi",
        (),
        "Phase of v2store deprecation. Allows to opt-in for higher compatibility mode.\n"
        "Supported values:\n"
        "  'not-yet'                // Issues a warning if v2store have meaningful content "
        "(default in v3.5)\n"
        "  'write-only'             // Custom v2 state is not allowed (planned default in v3.6)\n"
        "  'write-only-drop-data'   // Custom v2 state will get DELETED !\n"
        "  'gone'                   // v2store is not maintained any longer. "
        "(planned default in v3.7)",
        CLUSTERING,
        shown="'not-yet'",
        choices=("not-yet", "write-only", "write-only-drop-data", "gone"),
    ),
    # --- Security
    _s("cert-file", "", "Path to the client server TLS cert file.", SECURITY),
    _s("key-file", "", "Path to the client server TLS key file.", SECURITY),
    _b("client-cert-auth", False, "Enable client cert authentication.", SECURITY),
    _s(
        "client-cert-file",
        "",
        "Path to an explicit peer client TLS cert file otherwise cert file will be used when "
        "client auth is required.",
        SECURITY,
    ),
    _s(
        "client-key-file",
        "",
        "Path to an explicit peer client TLS key file otherwise key file will be used when "
        "client auth is required.",
        SECURITY,
    ),
    _s("client-crl-file", "", "Path to the client certificate revocation list file.", SECURITY),
    _s(
        "client-cert-allowed-hostname",
        "",
        "Allowed TLS hostname for client cert authentication.",
        SECURITY,
    ),
    _s("trusted-ca-file", "", "Path to the client server TLS trusted CA cert file.", SECURITY),
    _b("auto-tls", False, "Client TLS using generated certificates.", SECURITY),
    _s("peer-cert-file", "", "Path to the peer server TLS cert file.", SECURITY),
    _s("peer-key-file", "", "Path to the peer server TLS key file.", SECURITY),
    _b("peer-client-cert-auth", False, "Enable peer client cert authentication.", SECURITY),
    _s("peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file.", SECURITY),
    _s(
        "peer-cert-allowed-cn",
        "",
        "Required CN for client certs connecting to the peer endpoint.",
        SECURITY,
    ),
    _s(
        "peer-cert-allowed-hostname",
        "",
        "Allowed TLS hostname for inter peer authentication.",
        SECURITY,
    ),
    _b(
        "peer-auto-tls",
        False,
        "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file "
        "are not provided.",
        SECURITY,
    ),
    _s(
        "peer-client-cert-file",
        "",
        "Path to an explicit peer client TLS cert file otherwise peer cert file will be used "
        "when client auth is required.",
        SECURITY,
    ),
    _s(
        "peer-client-key-file",
        "",
        "Path to an explicit peer client TLS key file otherwise peer key file will be used "
        "when client auth is required.",
        SECURITY,
    ),
    _u(
        "self-signed-cert-validity",
        1,
        "The validity period of the client and peer certificates that are automatically "
        "generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, "
        "and the default is 1.",
        SECURITY,
        shown="'1'",
    ),
    _s("peer-crl-file", "", "Path to the peer certificate revocation list file.", SECURITY),
    FlagSpec(
        "cipher-suites",
        "strings",
        (),
        "Comma-separated list of supported TLS cipher suites between client/server and peers "
        "(empty will be auto-populated by Go).",
        SECURITY,
        shown="''",
    ),
    FlagSpec(
        "cors",
        "cors",
        ("*",),
        "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, "
        "(empty or * means allow all).",
        SECURITY,
        shown="'*'",
    ),
    FlagSpec(
        "host-whitelist",
        "unique_strings",
        ("*",),
        "Acceptable hostnames from HTTP client requests, if server is not secure "
        "(empty or * means allow all).",
        SECURITY,
        shown="'*'",
    ),
    _s(
        "tls-min-version",
        "TLS1.2",
        "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3.",
        SECURITY,
    ),
    _s(
        "tls-max-version",
        "",
        "Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 "
        "(empty will be auto-populated by Go).",
        SECURITY,
    ),
    # --- Auth
    _s(
        "auth-token",
        "simple",
        "Specify a v3 authentication token type and its options ('simple' or 'jwt').",
        AUTH,
    ),
    _u(
        "bcrypt-cost",
        10,
        "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. "
        "Valid values are between 4 and 31.",
        AUTH,
        shown="10",
    ),
    _u("auth-token-ttl", 300, "Time (in seconds) of the auth-token-ttl.", AUTH, shown="300"),
    # --- Profiling and Monitoring
    _b(
        "enable-pprof",
        False,
        'Enable runtime profiling data via HTTP server. Address is at client URL + "/debug/pprof/"',
        PROFILING,
    ),
    _s(
        "metrics",
        "basic",
        "Set level of detail for exported metrics, specify 'extensive' to include server side "
        "grpc histogram metrics.",
        PROFILING,
    ),
    _urls(
        "listen-metrics-urls",
        "",
        "List of URLs to listen on for the /metrics and /health endpoints. "
        "For https, the client URL TLS info is used.",
        PROFILING,
    ),
    # --- Logging
    _s("logger", "zap", "Currently only supports 'zap' for structured logging.", LOGGING),
    FlagSpec(
        "log-outputs",
        "unique_strings",
        ("default",),
        "Specify 'stdout' or 'stderr' to skip journald logging even when running under "
        "systemd, or list of comma separated output targets.",
        LOGGING,
        shown="'default'",
    ),
    _s(
        "log-level",
        "info",
        "Configures log level. Only supports debug, info, warn, error, panic, or fatal.",
        LOGGING,
    ),
    _b(
        "enable-log-rotation",
        False,
        "Enable log rotation of a single log-outputs file target.",
        LOGGING,
    ),
    _s(
        "log-rotation-config-json",
        DEFAULT_LOG_ROTATION_CONFIG,
        "Configures log rotation if enabled with a JSON logger config. MaxSize(MB), "
        "MaxAge(days,0=no limit), MaxBackups(0=no limit), LocalTime(use computers local time), "
        "Compress(gzip)",
        LOGGING,
    ),
    # --- Experimental distributed tracing
    _b(
        "experimental-enable-distributed-tracing",
        False,
        "Enable experimental distributed tracing.",
        TRACING,
    ),
    _s(
        "experimental-distributed-tracing-address",
        "localhost:4317",
        "Distributed tracing collector address.",
        TRACING,
    ),
    _s(
        "experimental-distributed-tracing-service-name",
        "etcd",
        "Distributed tracing service name, must be same across all etcd instances.",
        TRACING,
    ),
    _s(
        "experimental-distributed-tracing-instance-id",
        "",
        "Distributed tracing instance ID, must be unique per each etcd instance.",
        TRACING,
    ),
    FlagSpec(
        "experimental-distributed-tracing-sampling-rate",
        "int",
        0,
        "Number of samples to collect per million spans for distributed tracing. "
        "Disabled by default.",
        TRACING,
        shown="'0'",
    ),
    # --- v2 Proxy
    FlagSpec(
        "proxy",
        "enum",
        "off",
        "Proxy mode setting ('off', 'readonly' or 'on').",
        PROXY,
        choices=("off", "readonly", "on"),
    ),
    _u(
        "proxy-failure-wait",
        5000,
        "Time (in milliseconds) an endpoint will be held in a failed state.",
        PROXY,
        shown="5000",
    ),
    _u(
        "proxy-refresh-interval",
        30000,
        "Time (in milliseconds) of the endpoints refresh interval.",
        PROXY,
        shown="30000",
    ),
    _u(
        "proxy-dial-timeout",
        1000,
        "Time (in milliseconds) for a dial to timeout.",
        PROXY,
        shown="1000",
    ),
    _u(
        "proxy-write-timeout",
        5000,
        "Time (in milliseconds) for a write to timeout.",
        PROXY,
        shown="5000",
    ),
    _u("proxy-read-timeout", 0, "Time (in milliseconds) for a read to timeout.", PROXY, shown="0"),
    # --- Experimental
    _b(
        "experimental-initial-corrupt-check",
        False,
        "Enable to check data corruption before serving any client/peer traffic.",
        EXPERIMENTAL,
    ),
    _d(
        "experimental-corrupt-check-time",
        0.0,
        "'0s'",
        "Duration of time between cluster corruption check passes.",
        EXPERIMENTAL,
    ),
    _b(
        "experimental-compact-hash-check-enabled",
        False,
        "Enable leader to periodically check followers compaction hashes.",
        EXPERIMENTAL,
    ),
    _d(
        "experimental-compact-hash-check-time",
        60.0,
        "'1m'",
        "Duration of time between leader checks followers compaction hashes.",
        EXPERIMENTAL,
    ),
    _s(
        "experimental-enable-v2v3",
        "",
        "Serve v2 requests through the v3 backend under a given prefix. "
        "Deprecated and to be decommissioned in v3.6.",
        EXPERIMENTAL,
    ),
    _b(
        "experimental-enable-lease-checkpoint",
        False,
        "ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL "
        "to prevent indefinite auto-renewal of long lived leases.",
        EXPERIMENTAL,
    ),
    _b(
        "experimental-enable-lease-checkpoint-persist",
        False,
        "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived "
        "leases. Always enabled in v3.6. Should be used to ensure smooth upgrade from v3.5 "
        "clusters with this feature enabled. Requires experimental-enable-lease-checkpoint "
        "to be enabled.",
        EXPERIMENTAL,
    ),
    FlagSpec(
        "experimental-compaction-batch-limit",
        "int",
        1000,
        "ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each "
        "compaction batch.",
        EXPERIMENTAL,
        shown="1000",
    ),
    _d(
        "experimental-compaction-sleep-interval",
        0.01,
        "'10ms'",
        "ExperimentalCompactionSleepInterval sets the sleep interval between each compaction "
        "batch.",
        EXPERIMENTAL,
    ),
    _b(
        "experimental-peer-skip-client-san-verification",
        False,
        "Skip verification of SAN field in client certificate for peer connections.",
        EXPERIMENTAL,
    ),
    _d(
        "experimental-watch-progress-notify-interval",
        600.0,
        "'10m'",
        "Duration of periodical watch progress notification.",
        EXPERIMENTAL,
    ),
    FlagSpec(
        "experimental-downgrade-check-time",
        "duration",
        5.0,
        "Duration of time between two downgrade status checks.",
        EXPERIMENTAL,
        shown="",
    ),
    _b(
        "experimental-memory-mlock",
        False,
        "Enable to enforce etcd pages (in particular bbolt) to stay in RAM.",
        EXPERIMENTAL,
        shown="",
    ),
    _d(
        "experimental-warning-apply-duration",
        0.1,
        "'100ms'",
        "Warning is generated if requests take more than this duration.",
        EXPERIMENTAL,
    ),
    _b(
        "experimental-txn-mode-write-with-shared-buffer",
        True,
        "Enable the write transaction to use a shared buffer in its readonly check operations.",
        EXPERIMENTAL,
    ),
    _u(
        "experimental-bootstrap-defrag-threshold-megabytes",
        0,
        "Enable the defrag during etcd server bootstrap on condition that it will free at "
        "least the provided threshold of disk space. Needs to be set to non-zero value to "
        "take effect.",
        EXPERIMENTAL,
        shown="",
    ),
    _b(
        "experimental-stop-grpc-service-on-defrag",
        False,
        "Enable etcd gRPC service to stop serving client requests on defragmentation.",
        EXPERIMENTAL,
        shown="",
    ),
    # --- Unsafe
    _b("force-new-cluster", False, "Force to create a new one-member cluster.", UNSAFE),
    _b("unsafe-no-fsync", False, "Disables fsync, unsafe, will cause data loss.", UNSAFE),
    # --- etcdpy's own
    _s(
        "etcdpy-advertise-version",
        "",
        "etcd version etcdpy reports (etcd --version, /version, Status); empty means "
        "etcdpy's default (a 3.5 release).",
        ETCDPY,
        env="ETCDPY_ADVERTISE_VERSION",
    ),
    # --- shown in the usage line rather than in the flag sections
    _s(
        "config-file",
        "",
        "Path to the server configuration file. Note that if a configuration file is "
        "provided, other command line flags and environment variables will be ignored.",
        HIDDEN,
    ),
    _b("version", False, "Print the version and exit.", HIDDEN),
)

# Flags of old etcd releases that etcd still accepts and ignores (boolean-like).
_IGNORED_FLAGS: tuple[FlagSpec, ...] = tuple(
    FlagSpec(name, "ignored", None, "", HIDDEN, hidden=True)
    for name in (
        "cluster-active-size",
        "cluster-remove-delay",
        "cluster-sync-interval",
        "config",
        "force",
        "max-result-buffer",
        "max-retry-attempts",
        "peer-heartbeat-interval",
        "peer-election-timeout",
        "retry-interval",
        "snapshot",
        "v",
        "vv",
    )
)

FLAGS: tuple[FlagSpec, ...] = (*_SERVER_FLAGS, *_IGNORED_FLAGS)

FLAGS_BY_NAME: dict[str, FlagSpec] = {f.name: f for f in FLAGS}

#: Flags whose value does not go into ServerConfig as such.
NON_CONFIG_FLAGS = frozenset({"version"} | {f.name for f in FLAGS if f.kind == "ignored"})


def set_value(spec: FlagSpec, current: Any, text: str) -> Any:
    """Apply ``--name=text`` to the flag's current value, like its Go ``Value.Set``.

    Raises ValueError with the text Go would report after the flag name.
    """
    kind = spec.kind
    if kind == "string":
        return text
    if kind == "bool":
        return parse_bool(text)
    if kind == "ignored":
        return None  # etcd's IgnoredFlag accepts anything
    if kind in ("uint", "uint64"):
        return parse_uint(text, 64)
    if kind in ("int", "int64"):
        return parse_int(text, 64)
    if kind == "uint32":
        return parse_uint32_etcd(text)
    if kind == "duration":
        return parse_duration_flag(text)
    if kind == "urls":
        # etcd's UniqueURLs allows "" as an exception that leaves the URL list as it was.
        return current if text == "" else parse_urls(text)
    if kind == "cors":
        if text == "*":
            return ("*",)
        return tuple(sorted({str(u) for u in parse_urls(text)}))
    if kind == "unique_strings":
        return tuple(sorted(set(text.split(","))))
    if kind == "strings":
        return () if text == "" else tuple(text.split(","))
    if kind == "enum":
        if text not in spec.choices:
            raise ValueError("invalid value")
        return text
    if kind == "enum_multi":
        items = list(current)
        for item in text.split(","):
            if item not in spec.choices:
                raise ValueError(f"invalid value {go_quote(item)}")
            items.append(item)
        return tuple(sorted(items))
    raise AssertionError(f"unhandled flag kind {kind}")  # pragma: no cover


@dataclass(slots=True)
class CommandLine:
    """Result of parsing argv: values for every flag, and which flags were given."""

    values: dict[str, Any]
    given: list[str] = field(default_factory=list)  # in order, repeats removed
    positional: list[str] = field(default_factory=list)


def defaults() -> dict[str, Any]:
    return {f.name: f.default for f in FLAGS}


def parse_command_line(
    args: Sequence[str], specs: dict[str, FlagSpec] | None = None
) -> CommandLine:
    """Parse ``args`` (without the program name) as Go's ``FlagSet.Parse`` does.

    Raises FlagParseError (etcd prints it with the usage and exits 2) or HelpRequested.
    """
    table = FLAGS_BY_NAME if specs is None else specs
    cl = CommandLine(values={n: s.default for n, s in table.items()})
    rest = list(args)
    while rest:
        s = rest[0]
        if len(s) < 2 or s[0] != "-":
            break
        minuses = 2 if s[1] == "-" else 1
        if s == "--":
            rest.pop(0)
            break
        name = s[minuses:]
        if not name or name[0] in "-=":
            raise FlagParseError(f"bad flag syntax: {s}")
        rest.pop(0)
        has_value = False
        value = ""
        eq = name.find("=", 1)
        if eq > 0:
            name, value, has_value = name[:eq], name[eq + 1 :], True
        spec = table.get(name)
        if spec is None:
            if name in ("help", "h"):
                raise HelpRequested()
            raise FlagParseError(f"flag provided but not defined: -{name}")
        if spec.is_bool:
            try:
                cl.values[name] = set_value(spec, cl.values[name], value if has_value else "true")
            except ValueError as e:
                raise FlagParseError(
                    f"invalid boolean value {go_quote(value)} for -{name}: {e}"
                ) from None
        else:
            if not has_value and rest:
                value, has_value = rest.pop(0), True
            if not has_value:
                raise FlagParseError(f"flag needs an argument: -{name}")
            try:
                cl.values[name] = set_value(spec, cl.values[name], value)
            except ValueError as e:
                raise FlagParseError(
                    f"invalid value {go_quote(value)} for flag -{name}: {e}"
                ) from None
        if name not in cl.given:
            cl.given.append(name)
    cl.positional = rest
    return cl
