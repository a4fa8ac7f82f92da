"""The zap-like JSON logger (etcdpy.observability.logging)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from etcdpy.observability.logging import (
    Logger,
    build_logger,
    format_ts,
    log_enabled_capabilities,
    log_published,
    log_ready_to_serve_client_requests,
)


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_line_shape_and_key_order() -> None:
    buf = io.StringIO()
    lg = Logger(outputs=[buf], wall=lambda: 1_700_000_000.123456)
    lg.info("hello", {"local-member-id": "8e9e05c52164694d"}, took="1s")
    (rec,) = _lines(buf)
    assert list(rec) == ["level", "ts", "caller", "msg", "local-member-id", "took"]
    assert rec["level"] == "info"
    assert rec["ts"] == "2023-11-14T22:13:20.123456Z"
    assert str(rec["caller"]).startswith("cli/test_logging.py:")
    assert rec["msg"] == "hello"


def test_levels_filter() -> None:
    buf = io.StringIO()
    lg = Logger(level="warn", outputs=[buf])
    lg.debug("d")
    lg.info("i")
    lg.warn("w")
    lg.error("e")
    assert [r["level"] for r in _lines(buf)] == ["warn", "error"]
    assert not lg.enabled("info") and lg.enabled("error")


def test_bad_level() -> None:
    with pytest.raises(ValueError, match='unrecognized level: "loud"'):
        Logger(level="loud")


def test_with_fields_binds() -> None:
    buf = io.StringIO()
    lg = Logger(outputs=[buf]).with_fields({"member": "m1"})
    lg.info("x", error=ValueError("boom"), urls=("a", "b"), raw=b"k")
    (rec,) = _lines(buf)
    assert (rec["member"], rec["error"], rec["urls"], rec["raw"]) == ("m1", "boom", ["a", "b"], "k")


def test_fatal_exits_1_and_panic_raises() -> None:
    buf = io.StringIO()
    lg = Logger(outputs=[buf])
    with pytest.raises(SystemExit) as e:
        lg.fatal("bye")
    assert e.value.code == 1
    with pytest.raises(RuntimeError, match="oops"):
        lg.panic("oops")
    assert [r["level"] for r in _lines(buf)] == ["fatal", "panic"]


def test_file_output(tmp_path: Path) -> None:
    path = tmp_path / "etcd.log"
    lg = build_logger("debug", [str(path)])
    lg.debug("to file")
    lg.close()
    assert json.loads(path.read_text())["msg"] == "to file"


def test_readiness_lines() -> None:
    buf = io.StringIO()
    lg = Logger(outputs=[buf])
    log_published(
        lg,
        local_member_id="8e9e05c52164694d",
        name="default",
        client_urls=["http://localhost:2379"],
        cluster_id="cdf818194e3a8c32",
    )
    log_enabled_capabilities(lg, "3.5")
    log_ready_to_serve_client_requests(lg)
    text = buf.getvalue()
    assert "published" in text and "enabled capabilities for version" in text
    recs = _lines(buf)
    assert recs[0]["local-member-attributes"] == "{Name:default ClientURLs:[http://localhost:2379]}"
    assert recs[1]["cluster-version"] == "3.5"
    assert recs[2]["msg"] == "ready to serve client requests"
    assert str(recs[2]["caller"]).startswith("cli/test_logging.py:")


def test_format_ts_is_utc_micro() -> None:
    assert format_ts(0.5) == "1970-01-01T00:00:00.500000Z"


def test_stdlib_records_bridged() -> None:
    import logging

    from etcdpy.observability.logging import attach_stdlib

    buf = io.StringIO()
    lg = Logger(outputs=[buf])
    private = logging.getLogger("etcdpy-test-bridge")
    private.propagate = False
    detach = attach_stdlib(lg, private)
    try:
        private.warning("grpc said %s", "hi")
        private.debug("hidden at info")
        private.critical("not fatal")
    finally:
        detach()
    private.warning("after detach")
    recs = _lines(buf)
    assert [(r["level"], r["msg"]) for r in recs] == [
        ("warn", "grpc said hi"),
        ("error", "not fatal"),
    ]
    assert recs[0]["logger"] == "etcdpy-test-bridge"
    assert str(recs[0]["caller"]).startswith("cli/test_logging.py:")
