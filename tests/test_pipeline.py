"""The ASGI shell, driven with raw ASGI messages: counters, errors, lifespan, websockets, ids.

Cases: B16 (a websocket to an untrusted host is refused cleanly before accept, with or without
the ``websocket.http.response`` extension), B1/B29 (an app's exception becomes a decorated 500
and is re-raised), and the issue's counters (exact under concurrency) and health block.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from asgisec import (
    CorsConfig,
    GuardsConfig,
    HostsConfig,
    RateLimitConfig,
    RequestConfig,
    SecurityConfig,
    SecurityMiddleware,
    security_health,
)
from asgisec.ratelimit.memory import MemoryBackend
from tests.driver import Response, call, make_scope

APP = "https://app.example"
Message = dict[str, Any]


async def app(scope: Any, receive: Any, send: Any) -> None:
    """A small raw app: yields to the loop, reads the body, and has a few routes."""
    await asyncio.sleep(0)
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    if scope["path"] == "/health":
        body = msgspec.json.encode(
            {"status": "healthy", "checks": {"security": security_health(scope)}}
        )
    else:
        more = True
        while more:
            more = (await receive()).get("more_body", False)
            await asyncio.sleep(0)
        body = b"{}"
    await asyncio.sleep(0)
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def secured(inner: Any = app, *, rate: str = "5/minute", **sections: Any) -> SecurityMiddleware:
    config = SecurityConfig(
        hosts=sections.pop("hosts", HostsConfig(trusted_hosts=("api.example",))),
        cors=CorsConfig(allowed_origins=(APP,)),
        request=RequestConfig(max_request_size=100),
        rate_limit=RateLimitConfig(rate_limit_default=rate),
        **sections,
    )
    return SecurityMiddleware(inner, config, backend=MemoryBackend(clock=lambda: 0))


# --------------------------------------------------------------------------- counters


def _client(i: int) -> tuple[str, int]:
    return (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 40000)


Job = tuple[dict[str, Any], list[bytes]]


def _workload() -> tuple[list[Job], dict[str, int]]:
    """Requests of every kind, each from its own client unless it means to be limited."""
    jobs: list[Job] = []
    n = 0

    def add(count: int, build: Callable[[int], Job]) -> None:
        nonlocal n
        for _ in range(count):
            n += 1
            jobs.append(build(n))

    add(100, lambda i: (make_scope(client=_client(i)), [b""]))
    add(40, lambda i: (make_scope(client=_client(i), host="evil.com"), [b""]))
    preflight = [("origin", "https://evil.example"), ("access-control-request-method", "GET")]
    add(30, lambda i: (make_scope("OPTIONS", headers=preflight, client=_client(i)), [b""]))
    allowed = [("origin", APP), ("access-control-request-method", "GET")]
    add(20, lambda i: (make_scope("OPTIONS", headers=allowed, client=_client(i)), [b""]))
    big = [("content-length", "101")]
    add(25, lambda i: (make_scope("POST", headers=big, client=_client(i)), [b"x" * 101]))
    add(25, lambda i: (make_scope("POST", client=_client(i)), [b"x" * 60, b"x" * 60]))
    bad = [("content-length", "ten")]
    add(10, lambda i: (make_scope("POST", headers=bad, client=_client(i)), [b""]))
    add(30, lambda i: (make_scope(client=("198.51.100.99", 1)), [b""]))  # 5 pass, 25 limited
    add(15, lambda i: (make_scope("GET", "/boom", client=_client(i)), [b""]))
    expected = {
        "total_requests": n,
        "invalid_host": 40,
        "cors": 30,
        "too_large": 50,
        "bad_request": 10,
        "rate_limited_requests": 25,
    }
    return jobs, expected


@pytest.mark.anyio
async def test_counters_are_exact_under_concurrency() -> None:
    # ~300 requests at once: no concurrency cap here (it is specified in test_guards.py)
    middleware = secured(guards=GuardsConfig(max_concurrent_requests=0))
    jobs, expected = _workload()
    random.Random(2).shuffle(jobs)
    results = await asyncio.gather(
        *(call(middleware, scope, chunks) for scope, chunks in jobs), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 15
    assert all(isinstance(e, RuntimeError) for e in errors)
    statuses = sorted(r.status for r in results if isinstance(r, Response))
    assert statuses.count(429) == 25
    snapshot = middleware.counters.snapshot()
    assert snapshot["total_requests"] == expected["total_requests"]
    reasons = snapshot["blocked_by_reason"]
    for reason in ("bad_request", "invalid_host", "cors", "too_large"):
        assert reasons[reason] == expected[reason], reason
    assert sum(reasons.values()) == 40 + 30 + 50 + 10  # no other reason was counted
    assert snapshot["blocked_requests"] == 40 + 30 + 50 + 10  # rate limits counted apart
    assert snapshot["rate_limited_requests"] == expected["rate_limited_requests"]
    assert snapshot["suspicious_requests"] == 0


# --------------------------------------------------------------------------- the app's errors


class Recorder:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))

    def response(self) -> Response:
        start = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(start) == 1, self.sent
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] != start[0]["type"])
        return Response(start[0]["status"], list(start[0]["headers"]), body)


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_app_exception_becomes_a_decorated_500_and_is_re_raised(scheme: str) -> None:
    middleware = secured()
    recorder = Recorder()
    scope = make_scope("GET", "/boom", [("origin", APP)], scheme=scheme)
    with pytest.raises(RuntimeError, match="boom"):
        await middleware(scope, recorder.receive, recorder.send)
    response = recorder.response()
    assert response.status == 500
    assert response.json() == {"error": "internal_error", "message": "Internal server error."}
    assert b"boom" not in response.body  # no internals
    assert response.header("access-control-allow-origin") == APP
    assert "Origin" in (response.header("vary") or "")
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("x-frame-options") == "DENY"
    assert (response.header("strict-transport-security") is not None) is (scheme == "https")
    assert response.header("x-request-id")
    assert response.header("ratelimit") is not None
    assert middleware.counters.blocked_total == 0


@pytest.mark.anyio
async def test_exception_after_the_response_started_is_re_raised_without_a_second_start() -> None:
    async def half(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"par", "more_body": True})
        raise ValueError("midway")

    middleware = secured(half)
    recorder = Recorder()
    with pytest.raises(ValueError, match="midway"):
        await middleware(make_scope(), recorder.receive, recorder.send)
    response = recorder.response()
    assert response.status == 200
    assert response.body == b"par"


@pytest.mark.anyio
async def test_cancellation_is_not_turned_into_a_500() -> None:
    async def cancelled(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError

    recorder = Recorder()
    with pytest.raises(asyncio.CancelledError):
        await secured(cancelled)(make_scope(), recorder.receive, recorder.send)
    assert recorder.sent == []


# --------------------------------------------------------------------------- lifespan


@pytest.mark.anyio
async def test_lifespan_passes_through_untouched() -> None:
    seen: list[Any] = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend([scope, receive, send])
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    original = dict(scope)
    inbox = [{"type": "lifespan.startup"}]
    outbox: list[Any] = []

    async def receive() -> Any:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        outbox.append(message)

    middleware = secured(lifespan_app)
    await middleware(scope, receive, send)
    assert seen[0] is scope
    assert seen[1] is receive
    assert seen[2] is send
    assert scope == original
    assert outbox == [{"type": "lifespan.startup.complete"}]
    assert middleware.counters.total == 0


# --------------------------------------------------------------------------- websockets (B16)


def ws_scope(headers: list[tuple[bytes, bytes]], *, extension: bool) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("203.0.113.7", 40000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}} if extension else {},
    }


class WsRecorder(Recorder):
    async def receive(self) -> Message:
        return {"type": "websocket.connect"}


async def ws_app(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


WEBSOCKETS = [
    (("api.example",), [(b"host", b"api.example")], True, "trusted host"),
    (("api.example",), [(b"host", b"evil.com")], False, "B16 untrusted host"),
    (("api.example",), [], False, "B16 no host with hosts configured"),
    ((), [], True, "no host with hosts empty"),
    (("api.example",), [(b"host", b"api.example@evil.com")], False, "malformed host"),
    (
        ("api.example",),
        [(b"host", b"api.example"), (b"host", b"evil.com")],
        False,
        "repeated host",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize("extension", [True, False], ids=["denial response", "close"])
@pytest.mark.parametrize(
    ("trusted", "headers", "accepted"),
    [c[:3] for c in WEBSOCKETS],
    ids=[c[3] for c in WEBSOCKETS],
)
async def test_b16_websocket_host_check_before_accept(
    trusted: tuple[str, ...],
    headers: list[tuple[bytes, bytes]],
    accepted: bool,
    extension: bool,
) -> None:
    middleware = secured(ws_app, hosts=HostsConfig(trusted_hosts=trusted))
    recorder = WsRecorder()
    await middleware(ws_scope(headers, extension=extension), recorder.receive, recorder.send)
    kinds = [m["type"] for m in recorder.sent]
    if accepted:
        assert kinds == ["websocket.accept", "websocket.close"]
        assert middleware.counters.blocked["invalid_host"] == 0
        return
    assert "websocket.accept" not in kinds
    assert middleware.counters.blocked["invalid_host"] == 1
    if extension:
        assert kinds == ["websocket.http.response.start", "websocket.http.response.body"]
        start, body = recorder.sent
        assert start["status"] == 403
        denial = Response(403, list(start["headers"]), body["body"])
        assert denial.json()["error"] == "invalid_host"
        assert denial.header("content-length") == str(len(body["body"]))
        assert denial.header("x-content-type-options") == "nosniff"
    else:
        assert kinds == ["websocket.close"]  # before accept: the server answers 403
        assert recorder.sent[0]["code"] == 1008


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sent_id", "kept"), [(b"trace-42", True), (b"bad id<>", False), (None, False)]
)
async def test_websocket_denial_carries_a_request_id(sent_id: bytes | None, kept: bool) -> None:
    """A websocket denial is a refusal like the others: it carries an X-Request-ID."""
    middleware = secured(ws_app, hosts=HostsConfig(trusted_hosts=("api.example",)))
    headers = [(b"host", b"evil.com")]
    if sent_id is not None:
        headers.append((b"x-request-id", sent_id))
    recorder = WsRecorder()
    await middleware(ws_scope(headers, extension=True), recorder.receive, recorder.send)
    start = recorder.sent[0]
    assert start["type"] == "websocket.http.response.start"
    ids = [value for name, value in start["headers"] if name == b"x-request-id"]
    assert len(ids) == 1
    if kept:
        assert ids == [sent_id]
    else:
        assert GENERATED.fullmatch(ids[0].decode())


@pytest.mark.anyio
async def test_websocket_refusal_waits_for_the_handshake_and_stops_on_disconnect() -> None:
    middleware = secured(ws_app)
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "websocket.disconnect", "code": 1001}

    async def send(message: Any) -> None:
        sent.append(message)

    await middleware(ws_scope([(b"host", b"evil.com")], extension=True), receive, send)
    assert sent == []


# --------------------------------------------------------------------------- X-Request-ID

GENERATED = re.compile(r"^[0-9a-f]{32}$")

REQUEST_IDS = [
    ("abc-123", True, "plain"),
    ("0f8fad5b-d9cb-469f-a165-70867728950e", True, "uuid"),
    ("trace.id:span_1", True, "dots colons underscores"),
    ("a" * 128, True, "128 characters"),
    ("a" * 129, False, "129 characters"),
    ("has space", False, "space"),
    ("a\tb", False, "tab"),
    ("<script>alert(1)</script>", False, "markup"),
    ("id\u00e9", False, "non-ascii"),
    ("", False, "empty"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("request_id", "kept"), [c[:2] for c in REQUEST_IDS], ids=[c[2] for c in REQUEST_IDS]
)
@pytest.mark.parametrize("host", ["api.example", "evil.com"], ids=["app answer", "refusal"])
async def test_request_id_kept_if_well_formed_else_regenerated(
    request_id: str, kept: bool, host: str
) -> None:
    middleware = secured()
    scope = make_scope(headers=[("x-request-id", request_id)], host=host)
    first = (await call(middleware, scope)).header("x-request-id")
    second = (await call(middleware, scope)).header("x-request-id")
    if kept:
        assert first == second == request_id
    else:
        assert GENERATED.match(first or "")
        assert GENERATED.match(second or "")
        assert first != second


@pytest.mark.anyio
async def test_request_id_generated_when_absent_and_unique() -> None:
    middleware = secured(rate="none")
    ids = {(await call(middleware, make_scope())).header("x-request-id") for _ in range(50)}
    assert len(ids) == 50
    assert all(i is not None and GENERATED.match(i) for i in ids)


# --------------------------------------------------------------------------- health

HEALTH_BLOCK = {
    "status": str,
    "blocked_requests": int,
    "rate_limited_requests": int,
    "suspicious_requests": int,
    "security_headers_enabled": bool,
    "trusted_hosts_configured": int,
}


@pytest.mark.anyio
async def test_health_block_has_the_guides_shape_and_real_counts() -> None:
    middleware = secured(
        rate="none",
        hosts=HostsConfig(trusted_hosts=("api.example", "*.api.example")),
    )
    await call(middleware, make_scope(host="evil.com"))
    await call(middleware, make_scope("POST", headers=[("content-length", "1000")]))
    response = await call(middleware, make_scope(path="/health"))
    assert response.status == 200
    health = response.json()
    assert health["status"] == "healthy"
    block = health["checks"]["security"]
    for key, kind in HEALTH_BLOCK.items():
        assert isinstance(block[key], kind), key
    assert block["status"] == "healthy"
    assert block["blocked_requests"] == 2
    assert block["rate_limited_requests"] == 0
    assert block["suspicious_requests"] == 0
    assert block["security_headers_enabled"] is True
    assert block["trusted_hosts_configured"] == 2
    # The overhead percentiles moved with the /health request itself; everything else is equal.
    now = middleware.health() | {"total_requests": 3}
    timing = ("overhead_ms_p50", "overhead_ms_p99")
    assert {k: v for k, v in block.items() if k not in timing} == {
        k: v for k, v in now.items() if k not in timing
    }


@pytest.mark.anyio
async def test_health_block_counts_rate_limits_apart() -> None:
    middleware = secured(rate="1/minute")
    await call(middleware, make_scope())
    await call(middleware, make_scope())
    block = middleware.health()
    assert block["rate_limited_requests"] == 1
    assert block["blocked_requests"] == 0


def test_health_block_of_an_unwrapped_app_reports_it() -> None:
    block = security_health({"type": "http"})
    assert set(HEALTH_BLOCK) <= set(block)
    for key, kind in HEALTH_BLOCK.items():
        assert isinstance(block[key], kind), key
    assert block["status"] == "unprotected"
    assert block["security_headers_enabled"] is False
