"""Configuration: frozen msgspec Structs, read once from the environment and a ``.env`` file.

Every option is defined exactly once, as a field of one of the section Structs below. The
environment variable is the field name in upper case (``hsts_max_age`` → ``HSTS_MAX_AGE``), so
the names are the ones operators already use; the env parser, the README's table and the CLI's
start-up summary are all derived from these definitions and cannot drift apart.

Each field carries its default and, beside it, the reason for that default.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from .errors import ConfigError
from .guards_config import GuardsConfig
from .hosts import normalise_host_pattern
from .ratelimit.limits import parse_limits, parse_rules

__all__ = [
    "CorsConfig",
    "GuardsConfig",
    "HeadersConfig",
    "HostsConfig",
    "ProxyConfig",
    "RateLimitConfig",
    "RequestConfig",
    "SecurityConfig",
    "mask_secret",
]


def _opt(description: str, *, secret: bool = False, env: str | None = None, **meta: Any) -> Any:
    """A msgspec ``Meta`` holding an option's description (for docs) and env metadata."""
    extra: dict[str, Any] = {"secret": secret}
    if env is not None:
        extra["env"] = env
    return msgspec.Meta(description=description, extra=extra, **meta)


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Shared base: immutable, keyword-only, and unknown fields are an error, not ignored."""


# --------------------------------------------------------------------------- trusted hosts


class HostsConfig(_Section, frozen=True):
    trusted_hosts: Annotated[
        tuple[str, ...],
        _opt(
            "Host names this service answers to: exact names, `*.example.com` for subdomains, "
            "IPv6 as `::1` or `[::1]`, or `*` for any. Empty accepts any host and warns at "
            "start-up. Ports are ignored when matching and refused in patterns."
        ),
    ] = ()  # empty: a library cannot guess the deployment's names; a warning says so

    def __post_init__(self) -> None:
        normalised = []
        for raw in self.trusted_hosts:
            pattern = normalise_host_pattern(raw)
            if pattern is None:
                hint = (
                    "a host name without a port (the port is ignored when matching), "
                    f"e.g. {raw.strip().rsplit(':', 1)[0]!r}"
                    if re.search(r":\d+$", raw.strip()) and not raw.strip().startswith("[")
                    else "host names only (`example.com`, `*.example.com`, `::1`), "
                    "no scheme, port or path"
                )
                raise ConfigError("TRUSTED_HOSTS", raw, hint)
            normalised.append(pattern)
        msgspec.structs.force_setattr(self, "trusted_hosts", tuple(normalised))


# --------------------------------------------------------------------------- security headers

_XFO_VALUES = ("DENY", "SAMEORIGIN", "")
_REFERRER_VALUES = (
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
    "",
)


def _check_header_value(variable: str, value: str) -> None:
    # A header value with CR/LF would split the response; refuse it at start-up.
    if any(ch in value for ch in "\r\n\0") or not value.isascii():
        raise ConfigError(variable, value, "printable ASCII on one line")


class HeadersConfig(_Section, frozen=True):
    enable_security_headers: Annotated[
        bool, _opt("Add the security headers below to every response.")
    ] = True  # the guide's checklist: "Enable security headers"
    hsts_max_age: Annotated[
        int,
        _opt(
            "Strict-Transport-Security max-age in seconds (HTTPS responses only); 0 disables.", ge=0
        ),
    ] = 31_536_000  # one year: the HSTS preload list minimum and Mozilla Observatory's bar
    hsts_include_subdomains: Annotated[
        bool, _opt("Add `includeSubDomains` to Strict-Transport-Security.")
    ] = True  # an HTTP-only subdomain can otherwise set cookies for the parent domain
    hsts_preload: Annotated[
        bool, _opt("Add `preload` to Strict-Transport-Security (only once you have submitted).")
    ] = False  # preloading is hard to undo; opt in deliberately
    csp_policy: Annotated[
        str, _opt("Content-Security-Policy value; empty disables the header.")
    ] = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    # ^ an API serves data, not documents: nothing may load, frame, or be posted from it.
    x_frame_options: Annotated[
        str, _opt("X-Frame-Options: `DENY`, `SAMEORIGIN`, or empty to disable.")
    ] = "DENY"  # API responses are never meant to be framed (legacy twin of frame-ancestors)
    referrer_policy: Annotated[str, _opt("Referrer-Policy value; empty disables the header.")] = (
        "strict-origin-when-cross-origin"  # the browsers' default, stated so older ones follow it
    )
    permissions_policy: Annotated[
        str, _opt("Permissions-Policy value; empty disables the header.")
    ] = (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()"
    )  # an API needs no powerful browser feature; deny the ones worth abusing
    cross_origin_opener_policy: Annotated[
        str, _opt("Cross-Origin-Opener-Policy value; empty disables the header.")
    ] = "same-origin"  # isolates the browsing context from cross-origin openers (XS-Leaks)
    cross_origin_resource_policy: Annotated[
        str, _opt("Cross-Origin-Resource-Policy value; empty disables the header.")
    ] = "same-origin"  # no-cors embedding by other sites is refused; CORS requests are unaffected
    cache_control: Annotated[
        str, _opt("Cache-Control for responses that set none; empty disables the header.")
    ] = "no-store"  # OWASP REST cheat sheet: API responses may carry personal data; never cache

    def __post_init__(self) -> None:
        if self.x_frame_options.upper() not in _XFO_VALUES:
            raise ConfigError("X_FRAME_OPTIONS", self.x_frame_options, "DENY or SAMEORIGIN")
        msgspec.structs.force_setattr(self, "x_frame_options", self.x_frame_options.upper())
        if self.referrer_policy.lower() not in _REFERRER_VALUES:
            raise ConfigError(
                "REFERRER_POLICY",
                self.referrer_policy,
                "one of " + ", ".join(_REFERRER_VALUES[:-1]),
            )
        for name in (
            "csp_policy",
            "permissions_policy",
            "cross_origin_opener_policy",
            "cross_origin_resource_policy",
            "cache_control",
        ):
            _check_header_value(name.upper(), getattr(self, name))


# --------------------------------------------------------------------------- CORS

# Scheme and host are case-insensitive (RFC 3986 §3.1, §3.2.2); ASCII only, as browsers send.
_ORIGIN_RE = re.compile(
    r"^(https?)://([A-Za-z0-9.\-_]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$", re.IGNORECASE | re.ASCII
)
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token (method, header name)


def normalise_origin(origin: str) -> str | None:
    """The serialised form a browser sends in ``Origin`` (lower-case scheme and host), or None."""
    match = _ORIGIN_RE.match(origin.strip())
    if match is None:
        return None
    scheme, host, port = match.group(1).lower(), match.group(2).lower(), match.group(3) or ""
    if port and not 0 < int(port[1:]) <= 65535:
        return None
    if (scheme, port) in (("http", ":80"), ("https", ":443")):
        port = ""  # browsers never send the default port
    return f"{scheme}://{host}{port}"


class CorsConfig(_Section, frozen=True):
    allowed_origins: Annotated[
        tuple[str, ...],
        _opt(
            "Origins allowed to call this API from a browser (`scheme://host[:port]`), or `*`. "
            "Empty disables CORS: browsers keep their same-origin policy."
        ),
    ] = ()  # CORS widens access; nothing is allowed until the operator names it
    allowed_methods: Annotated[
        tuple[str, ...], _opt("Methods granted to allowed origins in preflight answers.")
    ] = ("GET", "POST")  # the guide's default; widen per deployment
    allowed_headers: Annotated[
        tuple[str, ...], _opt("Request headers granted to allowed origins in preflight answers.")
    ] = ("content-type", "authorization", "x-request-id")  # what a JSON API client sends
    allow_credentials: Annotated[
        bool, _opt("Let allowed origins send cookies and HTTP auth (never with `*`).")
    ] = False  # credentialed cross-origin access must be a deliberate choice
    cors_max_age: Annotated[int, _opt("Seconds a browser may cache a preflight answer.", ge=0)] = (
        600  # ten minutes: Chromium's cap is 7200, but short keeps policy changes quick
    )
    cors_expose_headers: Annotated[
        tuple[str, ...], _opt("Response headers browsers let allowed origins read.")
    ] = ("x-request-id", "retry-after", "ratelimit", "ratelimit-policy")
    # ^ so a browser client can read rate-limit state and quote the request id to support

    def __post_init__(self) -> None:
        origins = []
        for raw in self.allowed_origins:
            if raw.strip() == "*":
                origins.append("*")
                continue
            origin = normalise_origin(raw)
            if origin is None:
                raise ConfigError(
                    "ALLOWED_ORIGINS",
                    raw,
                    "origins as scheme://host[:port] (no path, no trailing slash), or *",
                )
            origins.append(origin)
        if "*" in origins and self.allow_credentials:
            raise ConfigError(
                "ALLOWED_ORIGINS",
                "*",
                "explicit origins when ALLOW_CREDENTIALS=true: `*` with credentials would let "
                "every website make authenticated requests as your users",
            )
        msgspec.structs.force_setattr(self, "allowed_origins", tuple(origins))
        for variable, values in (
            ("ALLOWED_METHODS", self.allowed_methods),
            ("ALLOWED_HEADERS", self.allowed_headers),
            ("CORS_EXPOSE_HEADERS", self.cors_expose_headers),
        ):
            for value in values:
                if value != "*" and not _TOKEN_RE.match(value):
                    raise ConfigError(variable, value, "HTTP tokens separated by commas")
        msgspec.structs.force_setattr(
            self, "allowed_methods", tuple(m.upper() for m in self.allowed_methods)
        )
        msgspec.structs.force_setattr(
            self, "allowed_headers", tuple(h.lower() for h in self.allowed_headers)
        )


# --------------------------------------------------------------------------- client identity


class ProxyConfig(_Section, frozen=True):
    trusted_proxies: Annotated[
        tuple[str, ...],
        _opt(
            "Proxies (IPs or CIDRs) whose forwarded headers are believed. Empty: the socket "
            "peer is the client, whatever headers it sends."
        ),
    ] = ()  # trusting X-Forwarded-For from anyone lets every client pick its own address
    trusted_proxy_header: Annotated[
        Literal["x-forwarded-for", "forwarded"],
        _opt("Which header the trusted proxies write: `x-forwarded-for` or `forwarded`."),
    ] = "x-forwarded-for"  # what nginx, HAProxy and most cloud load balancers append

    def __post_init__(self) -> None:
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ConfigError(
                    "TRUSTED_PROXIES", entry, "IP addresses or CIDR networks, comma-separated"
                ) from None


# --------------------------------------------------------------------------- request guards


class RequestConfig(_Section, frozen=True):
    max_request_size: Annotated[
        int,
        _opt("Largest request body in bytes, declared or streamed; 0 disables the limit.", ge=0),
    ] = 1_048_576  # 1 MiB: ample for JSON APIs, small enough to bound memory per request


# --------------------------------------------------------------------------- rate limiting


class RateLimitConfig(_Section, frozen=True):
    rate_limit_default: Annotated[
        str,
        _opt(
            "Limit for every route and client, e.g. `100/minute`; several as "
            "`10/second,1000/hour`; `none` disables."
        ),
    ] = "100/minute"  # the guide's default: generous for people, a wall for scripts
    rate_limit_routes: Annotated[
        dict[str, str],
        _opt(
            "`RATE_LIMIT_CALCULATE=60/minute` limits `/api/calculate` (the name, lower-cased), "
            "on top of the default.",
            env="RATE_LIMIT_<NAME>",
        ),
    ] = {}
    rate_limit_rules: Annotated[
        str,
        _opt(
            "Limits for any path pattern: `PATTERN=LIMIT;PATTERN=LIMIT`, `*` matching one path "
            "segment and a trailing `/**` any rest, e.g. `/api/items/*=100/hour`."
        ),
    ] = ""
    rate_limit_storage_uri: Annotated[
        str,
        _opt("Where buckets live: `memory://` (this process only) or a Redis URL.", secret=True),
    ] = "memory://"  # works with no infrastructure; use Redis as soon as there are 2 workers
    rate_limit_max_keys: Annotated[
        int,
        _opt("Most client buckets the memory backend keeps (least recently used go first).", ge=1),
    ] = 100_000  # ~20 MB at most: bounded memory whatever clients send
    rate_limit_headers: Annotated[
        bool, _opt("Send `RateLimit` and `RateLimit-Policy` headers on rate-limited routes.")
    ] = True  # clients that can see their budget back off before they hit 429
    rate_limit_legacy_headers: Annotated[
        bool, _opt("Also send `X-RateLimit-Limit/-Remaining/-Reset` (reset in seconds).")
    ] = False  # superseded by the IETF fields; on for clients that only read the old ones
    rate_limit_fail_mode: Annotated[
        Literal["open", "closed"],
        _opt(
            "When the storage is down or slow: `open` serves the request (from a local bucket), "
            "`closed` answers 503 with Retry-After."
        ),
    ] = "open"  # an outage of the limiter should not become an outage of the API (slowapi #253)
    rate_limit_backend_timeout: Annotated[
        float, _opt("Seconds to wait for the storage before the failure policy applies.", gt=0)
    ] = 0.05  # 50 ms: a healthy Redis answers in well under 1 ms; a dead one must not add seconds
    rate_limit_ipv6_prefix: Annotated[
        int, _opt("IPv6 clients share a bucket per prefix of this length.", ge=1, le=128)
    ] = 64  # one subscriber holds a whole /64; per-/128 buckets are free for an attacker

    def __post_init__(self) -> None:
        try:
            parse_limits(self.rate_limit_default)
        except ValueError as exc:
            raise ConfigError("RATE_LIMIT_DEFAULT", self.rate_limit_default, str(exc)) from None
        routes = {}
        for name, value in self.rate_limit_routes.items():
            variable = f"RATE_LIMIT_{name.upper()}"
            if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]*", name.lower()):
                raise ConfigError(variable, value, "a route name of letters, digits, - and _")
            try:
                parse_limits(value)
            except ValueError as exc:
                raise ConfigError(variable, value, str(exc)) from None
            routes[name.lower()] = value
        msgspec.structs.force_setattr(self, "rate_limit_routes", routes)
        try:
            parse_rules(self.rate_limit_rules)
        except ValueError as exc:
            raise ConfigError("RATE_LIMIT_RULES", self.rate_limit_rules, str(exc)) from None
        scheme = urlsplit(self.rate_limit_storage_uri).scheme
        if scheme not in ("memory", "redis", "rediss", "redis+cluster", "redis+sentinel"):
            raise ConfigError(
                "RATE_LIMIT_STORAGE_URI",
                mask_secret(self.rate_limit_storage_uri),
                "memory:// or a redis://, rediss://, redis+cluster:// or redis+sentinel:// URL",
            )


# --------------------------------------------------------------------------- the whole

from .config_observe import (  # noqa: E402 - its Structs build on _Section above
    ContainmentConfig,
    DetectionConfig,
    LoggingConfig,
    MetricsConfig,
)


class SecurityConfig(_Section, frozen=True):
    """Everything asgisec does, in one immutable value.

    Build it from the environment with :meth:`from_env`, or in code; ``secure()`` validates it
    once either way.
    """

    hosts: HostsConfig = HostsConfig()
    proxies: ProxyConfig = ProxyConfig()
    headers: HeadersConfig = HeadersConfig()
    cors: CorsConfig = CorsConfig()
    request: RequestConfig = RequestConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    guards: GuardsConfig = GuardsConfig()
    detection: DetectionConfig = DetectionConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
    containment: ContainmentConfig = ContainmentConfig()

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: str | os.PathLike[str] | None = ".env",
        prefix: str = "",
    ) -> SecurityConfig:
        """Read the configuration from ``environ`` (default ``os.environ``) and ``env_file``.

        The process environment wins over the file, as with docker and systemd. A missing file
        is fine; an unreadable one is an error. ``prefix`` namespaces every variable
        (``prefix="ASGISEC_"`` reads ``ASGISEC_TRUSTED_HOSTS``).
        """
        from .env import from_values, read_env_file  # noqa: PLC0415 - env.py imports us

        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update(read_env_file(env_file))
        values.update(os.environ if environ is None else environ)
        return from_values(cls, values, prefix)

    def summary(self) -> list[tuple[str, str]]:
        """``(VARIABLE, value)`` for every option, secrets masked: for start-up banners."""
        from .env import summary  # noqa: PLC0415 - env.py imports us

        return summary(self)


def mask_secret(value: str) -> str:
    """Hide the password in a URL (``redis://:****@host``); other strings pass unchanged."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1****@", value)
