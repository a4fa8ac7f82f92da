"""``etcd gateway start`` and ``etcd grpc-proxy start``: recognised, parsed, refused.

etcd runs these through cobra/pflag.  etcdpy does not implement either proxy yet, so
after checking the flags (an unknown one is cobra's ``Error: unknown flag: --x``) it
says so and exits 1, instead of pretending to be a proxy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

GATEWAY_FLAGS = frozenset(
    {
        "listen-addr",
        "discovery-srv",
        "discovery-srv-name",
        "endpoints",
        "insecure-discovery",
        "trusted-ca-file",
        "retry-delay",
        "help",
    }
)
GRPC_PROXY_FLAGS = frozenset(
    {
        "listen-addr",
        "discovery-srv",
        "discovery-srv-name",
        "endpoints",
        "metrics-addr",
        "insecure-discovery",
        "advertise-client-url",
        "resolver-prefix",
        "resolver-ttl",
        "namespace",
        "leasing",
        "enable-pprof",
        "cert",
        "key",
        "cacert",
        "cert-file",
        "key-file",
        "trusted-ca-file",
        "auto-tls",
        "client-crl-file",
        "insecure-skip-tls-verify",
        "listen-cipher-suites",
        "data-dir",
        "max-send-bytes",
        "max-recv-bytes",
        "dial-keepalive-time",
        "dial-keepalive-timeout",
        "permit-without-stream",
        "grpc-keepalive-min-time",
        "grpc-keepalive-interval",
        "grpc-keepalive-timeout",
        "experimental-serializable-ordering",
        "experimental-leasing-prefix",
        "enable-grpc-proxy-logging",
        "debug",
        "log-outputs",
        "log-level",
        "self-signed-cert-validity",
        "help",
    }
)
_SUBCOMMANDS = {"gateway": GATEWAY_FLAGS, "grpc-proxy": GRPC_PROXY_FLAGS}

#: flags of either subcommand that take no separate value (pflag booleans)
BOOL_FLAGS = frozenset(
    {
        "insecure-discovery",
        "auto-tls",
        "insecure-skip-tls-verify",
        "enable-pprof",
        "permit-without-stream",
        "experimental-serializable-ordering",
        "enable-grpc-proxy-logging",
        "debug",
        "help",
    }
)


def run_subcommand(args: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """``args[0]`` is ``gateway`` or ``grpc-proxy``; returns the exit status.

    Flags may come before or after ``start`` (``etcd gateway --endpoints=x start``).
    """
    cmd = args[0]
    known = _SUBCOMMANDS[cmd]
    positional: list[str] = []
    rest = list(args[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positional.extend(rest)
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, _ = arg.lstrip("-").partition("=")
        if name not in known:
            stderr.write(f"Error: unknown flag: {arg.split('=', 1)[0]}\n")
            return 1
        if not eq and name not in BOOL_FLAGS and rest:
            rest.pop(0)
    if positional[:1] != ["start"]:
        stdout.write(
            f"Usage:\n  etcd {cmd} [command]\n\nAvailable Commands:\n  start\n"
            "\netcdpy does not implement this subcommand yet.\n"
        )
        return 0 if not positional else 1
    stderr.write(f"Error: etcdpy does not support 'etcd {cmd} start' yet\n")
    return 1
