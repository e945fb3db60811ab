"""The guards as a user sees them: a served app, real requests, through uvicorn and hypercorn.

Each test serves a small raw-ASGI app wrapped by asgisec on a free loopback port and speaks to
it over TCP (httpx, or a hand-written websocket handshake). These are the issue's "Done when"
lines: a slow route under ``REQUEST_TIMEOUT=1`` gets 504 and its task is cancelled;
``MAX_CONCURRENT_REQUESTS=2`` lets exactly 2 of 5 in; ``FORCE_HTTPS`` never redirects to an
attacker's Host and does not loop behind a trusted proxy (B18, B19); a websocket from
``https://evil.example`` is refused with nothing logged as a server error (B12, B16); 1,000
concurrent requests each get their own nonce (B25); ``asgisec serve`` sends one Server at most
(B22).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from asgisec import SecurityConfig, SecurityMiddleware
from tests.servers import REPO_ROOT, cli_env, free_port, serving
from tests.wire import SERVERS, ServerErrors, handshake, running

APP_ORIGIN = "https://app.example"
BASE_ENV = {
    "TRUSTED_HOSTS": "127.0.0.1,localhost",
    "ALLOWED_ORIGINS": APP_ORIGIN,
    "RATE_LIMIT_DEFAULT": "none",
}


class Probe:
    """What the app behind asgisec saw, shared with the test thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entered = 0
        self.cancelled = threading.Event()
        self.release = threading.Event()
        self.pages_in_flight = 0
        self.most_pages_in_flight = 0


def make_app(probe: Probe) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        path = scope["path"]
        if path == "/slow":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                probe.cancelled.set()
                raise
        elif path == "/hold":
            with probe.lock:
                probe.entered += 1
            deadline = time.monotonic() + 20
            while not probe.release.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # a threading.Event, set from the test's thread
        if path == "/page":
            nonce = scope["csp_nonce"]
            probe.pages_in_flight += 1  # the server's loop only: no lock needed
            probe.most_pages_in_flight = max(probe.most_pages_in_flight, probe.pages_in_flight)
            await asyncio.sleep(0.01)  # other requests run meanwhile (B25)
            probe.pages_in_flight -= 1
            body = f'<script nonce="{nonce}"></script>'.encode()
            content_type = b"text/html"
        else:
            body = msgspec.json.encode({"path": path, "scheme": scope["scheme"]})
            content_type = b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


class Site:
    def __init__(self, url: str, probe: Probe, errors: ServerErrors) -> None:
        self.url = url
        self.probe = probe
        self.errors = errors
        self.client = httpx.Client(base_url=url, timeout=15, trust_env=False)


@contextlib.contextmanager
def site(server: str, **env: str) -> Iterator[Site]:
    """The probe app, secured by the configuration ``BASE_ENV`` + ``env``, served by ``server``."""
    probe = Probe()
    config = SecurityConfig.from_env({**BASE_ENV, **env}, env_file=None)
    errors = ServerErrors()
    with errors.installed(), running(SecurityMiddleware(make_app(probe), config), server) as url:
        served = Site(url, probe, errors)
        with served.client:
            yield served


def _once(response: httpx.Response, name: str) -> str | None:
    values = response.headers.get_list(name)
    assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
    return values[0] if values else None


# --------------------------------------------------------------------------- REQUEST_TIMEOUT


@pytest.mark.parametrize("server", SERVERS)
def test_slow_route_gets_504_after_about_the_timeout_and_is_cancelled(server: str) -> None:
    with site(server, REQUEST_TIMEOUT="1") as served:
        began = time.monotonic()
        response = served.client.get("/slow", headers={"Origin": APP_ORIGIN})
        elapsed = time.monotonic() - began
        assert response.status_code == 504
        assert response.json() == {"error": "timeout", "message": "The request took too long."}
        assert _once(response, "x-content-type-options") == "nosniff"
        assert _once(response, "access-control-allow-origin") == APP_ORIGIN
        assert 0.9 <= elapsed < 10, elapsed  # about 1 s; the app would have taken 30
        assert served.probe.cancelled.wait(5)
        assert served.client.get("/x").status_code == 200  # the server goes on serving
        health = served.client.get("/health")
        assert health.status_code == 200
        assert served.errors.messages == []


# --------------------------------------------------------------------------- MAX_CONCURRENT


async def _concurrently(url: str, count: int, probe: Probe) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits, trust_env=False) as c:
        tasks = [asyncio.ensure_future(c.get("/hold")) for _ in range(count)]
        refused = count - 2
        pending: set[asyncio.Future[httpx.Response]] = set(tasks)
        done_early: list[asyncio.Future[httpx.Response]] = []
        while len(done_early) < refused:
            done, pending = await asyncio.wait(
                pending, timeout=15, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                break
            done_early += done
        await asyncio.sleep(0.2)  # a 4th answer arriving now would be one too many
        done_early = [t for t in tasks if t.done()]
        with probe.lock:
            entered_before_release = probe.entered
        probe.release.set()
        responses = await asyncio.gather(*tasks)
    assert entered_before_release == 2
    assert len(done_early) == refused
    assert all(t.result().status_code == 503 for t in done_early)
    return responses


@pytest.mark.parametrize("server", SERVERS)
def test_max_concurrent_requests_2_lets_exactly_2_of_5_in(server: str) -> None:
    with site(server, MAX_CONCURRENT_REQUESTS="2") as served:
        responses = asyncio.run(_concurrently(served.url, 5, served.probe))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 200, 503, 503, 503]
        for response in responses:
            if response.status_code == 503:
                assert response.json()["error"] == "overloaded"
                assert _once(response, "retry-after") == "1"
                assert _once(response, "x-content-type-options") == "nosniff"
        assert served.probe.entered == 2
        security = served.client.get("/health")
        assert security.status_code == 200
        assert served.errors.messages == []


# --------------------------------------------------------------------------- FORCE_HTTPS


@pytest.mark.parametrize("server", SERVERS)
def test_force_https_redirects_only_to_a_trusted_host(server: str) -> None:
    with site(server, FORCE_HTTPS="true", TRUSTED_PROXIES="10.0.0.0/8") as served:
        client = served.client
        evil = client.get("/x?y=1", headers={"Host": "evil.example"})
        assert evil.status_code == 400
        assert _once(evil, "location") is None
        for host in ("evil.example/x", "localhost@evil.example"):  # B19 variants
            assert client.get("/x", headers={"Host": host}).status_code == 400
        trusted = client.get("/x?y=1", headers={"Host": "localhost"})
        assert trusted.status_code == 308
        assert _once(trusted, "location") == "https://localhost/x?y=1"
        with_port = client.get("/x?y=1")  # Host: 127.0.0.1:<port>
        assert _once(with_port, "location") == "https://127.0.0.1/x?y=1"
        posted = client.post("/form?a=b", content=b"{}")
        assert posted.status_code == 308  # method and body kept by the browser
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["scheme"] == "http"
        # 127.0.0.1 is not a trusted proxy: its X-Forwarded-Proto is the client's own word
        spoofed = client.get("/x?y=1", headers={"X-Forwarded-Proto": "https"})
        assert spoofed.status_code == 308
        assert served.errors.messages == []


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("header", ["x-forwarded-for", "forwarded"])
def test_no_redirect_loop_behind_a_trusted_tls_proxy(server: str, header: str) -> None:
    with site(
        server, FORCE_HTTPS="true", TRUSTED_PROXIES="127.0.0.1", TRUSTED_PROXY_HEADER=header
    ) as served:
        says_https = (
            {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
            if header == "x-forwarded-for"
            else {"Forwarded": "for=203.0.113.9;proto=https"}
        )
        with httpx.Client(
            base_url=served.url, follow_redirects=True, max_redirects=3, timeout=15, trust_env=False
        ) as client:
            response = client.get("/x?y=1", headers=says_https)  # would loop if redirected
        assert response.status_code == 200
        assert response.history == []
        assert _once(response, "strict-transport-security")  # the client is on https
        says_http = served.client.get(
            "/x",
            headers={"X-Forwarded-Proto": "http"}
            if header == "x-forwarded-for"
            else {"Forwarded": "for=203.0.113.9;proto=http"},
        )
        assert says_http.status_code == 308
        assert served.errors.messages == []


# --------------------------------------------------------------------------- websockets


@pytest.mark.parametrize("server", SERVERS)
def test_websocket_from_an_evil_origin_is_refused_without_a_server_error(server: str) -> None:
    with site(server) as served:
        assert b" 101 " in handshake(served.url, "/ws", {"Origin": APP_ORIGIN}) + b" "
        assert handshake(served.url, "/ws", {}).startswith(b"HTTP/1.1 101")  # not a browser
        refused = handshake(served.url, "/ws", {"Origin": "https://evil.example"})
        assert refused.startswith(b"HTTP/1.1 403"), refused
        wrong_host = handshake(served.url, "/ws", {"Host": "evil.example", "Origin": APP_ORIGIN})
        assert wrong_host.startswith(b"HTTP/1.1 403"), wrong_host  # B16
        health = served.client.get("/health")
        assert health.status_code == 200
        assert served.errors.messages == []


@pytest.mark.parametrize("server", SERVERS)
def test_ws_is_refused_not_redirected_under_force_https(server: str) -> None:
    with site(server, FORCE_HTTPS="true") as served:
        refused = handshake(served.url, "/ws", {"Origin": APP_ORIGIN})
        assert refused.startswith(b"HTTP/1.1 403"), refused
        assert served.errors.messages == []


# --------------------------------------------------------------------------- CSP nonces


async def _pages(url: str, count: int) -> list[httpx.Response]:
    # A connection per request: a kept-alive one the server closes as the client reuses it
    # (its keep-alive timer on a stalled machine) is a ReadError that says nothing of nonces.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, trust_env=False) as c:
        return await asyncio.gather(*(c.get("/page") for _ in range(count)))


def test_nonces_are_unique_across_1000_concurrent_requests() -> None:
    # One server is enough here (the nonce is asgisec's, not the server's); 1,000 requests
    # from this process cost ~20 s on a shared 2-core machine.
    with site("uvicorn", CSP_NONCE="true", MAX_CONCURRENT_REQUESTS="0") as served:
        responses = asyncio.run(_pages(served.url, 1000))
        nonces = set()
        for response in responses:
            assert response.status_code == 200
            in_header = re.findall(
                r"'nonce-([^']+)'", _once(response, "content-security-policy") or ""
            )
            in_body = re.findall(r'nonce="([^"]+)"', response.text)
            assert in_header == in_body
            assert len(in_header) == 1
            nonces.add(in_header[0])
        assert len(nonces) == 1000
        assert served.probe.most_pages_in_flight >= 10  # they really did overlap
        assert served.errors.messages == []


# --------------------------------------------------------------------------- Server (B22)


async def branded(scope: Any, receive: Any, send: Any) -> None:
    """An app that names itself in ``Server`` on /branded, served by ``asgisec serve``."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [(b"server", b"Secure")] if scope["path"] == "/branded" else []
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def test_b22_asgisec_serve_sends_at_most_one_server_header(tmp_path: Any) -> None:
    port = free_port()
    env = cli_env(TRUSTED_HOSTS="127.0.0.1")
    args = ["serve", "tests.test_guards_wire:branded", "--port", str(port)]
    with (
        serving(args, port=port, env=env, cwd=REPO_ROOT) as served,
        httpx.Client(base_url=served.url, timeout=10, trust_env=False) as client,
    ):
        assert client.get("/branded").headers.get_list("server") == ["Secure"]
        assert client.get("/").headers.get_list("server") == []
        refused = client.get("/", headers={"Host": "evil.example"})
        assert refused.status_code == 400
        assert refused.headers.get_list("server") == []
