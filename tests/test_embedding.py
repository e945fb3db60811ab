"""Embedding: a Starlette app and a Quart app wrapped in one line, served by real servers.

Each app runs under real uvicorn (and real hypercorn) on a free loopback port, in a background
thread of this process, and is spoken to over TCP with httpx: what a browser or a client sees.
Cases over the wire: security headers (B29), untrusted Host (B19), CORS preflight (B8/B9), a 500
that keeps its grant (B1), a chunked body cut at the limit (B31), a declared one refused (B32),
and a 429 with Retry-After (S11).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgisec import (
    CorsConfig,
    HostsConfig,
    RateLimitConfig,
    RequestConfig,
    SecurityConfig,
    SecurityMiddleware,
    secure,
    security_health,
)

APP_ORIGIN = "https://app.example"
LIMIT = 1000
CONFIG = SecurityConfig(
    hosts=HostsConfig(trusted_hosts=("127.0.0.1", "localhost")),
    cors=CorsConfig(allowed_origins=(APP_ORIGIN,)),
    request=RequestConfig(max_request_size=LIMIT),
    rate_limit=RateLimitConfig(rate_limit_default="none", rate_limit_rules="/limited=3/minute"),
)


class Seen:
    """What the app behind asgisec received: request bodies and calls."""

    def __init__(self) -> None:
        self.bodies: list[int] = []
        self.calls = 0


# --------------------------------------------------------------------------- the two apps


def starlette_app(seen: Seen) -> Any:
    async def index(request: Request) -> JSONResponse:
        seen.calls += 1
        return JSONResponse({"ok": True})

    async def upload(request: Request) -> JSONResponse:
        seen.calls += 1
        body = await request.body()
        seen.bodies.append(len(body))
        return JSONResponse({"received": len(body)})

    async def boom(request: Request) -> JSONResponse:
        raise RuntimeError("boom")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "healthy", "checks": {"security": security_health(request.scope)}}
        )

    routes = [
        Route("/", index),
        Route("/limited", index),
        Route("/upload", upload, methods=["POST"]),
        Route("/boom", boom),
        Route("/health", health),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityMiddleware, config=CONFIG)])


def quart_app(seen: Seen) -> Any:
    from quart import Quart, request

    app = Quart("embedded")

    @app.route("/")
    @app.route("/limited")
    async def index() -> dict[str, Any]:
        seen.calls += 1
        return {"ok": True}

    @app.route("/upload", methods=["POST"])
    async def upload() -> dict[str, Any]:
        seen.calls += 1
        body = await request.get_data(as_text=False)
        seen.bodies.append(len(body))
        return {"received": len(body)}

    @app.route("/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("boom")

    @app.route("/health")
    async def health() -> dict[str, Any]:
        return {"status": "healthy", "checks": {"security": security_health(request.scope)}}

    # Quart types asgi_app with hypercorn's TypedDict scopes, stricter than the loose aliases
    # asgisec shares with Starlette, and mypy refuses assigning to a method: hence the ignore.
    app.asgi_app = secure(app.asgi_app, CONFIG)  # type: ignore[method-assign, assignment, arg-type]
    return app


# --------------------------------------------------------------------------- real servers


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_until_up(url: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert thread.is_alive(), "the server thread died at start-up"
        try:
            httpx.get(url + "/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.02)
    raise AssertionError(f"server at {url} did not start")


def serve_uvicorn(app: Any) -> Iterator[str]:
    sock = _bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, thread)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def serve_hypercorn(app: Any) -> Iterator[str]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = _bound_socket()
    port = sock.getsockname()[1]
    sock.listen(128)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the listening socket now
    config.loglevel = "WARNING"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, thread)
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


APPS: dict[str, Callable[[Seen], Any]] = {"starlette": starlette_app, "quart": quart_app}
SERVERS: dict[str, Callable[[Any], Iterator[str]]] = {
    "uvicorn": serve_uvicorn,
    "hypercorn": serve_hypercorn,
}
COMBINATIONS = [("starlette", "uvicorn"), ("quart", "uvicorn"), ("quart", "hypercorn")]


class Served:
    def __init__(self, url: str, seen: Seen) -> None:
        self.client = httpx.Client(base_url=url, timeout=10)
        self.seen = seen


@pytest.fixture(params=COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    framework, server = request.param
    seen = Seen()
    for url in SERVERS[server](APPS[framework](seen)):
        target = Served(url, seen)
        with target.client:
            yield target


# --------------------------------------------------------------------------- over the wire

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}


def _once(response: httpx.Response, name: str) -> str | None:
    values = response.headers.get_list(name)
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


def _assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert _once(response, name) == value, name
    assert _once(response, "content-security-policy")
    assert _once(response, "strict-transport-security") is None  # plain http (B28)
    assert _once(response, "x-request-id")


def test_security_headers_on_the_apps_response(served: Served) -> None:
    response = served.client.get("/", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    _assert_security_headers(response)
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    assert "Origin" in (_once(response, "vary") or "")


@pytest.mark.parametrize(
    "host",
    ["evil.example", "127.0.0.1@evil.example", "localhost/x"],
    ids=["other", "userinfo", "path"],
)
def test_untrusted_host_is_refused(served: Served, host: str) -> None:
    response = served.client.get("/", headers={"Host": host})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_host"
    _assert_security_headers(response)
    assert served.seen.calls == 0


def test_cors_preflight(served: Served) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = served.client.options("/upload", headers={"Origin": APP_ORIGIN, **asked})
    assert allowed.status_code == 204
    assert _once(allowed, "access-control-allow-origin") == APP_ORIGIN
    assert _once(allowed, "access-control-allow-methods") == "GET, POST"
    refused = served.client.options("/upload", headers={"Origin": "https://evil.example", **asked})
    assert refused.status_code == 403
    assert not [k for k in refused.headers if k.lower().startswith("access-control-")]
    assert "Origin" in (_once(refused, "vary") or "")
    assert served.seen.calls == 0


def test_chunked_body_over_the_limit_is_413(served: Served) -> None:
    chunks = iter([b"x" * 600, b"x" * 600])  # an iterator: sent with Transfer-Encoding: chunked
    response = served.client.post("/upload", content=chunks, headers={"Origin": APP_ORIGIN})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    _assert_security_headers(response)
    assert all(size <= LIMIT for size in served.seen.bodies)
    within = served.client.post("/upload", content=iter([b"x" * 500, b"x" * 500]))
    assert within.status_code == 200
    assert within.json() == {"received": 1000}


def test_declared_body_over_the_limit_is_413_before_the_app(served: Served) -> None:
    response = served.client.post("/upload", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert served.seen.calls == 0


def test_rate_limit_429(served: Served) -> None:
    statuses = [served.client.get("/limited").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = served.client.get("/limited", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 429
    assert int(_once(response, "retry-after") or 0) >= 1
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    assert _once(response, "ratelimit-policy") == '"/limited";q=3;w=60'
    _assert_security_headers(response)
    assert served.client.get("/").status_code == 200  # other routes are not limited
    security = served.client.get("/health").json()["checks"]["security"]
    assert security["rate_limited_requests"] == 1
    assert security["blocked_requests"] == 0
    assert security["trusted_hosts_configured"] == 2


def test_crash_keeps_headers_and_cors_grant(served: Served) -> None:
    """B1 over the wire: the framework's or asgisec's 500 is decorated either way."""
    response = served.client.get("/boom", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 500
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    _assert_security_headers(response)
