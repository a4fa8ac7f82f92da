"""Prometheus' standard process metrics, with client_golang's names and help texts.

etcd exposes them on ``/metrics``, dashboards chart them, and ``etcdctl check datascale``
reads ``process_resident_memory_bytes`` before and after its load (it fails without it).
Values are read at scrape time from the OS (``/proc/self`` on Linux); a value the system
cannot give leaves its family without a sample rather than failing the scrape.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Iterable

from etcdpy.observability.metrics import MetricsRegistry

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")
#: How client_golang reports an unlimited resource (``RLIM_INFINITY``).
_UNLIMITED = float(2**64 - 1)


def register_process_metrics(reg: MetricsRegistry, proc: str = "/proc/self") -> None:
    """Add the process collector's families to ``reg`` (``proc``: the /proc directory read)."""
    start = _start_time(proc)
    reg.counter_func(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        lambda: sum(os.times()[:2]),
    )
    gauges: list[tuple[str, str, Callable[[], float]]] = [
        ("process_max_fds", "Maximum number of open file descriptors.",
         lambda: _limit(resource.RLIMIT_NOFILE)),
        ("process_open_fds", "Number of open file descriptors.",
         lambda: float(len(os.listdir(f"{proc}/fd")))),
        ("process_resident_memory_bytes", "Resident memory size in bytes.",
         lambda: _statm(proc, 1)),
        ("process_virtual_memory_bytes", "Virtual memory size in bytes.",
         lambda: _statm(proc, 0)),
        ("process_virtual_memory_max_bytes",
         "Maximum amount of virtual memory available in bytes.",
         lambda: _limit(resource.RLIMIT_AS)),
    ]
    if start is not None:
        gauges.append(("process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", lambda: start))
    for name, help_text, fn in gauges:
        reg.gauge_func(name, help_text, _sample(fn))


def _sample(fn: Callable[[], float]) -> Callable[[], Iterable[tuple[tuple[str, ...], float]]]:
    def samples() -> list[tuple[tuple[str, ...], float]]:
        try:
            return [((), fn())]
        except (OSError, ValueError, IndexError):
            return []

    return samples


def _statm(proc: str, field: int) -> float:
    with open(f"{proc}/statm") as f:
        return float(int(f.read().split()[field]) * _PAGE)


def _limit(which: int) -> float:
    soft = resource.getrlimit(which)[0]
    return _UNLIMITED if soft == resource.RLIM_INFINITY else float(soft)


def _start_time(proc: str) -> float | None:
    """Boot time plus the process's start, in clock ticks since boot (``stat`` field 22)."""
    try:
        with open(f"{proc}/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return btime + ticks / _TICK
