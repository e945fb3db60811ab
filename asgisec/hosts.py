"""Host header parsing and the trusted-host policy.

The Host header decides where a redirect points, which virtual host answers and what a
password-reset link says, so it is parsed strictly: a request whose Host is not exactly
``name[:port]`` (or ``[ipv6][:port]``) is refused rather than guessed at. Starlette's
TrustedHostMiddleware splits on the first ``:`` and so cannot read ``[::1]:8000``; here IPv6
literals are normalised on both sides, so ``::1`` and ``[::1]`` in configuration both match
``Host: [0:0::1]:8000``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["HostPolicy", "normalise_host_pattern", "parse_host"]

# RFC 1035 limits a name to 253 characters in text form; anything longer is not a host.
_MAX_HOST_LENGTH = 253
# Letters, digits, hyphen, and underscore (common in internal service names) in each label.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_DIGITS = frozenset("0123456789")


def _parse_name(name: str) -> str | None:
    """Return the lower-cased host name, or None when it is not a valid DNS name or IPv4."""
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > _MAX_HOST_LENGTH:
        return None
    name = name.lower()
    for label in name.split("."):
        if not label or len(label) > 63 or not _NAME_CHARS.issuperset(label):
            return None
    return name


def _parse_ipv6(literal: str) -> str | None:
    """Return the compressed, bracketed form of an IPv6 literal (without zone), or None."""
    if "%" in literal:  # zone identifiers never identify a public virtual host
        return None
    try:
        return f"[{ipaddress.IPv6Address(literal).compressed}]"
    except ValueError:
        return None


def _valid_port(port: str) -> bool:
    return 0 < len(port) <= 5 and _DIGITS.issuperset(port) and int(port) <= 65535


# Host values repeat (a service answers to a few names): parsed ones are kept, bounded, and
# the cache is cleared when full so varied junk costs only the parse it would cost anyway.
_PARSED: dict[bytes, str | None] = {}
_PARSED_MAX = 1_024


def parse_host(raw: bytes) -> str | None:
    """Parse a Host header value into its canonical host, or None when malformed.

    Canonical form: lower case, no port, no trailing dot, IPv6 bracketed and compressed.
    Total: never raises, whatever the bytes.
    """
    try:
        return _PARSED[raw]
    except KeyError:
        pass
    except TypeError:  # a bytearray (unhashable): parsed, not kept
        return _parse(raw)
    host = _parse(raw)
    if len(raw) <= _MAX_HOST_LENGTH + 8:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[raw] = host
    return host


def _parse(raw: bytes) -> str | None:
    try:
        value = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        rest = value[end + 1 :]
        if rest and not (rest[0] == ":" and _valid_port(rest[1:])):
            return None
        return _parse_ipv6(value[1:end])
    name, colon, port = value.partition(":")
    if colon and not _valid_port(port):
        return None
    return _parse_name(name)


def normalise_host_pattern(pattern: str) -> str | None:
    """Canonical form of one TRUSTED_HOSTS entry, or None when it is not a host pattern.

    Accepts ``name``, ``*.name`` (subdomains only), ``*`` (any host), ``[v6]`` and bare ``v6``.
    Ports, paths, schemes and user info are refused: the port is not part of the match.
    """
    pattern = pattern.strip()
    if pattern == "*":
        return "*"
    if pattern.startswith("*."):
        name = _parse_name(pattern[2:])
        return None if name is None else "*." + name
    if pattern.startswith("["):
        if not pattern.endswith("]"):
            return None
        return _parse_ipv6(pattern[1:-1])
    if ":" in pattern:  # a bare IPv6 literal, or a name with a port (refused)
        return _parse_ipv6(pattern)
    return _parse_name(pattern)


class HostPolicy:
    """Decides whether a canonical host is trusted.

    Exact names live in a frozenset; ``*.example.com`` patterns in a frozenset of suffixes
    checked once per dot in the host, so the cost is O(labels), not O(patterns).
    """

    __slots__ = ("allow_any", "exact", "suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        suffixes: set[str] = set()
        allow_any = False
        for raw in patterns:
            pattern = normalise_host_pattern(raw)
            if pattern is None:
                raise ValueError(f"not a host pattern: {raw!r}")
            if pattern == "*":
                allow_any = True
            elif pattern.startswith("*."):
                suffixes.add(pattern[1:])  # keep the leading dot: ".example.com"
            else:
                exact.add(pattern)
        # No pattern at all means any host (TRUSTED_HOSTS empty: warned about at start-up).
        self.allow_any = allow_any or not (exact or suffixes)
        self.exact = frozenset(exact)
        self.suffixes = frozenset(suffixes)

    @property
    def configured(self) -> int:
        """How many host patterns are enforced (0 when any host is accepted)."""
        return 0 if self.allow_any else len(self.exact) + len(self.suffixes)

    def allows(self, host: str | None) -> bool:
        """True when ``host`` (already canonical, or None for a malformed one) is trusted.

        A malformed host is never trusted, not even when any host is allowed.
        """
        if host is None:
            return False
        if self.allow_any:
            return True
        if host in self.exact:
            return True
        if self.suffixes:
            dot = host.find(".")
            while dot > 0:  # never the whole host: "*.example.com" excludes the apex
                if host[dot:] in self.suffixes:
                    return True
                dot = host.find(".", dot + 1)
        return False
