"""The apps that ``benchmarks/wire.py`` serves, one uvicorn process per case (app factories).

Every case answers the same request (``POST /api/calculate``, a 76-byte JSON body) with the
same 200 JSON body, so the cases differ only in what is under test:

- ``bare``: a raw-ASGI app that reads the body and answers;
- ``bare_with_headers``: ``bare`` sending the very headers asgisec adds (what writing them
  costs the HTTP server: uvicorn's h11 validates and encodes each one in Python);
- ``asgisec_memory``: ``secure(bare)`` with the in-process backend (the pipeline's own cost);
- ``asgisec_redis``: ``secure(bare)`` with ``RATE_LIMIT_STORAGE_URI=redis://...``: one Lua
  call per request, the calls of one event-loop tick coalesced into one pipeline;
- ``asgisec_redis_unbatched``: the same with coalescing off (``max_batch=1``, a connection per
  call in flight), to measure what coalescing buys;
- ``redis_ping``: ``bare`` plus one redis-py ``PING`` per request, awaited;
- ``redis_evalsha``: ``bare`` plus one redis-py ``EVALSHA`` of asgisec's own script, with
  the same key and arguments asgisec sends: the same work in Redis, without asgisec;
- ``starlette``: the same endpoint as a Starlette route (what slowapi needs around it);
- ``slowapi_redis``: that Starlette app with slowapi's ASGI middleware on Redis.

The peer comparison (issue 7) wraps the same ``bare`` app with the builders of
``benchmarks/peers.py`` and the asgisec configurations of ``benchmarks/stages.py``, as the
in-process run (``benchmarks/test_overhead.py``) does; the only difference is the trusted host
list, :data:`WIRE_HOSTS` (wrk's ``Host`` is ``127.0.0.1``) instead of ``api.example.com``:

- ``typical_stack``: Starlette TrustedHost + CORS + a ``BaseHTTPMiddleware`` adding headers;
- ``slowapi_memory``: slowapi's ASGI middleware, memory storage (``bare`` as a Starlette route);
- ``peer_typical_slowapi``, ``peer_secure_slowapi``, ``peer_secweb_limits``: the three full
  peer stacks (hosts, headers, CORS, rate limit on memory);
- ``asgisec_hosts``, ``asgisec_headers``, ``asgisec_cors``, ``asgisec_ratelimit``: one asgisec
  stage on (memory buckets), the others off;
- ``asgisec_full`` / ``asgisec_full_redis``: like for like with the full peer stacks: hosts,
  headers, CORS, body limit, rate limit, guards; detection and request logs off (no peer has
  them);
- ``asgisec_shipped``: ``asgisec_full`` with detection on (the default, ``log``); request logs
  stay off so that writing a line per request to the terminal is not what is measured.

The issue-3 cases ``asgisec_memory``/``asgisec_redis``/``asgisec_redis_unbatched`` keep their
configuration: asgisec's defaults (detection on, no CORS configured) with request logs off.

Every case gets the same request: the in-process benchmark's browser-like headers
(:data:`REQUEST_HEADERS`, an allowed ``Origin`` among them) and body. The Redis URL comes from
``ASGISEC_WIRE_REDIS_URL``. Every limit is far above what a run can reach (1000000/second), so no
case ever refuses: each measures the cost of deciding.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, cast

from asgisec import SecurityConfig, SecurityMiddleware, secure
from benchmarks import conftest, peers
from benchmarks.stages import FULL_STAGES, OBSERVE_ON, STAGE_ON, STAGES_OFF

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REDIS_URL_VARIABLE = "ASGISEC_WIRE_REDIS_URL"
PATH = "/api/calculate"
BODY = b'{"latitude": 51.4779, "longitude": -0.0015, "time": "2024-06-21T12:00:00Z"}'
RESPONSE = b'{"altitude":61.9,"azimuth":179.6}'
LIMIT = "1000000/second"  # never reached: every case decides, none refuses
# The hosts TrustedHost and asgisec trust on the wire: wrk's Host (and a second, as in-process).
WIRE_HOSTS = ("127.0.0.1", "www.example.com")
ORIGIN = conftest.ORIGIN
# What every wire request carries besides Host and Content-Length (wrk sets those): the
# in-process benchmark's request headers, the allowed Origin among them, and the
# X-Forwarded-Proto of a TLS-terminating proxy: uvicorn trusts it from 127.0.0.1 by default
# and serves the request as ``https``, as in-process (asgisec sends HSTS only over HTTPS).
REQUEST_HEADERS: tuple[tuple[str, str], ...] = (
    *(
        (name.decode(), value.decode())
        for name, value in conftest.REQUEST_HEADERS
        if name not in (b"host", b"content-length")
    ),
    ("x-forwarded-proto", "https"),
)
RESPONSE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(RESPONSE)).encode()),
]


def _redis_url() -> str:
    url = os.environ.get(REDIS_URL_VARIABLE)
    if not url:
        raise RuntimeError(f"{REDIS_URL_VARIABLE} is not set (benchmarks/wire.py sets it)")
    return url


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(receive: Receive, send: Send) -> None:
    more = True
    while more:  # read the whole body, as an endpoint would
        message = await receive()
        more = message.get("more_body", False)
    # A new header list per response, as real apps build it: middlewares (Secweb, Starlette's
    # CORS) edit the message's list in place, so a shared list would grow request by request.
    headers = list(RESPONSE_HEADERS)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": RESPONSE})


async def _bare(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http":
        await _answer(receive, send)


def bare() -> ASGIApp:
    return _bare


def _asgisec_headers() -> list[tuple[bytes, bytes]]:
    """The response headers ``asgisec_memory`` sends, taken from one request through it.

    The memory backend never suspends, so the request runs to its end in one ``send(None)``:
    no event loop is needed (uvicorn's is already running when it calls a factory).
    """
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",  # as uvicorn passes the wire's requests on (X-Forwarded-Proto)
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-length", str(len(BODY)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    coroutine = cast(Coroutine[Any, Any, None], asgisec_memory()(scope, receive, send))
    try:
        coroutine.send(None)
    except StopIteration:
        pass
    else:  # pragma: no cover - the pipeline suspended: no longer loop-free
        coroutine.close()
        raise RuntimeError("asgisec_memory suspended outside an event loop")
    headers: list[tuple[bytes, bytes]] = list(sent[0]["headers"])
    return headers


def bare_with_headers() -> ASGIApp:
    headers = _asgisec_headers()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            more = True
            while more:
                message = await receive()
                more = message.get("more_body", False)
            start = {"type": "http.response.start", "status": 200, "headers": list(headers)}
            await send(start)
            await send({"type": "http.response.body", "body": RESPONSE})

    return app


def _config(storage: str) -> SecurityConfig:
    return SecurityConfig.from_env(
        environ={
            "TRUSTED_HOSTS": "127.0.0.1",
            "RATE_LIMIT_DEFAULT": LIMIT,
            "RATE_LIMIT_STORAGE_URI": storage,
            # Like for like: the peers write no log line per request.
            "ENABLE_REQUEST_LOGGING": "false",
        },
        env_file=None,
    )


def asgisec_memory() -> ASGIApp:
    return secure(_bare, _config("memory://"))


def asgisec_redis() -> ASGIApp:
    return secure(_bare, _config(_redis_url()))


def asgisec_redis_unbatched() -> ASGIApp:
    """As :func:`asgisec_redis`, with each call in a pipeline of its own."""
    from asgisec.ratelimit.redis import RedisBackend, client_from_url
    from asgisec.ratelimit.resilient import ResilientBackend

    config = _config(_redis_url())
    timeout = config.rate_limit.rate_limit_backend_timeout
    client, _ = client_from_url(_redis_url(), timeout=timeout, connect_timeout=1.0)
    # 64 pipelines in flight: as many as the benchmark has clients, so no call waits for one.
    primary = RedisBackend(client, timeout=timeout, max_batch=1, max_inflight=64)
    backend = ResilientBackend(primary, timeout_s=timeout)
    return SecurityMiddleware(_bare, config, backend=backend)


def redis_ping() -> ASGIApp:
    from redis.asyncio import Redis

    client = Redis.from_url(_redis_url())

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await client.ping()
            await _answer(receive, send)

    return app


def redis_evalsha() -> ASGIApp:
    """One ``EVALSHA`` of asgisec's script per request: the same keys and arguments."""
    from redis.asyncio import Redis

    from asgisec.ratelimit.redis import SCRIPT, SCRIPT_SHA, script_arguments
    from asgisec.ratelimit.rules import RuleSet

    client = Redis.from_url(_redis_url())
    buckets = RuleSet(_config("memory://").rate_limit).match(PATH)
    keys, args = script_arguments("127.0.0.1", buckets, 1)
    loaded = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal loaded
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            if not loaded:  # once, outside the measured part in practice (the warm-up)
                await client.script_load(SCRIPT)
                loaded = True
            await client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
            await _answer(receive, send)

    return app


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def calculate(request: Request) -> Response:
        await request.body()
        return Response(RESPONSE, media_type="application/json")

    return Starlette(routes=[Route(PATH, calculate, methods=["POST"])])


def starlette() -> ASGIApp:
    app: ASGIApp = _starlette_app()
    return app


def slowapi_redis() -> ASGIApp:
    """slowapi as its README sets it up for every route, on Redis, with its ASGI middleware."""
    from slowapi import Limiter, _rate_limit_exceeded_handler
    from slowapi.errors import RateLimitExceeded
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address

    app = _starlette_app()
    limiter = Limiter(key_func=get_remote_address, default_limits=[LIMIT], storage_uri=_redis_url())
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
    app.add_middleware(SlowAPIASGIMiddleware)
    wrapped: ASGIApp = app
    return wrapped


# --------------------------------------------------------------------------- issue 7: the peers


def typical_stack() -> ASGIApp:
    return peers.typical_stack(_bare, WIRE_HOSTS)


def slowapi_memory() -> ASGIApp:
    return peers.slowapi_stack()(_bare)


def peer_typical_slowapi() -> ASGIApp:
    return peers.full_typical_slowapi(WIRE_HOSTS)(_bare)


def peer_secure_slowapi() -> ASGIApp:
    return peers.full_secure_slowapi(WIRE_HOSTS)(_bare)


def peer_secweb_limits() -> ASGIApp:
    return peers.full_secweb_limits(WIRE_HOSTS)(_bare)


def stages_config(*stages: str, storage: str = "memory://") -> SecurityConfig:
    """As ``test_overhead.config``: every stage off but ``stages``, hosts :data:`WIRE_HOSTS`."""
    on = {**STAGE_ON, **OBSERVE_ON, "TRUSTED_HOSTS": ",".join(WIRE_HOSTS)}
    environ = {**STAGES_OFF, **{variable: on[variable] for variable in stages}}
    environ["RATE_LIMIT_STORAGE_URI"] = storage
    return SecurityConfig.from_env(environ, env_file=None)


def asgisec_hosts() -> ASGIApp:
    return SecurityMiddleware(_bare, stages_config("TRUSTED_HOSTS"))


def asgisec_headers() -> ASGIApp:
    return SecurityMiddleware(_bare, stages_config("ENABLE_SECURITY_HEADERS"))


def asgisec_cors() -> ASGIApp:
    return SecurityMiddleware(_bare, stages_config("ALLOWED_ORIGINS"))


def asgisec_ratelimit() -> ASGIApp:
    return SecurityMiddleware(_bare, stages_config("RATE_LIMIT_DEFAULT"))


def asgisec_full() -> ASGIApp:
    return secure(_bare, stages_config(*FULL_STAGES))


def asgisec_full_redis() -> ASGIApp:
    return secure(_bare, stages_config(*FULL_STAGES, storage=_redis_url()))


def asgisec_shipped() -> ASGIApp:
    return secure(_bare, stages_config(*FULL_STAGES, "SUSPICIOUS_MODE"))
