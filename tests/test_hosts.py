"""Trusted hosts: the strict Host parser, pattern normalisation and the policy.

Cases: B13 (IPv6 hosts in either spelling), B14 (a port in a pattern), B19 (the host part: a
Host that is not exactly ``name[:port]`` is refused, never guessed at).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgisec import ConfigError, HostsConfig, SecurityConfig, SecurityMiddleware
from asgisec.hosts import HostPolicy, normalise_host_pattern, parse_host
from tests.driver import make_scope, run

LONGEST_NAME = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 characters
TOO_LONG_NAME = LONGEST_NAME + "d"

# --------------------------------------------------------------------------- the parser

PARSED = [
    (b"api.example", "api.example", "name"),
    (b"API.Example", "api.example", "case-insensitive"),
    (b"api.example:8000", "api.example", "port ignored"),
    (b"api.example.", "api.example", "trailing dot ignored"),
    (b"api.example.:443", "api.example", "trailing dot and port"),
    (b"internal_svc", "internal_svc", "underscore in a service name"),
    (b"127.0.0.1:8000", "127.0.0.1", "ipv4 with port"),
    (b"[::1]", "[::1]", "ipv6"),
    (b"[::1]:8000", "[::1]", "B13 ipv6 with port"),
    (b"[0:0:0:0:0:0:0:1]", "[::1]", "B13 ipv6 long spelling"),
    (b"[2001:DB8::A]:443", "[2001:db8::a]", "ipv6 upper case"),
    (b"[::ffff:192.0.2.1]", "[::ffff:c000:201]", "ipv4-mapped ipv6"),
    (LONGEST_NAME.encode(), LONGEST_NAME, "253 characters"),
]

MALFORMED = [
    (b"", "empty"),
    (b"a@b", "userinfo"),
    (b"a@evil.com", "B19 userinfo"),
    (b"api.example@evil.com", "B19 userinfo after the name"),
    (b"api.example/elsewhere", "B19 path"),
    (b"api.example?x", "query"),
    (b"api.example#x", "fragment"),
    (b"http://api.example", "scheme"),
    (b"[::1]evil", "junk after the ipv6 literal"),
    (b"[::1]:", "empty port after ipv6"),
    (b"[::1", "unclosed bracket"),
    (b"::1", "ipv6 without brackets"),
    (b"[fe80::1%25eth0]", "ipv6 zone identifier"),
    (b"[192.0.2.1]", "ipv4 in brackets"),
    (b"[evil.com]", "name in brackets"),
    (b"api.example:", "empty port"),
    (b"api.example:http", "named port"),
    (b"api.example:65536", "port out of range"),
    (b"api.example:000080", "port of six digits"),
    (b"api.example:-1", "negative port"),
    (b"api.example:80:80", "two ports"),
    (b"api..example", "empty label"),
    (b".", "a dot alone"),
    (b".api.example", "leading dot"),
    (b"api.example..", "two trailing dots"),
    (b"api example", "space"),
    (b" api.example", "leading whitespace"),
    (b"api.example\r\nX-Evil: 1", "CRLF"),
    (b"api.example\x00", "NUL"),
    (b"\xc3\xa9xample.com", "non-ascii"),
    (b"*.example", "wildcard as a host"),
    (b"a" * 64 + b".com", "label over 63"),
    (TOO_LONG_NAME.encode(), "name over 253"),
]


@pytest.mark.parametrize(("raw", "expected"), [c[:2] for c in PARSED], ids=[c[2] for c in PARSED])
def test_parse_host_canonical_form(raw: bytes, expected: str) -> None:
    assert parse_host(raw) == expected


@pytest.mark.parametrize("raw", [c[0] for c in MALFORMED], ids=[c[1] for c in MALFORMED])
def test_parse_host_refuses_malformed(raw: bytes) -> None:
    assert parse_host(raw) is None


def _is_canonical(host: str) -> bool:
    if host.startswith("["):
        return host.endswith("]") and f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]" == host
    return host.isascii() and host == host.lower() and ":" not in host and not host.endswith(".")


# Host-shaped text reaches the interesting branches far more often than random bytes.
host_like = st.text(alphabet="[]:.%@/ aZ09_-fe", max_size=40).map(str.encode)


@given(st.one_of(st.binary(max_size=300), host_like))
def test_parse_host_is_total(raw: bytes) -> None:
    """Totality: whatever the bytes, a canonical host or None, never an exception."""
    host = parse_host(raw)
    if host is not None:
        assert _is_canonical(host)
        assert parse_host(host.encode()) == host  # canonical is a fixed point


label = st.from_regex(r"[a-z0-9_][a-z0-9_-]{0,20}", fullmatch=True)
names = st.lists(label, min_size=1, max_size=5).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda a: f"[{a.compressed}]")
canonical_hosts = st.one_of(names, ipv4, ipv6)


@given(canonical_hosts, st.integers(1, 65535), st.booleans(), st.booleans())
def test_parse_host_round_trips(host: str, port: int, with_port: bool, upper: bool) -> None:
    """A canonical host, with any port and in any case, parses back to itself."""
    raw = host.upper() if upper else host
    if with_port:
        raw += f":{port}"
    assert parse_host(raw.encode()) == host
    if not host.startswith("["):
        assert parse_host((host + "." + (f":{port}" if with_port else "")).encode()) == host


# --------------------------------------------------------------------------- patterns

NORMALISED = [
    ("api.example", "api.example", "name"),
    ("  API.Example.  ", "api.example", "case, whitespace and trailing dot"),
    ("*.Example.com", "*.example.com", "subdomain wildcard"),
    ("*", "*", "any host"),
    ("::1", "[::1]", "B13 bare ipv6"),
    ("[::1]", "[::1]", "B13 bracketed ipv6"),
    ("[0:0::1]", "[::1]", "ipv6 long spelling"),
    ("192.0.2.1", "192.0.2.1", "ipv4"),
]

REFUSED_PATTERNS = [
    ("localhost:8000", "B14 name with port"),
    ("api.example:443", "B14 name with port 443"),
    ("[::1]:8000", "B14 ipv6 with port"),
    ("https://api.example", "scheme"),
    ("api.example/admin", "path"),
    ("user@api.example", "userinfo"),
    ("", "empty"),
    ("*example.com", "wildcard not a whole label"),
    ("api.*.example", "wildcard inside"),
    ("*.*.example", "two wildcards"),
    ("*.", "wildcard of nothing"),
    ("fe80::1%eth0", "zone identifier"),
    ("exa mple.com", "space"),
]


@pytest.mark.parametrize(
    ("pattern", "expected"), [c[:2] for c in NORMALISED], ids=[c[2] for c in NORMALISED]
)
def test_pattern_normalisation(pattern: str, expected: str) -> None:
    assert normalise_host_pattern(pattern) == expected
    assert HostsConfig(trusted_hosts=(pattern,)).trusted_hosts == (expected,)


@pytest.mark.parametrize(
    "pattern", [c[0] for c in REFUSED_PATTERNS], ids=[c[1] for c in REFUSED_PATTERNS]
)
def test_refused_pattern_is_a_startup_error(pattern: str) -> None:
    assert normalise_host_pattern(pattern) is None
    with pytest.raises(ConfigError) as info:
        HostsConfig(trusted_hosts=(pattern,))
    assert info.value.variable == "TRUSTED_HOSTS"
    assert info.value.value == pattern


def test_b14_port_in_pattern_explains_that_ports_are_ignored() -> None:
    """B14: ``localhost:8000`` would never match; the error says why and what to write."""
    with pytest.raises(ConfigError) as info:
        SecurityConfig.from_env({"TRUSTED_HOSTS": "localhost:8000"}, env_file=None)
    message = str(info.value)
    assert "TRUSTED_HOSTS" in message
    assert "localhost:8000" in message
    assert "port" in message
    assert "'localhost'" in message


@given(st.one_of(st.text(max_size=60), st.text(alphabet="*[]:.%@/ aZ09_-fe", max_size=30)))
def test_normalise_host_pattern_is_total(pattern: str) -> None:
    """Any text is a canonical pattern or None; a canonical pattern matches real Host values."""
    normal = normalise_host_pattern(pattern)
    if normal is None:
        return
    assert normalise_host_pattern(normal) == normal
    policy = HostPolicy([normal])
    if normal == "*":
        assert policy.allow_any
    elif normal.startswith("*."):
        sub = "x" + normal[1:]
        assert parse_host(sub.encode()) == sub
        assert policy.allows(sub)
        assert not policy.allows(normal[2:])  # subdomains only, never the apex
    else:
        assert parse_host(normal.encode()) == normal
        assert policy.allows(parse_host(normal.encode() + b":8443"))


# --------------------------------------------------------------------------- the policy

POLICY = [
    (("api.example",), "api.example", True, "exact"),
    (("api.example",), "API.EXAMPLE.:8443", True, "case, trailing dot and port"),
    (("api.example",), "evil.com", False, "other name"),
    (("api.example",), "api.example.evil.com", False, "suffix of an attacker's name"),
    (("api.example",), "sub.api.example", False, "exact does not cover subdomains"),
    (("*.example.com",), "a.example.com", True, "subdomain"),
    (("*.example.com",), "a.b.example.com", True, "nested subdomain"),
    (("*.example.com",), "example.com", False, "wildcard excludes the apex"),
    (("*.example.com",), "evilexample.com", False, "wildcard is label-aligned"),
    (("*.example.com",), "example.com.evil", False, "wildcard is a suffix"),
    (("[::1]",), "[::1]:8000", True, "B13 bracketed pattern"),
    (("::1",), "[::1]:8000", True, "B13 bare pattern"),
    (("::1",), "[0:0::1]", True, "B13 other spelling in the Host"),
    (("::1",), "[::2]", False, "other ipv6"),
    (("*",), "anything.example", True, "star allows any well-formed host"),
    ((), "anything.example", True, "empty allows any well-formed host"),
    (("*",), "a@evil.com", False, "star still refuses a malformed host"),
    ((), "api.example/x", False, "empty still refuses a malformed host"),
]


@pytest.mark.parametrize(
    ("patterns", "host", "allowed"), [c[:3] for c in POLICY], ids=[c[3] for c in POLICY]
)
def test_host_policy(patterns: tuple[str, ...], host: str, allowed: bool) -> None:
    assert HostPolicy(patterns).allows(parse_host(host.encode())) is allowed


@pytest.mark.parametrize(
    ("patterns", "configured"),
    [((), 0), (("*",), 0), (("a.example", "*.b.example", "::1"), 3)],
    ids=["empty", "star", "three"],
)
def test_configured_counts_enforced_patterns(patterns: tuple[str, ...], configured: int) -> None:
    assert HostPolicy(patterns).configured == configured


# --------------------------------------------------------------------------- through the middleware


class RecordingApp:
    """A raw ASGI app answering 200 and remembering whether it ran."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _middleware(trusted: tuple[str, ...]) -> tuple[SecurityMiddleware, RecordingApp]:
    app = RecordingApp()
    config = SecurityConfig(hosts=HostsConfig(trusted_hosts=trusted))
    return SecurityMiddleware(app, config), app


REQUESTS: list[tuple[tuple[str, ...], list[tuple[str, str]] | None, int, str]] = [
    (("api.example",), [("host", "api.example")], 200, "trusted"),
    (("api.example",), [("host", "api.example:8443")], 200, "trusted with port"),
    (("[::1]",), [("host", "[::1]:8000")], 200, "B13 ipv6"),
    (("::1",), [("host", "[::1]:8000")], 200, "B13 bare ipv6 pattern"),
    (("api.example",), [("host", "evil.com")], 400, "B19 untrusted"),
    (("api.example",), [("host", "api.example/elsewhere")], 400, "B19 path in host"),
    (("api.example",), [("host", "a@evil.com")], 400, "B19 userinfo in host"),
    (("api.example",), [("host", "api.example@evil.com")], 400, "B19 trusted userinfo"),
    (("api.example",), [], 400, "missing host refused when hosts are configured"),
    ((), [], 200, "missing host allowed when hosts are empty"),
    ((), [("host", "whatever.example")], 200, "any host when hosts are empty"),
    ((), [("host", "a@evil.com")], 400, "malformed refused even when hosts are empty"),
    (("*",), [("host", "[::1]evil")], 400, "malformed refused even with star"),
    (
        ("api.example",),
        [("host", "api.example"), ("host", "evil.com")],
        400,
        "repeated host",
    ),
    ((), [("host", "a.example"), ("host", "b.example")], 400, "repeated host with empty hosts"),
]


@pytest.mark.parametrize(
    ("trusted", "headers", "status"), [c[:3] for c in REQUESTS], ids=[c[3] for c in REQUESTS]
)
def test_trusted_host_check(
    trusted: tuple[str, ...], headers: list[tuple[str, str]], status: int
) -> None:
    middleware, app = _middleware(trusted)
    response = run(middleware, make_scope(headers=headers, host=None))
    assert response.status == status
    if status == 400:
        assert app.calls == 0, "the app must never see an untrusted host"
        assert response.json()["error"] == "invalid_host"
        assert middleware.counters.blocked["invalid_host"] == 1
    else:
        assert app.calls == 1


def test_empty_trusted_hosts_warns_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    _middleware(())
    assert "TRUSTED_HOSTS is empty" in caplog.text
    caplog.clear()
    _middleware(("api.example",))
    assert "TRUSTED_HOSTS" not in caplog.text
