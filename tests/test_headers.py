"""Security headers: on every response, set-if-absent, HSTS only over HTTPS.

Cases: B24 (a header the app set is kept and never duplicated), B28 (no HSTS and no
``upgrade-insecure-requests`` over plain HTTP), B29 (the headers are on 500s and on asgisec's own
early refusals too), B22 (asgisec never adds a second ``Server``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from asgisec import (
    CorsConfig,
    HeadersConfig,
    HostsConfig,
    RateLimitConfig,
    RequestConfig,
    SecurityConfig,
    SecurityMiddleware,
)
from asgisec.headers import HeaderPolicy
from asgisec.ratelimit.memory import MemoryBackend
from tests.driver import Response, call, make_scope, run

DEFAULT_HTTP = {
    "x-content-type-options": "nosniff",
    "content-security-policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    ),
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}
HSTS = "strict-transport-security"
SECURITY_NAMES = (*DEFAULT_HTTP, HSTS)


class HeaderApp:
    """Answers with the given status and headers (names as given: any case)."""

    def __init__(self, headers: Sequence[tuple[str, str]] = (), status: int = 200) -> None:
        self.headers = [(k.encode(), v.encode()) for k, v in headers]
        self.status = status

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"{}"})


def _get(
    headers_config: HeadersConfig | None = None,
    app_headers: Sequence[tuple[str, str]] = (),
    scheme: str = "http",
) -> Response:
    config = SecurityConfig(headers=headers_config or HeadersConfig())
    return run(SecurityMiddleware(HeaderApp(app_headers), config), make_scope(scheme=scheme))


# --------------------------------------------------------------------------- the compiled blocks

BLOCKS: list[tuple[HeadersConfig, dict[str, str], str | None, str]] = [
    (HeadersConfig(), DEFAULT_HTTP, "max-age=31536000; includeSubDomains", "defaults"),
    (
        HeadersConfig(hsts_preload=True, hsts_include_subdomains=False, hsts_max_age=63072000),
        DEFAULT_HTTP,
        "max-age=63072000; preload",
        "hsts preload without subdomains",
    ),
    (HeadersConfig(hsts_max_age=0), DEFAULT_HTTP, None, "hsts disabled by max-age 0"),
    (
        HeadersConfig(
            csp_policy="",
            x_frame_options="",
            referrer_policy="",
            permissions_policy="",
            cross_origin_opener_policy="",
            cross_origin_resource_policy="",
            cache_control="",
        ),
        {"x-content-type-options": "nosniff"},
        "max-age=31536000; includeSubDomains",
        "every optional header disabled",
    ),
    (
        HeadersConfig(x_frame_options="sameorigin", csp_policy="default-src 'self'"),
        {
            **DEFAULT_HTTP,
            "x-frame-options": "SAMEORIGIN",
            "content-security-policy": "default-src 'self'",
        },
        "max-age=31536000; includeSubDomains",
        "custom values",
    ),
    (HeadersConfig(enable_security_headers=False), {}, None, "all disabled"),
]


@pytest.mark.parametrize(
    ("config", "http", "hsts"), [c[:3] for c in BLOCKS], ids=[c[3] for c in BLOCKS]
)
def test_compiled_blocks(config: HeadersConfig, http: dict[str, str], hsts: str | None) -> None:
    policy = HeaderPolicy(config)
    assert {k.decode(): v.decode() for k, v in policy.block(False)} == http
    expected_https = {**http, **({HSTS: hsts} if hsts else {})}
    assert {k.decode(): v.decode() for k, v in policy.block(True)} == expected_https
    assert all(isinstance(k, bytes) and k == k.lower() for k, _ in policy.block(True))


@pytest.mark.parametrize(
    ("config", "http", "hsts"), [c[:3] for c in BLOCKS], ids=[c[3] for c in BLOCKS]
)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_headers_on_app_responses(
    config: HeadersConfig, http: dict[str, str], hsts: str | None, scheme: str
) -> None:
    response = _get(config, scheme=scheme)
    for name in SECURITY_NAMES:
        expected = http.get(name)
        if name == HSTS:
            expected = hsts if scheme == "https" else None
        assert response.header(name) == expected, name


# --------------------------------------------------------------------------- B28


@pytest.mark.parametrize(
    ("scheme", "hsts"),
    [("http", False), ("https", True)],
    ids=["B28 no HSTS over http", "B28 counter-check HSTS over https"],
)
def test_b28_hsts_only_over_https(scheme: str, hsts: bool) -> None:
    response = _get(scheme=scheme)
    assert (response.header(HSTS) is not None) is hsts
    csp = response.header("content-security-policy") or ""
    assert "upgrade-insecure-requests" not in csp


# --------------------------------------------------------------------------- B24

SET_IF_ABSENT = [
    ([("X-Frame-Options", "SAMEORIGIN")], "x-frame-options", "SAMEORIGIN", "B24 XFO"),
    ([("cache-control", "max-age=60")], "cache-control", "max-age=60", "B24 cache-control"),
    (
        [("Content-Security-Policy", "default-src 'self'")],
        "content-security-policy",
        "default-src 'self'",
        "CSP",
    ),
    ([("REFERRER-POLICY", "no-referrer")], "referrer-policy", "no-referrer", "upper-case name"),
    ([("strict-transport-security", "max-age=60")], HSTS, "max-age=60", "HSTS"),
    ([("x-content-type-options", "nosniff")], "x-content-type-options", "nosniff", "nosniff"),
    ([("x-request-id", "from-the-app")], "x-request-id", "from-the-app", "request id"),
    ([("server", "Secure")], "server", "Secure", "B22 one Server header"),
]


@pytest.mark.parametrize(
    ("app_headers", "name", "value"),
    [c[:3] for c in SET_IF_ABSENT],
    ids=[c[3] for c in SET_IF_ABSENT],
)
def test_b24_app_header_is_kept_never_duplicated(
    app_headers: list[tuple[str, str]], name: str, value: str
) -> None:
    """Set-if-absent: the app's own value wins and appears exactly once (``header`` asserts)."""
    response = _get(app_headers=app_headers, scheme="https")
    assert response.header(name) == value
    for other in SECURITY_NAMES:  # the rest of the block is still added
        if other != name:
            assert response.header(other) is not None, other


def test_b24_embed_route() -> None:
    """B24 as reported: baseline SAMEORIGIN, the route says DENY and no-store."""
    config = HeadersConfig(x_frame_options="SAMEORIGIN")
    response = _get(config, [("X-Frame-Options", "DENY"), ("Cache-Control", "no-store")])
    assert response.headers_named("x-frame-options") == ["DENY"]
    assert response.headers_named("cache-control") == ["no-store"]


def test_app_headers_keep_their_order_and_repeats() -> None:
    """asgisec appends; it never reorders or folds the app's own headers."""
    app_headers = [("set-cookie", "a=1"), ("set-cookie", "b=2"), ("content-type", "text/plain")]
    response = _get(app_headers=app_headers)
    assert response.raw_headers[:3] == [(k.encode(), v.encode()) for k, v in app_headers]


def test_no_server_header_added() -> None:
    """B22: asgisec adds no Server header of its own (the server adds at most one)."""
    assert _get().headers_named("server") == []


# --------------------------------------------------------------------------- B29


async def _boom(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


def _refusal_scenarios() -> list[tuple[str, SecurityConfig, dict[str, Any], int]]:
    hosts = HostsConfig(trusted_hosts=("api.example",))
    cors = CorsConfig(allowed_origins=("https://app.example",))
    return [
        (
            "untrusted host: 400",
            SecurityConfig(hosts=hosts),
            {"headers": [("host", "evil.com")]},
            400,
        ),
        (
            "bad content-length: 400",
            SecurityConfig(hosts=hosts),
            {"method": "POST", "headers": [("content-length", "x")]},
            400,
        ),
        (
            "B29 early refusal: 403 preflight",
            SecurityConfig(hosts=hosts, cors=cors),
            {
                "method": "OPTIONS",
                "headers": [
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "POST"),
                ],
            },
            403,
        ),
        (
            "declared too large: 413",
            SecurityConfig(hosts=hosts, request=RequestConfig(max_request_size=10)),
            {"method": "POST", "headers": [("content-length", "11")]},
            413,
        ),
    ]


SCENARIOS = _refusal_scenarios()


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    ("config", "request_kwargs", "status"),
    [s[1:] for s in SCENARIOS],
    ids=[s[0] for s in SCENARIOS],
)
async def test_b29_security_headers_on_every_refusal(
    config: SecurityConfig, request_kwargs: dict[str, Any], status: int, scheme: str
) -> None:
    app = SecurityMiddleware(_boom, config)
    scope = make_scope(scheme=scheme, **request_kwargs)
    response = await call(app, scope)
    assert response.status == status
    _assert_full_block(response, scheme)


def _assert_full_block(response: Response, scheme: str) -> None:
    for name, value in DEFAULT_HTTP.items():
        assert response.header(name) == value, name
    assert (response.header(HSTS) is not None) is (scheme == "https")
    assert response.header("x-request-id")


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_b29_security_headers_on_a_500(scheme: str) -> None:
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    app = SecurityMiddleware(_boom, SecurityConfig())
    with pytest.raises(RuntimeError, match="boom"):
        await app(make_scope(scheme=scheme, path="/boom"), receive, send)
    assert sent[0]["status"] == 500
    response = Response(500, list(sent[0]["headers"]), sent[1]["body"])
    _assert_full_block(response, scheme)


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_b29_security_headers_on_a_429(scheme: str) -> None:
    config = SecurityConfig(rate_limit=RateLimitConfig(rate_limit_default="1/minute"))
    app = SecurityMiddleware(HeaderApp(), config, backend=MemoryBackend(clock=lambda: 0))
    assert (await call(app, make_scope(scheme=scheme))).status == 200
    response = await call(app, make_scope(scheme=scheme))
    assert response.status == 429
    _assert_full_block(response, scheme)


def test_disabled_headers_leave_refusals_bare_but_identified() -> None:
    config = SecurityConfig(
        headers=HeadersConfig(enable_security_headers=False),
        hosts=HostsConfig(trusted_hosts=("api.example",)),
    )
    response = run(SecurityMiddleware(HeaderApp(), config), make_scope(host="evil.com"))
    assert response.status == 400
    for name in SECURITY_NAMES:
        assert response.header(name) is None
    assert response.header("x-request-id")
