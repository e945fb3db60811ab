"""The embedding matrix: five ways to build an app, three ways to serve it, over the wire.

Frameworks: raw ASGI, Starlette (``Middleware(SecurityMiddleware)``), FastAPI
(``add_middleware``), Quart (``app.asgi_app = secure(app.asgi_app)``) and Litestar
(``secure(Litestar(...))``), each wrapped in the one line docs/embedding.md shows. Servers: real
uvicorn (HTTP/1.1), real hypercorn (HTTP/1.1) and real hypercorn over TLS with ALPN, spoken to
with ``httpx.Client(http2=True)`` — every response there is checked to be HTTP/2. Each server
runs in a background thread of this process on a free loopback port (tests/live.py).

Cases over the wire: security headers (B29, HSTS only over HTTPS: B28), untrusted Host (B19),
CORS preflight (B8/B9), a 500 that keeps its grant (B1), a streamed body cut at the limit
(B31), a declared one refused (B32), a 429 with Retry-After (S11), the health block, and rate
limits keyed by the framework's own route template (S6): the rule is written exactly as the
route table writes it, the handler reports the template its framework matched, and every
``/items/<id>`` shares one bucket.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from litestar import Litestar, get, post
from litestar import Request as LitestarRequest
from litestar.params import FromPath
from quart import Quart, request
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

from .live import SERVERS, Live, live
from .servers import STARTUP_TIMEOUT, _read, _stop, _wait_until_ready, cli_env, free_port

APP_ORIGIN = "https://app.example"
LIMIT = 1000
ITEM_LIMIT = 2

# Each framework's own way of writing the route template of /items/<id>, as its route table
# has it; the rate-limit rule is this string, copied.
TEMPLATES = {
    "raw": "/items/*",  # raw ASGI has no route table: the pattern syntax itself
    "starlette": "/items/{item_id}",
    "fastapi": "/items/{item_id}",
    "quart": "/items/<int:item_id>",
    "litestar": "/items/{item_id:int}",
}


def config_for(framework: str) -> SecurityConfig:
    return SecurityConfig(
        hosts=HostsConfig(trusted_hosts=("127.0.0.1", "localhost")),
        cors=CorsConfig(allowed_origins=(APP_ORIGIN,)),
        request=RequestConfig(max_request_size=LIMIT),
        rate_limit=RateLimitConfig(
            rate_limit_default="none",
            rate_limit_rules=f"/limited=3/minute;{TEMPLATES[framework]}={ITEM_LIMIT}/minute",
        ),
    )


class Seen:
    """What the app behind asgisec received: request bodies and calls."""

    def __init__(self) -> None:
        self.bodies: list[int] = []
        self.calls = 0


# --------------------------------------------------------------------------- the five apps

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def raw_app(seen: Seen) -> Any:
    async def json(send: Send, status: int, value: Any) -> None:
        body = msgspec.json.encode(value)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def read_body(receive: Receive) -> bytes:
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path in ("/", "/limited"):
            seen.calls += 1
            await json(send, 200, {"ok": True})
        elif path == "/upload":
            seen.calls += 1
            body = await read_body(receive)
            seen.bodies.append(len(body))
            await json(send, 200, {"received": len(body)})
        elif path == "/boom":
            raise RuntimeError("boom")
        elif path == "/health":
            await json(
                send, 200, {"status": "healthy", "checks": {"security": security_health(scope)}}
            )
        elif re.fullmatch(r"/items/[^/]+", path):
            await json(send, 200, {"template": TEMPLATES["raw"]})
        else:
            await json(send, 404, {"error": "not_found"})

    return secure(app, config_for("raw"))


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

    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"template": request.scope["route"].path})

    routes = [
        Route("/", index),
        Route("/limited", index),
        Route("/upload", upload, methods=["POST"]),
        Route("/boom", boom),
        Route("/health", health),
        Route(TEMPLATES["starlette"], item),
    ]
    middleware = [Middleware(SecurityMiddleware, config=config_for("starlette"))]
    return Starlette(routes=routes, middleware=middleware)


def fastapi_app(seen: Seen) -> Any:
    app = FastAPI()

    @app.get("/")
    @app.get("/limited")
    async def index() -> dict[str, Any]:
        seen.calls += 1
        return {"ok": True}

    @app.post("/upload")
    async def upload(request: FastAPIRequest) -> dict[str, Any]:
        seen.calls += 1
        body = await request.body()
        seen.bodies.append(len(body))
        return {"received": len(body)}

    @app.get("/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("boom")

    @app.get("/health")
    async def health(request: FastAPIRequest) -> dict[str, Any]:
        return {"status": "healthy", "checks": {"security": security_health(request.scope)}}

    @app.get(TEMPLATES["fastapi"])
    async def item(item_id: int, request: FastAPIRequest) -> dict[str, Any]:
        return {"template": request.scope["route"].path}

    app.add_middleware(SecurityMiddleware, config=config_for("fastapi"))
    return app


def quart_app(seen: Seen) -> Any:
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

    @app.route(TEMPLATES["quart"])
    async def item(item_id: int) -> dict[str, Any]:
        rule = request.url_rule
        return {"template": rule.rule if rule is not None else None}

    # Quart types asgi_app with hypercorn's TypedDict scopes, stricter than the loose aliases
    # asgisec shares with Starlette, and mypy refuses assigning to a method: hence the ignore.
    app.asgi_app = secure(app.asgi_app, config_for("quart"))  # type: ignore[method-assign, assignment, arg-type]
    return app


def litestar_app(seen: Seen) -> Any:
    @get(["/", "/limited"])
    async def index() -> dict[str, Any]:
        seen.calls += 1
        return {"ok": True}

    @post("/upload", status_code=200)
    async def upload(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        seen.calls += 1
        body = await request.body()
        seen.bodies.append(len(body))
        return {"received": len(body)}

    @get("/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("boom")

    @get("/health")
    async def health(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        return {"status": "healthy", "checks": {"security": security_health(request.scope)}}

    @get(TEMPLATES["litestar"])
    async def item(
        item_id: FromPath[int], request: LitestarRequest[Any, Any, Any]
    ) -> dict[str, Any]:
        [template] = request.scope["route_handler"].paths
        return {"template": template}

    handlers = [index, upload, boom, health, item]
    # Litestar, like Quart, types __call__ with TypedDict scopes: narrower than the loose
    # aliases asgisec shares with Starlette, so mypy needs the ignore (it works as is).
    return secure(Litestar(route_handlers=handlers), config_for("litestar"))  # type: ignore[arg-type]


APPS: dict[str, Callable[[Seen], Any]] = {
    "raw": raw_app,
    "starlette": starlette_app,
    "fastapi": fastapi_app,
    "quart": quart_app,
    "litestar": litestar_app,
}
COMBINATIONS = [(framework, server) for framework in APPS for server in SERVERS]


class Served:
    def __init__(self, server: Live, framework: str, seen: Seen) -> None:
        self.server = server
        self.client = server.client()
        self.https = server.url.startswith("https:")
        self.http2 = server.http2
        self.framework = framework
        self.seen = seen

    def check(self, response: httpx.Response) -> httpx.Response:
        """Every response on an HTTP/2 server really was HTTP/2."""
        assert response.http_version == ("HTTP/2" if self.http2 else "HTTP/1.1")
        return response

    def after_early_answer(self) -> None:
        """A new connection after a 413 sent before the whole body arrived, on HTTP/2 only.

        hypercorn 0.18 drops the whole HTTP/2 connection when DATA arrives for a stream it
        has already answered (pgjones/hypercorn#329; see tests/live.py), so the next request
        on that connection would fail to write. HTTP/1.1 servers keep the connection or close
        it cleanly, and httpx reconnects by itself.
        """
        if self.http2:
            self.client.close()
            self.client = self.server.client()

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.check(self.client.get(path, **options))

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.check(self.client.post(path, **options))

    def options(self, path: str, **options: Any) -> httpx.Response:
        return self.check(self.client.options(path, **options))


@pytest.fixture(params=COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    framework, server = request.param
    seen = Seen()
    with live(APPS[framework](seen), server) as running:
        target = Served(running, framework, seen)
        try:
            yield target
        finally:
            target.client.close()


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


def _assert_security_headers(served: Served, response: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert _once(response, name) == value, name
    assert _once(response, "content-security-policy")
    hsts = _once(response, "strict-transport-security")
    if served.https:
        assert hsts == "max-age=31536000; includeSubDomains"
    else:
        assert hsts is None  # plain http (B28)
    assert _once(response, "x-request-id")


def test_security_headers_on_the_apps_response(served: Served) -> None:
    response = served.get("/", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    _assert_security_headers(served, response)
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    assert "Origin" in (_once(response, "vary") or "")


@pytest.mark.parametrize(
    "host",
    ["evil.example", "127.0.0.1@evil.example", "localhost/x"],
    ids=["other", "userinfo", "path"],
)
def test_untrusted_host_is_refused(served: Served, host: str) -> None:
    response = served.get("/", headers={"Host": host})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_host"
    _assert_security_headers(served, response)
    assert served.seen.calls == 0


def test_cors_preflight(served: Served) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = served.options("/upload", headers={"Origin": APP_ORIGIN, **asked})
    assert allowed.status_code == 204
    assert _once(allowed, "access-control-allow-origin") == APP_ORIGIN
    assert _once(allowed, "access-control-allow-methods") == "GET, POST"
    refused = served.options("/upload", headers={"Origin": "https://evil.example", **asked})
    assert refused.status_code == 403
    assert not [k for k in refused.headers if k.lower().startswith("access-control-")]
    assert "Origin" in (_once(refused, "vary") or "")
    assert served.seen.calls == 0


def test_streamed_body_over_the_limit_is_413(served: Served) -> None:
    # An iterator: chunked on HTTP/1.1, DATA frames without a length on HTTP/2.
    chunks = iter([b"x" * 600, b"x" * 600])
    response = served.post("/upload", content=chunks, headers={"Origin": APP_ORIGIN})
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    _assert_security_headers(served, response)
    assert all(size <= LIMIT for size in served.seen.bodies)
    served.after_early_answer()
    within = served.post("/upload", content=iter([b"x" * 500, b"x" * 500]))
    assert within.status_code == 200
    assert within.json() == {"received": 1000}


def test_declared_body_over_the_limit_is_413_before_the_app(served: Served) -> None:
    response = served.post("/upload", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert served.seen.calls == 0


def test_rate_limit_429(served: Served) -> None:
    statuses = [served.get("/limited").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    response = served.get("/limited", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 429
    assert int(_once(response, "retry-after") or 0) >= 1
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    assert _once(response, "ratelimit-policy") == '"/limited";q=3;w=60'
    _assert_security_headers(served, response)
    assert served.get("/").status_code == 200  # other routes are not limited
    security = served.get("/health").json()["checks"]["security"]
    assert security["rate_limited_requests"] == 1
    assert security["blocked_requests"] == 0
    assert security["trusted_hosts_configured"] == 2


def test_rate_limit_keyed_by_the_route_template(served: Served) -> None:
    """S6 over the wire: ``/items/1``, ``/items/2``, ... are one route, hence one bucket."""
    first = served.get("/items/1")
    assert first.status_code == 200
    # The framework matched the very template the rule was written with.
    assert first.json() == {"template": TEMPLATES[served.framework]}
    assert _once(first, "ratelimit-policy") == f'"/items/*";q={ITEM_LIMIT};w=60'
    assert _once(first, "ratelimit") == f'"/items/*";r={ITEM_LIMIT - 1};t=30'
    second = served.get("/items/2")
    assert second.status_code == 200
    assert served.get("/items/3").status_code == 429  # a new id is not a new bucket
    assert served.get("/limited").status_code == 200  # another route: its own bucket


def test_crash_keeps_headers_and_cors_grant(served: Served) -> None:
    """B1 over the wire: the framework's or asgisec's 500 is decorated either way."""
    response = served.get("/boom", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 500
    assert _once(response, "access-control-allow-origin") == APP_ORIGIN
    _assert_security_headers(served, response)


# --------------------------------------------------------------------------- the docs examples

DOCS = Path(__file__).resolve().parent.parent / "docs" / "embedding.md"
_EXAMPLE_RE = re.compile(r"<!-- example: (\w+) -->\n```python\n(.*?)```", re.DOTALL)


def docs_examples() -> dict[str, str]:
    return dict(_EXAMPLE_RE.findall(DOCS.read_text(encoding="utf-8")))


def test_docs_have_an_example_per_framework() -> None:
    assert sorted(docs_examples()) == sorted(APPS)


@pytest.mark.parametrize("framework", sorted(APPS))
@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
def test_docs_example_served(
    framework: str, server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each example in docs/embedding.md, run as written, secures its app over the wire."""
    monkeypatch.chdir(tmp_path)  # no stray ./.env
    monkeypatch.setenv("TRUSTED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("ALLOWED_ORIGINS", APP_ORIGIN)
    # A real module, as `uvicorn main:app` would import (Litestar resolves annotations in it).
    module = types.ModuleType(f"docs_example_{framework}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(docs_examples()[framework], f"{DOCS}:{framework}", "exec"), module.__dict__)
    with live(module.app, server) as running, running.client() as client:
        health = client.get("/health", headers={"Origin": APP_ORIGIN})
        assert health.status_code == 200
        assert health.json()["checks"]["security"]["status"] == "healthy"
        assert health.headers["x-frame-options"] == "DENY"
        assert health.headers["access-control-allow-origin"] == APP_ORIGIN
        refused = client.get("/health", headers={"Host": "evil.example"})
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_host"


# --------------------------------------------------------------------------- hypercorn's CLI

MEMORY_WARNING = "RATE_LIMIT_STORAGE_URI=memory:// with several worker processes"


@pytest.mark.parametrize("workers", [1, 2])
def test_hypercorn_command_warns_of_memory_buckets_only_with_several_workers(
    tmp_path: Path, workers: int
) -> None:
    """``hypercorn main:app`` serves even its one worker from a child process (and
    ``uvicorn --reload`` its one server): that alone is not several workers, and the warning
    that every limit is multiplied by the worker count would be false. ``-w 2`` warns."""
    (tmp_path / "main.py").write_text(docs_examples()["raw"], encoding="utf-8")
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "main:app", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers)]
    env = cli_env(TRUSTED_HOSTS="127.0.0.1")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=out, stderr=err, start_new_session=True
        )
        try:
            url = f"http://127.0.0.1:{port}/health"
            _wait_until_ready(process, url, verify=True, timeout=STARTUP_TIMEOUT, out=out, err=err)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            started = 0
            while started < workers and time.monotonic() < deadline:  # every worker is up
                started = _read(err).count("Running on") + _read(out).count("Running on")
                time.sleep(0.05)
            assert started == workers, _read(err)
        finally:
            _stop(process)
        stderr = _read(err)
    assert (MEMORY_WARNING in stderr) is (workers > 1), stderr
