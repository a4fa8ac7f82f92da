"""Flags etcdpy does not implement are refused, never silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdpy.config import FLAGS, UNSUPPORTED_FLAGS, UnsupportedFlagError, load
from etcdpy.config.flags import FLAGS_BY_NAME

ENV: dict[str, str] = {}


def test_unsupported_flags_are_real_flags() -> None:
    assert UNSUPPORTED_FLAGS <= set(FLAGS_BY_NAME)


def test_non_default_value_refused() -> None:
    with pytest.raises(UnsupportedFlagError) as e:
        load(["--enable-pprof"], ENV)
    assert e.value.flags == ("enable-pprof",)
    assert "--enable-pprof" in e.value.message
    assert e.value.exit_code == 1


def test_default_value_accepted() -> None:
    assert load(["--enable-pprof=false", "--proxy", "off"], ENV).enable_pprof is False


def test_refused_from_env_and_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFlagError):
        load([], {"ETCD_ENABLE_PPROF": "true"})
    path = tmp_path / "c.yml"
    path.write_text("enable-pprof: true\n")
    with pytest.raises(UnsupportedFlagError):
        load(["--config-file", str(path)], ENV)


def test_refusal_follows_the_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server helper shrinks UNSUPPORTED_FLAGS as features land."""
    monkeypatch.setattr("etcdpy.config.support.UNSUPPORTED_FLAGS", frozenset())
    assert load(["--enable-pprof"], ENV).enable_pprof is True


def test_all_flags_listed_once() -> None:
    names = [f.name for f in FLAGS]
    assert len(names) == len(set(names))
