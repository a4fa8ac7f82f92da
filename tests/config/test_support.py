"""Flags etcdpy does not implement are refused, never silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdpy.config import FLAGS, UNSUPPORTED_FLAGS, UnsupportedFlagError, load, parse_config
from etcdpy.config.flags import FLAGS_BY_NAME

ENV: dict[str, str] = {}


def test_unsupported_flags_are_real_flags() -> None:
    assert UNSUPPORTED_FLAGS <= set(FLAGS_BY_NAME)


def test_non_default_value_refused() -> None:
    with pytest.raises(UnsupportedFlagError) as e:
        load(["--experimental-memory-mlock"], ENV)
    assert e.value.flags == ("experimental-memory-mlock",)
    assert "--experimental-memory-mlock" in e.value.message
    assert e.value.exit_code == 1


def test_default_value_accepted() -> None:
    cfg = load(["--experimental-memory-mlock=false", "--proxy", "off"], ENV)
    assert cfg.experimental_memory_mlock is False


def test_refused_from_env_and_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFlagError):
        load([], {"ETCD_EXPERIMENTAL_MEMORY_MLOCK": "true"})
    path = tmp_path / "c.yml"
    path.write_text("experimental-memory-mlock: true\n")
    with pytest.raises(UnsupportedFlagError):
        load(["--config-file", str(path)], ENV)


def test_refusal_follows_the_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server helper shrinks UNSUPPORTED_FLAGS as features land."""
    monkeypatch.setattr("etcdpy.config.support.UNSUPPORTED_FLAGS", frozenset())
    assert load(["--experimental-memory-mlock"], ENV).experimental_memory_mlock is True


def test_all_flags_listed_once() -> None:
    names = [f.name for f in FLAGS]
    assert len(names) == len(set(names))


def test_noop_flags_warn(tmp_path: Path) -> None:
    """--enable-pprof (etcd.conf.yml.sample sets it) is accepted with a warning."""
    res = parse_config(["--enable-pprof"], ENV)
    assert res.config is not None and res.config.enable_pprof is True
    assert any(
        n.level == "warn" and n.fields.get("flag") == "--enable-pprof" for n in res.notices
    )
    path = tmp_path / "c.yml"
    path.write_text("enable-pprof: true\nenable-v2: true\n")
    res = parse_config(["--config-file", str(path)], ENV)
    flags = {n.fields.get("flag") for n in res.notices if n.level == "warn"}
    assert {"--enable-pprof", "--enable-v2"} <= flags
