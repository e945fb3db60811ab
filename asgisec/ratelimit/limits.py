"""The limit syntax (``100/minute``, ``5/10seconds``) and path rules (``/api/items/*=10/minute``).

A limit ``N/period`` is a token bucket holding at most N tokens and refilling N per period:
at most N requests in a burst, and at most ``N + N·Δt/period`` in any interval Δt, so a
window edge never lets twice the limit through (the fixed-window fault of slowapi #2).
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["Limit", "PathRule", "parse_limit", "parse_limits", "parse_rules"]

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3_600,
    "hr": 3_600,
    "hour": 3_600,
    "d": 86_400,
    "day": 86_400,
}
_LIMIT_RE = re.compile(r"(\d{1,12})\s*(?:/|\s+per\s+)\s*(\d{0,9})\s*([a-z]+)", re.IGNORECASE)
_EXPECTED = "a limit like 100/minute (N/second|minute|hour|day, or N/10seconds)"
_DISABLED = frozenset({"none", "off", "0", ""})


class Limit(msgspec.Struct, frozen=True):
    """``amount`` requests per ``period`` seconds, as a token bucket."""

    amount: int
    period: int

    @property
    def text(self) -> str:
        return f"{self.amount}/{self.period}s"


def parse_limit(text: str) -> Limit:
    """Parse one limit; raises ValueError with what is expected (never anything else)."""
    match = _LIMIT_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(_EXPECTED)
    amount, multiple, unit = match.groups()
    unit = unit.lower()
    seconds = _UNITS.get(unit)
    if seconds is None and len(unit) > 2 and unit.endswith("s"):
        seconds = _UNITS.get(unit[:-1])  # plurals: "10seconds", "hours", "mins"
    if seconds is None:
        raise ValueError(_EXPECTED)
    count = int(multiple) if multiple else 1
    if int(amount) < 1 or count < 1:
        raise ValueError("a limit of at least 1 request per period of at least 1 second")
    return Limit(amount=int(amount), period=seconds * count)


def parse_limits(text: str) -> tuple[Limit, ...]:
    """Parse ``10/second,1000/hour`` (every limit applies); ``none``/empty means no limit."""
    if text.strip().lower() in _DISABLED:
        return ()
    return tuple(parse_limit(part) for part in text.split(","))


class PathRule(msgspec.Struct, frozen=True):
    """Limits applying to the paths a pattern matches; the pattern is the bucket's name."""

    pattern: str
    limits: tuple[Limit, ...]


_SEGMENT_RE = re.compile(r"[A-Za-z0-9._~!$&'()+,;=:@%\-]+|\*")


# Route templates: Starlette/FastAPI/Litestar ``{id}``, ``{id:int}``, ``{rest:path}``;
# Quart/Flask (Werkzeug) ``<id>``, ``<int:id>``, ``<path:rest>``. Group 1 or 2 is the converter.
_TEMPLATE_RE = re.compile(
    r"\{[A-Za-z_][A-Za-z0-9_]*(?::([A-Za-z_]+))?\}|<(?:([A-Za-z_]+):)?[A-Za-z_][A-Za-z0-9_]*>"
)


def validate_pattern(pattern: str) -> str:
    """Check a path pattern: absolute, ``*`` as a whole segment, ``/**`` only at the end.

    Route templates as Starlette, FastAPI, Litestar and Quart write them are accepted and mean
    the same: ``/items/{id}`` and ``/items/<int:id>`` are ``/items/*``, and a final
    ``{rest:path}`` or ``<path:rest>`` is ``/**``, so a rule can be copied from the route table.
    """
    if not pattern.startswith("/"):
        raise ValueError(f"path patterns start with '/': {pattern!r}")
    segments_in = pattern.split("/")
    for index, segment in enumerate(segments_in):
        template = _TEMPLATE_RE.fullmatch(segment)
        if template is not None:
            last = index == len(segments_in) - 1
            converter = template.group(1) or template.group(2)
            segments_in[index] = "**" if last and converter == "path" else "*"
    pattern = "/".join(segments_in)
    body = pattern[:-3] if pattern.endswith("/**") else pattern
    segments = [s for s in body.split("/")[1:] if s]
    for segment in segments:
        if not _SEGMENT_RE.fullmatch(segment):
            raise ValueError(f"'*' matches a whole segment, '/**' only ends a pattern: {pattern!r}")
    base = "/" + "/".join(segments)
    if pattern.endswith("/**"):
        return base.rstrip("/") + "/**"  # "/**" stays "/**", not "//**"
    return base


def parse_rules(text: str) -> tuple[PathRule, ...]:
    """Parse ``PATTERN=LIMIT;PATTERN=LIMIT`` (``LIMIT`` may list several, comma-separated)."""
    rules = []
    for item in text.split(";"):
        if not item.strip():
            continue
        pattern, eq, limits = item.partition("=")
        if not eq:
            raise ValueError(f"PATTERN=LIMIT pairs separated by ';', got {item.strip()!r}")
        parsed = parse_limits(limits)
        if not parsed:
            raise ValueError(f"{_EXPECTED} after '=' in {item.strip()!r}")
        rules.append(PathRule(pattern=validate_pattern(pattern.strip()), limits=parsed))
    return tuple(rules)
