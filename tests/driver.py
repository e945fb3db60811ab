"""A small in-process ASGI driver: send one request through an app and collect the answer.

It speaks raw ASGI (no framework, no test client) so tests see exactly the messages the
middleware sends, including duplicated headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

import msgspec

Message = MutableMapping[str, Any]


class Response:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.raw_headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The single value of ``name``; fails the test if it appears more than once."""
        values = self.headers_named(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        key = name.lower().encode()
        return [v.decode("latin-1") for k, v in self.raw_headers if k.lower() == key]

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def make_scope(
    method: str = "GET",
    path: str = "/",
    headers: Sequence[tuple[str, str]] | None = None,
    *,
    scheme: str = "http",
    client: tuple[str, int] | None = ("203.0.113.7", 40000),
    query: bytes = b"",
    host: str | None = "api.example",
) -> dict[str, Any]:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers or ()]
    if host is not None and not any(k == b"host" for k, _ in raw):
        raw.insert(0, (b"host", host.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": raw,
        "client": client,
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }


async def call(app: Any, scope: dict[str, Any], body_chunks: Iterable[bytes] = (b"",)) -> Response:
    """Run ``app`` on ``scope`` feeding ``body_chunks``; return what it sent."""
    chunks = list(body_chunks) or [b""]
    queue: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # a client that says nothing more; the app must not wait
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = [m for m in sent if m["type"] == "http.response.start"]
    assert len(start) == 1, f"expected one response start, got {sent}"
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Response(start[0]["status"], list(start[0]["headers"]), body)


def run(app: Any, scope: dict[str, Any], body_chunks: Iterable[bytes] = (b"",)) -> Response:
    return asyncio.run(call(app, scope, body_chunks))
