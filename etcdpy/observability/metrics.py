"""A tiny Prometheus registry: one per server, never global (two members can share a process).

Only what /metrics needs: counters and gauges with labels, gauges computed on scrape, and the
text exposition format 0.0.4. Names follow etcd's (``etcd_server_has_leader``,
``etcd_mvcc_put_total``, ``grpc_server_handled_total``...) so dashboards keep working.
Updating a metric is a dict operation; nothing here locks (everything runs on the loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

MetricType = Literal["counter", "gauge"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


class _Family:
    __slots__ = ("help", "labelnames", "name", "type", "values")

    def __init__(self, name: str, help: str, type: MetricType, labelnames: tuple[str, ...]):
        self.name = name
        self.help = help
        self.type: MetricType = type
        self.labelnames = labelnames
        self.values: dict[tuple[str, ...], float] = {}

    def samples(self) -> Iterable[tuple[tuple[str, ...], float]]:
        if not self.labelnames and not self.values:
            return [((), 0.0)]
        return self.values.items()


class Counter(_Family):
    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount


class Gauge(_Family):
    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def dec(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) - amount


class _FuncGauge(_Family):
    __slots__ = ("fn",)

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: tuple[str, ...],
        fn: Callable[[], Iterable[tuple[tuple[str, ...], float]]],
    ) -> None:
        super().__init__(name, help, "gauge", labelnames)
        self.fn = fn

    def samples(self) -> Iterable[tuple[tuple[str, ...], float]]:
        return list(self.fn())


class MetricsRegistry:
    """Metric families by name; ``render()`` gives the Prometheus text format."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def counter(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> Counter:
        fam = self._families.get(name)
        if fam is None:
            fam = Counter(name, help, "counter", labelnames)
            self._families[name] = fam
        if not isinstance(fam, Counter):
            raise ValueError(f"metric {name} already registered with another type")
        return fam

    def gauge(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> Gauge:
        fam = self._families.get(name)
        if fam is None:
            fam = Gauge(name, help, "gauge", labelnames)
            self._families[name] = fam
        if not isinstance(fam, Gauge):
            raise ValueError(f"metric {name} already registered with another type")
        return fam

    def gauge_func(
        self,
        name: str,
        help: str,
        fn: Callable[[], Iterable[tuple[tuple[str, ...], float]]],
        labelnames: tuple[str, ...] = (),
    ) -> None:
        """A gauge computed at scrape time: ``fn`` yields (label values, value) pairs."""
        self._families[name] = _FuncGauge(name, help, labelnames, fn)

    def render(self) -> str:
        out: list[str] = []
        for name in sorted(self._families):
            fam = self._families[name]
            out.append(f"# HELP {name} {fam.help}")
            out.append(f"# TYPE {name} {fam.type}")
            if not fam.labelnames:
                out.extend(f"{name} {_fmt(value)}" for _, value in fam.samples())
                continue
            # client_golang's exposition: label pairs sorted by name, samples by those pairs
            # (scrapers and tests grep for e.g. grpc_server_handled_total{grpc_code=...,...})
            rows = sorted(
                (sorted(zip(fam.labelnames, labels, strict=False)), value)
                for labels, value in fam.samples()
            )
            for pairs, value in rows:
                lbl = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
                out.append(f"{name}{{{lbl}}} {_fmt(value)}")
        return "\n".join(out) + "\n"
