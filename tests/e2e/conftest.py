from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Ctl, Member, have_etcd, have_etcdctl, new_member

SERVER_KINDS = ["etcdpy", "etcd"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not have_etcdctl():
        skip = pytest.mark.skip(reason="real etcdctl not installed (apt-get install etcd-client)")
        for item in items:
            if "e2e" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="module", params=SERVER_KINDS)
def member(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    Member
]:
    """A fresh single member per module and server kind; real etcd shows what etcd does."""
    kind = request.param
    if kind == "etcd" and not have_etcd():
        pytest.skip("real etcd not installed (apt-get install etcd-server)")
    m = new_member(kind, Path(tmp_path_factory.mktemp(kind)))
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="module")
def ctl(member: Member) -> Ctl:
    return Ctl(member.client_url)
