"""Real servers on loopback for the guards' over-the-wire tests, and a raw websocket handshake.

``running(app, server)`` serves an ASGI app with real uvicorn or real hypercorn in a thread of
this process and yields its base URL. uvicorn runs without its proxy-header rewriting (as
``asgisec serve`` does), so what a test sends in ``X-Forwarded-Proto`` reaches asgisec as sent.
:class:`ServerErrors` collects what the servers log at ERROR and above, so a test can say
"nothing was logged as a server error".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

__all__ = ["SERVERS", "ServerErrors", "handshake", "running"]

SERVERS = ("uvicorn", "hypercorn")
_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "hypercorn.error", "asyncio")


class ServerErrors(logging.Handler):
    """Records ERROR+ messages of the servers' loggers while installed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")

    @contextlib.contextmanager
    def installed(self) -> Iterator[ServerErrors]:
        loggers = [logging.getLogger(name) for name in _LOGGERS]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


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
            httpx.get(url + "/health", timeout=1, trust_env=False)
            return
        except httpx.TransportError:
            time.sleep(0.02)
    raise AssertionError(f"server at {url} did not start")


@contextlib.contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    sock = _bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,  # leave logging alone: ServerErrors listens on uvicorn's loggers
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=False,  # asgisec decides whom to believe, as under `asgisec serve`
        server_header=False,
        ws="wsproto",
        backlog=2048,
    )
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


@contextlib.contextmanager
def _hypercorn(app: Any) -> Iterator[str]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = _bound_socket()
    port = sock.getsockname()[1]
    sock.listen(2048)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns the listening socket now
    config.loglevel = "WARNING"
    config.backlog = 2048
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


def running(app: Any, server: str) -> contextlib.AbstractContextManager[str]:
    """Serve ``app`` with ``server`` ("uvicorn" or "hypercorn"); the base URL while it runs."""
    return _uvicorn(app) if server == "uvicorn" else _hypercorn(app)


def handshake(url: str, path: str, headers: dict[str, str], timeout: float = 10) -> bytes:
    """Open a websocket handshake by hand; return the status line the server answered."""
    host, port = url.removeprefix("http://").split(":")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {headers.pop('Host', f'{host}:{port}')}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]
