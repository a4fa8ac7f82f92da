"""The etcdpy command: exit codes, messages, --help/--version, the hand-off to embed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from etcdpy.cli.main import main
from etcdpy.config import ServerConfig
from etcdpy.observability.logging import Logger

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(argv, env or {}, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_version_four_lines() -> None:
    rc, out, _ = run(["--version"])
    assert rc == 0
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[0] == "etcd Version: 3.5.17"
    assert lines[1].startswith("Git SHA: ")
    assert lines[2].startswith("Go Version: ")
    assert lines[3].startswith("Go OS/Arch: linux/")


def test_version_advertised_is_configurable() -> None:
    assert run(["--version", "--etcdpy-advertise-version=3.5.21"])[1].startswith(
        "etcd Version: 3.5.21\n"
    )
    rc, out, _ = run(["-version"], {"ETCDPY_ADVERTISE_VERSION": "3.5.13"})
    assert rc == 0
    assert out.startswith("etcd Version: 3.5.13\n")


def test_help_usage_on_stderr_flags_on_stdout() -> None:
    rc, out, err = run(["--help"])
    assert rc == 0
    assert err.startswith("Usage:\n\n  etcd [flags]")
    assert "\nMember:\n  --name 'default'\n" in out
    for flag in (
        "--listen-client-http-urls",
        "--experimental-watch-progress-notify-interval",
        "--unsafe-no-fsync",
        "--etcdpy-advertise-version",
        "--log-outputs",
    ):
        assert f"  {flag}" in out


def test_unknown_flag_exit_2_with_usage() -> None:
    rc, out, err = run(["--foo"])
    assert rc == 2
    assert err.startswith("flag provided but not defined: -foo\nUsage:\n")
    assert out == ""


def test_validation_error_exit_1_logged_like_etcd() -> None:
    rc, _, err = run(["--election-timeout", "10"])
    assert rc == 1
    recs = _json_lines(err)
    assert recs[0]["msg"] == "Running: "
    assert recs[0]["args"] == ["etcd", "--election-timeout", "10"]
    assert recs[1]["level"] == "warn"
    assert recs[1]["msg"] == "failed to verify flags"
    assert recs[1]["error"] == (
        "--election-timeout[10ms] should be at least as 5 times as --heartbeat-interval[100ms]"
    )


def test_env_conflict_fatal_line() -> None:
    rc, _, err = run(["--name", "a"], {"ETCD_NAME": "b"})
    assert rc == 1
    rec = _json_lines(err)[-1]
    assert rec["level"] == "fatal"
    assert rec["environment-variable"] == "ETCD_NAME"


def test_missing_advertise_extra_warning() -> None:
    rc, _, err = run(["--listen-client-urls", "http://127.0.0.1:2379"])
    assert rc == 1
    assert _json_lines(err)[-1]["msg"] == "advertise client URLs are not set"


def test_unsupported_flag_refused() -> None:
    rc, _, err = run(["--experimental-memory-mlock"])
    assert rc == 1
    assert "does not support --experimental-memory-mlock" in _json_lines(err)[-1]["error"]


@pytest.mark.parametrize(
    ("argv", "rc", "text"),
    [
        (["gateway", "start", "--endpoints=127.0.0.1:2379"], 1, "does not support"),
        (["gateway", "--endpoints=127.0.0.1:2379", "start"], 1, "does not support"),
        (["gateway", "--endpoints", "127.0.0.1:2379", "start"], 1, "does not support"),
        (["grpc-proxy", "start", "--cert", "a", "--bogus"], 1, "unknown flag: --bogus"),
        (["grpc-proxy", "start", "--endpoints", "x", "--listen-addr", "y"], 1, "does not support"),
    ],
)
def test_subcommands_refused(argv: list[str], rc: int, text: str) -> None:
    got_rc, _, err = run(argv)
    assert got_rc == rc
    assert text in err


def test_hands_config_and_logger_to_embed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_run(cfg: ServerConfig, lg: Logger) -> int:
        seen["cfg"], seen["lg"] = cfg, lg
        lg.info("fake server ran")
        return 3

    fake = types.ModuleType("etcdpy.embed")
    fake.run = fake_run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "etcdpy.embed", fake)
    log = tmp_path / "etcd.log"
    rc, _, _ = run(
        ["--name", "n1", "--log-outputs", str(log), "--log-level", "debug"],
        {"ETCD_SNAPSHOT_COUNT": "9"},
    )
    assert rc == 3
    assert seen["cfg"].name == "n1" and seen["cfg"].snapshot_count == 9
    assert seen["lg"].level == "debug"
    msgs = [r["msg"] for r in _json_lines(log.read_text())]
    assert msgs[0] == "Running: "
    assert "recognized and used environment variable" in msgs
    assert "'data-dir' was empty; using default" in msgs
    assert msgs[-1] == "fake server ran"


def test_python_dash_m_version_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "etcdpy", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "etcd Version: 3.5.17"
    assert [line.split(":")[0] for line in lines] == [
        "etcd Version",
        "Git SHA",
        "Go Version",
        "Go OS/Arch",
    ]


def test_python_dash_m_bad_flag_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "etcdpy", "--nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("flag provided but not defined: -nope\n")


def test_interrupt_dies_by_sigint_like_etcd() -> None:
    code = (
        "import sys, types\n"
        "m = types.ModuleType('etcdpy.embed')\n"
        "def run(cfg, lg):\n"
        "    raise KeyboardInterrupt\n"
        "m.run = run\n"
        "sys.modules['etcdpy.embed'] = m\n"
        "from etcdpy.cli.main import main\n"
        "raise SystemExit(main(['--data-dir', 'unused']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == -2  # killed by SIGINT, as etcd re-raises the signal
    assert "received signal; shutting down" in proc.stderr
