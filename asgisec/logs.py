"""Request logs: one JSON line per request, written off the event loop, secrets redacted.

Lines go to the ``asgisec.requests`` logger. If the application has not given that logger
handlers of its own, asgisec attaches one (:class:`StderrLines`) fed by a writer thread, and
while it is the logger's only handler the request path skips the ``logging`` machinery
altogether: it encodes the line (msgspec) and appends it to the writer's queue, a few µs,
where a ``LogRecord`` through a ``QueueHandler`` and a ``QueueListener`` cost tens of µs and
a write per line. The thread writes whatever has queued up in one ``write`` per batch, so a
slow terminal or pipe never blocks the event loop, and it drains the queue when the process
exits, so no line is lost. Once the application adds a handler of its own, lines go through
``logging`` as usual, to its handlers and to stderr alike. A failure to log is swallowed and
never reaches a response.

Redaction (``LOG_SENSITIVE_DATA=false``, the default) replaces the values of credential
headers (Authorization, Cookie, Set-Cookie, API keys, tokens) and of secret-looking query
parameters (``token``, ``password``, ``api_key`` ...), in the request's query and in the
Referer's, with ``[REDACTED]``.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote_plus

import msgspec

__all__ = ["LOGGER_NAME", "REDACTED", "RequestLog", "redact_headers", "redact_query"]

LOGGER_NAME = "asgisec.requests"
REDACTED = "[REDACTED]"

_SECRET_HEADERS = frozenset(
    {
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
        b"x-api-key",
        b"api-key",
        b"apikey",
        b"x-auth-token",
        b"x-access-token",
        b"x-csrf-token",
        b"x-xsrf-token",
    }
)
_SECRET_NAME = re.compile(
    r"token|secret|passw|pwd|api[_-]?key|apikey|auth|session|credential|signature|"
    r"private|access[_-]?key|jwt|bearer|cookie|^sig$|^code$|^key$",
    re.IGNORECASE,
)
# Headers that carry a URL, whose query may hold a token (an OAuth callback page's URL is the
# next request's Referer).
_URL_HEADERS = frozenset({b"referer"})
_MAX_VALUE = 1_024  # characters kept of any logged value: a log line stays a line


def redact_headers(headers: Any, sensitive: bool) -> dict[str, str]:
    """Request headers for a log line; credential values hidden unless ``sensitive``."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        if not sensitive and (name.lower() in _SECRET_HEADERS or _SECRET_NAME.search(key)):
            text = REDACTED
        else:
            text = value.decode("latin-1")[:_MAX_VALUE]
            if not sensitive and name.lower() in _URL_HEADERS and "?" in text:
                text = _redact_url(text)
        out[key] = text if key not in out else f"{out[key]}, {text}"
    return out


def _redact_url(url: str) -> str:
    """``https://a/cb?access_token=x#f`` → ``https://a/cb?access_token=[REDACTED]#f``."""
    base, _, rest = url.partition("?")
    query, hash_, fragment = rest.partition("#")
    return f"{base}?{redact_query(query.encode('latin-1'), False)}{hash_}{fragment}"


def redact_query(query: bytes, sensitive: bool) -> str:
    """The query string for a log line, secret-looking parameters' values hidden."""
    text = query.decode("latin-1")[: _MAX_VALUE * 4]
    if sensitive or not text:
        return text
    parts = []
    for part in text.split("&"):
        name, eq, _ = part.partition("=")
        if eq and _SECRET_NAME.search(unquote_plus(name)):
            parts.append(f"{name}={REDACTED}")
        else:
            parts.append(part)
    return "&".join(parts)


_BATCH_S = 0.01  # the writer sleeps this long after waking: lines of 10 ms go out in one write


class _LineWriter:
    """One thread per process writing queued lines to stderr, a batch per ``write``.

    :meth:`put` is the only part on the event loop: a ``deque.append`` (atomic under the GIL)
    and, once per batch, setting the event that wakes the thread.
    """

    def __init__(self) -> None:
        self._start()
        atexit.register(self.drain)  # flush what is queued when the process ends
        # A worker forked after the app was built (gunicorn --preload) has no thread: it
        # gets its own, and an empty queue (the parent writes what it had queued).
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self.lines: collections.deque[str] = collections.deque()
        self.wake = threading.Event()
        self.lock = threading.Lock()  # one drain at a time: the thread's and atexit's
        thread = threading.Thread(target=self._run, name="asgisec-request-log", daemon=True)
        thread.start()

    def put(self, line: str) -> None:
        self.lines.append(line)
        if not self.wake.is_set():
            self.wake.set()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            time.sleep(_BATCH_S)  # let a burst of lines gather first
            self.drain()

    def drain(self) -> None:
        with self.lock:
            lines = self.lines
            batch = []
            while lines:
                batch.append(lines.popleft())
            if not batch:
                return
            stream: TextIO | None = sys.stderr  # looked up per batch: it may be replaced
            if stream is None:
                return  # pythonw and friends: nowhere to write
            try:
                batch.append("")  # the last line's newline
                stream.write("\n".join(batch))
                stream.flush()
            except Exception:  # noqa: S110 - a closed or broken stderr must not kill the writer
                pass


class StderrLines(logging.Handler):
    """The handler asgisec gives ``asgisec.requests`` when the application gave it none."""

    def __init__(self, writer: _LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.put(record.getMessage())
        except Exception:  # pragma: no cover - getMessage of our own lines does not fail
            self.handleError(record)


_setup_lock = threading.Lock()
_handler: StderrLines | None = None


def _ensure_handler(logger: logging.Logger) -> StderrLines | None:
    """asgisec's stderr handler on ``logger``, once per process; None when the application
    had configured the logger itself (then its handlers decide where lines go)."""
    global _handler  # noqa: PLW0603 - one writer thread per process, by design
    with _setup_lock:
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # request lines are INFO; the root's WARNING hides them
        if _handler is not None and _handler in logger.handlers:
            return _handler
        if logger.handlers:
            return None  # the application configured this logger: it decides where lines go
        if _handler is None:
            _handler = StderrLines(_LineWriter())
        logger.addHandler(_handler)
        logger.propagate = False
        return _handler


class RequestLog:
    """Builds and emits the per-request line; never raises."""

    __slots__ = ("enabled", "handler", "logger", "sensitive")

    def __init__(self, enabled: bool, sensitive: bool) -> None:
        self.enabled = enabled
        self.sensitive = sensitive
        self.logger = logging.getLogger(LOGGER_NAME)
        self.handler = _ensure_handler(self.logger) if enabled else None

    def emit(self, level: int, line: dict[str, Any]) -> None:
        try:
            record = {
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": logging.getLevelName(level),
                **line,
            }
            text = msgspec.json.encode(record).decode("utf-8")
            logger = self.logger
            handler = self.handler
            handlers = logger.handlers
            if (
                handler is not None
                and len(handlers) == 1
                and handlers[0] is handler
                and logger.isEnabledFor(level)
            ):
                handler.writer.put(text)  # asgisec's own handler alone: no LogRecord needed
            else:
                logger.log(level, text)
        except Exception:  # noqa: S110 - a log line must never cost a response
            pass
