"""The same etcdctl script against etcdpy and real etcd 3.4; JSON answers must agree.

IDs, terms, versions and sizes legitimately differ and are dropped (``normalize``);
keys, values, revisions, versions of keys, counts and flags must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Ctl, Member, have_etcd, new_member, normalize

SCRIPT: list[tuple[str, ...]] = [
    ("put", "a", "1"),
    ("put", "b", "2"),
    ("put", "a", "3", "--prev-kv"),
    ("get", "a"),
    ("get", "", "--prefix"),
    ("get", "a", "--from-key", "--limit", "1"),
    ("get", "a", "--rev", "2"),
    ("get", "", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND"),
    ("get", "", "--prefix", "--keys-only"),
    ("get", "a", "c"),
    ("del", "b", "--prev-kv"),
    ("del", "zzz"),
    ("put", "c/1", "x"),
    ("put", "c/2", "y"),
    ("get", "c/", "--prefix", "--limit", "1"),
    ("del", "c/", "--prefix"),
    ("get", "a", "--print-value-only"),
    ("compaction", "3"),
    ("get", "a", "--rev", "4"),
]

TXN_SCRIPTS = [
    'value("a") = "3"\n\nput t1 "yes"\nget a\n\nput t1 "no"\n\n',
    'mod("a") > "100"\n\nput t2 "yes"\n\ndel t1\nget t1\n\n',
    'create("nope") = "0"\nver("a") = "2"\n\nput t3 "both"\n\n\n',
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ctl, Ctl]]:
    if not have_etcd():
        pytest.skip("real etcd not installed")
    tmp = Path(tmp_path_factory.mktemp("diff"))
    members: list[Member] = [new_member("etcdpy", tmp), new_member("etcd", tmp)]
    try:
        for m in members:
            m.start()
        yield Ctl(members[0].client_url), Ctl(members[1].client_url)
    finally:
        for m in members:
            m.stop()


def _answer(ctl: Ctl, args: tuple[str, ...], stdin: str | None = None) -> object:
    res = ctl.run("-w", "json", *args, input=stdin, check=False)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1:]}
    out = res.stdout.strip()
    return normalize(json.loads(out)) if out.startswith(("{", "[")) else out


def test_kv_script_matches_etcd(pair: tuple[Ctl, Ctl]) -> None:
    ours, theirs = pair
    for args in SCRIPT:
        assert _answer(ours, args) == _answer(theirs, args), args


def test_txn_scripts_match_etcd(pair: tuple[Ctl, Ctl]) -> None:
    ours, theirs = pair
    for script in TXN_SCRIPTS:
        assert _answer(ours, ("txn",), script) == _answer(theirs, ("txn",), script), script
