"""Configuration of the request guards: timeout, concurrency, HTTPS, websockets, CSP, paths.

One section of :class:`~asgisec.config.SecurityConfig` (``config.guards``), declared like the
others: the field name is the environment variable, the default carries its reason. It lives
in its own module to keep ``config.py`` short; the base and the ``_opt`` helper are repeated
here because ``config.py`` imports this module (importing them back would be a cycle).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import msgspec

from .errors import ConfigError
from .hosts import parse_host

__all__ = ["GuardsConfig", "normalise_path_prefix"]


def _opt(description: str, **meta: Any) -> Any:
    return msgspec.Meta(description=description, extra={"secret": False}, **meta)


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Immutable, keyword-only, unknown fields refused: as config.py's sections."""


# A path prefix: absolute, no query or fragment, printable ASCII without spaces.
_PATH_RE = re.compile(r"/[!-~]*")
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: a header name
# Framing and hop-by-hop headers belong to the server; a per-path override must not touch them.
_NOT_OVERRIDABLE = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te"}
)


def normalise_path_prefix(raw: str) -> str | None:
    """``/docs/`` → ``/docs``; ``/`` stays ``/``; None for anything that is not a path prefix."""
    path = raw.strip()
    if not _PATH_RE.fullmatch(path) or "?" in path or "#" in path:
        return None
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    return path.rstrip("/") or "/"


def _prefixes(variable: str, values: tuple[str, ...]) -> tuple[str, ...]:
    prefixes = []
    for raw in values:
        prefix = normalise_path_prefix(raw)
        if prefix is None:
            raise ConfigError(variable, raw, "path prefixes such as /health or /docs")
        prefixes.append(prefix)
    return tuple(prefixes)


def _header_value(variable: str, value: str) -> None:
    if any(ch in value for ch in "\r\n\0") or not value.isascii():
        raise ConfigError(variable, value, "printable ASCII on one line")


class GuardsConfig(_Section, frozen=True):
    request_timeout: Annotated[
        float,
        _opt(
            "Seconds the app may take per HTTP request: 504 if it has not answered, the "
            "request cancelled if it has started; 0 disables.",
            ge=0,
        ),
    ] = 30.0  # the guide's REQUEST_TIMEOUT=30; under the 60 s most proxies give up after
    max_concurrent_requests: Annotated[
        int,
        _opt(
            "Most HTTP requests in the app at once (per process); the next gets 503 with "
            "Retry-After at once, never a queue. 0 disables.",
            ge=0,
        ),
    ] = 100  # the guide's MAX_CONCURRENT_REQUESTS=100; shedding beats an unbounded backlog
    force_https: Annotated[
        bool,
        _opt(
            "Redirect plain-HTTP requests (308) to https on a trusted host or "
            "`CANONICAL_HOST`; refuse ws:// websockets."
        ),
    ] = False  # many deployments terminate TLS in front; redirecting there would loop
    canonical_host: Annotated[
        str,
        _opt("Host (`name[:port]`) that HTTPS redirects go to; empty: the request's trusted Host."),
    ] = ""  # the request's own (validated) Host is right for most single-name services
    https_exempt_paths: Annotated[
        tuple[str, ...],
        _opt("Path prefixes served over plain HTTP even with `FORCE_HTTPS` (load-balancer probes)"),
    ] = ("/health",)  # load balancers probe over plain HTTP; a redirect reads as "down"
    websocket_allowed_origins: Annotated[
        tuple[str, ...],
        _opt(
            "Origins allowed to open websockets; empty: `ALLOWED_ORIGINS`. Same-origin pages "
            "and clients sending no Origin (not browsers) are always allowed; `*` allows any."
        ),
    ] = ()  # the CORS list already names the sites the operator trusts
    csp_nonce: Annotated[
        bool,
        _opt(
            "Add a fresh nonce per request to `script-src` (from `default-src` when absent), "
            'given to the app as `scope["csp_nonce"]`.'
        ),
    ] = False  # only pages with templated inline scripts need it; an API does not
    csp_report_only: Annotated[
        str,
        _opt("Content-Security-Policy-Report-Only value, sent beside the enforced policy."),
    ] = ""  # a policy to try out before enforcing it; none by default
    csp_report_path: Annotated[
        str,
        _opt(
            "Path where asgisec receives CSP violation reports (counted, logged, 64 KiB at "
            "most); added to the policies as `report-uri`. Empty: no endpoint."
        ),
    ] = ""  # reports are only useful to someone reading the logs; opt in
    path_headers: Annotated[
        dict[str, dict[str, str]],
        _opt(
            "Header overrides by path prefix, as JSON: "
            '`{"/docs": {"content-security-policy": "default-src \'self\'"}, '
            '"/embed": {"x-frame-options": ""}}` (an empty value removes the header).'
        ),
    ] = {}  # one policy for the whole service until the operator says otherwise
    rate_limit_exempt_paths: Annotated[
        tuple[str, ...], _opt("Path prefixes never rate-limited (e.g. `/health`).")
    ] = ()  # every path is limited unless exempted by name
    excluded_paths: Annotated[
        tuple[str, ...],
        _opt("Path prefixes passed to the app untouched: no check, no header, not counted."),
    ] = ()  # nothing escapes the checks unless the operator lists it

    def __post_init__(self) -> None:
        if not math.isfinite(self.request_timeout):
            raise ConfigError("REQUEST_TIMEOUT", self.request_timeout, "a number of seconds")
        if self.canonical_host:
            host = self.canonical_host.strip().lower()
            if "/" in host or "@" in host or parse_host(host.encode("utf-8")) is None:
                raise ConfigError(
                    "CANONICAL_HOST", self.canonical_host, "a host name, optionally :port"
                )
            msgspec.structs.force_setattr(self, "canonical_host", host)
        for variable in ("HTTPS_EXEMPT_PATHS", "RATE_LIMIT_EXEMPT_PATHS", "EXCLUDED_PATHS"):
            field = variable.lower()
            msgspec.structs.force_setattr(self, field, _prefixes(variable, getattr(self, field)))
        self._check_origins()
        _header_value("CSP_REPORT_ONLY", self.csp_report_only)
        if self.csp_report_path:
            path = normalise_path_prefix(self.csp_report_path)
            if path is None or path == "/":
                raise ConfigError("CSP_REPORT_PATH", self.csp_report_path, "a path like /csp")
            msgspec.structs.force_setattr(self, "csp_report_path", path)
        self._check_path_headers()

    def _check_origins(self) -> None:
        from .config import normalise_origin  # noqa: PLC0415 - config.py imports this module

        origins = []
        for raw in self.websocket_allowed_origins:
            origin = "*" if raw.strip() == "*" else normalise_origin(raw)
            if origin is None:
                raise ConfigError(
                    "WEBSOCKET_ALLOWED_ORIGINS", raw, "origins as scheme://host[:port], or *"
                )
            origins.append(origin)
        msgspec.structs.force_setattr(self, "websocket_allowed_origins", tuple(origins))

    def _check_path_headers(self) -> None:
        compiled: dict[str, dict[str, str]] = {}
        for raw_prefix, headers in self.path_headers.items():
            prefix = normalise_path_prefix(raw_prefix)
            if prefix is None:
                raise ConfigError("PATH_HEADERS", raw_prefix, "path prefixes such as /docs")
            overrides: dict[str, str] = {}
            for name, value in headers.items():
                lowered = name.strip().lower()
                if not _TOKEN_RE.fullmatch(lowered) or lowered in _NOT_OVERRIDABLE:
                    raise ConfigError(
                        "PATH_HEADERS", name, "response header names (not framing headers)"
                    )
                _header_value("PATH_HEADERS", value)
                overrides[lowered] = value.strip()
            compiled[prefix] = overrides
        msgspec.structs.force_setattr(self, "path_headers", compiled)
