"""Hypothesis over raw ASGI: whatever a client or the app does, nothing escapes asgisec.

Random and malformed requests — non-ASCII and non-Latin-1 header bytes, duplicate or missing
Host, thousands of headers, odd methods, paths and schemes, bodies in odd chunks, disconnects
mid-body — reach the whole pipeline (hosts, HTTPS, CORS, rate limit, concurrency cap, body
limit, CSP nonces and reports, per-path policies), a few at a time and concurrently, in front
of an app that reads, streams, ignores the body or raises before or after it started. The
properties, for every request:

* no exception leaves asgisec except the app's own (the very object the app raised);
* every HTTP request gets exactly one response, with a status from the defined set, the
  security headers once each and an ``X-Request-ID``, and no header that could split it;
* a request asgisec refused never reached the app, the app never read a byte past the body
  limit, and a request the app saw came with a trusted Host;
* a websocket is accepted only by the app, and refused only before accept.

The default run keeps the example counts small; ``HYPOTHESIS_PROFILE=fuzz`` (``tox -e fuzz``,
and CI through ``scripts/test``) runs 100,000 examples of the pipeline property.
``FUZZ_SHARDS=N`` divides every fuzz count by N, so that N processes with different
``--hypothesis-seed`` values run the 100,000 between them, one per core (CI runs two).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from asgisec import SecurityConfig, SecurityMiddleware
from asgisec.clients import ClientResolver
from asgisec.csp import read_reports
from asgisec.guards_config import GuardsConfig
from asgisec.hosts import HostPolicy, parse_host
from asgisec.https import HttpsPolicy
from asgisec.paths import PathMap
from asgisec.ratelimit.memory import MemoryBackend

# Reporting a failure, hypothesis imports libcst, which warns about mypy_extensions: without
# this the strict warning filter turns a real failure into an internal error.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

# HYPOTHESIS_PROFILE=fuzz (tox -e fuzz, CI): the long run. Explicit @settings would override
# the profile, so each test picks its count from here.
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
SHARDS = max(1, int(os.environ.get("FUZZ_SHARDS", "1")))


def examples(default: int, fuzz: int) -> settings:
    """Settings with ``default`` examples (``fuzz`` under the fuzz profile).

    No "explain" phase: it imports libcst, whose DeprecationWarning the strict warning filter
    would turn into an internal error while reporting a real failure.
    """
    return settings(
        max_examples=-(-fuzz // SHARDS) if FUZZ else default,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    )


LIMIT = 64
TRUSTED = ("api.example", "*.api.example")

STRICT_ENV = {
    "TRUSTED_HOSTS": ",".join(TRUSTED),
    "TRUSTED_PROXIES": "10.0.0.0/8",
    "ALLOWED_ORIGINS": "https://app.example",
    "MAX_REQUEST_SIZE": str(LIMIT),
    "RATE_LIMIT_DEFAULT": "30/minute",
    "RATE_LIMIT_RULES": "/api/*=5/minute",
    "RATE_LIMIT_EXEMPT_PATHS": "/health",
    "MAX_CONCURRENT_REQUESTS": "2",
    "REQUEST_TIMEOUT": "5",
    "FORCE_HTTPS": "true",
    "CSP_NONCE": "true",
    "CSP_REPORT_ONLY": "default-src 'self'",
    "CSP_REPORT_PATH": "/csp",
    "PATH_HEADERS": '{"/docs": {"content-security-policy": "default-src \'self\'", '
    '"x-frame-options": ""}}',
    "EXCLUDED_PATHS": "/metrics",
    "SUSPICIOUS_MODE": "block",
}
OPEN_ENV = {
    "ALLOWED_ORIGINS": "*",
    "TRUSTED_PROXIES": "10.0.0.0/8,::1",
    "TRUSTED_PROXY_HEADER": "forwarded",
    "MAX_REQUEST_SIZE": str(LIMIT),
    "RATE_LIMIT_DEFAULT": "none",
    "FORCE_HTTPS": "true",
    "CANONICAL_HOST": "www.example:8443",
    "WEBSOCKET_ALLOWED_ORIGINS": "https://ws.example",
}
CONFIGS = {
    "strict": SecurityConfig.from_env(STRICT_ENV, env_file=None),
    "open": SecurityConfig.from_env(OPEN_ENV, env_file=None),
}
HOSTS = {name: HostPolicy(config.hosts.trusted_hosts) for name, config in CONFIGS.items()}


async def _unset(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("each example sets its own app")


# Compiled once (as in production); each example gives them its app and fresh rate buckets.
MIDDLEWARES = {name: SecurityMiddleware(_unset, config) for name, config in CONFIGS.items()}

# Every status a request can end with: the app's own 200, asgisec's answers.
APP_STATUS = 200
STATUSES = {APP_STATUS, 204, 308, 400, 403, 413, 429, 500, 503, 504}
# Statuses only asgisec sends before the app (a 204 is a preflight or a CSP report).
BEFORE_APP = {204, 308, 400, 403, 429, 503}
SECURITY_HEADERS = (b"x-content-type-options", b"x-frame-options", b"referrer-policy")


class AppError(Exception):
    """What the app raises; each instance is checked by identity."""


# --------------------------------------------------------------------------- strategies

HEADER_NAMES = [
    b"host",
    b"origin",
    b"content-length",
    b"x-request-id",
    b"access-control-request-method",
    b"access-control-request-headers",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"forwarded",
    b"transfer-encoding",
    b"user-agent",
    b"content-type",
    b"referer",
]
HEADER_VALUES = [
    b"api.example",
    b"API.example:8000",
    b"a.api.example.",
    b"evil.example",
    b"api.example@evil.example",
    b"[::1]:80",
    b"[::1]evil",
    b"https://app.example",
    b"https://ws.example",
    b"null",
    b"https",
    b"http, https",
    b"for=10.0.0.1;proto=https",
    b'for="[::1]";proto=HTTPS, for=1.2.3.4',
    b"10.0.0.9, 203.0.113.1",
    b"0",
    b"10",
    b"65",
    b"00064",
    b"-1",
    b"1" * 5000,
    b"POST",
    b"content-type, x-request-id",
    b"\xff\xfe\x00\r\n",
    "é😀".encode(),
    b"chunked",
    b"application/json",
    b"application/x-www-form-urlencoded; charset=utf-8",
    b"sqlmap/1.7",
]
PATHS = [
    "/",
    "/health",
    "/health/../admin",
    "/csp",
    "/docs/index.html",
    "/metrics",
    "/api/items",
    "/api/items/",
    "//evil.example/x",
    "/ws",
    "*",
    "",
    "/\x00\r\n",
    "/é/😀",
    "/\ud800",
]
METHODS = ["GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE", "get", "", "M" * 300, "GÉT"]
CLIENTS = [
    None,
    ("203.0.113.7", 40000),
    ("10.0.0.5", 1),
    ("::1", 2),
    ("not-an-ip", 3),
    ("", 0),
    ("10.0.0.5", 1),
]

# Bodies the suspicious-request scan reads (form or JSON) before the app, whole or in pieces.
BODIES = [b'{"q": "<script>alert(1)</script>"}', b"q=1'+OR+'1'%3D'1", b'{"a": ', b"1}", b"x" * 60]

names = st.one_of(st.sampled_from(HEADER_NAMES), st.binary(max_size=12))
values = st.one_of(st.sampled_from(HEADER_VALUES), st.binary(max_size=40))
headers = st.lists(st.tuples(names, values), max_size=12)
paths = st.one_of(
    st.sampled_from(PATHS), st.text(max_size=30), st.text(max_size=20).map("/".__add__)
)
APP_BEHAVIOURS = ["read", "ignore", "stream", "raise_before", "raise_after", "swallow", "echo"]


@dataclass
class Request:
    scope: dict[str, Any]
    chunks: list[bytes]
    disconnect_after: int | None
    behaviour: str
    # Filled in while it runs.
    sent: list[dict[str, Any]] = field(default_factory=list)
    app_called: bool = False
    app_received: int = 0
    raised: AppError | None = None
    escaped: BaseException | None = None


@st.composite
def requests(draw: st.DrawFn) -> Request:
    kind = draw(st.sampled_from(["http"] * 5 + ["websocket"]))
    raw = draw(headers)
    padding = draw(st.sampled_from([0, 0, 0, 50, 3000]))
    raw = raw + [(b"x-pad", b"v")] * padding  # thousands of headers, cheaply
    if draw(st.booleans()):
        raw.insert(0, (b"host", draw(st.sampled_from(HEADER_VALUES[:6]))))
    path = draw(paths)
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": draw(st.sampled_from(["1.1", "2", "1.0"])),
        "scheme": draw(st.sampled_from(["http", "https", "ws", "wss", "HTTP", ""])),
        "path": path,
        "query_string": draw(st.binary(max_size=20)),
        "root_path": "",
        "headers": raw,
        "client": draw(st.sampled_from(CLIENTS)),
        "server": ("127.0.0.1", 8000),
        "extensions": draw(st.sampled_from([{}, {"websocket.http.response": {}}])),
    }
    if draw(st.booleans()):
        scope["raw_path"] = draw(st.binary(max_size=30))
    if kind == "http":
        scope["method"] = draw(st.sampled_from(METHODS))
    else:
        scope["subprotocols"] = []
    chunks = draw(st.lists(st.one_of(st.binary(max_size=50), st.sampled_from(BODIES)), max_size=4))
    disconnect_after = draw(st.one_of(st.none(), st.integers(0, 3)))
    behaviour = draw(st.sampled_from(APP_BEHAVIOURS))
    return Request(scope, chunks, disconnect_after, behaviour)


# --------------------------------------------------------------------------- the app and run


def make_app(requests_by_scope: dict[int, Request]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = requests_by_scope[id(scope)]
        request.app_called = True
        behaviour = request.behaviour
        if scope["type"] == "websocket":
            if behaviour == "raise_before":
                request.raised = AppError("websocket")
                raise request.raised
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": 1000})
            return
        if behaviour == "raise_before":
            request.raised = AppError("before")
            raise request.raised
        if behaviour in ("read", "stream", "raise_after", "echo", "swallow"):
            try:
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        break
                    request.app_received += len(message.get("body", b""))
                    await asyncio.sleep(0)
                    if not message.get("more_body", False):
                        break
            except Exception:
                if behaviour != "swallow":
                    raise
        start = {
            "type": "http.response.start",
            "status": APP_STATUS,
            "headers": [(b"content-type", b"text/plain")],
        }
        await send(start)
        if behaviour == "raise_after":
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            request.raised = AppError("after")
            raise request.raised
        if behaviour == "stream":
            for piece in (b"a", b"b"):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                await asyncio.sleep(0)
        body = str(scope.get("csp_nonce", "")).encode() if behaviour == "echo" else b"ok"
        await send({"type": "http.response.body", "body": body})

    return app


async def run_one(middleware: SecurityMiddleware, request: Request) -> None:
    inbox: list[dict[str, Any]]
    if request.scope["type"] == "websocket":
        inbox = [{"type": "websocket.connect"}]
    else:
        chunks = request.chunks or [b""]
        inbox = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        if request.disconnect_after is not None and request.disconnect_after < len(inbox):
            inbox = inbox[: request.disconnect_after]
    disconnect = (
        {"type": "websocket.disconnect", "code": 1006}
        if request.scope["type"] == "websocket"
        else {"type": "http.disconnect"}
    )

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        return inbox.pop(0) if inbox else disconnect

    async def send(message: Any) -> None:
        request.sent.append(dict(message))
        await asyncio.sleep(0)

    try:
        await middleware(request.scope, receive, send)
    except BaseException as exc:  # the property is about what escapes
        request.escaped = exc


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


# --------------------------------------------------------------------------- the properties


def check_http(request: Request, config_name: str) -> None:
    excluded = config_name == "strict" and PathMap({"/metrics": True}).match(request.scope["path"])
    if excluded:  # EXCLUDED_PATHS: the app's own business, whatever it does
        assert request.app_called
        return
    starts = [m for m in request.sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, request.sent
    start = starts[0]
    assert request.sent[0] is start or request.sent.index(start) == 0
    status = start["status"]
    assert status in STATUSES, status
    response_headers = list(start["headers"])
    for name, value in response_headers:
        assert isinstance(name, bytes)
        assert isinstance(value, bytes)
        assert not any(c in value for c in b"\r\n\x00"), (name, value)
        assert not any(c in name for c in b"\r\n\x00: "), name
    names_sent = [name for name, _ in response_headers]
    for name in SECURITY_HEADERS:
        if name == b"x-frame-options" and request.scope["path"].startswith("/docs"):
            continue  # PATH_HEADERS switches it off there
        assert names_sent.count(name) == 1, (name, response_headers)
    assert names_sent.count(b"x-request-id") == 1
    assert names_sent.count(b"server") == 0
    if status in BEFORE_APP:
        assert not request.app_called, status
    if status == APP_STATUS:
        assert request.app_called
    if request.app_called:
        assert status in (APP_STATUS, 413, 500, 504), status
        host = [v for k, v in request.scope["headers"] if k == b"host"]
        policy = HOSTS[config_name]
        if host:
            assert len(host) == 1
            assert policy.allows(parse_host(host[0]))
        else:
            assert policy.allow_any
    assert request.app_received <= LIMIT


def check_websocket(request: Request) -> None:
    kinds = [m["type"] for m in request.sent]
    if "websocket.accept" in kinds:
        assert request.app_called
        return
    if not request.app_called:
        assert kinds in (
            [],  # the client left before the handshake was read
            ["websocket.close"],
            ["websocket.http.response.start", "websocket.http.response.body"],
        ), kinds
        if kinds == ["websocket.close"]:
            assert request.sent[0]["code"] == 1008
        elif kinds:
            assert request.sent[0]["status"] == 403


@st.composite
def scanned_requests(draw: st.DrawFn) -> Request:
    """Requests that pass every check up to the body scan: form or JSON bodies, odd chunks."""
    request = draw(requests())
    scope = request.scope
    content_type = draw(
        st.sampled_from([b"application/json", b"application/x-www-form-urlencoded"])
    )
    headers = [(b"host", b"api.example"), (b"content-type", content_type)]
    if draw(st.booleans()):
        length = sum(len(chunk) for chunk in request.chunks)
        headers.append((b"content-length", b"%d" % draw(st.sampled_from([length, length + 5]))))
    scope.update(type="http", scheme="https", method="POST", path="/api/x", headers=headers)
    scope.pop("subprotocols", None)
    scope["client"] = draw(st.sampled_from([("203.0.113.7", 1), ("203.0.113.8", 2)]))
    return request


@examples(300, 100_000)
@given(
    config_name=st.sampled_from(sorted(CONFIGS)),
    batch=st.lists(requests(), min_size=1, max_size=3),
)
def test_nothing_escapes_the_pipeline(
    loop: asyncio.AbstractEventLoop, config_name: str, batch: list[Request]
) -> None:
    run_batch(loop, config_name, batch)


@examples(200, 4_000)
@given(
    config_name=st.sampled_from(sorted(CONFIGS)),
    batch=st.lists(scanned_requests(), min_size=1, max_size=3),
)
def test_nothing_escapes_the_body_scan(
    loop: asyncio.AbstractEventLoop, config_name: str, batch: list[Request]
) -> None:
    # Random requests rarely get this far (trusted Host, https, a form or JSON type): here
    # every one reaches the scan that reads the body before the app, under the deadline.
    run_batch(loop, config_name, batch)


def run_batch(loop: asyncio.AbstractEventLoop, config_name: str, batch: list[Request]) -> None:
    middleware = MIDDLEWARES[config_name]
    middleware.app = make_app({id(request.scope): request for request in batch})
    middleware.backend = MemoryBackend(clock=lambda: 0)  # fresh buckets, frozen time

    async def together() -> None:
        await asyncio.gather(*(run_one(middleware, request) for request in batch))

    loop.run_until_complete(together())
    for request in batch:
        assert request.escaped is request.raised, (request.escaped, request.raised)
        if request.scope["type"] == "http":
            check_http(request, config_name)
        else:
            check_websocket(request)
    if middleware.slots is not None:
        assert middleware.slots.in_use == 0
    if middleware.deadlines is not None:
        assert not middleware.deadlines.running


# --------------------------------------------------------------------------- totality of parts


@examples(2000, 5_000)
@given(
    peer=st.one_of(st.none(), st.sampled_from(["10.0.0.5", "::1", "x"]), st.text(max_size=20)),
    header_values=st.one_of(st.none(), st.lists(st.binary(max_size=40), max_size=3)),
    mode=st.sampled_from(["x-forwarded-for", "forwarded"]),
)
def test_forwarded_proto_is_total(
    peer: str | None, header_values: list[bytes] | None, mode: str
) -> None:
    proto = ClientResolver(("10.0.0.0/8", "::1"), mode).forwarded_proto(peer, header_values)
    assert proto in (None, b"http", b"https", b"ws", b"wss")


@examples(2000, 5_000)
@given(path=st.text(max_size=40))
def test_path_map_is_total(path: str) -> None:
    match = PathMap({"/docs": 1, "/": 0, "/a/b": 2}).match(path)
    assert match in (None, 0, 1, 2)
    if match == 1:
        assert path == "/docs" or path.startswith("/docs/")


REDIRECTS = HttpsPolicy(GuardsConfig(force_https=True), HostPolicy(["api.example"]))


@examples(2000, 5_000)
@given(raw_path=st.binary(max_size=60), query=st.binary(max_size=60))
def test_redirect_location_is_one_safe_url_on_the_validated_host(
    raw_path: bytes, query: bytes
) -> None:
    location = REDIRECTS.location("api.example", raw_path, query)
    assert location.startswith(b"https://api.example/")
    assert all(0x21 <= c <= 0x7E for c in location), location
    assert b"#" not in location
    assert location.count(b"?") <= 1 + query.count(b"?")


@examples(500, 3_000)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.builds(
            msgspec.json.encode,
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(
                        st.sampled_from(
                            [
                                "csp-report",
                                "body",
                                "type",
                                "document-uri",
                                "blocked-uri",
                                "documentURL",
                            ]
                        ),
                        inner,
                        max_size=3,
                    )
                ),
                max_leaves=10,
            ),
        ),
    )
)
def test_csp_report_reader_is_total(body: bytes) -> None:
    count = read_reports(body, "fuzz")
    assert count is None or count >= 0
