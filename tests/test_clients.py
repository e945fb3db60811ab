"""Client identity: forwarded headers are believed only from trusted proxies (S2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgisec import RateLimitConfig, SecurityConfig, secure
from asgisec.clients import ClientResolver, rate_limit_identity
from asgisec.config import ProxyConfig

from .driver import make_scope, run

XFF = "x-forwarded-for"


@pytest.mark.parametrize(
    ("proxies", "peer", "headers", "expected"),
    [
        ((), "198.51.100.9", [b"203.0.113.7"], "198.51.100.9"),
        (("10.0.0.0/8",), "198.51.100.9", [b"203.0.113.7"], "198.51.100.9"),
        (("10.0.0.0/8",), "10.0.0.1", [b"203.0.113.7"], "203.0.113.7"),
        (("10.0.0.0/8",), "10.0.0.1", [b"6.6.6.6, 203.0.113.7"], "203.0.113.7"),
        (("10.0.0.0/8",), "10.0.0.1", [b"6.6.6.6", b"203.0.113.7, 10.0.0.2"], "203.0.113.7"),
        (("10.0.0.0/8",), "10.0.0.1", [b"10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        (("10.0.0.0/8",), "10.0.0.1", [b"garbage, 10.0.0.2"], "10.0.0.2"),
        (("10.0.0.0/8",), "10.0.0.1", [b"\xff\xfe, ;;"], "10.0.0.1"),
        (("10.0.0.0/8",), "10.0.0.1", None, "10.0.0.1"),
        (("10.0.0.0/8",), "10.0.0.1", [b"[2001:db8::1]:4711"], "2001:db8::1"),
        (("10.0.0.0/8",), "10.0.0.1", [b"203.0.113.7:5555"], "203.0.113.7"),
        (("::1",), "::1", [b"::ffff:203.0.113.7"], "203.0.113.7"),
    ],
    ids=[
        "no-proxies-header-ignored",
        "untrusted-peer-header-ignored",
        "trusted-proxy-header-used",
        "client-prefix-spoof-ignored",
        "several-header-lines-joined",
        "all-trusted-takes-leftmost",
        "garbage-hop-stops-at-last-understood",
        "undecodable-garbage-falls-back-to-peer",
        "no-header",
        "bracketed-ipv6-with-port",
        "ipv4-with-port",
        "ipv4-mapped-ipv6",
    ],
)
def test_x_forwarded_for(
    proxies: tuple[str, ...], peer: str, headers: list[bytes] | None, expected: str
) -> None:
    assert ClientResolver(proxies).resolve(peer, headers) == expected


def test_forwarded_header_rfc7239() -> None:
    resolver = ClientResolver(("10.0.0.0/8",), header="forwarded")
    value = [b'for=6.6.6.6, for="[2001:db8::7]:99";proto=https, for=10.0.0.9']
    assert resolver.resolve("10.0.0.1", value) == "2001:db8::7"


@given(st.lists(st.binary(max_size=40), max_size=5), st.sampled_from(["10.0.0.1", "1.1.1.1"]))
def test_resolver_is_total(values: list[bytes], peer: str) -> None:
    """Any bytes in the header: an address string comes back, nothing is raised."""
    for header in ("x-forwarded-for", "forwarded"):
        result = ClientResolver(("10.0.0.0/8",), header=header).resolve(peer, values)
        assert isinstance(result, str)
        assert result


@pytest.mark.parametrize(
    ("address", "prefix", "expected"),
    [
        ("203.0.113.7", 64, "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", 128, "2001:db8:1:2:bbbb::9"),
        ("2001:db8:1:2:bbbb::9", 48, "2001:db8:1::/48"),
        ("unknown", 64, "unknown"),
    ],
)
def test_ipv6_clients_share_a_bucket_per_prefix(address: str, prefix: int, expected: str) -> None:
    assert rate_limit_identity(address, prefix) == expected


async def _ok(scope: object, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


def _limited(proxies: tuple[str, ...]) -> object:
    config = SecurityConfig(
        proxies=ProxyConfig(trusted_proxies=proxies),
        rate_limit=RateLimitConfig(rate_limit_default="2/minute"),
    )
    return secure(_ok, config)


def test_s2a_clients_behind_a_trusted_proxy_get_their_own_buckets() -> None:
    app = _limited(("10.0.0.0/8",))
    statuses = [
        run(app, make_scope(headers=[(XFF, ip)], client=("10.0.0.1", 1))).status
        for ip in ("203.0.113.7", "203.0.113.8", "203.0.113.7")
    ]
    assert statuses == [200, 200, 200]


def test_s2b_a_direct_client_cannot_pick_its_identity() -> None:
    app = _limited(())
    spoofs = [
        (XFF, "1.1.1.1"),
        ("x_forwarded_for", "2.2.2.2"),
        ("x-real-ip", "3.3.3.3"),
        (XFF, "4.4.4.4"),
        ("forwarded", "for=5.5.5.5"),
        (XFF, "6.6.6.6"),
    ]
    statuses = [
        run(app, make_scope(headers=[spoof], client=("198.51.100.9", 1))).status for spoof in spoofs
    ]
    assert statuses == [200, 200, 429, 429, 429, 429]


def test_s17b_one_ipv6_slash64_is_one_client() -> None:
    app = _limited(())
    statuses = [
        run(app, make_scope(client=(f"2001:db8:1:2::{i:x}", 1))).status for i in range(1, 6)
    ]
    assert statuses == [200, 200, 429, 429, 429]
