"""Command-line parsing with Go ``flag`` semantics, as etcd's."""

from __future__ import annotations

import pytest

from etcdpy.config import ConfigError, FlagParseError, HelpRequested, load
from etcdpy.config.flags import FLAGS, parse_command_line
from etcdpy.config.values import URL

ENV: dict[str, str] = {}


@pytest.mark.parametrize(
    "argv",
    [
        ["--name", "n1"],
        ["--name=n1"],
        ["-name", "n1"],
        ["-name=n1"],
    ],
)
def test_value_spellings(argv: list[str]) -> None:
    assert load(argv, ENV).name == "n1"


def test_value_may_start_with_dash() -> None:
    assert load(["--name", "-odd"], ENV).name == "-odd"


def test_empty_value_with_equals() -> None:
    assert load(["--initial-cluster-token="], ENV).initial_cluster_token == ""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], False),
        (["--enable-v2"], True),
        (["-enable-v2"], True),
        (["--enable-v2=true"], True),
        (["--enable-v2=1"], True),
        (["--enable-v2=T"], True),
        (["--enable-v2=false"], False),
        (["--enable-v2=0"], False),
        (["--enable-v2", "--enable-v2=false"], False),
    ],
)
def test_bool_spellings(argv: list[str], expected: bool) -> None:
    assert load(argv, ENV).enable_v2 is expected


def test_bool_does_not_consume_next_argument() -> None:
    with pytest.raises(ConfigError) as e:
        load(["--enable-v2", "false"], ENV)
    assert e.value.message == "'false' is not a valid flag"
    assert e.value.exit_code == 1


def test_positional_argument_rejected_like_etcd() -> None:
    with pytest.raises(ConfigError) as e:
        load(["extra"], ENV)
    assert e.value.message == "'extra' is not a valid flag"


def test_double_dash_ends_flags() -> None:
    with pytest.raises(ConfigError, match="'--name' is not a valid flag"):
        load(["--", "--name", "x"], ENV)


def test_repeated_flag_last_wins() -> None:
    cfg = load(["--name", "a", "--name=b", "--snapshot-count", "1", "--snapshot-count", "7"], ENV)
    assert cfg.name == "b"
    assert cfg.snapshot_count == 7


def test_repeated_url_flag_replaces() -> None:
    cfg = load(
        [
            "--listen-client-urls=http://127.0.0.1:1",
            "--listen-client-urls=http://127.0.0.1:2",
            "--advertise-client-urls=http://127.0.0.1:2",
        ],
        ENV,
    )
    assert cfg.listen_client_urls == (URL("http", "127.0.0.1:2"),)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--foo"], "flag provided but not defined: -foo"),
        (["-foo=1"], "flag provided but not defined: -foo"),
        (["--name"], "flag needs an argument: -name"),
        (["---name=x"], "bad flag syntax: ---name=x"),
        (["-=x"], "bad flag syntax: -=x"),
        (["--snapshot-count", "abc"], 'invalid value "abc" for flag -snapshot-count: parse error'),
        (["--snapshot-count", "-1"], 'invalid value "-1" for flag -snapshot-count: parse error'),
        (
            ["--snapshot-count", "99999999999999999999"],
            'invalid value "99999999999999999999" for flag -snapshot-count: value out of range',
        ),
        (["--enable-v2=maybe"], 'invalid boolean value "maybe" for -enable-v2: parse error'),
        (
            ["--initial-cluster-state", "bogus"],
            'invalid value "bogus" for flag -initial-cluster-state: invalid value',
        ),
        (
            ["--grpc-keepalive-min-time", "5"],
            'invalid value "5" for flag -grpc-keepalive-min-time: parse error',
        ),
        (
            ["--listen-client-urls", "localhost:2379"],
            'invalid value "localhost:2379" for flag -listen-client-urls: '
            "URL scheme must be http, https, unix, or unixs: localhost:2379",
        ),
        (
            ["--listen-peer-urls", "http://127.0.0.1"],
            'invalid value "http://127.0.0.1" for flag -listen-peer-urls: '
            'URL address does not have the form "host:port": http://127.0.0.1',
        ),
        (
            ["--listen-peer-urls", "http://127.0.0.1:2380/x"],
            'invalid value "http://127.0.0.1:2380/x" for flag -listen-peer-urls: '
            "URL must not contain a path: http://127.0.0.1:2380/x",
        ),
        (
            ["--max-concurrent-streams", "x"],
            'invalid value "x" for flag -max-concurrent-streams: '
            'strconv.ParseUint: parsing "x": invalid syntax',
        ),
        (
            ["--v2-deprecation", "later"],
            'invalid value "later" for flag -v2-deprecation: invalid value "later"',
        ),
    ],
)
def test_parse_errors_match_go(argv: list[str], message: str) -> None:
    with pytest.raises(FlagParseError) as e:
        load(argv, ENV)
    assert e.value.message == message
    assert e.value.exit_code == 2


@pytest.mark.parametrize("flag", ["-h", "--h", "-help", "--help"])
def test_help(flag: str) -> None:
    with pytest.raises(HelpRequested):
        load([flag], ENV)


@pytest.mark.parametrize(
    ("text", "value"),
    [("10", 10), ("0x10", 16), ("010", 8), ("0o10", 8), ("0b101", 5), ("1_000", 1000)],
)
def test_integer_syntax_like_strconv_base0(text: str, value: int) -> None:
    assert load(["--snapshot-count", text], ENV).snapshot_count == value


def test_int64_accepts_negative() -> None:
    assert load(["--quota-backend-bytes=-1"], ENV).quota_backend_bytes == -1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("100ms", 0.1), ("1h30m", 5400.0), ("1.5s", 1.5), ("0", 0.0), ("2h", 7200.0)],
)
def test_durations_are_float_seconds(text: str, seconds: float) -> None:
    cfg = load(["--experimental-watch-progress-notify-interval", text], ENV)
    assert cfg.experimental_watch_progress_notify_interval == pytest.approx(seconds)


def test_url_lists_sorted_like_etcd() -> None:
    cfg = load(
        [
            "--listen-client-urls",
            "http://127.0.0.2:2379,http://127.0.0.1:2379",
            "--advertise-client-urls",
            "https://[::1]:2379",
        ],
        ENV,
    )
    assert [str(u) for u in cfg.listen_client_urls] == [
        "http://127.0.0.1:2379",
        "http://127.0.0.2:2379",
    ]
    adv = cfg.advertise_client_urls[0]
    assert (adv.scheme, adv.hostname, adv.port, adv.is_tls) == ("https", "::1", "2379", True)


def test_list_flags() -> None:
    cfg = load(
        [
            "--cipher-suites",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_GCM_SHA256",
            "--host-whitelist",
            "b.example,a.example,b.example",
            "--cors",
            "http://b.example:80,http://a.example:80",
            "--log-outputs",
            "stderr",
        ],
        ENV,
    )
    assert cfg.cipher_suites == (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
    )
    assert cfg.host_whitelist == ("a.example", "b.example")
    assert cfg.cors == ("http://a.example:80", "http://b.example:80")
    assert cfg.log_outputs == ("stderr",)


def test_ignored_legacy_flags_accepted() -> None:
    assert load(["--v", "--snapshot=x"], ENV).name == "default"


def test_every_flag_has_a_field() -> None:
    cfg = load([], ENV)
    for spec in FLAGS:
        if spec.kind == "ignored" or spec.name == "version":
            continue
        assert hasattr(cfg, spec.field), spec.name


def test_parse_command_line_records_given_flags_once() -> None:
    cl = parse_command_line(["--name=a", "--data-dir", "d", "--name", "b"])
    assert cl.given == ["name", "data-dir"]
    assert cl.positional == []
