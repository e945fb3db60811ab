"""Apps the operator-tool tests audit and monitor, served by real uvicorn processes.

* ``weak_app``: everything an audit must catch: no security headers, any Origin (``null``
  too) reflected with credentials, a versioned ``Server`` and ``X-Powered-By``, a session
  cookie without flags, a Python traceback on errors, and a path traversal that only an
  encoded ``%2e%2e`` reaches (case A18).
* ``starlette_star`` / ``starlette_listed``: Starlette's CORSMiddleware with
  ``allow_origins=["*"]`` and with one origin, both with credentials (cases A11, A13).
* ``cookie_app``: a cookie whose value is Latin-1 (not ASCII), and ``/seen``, which
  tells whether any request came back with a ``Cookie`` header.
* ``counters_app``: a ``/health`` whose security counters, ``started_at``, ``fleet`` totals and
  status the test sets through ``POST /control``, to drive the monitor over the wire.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

__all__ = ["cookie_app", "counters_app", "starlette_listed", "starlette_star", "weak_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FAKE_PASSWD = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _traceback() -> bytes:
    session: dict[str, str] = {}
    try:
        session["user_id"]  # the bug the weak app "has"
    except KeyError:
        return ("Internal Server Error\n\n" + traceback.format_exc()).encode()
    return b""


async def weak_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    request = dict(scope["headers"])
    headers = [
        (b"content-type", b"application/json"),
        (b"server", b"nginx/1.25.3"),
        (b"x-powered-by", b"Express"),
        (b"set-cookie", b"sessionid=0123456789abcdef; Path=/"),
    ]
    origin = request.get(b"origin")
    if origin is not None:  # reflects anything, `null` included, with credentials
        headers += [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
        ]
    path, method = scope["path"], scope["method"]
    if method == "OPTIONS":
        headers += [
            (b"access-control-allow-methods", b"GET, POST, PUT, DELETE"),
            (b"access-control-allow-headers", request.get(b"access-control-request-headers", b"*")),
        ]
        await _respond(send, 204, b"", headers)
    elif ".." in path and path.endswith("/etc/passwd"):
        # The decoded path still holds the dots (uvicorn does not normalise them): a naive
        # file server joined it to its root. A client that normalises /../ never gets here.
        await _respond(send, 200, FAKE_PASSWD, [(b"content-type", b"text/plain")])
    elif path == "/" and method in ("GET", "HEAD"):
        await _respond(send, 200, b'{"status": "ok"}', headers)
    else:
        await _respond(send, 500, _traceback(), [(b"content-type", b"text/plain"), *headers[1:]])


_cookies_seen: list[bytes] = []


async def cookie_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    cookie = dict(scope["headers"]).get(b"cookie")
    if scope["path"] == "/seen":
        await _respond(send, 200, b"\n".join(_cookies_seen), [(b"content-type", b"text/plain")])
        return
    if cookie is not None:
        _cookies_seen.append(cookie)
    headers = [
        (b"content-type", b"application/json"),
        # Latin-1, as legacy servers send it: not ASCII, not even valid UTF-8.
        (b"set-cookie", "name=Zoë; Path=/; HttpOnly; SameSite=Lax".encode("latin-1")),
    ]
    await _respond(send, 200, b'{"status": "ok"}', headers)


def _starlette(origins: list[str]) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def index(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/", index)],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_credentials=True,
                allow_methods=["*"],
                allow_headers=["*"],
            )
        ],
    )


starlette_star = _starlette(["*"])
starlette_listed = _starlette(["https://app.example.com"])


# --------------------------------------------------------------------------- counters

_STATE: dict[str, Any] = {
    "status": "healthy",
    "http_status": 200,
    "blocked_requests": 0,
    "rate_limited_requests": 0,
    "suspicious_requests": 0,
    "total_requests": 0,
    "started_at": 1_700_000_000.0,
}


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body", False):
            return body


async def counters_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    json = [(b"content-type", b"application/json")]
    if scope["path"] == "/control" and scope["method"] == "POST":
        _STATE.update(msgspec.json.decode(await _read(receive)))
        await _respond(send, 200, msgspec.json.encode(_STATE), json)
        return
    if scope["path"] == "/health":
        block = {
            key: _STATE[key]
            for key in (
                "status",
                "blocked_requests",
                "rate_limited_requests",
                "suspicious_requests",
                "total_requests",
                "started_at",
            )
        }
        block |= {"security_headers_enabled": True, "trusted_hosts_configured": 1}
        if _STATE.get("fleet"):  # the totals of every process, as asgisec reports them on Redis
            block["fleet"] = _STATE["fleet"]
        body = {"status": _STATE["status"], "checks": {"security": block}}
        await _respond(send, _STATE["http_status"], msgspec.json.encode(body), json)
        return
    await _respond(send, 404, b'{"error": "not_found"}', json)
