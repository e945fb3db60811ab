"""The detector: request facts in, at most one :class:`Finding` out. No I/O, no ASGI.

Compiled once from :class:`~asgisec.config_observe.DetectionConfig`. The middleware asks
:meth:`Detector.scan` with the path, raw path, query string and the two headers worth
scanning (User-Agent, Referer), and :meth:`Detector.scan_body` with a form or JSON body of at
most ``SUSPICIOUS_BODY_LIMIT`` bytes. Every value is decoded first (:mod:`.decode`), then
lower-cased, then matched against one alternation per category (:mod:`.rules`).

The common case is cheap: a value that is only letters and digits cannot carry any payload
and is skipped without decoding or matching, and nothing is allocated for a request whose
path and query are plain.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..ratelimit.limits import validate_pattern
from ..ratelimit.rules import _pattern_regex, normalise_path
from .decode import normalise, split_query
from .rules import CATEGORIES, RULES, Rule, check_pattern, scanner_in

__all__ = ["Detector", "Finding", "parse_exemptions"]

_SQL_VERSIONED = re.compile(r"/\*!\d{0,6}")  # MySQL /*!50000union*/: the inside is executed
_SQL_COMMENT = re.compile(r"/\*.{0,1000}?\*/|\*/", re.DOTALL)
_SPACES = re.compile(r"[\s\x00\x0b]+")
# What a user agent carrying a payload contains and a browser's or bot's never does.
# A character class alone lets `re` scan fast; the few words are substring tests.
_UA_PAYLOAD_CHARS = re.compile(r"['\"<>`$|{}\\%\r\n\x00]")
_UA_PAYLOAD_WORDS = ("--", "/*", "../", "select", "union", "sleep")
# A word (letters, digits, _ and -) or a number or date: no rule can match it (the gate test
# in tests/test_detection.py holds this against the corpus and generated text).
# An ISO 8601 date-time (the commonest non-word string in JSON APIs) is plain too: its only
# letters are T and Z, and no rule needs a digit-bounded ':' or '+'.
_PLAIN = re.compile(
    r"[A-Za-z0-9_\-]{1,200}|[0-9][0-9.,\-]{0,60}"
    r"|\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:[Zz]|[+\-]\d\d:?\d\d)?"
)
# Paths repeat (an API has few routes): their verdicts are kept, up to this many short ones.
_PATH_CACHE_SIZE = 4_096
_PATH_CACHE_MAX_LEN = 256
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")
_MAX_JSON_DEPTH = 32  # deeper than any real payload; a bomb is not walked further
_MAX_JSON_STRINGS = 2_000  # strings examined per body (keys and values)
_JSON_TYPES = (b"application/json", b"+json")
_FORM_TYPE = b"application/x-www-form-urlencoded"


class Finding:
    """Why a request looks like an attack: a category (``sqli``, ``scanner`` ...) and a
    reason for the log line, e.g. ``SQL injection in query parameter 'id'``."""

    __slots__ = ("category", "reason")

    def __init__(self, category: str, reason: str) -> None:
        self.category = category
        self.reason = reason

    def __repr__(self) -> str:
        return f"Finding({self.category!r}, {self.reason!r})"


def parse_exemptions(text: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """``/api/posts/*=xss;/hooks/**=all`` → ``(("/api/posts/*", {"xss"}), ...)``.

    Raises ValueError naming what is wrong. ``all`` (or nothing after ``=``) exempts the path
    from every category.
    """
    entries = []
    for item in text.split(";"):
        if not item.strip():
            continue
        pattern, _, categories = item.partition("=")
        names = frozenset(c.strip().lower() for c in categories.split(",") if c.strip())
        if not names or "all" in names:
            names = frozenset(CATEGORIES)
        unknown = names - set(CATEGORIES)
        if unknown:
            raise ValueError(
                f"unknown category {sorted(unknown)[0]!r}; categories are "
                + ", ".join(CATEGORIES)
                + " or all"
            )
        entries.append((validate_pattern(pattern.strip()), names))
    return tuple(entries)


def _where(kind: str, name: str) -> str:
    if _SAFE_NAME.fullmatch(name):
        return f"{kind} '{name}'"
    return kind


class Detector:
    """Suspicious-request detection compiled from the configuration."""

    __slots__ = ("blocks", "body_limit", "custom", "enabled", "exemptions", "paths", "rules")

    def __init__(
        self,
        mode: str = "log",
        *,
        body_limit: int = 65_536,
        patterns: str = "",
        exemptions: str = "",
    ) -> None:
        self.enabled = mode != "off"
        self.blocks = mode == "block"
        self.body_limit = body_limit
        self.rules: tuple[Rule, ...] = RULES
        self.custom = (
            re.compile(check_pattern(patterns).pattern, re.IGNORECASE) if patterns else None
        )
        self.exemptions = tuple(
            (_pattern_regex(pattern), names) for pattern, names in parse_exemptions(exemptions)
        )
        # (path, raw path) → the finding in them, or None. Cleared when full: an attacker
        # who varies paths only gets the uncached cost, and memory stays bounded.
        self.paths: dict[tuple[str, bytes | None], Finding | None] = {}

    # ------------------------------------------------------------------ the request line

    def scan(
        self,
        path: str,
        raw_path: bytes | None,
        query: bytes,
        user_agent: bytes | None,
        referer: bytes | None = None,
    ) -> Finding | None:
        """The first finding in the user agent, path, raw path, query string or referer."""
        skip = self._exempt(path) if self.exemptions else None
        if user_agent:
            agent = user_agent.decode("latin-1").lower()
            if skip is None or "scanner" not in skip:
                scanner = scanner_in(user_agent)
                if scanner is not None:
                    return Finding("scanner", f"Suspicious user-agent: {scanner}")
            if _ua_payload(agent):  # browsers' agents never get this far
                found = self._check(agent, "header 'user-agent'", skip, decode=False)
                if found is not None:
                    return found
        found = self._scan_path(path, raw_path, skip)
        if found is not None:
            return found
        if query:
            found = self._pairs(query.decode("utf-8", "replace"), "query parameter", skip)
            if found is not None:
                return found
        if referer:
            found = self._check(referer.decode("latin-1"), "header 'referer'", skip, decode=True)
            if found is not None:
                return found
        return None

    def _scan_path(
        self, path: str, raw_path: bytes | None, skip: frozenset[str] | None
    ) -> Finding | None:
        """The finding in the path or the raw path; remembered for short paths (the verdict
        depends on nothing else: exemptions are a function of the path)."""
        key = (path, raw_path)
        paths = self.paths
        if key in paths:
            return paths[key]
        found = self._check(path, "path", skip, decode="%" in path)
        if found is None and raw_path and b"%" in raw_path:
            found = self._check(raw_path.decode("latin-1"), "path", skip, decode=True)
        if len(path) <= _PATH_CACHE_MAX_LEN and (raw_path is None or len(raw_path) <= 1024):
            if len(paths) >= _PATH_CACHE_SIZE:
                paths.clear()
            paths[key] = found
        return found

    # ------------------------------------------------------------------ bodies

    def wants_body(self, content_type: bytes | None, content_length: int | None) -> bool:
        """Is this a form or JSON body small enough to scan before the app sees it?"""
        if not self.body_limit or content_type is None:
            return False
        if content_length is not None and content_length > self.body_limit:
            return False
        kind = content_type.split(b";", 1)[0].strip().lower()
        return kind == _FORM_TYPE or kind.endswith(_JSON_TYPES)

    def scan_body(self, path: str, content_type: bytes, body: bytes) -> Finding | None:
        """The first finding in a form or JSON body (a body that does not parse is skipped)."""
        skip = self._exempt(path) if self.exemptions else None
        kind = content_type.split(b";", 1)[0].strip().lower()
        if kind == _FORM_TYPE:
            return self._pairs(body.decode("utf-8", "replace"), "form field", skip)
        try:
            document = msgspec.json.decode(body)
        except (msgspec.DecodeError, RecursionError):  # a nesting bomb: RecursionError
            return None  # the app will refuse it; not ours to judge
        for name, text in _strings(document):
            if _PLAIN.fullmatch(text):
                continue
            found = self._match(text, skip, decode=True, plus=False)
            if found is not None:
                return Finding(found[0], f"{found[1]} in {_where('JSON field', name)}")
        return None

    # ------------------------------------------------------------------ matching

    def _exempt(self, path: str) -> frozenset[str] | None:
        normalised = normalise_path(path)
        names: frozenset[str] = frozenset()
        for pattern, categories in self.exemptions:
            if pattern.fullmatch(normalised):
                names |= categories
        return names or None

    def _pairs(self, query: str, kind: str, skip: frozenset[str] | None) -> Finding | None:
        for key, value in split_query(query):
            for text in (value, key):
                if not text or _PLAIN.fullmatch(text):
                    continue  # a word or a number: nothing to decode, nothing to find
                found = self._match(text, skip, decode=True, plus=True)
                if found is not None:
                    category, reason = found
                    where = _where(kind, normalise(key, plus=True).text)
                    return Finding(category, f"{reason} in {where}")
        return None

    def _check(
        self,
        text: str,
        where: str,
        skip: frozenset[str] | None,
        *,
        decode: bool,
    ) -> Finding | None:
        found = self._match(text, skip, decode=decode, plus=False)
        return None if found is None else Finding(found[0], f"{found[1]} in {where}")

    def _match(
        self, text: str, skip: frozenset[str] | None, *, decode: bool, plus: bool
    ) -> tuple[str, str] | None:
        """``(category, reason)`` of the first rule ``text`` matches, decoded first."""
        if text.isalnum():
            return None
        overencoded = False
        if decode or not text.isascii():
            decoded = normalise(text, plus=plus)
            text, overencoded = decoded.text, decoded.overencoded
        low = text.lower()
        sql = None
        for rule in self.rules:
            if skip is not None and rule.category in skip:
                continue
            if rule.category == "sqli":
                if sql is None:
                    sql = _fold_sql(low)
                subject = sql
            else:
                subject = low
            if rule.gate.search(subject) and rule.pattern.search(subject):
                return rule.category, rule.reason
        custom = self.custom
        if custom is not None and (skip is None or "custom" not in skip) and custom.search(text):
            return "custom", "Custom pattern"
        if overencoded and (skip is None or "evasion" not in skip):
            return "evasion", "Encoded more than three times"
        return None


def _ua_payload(agent: str) -> bool:
    """Could this user agent carry a payload? (What a browser's or bot's never contains.)"""
    return _UA_PAYLOAD_CHARS.search(agent) is not None or any(
        word in agent for word in _UA_PAYLOAD_WORDS
    )


def _fold_sql(text: str) -> str:
    """Comments out (``1/**/union`` is ``1 union``), versioned comments opened, spaces single."""
    if "/*" in text or "*/" in text:
        text = _SQL_VERSIONED.sub(" ", text)
        text = _SQL_COMMENT.sub(" ", text)
    return _SPACES.sub(" ", text)


def _strings(document: Any) -> list[tuple[str, str]]:
    """``(field name, string)`` for every key and string value of a JSON document, bounded.

    A list built in one loop rather than a generator: for the small documents most requests
    carry this halves the walk, and the bounds (depth, strings) cap it for the rest.
    """
    out: list[tuple[str, str]] = []
    append = out.append
    stack: list[tuple[str, Any, int]] = [("", document, 0)]
    while stack and len(out) < _MAX_JSON_STRINGS:
        name, value, depth = stack.pop()
        kind = type(value)
        if kind is str:
            append((name, value))
        elif depth >= _MAX_JSON_DEPTH:
            continue
        elif kind is dict:
            for key, item in value.items():
                append((key, key))
                if type(item) is str:
                    append((key, item))
                elif type(item) is dict or type(item) is list:
                    stack.append((key, item, depth + 1))
        elif kind is list:
            for item in value:
                if type(item) is str:
                    append((name, item))
                elif type(item) is dict or type(item) is list:
                    stack.append((name, item, depth + 1))
    del out[_MAX_JSON_STRINGS:]
    return out
