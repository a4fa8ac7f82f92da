"""A tiny Prometheus registry: one per server, never global (two members can share a process).

Only what /metrics needs: counters and gauges with labels, gauges computed on scrape,
histograms, and the text exposition format 0.0.4. Names follow etcd's (``etcd_server_has_leader``,
``etcd_mvcc_put_total``, ``grpc_server_handled_total``...) so dashboards keep working.
Updating a metric is a dict operation; nothing here locks (everything runs on the loop,
except histograms of disk timings, which one writer thread observes while the loop only
renders them).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]


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

    def bound(self, *labels: str) -> Callable[[], None]:
        """``inc(*labels)`` as a call without arguments, the label tuple built once (for
        hot paths that always count the same series)."""
        values = self.values

        def inc() -> None:
            values[labels] = values.get(labels, 0.0) + 1.0

        return inc


class Gauge(_Family):
    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def dec(self, *labels: str, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) - amount


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """client_golang's ``ExponentialBuckets`` (etcd's disk histograms use 0.001, 2, 14)."""
    return tuple(start * factor**i for i in range(count))


class Histogram(_Family):
    """Cumulative buckets, sum and count, without labels (all etcd's disk timings)."""

    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, name: str, help: str, buckets: tuple[float, ...]) -> None:
        super().__init__(name, help, "histogram", ())
        self.buckets = buckets
        self.counts = [0] * len(buckets)  # per bucket, not cumulative (cumulated on render)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        i = bisect_left(self.buckets, value)  # le: a value equal to a bound counts in it
        if i < len(self.counts):
            self.counts[i] += 1
        self.count += 1
        self.sum += value

    def lines(self) -> list[str]:
        out: list[str] = []
        acc = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            acc += n
            out.append(f'{self.name}_bucket{{le="{_fmt_bound(bound)}"}} {acc}')
        out.append(f'{self.name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{self.name}_sum {_fmt(self.sum)}")
        out.append(f"{self.name}_count {self.count}")
        return out


def _fmt_bound(v: float) -> str:
    """Bucket bounds as client_golang prints them (0.001, 0.002, ..., 8.192)."""
    return format(round(v, 9), "g") if v < 1e21 else repr(v)


class _FuncFamily(_Family):
    """A counter or gauge whose samples ``fn`` computes at scrape time."""

    __slots__ = ("fn",)

    def __init__(
        self,
        name: str,
        help: str,
        type: MetricType,
        labelnames: tuple[str, ...],
        fn: Callable[[], Iterable[tuple[tuple[str, ...], float]]],
    ) -> None:
        super().__init__(name, help, type, labelnames)
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

    def histogram(self, name: str, help: str, buckets: tuple[float, ...]) -> Histogram:
        fam = self._families.get(name)
        if fam is None:
            fam = Histogram(name, help, buckets)
            self._families[name] = fam
        if not isinstance(fam, Histogram):
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
        self._families[name] = _FuncFamily(name, help, "gauge", labelnames, fn)

    def counter_func(self, name: str, help: str, fn: Callable[[], float]) -> None:
        """A label-less counter read at scrape time (e.g. CPU seconds the OS counts)."""
        self._families[name] = _FuncFamily(name, help, "counter", (), lambda: [((), fn())])

    def render(self) -> str:
        out: list[str] = []
        for name in sorted(self._families):
            fam = self._families[name]
            out.append(f"# HELP {name} {fam.help}")
            out.append(f"# TYPE {name} {fam.type}")
            if isinstance(fam, Histogram):
                out.extend(fam.lines())
                continue
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
