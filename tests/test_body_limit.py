"""Request size: declared lengths refused before the app runs, streamed bodies cut at the limit.

Cases: B31 (a chunked body, or one longer than its Content-Length, is counted and refused) and
B32 (an oversized Content-Length is refused before the handler runs, so it has no side effect).
The app never receives a byte past the limit.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgisec import RateLimitConfig, RequestConfig, SecurityConfig, SecurityMiddleware
from tests.driver import Response, make_scope, run

LIMIT = 1000


class Reader:
    """Reads the whole body, then answers 200 with its length; remembers what it received."""

    def __init__(self, *, swallow: bool = False, start_first: bool = False) -> None:
        self.calls = 0
        self.received = b""
        self.swallow = swallow  # catch every exception while reading, like a sloppy handler
        self.start_first = start_first  # stream the response before reading the request

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        if self.start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                message = await receive()
                self.received += message.get("body", b"")
                if not message.get("more_body", False):
                    break
        except Exception:
            if not self.swallow:
                raise
        if not self.start_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(self.received)).encode()})


def _middleware(app: Any, limit: int = LIMIT) -> SecurityMiddleware:
    config = SecurityConfig(
        request=RequestConfig(max_request_size=limit),
        rate_limit=RateLimitConfig(rate_limit_default="none"),
    )
    return SecurityMiddleware(app, config)


def _post(
    app: SecurityMiddleware, chunks: list[bytes], headers: list[tuple[str, str]] | None = None
) -> Response:
    return run(app, make_scope("POST", "/upload", headers or []), chunks)


def _assert_413(response: Response, middleware: SecurityMiddleware) -> None:
    assert response.status == 413
    assert response.json()["error"] == "too_large"
    assert response.header("content-type") == "application/json"
    assert response.header("content-length") == str(len(response.body))
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("x-request-id")
    assert middleware.counters.blocked["too_large"] == 1


# --------------------------------------------------------------------------- B32: declared

DECLARED = [
    ("5000", 413, "B32 declared over the limit"),
    (str(LIMIT + 1), 413, "one byte over"),
    (str(LIMIT), 200, "exactly the limit"),
    ("0", 200, "empty"),
    ("0000001001", 413, "leading zeros over"),
    ("000100", 200, "leading zeros under"),
    ("9" * 5000, 413, "a length too long to convert"),
]


@pytest.mark.parametrize(
    ("length", "status"), [c[:2] for c in DECLARED], ids=[c[2] for c in DECLARED]
)
def test_b32_declared_length_is_checked_before_the_app_runs(length: str, status: int) -> None:
    app = Reader()
    middleware = _middleware(app)
    body = b"x" * min(int(length[:6]), LIMIT)
    response = _post(middleware, [body], [("content-length", length)])
    assert response.status == status
    if status == 413:
        assert app.calls == 0, "the handler must not run (and have side effects) at all"
        _assert_413(response, middleware)
    else:
        assert app.received == body


MALFORMED = [
    ("abc", "not a number"),
    ("-1", "negative"),
    ("+5", "signed"),
    ("1.0", "decimal"),
    ("", "empty"),
    ("0x10", "hex"),
    ("\u0661\u0662", "non-ascii digits"),
]


@pytest.mark.parametrize("length", [c[0] for c in MALFORMED], ids=[c[1] for c in MALFORMED])
def test_malformed_content_length_is_a_bad_request(length: str) -> None:
    app = Reader()
    middleware = _middleware(app)
    scope = make_scope("POST", "/upload")
    scope["headers"].append((b"content-length", length.encode()))
    response = run(middleware, scope)
    assert response.status == 400
    assert response.json()["error"] == "bad_request"
    assert app.calls == 0
    assert middleware.counters.blocked["bad_request"] == 1


@pytest.mark.parametrize(
    ("lengths", "status"),
    [(["10", "10"], 200), (["10", "11"], 400)],
    ids=["repeated equal lengths", "conflicting lengths"],
)
def test_repeated_content_length(lengths: list[str], status: int) -> None:
    app = Reader()
    headers = [("content-length", length) for length in lengths]
    response = _post(_middleware(app), [b"x" * 10], headers)
    assert response.status == status


# --------------------------------------------------------------------------- B31: streamed

STREAMED = [
    ([600, 600], 413, "B31 two chunks of 600"),
    ([LIMIT + 1], 413, "one chunk over"),
    ([1] * (LIMIT + 1), 413, "many tiny chunks"),
    ([LIMIT, 1], 413, "the last byte"),
    ([500, 500], 200, "exactly the limit in two chunks"),
    ([0, LIMIT, 0], 200, "empty chunks around the limit"),
    ([0], 200, "no body"),
]


@pytest.mark.parametrize(
    ("sizes", "status"), [c[:2] for c in STREAMED], ids=[c[2] for c in STREAMED]
)
def test_b31_streamed_body_is_counted(sizes: list[int], status: int) -> None:
    app = Reader()
    middleware = _middleware(app)
    chunks = [b"x" * size for size in sizes]
    response = _post(middleware, chunks)  # no Content-Length: chunked
    assert response.status == status
    assert len(app.received) <= LIMIT, "the app must never receive a byte past the limit"
    if status == 413:
        _assert_413(response, middleware)
    else:
        assert app.received == b"".join(chunks)
        assert response.body == str(sum(sizes)).encode()


def test_b31_body_longer_than_its_content_length() -> None:
    """B31 variant: ``Content-Length: 10`` but 1200 bytes streamed (a lenient server)."""
    app = Reader()
    middleware = _middleware(app)
    response = _post(middleware, [b"x" * 600, b"x" * 600], [("content-length", "10")])
    _assert_413(response, middleware)
    assert len(app.received) <= LIMIT


def test_app_that_swallows_the_refusal_still_gets_413() -> None:
    """The app catches the error and answers 200; its answer is dropped for the 413."""
    app = Reader(swallow=True)
    middleware = _middleware(app)
    response = _post(middleware, [b"x" * 600, b"x" * 600])
    _assert_413(response, middleware)
    assert app.received == b"x" * 600


def test_response_already_started_cannot_become_413_but_is_counted() -> None:
    app = Reader(start_first=True)
    middleware = _middleware(app)
    response = _post(middleware, [b"x" * 600, b"x" * 600])
    assert response.status == 200  # already on the wire
    assert app.received == b"x" * 600
    assert middleware.counters.blocked["too_large"] == 1


@pytest.mark.parametrize(
    ("headers", "sizes"),
    [([("content-length", str(10**9))], [10]), ([], [5000, 5000])],
    ids=["declared", "streamed"],
)
def test_zero_disables_the_limit(headers: list[tuple[str, str]], sizes: list[int]) -> None:
    app = Reader()
    response = _post(_middleware(app, limit=0), [b"x" * s for s in sizes], headers)
    assert response.status == 200
    assert len(app.received) == sum(sizes)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 64),
    st.lists(st.integers(0, 40), max_size=8),
    st.booleans(),
)
def test_the_app_never_receives_a_byte_past_the_limit(
    limit: int, sizes: list[int], declare: bool
) -> None:
    """Whatever the chunking: 413 exactly when the body exceeds the limit, else all of it."""
    app = Reader()
    chunks = [bytes([65 + i % 26]) * size for i, size in enumerate(sizes)]
    body = b"".join(chunks)
    headers = [("content-length", str(len(body)))] if declare else []
    response = _post(_middleware(app, limit), chunks or [b""], headers)
    assert len(app.received) <= limit
    if len(body) > limit:
        assert response.status == 413
        assert body.startswith(app.received)
    else:
        assert response.status == 200
        assert app.received == body
