"""Value parsers that behave like the Go code etcd's flags go through.

Each parser takes the text a user typed and returns a Python value, or raises
:class:`ValueError` whose text is what Go would put after ``invalid value "x" for flag
-name: `` (``parse error``, ``value out of range``, ``invalid value``, a URL message...).

Sources: Go ``flag`` (bool/int/uint/duration values map strconv errors to
"parse error"/"value out of range"), ``strconv.ParseInt(s, 0, 64)`` (base prefixes
0x/0o/0b, a leading 0 means octal, ``_`` between digits), ``time.ParseDuration``,
etcd ``client/pkg/types.NewURLs`` (scheme, ``host:port``, no path; result sorted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

ERR_PARSE = "parse error"
ERR_RANGE = "value out of range"

MAX_INT64 = (1 << 63) - 1
MAX_UINT64 = (1 << 64) - 1
MAX_UINT32 = (1 << 32) - 1

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def go_quote(text: str) -> str:
    """Go's ``%q`` for a string (strconv.Quote): printable runes kept, others escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(ERR_PARSE)


_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _parse_magnitude(text: str) -> int:
    """Unsigned part of strconv.ParseUint(text, 0, 64) (base from prefix)."""
    s = text
    base = 10
    if len(s) >= 2 and s[0] == "0":
        p = s[1].lower()
        if p == "x":
            base, s = 16, s[2:]
        elif p == "o":
            base, s = 8, s[2:]
        elif p == "b":
            base, s = 2, s[2:]
        else:
            base, s = 8, s[1:]
    prefixed = s != text
    if not s:
        raise ValueError(ERR_PARSE)
    # Underscores are allowed only between digits (or right after a base prefix).
    if "_" in s:
        if s.endswith("_") or "__" in s or (s.startswith("_") and not prefixed):
            raise ValueError(ERR_PARSE)
        s = s.replace("_", "")
        if not s:
            raise ValueError(ERR_PARSE)
    allowed = _DIGITS[base]
    if any(c not in allowed for c in s):
        raise ValueError(ERR_PARSE)
    return int(s, base)


def parse_int(text: str, bits: int = 64) -> int:
    """strconv.ParseInt(text, 0, bits) as Go's flag.IntVar/Int64Var uses it."""
    neg = False
    s = text
    if s[:1] in ("+", "-"):
        neg, s = s[0] == "-", s[1:]
    value = _parse_magnitude(s)
    if neg:
        value = -value
    limit = 1 << (bits - 1)
    if value >= limit or value < -limit:
        raise ValueError(ERR_RANGE)
    return value


def parse_uint(text: str, bits: int = 64) -> int:
    """strconv.ParseUint(text, 0, bits) as Go's flag.UintVar/Uint64Var uses it."""
    value = _parse_magnitude(text)
    if value >= 1 << bits:
        raise ValueError(ERR_RANGE)
    return value


def parse_uint32_etcd(text: str) -> int:
    """etcd's ``flags.Uint32Value`` returns the raw strconv error text."""
    try:
        return parse_uint(text, 32)
    except ValueError as e:
        reason = "value out of range" if str(e) == ERR_RANGE else "invalid syntax"
        raise ValueError(f'strconv.ParseUint: parsing "{text}": {reason}') from None


_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NUM = re.compile(r"(\d*)(?:\.(\d*))?")


def parse_go_duration_ns(text: str) -> int:
    """time.ParseDuration, returning integer nanoseconds; ValueError with Go's text."""
    orig = text
    s = text
    neg = False
    if s[:1] in ("+", "-"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{orig}"')
    total = 0
    while s:
        m = _NUM.match(s)
        assert m is not None  # the pattern matches the empty string
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{orig}"')
        s = s[m.end() :]
        i = 0
        while i < len(s) and s[i] != "." and not s[i].isdigit():
            i += 1
        unit = s[:i]
        s = s[i:]
        if not unit:
            raise ValueError(f'time: missing unit in duration "{orig}"')
        if unit not in _UNITS_NS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{orig}"')
        scale = _UNITS_NS[unit]
        value = int(whole or "0") * scale
        if frac:
            value += int(frac) * scale // (10 ** len(frac))
        total += value
        if total > MAX_INT64:
            raise ValueError(f'time: invalid duration "{orig}"')
    return -total if neg else total


def parse_duration_flag(text: str) -> float:
    """Go flag.DurationVar: any ParseDuration failure is reported as 'parse error'."""
    try:
        return parse_go_duration_ns(text) / 1e9
    except ValueError:
        raise ValueError(ERR_PARSE) from None


def format_go_duration(seconds: float) -> str:
    """time.Duration.String() (enough for help text and error messages)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, scale in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if ns >= scale:
                whole, rest = divmod(ns, scale)
                frac = f"{rest:0{len(str(scale)) - 1}d}".rstrip("0") if scale > 1 else ""
                return f"{sign}{whole}{'.' + frac if frac else ''}{unit}"
    h, rem = divmod(ns, 3_600_000_000_000)
    m, rem = divmod(rem, 60_000_000_000)
    sec, sub = divmod(rem, 1_000_000_000)
    frac = f"{sub:09d}".rstrip("0")
    out = f"{sec}{'.' + frac if frac else ''}s"
    if h or m:
        out = f"{m}m" + out
    if h:
        out = f"{h}h" + out
    return sign + out


@dataclass(frozen=True, slots=True)
class URL:
    """A URL as etcd accepts it for listen/advertise flags: scheme://host:port, no path.

    ``host`` is the ``host:port`` part exactly as given (``[::1]:2379`` keeps brackets);
    ``hostname`` has brackets removed; ``port`` may be ``""`` (Go allows ``host:``).
    """

    scheme: str
    host: str

    @property
    def hostname(self) -> str:
        return split_host_port(self.host)[0]

    @property
    def port(self) -> str:
        return split_host_port(self.host)[1]

    @property
    def is_tls(self) -> bool:
        return self.scheme in ("https", "unixs")

    @property
    def is_unix(self) -> bool:
        return self.scheme in ("unix", "unixs")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}"


def split_host_port(hostport: str) -> tuple[str, str]:
    """net.SplitHostPort; ValueError with Go-like text."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError(f"address {hostport}: missing ']' in address")
        rest = hostport[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"address {hostport}: missing port in address")
        if ":" in rest[1:]:
            raise ValueError(f"address {hostport}: too many colons in address")
        return hostport[1:end], rest[1:]
    i = hostport.rfind(":")
    if i < 0:
        raise ValueError(f"address {hostport}: missing port in address")
    host = hostport[:i]
    if ":" in host:
        raise ValueError(f"address {hostport}: too many colons in address")
    return host, hostport[i + 1 :]


_SCHEMES = ("http", "https", "unix", "unixs")


def parse_url(text: str) -> URL:
    """One URL of types.NewURLs (input already split on commas)."""
    txt = text.strip()
    parts = urlsplit(txt)
    scheme = parts.scheme
    if scheme not in _SCHEMES:
        raise ValueError(f"URL scheme must be http, https, unix, or unixs: {txt}")
    try:
        split_host_port(parts.netloc)
    except ValueError:
        raise ValueError(f'URL address does not have the form "host:port": {txt}') from None
    if parts.path:
        raise ValueError(f"URL must not contain a path: {txt}")
    return URL(scheme=scheme, host=parts.netloc)


def parse_urls(text: str) -> tuple[URL, ...]:
    """types.NewURLs(strings.Split(text, ",")): validated and sorted by string form."""
    urls = [parse_url(t) for t in text.split(",")]
    urls.sort(key=str)
    return tuple(urls)


def parse_urls_map(text: str) -> dict[str, tuple[URL, ...]]:
    """types.NewURLsMap for ``--initial-cluster``: ``name=url,name=url``.

    A name given several times collects all its URLs; entries without ``=`` get an empty
    URL, which then fails URL validation as etcd's does.
    """
    raw: dict[str, list[str]] = {}
    for item in text.split(","):
        if not item:
            continue
        name, _, value = item.partition("=")
        raw.setdefault(name, []).append(value)
    return {name: parse_urls(",".join(vals)) for name, vals in raw.items()}


def urls_map_string(m: dict[str, tuple[URL, ...]]) -> str:
    """types.URLsMap.String(): ``name=url`` pairs sorted."""
    pairs = sorted(f"{name}={u}" for name, urls in m.items() for u in urls)
    return ",".join(pairs)
