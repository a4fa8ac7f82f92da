"""--listen-metrics-urls: an extra listener answering /metrics and /health (etcd and etcdpy)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Member, free_port, have_etcd, new_member


@pytest.fixture(scope="module", params=["etcdpy", "etcd"])
def metrics_member(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Member, str]]:
    if request.param == "etcd" and not have_etcd():
        pytest.skip("real etcd not installed")
    m = new_member(request.param, Path(tmp_path_factory.mktemp("metrics")))
    url = f"http://127.0.0.1:{free_port()}"
    m.start([f"--listen-metrics-urls={url}"])
    try:
        yield m, url
    finally:
        m.stop()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def test_metrics_and_health_on_metrics_url(metrics_member: tuple[Member, str]) -> None:
    _, url = metrics_member
    body = _get(url + "/metrics")
    assert "etcd_server_has_leader 1" in body
    assert "etcd_mvcc_put_total" in body
    assert json.loads(_get(url + "/health"))["health"] == "true"
