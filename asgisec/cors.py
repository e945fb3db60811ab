"""CORS: which origins may read responses, and the preflight answers, built at start-up.

The request's exact ``Origin`` is echoed when it is allowed: never a list, never ``null`` (a
``null`` origin is what sandboxed iframes and ``file:`` pages send, so trusting it trusts
everyone). Matching is by exact string against a frozenset, not by regex, so the
``https://www.example.org.evil.com`` class of bypass (Starlette #800) cannot happen.
"""

from __future__ import annotations

import re

from .config import CorsConfig

__all__ = ["CorsPolicy"]

Header = tuple[bytes, bytes]

# With `*`, an origin is echoed only if it could be one: visible ASCII, nothing that could end
# the header line (found by tests/test_fuzz.py: `Origin: \xff\r\n` was echoed verbatim).
_ECHOABLE = re.compile(rb"[!-~]{1,2048}")

# An HTTP method is a token (RFC 9110 §9.1); anything else asked for is not echoed.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")

# What may be echoed as Access-Control-Allow-Headers: a comma-separated list of tokens.
_TOKEN_LIST = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z, \t]{1,2048}")

_PREFLIGHT_VARY = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class CorsPolicy:
    """Compiled CORS rules. ``enabled`` is False when no origin is configured."""

    __slots__ = (
        "allow_all",
        "enabled",
        "origins",
        "preflight_headers",
        "preflight_vary",
        "reflect_headers",
        "reflect_methods",
        "response_headers",
    )

    def __init__(self, config: CorsConfig) -> None:
        self.enabled = bool(config.allowed_origins)
        self.allow_all = "*" in config.allowed_origins
        self.origins = frozenset(o.encode("ascii") for o in config.allowed_origins if o != "*")
        # Granted on actual (non-preflight) responses to an allowed origin, after ACAO.
        granted: list[Header] = []
        if config.allow_credentials:
            granted.append((b"access-control-allow-credentials", b"true"))
        if config.cors_expose_headers:
            granted.append(
                (b"access-control-expose-headers", ", ".join(config.cors_expose_headers).encode())
            )
        self.response_headers: tuple[Header, ...] = tuple(granted)
        # A preflight answer: one fixed block; only the echoed origin varies per request.
        # `*` is answered with what the preflight asked for: the Fetch standard reads `*` as
        # a literal name in credentialed preflights, and never lets it cover Authorization.
        self.reflect_headers = "*" in config.allowed_headers
        self.reflect_methods = "*" in config.allowed_methods and config.allow_credentials
        preflight: list[Header] = []
        if config.allow_credentials:
            preflight.append((b"access-control-allow-credentials", b"true"))
        if not self.reflect_methods:
            preflight.append(
                (b"access-control-allow-methods", ", ".join(config.allowed_methods).encode())
            )
        if config.allowed_headers and not self.reflect_headers:
            preflight.append(
                (b"access-control-allow-headers", ", ".join(config.allowed_headers).encode())
            )
        preflight.append((b"access-control-max-age", str(config.cors_max_age).encode()))
        preflight.append((b"content-length", b"0"))
        self.preflight_headers: tuple[Header, ...] = tuple(preflight)
        self.preflight_vary: Header = (b"vary", _PREFLIGHT_VARY)

    def allows(self, origin: bytes | None) -> bool:
        """True when this exact origin may read responses (``null`` never may)."""
        if origin is None or not self.enabled or origin == b"null":
            return False
        if origin in self.origins:
            return True
        return self.allow_all and _ECHOABLE.fullmatch(origin) is not None

    def preflight(
        self, origin: bytes, request_headers: bytes | None, request_method: bytes = b""
    ) -> list[Header]:
        """Headers answering an allowed origin's preflight (status 204).

        The configured methods and headers are granted whatever the preflight asked for: a
        browser compares them itself and refuses what is missing, so a disallowed method ends
        as a clear CORS error in the console rather than an opaque 400 (Starlette #798).
        A configured ``*`` grants the asked-for method or headers by name.
        """
        headers = [(b"access-control-allow-origin", origin), *self.preflight_headers]
        if self.reflect_methods:
            method = request_method if _TOKEN.fullmatch(request_method) else b"*"
            headers.append((b"access-control-allow-methods", method))
        if self.reflect_headers and request_headers and _TOKEN_LIST.fullmatch(request_headers):
            headers.append((b"access-control-allow-headers", request_headers))
        headers.append(self.preflight_vary)
        return headers
