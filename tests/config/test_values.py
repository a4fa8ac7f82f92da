"""Go value parsers: durations, integers, URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcdpy.config.values import (
    MAX_INT64,
    format_go_duration,
    go_quote,
    parse_go_duration_ns,
    parse_int,
    parse_uint,
    parse_urls_map,
    split_host_port,
)


@given(st.integers(min_value=0, max_value=10**15))
def test_duration_string_round_trip(ns: int) -> None:
    text = format_go_duration(ns / 1e9)
    assert abs(parse_go_duration_ns(text) - ns) <= max(1, ns // 10**6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2h0m0s", "2h"), ("10m0s", "10m"), ("100ms", "100ms"), ("0s", "0"), ("1.5s", "1500ms")],
)
def test_format_duration_like_go(text: str, expected: str) -> None:
    assert format_go_duration(parse_go_duration_ns(expected) / 1e9) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5", 'time: missing unit in duration "5"'),
        ("5x", 'time: unknown unit "x" in duration "5x"'),
        ("", 'time: invalid duration ""'),
        (".s", 'time: invalid duration ".s"'),
    ],
)
def test_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_go_duration_ns(text)
    assert str(e.value) == message


@given(st.integers(min_value=-(2**63), max_value=MAX_INT64))
def test_parse_int_decimal(n: int) -> None:
    assert parse_int(str(n)) == n


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_parse_uint_hex(n: int) -> None:
    assert parse_uint(hex(n)) == n


@pytest.mark.parametrize("text", ["", "_1", "1_", "1__0", "0x", "08", "1e3", " 1"])
def test_parse_int_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="parse error"):
        parse_int(text)


def test_split_host_port() -> None:
    assert split_host_port("[::1]:2379") == ("::1", "2379")
    assert split_host_port(":2379") == ("", "2379")
    with pytest.raises(ValueError, match="missing port in address"):
        split_host_port("localhost")
    with pytest.raises(ValueError, match="too many colons"):
        split_host_port("::1:2379")


def test_urls_map_errors_like_etcd() -> None:
    with pytest.raises(ValueError, match="URL scheme must be http, https, unix, or unixs: "):
        parse_urls_map("a")


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
