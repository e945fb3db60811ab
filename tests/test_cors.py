"""CORS: exact origins, preflights answered by asgisec, and grants on error responses.

Cases: B1 (a 500 keeps its CORS grant, so a crash does not read as a CORS failure), B2 (no
prefix/regex-style origin bypass), B4 (``*`` with credentials is a start-up error), B6
(``Vary: Origin`` on every response), B8 (the preflight policy: 204 with the configured lists),
B9 (preflights never reach the app or the rate limiter; 429s keep the grant), B10 (an origin
with a trailing slash is a start-up error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgisec import (
    ConfigError,
    CorsConfig,
    HostsConfig,
    RateLimitConfig,
    RequestConfig,
    SecurityConfig,
    SecurityMiddleware,
)
from asgisec.config import normalise_origin
from asgisec.cors import CorsPolicy
from asgisec.ratelimit.memory import MemoryBackend
from tests.driver import Response, call, make_scope, run

APP = "https://app.example"


class App:
    """A raw ASGI app that counts its calls; ``/boom`` raises, ``/api/*`` requires auth."""

    def __init__(self, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.calls = 0
        self.headers = list(headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        status = 200
        if scope["path"].startswith("/api/") and not any(
            name == b"authorization" for name, _ in scope["headers"]
        ):
            status = 401
        await send({"type": "http.response.start", "status": status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"{}"})


def _middleware(
    app: App | None = None, backend: MemoryBackend | None = None, **cors: Any
) -> tuple[SecurityMiddleware, App]:
    app = app or App()
    cors.setdefault("allowed_origins", (APP,))
    config = SecurityConfig(
        hosts=HostsConfig(trusted_hosts=("api.example",)),
        cors=CorsConfig(**cors),
        rate_limit=RateLimitConfig(rate_limit_default="none"),
    )
    return SecurityMiddleware(app, config, backend=backend), app


def _vary(response: Response) -> set[str]:
    return {
        token.strip().lower()
        for value in response.headers_named("vary")
        for token in value.split(",")
    }


def _cors_headers(response: Response) -> list[str]:
    return [
        name.decode().lower()
        for name, _ in response.raw_headers
        if name.lower().startswith(b"access-control-")
    ]


def preflight(
    origin: str = APP, method: str = "POST", request_headers: str | None = None, path: str = "/"
) -> dict[str, Any]:
    headers = [("origin", origin), ("access-control-request-method", method)]
    if request_headers is not None:
        headers.append(("access-control-request-headers", request_headers))
    return make_scope("OPTIONS", path, headers)


# --------------------------------------------------------------------------- B2: exact matching

NOT_ALLOWED = [
    ("https://www.example.org.evil.com", "B2 allowed origin as a prefix"),
    ("https://app.example.evil.com", "B2 allowed host as a prefix"),
    ("https://evil.com.app.example", "allowed host as a suffix"),
    ("https://appxexample", "B2 unescaped dot"),
    ("https://sub.app.example", "subdomain"),
    ("http://app.example", "other scheme"),
    ("https://app.example:8443", "other port"),
    ("https://app.example.", "trailing dot"),
    ("https://app.example/", "trailing slash"),
    ("https://app.example/path", "path"),
    ("https://user@app.example", "userinfo"),
    ("https://app.example, https://evil.com", "a list"),
    ("null", "null origin"),
    ("", "empty"),
]


@pytest.mark.parametrize("origin", [c[0] for c in NOT_ALLOWED], ids=[c[1] for c in NOT_ALLOWED])
def test_b2_only_the_exact_origin_is_granted(origin: str) -> None:
    middleware, _ = _middleware(allowed_origins=(APP, "https://www.example.org"))
    response = run(middleware, make_scope(headers=[("origin", origin)]))
    assert response.status == 200
    assert _cors_headers(response) == []
    assert "origin" in _vary(response)


@pytest.mark.parametrize("origin", ["null", "https://evil.example"], ids=["null", "any other"])
def test_disallowed_origin_preflight_gets_403_and_no_grant(origin: str) -> None:
    middleware, app = _middleware()
    response = run(middleware, preflight(origin))
    assert response.status == 403
    assert response.json()["error"] == "cors"
    assert _cors_headers(response) == []
    assert "origin" in _vary(response)
    assert app.calls == 0
    assert middleware.counters.blocked["cors"] == 1


# --------------------------------------------------------------------------- B4: star


def test_b4_star_with_credentials_is_a_startup_error() -> None:
    with pytest.raises(ConfigError) as info:
        CorsConfig(allowed_origins=("*",), allow_credentials=True)
    assert info.value.variable == "ALLOWED_ORIGINS"
    assert "credentials" in info.value.expected.lower()


@pytest.mark.parametrize("scope_kind", ["preflight", "actual"])
def test_star_echoes_the_exact_origin_without_credentials(scope_kind: str) -> None:
    middleware, _ = _middleware(allowed_origins=("*",))
    scope = (
        preflight("https://evil.example")
        if scope_kind == "preflight"
        else make_scope(headers=[("origin", "https://evil.example")])
    )
    response = run(middleware, scope)
    assert response.header("access-control-allow-origin") == "https://evil.example"
    assert response.header("access-control-allow-credentials") is None
    assert "origin" in _vary(response)


def test_star_never_grants_null() -> None:
    middleware, _ = _middleware(allowed_origins=("*",))
    assert _cors_headers(run(middleware, make_scope(headers=[("origin", "null")]))) == []


# --------------------------------------------------------------------------- B10: origin syntax

BAD_ORIGINS = [
    ("https://app.example/", "B10 trailing slash"),
    ("https://app.example/app", "path"),
    ("app.example", "no scheme"),
    ("ftp://app.example", "other scheme"),
    ("https://user@app.example", "userinfo"),
    ("https://app.example?x=1", "query"),
    ("https://app.example:0", "port zero"),
    ("https://app.example:70000", "port out of range"),
    ("https://*.app.example", "wildcard"),
    ("null", "null"),
    ("", "empty"),
]


@pytest.mark.parametrize("origin", [c[0] for c in BAD_ORIGINS], ids=[c[1] for c in BAD_ORIGINS])
def test_b10_malformed_origin_is_a_startup_error(origin: str) -> None:
    with pytest.raises(ConfigError) as info:
        CorsConfig(allowed_origins=(origin,))
    assert info.value.variable == "ALLOWED_ORIGINS"


@pytest.mark.parametrize(
    ("configured", "browser_sends"),
    [
        ("HTTPS://App.Example", "https://app.example"),
        ("https://app.example:443", "https://app.example"),
        ("http://localhost:80", "http://localhost"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ],
    ids=["case", "default https port", "default http port", "other port", "ipv6"],
)
def test_configured_origin_matches_what_browsers_send(configured: str, browser_sends: str) -> None:
    middleware, _ = _middleware(allowed_origins=(configured,))
    response = run(middleware, make_scope(headers=[("origin", browser_sends)]))
    assert response.header("access-control-allow-origin") == browser_sends


origin_like = st.text(alphabet="HhTtPpSs:/.[]AaZz09-_@?*\u212a\u017f\u0131", max_size=30)


@given(st.one_of(st.text(max_size=40), origin_like, origin_like.map("https://".__add__)))
def test_origin_normalisation_is_total(raw: str) -> None:
    """Any configured text is a canonical ASCII origin or a refusal; never a crash later."""
    origin = normalise_origin(raw)
    if origin is None:
        return
    assert origin.isascii()
    assert origin == origin.lower()
    assert normalise_origin(origin) == origin
    policy = CorsPolicy(CorsConfig(allowed_origins=(raw,)))
    assert policy.allows(origin.encode())


# --------------------------------------------------------------------------- actual requests


@pytest.mark.parametrize("credentials", [False, True], ids=["no credentials", "credentials"])
def test_allowed_origin_grant_on_actual_response(credentials: bool) -> None:
    middleware, _ = _middleware(allow_credentials=credentials)
    response = run(middleware, make_scope(headers=[("origin", APP)]))
    assert response.header("access-control-allow-origin") == APP
    assert response.header("access-control-allow-credentials") == ("true" if credentials else None)
    assert response.header("access-control-expose-headers") == (
        "x-request-id, retry-after, ratelimit, ratelimit-policy"
    )
    assert response.header("access-control-allow-methods") is None  # preflight-only fields


# --------------------------------------------------------------------------- B6: Vary


async def _answer_with_vary(
    vary: str | None, origin: str | None
) -> tuple[Response, SecurityMiddleware]:
    headers = [(b"vary", vary.encode())] if vary is not None else []
    middleware, _ = _middleware(App(headers))
    request_headers = [("origin", origin)] if origin else []
    return await call(middleware, make_scope(headers=request_headers)), middleware


VARY = [
    (None, None, ["Origin"], "B6 request without Origin"),
    (None, "https://evil.example", ["Origin"], "B6 disallowed origin"),
    (None, APP, ["Origin"], "allowed origin"),
    ("Accept-Encoding", APP, ["Accept-Encoding, Origin"], "merged into the app's Vary"),
    ("origin", None, ["origin"], "app already varies on origin"),
    ("*", None, ["*"], "app varies on everything"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("app_vary", "origin", "expected"), [c[:3] for c in VARY], ids=[c[3] for c in VARY]
)
async def test_b6_vary_origin_on_every_response(
    app_vary: str | None, origin: str | None, expected: list[str]
) -> None:
    response, _ = await _answer_with_vary(app_vary, origin)
    assert response.headers_named("vary") == expected
    assert (response.header("access-control-allow-origin") is not None) is (origin == APP)


REFUSALS = [
    ({"host": "evil.com"}, 400, "untrusted host"),
    ({"method": "POST", "headers": [("content-length", "100")]}, 413, "too large"),
]


@pytest.mark.parametrize(
    ("kwargs", "status"), [c[:2] for c in REFUSALS], ids=[c[2] for c in REFUSALS]
)
@pytest.mark.parametrize("origin", [APP, "https://evil.example", None])
def test_b6_vary_and_grant_on_refusals(
    kwargs: dict[str, Any], status: int, origin: str | None
) -> None:
    app = App()
    config = SecurityConfig(
        hosts=HostsConfig(trusted_hosts=("api.example",)),
        cors=CorsConfig(allowed_origins=(APP,)),
        request=RequestConfig(max_request_size=10),
    )
    middleware = SecurityMiddleware(app, config)
    kwargs = dict(kwargs)
    headers = [*kwargs.pop("headers", []), *([("origin", origin)] if origin else [])]
    response = run(middleware, make_scope(headers=headers, **kwargs))
    assert response.status == status
    assert "origin" in _vary(response)
    expected = origin if origin == APP else None
    assert response.header("access-control-allow-origin") == expected


def test_no_cors_configured_means_no_cors_headers_and_preflights_reach_the_app() -> None:
    app = App()
    middleware = SecurityMiddleware(app, SecurityConfig())
    response = run(middleware, preflight())
    assert response.status == 200
    assert app.calls == 1
    assert _cors_headers(response) == []
    assert response.headers_named("vary") == []


# --------------------------------------------------------------------------- B8: the preflight

PREFLIGHTS = [
    ("POST", "content-type, authorization", "B8 allowed method and headers"),
    ("PUT", None, "B8 method outside the list"),
    ("POST", "x-custom", "B8 header outside the list"),
    ("GET", "Content-Type, content-type", "B8 repeated header names"),
]


@pytest.mark.parametrize(
    ("method", "request_headers"), [c[:2] for c in PREFLIGHTS], ids=[c[2] for c in PREFLIGHTS]
)
def test_b8_preflight_answered_204_with_the_configured_lists(
    method: str, request_headers: str | None
) -> None:
    """The policy: 204 with the configured lists whatever was asked; the browser decides."""
    middleware, app = _middleware()
    response = run(middleware, preflight(method=method, request_headers=request_headers))
    assert response.status == 204
    assert response.body == b""
    assert app.calls == 0
    assert response.header("access-control-allow-origin") == APP
    assert response.header("access-control-allow-methods") == "GET, POST"
    assert response.header("access-control-allow-headers") == (
        "content-type, authorization, x-request-id"
    )
    assert response.header("access-control-max-age") == "600"
    assert response.header("access-control-allow-credentials") is None
    assert _vary(response) >= {
        "origin",
        "access-control-request-method",
        "access-control-request-headers",
    }
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("x-request-id")


def test_b8_localhost_graphql_preflight() -> None:
    """B8 as reported, with the configured methods widened the way the docs say."""
    middleware, _ = _middleware(
        allowed_origins=("http://localhost:8080",), allowed_methods=("GET", "POST")
    )
    response = run(
        middleware,
        preflight("http://localhost:8080", "POST", "content-type, authorization", path="/graphql"),
    )
    assert response.status == 204
    assert "POST" in (response.header("access-control-allow-methods") or "")
    allowed = (response.header("access-control-allow-headers") or "").split(", ")
    assert {"content-type", "authorization"} <= set(allowed)
    assert len(allowed) == len(set(allowed))


def test_preflight_with_credentials_and_wildcard_headers_reflects_the_request() -> None:
    """``*`` is literal for credentialed requests, so the asked-for headers are echoed."""
    middleware, _ = _middleware(allow_credentials=True, allowed_headers=("*",))
    response = run(middleware, preflight(request_headers="x-a, x-b"))
    assert response.header("access-control-allow-credentials") == "true"
    assert response.header("access-control-allow-headers") == "x-a, x-b"


WILDCARD_PREFLIGHTS = [
    # credentials, asked method, asked headers, granted methods, granted headers
    (True, "PUT", "x-a", "PUT", "x-a"),
    (True, "DELETE", None, "DELETE", None),
    (True, "P\x00T", None, "*", None),  # not a token: never echoed
    (False, "PUT", "authorization, x-a", "*", "authorization, x-a"),
    (False, "PUT", "x-a\r\nx-evil: 1", "*", None),
]


@pytest.mark.parametrize(
    ("credentials", "method", "asked", "methods", "granted"),
    WILDCARD_PREFLIGHTS,
    ids=["cred-put", "cred-delete", "cred-bad-method", "authorization", "bad-headers"],
)
def test_wildcards_grant_what_the_preflight_asked_by_name(
    credentials: bool, method: str, asked: str | None, methods: str, granted: str | None
) -> None:
    """``*`` is literal in a credentialed preflight and never covers Authorization (Fetch):
    so ``ALLOWED_METHODS=*`` with credentials and ``ALLOWED_HEADERS=*`` answer by name."""
    middleware, app = _middleware(
        allow_credentials=credentials, allowed_methods=("*",), allowed_headers=("*",)
    )
    scope = preflight(method="GET", request_headers=asked)
    scope["headers"] = [
        (b"access-control-request-method", method.encode("latin-1"))
        if name == b"access-control-request-method"
        else (name, value)
        for name, value in scope["headers"]
    ]
    response = run(middleware, scope)
    assert response.status == 204
    assert app.calls == 0
    assert response.headers_named("access-control-allow-methods") == [methods]
    assert response.header("access-control-allow-headers") == granted


def test_options_without_request_method_is_not_a_preflight() -> None:
    middleware, app = _middleware()
    response = run(middleware, make_scope("OPTIONS", "/", [("origin", APP)]))
    assert response.status == 200
    assert app.calls == 1
    assert response.header("access-control-allow-origin") == APP


# --------------------------------------------------------------------------- B9


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


@pytest.mark.anyio
async def test_b9_preflight_skips_auth_and_rate_limit_and_429_keeps_the_grant() -> None:
    clock = Clock()
    app = App()
    config = SecurityConfig(
        hosts=HostsConfig(trusted_hosts=("api.example",)),
        cors=CorsConfig(allowed_origins=(APP,)),
        rate_limit=RateLimitConfig(
            rate_limit_default="none", rate_limit_rules="/api/items=1/minute"
        ),
    )
    middleware = SecurityMiddleware(app, config, backend=MemoryBackend(clock=clock))
    for _ in range(5):  # an auth layer would answer 401; a limiter would count these
        response = await call(
            middleware, preflight(request_headers="authorization", path="/api/items")
        )
        assert response.status == 204
        assert response.header("access-control-allow-origin") == APP
        assert response.header("ratelimit") is None
    assert app.calls == 0
    actual = make_scope("POST", "/api/items", [("origin", APP), ("authorization", "Bearer t")])
    assert (await call(middleware, actual)).status == 200
    response = await call(middleware, actual)
    assert response.status == 429
    assert response.header("access-control-allow-origin") == APP
    assert response.header("retry-after") == "60"
    assert "origin" in _vary(response)
    assert middleware.counters.rate_limited == 1
    assert middleware.counters.blocked_total == 0


# --------------------------------------------------------------------------- B1


@pytest.mark.anyio
async def test_b1_a_crash_keeps_its_cors_grant() -> None:
    middleware, _ = _middleware()
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError, match="boom"):
        await middleware(make_scope(path="/boom", headers=[("origin", APP)]), receive, send)
    response = Response(sent[0]["status"], list(sent[0]["headers"]), sent[1]["body"])
    assert response.status == 500
    assert response.header("access-control-allow-origin") == APP
    assert "origin" in _vary(response)
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("x-frame-options") == "DENY"
    assert response.header("content-security-policy")
    assert response.json()["error"] == "internal_error"
