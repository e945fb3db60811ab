"""Request logs: one JSON line per request, written off the event loop, secrets redacted.

Lines go to the ``asgisec.requests`` logger. If the application has not given that logger
handlers of its own, asgisec attaches a :class:`logging.handlers.QueueHandler`: the request
path only puts the (already encoded) line on a queue, and a :class:`QueueListener` thread
writes it to stderr, so a slow terminal or pipe never blocks the event loop. Encoding is
msgspec; a failure to log is swallowed and never reaches a response.

Redaction (``LOG_SENSITIVE_DATA=false``, the default) replaces the values of credential
headers (Authorization, Cookie, Set-Cookie, API keys, tokens) and of secret-looking query
parameters (``token``, ``password``, ``api_key`` ...), in the request's query and in the
Referer's, with ``[REDACTED]``.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import sys
import threading
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any

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
        from urllib.parse import unquote_plus  # noqa: PLC0415 - cheap, and only here

        if eq and _SECRET_NAME.search(unquote_plus(name)):
            parts.append(f"{name}={REDACTED}")
        else:
            parts.append(part)
    return "&".join(parts)


_listener_lock = threading.Lock()
_listener: QueueListener | None = None


def _ensure_listener(logger: logging.Logger) -> None:
    """Attach the queue handler and start the writer thread, once per process."""
    global _listener  # noqa: PLW0603 - one writer thread per process, by design
    with _listener_lock:
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # request lines are INFO; the root's WARNING hides them
        if logger.handlers:
            return  # the application configured this logger: it decides where lines go
        line_queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(message)s"))
        _listener = QueueListener(line_queue, stream)
        _listener.start()
        atexit.register(_listener.stop)  # flush what is queued when the process ends
        logger.addHandler(QueueHandler(line_queue))
        logger.propagate = False


class RequestLog:
    """Builds and emits the per-request line; never raises."""

    __slots__ = ("enabled", "logger", "sensitive")

    def __init__(self, enabled: bool, sensitive: bool) -> None:
        self.enabled = enabled
        self.sensitive = sensitive
        self.logger = logging.getLogger(LOGGER_NAME)
        if enabled:
            _ensure_listener(self.logger)

    def emit(self, level: int, line: dict[str, Any]) -> None:
        try:
            record = {
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": logging.getLevelName(level),
                **line,
            }
            self.logger.log(level, msgspec.json.encode(record).decode("utf-8"))
        except Exception:  # noqa: S110 - a log line must never cost a response
            pass
