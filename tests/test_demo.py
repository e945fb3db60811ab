"""The demo API, driven in-process with raw ASGI messages (``tests/driver.py``).

Each table row is one request and what the API promises for it: the status, the JSON shape,
and for refusals the exact message a client sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

import msgspec
import pytest

from asgisec import SecurityConfig, SecurityMiddleware
from asgisec.demo import MAX_BODY, app
from tests.driver import Response, make_scope, run

JSON = [("content-type", "application/json")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def post(path: str, payload: object, headers: list[tuple[str, str]] | None = None) -> Response:
    body = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
    return run(app, make_scope("POST", path, JSON if headers is None else headers), [body])


def get(path: str, method: str = "GET", scope: dict[str, Any] | None = None) -> Response:
    return run(app, scope or make_scope(method, path))


# --------------------------------------------------------------------------- answers

GREENWICH = {"latitude": 51.4769, "longitude": -0.0005}


def test_index_lists_every_endpoint() -> None:
    response = get("/")
    assert response.status == 200
    paths = [(e["method"], e["path"]) for e in response.json()["endpoints"]]
    assert paths == [
        ("GET", "/"),
        ("GET", "/health"),
        ("POST", "/api/calculate"),
        ("POST", "/api/timesolve"),
    ]


def test_calculate_answers_the_position_and_echoes_the_input() -> None:
    # PyEphem 4.2.1 (no refraction): altitude 61.9545, azimuth 179.1134, declination 23.4367.
    payload = {"time": "2026-06-21T12:00:00Z", "latitude": 51.48, "longitude": 0.0}
    response = post("/api/calculate", payload)
    assert response.status == 200
    body = response.json()
    assert list(body) == [
        "time",
        "latitude",
        "longitude",
        "altitude",
        "apparent_altitude",
        "azimuth",
        "declination",
        "hour_angle",
        "equation_of_time",
    ]
    assert (body["time"], body["latitude"], body["longitude"]) == (
        "2026-06-21T12:00:00Z",
        51.48,
        0.0,
    )
    assert body["altitude"] == pytest.approx(61.9545, abs=0.01)
    assert body["azimuth"] == pytest.approx(179.1134, abs=0.01)
    assert body["declination"] == pytest.approx(23.4367, abs=0.01)
    # Refraction lifts the sun by about half an arcminute at 62 degrees.
    assert body["apparent_altitude"] - body["altitude"] == pytest.approx(0.0086, abs=0.0002)


def test_calculate_keeps_the_callers_offset_in_the_echo() -> None:
    local = {"time": "2026-06-21T14:00:00+02:00", "latitude": 51.48, "longitude": 0.0}
    utc = {**local, "time": "2026-06-21T12:00:00Z"}
    from_local, from_utc = post("/api/calculate", local).json(), post("/api/calculate", utc).json()
    assert from_local.pop("time") == "2026-06-21T14:00:00+02:00"
    from_utc.pop("time")
    assert from_local == from_utc


def test_timesolve_answers_the_next_sunrise_with_the_defaults_echoed() -> None:
    response = post("/api/timesolve", {"after": "2026-06-21T00:00:00Z", **GREENWICH})
    assert response.status == 200
    body = response.json()
    assert list(body) == [
        "after",
        "latitude",
        "longitude",
        "altitude",
        "direction",
        "time",
        "azimuth",
        "reason",
    ]
    assert (body["altitude"], body["direction"], body["reason"]) == (-0.833, "rising", None)
    # PyEphem: 03:42:46 UTC (04:43 BST), north-east of the observatory.
    when = datetime.fromisoformat(body["time"])
    expected = datetime.fromisoformat("2026-06-21T03:42:46+00:00")
    assert abs((when - expected).total_seconds()) <= 60
    assert body["time"].endswith("Z")
    assert body["azimuth"] == pytest.approx(48.9, abs=0.5)


def test_timesolve_setting_through_another_altitude() -> None:
    payload = {"after": "2026-06-21T12:00:00Z", **GREENWICH, "altitude": 10, "direction": "setting"}
    body = post("/api/timesolve", payload).json()
    assert body["time"] is not None
    assert "2026-06-21T18:" < body["time"] < "2026-06-21T20:"  # an evening, before sunset


def test_timesolve_without_a_crossing_is_null_with_a_reason() -> None:
    payload = {"after": "2026-06-01T00:00:00Z", "latitude": 90, "longitude": 0, "altitude": 30}
    response = post("/api/timesolve", payload)
    assert response.status == 200
    body = response.json()
    assert (body["time"], body["azimuth"]) == (None, None)
    assert body["reason"] == "the sun stays below 30.0° for the next 366 days"


def test_health_unwrapped_reports_unprotected() -> None:
    response = get("/health")
    assert response.status == 200
    assert response.json() == {
        "status": "unprotected",
        "checks": {
            "security": {
                "status": "unprotected",
                "blocked_requests": 0,
                "rate_limited_requests": 0,
                "suspicious_requests": 0,
                "security_headers_enabled": False,
                "trusted_hosts_configured": 0,
            }
        },
    }


class _Guard:
    """Stands in for the middleware in the scope: only ``health()`` is read."""

    def __init__(self, status: str) -> None:
        self.status = status

    def health(self) -> dict[str, Any]:
        return {"status": self.status, "blocked_requests": 3}


@pytest.mark.parametrize("status", ["healthy", "degraded"])
def test_health_status_is_the_security_blocks(status: str) -> None:
    scope = make_scope("GET", "/health")
    scope["asgisec"] = _Guard(status)
    body = get("/health", scope=scope).json()
    assert body == {
        "status": status,
        "checks": {"security": {"status": status, "blocked_requests": 3}},
    }


def test_health_wrapped_by_the_middleware_is_healthy() -> None:
    wrapped = SecurityMiddleware(app, SecurityConfig())
    response = run(wrapped, make_scope("GET", "/health"))
    assert response.status == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["checks"]["security"]["security_headers_enabled"] is True


# --------------------------------------------------------------------------- refusals

CALC = {"time": "2026-06-21T12:00:00Z", "latitude": 51.48, "longitude": 0.0}
SOLVE = {"after": "2026-06-21T00:00:00Z", "latitude": 51.48, "longitude": 0.0}

CALCULATE, TIMESOLVE = "/api/calculate", "/api/timesolve"

# (path, fields changed from a valid request (None deletes one), msgspec's message)
INVALID_FIELDS = {
    "latitude-above-90": (
        CALCULATE,
        {"latitude": 91},
        "Expected `float` <= 90.0 - at `$.latitude`",
    ),
    "latitude-below-90": (
        CALCULATE,
        {"latitude": -90.5},
        "Expected `float` >= -90.0 - at `$.latitude`",
    ),
    "longitude-out": (
        CALCULATE,
        {"longitude": 181},
        "Expected `float` <= 180.0 - at `$.longitude`",
    ),
    "latitude-a-string": (
        CALCULATE,
        {"latitude": "51"},
        "Expected `float`, got `str` - at `$.latitude`",
    ),
    "time-without-offset": (
        CALCULATE,
        {"time": "2026-06-21T12:00:00"},
        "Expected `datetime` with a timezone component - at `$.time`",
    ),
    "time-not-a-date": (
        CALCULATE,
        {"time": "noon"},
        "Invalid RFC3339 encoded datetime - at `$.time`",
    ),
    "time-before-1800": (
        CALCULATE,
        {"time": "1700-01-01T00:00:00Z"},
        "`time` must be between the years 1800 and 2200",
    ),
    "missing-field": (CALCULATE, {"longitude": None}, "Object missing required field `longitude`"),
    "unknown-field": (CALCULATE, {"lat": 1}, "Object contains unknown field `lat`"),
    "bad-direction": (
        TIMESOLVE,
        {"direction": "sideways"},
        "Invalid enum value 'sideways' - at `$.direction`",
    ),
    "altitude-out": (TIMESOLVE, {"altitude": 95}, "Expected `float` <= 90.0 - at `$.altitude`"),
    "after-2300": (
        TIMESOLVE,
        {"after": "2300-01-01T00:00:00Z"},
        "`after` must be between the years 1800 and 2200",
    ),
}


@pytest.mark.parametrize(
    ("path", "changes", "message"), INVALID_FIELDS.values(), ids=INVALID_FIELDS.keys()
)
def test_an_invalid_field_is_422_naming_it(
    path: str, changes: dict[str, object], message: str
) -> None:
    valid = CALC if path == CALCULATE else SOLVE
    payload = {k: v for k, v in {**valid, **changes}.items() if v is not None}
    response = post(path, payload)
    assert response.status == 422
    assert response.json() == {"error": "validation_error", "message": message}


INVALID_BODIES = {
    "not-an-object": (b"[1, 2]", "Expected `object`, got `array`"),
    "malformed-json": (b'{"time": ', "Input data was truncated"),
    "form-encoded": (b"latitude=51", "JSON is malformed: invalid character (byte 0)"),
    "empty": (b"", "Request body is empty; expected a JSON object."),
    "blank": (b" \r\n", "Request body is empty; expected a JSON object."),
}


@pytest.mark.parametrize(("body", "message"), INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_an_invalid_body_is_422_saying_why(body: bytes, message: str) -> None:
    response = post("/api/calculate", body)
    assert response.status == 422
    assert response.json() == {"error": "validation_error", "message": message}


NOT_ALLOWED = [
    pytest.param("GET", "/api/calculate", "POST", id="get-calculate"),
    pytest.param("PUT", "/api/timesolve", "POST", id="put-timesolve"),
    pytest.param("POST", "/health", "GET, HEAD", id="post-health"),
    pytest.param("DELETE", "/", "GET, HEAD", id="delete-index"),
]


@pytest.mark.parametrize(("method", "path", "allow"), NOT_ALLOWED)
def test_wrong_method_is_405_with_allow(method: str, path: str, allow: str) -> None:
    response = get(path, method)
    assert response.status == 405
    assert response.header("allow") == allow
    assert response.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/nope", "/api/calculate/", "/API/calculate", "/api"])
def test_unknown_path_is_404_json(path: str) -> None:
    response = get(path)
    assert response.status == 404
    assert response.json() == {
        "error": "not_found",
        "message": "No endpoint at this path; GET / lists them.",
    }


def test_a_body_over_the_cap_is_413_even_unwrapped() -> None:
    chunk = b" " * 16_384
    response = run(app, make_scope("POST", "/api/calculate", JSON), [chunk] * 5)
    assert response.status == 413
    assert response.json()["error"] == "too_large"


def test_a_declared_length_over_the_cap_is_413_before_reading() -> None:
    headers = [*JSON, ("content-length", str(MAX_BODY + 1))]
    response = run(app, make_scope("POST", "/api/calculate", headers), [])
    assert response.status == 413


# --------------------------------------------------------------------------- transport


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(lambda: get("/"), id="index"),
        pytest.param(lambda: get("/health"), id="health"),
        pytest.param(lambda: post("/api/calculate", CALC), id="calculate"),
        pytest.param(lambda: post("/api/calculate", b"{"), id="422"),
        pytest.param(lambda: get("/nope"), id="404"),
        pytest.param(lambda: get("/api/calculate"), id="405"),
    ],
)
def test_every_answer_is_json_with_its_length(response: Any) -> None:
    answer: Response = response()
    assert answer.header("content-type") == "application/json"
    assert answer.header("content-length") == str(len(answer.body))
    msgspec.json.decode(answer.body)


def test_head_sends_the_headers_of_get_without_the_body() -> None:
    full, head = get("/"), get("/", "HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.header("content-length") == str(len(full.body))


def test_a_body_in_several_chunks_is_read_whole() -> None:
    body = msgspec.json.encode(CALC)
    pieces = [body[:7], body[7:20], b"", body[20:]]
    response = run(app, make_scope("POST", "/api/calculate", JSON), pieces)
    assert response.status == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_any_content_type_is_accepted_if_the_body_is_json(content_type: str | None) -> None:
    headers = [] if content_type is None else [("content-type", content_type)]
    assert post("/api/calculate", CALC, headers).status == 200


Message = MutableMapping[str, Any]


async def talk(scope: dict[str, Any], incoming: list[Message]) -> list[Message]:
    """Run the app on ``scope``, feeding ``incoming``; what it sent, once it returns."""
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    return sent


@pytest.mark.anyio
async def test_lifespan_startup_and_shutdown_complete() -> None:
    sent = await talk(
        {"type": "lifespan", "asgi": {"version": "3.0"}},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


@pytest.mark.anyio
async def test_a_websocket_is_closed_before_accept() -> None:
    scope = {**make_scope("GET", "/ws"), "type": "websocket"}
    sent = await talk(scope, [{"type": "websocket.connect"}])
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1000


@pytest.mark.anyio
async def test_a_client_gone_mid_body_gets_no_answer() -> None:
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"time"', "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert await talk(make_scope("POST", "/api/calculate", JSON), incoming) == []


@pytest.mark.anyio
async def test_an_unknown_scope_type_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="unsupported ASGI scope type 'telepathy'"):
        await talk({"type": "telepathy"}, [])
