"""The guide's pre-deployment checklist as checks with stable ids (``security.E001`` ...).

``E`` ids are errors (``asgisec check`` exits 1), ``W`` ids warnings (exit 1 with
``--strict``). Pure: :func:`run_checks` looks at a mapping of variables and never returns a
secret's value: messages name the variable, and for URLs at most the host.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

import msgspec

from ..config import SecurityConfig
from ..errors import ConfigError
from .catalog import CONFIG_CHECKS

__all__ = ["WEAK_SECRETS", "Finding", "run_checks"]

# Defaults shipped in examples, docker-compose files and vendor images, and the classics of
# every leaked-password list. Compared case-insensitively after trimming.
WEAK_SECRETS = frozenset(
    {
        "", "changeme", "change_me", "change-me", "changeit", "password", "passw0rd",
        "password1", "password123", "admin", "admin123", "administrator", "root", "toor",
        "secret", "default", "123456", "12345678", "123456789", "qwerty", "letmein", "test",
        "testing", "guest", "user", "redis", "postgres", "mysql", "example", "demo",
        "dev", "development", "your-secret-key", "your_password", "yourpassword",
        "supersecret", "s3cr3t", "xxx", "none", "null",
    }
)  # fmt: skip
MIN_SECRET_LENGTH = 8  # NIST SP 800-63B's floor for a memorised secret
SIX_MONTHS = 15_552_000  # as the audit's HSTS check (MDN HTTP Observatory's threshold)
# Django's check W009 for SECRET_KEY (case C1).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
SECRET_KEY_INSECURE_PREFIX = "django-insecure-"  # noqa: S105 - a prefix to detect, not a secret

_SECRET_NAME = re.compile(
    r"(?:^|_)(?:PASSWORD|PASSWD|PASS|SECRET|TOKEN|API_?KEY|PRIVATE_KEY|ACCESS_KEY)(?:_|$)"
)
_REDIS_SCHEMES = ("redis", "rediss", "redis+cluster", "redis+sentinel", "rediss+cluster")
_DB_SCHEMES = ("postgres", "postgresql", "mysql", "mariadb")
_SSL_REQUIRED = frozenset({"require", "verify-ca", "verify-full", "required", "verify_ca",
                           "verify_identity", "true", "1"})  # fmt: skip
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_WORKER_VARIABLES = ("WEB_CONCURRENCY", "ASGISEC_WORKERS", "UVICORN_WORKERS", "GUNICORN_WORKERS")
_HEADER_VARIABLES = (
    "CSP_POLICY",
    "X_FRAME_OPTIONS",
    "REFERRER_POLICY",
    "PERMISSIONS_POLICY",
    "CROSS_ORIGIN_OPENER_POLICY",
    "CROSS_ORIGIN_RESOURCE_POLICY",
)


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    level: str  # "error" or "warning"
    variable: str
    message: str
    fix: str


def _finding(check_id: str, variable: str, message: str) -> Finding:
    level = "error" if check_id.startswith("security.E") else "warning"
    return Finding(
        id=check_id,
        level=level,
        variable=variable,
        message=message,
        fix=CONFIG_CHECKS[check_id].fix,
    )


def _loopback(host: str | None) -> bool:
    host = (host or "").lower().strip("[]")
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(values: Mapping[str, str], name: str) -> bool | None:
    raw = values.get(name)
    if raw is None:
        return None
    text = raw.strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _number(values: Mapping[str, str], name: str) -> int | None:
    """A whole number ≥ 0 as asgisec reads it (``+0``, `` 86_400 ``), else None."""
    raw = values.get(name, "").strip().replace("_", "")
    return int(raw) if re.fullmatch(r"\+?\d{1,18}", raw) else None


def _url_password(value: str) -> str | None:
    try:
        return urlsplit(value.strip()).password
    except ValueError:
        return None


def _scheme(value: str) -> str:
    return value.strip().split("://", 1)[0].lower() if "://" in value else ""


def run_checks(values: Mapping[str, str], *, workers: int | None = None) -> list[Finding]:
    """Every failed check for the variables in ``values`` (the environment over ``.env``)."""
    found: list[Finding] = []
    found += _secrets(values)
    found += _origins_and_hosts(values)
    found += _redis(values)
    found += _databases(values)
    found += _switches(values, workers)
    try:
        SecurityConfig.from_env(environ=values, env_file=None)
    except ConfigError as exc:
        found.append(
            _finding(
                "security.E011", exc.variable, f"{exc.variable} is invalid: expected {exc.expected}"
            )
        )
    return sorted(found, key=lambda f: (f.level != "error", f.id, f.variable))


def _weak(secret: str) -> bool:
    text = secret.strip()
    return text.lower() in WEAK_SECRETS or len(text) < MIN_SECRET_LENGTH


def _secrets(values: Mapping[str, str]) -> list[Finding]:
    found = []
    for name in sorted(values):
        value = values[name]
        upper = name.upper()
        if upper == "SECRET_KEY" or upper.endswith("_SECRET_KEY"):
            text = value.strip()
            reasons = []
            if text.startswith(SECRET_KEY_INSECURE_PREFIX):
                reasons.append(f"starts with {SECRET_KEY_INSECURE_PREFIX!r}")
            if len(text) < SECRET_KEY_MIN_LENGTH:
                reasons.append(f"shorter than {SECRET_KEY_MIN_LENGTH} characters")
            if len(set(text)) < SECRET_KEY_MIN_UNIQUE:
                reasons.append(f"fewer than {SECRET_KEY_MIN_UNIQUE} distinct characters")
            if reasons:
                found.append(
                    _finding("security.E010", name, f"{name} is weak: " + ", ".join(reasons))
                )
            continue
        if _SECRET_NAME.search(upper):
            if _weak(value):
                what = "empty" if not value.strip() else "a known default or too short"
                found.append(_finding("security.E001", name, f"{name} is {what}"))
            continue
        if "://" in value:
            password = _url_password(value)
            if password is not None and _weak(password):
                found.append(
                    _finding(
                        "security.E001",
                        name,
                        f"the password in {name} is a known default, empty or too short",
                    )
                )
    return found


def _origin_host(origin: str) -> tuple[str | None, str]:
    """An http:// origin's host, and the origin as shown: ``http://host[:port]`` only.

    A ``user:password@`` in it is never printed; an origin that does not parse is named
    by its scheme.
    """
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return None, "an http:// origin"
    if not host:
        return None, "an http:// origin"
    try:
        port = parts.port
    except ValueError:
        port = None
    name = f"[{host}]" if ":" in host else host
    return host, f"http://{name}" + (f":{port}" if port is not None else "")


def _origins_and_hosts(values: Mapping[str, str]) -> list[Finding]:
    found = []
    origins = [o.strip() for o in values.get("ALLOWED_ORIGINS", "").split(",") if o.strip()]
    if "*" in origins:
        found.append(
            _finding("security.E002", "ALLOWED_ORIGINS", "ALLOWED_ORIGINS contains *: any website")
        )
    for origin in origins:
        if origin.lower().startswith("http://"):
            host, shown = _origin_host(origin)
            check_id = "security.W010" if host and _loopback(host) else "security.E003"
            found.append(_finding(check_id, "ALLOWED_ORIGINS", f"ALLOWED_ORIGINS allows {shown}"))
    hosts = [h.strip() for h in values.get("TRUSTED_HOSTS", "").split(",") if h.strip()]
    if not hosts:
        found.append(
            _finding("security.E004", "TRUSTED_HOSTS", "TRUSTED_HOSTS is empty: any Host is served")
        )
    elif "*" in hosts:
        found.append(_finding("security.E005", "TRUSTED_HOSTS", "TRUSTED_HOSTS contains *"))
    return found


def _redis(values: Mapping[str, str]) -> list[Finding]:
    found = []
    shared_password = bool(values.get("REDIS_PASSWORD", "").strip())
    for name in sorted(values):
        value = values[name].strip()
        if _scheme(value) not in _REDIS_SCHEMES:
            continue
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            continue
        has_password = bool(parts.password) or shared_password
        shown = host or "?"
        if not has_password:
            if _loopback(host):
                message = f"{name} (host {shown}) has no password"
                found.append(_finding("security.W005", name, message))
            else:
                message = f"{name} (host {shown}) has no password"
                found.append(_finding("security.E006", name, message))
        if not _loopback(host) and not parts.scheme.startswith("rediss"):
            found.append(
                _finding("security.W006", name, f"{name} (host {shown}) is not encrypted (TLS)")
            )
    return found


def _databases(values: Mapping[str, str]) -> list[Finding]:
    found = []
    for name in sorted(values):
        value = values[name].strip()
        scheme = _scheme(value).split("+", 1)[0]
        if scheme not in _DB_SCHEMES:
            continue
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            continue
        if _loopback(host):
            continue
        query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
        mode = query.get("sslmode") or query.get("ssl-mode") or query.get("ssl_mode")
        mode = mode or query.get("ssl") or query.get("tls")
        if mode not in _SSL_REQUIRED:
            why = "without sslmode" if mode is None else f"with sslmode={mode}"
            found.append(_finding("security.E007", name, f"{name} (host {host}) {why}"))
    return found


def _switches(values: Mapping[str, str], workers: int | None) -> list[Finding]:
    found = []
    if _flag(values, "ENABLE_SECURITY_HEADERS") is False:
        found.append(
            _finding("security.E008", "ENABLE_SECURITY_HEADERS", "ENABLE_SECURITY_HEADERS is false")
        )
    if _flag(values, "LOG_SENSITIVE_DATA") is True:
        found.append(_finding("security.E009", "LOG_SENSITIVE_DATA", "LOG_SENSITIVE_DATA is true"))
    hsts = _number(values, "HSTS_MAX_AGE")
    if hsts is not None and hsts < SIX_MONTHS:
        what = "0: HSTS is disabled" if hsts == 0 else f"{hsts} s, under six months"
        found.append(_finding("security.W001", "HSTS_MAX_AGE", f"HSTS_MAX_AGE is {what}"))
    counts = [n for v in _WORKER_VARIABLES if (n := _number(values, v)) is not None]
    if workers is not None:
        counts.append(workers)
    storage = values.get("RATE_LIMIT_STORAGE_URI", "memory://").strip() or "memory://"
    limiting = values.get("RATE_LIMIT_DEFAULT", "100/minute").strip().lower() != "none"
    if limiting and storage.startswith("memory://") and any(n > 1 for n in counts):
        found.append(
            _finding(
                "security.W002",
                "RATE_LIMIT_STORAGE_URI",
                f"{max(counts)} workers share no buckets: RATE_LIMIT_STORAGE_URI is memory://",
            )
        )
    if _number(values, "MAX_REQUEST_SIZE") == 0:
        found.append(_finding("security.W003", "MAX_REQUEST_SIZE", "MAX_REQUEST_SIZE is 0"))
    if _number(values, "MAX_CONCURRENT_REQUESTS") == 0:  # unset: asgisec's default cap, 100
        found.append(
            _finding("security.W004", "MAX_CONCURRENT_REQUESTS", "MAX_CONCURRENT_REQUESTS is 0")
        )
    if not limiting:
        found.append(_finding("security.W007", "RATE_LIMIT_DEFAULT", "RATE_LIMIT_DEFAULT is none"))
    if _flag(values, "ENABLE_REQUEST_LOGGING") is False:
        found.append(
            _finding("security.W008", "ENABLE_REQUEST_LOGGING", "ENABLE_REQUEST_LOGGING is false")
        )
    for name in _HEADER_VARIABLES:
        if name in values and not values[name].strip():
            found.append(_finding("security.W009", name, f"{name} is empty: header not sent"))
    return found
