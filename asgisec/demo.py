"""The demo API served by ``asgisec demo``: a small solar "involution engine" in raw ASGI.

It exists so that the middleware has a real application to protect (JSON bodies, validation
errors, a health check that reports the security block) without pulling a framework into the
core: like the rest of asgisec it needs msgspec only. Endpoints::

    GET  /                 index of the endpoints
    GET  /health           {"status", "checks": {"security": security_health(scope)}}
    POST /api/calculate    the sun's altitude and azimuth at a time and place
    POST /api/timesolve    the next time the sun rises or sets through a given altitude

Choices worth knowing:

* Any ``Content-Type`` is accepted if the body parses as JSON, so ``curl -d`` works without a
  header. That also makes these POSTs "simple" cross-origin requests (no preflight); harmless
  here, as the API has no cookies, no credentials and no state to change.
* The body is read in full and capped at :data:`MAX_BODY` (413) even though the middleware in
  front enforces its own limit: the app stays safe when served unwrapped.
* Invalid input, malformed JSON included, is 422 with msgspec's message, which names the field
  (``Expected `float` <= 90.0 - at `$.latitude```). Unknown fields are refused, so a typo such
  as ``"lat"`` is reported rather than silently ignored.
* Angles are rounded to 4 decimals (0.0001°), finer than the algorithm's 0.01° accuracy but
  enough to compare with NOAA's calculator; times are whole seconds in UTC.
* Exceptions in a handler propagate to the server (or the middleware, which answers 500).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from .solar import STANDARD_HORIZON, find_crossing, solar_position
from .status import security_health

__all__ = [
    "MAX_BODY",
    "CalculateRequest",
    "CalculateResponse",
    "TimesolveRequest",
    "TimesolveResponse",
    "app",
    "calculate",
    "timesolve",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]

MAX_BODY = 65_536  # 64 KiB: a valid request is ~100 bytes; anything this big is not one of ours
_FIRST_YEAR, _LAST_YEAR = 1800, 2200  # Meeus's series stay near 0.01° within centuries of 2000
_DIGITS = 4  # 0.0001°: below the algorithm's accuracy, so rounding loses nothing real

Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0, description="degrees, north +")]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0, description="degrees, east +")]
Instant = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339, with an offset")]


class _Input(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Request bodies: immutable, and an unknown field is an error (typos are reported)."""


def _check_year(field: str, moment: datetime) -> None:
    if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
        raise ValueError(f"`{field}` must be between the years {_FIRST_YEAR} and {_LAST_YEAR}")


class CalculateRequest(_Input, frozen=True):
    time: Instant
    latitude: Latitude
    longitude: Longitude

    def __post_init__(self) -> None:
        _check_year("time", self.time)


class TimesolveRequest(_Input, frozen=True):
    after: Instant
    latitude: Latitude
    longitude: Longitude
    altitude: Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)] = STANDARD_HORIZON
    direction: Literal["rising", "setting"] = "rising"

    def __post_init__(self) -> None:
        _check_year("after", self.after)


class CalculateResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The inputs echoed, then the sun's angles in degrees (rounded to 0.0001)."""

    time: datetime
    latitude: float
    longitude: float
    altitude: float  # geometric, no refraction
    apparent_altitude: float  # with NOAA's refraction
    azimuth: float
    declination: float
    hour_angle: float
    equation_of_time: float  # minutes


class TimesolveResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The inputs echoed, then the crossing (``time``, UTC) or ``null`` and a ``reason``."""

    after: datetime
    latitude: float
    longitude: float
    altitude: float
    direction: str
    time: datetime | None  # encoded as null when there is no crossing
    azimuth: float | None
    reason: str | None


def _angle(value: float) -> float:
    return round(value, _DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0


def calculate(request: CalculateRequest) -> CalculateResponse:
    """``/api/calculate``: where the sun is."""
    position = solar_position(request.time, request.latitude, request.longitude)
    return CalculateResponse(
        time=request.time,
        latitude=request.latitude,
        longitude=request.longitude,
        altitude=_angle(position.altitude),
        apparent_altitude=_angle(position.apparent_altitude),
        azimuth=_angle(position.azimuth) % 360.0,  # 359.99996 must not round to 360
        declination=_angle(position.declination),
        hour_angle=_angle(position.hour_angle),
        equation_of_time=_angle(position.equation_of_time),
    )


def timesolve(request: TimesolveRequest) -> TimesolveResponse:
    """``/api/timesolve``: when the sun next crosses an altitude (a few ms at most, run inline)."""
    crossing = find_crossing(
        request.after,
        request.latitude,
        request.longitude,
        altitude=request.altitude,
        direction=request.direction,
    )
    azimuth = None
    if crossing.time is not None:
        where = solar_position(crossing.time, request.latitude, request.longitude)
        azimuth = _angle(where.azimuth) % 360.0
    return TimesolveResponse(
        after=request.after,
        latitude=request.latitude,
        longitude=request.longitude,
        altitude=request.altitude,
        direction=request.direction,
        time=crossing.time,
        azimuth=azimuth,
        reason=crossing.reason,
    )


# --------------------------------------------------------------------------- canned bodies


def _error(reason: str, message: str) -> bytes:
    return msgspec.json.encode({"error": reason, "message": message})


_INDEX = msgspec.json.encode(
    {
        "name": "asgisec demo: solar involution engine",
        "endpoints": [
            {"method": "GET", "path": "/", "description": "this index"},
            {
                "method": "GET",
                "path": "/health",
                "description": "service status with asgisec's security block",
            },
            {
                "method": "POST",
                "path": "/api/calculate",
                "description": "sun position: {time, latitude, longitude} -> altitude "
                "(geometric), apparent_altitude (with refraction), azimuth (from north)",
            },
            {
                "method": "POST",
                "path": "/api/timesolve",
                "description": "next crossing: {after, latitude, longitude, altitude=-0.833, "
                "direction=rising|setting} -> time or null with a reason",
            },
        ],
    }
)
_NOT_FOUND = _error("not_found", "No endpoint at this path; GET / lists them.")
_TOO_LARGE = _error("too_large", f"Request body larger than {MAX_BODY} bytes.")
_EMPTY = _error("validation_error", "Request body is empty; expected a JSON object.")


class _ClientGone(Exception):
    """The client disconnected while the body was being read: there is nobody to answer."""


async def _send(
    send: Send, status: int, body: bytes, *, head: bool = False, extra: Sequence[Header] = ()
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    """The whole request body, or ``None`` when it is (or says it is) over :data:`MAX_BODY`."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _post(scope: Scope, receive: Receive, send: Send, path: str) -> None:
    try:
        body = await _read_body(scope, receive)
    except _ClientGone:
        return
    if body is None:
        await _send(send, 413, _TOO_LARGE)
        return
    if not body.strip():
        await _send(send, 422, _EMPTY)
        return
    result: msgspec.Struct
    try:
        if path == "/api/calculate":
            result = calculate(msgspec.json.decode(body, type=CalculateRequest))
        else:
            result = timesolve(msgspec.json.decode(body, type=TimesolveRequest))
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        await _send(send, 422, _error("validation_error", str(exc)))
        return
    await _send(send, 200, msgspec.json.encode(result))


_ROUTES: dict[str, tuple[str, ...]] = {
    "/": ("GET", "HEAD"),
    "/health": ("GET", "HEAD"),
    "/api/calculate": ("POST",),
    "/api/timesolve": ("POST",),
}
_NOT_ALLOWED = {
    path: (
        _error("method_not_allowed", f"Use {' or '.join(m for m in methods if m != 'HEAD')}."),
        ((b"allow", ", ".join(methods).encode("ascii")),),
    )
    for path, methods in _ROUTES.items()
}


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    path, method = scope["path"], scope["method"]
    methods = _ROUTES.get(path)
    if methods is None:
        await _send(send, 404, _NOT_FOUND, head=method == "HEAD")
        return
    if method not in methods:
        body, allow = _NOT_ALLOWED[path]
        await _send(send, 405, body, head=method == "HEAD", extra=allow)
        return
    head = method == "HEAD"
    if path == "/":
        await _send(send, 200, _INDEX, head=head)
    elif path == "/health":
        block = security_health(scope)
        # The service is as healthy as its protection: "unprotected" when served unwrapped.
        health = {"status": block["status"], "checks": {"security": block}}
        await _send(send, 200, msgspec.json.encode(health), head=head)
    else:
        await _post(scope, receive, send, path)


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to open or close, but servers wait for these answers before serving."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 entry point: ``uvicorn asgisec.demo:app`` (or ``asgisec demo``, secured)."""
    kind = scope["type"]
    if kind == "http":
        await _http(scope, receive, send)
    elif kind == "websocket":
        # No websocket endpoints: close before accepting, which servers send as a 403.
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1000, "reason": "no websocket endpoints"})
    elif kind == "lifespan":
        await _lifespan(receive, send)
    else:  # the ASGI spec asks apps to fail on scope types they do not know
        raise RuntimeError(f"unsupported ASGI scope type {kind!r}")
