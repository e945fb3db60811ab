"""Request guards as specifications, in process: the policy tables, then the shell over raw ASGI.

Cases: B12 (websocket Origin), B18 (proxy proto, no loop), B19 (never redirect to an
unvalidated Host), B22 (never a second Server), B25 (a nonce per request), B34 (the concurrency
cap is exact), and the issue's timeout, report endpoint and per-path policies. Over the wire:
test_guards_wire.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from typing import Any

import msgspec
import pytest

from asgisec import (
    ConfigError,
    CorsConfig,
    GuardsConfig,
    HostsConfig,
    RateLimitConfig,
    RequestConfig,
    SecurityConfig,
    SecurityMiddleware,
)
from asgisec.clients import ClientResolver
from asgisec.config import ProxyConfig
from asgisec.csp import nonce_template, with_report_uri
from asgisec.guards import WebsocketOrigins
from asgisec.guards_config import normalise_path_prefix
from asgisec.hosts import HostPolicy
from asgisec.https import HttpsPolicy
from asgisec.logs import LOGGER_NAME
from asgisec.paths import PathMap
from asgisec.ratelimit.memory import MemoryBackend
from tests.driver import Response, call, make_scope

APP = "https://app.example"
Message = dict[str, Any]


# --------------------------------------------------------------------------- policy tables

PREFIXES = [
    ("/docs", "/docs", "plain"),
    ("/docs/", "/docs", "trailing slash"),
    ("/", "/", "root"),
    (" /health ", "/health", "spaces around"),
    ("docs", None, "relative"),
    ("/a b", None, "space inside"),
    ("/docs?x=1", None, "query"),
    ("/a/../b", None, "dot-dot segment"),
    ("/a/./b", None, "dot segment"),
    ("", None, "empty"),
    ("/é", None, "non-ascii"),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [c[:2] for c in PREFIXES], ids=[c[2] for c in PREFIXES]
)
def test_path_prefixes_are_normalised_or_refused(raw: str, expected: str | None) -> None:
    assert normalise_path_prefix(raw) == expected


PATHS = [
    ("/docs", "docs", "the prefix itself"),
    ("/docs/", "docs", "with a slash"),
    ("/docs/a/b", "docs", "below it"),
    ("/docsearch", None, "not on a segment boundary"),
    ("/docs/v2/x", "v2", "longest prefix wins"),
    ("/docs/v2", "v2", "longer prefix itself"),
    ("/doc", None, "shorter"),
    ("/", None, "root not configured"),
    ("/docs/../admin", None, "dot-dot never matches"),
    ("/docs/./a", None, "dot never matches"),
    ("/docs/.well-known", "docs", "a dot-file is a name, not a dot segment"),
    ("", None, "empty path"),
    ("docs", None, "relative path"),
]


@pytest.mark.parametrize(("path", "expected"), [c[:2] for c in PATHS], ids=[c[2] for c in PATHS])
def test_path_map_matches_prefixes_on_segments(path: str, expected: str | None) -> None:
    paths = PathMap({"/docs": "docs", "/docs/v2": "v2"})
    assert paths.match(path) == expected


def test_path_map_root_covers_everything_but_dot_segments() -> None:
    paths = PathMap({"/": "root", "/api": "api"})
    assert paths.match("/anything/at/all") == "root"
    assert paths.match("/api/x") == "api"
    assert paths.match("/a/../b") is None
    assert not PathMap({})
    assert PathMap({"/": 1})


PROTOS = [
    # (trusted proxies, header mode, peer, header values, expected)
    (("10.0.0.0/8",), "x-forwarded-for", "10.0.0.5", [b"https"], b"https", "trusted https"),
    (("10.0.0.0/8",), "x-forwarded-for", "10.0.0.5", [b"HTTP"], b"http", "trusted http"),
    (("10.0.0.0/8",), "x-forwarded-for", "203.0.113.9", [b"https"], None, "untrusted peer"),
    ((), "x-forwarded-for", "10.0.0.5", [b"https"], None, "no proxy trusted"),
    (("10.0.0.0/8",), "x-forwarded-for", "10.0.0.5", [b"https, http"], b"http", "right-most"),
    (("10.0.0.0/8",), "x-forwarded-for", "10.0.0.5", [b"http", b"https"], b"https", "last line"),
    (("10.0.0.0/8",), "x-forwarded-for", "10.0.0.5", [b"gopher"], None, "unknown proto"),
    (("10.0.0.0/8",), "x-forwarded-for", "10.0.0.5", None, None, "absent"),
    (("10.0.0.0/8",), "x-forwarded-for", None, [b"https"], None, "no peer"),
    (("10.0.0.0/8",), "forwarded", "10.0.0.5", [b"for=1.2.3.4;proto=https"], b"https", "rfc"),
    (
        ("10.0.0.0/8",),
        "forwarded",
        "10.0.0.5",
        [b'for=1.2.3.4;proto=http, for="[::1]";Proto="HTTPS"'],
        b"https",
        "rfc right-most element, quoted",
    ),
    (("10.0.0.0/8",), "forwarded", "10.0.0.5", [b"for=1.2.3.4"], None, "rfc without proto"),
    (("10.0.0.0/8",), "forwarded", "203.0.113.9", [b"proto=https"], None, "rfc untrusted"),
    (("10.0.0.0/8",), "forwarded", "10.0.0.5", [b"\xff\x00;;=,"], None, "garbage"),
]


@pytest.mark.parametrize(
    ("proxies", "mode", "peer", "values", "expected"),
    [c[:5] for c in PROTOS],
    ids=[c[5] for c in PROTOS],
)
def test_forwarded_proto_only_from_trusted_proxies(
    proxies: tuple[str, ...],
    mode: str,
    peer: str | None,
    values: list[bytes] | None,
    expected: bytes | None,
) -> None:
    assert ClientResolver(proxies, mode).forwarded_proto(peer, values) == expected


ORIGINS = [
    # (allowed, Origin, Host, allowed?)
    ((APP,), APP, "api.example", True, "listed"),
    ((APP,), "https://evil.example", "api.example", False, "B12 other site"),
    ((APP,), None, "api.example", True, "no Origin: not a browser"),
    ((APP,), "null", "api.example", False, "null origin"),
    ((APP,), "https://api.example", "api.example", True, "same origin"),
    ((), "https://api.example", "api.example", True, "same origin, nothing listed"),
    ((), "https://api.example:8443", "api.example:8443", True, "same origin with port"),
    ((), "https://api.example:443", "API.example", True, "default port, case"),
    ((), "https://api.example", "api.example:8443", False, "other port"),
    ((), "https://api.example.evil.com", "api.example", False, "suffix trick"),
    ((), "https://evil.example", "api.example", False, "nothing listed: same origin only"),
    (("*",), "https://evil.example", "api.example", True, "star"),
    ((APP,), "HTTPS://APP.EXAMPLE", "api.example", True, "case-insensitive"),
    ((), "api.example", "api.example", False, "no scheme"),
    ((), "https://api.example", None, False, "no host to compare"),
]


@pytest.mark.parametrize(
    ("allowed", "origin", "host", "expected"),
    [c[:4] for c in ORIGINS],
    ids=[c[4] for c in ORIGINS],
)
def test_websocket_origins(
    allowed: tuple[str, ...], origin: str | None, host: str | None, expected: bool
) -> None:
    policy = WebsocketOrigins(allowed)
    assert (
        policy.allows(
            None if origin is None else origin.encode(), None if host is None else host.encode()
        )
        is expected
    )


NONCES = [
    ("default-src 'self'", "default-src 'self'; script-src 'self' 'nonce-N'", "from default-src"),
    ("default-src 'none'", "default-src 'none'; script-src 'nonce-N'", "none dropped"),
    (
        "default-src 'none'; script-src 'self' cdn.example",
        "default-src 'none'; script-src 'self' cdn.example 'nonce-N'",
        "script-src kept",
    ),
    ("img-src *", "img-src *; script-src 'nonce-N'", "neither"),
    ("SCRIPT-SRC 'None'", "SCRIPT-SRC 'nonce-N'", "case-insensitive names"),
]


@pytest.mark.parametrize(
    ("policy", "expected"), [c[:2] for c in NONCES], ids=[c[2] for c in NONCES]
)
def test_nonce_goes_into_script_src(policy: str, expected: str) -> None:
    before, after = nonce_template(policy)
    assert (before + b"N" + after).decode() == expected


def test_report_uri_is_added_once() -> None:
    assert with_report_uri("default-src 'self';", "/csp") == "default-src 'self'; report-uri /csp"
    assert with_report_uri("default-src 'self'; report-uri /x", "/csp").endswith("/x")
    assert with_report_uri("default-src 'self'", "") == "default-src 'self'"


LOCATIONS = [
    ("api.example", b"", b"/x", b"y=1", "https://api.example/x?y=1", "path and query"),
    ("api.example", b"", b"/", b"", "https://api.example/", "root"),
    ("api.example", b"", b"*", b"", "https://api.example/", "OPTIONS *"),
    ("api.example", b"", b"//evil.com/x", b"", "https://api.example//evil.com/x", "double slash"),
    (
        "api.example",
        b"",
        b"/a\r\nSet-Cookie: x=1",
        b"q=\r\n",
        "https://api.example/a%0D%0ASet-Cookie:%20x=1?q=%0D%0A",
        "CRLF escaped",
    ),
    ("api.example", b"", b"/%41\xc3\xa9", b"", "https://api.example/%41%C3%A9", "escapes kept"),
    ("api.example", b"", b"/a\\b", b"", "https://api.example/a%5Cb", "backslash"),
    ("[::1]", b"", b"/x", b"", "https://[::1]/x", "ipv6"),
    ("api.example", b"www.example:8443", b"/x", b"", "https://www.example:8443/x", "canonical"),
]


@pytest.mark.parametrize(
    ("host", "canonical", "raw_path", "query", "expected"),
    [c[:5] for c in LOCATIONS],
    ids=[c[5] for c in LOCATIONS],
)
def test_redirect_location(
    host: str, canonical: bytes, raw_path: bytes, query: bytes, expected: str
) -> None:
    guards = GuardsConfig(force_https=True, canonical_host=canonical.decode())
    policy = HttpsPolicy(guards, HostPolicy(["api.example", "::1"]))
    location = policy.location(host, raw_path, query)
    assert location.decode() == expected
    assert not re.search(rb"[\x00-\x20\x7f-\xff]", location)


# --------------------------------------------------------------------------- configuration


def test_force_https_needs_a_validated_host() -> None:
    config = SecurityConfig(guards=GuardsConfig(force_https=True))
    with pytest.raises(ConfigError, match="FORCE_HTTPS"):
        SecurityMiddleware(_ok, config)
    with pytest.raises(ConfigError, match="FORCE_HTTPS"):
        SecurityMiddleware(
            _ok,
            SecurityConfig(
                hosts=HostsConfig(trusted_hosts=("*",)), guards=GuardsConfig(force_https=True)
            ),
        )
    SecurityMiddleware(
        _ok, SecurityConfig(guards=GuardsConfig(force_https=True, canonical_host="a.example"))
    )


ENV_ERRORS = [
    ({"REQUEST_TIMEOUT": "-1"}, "REQUEST_TIMEOUT"),
    ({"REQUEST_TIMEOUT": "soon"}, "REQUEST_TIMEOUT"),
    ({"REQUEST_TIMEOUT": "inf"}, "REQUEST_TIMEOUT"),
    ({"MAX_CONCURRENT_REQUESTS": "-2"}, "MAX_CONCURRENT_REQUESTS"),
    ({"CANONICAL_HOST": "https://a.example"}, "CANONICAL_HOST"),
    ({"CANONICAL_HOST": "a.example/x"}, "CANONICAL_HOST"),
    ({"CANONICAL_HOST": "a@b.example"}, "CANONICAL_HOST"),
    ({"HTTPS_EXEMPT_PATHS": "health"}, "HTTPS_EXEMPT_PATHS"),
    ({"EXCLUDED_PATHS": "/a/../b"}, "EXCLUDED_PATHS"),
    ({"RATE_LIMIT_EXEMPT_PATHS": "/a b"}, "RATE_LIMIT_EXEMPT_PATHS"),
    ({"WEBSOCKET_ALLOWED_ORIGINS": "https://a.example/"}, "WEBSOCKET_ALLOWED_ORIGINS"),
    ({"CSP_REPORT_PATH": "csp"}, "CSP_REPORT_PATH"),
    ({"CSP_REPORT_PATH": "/"}, "CSP_REPORT_PATH"),
    ({"CSP_REPORT_ONLY": "default-src 'self'\r\nX: y"}, "CSP_REPORT_ONLY"),
    ({"PATH_HEADERS": "/docs=x"}, "PATH_HEADERS"),
    ({"PATH_HEADERS": '{"/docs": "x"}'}, "PATH_HEADERS"),
    ({"PATH_HEADERS": '{"docs": {"x-a": "b"}}'}, "PATH_HEADERS"),
    ({"PATH_HEADERS": '{"/docs": {"bad name": "b"}}'}, "PATH_HEADERS"),
    ({"PATH_HEADERS": '{"/docs": {"content-length": "1"}}'}, "PATH_HEADERS"),
    ({"PATH_HEADERS": '{"/docs": {"x-a": "é"}}'}, "PATH_HEADERS"),
]


@pytest.mark.parametrize(
    ("environ", "variable"),
    ENV_ERRORS,
    ids=[e[1] + ":" + next(iter(e[0].values())) for e in ENV_ERRORS],
)
def test_bad_guard_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        SecurityConfig.from_env(environ, env_file=None)
    assert caught.value.variable == variable


def test_guard_settings_from_the_environment() -> None:
    config = SecurityConfig.from_env(
        {
            "REQUEST_TIMEOUT": "0",
            "MAX_CONCURRENT_REQUESTS": "0",
            "FORCE_HTTPS": "true",
            "CANONICAL_HOST": "API.example:8443",
            "HTTPS_EXEMPT_PATHS": "/health/,/ready",
            "WEBSOCKET_ALLOWED_ORIGINS": "HTTPS://App.example:443",
            "CSP_NONCE": "yes",
            "CSP_REPORT_PATH": "/csp-reports/",
            "PATH_HEADERS": '{"/docs/": {"Content-Security-Policy": "default-src \'self\'"}}',
            "RATE_LIMIT_EXEMPT_PATHS": "/health",
            "EXCLUDED_PATHS": "/metrics",
        },
        env_file=None,
    )
    guards = config.guards
    assert guards.request_timeout == 0
    assert guards.canonical_host == "api.example:8443"
    assert guards.https_exempt_paths == ("/health", "/ready")
    assert guards.websocket_allowed_origins == ("https://app.example",)
    assert guards.csp_report_path == "/csp-reports"
    assert guards.path_headers == {"/docs": {"content-security-policy": "default-src 'self'"}}
    assert config.rate_limit.rate_limit_routes == {}  # RATE_LIMIT_EXEMPT_PATHS is no route
    assert dict(config.summary())["PATH_HEADERS"].startswith('{"/docs"')


# --------------------------------------------------------------------------- the shell


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def secured(inner: Any = _ok, **guards: Any) -> SecurityMiddleware:
    sections: dict[str, Any] = {
        "hosts": HostsConfig(trusted_hosts=("api.example", "*.api.example")),
        "cors": CorsConfig(allowed_origins=(APP,)),
        "request": RequestConfig(max_request_size=100),
        "rate_limit": RateLimitConfig(rate_limit_default="none"),
    }
    for name in ("proxies", "rate_limit", "request"):
        if name in guards:
            sections[name] = guards.pop(name)
    config = SecurityConfig(guards=GuardsConfig(**guards), **sections)
    return SecurityMiddleware(inner, config, backend=MemoryBackend(clock=lambda: 0))


class Recorder:
    """A server's side of one request: a body it hands out, and everything sent to it."""

    def __init__(self, chunks: tuple[bytes, ...] = (b"",)) -> None:
        self.inbox: list[Message] = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.inbox:
            return self.inbox.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))

    def starts(self) -> list[Message]:
        return [m for m in self.sent if m["type"] == "http.response.start"]

    def response(self) -> Response:
        starts = self.starts()
        assert len(starts) == 1, self.sent
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return Response(starts[0]["status"], list(starts[0]["headers"]), body)


class Slow:
    """An app that waits ``seconds`` (or for ``release``) and records how it ended."""

    def __init__(self, seconds: float = 3600, *, start_first: bool = False) -> None:
        self.seconds = seconds
        self.start_first = start_first
        self.entered = 0
        self.cancelled = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.entered += 1
        self.started.set()
        if self.start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        try:
            await asyncio.wait_for(self.release.wait(), self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        except TimeoutError:
            pass
        if not self.start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


# ----------------------------------------------------------------- REQUEST_TIMEOUT


@pytest.mark.anyio
async def test_timeout_before_the_response_is_a_decorated_504_and_the_app_is_cancelled() -> None:
    slow = Slow()
    middleware = secured(slow, request_timeout=0.05)
    recorder = Recorder()
    await middleware(make_scope(headers=[("origin", APP)]), recorder.receive, recorder.send)
    response = recorder.response()
    assert response.status == 504
    assert response.json() == {"error": "timeout", "message": "The request took too long."}
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("access-control-allow-origin") == APP
    assert response.header("x-request-id")
    assert slow.cancelled == 1
    assert middleware.counters.blocked["timeout"] == 1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_timeout_after_the_response_started_cuts_it_and_counts() -> None:
    slow = Slow(start_first=True)
    middleware = secured(slow, request_timeout=0.05)
    recorder = Recorder()
    await middleware(make_scope(), recorder.receive, recorder.send)
    assert len(recorder.starts()) == 1  # no second start, no 504 on top
    bodies = [m for m in recorder.sent if m["type"] == "http.response.body"]
    assert bodies == [{"type": "http.response.body", "body": b"part", "more_body": True}]
    assert slow.cancelled == 1
    assert middleware.counters.blocked["timeout"] == 1


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(msgspec.json.decode(record.getMessage()))


@pytest.mark.anyio
async def test_a_response_cut_by_the_deadline_is_logged_as_a_timeout() -> None:
    # Counted as `timeout`, so its request line says so: an operator looking for the cut
    # download must not find a plain INFO 200 "Request".
    handler = _Lines()
    requests_logger = logging.getLogger(LOGGER_NAME)
    requests_logger.addHandler(handler)
    try:
        middleware = secured(Slow(start_first=True), request_timeout=0.05)
        recorder = Recorder()
        await middleware(make_scope(), recorder.receive, recorder.send)
    finally:
        requests_logger.removeHandler(handler)
    assert middleware.counters.blocked["timeout"] == 1
    (line,) = handler.lines
    assert (line["level"], line["status"], line["reason"]) == ("WARNING", 200, "timeout")


@pytest.mark.anyio
async def test_a_fast_app_is_not_touched_by_the_deadline() -> None:
    middleware = secured(Slow(0.01), request_timeout=5)
    for _ in range(3):
        recorder = Recorder()
        await middleware(make_scope(), recorder.receive, recorder.send)
        assert recorder.response().status == 200
    assert middleware.counters.blocked["timeout"] == 0
    assert middleware.deadlines is not None
    assert not middleware.deadlines.running


@pytest.mark.anyio
async def test_timeout_zero_disables_it() -> None:
    middleware = secured(Slow(0.2), request_timeout=0)
    assert middleware.deadlines is None
    assert (await call(middleware, make_scope())).status == 200


@pytest.mark.anyio
async def test_the_apps_own_timeout_error_is_a_500_re_raised() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise TimeoutError("the database")

    middleware = secured(failing, request_timeout=5)
    recorder = Recorder()
    with pytest.raises(TimeoutError, match="the database"):
        await middleware(make_scope(), recorder.receive, recorder.send)
    assert recorder.response().status == 500
    assert middleware.counters.blocked["timeout"] == 0


@pytest.mark.anyio
async def test_an_app_that_swallows_the_cancellation_still_gets_a_504() -> None:
    async def stubborn(scope: Any, receive: Any, send: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)

    middleware = secured(stubborn, request_timeout=0.05)
    recorder = Recorder()
    await middleware(make_scope(), recorder.receive, recorder.send)
    assert recorder.response().status == 504
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_the_servers_own_cancellation_goes_through() -> None:
    slow = Slow()
    middleware = secured(slow, request_timeout=30)
    recorder = Recorder()
    task = asyncio.ensure_future(middleware(make_scope(), recorder.receive, recorder.send))
    await slow.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert recorder.sent == []
    assert middleware.counters.blocked["timeout"] == 0


@pytest.mark.anyio
async def test_many_requests_each_get_their_own_deadline() -> None:
    slow = Slow()
    fast = Slow(0.001)
    # 1 s, not 0.1: a fast request stalled past its deadline on a loaded machine would be a
    # 504 (timing is never asserted); the slow ones wait for ever, so it still proves the cut.
    middleware = secured(request_timeout=1.0)

    async def route(scope: Any, receive: Any, send: Any) -> None:
        await (slow if scope["path"] == "/slow" else fast)(scope, receive, send)

    middleware.app = route
    scopes = [make_scope(path="/slow" if i % 3 == 0 else "/fast") for i in range(30)]
    responses = await asyncio.gather(*(call(middleware, scope) for scope in scopes))
    statuses = [r.status for r in responses]
    assert statuses == [504 if i % 3 == 0 else 200 for i in range(30)]
    assert slow.cancelled == 10
    assert middleware.counters.blocked["timeout"] == 10


@pytest.mark.anyio
async def test_a_body_trickled_into_the_detection_scan_is_under_the_deadline() -> None:
    # A JSON or form body is read for the suspicious-request scan before the app runs; a
    # client that sends half of it and stalls must not hold its concurrency slot (and the
    # request) past REQUEST_TIMEOUT: 100 such connections would refuse everyone with 503.
    slow_body = make_scope(
        "POST", headers=[("content-type", "application/json"), ("content-length", "60")]
    )
    middleware = secured(request_timeout=0.05, max_concurrent_requests=1)
    recorder = Recorder()
    recorder.inbox = [{"type": "http.request", "body": b'{"a":', "more_body": True}]  # ...stall
    await asyncio.wait_for(middleware(slow_body, recorder.receive, recorder.send), 5)
    response = recorder.response()
    assert response.status == 504
    assert response.header("x-content-type-options") == "nosniff"
    assert middleware.counters.blocked["timeout"] == 1
    assert middleware.slots is not None
    assert middleware.slots.in_use == 0
    assert (await call(middleware, make_scope())).status == 200
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


def test_the_deadline_works_on_each_new_event_loop() -> None:
    async def sleepy(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(3600)

    middleware = secured(sleepy, request_timeout=0.05)
    for _ in range(2):  # asyncio.run: a new loop each time, as in tests and reloads
        assert asyncio.run(call(middleware, make_scope())).status == 504


# ----------------------------------------------------------------- MAX_CONCURRENT_REQUESTS


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("limit", "sent"), [(2, 5), (1, 3), (3, 3)], ids=["2 of 5", "B34 1 of 3", "3 of 3"]
)
async def test_exactly_n_requests_reach_the_app_the_rest_get_503(limit: int, sent: int) -> None:
    slow = Slow()
    middleware = secured(slow, max_concurrent_requests=limit)
    tasks = [asyncio.ensure_future(call(middleware, make_scope())) for _ in range(sent)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert slow.entered == min(limit, sent)
    refused = [t for t in tasks if t.done()]
    assert len(refused) == sent - min(limit, sent)
    for task in refused:
        response = task.result()
        assert response.status == 503
        assert response.json()["error"] == "overloaded"
        assert response.header("retry-after") == "1"
        assert response.header("x-content-type-options") == "nosniff"
    slow.release.set()
    done = await asyncio.gather(*tasks)
    assert sorted(r.status for r in done) == [200] * min(limit, sent) + [503] * (
        sent - limit if sent > limit else 0
    )
    assert middleware.counters.blocked["overloaded"] == max(0, sent - limit)
    assert middleware.slots is not None
    assert middleware.slots.in_use == 0


@pytest.mark.anyio
async def test_slots_are_released_whatever_the_app_did() -> None:
    async def varied(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        if scope["path"] == "/slow":
            await asyncio.sleep(3600)
        while (await receive()).get("more_body"):
            pass
        await _ok(scope, receive, send)

    middleware = secured(varied, max_concurrent_requests=1, request_timeout=0.05)
    with pytest.raises(RuntimeError):
        await call(middleware, make_scope(path="/boom"))
    assert (await call(middleware, make_scope(path="/slow"))).status == 504
    big = make_scope("POST", headers=[("content-length", "101")])
    assert (await call(middleware, big)).status == 413
    assert (await call(middleware, make_scope("POST"), [b"x" * 60, b"x" * 60])).status == 413
    assert (await call(middleware, make_scope())).status == 200
    assert middleware.slots is not None
    assert middleware.slots.in_use == 0


@pytest.mark.anyio
async def test_preflights_and_refusals_take_no_slot() -> None:
    slow = Slow()
    middleware = secured(slow, max_concurrent_requests=1)
    holder = asyncio.ensure_future(call(middleware, make_scope()))
    await slow.started.wait()
    preflight = make_scope(
        "OPTIONS", headers=[("origin", APP), ("access-control-request-method", "POST")]
    )
    assert (await call(middleware, preflight)).status == 204
    assert (await call(middleware, make_scope(host="evil.example"))).status == 400
    assert (await call(middleware, make_scope())).status == 503
    slow.release.set()
    assert (await holder).status == 200


# ----------------------------------------------------------------- FORCE_HTTPS

PROXY = ProxyConfig(trusted_proxies=("10.0.0.0/8",))
FORWARDED = ProxyConfig(trusted_proxies=("10.0.0.0/8",), trusted_proxy_header="forwarded")

REDIRECTS = [
    # (scope changes, proxies, status, location)
    ({"path": "/x", "query": b"y=1"}, None, 308, "https://api.example/x?y=1", "trusted host"),
    ({"host": "API.example:8000"}, None, 308, "https://api.example/", "port dropped, lower"),
    ({"host": "a.api.example"}, None, 308, "https://a.api.example/", "wildcard host"),
    ({"host": "evil.example", "path": "/x"}, None, 400, None, "B19 untrusted host"),
    ({"host": "api.example/elsewhere"}, None, 400, None, "B19 host with a path"),
    ({"host": "a@evil.com"}, None, 400, None, "B19 userinfo"),
    ({"host": None}, None, 400, None, "no host"),
    ({"path": "/health"}, None, 200, None, "exempt probe"),
    ({"path": "/health/live"}, None, 200, None, "below the exempt path"),
    ({"path": "/healthz"}, None, 308, "https://api.example/healthz", "not the exempt path"),
    ({"path": "/health/../admin"}, None, 308, "https://api.example/health/../admin", "dots"),
    ({"scheme": "https"}, None, 200, None, "already https"),
    (
        {"client": ("10.0.0.5", 1), "headers": [("x-forwarded-proto", "https")]},
        PROXY,
        200,
        None,
        "B18 A: trusted proxy says https",
    ),
    (
        {"client": ("203.0.113.9", 1), "headers": [("x-forwarded-proto", "https")]},
        PROXY,
        308,
        "https://api.example/",
        "B18 B: spoofed by a client",
    ),
    (
        {"client": ("10.0.0.5", 1), "headers": [("x-forwarded-proto", "http")]},
        PROXY,
        308,
        "https://api.example/",
        "trusted proxy says http",
    ),
    (
        {"client": ("10.0.0.5", 1), "headers": [("forwarded", "for=1.2.3.4;proto=https")]},
        FORWARDED,
        200,
        None,
        "Forwarded proto from the proxy",
    ),
    (
        {"client": ("10.0.0.5", 1), "headers": [("x-forwarded-proto", "https")]},
        FORWARDED,
        308,
        "https://api.example/",
        "X-Forwarded-Proto ignored when proxies write Forwarded",
    ),
    ({"method": "POST", "path": "/form"}, None, 308, "https://api.example/form", "POST"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("changes", "proxies", "status", "location"),
    [c[:4] for c in REDIRECTS],
    ids=[c[4] for c in REDIRECTS],
)
async def test_force_https(
    changes: dict[str, Any], proxies: ProxyConfig | None, status: int, location: str | None
) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await _ok(scope, receive, send)

    extra = {"proxies": proxies} if proxies else {}
    middleware = secured(app, force_https=True, **extra)
    method = changes.pop("method", "GET")
    path = changes.pop("path", "/")
    response = await call(middleware, make_scope(method, path, **changes))
    assert response.status == status
    assert response.header("location") == location
    assert bool(seen) is (status == 200)
    assert response.header("x-content-type-options") == "nosniff"
    trusted_https = changes.get("scheme") == "https" or (status == 200 and proxies is not None)
    assert (response.header("strict-transport-security") is not None) is trusted_https
    assert middleware.counters.blocked_total == (1 if status == 400 else 0)


@pytest.mark.anyio
async def test_canonical_host_is_the_only_redirect_target() -> None:
    middleware = SecurityMiddleware(
        _ok,
        SecurityConfig(guards=GuardsConfig(force_https=True, canonical_host="www.example")),
    )
    for host in ("evil.example", "www.example", None):
        response = await call(middleware, make_scope(path="/p", host=host))
        assert response.status == 308
        assert response.header("location") == "https://www.example/p"


@pytest.mark.anyio
async def test_without_force_https_a_trusted_proxys_https_still_gets_hsts() -> None:
    middleware = secured(proxies=PROXY)
    scope = make_scope(client=("10.0.0.5", 1), headers=[("x-forwarded-proto", "https")])
    response = await call(middleware, scope)
    assert response.status == 200
    assert response.header("strict-transport-security")
    assert (await call(middleware, make_scope())).header("strict-transport-security") is None


# ----------------------------------------------------------------- websockets


def ws_scope(
    headers: list[tuple[bytes, bytes]],
    *,
    scheme: str = "ws",
    client: tuple[str, int] = ("203.0.113.7", 40000),
    extension: bool = True,
) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": scheme,
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"api.example"), *headers],
        "client": client,
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if extension else {},
    }


async def ws_app(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


async def handshake(middleware: SecurityMiddleware, scope: dict[str, Any]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await middleware(scope, receive, send)
    return sent


WEBSOCKETS = [
    # (guards, proxies, scope, refused with reason or None)
    ({}, None, ws_scope([(b"origin", APP.encode())]), None, "listed origin"),
    ({}, None, ws_scope([(b"origin", b"https://evil.example")]), "cors", "B12 evil origin"),
    ({}, None, ws_scope([]), None, "no origin"),
    ({}, None, ws_scope([(b"origin", b"https://api.example")]), None, "same origin"),
    (
        {},
        None,
        ws_scope([(b"origin", APP.encode()), (b"origin", b"https://evil.example")]),
        "cors",
        "repeated origin",
    ),
    (
        {"websocket_allowed_origins": ("https://ws.example",)},
        None,
        ws_scope([(b"origin", APP.encode())]),
        "cors",
        "own list replaces ALLOWED_ORIGINS",
    ),
    (
        {"websocket_allowed_origins": ("https://ws.example",)},
        None,
        ws_scope([(b"origin", b"https://ws.example")]),
        None,
        "own list",
    ),
    ({"force_https": True}, None, ws_scope([]), "https_required", "ws:// under FORCE_HTTPS"),
    ({"force_https": True}, None, ws_scope([], scheme="wss"), None, "wss under FORCE_HTTPS"),
    (
        {"force_https": True},
        PROXY,
        ws_scope([(b"x-forwarded-proto", b"https")], client=("10.0.0.5", 1)),
        None,
        "wss at the trusted proxy",
    ),
    (
        {"force_https": True},
        PROXY,
        ws_scope([(b"x-forwarded-proto", b"https")]),
        "https_required",
        "spoofed proto",
    ),
    ({}, None, {**ws_scope([]), "headers": [(b"host", b"evil.example")]}, "invalid_host", "host"),
    ({"excluded_paths": ("/ws",)}, None, ws_scope([(b"origin", b"https://e.x")]), None, "excluded"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("extension", [True, False], ids=["denial", "close"])
@pytest.mark.parametrize(
    ("guards", "proxies", "scope", "reason"),
    [c[:4] for c in WEBSOCKETS],
    ids=[c[4] for c in WEBSOCKETS],
)
async def test_websocket_handshakes(
    guards: dict[str, Any],
    proxies: ProxyConfig | None,
    scope: dict[str, Any],
    reason: str | None,
    extension: bool,
) -> None:
    extra = {"proxies": proxies} if proxies else {}
    middleware = secured(ws_app, **guards, **extra)
    scope = {**scope, "extensions": {"websocket.http.response": {}} if extension else {}}
    sent = await handshake(middleware, scope)
    kinds = [m["type"] for m in sent]
    if reason is None:
        assert kinds == ["websocket.accept", "websocket.close"]
        assert middleware.counters.blocked_total == 0
        return
    assert "websocket.accept" not in kinds
    assert middleware.counters.blocked[reason] == 1
    if extension:
        assert kinds == ["websocket.http.response.start", "websocket.http.response.body"]
        assert sent[0]["status"] == 403
        assert msgspec.json.decode(sent[1]["body"])["error"] == reason
    else:
        assert sent == [{"type": "websocket.close", "code": 1008}]


# ----------------------------------------------------------------- CSP nonces and reports


async def page(scope: Any, receive: Any, send: Any) -> None:
    """B25: generates its page, waits (another request runs meanwhile), then answers."""
    nonce = scope["csp_nonce"]
    if scope["path"] == "/first":
        await asyncio.sleep(0.05)
    body = f'<script nonce="{nonce}">go()</script>'.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _nonces(response: Response) -> tuple[str, str]:
    csp = response.header("content-security-policy") or ""
    in_header = re.findall(r"'nonce-([^']+)'", csp)
    in_body = re.findall(r'nonce="([^"]+)"', response.body.decode())
    assert len(in_header) == 1, csp
    assert len(in_body) == 1
    return in_header[0], in_body[0]


@pytest.mark.anyio
async def test_b25_concurrent_requests_each_get_their_own_nonce() -> None:
    middleware = secured(page, csp_nonce=True)
    first, second = await asyncio.gather(
        call(middleware, make_scope(path="/first")), call(middleware, make_scope(path="/second"))
    )
    header1, body1 = _nonces(first)
    header2, body2 = _nonces(second)
    assert header1 == body1
    assert header2 == body2
    assert header1 != header2
    assert len(base64.b64decode(header1)) * 8 >= 128


@pytest.mark.anyio
async def test_nonce_is_added_to_script_src_and_refusals_carry_the_plain_policy() -> None:
    middleware = secured(page, csp_nonce=True, csp_report_only="default-src 'self'")
    response = await call(middleware, make_scope())
    csp = response.header("content-security-policy") or ""
    nonce = _nonces(response)[0]
    assert csp.startswith("default-src 'none'; frame-ancestors 'none'")
    assert f"script-src 'nonce-{nonce}'" in csp
    report_only = response.header("content-security-policy-report-only")
    assert report_only == f"default-src 'self'; script-src 'self' 'nonce-{nonce}'"
    refused = await call(middleware, make_scope(host="evil.example"))
    assert "nonce" not in (refused.header("content-security-policy") or "nonce")
    assert refused.header("content-security-policy-report-only") == "default-src 'self'"


@pytest.mark.anyio
async def test_no_nonce_unless_asked() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope.get("csp_nonce"))
        await _ok(scope, receive, send)

    response = await call(secured(app), make_scope())
    assert seen == [None]
    assert "nonce" not in (response.header("content-security-policy") or "")


REPORT = {
    "csp-report": {
        "document-uri": "https://api.example/page",
        "violated-directive": "script-src-elem",
        "blocked-uri": "inline",
    }
}
REPORTING_API = [
    {
        "type": "csp-violation",
        "body": {"documentURL": "https://api.example/a", "effectiveDirective": "img-src"},
    },
    {"type": "csp-violation", "body": {"blockedURL": "https://cdn.example/x.js"}},
]


@pytest.mark.anyio
async def test_csp_reports_are_counted_logged_and_answered_204(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await _ok(scope, receive, send)

    middleware = secured(app, csp_report_path="/csp", request=RequestConfig(max_request_size=0))
    with caplog.at_level(logging.WARNING, logger="asgisec"):
        one = await call(middleware, make_scope("POST", "/csp"), [msgspec.json.encode(REPORT)])
        body = msgspec.json.encode(REPORTING_API)
        two = await call(middleware, make_scope("POST", "/csp"), [body[:10], body[10:]])
    assert one.status == two.status == 204
    assert one.header("x-content-type-options") == "nosniff"
    assert middleware.counters.csp_reports == 3
    assert middleware.health()["csp_reports"] == 3
    assert seen == []
    messages = [r.getMessage() for r in caplog.records if "CSP violation" in r.getMessage()]
    assert len(messages) == 3
    assert "directive='script-src-elem' blocked='inline'" in messages[0]
    assert "directive='img-src'" in messages[1]
    assert "blocked='https://cdn.example/x.js'" in messages[2]
    assert (await call(middleware, make_scope("GET", "/csp"))).status == 200  # only POSTs
    policy = (await call(middleware, make_scope())).header("content-security-policy") or ""
    assert policy.endswith("; report-uri /csp")


@pytest.mark.anyio
async def test_csp_report_endpoint_caps_size_refuses_junk_and_forges_no_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the report cap applies even without MAX_REQUEST_SIZE
    middleware = secured(csp_report_path="/csp", request=RequestConfig(max_request_size=0))
    huge = b'{"csp-report": {"document-uri": "' + b"a" * 70_000 + b'"}}'
    response = await call(middleware, make_scope("POST", "/csp"), [huge[:40_000], huge[40_000:]])
    assert response.status == 413
    junk = await call(middleware, make_scope("POST", "/csp"), [b"not json"])
    assert junk.status == 400
    forged = {"csp-report": {"document-uri": "x\nCRITICAL fake line", "blocked-uri": 7}}
    with caplog.at_level(logging.WARNING, logger="asgisec"):
        ok = await call(middleware, make_scope("POST", "/csp"), [msgspec.json.encode(forged)])
    assert ok.status == 204
    logged = [r.getMessage() for r in caplog.records if "CSP violation" in r.getMessage()]
    assert len(logged) == 1
    assert "\n" not in logged[0]
    assert "blocked='-'" in logged[0]
    assert middleware.counters.csp_reports == 1


@pytest.mark.anyio
async def test_a_report_cut_short_by_a_disconnect_is_answered_and_not_counted() -> None:
    """Found by the 100k fuzz run: ``POST /csp`` whose client disconnects before any body
    got no response at all; every request ends with one defined answer."""
    middleware = secured(csp_report_path="/csp", request=RequestConfig(max_request_size=0))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await middleware(make_scope(method="POST", path="/csp"), receive, send)
    starts = [message for message in sent if message["type"] == "http.response.start"]
    assert [start["status"] for start in starts] == [400]
    assert middleware.counters.csp_reports == 0
    assert middleware.counters.snapshot()["blocked_requests"] == 0


@pytest.mark.anyio
async def test_without_a_report_path_no_request_is_taken_for_a_csp_report() -> None:
    """Found by the 100k fuzz run: with ``CSP_REPORT_PATH`` unset (empty), a ``POST`` whose
    path is empty matched the empty report path and was swallowed: no response, no app."""
    middleware = secured()
    response = await call(middleware, make_scope(method="POST", path=""))
    assert response.status == 200
    assert response.body == b"ok"
    assert middleware.counters.csp_reports == 0


# ----------------------------------------------------------------- per-path policies


@pytest.mark.anyio
async def test_header_overrides_by_path_prefix() -> None:
    middleware = secured(
        path_headers={
            "/docs": {"content-security-policy": "default-src 'self'; img-src data:"},
            "/embed": {"x-frame-options": "", "x-extra": "1"},
        }
    )
    docs = await call(middleware, make_scope(path="/docs/index.html"))
    assert docs.header("content-security-policy") == "default-src 'self'; img-src data:"
    assert docs.header("x-frame-options") == "DENY"
    embed = await call(middleware, make_scope(path="/embed"))
    assert embed.header("x-frame-options") is None
    assert embed.header("x-extra") == "1"
    assert embed.header("x-content-type-options") == "nosniff"
    other = await call(middleware, make_scope(path="/embedded"))
    assert other.header("x-frame-options") == "DENY"
    assert (other.header("content-security-policy") or "").startswith("default-src 'none'")
    refused = await call(middleware, make_scope(path="/embed", host="evil.example"))
    assert refused.header("x-frame-options") == "DENY"  # refusals keep the strict headers


@pytest.mark.anyio
async def test_rate_limit_exempt_paths() -> None:
    middleware = secured(
        rate_limit=RateLimitConfig(rate_limit_default="1/minute"),
        rate_limit_exempt_paths=("/health",),
    )
    assert [(await call(middleware, make_scope(path="/health"))).status for _ in range(3)] == [
        200
    ] * 3
    assert (await call(middleware, make_scope(path="/health"))).header("ratelimit") is None
    assert (await call(middleware, make_scope(path="/x"))).status == 200
    assert (await call(middleware, make_scope(path="/x"))).status == 429


@pytest.mark.anyio
async def test_excluded_paths_reach_the_app_untouched() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)
        await _ok(scope, receive, send)

    middleware = secured(app, excluded_paths=("/metrics",), force_https=True)
    scope = make_scope(path="/metrics", host="10.1.2.3:9000", headers=[("content-length", "999")])
    response = await call(middleware, scope)
    assert response.status == 200
    assert response.raw_headers == []
    assert seen == [scope]
    assert middleware.counters.total == 0
    assert (await call(middleware, make_scope(path="/metricsx", host="10.1.2.3"))).status == 400


# ----------------------------------------------------------------- Server header (B22)


@pytest.mark.anyio
async def test_b22_asgisec_never_adds_a_server_header() -> None:
    async def branded(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"server", b"Secure")] if scope["path"] == "/branded" else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    middleware = secured(branded)
    assert (await call(middleware, make_scope(path="/branded"))).headers_named("server") == [
        "Secure"
    ]
    for scope in (make_scope(), make_scope(host="evil.example"), make_scope(path="/x")):
        assert (await call(middleware, scope)).headers_named("server") == []
