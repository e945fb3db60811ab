"""The peer middlewares, built around the benchmark's bare app as their users would build them.

* Starlette ``TrustedHostMiddleware`` / ``CORSMiddleware`` and a ``BaseHTTPMiddleware`` that
  adds the security headers: the "typical user stack" of hand-assembled Starlette parts.
* ``secure`` (pip ``secure``): ``SecureASGIMiddleware`` with its default headers.
* Secweb: ``SecWeb(app)``, which adds one pure-ASGI middleware with its default headers.
* slowapi: ``SlowAPIASGIMiddleware`` with a default limit on the memory storage. slowapi finds
  the route's endpoint in a Starlette app (an unmatched route is exempt), so its cases run the
  bare app as a Starlette route and are compared with :func:`starlette_router` (the same
  router without slowapi), not with the bare app.
* limits: a minimal ASGI middleware calling ``limits``' async fixed-window limiter on memory
  storage, keyed by client address — what a user writes when they take the library directly.

Every limit is far above what a benchmark can send, so nothing is ever refused while timed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, cast

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter
from secure.middleware.asgi import SecureASGIMiddleware
from Secweb.index import SecWeb
from slowapi import Limiter
from slowapi.middleware import SlowAPIASGIMiddleware
from slowapi.util import get_remote_address
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .conftest import HOST, ORIGIN, ASGIApp

__all__ = [
    "ALLOWED_HOSTS",
    "HEADERS",
    "LIMIT",
    "full_secure_slowapi",
    "full_secweb_limits",
    "full_typical_slowapi",
    "limits_middleware",
    "secure_headers",
    "secweb_headers",
    "slowapi_stack",
    "starlette_router",
    "typical_stack",
    "user_headers",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ALLOWED_HOSTS = (HOST, "www.example.com")
LIMIT = "1000000/second"  # never reached in a run: the admitting path is what is timed

# What a user's header middleware typically sets (the OWASP list asgisec also sends).
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-store",
}


class UserHeaders(BaseHTTPMiddleware):
    """The hand-written header middleware of countless tutorials."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers[name] = value
        return response


def user_headers(app: ASGIApp) -> ASGIApp:
    return UserHeaders(app)


def trusted_host(app: ASGIApp, hosts: Sequence[str] = ALLOWED_HOSTS) -> ASGIApp:
    """``hosts``: the over-the-wire run trusts ``127.0.0.1`` (wrk's ``Host``) instead of
    :data:`~benchmarks.conftest.HOST`; everything else is built the same."""
    return TrustedHostMiddleware(app, allowed_hosts=list(hosts))


def cors(app: ASGIApp) -> ASGIApp:
    return CORSMiddleware(app, allow_origins=[ORIGIN])


def typical_stack(app: ASGIApp, hosts: Sequence[str] = ALLOWED_HOSTS) -> ASGIApp:
    """Starlette TrustedHost + CORS + a BaseHTTPMiddleware adding headers (outermost first)."""
    return trusted_host(cors(user_headers(app)), hosts)


def secure_headers(app: ASGIApp) -> ASGIApp:
    return cast(ASGIApp, SecureASGIMiddleware(app))  # typed with `object` scopes; ASGI all the same


class _AddMiddleware:
    """What ``SecWeb(app)`` needs of a Starlette app: ``add_middleware``, applied at once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def add_middleware(self, factory: Callable[..., ASGIApp], **options: Any) -> None:
        self.app = factory(self.app, **options)


def secweb_headers(app: ASGIApp) -> ASGIApp:
    holder = _AddMiddleware(app)
    SecWeb(holder)  # type: ignore[arg-type]
    return holder.app


class _Endpoint:
    """The bare app as a route endpoint: an object, so Starlette calls it as ASGI as-is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.__name__ = "calculate"  # slowapi names routes by their endpoint's module and name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def starlette_router(app: ASGIApp, *middleware: Middleware) -> ASGIApp:
    """The bare app as the only route of a Starlette app (slowapi's baseline)."""
    routes = [Route("/api/calculate", _Endpoint(app), methods=["POST"])]
    return Starlette(routes=routes, middleware=list(middleware))


def slowapi_stack(
    *outer: Callable[[ASGIApp], ASGIApp], limit: str = LIMIT
) -> Callable[[ASGIApp], ASGIApp]:
    """slowapi (memory storage, a default limit) inside a Starlette app, then ``outer``."""

    def build(app: ASGIApp) -> ASGIApp:
        starlette = starlette_router(app, Middleware(SlowAPIASGIMiddleware))
        limiter = Limiter(key_func=get_remote_address, default_limits=[limit])
        starlette.state.limiter = limiter  # type: ignore[attr-defined]
        built = starlette
        for wrap in reversed(outer):
            built = wrap(built)
        return built

    return build


class LimitsMiddleware:
    """A per-client limit with ``limits`` directly: async fixed window on memory storage."""

    def __init__(self, app: ASGIApp, limit: str = LIMIT) -> None:
        self.app = app
        self.limit = parse(limit)
        self.limiter = FixedWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            key = client[0] if client else "-"
            if not await self.limiter.hit(self.limit, key, scope["path"]):
                body = b'{"error": "rate_limited"}'
                headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
                await send({"type": "http.response.start", "status": 429, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def limits_middleware(app: ASGIApp, limit: str = LIMIT) -> ASGIApp:
    return LimitsMiddleware(app, limit)


# --------------------------------------------------------------------------- the full stacks
# (each offers hosts, headers, CORS and a rate limit; test_overhead.py and wire_apps.py both
# build them here, so the in-process and the over-the-wire runs measure the same stacks)


def _hosts(hosts: Sequence[str]) -> Callable[[ASGIApp], ASGIApp]:
    def wrap(app: ASGIApp) -> ASGIApp:
        return trusted_host(app, hosts)

    return wrap


def full_typical_slowapi(hosts: Sequence[str] = ALLOWED_HOSTS) -> Callable[[ASGIApp], ASGIApp]:
    """The typical user stack + slowapi (memory)."""
    return slowapi_stack(_hosts(hosts), cors, user_headers)


def full_secure_slowapi(hosts: Sequence[str] = ALLOWED_HOSTS) -> Callable[[ASGIApp], ASGIApp]:
    """Starlette TrustedHost + CORS + secure + slowapi (memory)."""
    return slowapi_stack(_hosts(hosts), cors, secure_headers)


def full_secweb_limits(hosts: Sequence[str] = ALLOWED_HOSTS) -> Callable[[ASGIApp], ASGIApp]:
    """Starlette TrustedHost + CORS + Secweb + limits (memory)."""

    def build(app: ASGIApp) -> ASGIApp:
        return trusted_host(cors(secweb_headers(limits_middleware(app))), hosts)

    return build
