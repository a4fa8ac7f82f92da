"""``etcd --help`` text, generated from the flag table so it can never miss a flag.

etcd prints the short usage (``usageline``) to stderr via the flag set's Usage hook and
then the flag sections (``flagsline``) to stdout; :func:`usage` and :func:`flags_help`
return those two texts.
"""

from __future__ import annotations

from etcdpy.config.flags import FLAGS, HIDDEN, FlagSpec


def usage(prog: str = "etcd") -> str:
    return f"""Usage:

  {prog} [flags]
    Start an etcd server.

  {prog} --version
    Show the version of etcd.

  {prog} -h | --help
    Show the help information about etcd.

  {prog} --config-file
    Path to the server configuration file. Note that if a configuration file is provided, \
other command line flags and environment variables will be ignored.

  {prog} gateway
    Run the stateless pass-through etcd TCP connection forwarding proxy.

  {prog} grpc-proxy
    Run the stateless etcd v3 gRPC L7 reverse proxy.
"""


def _shown(spec: FlagSpec) -> str:
    if spec.shown is not None:
        return spec.shown
    if spec.kind == "bool":
        return f"'{'true' if spec.default else 'false'}'"
    return f"'{spec.default}'"


def flags_help() -> str:
    lines: list[str] = []
    section = None
    for spec in FLAGS:
        if spec.section == HIDDEN or spec.hidden:
            continue
        if spec.section != section:
            section = spec.section
            lines.append("")
            lines.append(f"{section}:")
        shown = _shown(spec)
        lines.append(f"  --{spec.name}" + (f" {shown}" if shown else ""))
        lines.extend(f"    {line}" for line in spec.help.split("\n"))
    lines.append("")
    lines.append(
        "CAUTIOUS with unsafe flag! It may break the guarantees given by the consensus protocol!"
    )
    return "\n".join(lines) + "\n"
