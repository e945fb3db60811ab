"""The benchmark harness: one event loop, one realistic request, batches of it per round.

Every case wraps the same bare raw-ASGI app and is driven by the same :class:`Runner`:

* One event loop for the whole session (:func:`loop`). A round is one
  ``loop.run_until_complete(batch())`` where ``batch`` awaits the app :data:`BATCH` times in a
  row, so the cost of entering the loop (a task, a few callbacks: a few µs) is shared by
  :data:`BATCH` requests and is the same for every case; it cancels out of the overhead.
* Per request the runner copies the scope (a server builds a fresh one per request) and hands
  the app a ``receive`` that returns the whole body at once and a ``send`` that drops what it is
  given. Nothing in the pipeline awaits real I/O, so a batch runs in one task step and the time
  is the CPU cost of the middleware on the event-loop thread.
* pytest-benchmark times one batch per iteration; per-request time is that time divided by
  :data:`BATCH` (``extra_info["batch"]`` records the divisor for ``report.py``).

:func:`exchange` sends one request and keeps every message, so each benchmark can check once,
outside the timed part, that the app answers what the case claims to measure.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Header = tuple[bytes, bytes]

# Requests per round: enough that loop entry (~5-10 µs) is < 0.1 µs per request, few enough
# that a round stays well under a millisecond and pytest-benchmark gets thousands of rounds.
BATCH = 100

HOST = "api.example.com"
ORIGIN = "https://app.example.com"
BODY = b'{"latitude": 51.4779, "longitude": -0.0015, "time": "2024-06-21T12:00:00Z"}'

# What a browser's fetch() of a JSON API sends after TLS termination: 8 headers.
REQUEST_HEADERS: tuple[Header, ...] = (
    (b"host", HOST.encode()),
    (
        b"user-agent",
        b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/126.0.0.0 Safari/537.36",
    ),
    (b"accept", b"application/json, text/plain, */*"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"origin", ORIGIN.encode()),
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
)

RESPONSE_BODY = b'{"altitude": 62.0, "azimuth": 180.2}'


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app every case wraps: reads the JSON body, answers 200 JSON. Raw ASGI, no framework.

    The response start message and its header list are built per call, as real apps do:
    Starlette's CORSMiddleware edits the message in place.
    """
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(RESPONSE_BODY)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": RESPONSE_BODY})


def make_scope() -> dict[str, Any]:
    """The request every case serves: ``POST /api/calculate`` over HTTPS from an allowed origin."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/api/calculate",
        "raw_path": b"/api/calculate",
        "query_string": b"",
        "root_path": "",
        "headers": list(REQUEST_HEADERS),
        "client": ("203.0.113.7", 40000),
        "server": ("10.0.0.2", 8000),
        "extensions": {},
    }


_REQUEST_MESSAGE: Message = {"type": "http.request", "body": BODY, "more_body": False}


async def _receive() -> Message:
    return _REQUEST_MESSAGE


async def _discard(message: Message) -> None:
    return None


class Response:
    """Everything one request sent back: status, raw headers (duplicates kept), body."""

    def __init__(self, messages: list[Message]) -> None:
        starts = [m for m in messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, f"expected one response start, got {messages}"
        self.status: int = starts[0]["status"]
        self.headers: list[Header] = [(bytes(k), bytes(v)) for k, v in starts[0]["headers"]]
        self.body = b"".join(
            m.get("body", b"") for m in messages if m["type"] == "http.response.body"
        )

    def values(self, name: str) -> list[str]:
        key = name.encode()
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == key]

    def names(self) -> set[str]:
        return {k.decode("latin-1").lower() for k, _ in self.headers}


async def exchange(app: ASGIApp, scope: Scope) -> Response:
    """One request through ``app`` with the benchmark's ``receive``, keeping what it sends."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(scope), _receive, send)
    return Response(sent)


class Runner:
    """Runs :data:`BATCH` requests through ``app`` per call, on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: ASGIApp, batch: int = BATCH) -> None:
        self.loop = loop
        self.app = app
        self.batch = batch
        self.scope = make_scope()

    async def _batch(self) -> None:
        app, scope, receive, send = self.app, self.scope, _receive, _discard
        for _ in range(self.batch):
            await app(dict(scope), receive, send)

    def __call__(self) -> None:
        self.loop.run_until_complete(self._batch())

    def once(self) -> Response:
        """One request, every message kept: for checks outside the timed part."""
        return self.loop.run_until_complete(exchange(self.app, self.scope))


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The one event loop every benchmark of the session runs on."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(event_loop.shutdown_asyncgens())
    event_loop.close()


# --------------------------------------------------------------------------- machine description

PACKAGES = (
    "asgisec",
    "msgspec",
    "starlette",
    "secure",
    "Secweb",
    "slowapi",
    "limits",
    "pytest",
    "pytest-benchmark",
)


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_description() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": versions,
        "batch": BATCH,
        # Other work on the machine shows up as spread (IQR) and a high mean.
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Record the machine in the JSON itself, so a report describes the run it reads."""
    machine_info["asgisec_bench"] = machine_description()
