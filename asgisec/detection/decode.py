"""Turning what a client sent into what an application will see, before any rule looks at it.

Attackers hide payloads behind encodings that the application (or a proxy in front of it)
undoes: percent-encoding, once or several times; ``+`` for space in query strings; overlong
UTF-8 (``%c0%ae`` for ``.``); IIS's ``%u002e``; full-width and other compatibility
characters that Unicode NFKC folds to ASCII (U+FF0E U+FF0E U+FF0F is ``../``); and HTML
entities in values that end up in a page. :func:`normalise` undoes all of them, a bounded
number of rounds, and reports whether encoding was still left after the last round (three
rounds of encoding is never a browser's doing).

Every function here is total: any ``str`` in, a ``str`` out, never an exception.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote_to_bytes

__all__ = ["MAX_ROUNDS", "Decoded", "normalise", "split_query"]

MAX_ROUNDS = 3  # CRS decodes twice (the engine, then t:urlDecodeUni); one more for margin

# Overlong UTF-8 (RFC 3629 forbids them; old IIS and Tomcat accepted them): two-byte forms
# C0/C1 xx and three-byte forms E0 80..9F xx encode ASCII and are how `%c0%ae%c0%ae/` hides.
_OVERLONG_2 = re.compile(rb"[\xc0\xc1][\x80-\xbf]")
_OVERLONG_3 = re.compile(rb"\xe0[\x80-\x9f][\x80-\xbf]")
_IIS_UNICODE = re.compile(r"%u([0-9a-fA-F]{4})")
_STILL_ENCODED = re.compile(r"%(?:25)*[0-9a-fA-F]{2}")
_ENCODED = re.compile(r"%[0-9a-fA-F]{2}|%u[0-9a-fA-F]{4}")


def _overlong2(match: re.Match[bytes]) -> bytes:
    first, second = match.group()
    return bytes([((first & 0x1F) << 6) | (second & 0x3F)])


def _overlong3(match: re.Match[bytes]) -> bytes:
    _, second, third = match.group()
    return bytes([((second & 0x3F) << 6) | (third & 0x3F)])


def _iis(match: re.Match[str]) -> str:
    return chr(int(match.group(1), 16))


def _percent_round(text: str, plus: bool) -> str:
    """One round of percent-decoding, overlong UTF-8 folded; undecodable bytes are kept."""
    if plus:
        text = text.replace("+", " ")
    if "%u" in text or "%U" in text:
        text = _IIS_UNICODE.sub(_iis, text)
    raw = unquote_to_bytes(text)
    if b"\xc0" in raw or b"\xc1" in raw or b"\xe0" in raw:
        raw = _OVERLONG_2.sub(_overlong2, raw)
        raw = _OVERLONG_3.sub(_overlong3, raw)
    return raw.decode("utf-8", "replace")


class Decoded:
    """A value in its decoded form, and whether it was still encoded after the last round."""

    __slots__ = ("overencoded", "text")

    def __init__(self, text: str, overencoded: bool) -> None:
        self.text = text
        self.overencoded = overencoded


def normalise(value: str, *, plus: bool = False, entities: bool = True) -> Decoded:
    """Decode ``value`` up to :data:`MAX_ROUNDS` times, then NFKC and HTML entities.

    ``plus`` turns ``+`` into a space in the first round only (query strings and forms: a
    ``%2B`` decoded in a later round is a real plus). ``entities`` undoes ``&lt;`` and
    friends, for the values that may end up in a page.
    """
    text = value
    overencoded = False
    if "%" in text or (plus and "+" in text):
        for round_ in range(MAX_ROUNDS):
            decoded = _percent_round(text, plus and round_ == 0)
            if decoded == text:
                break
            text = decoded
            if "%" not in text:
                break
        else:
            overencoded = _STILL_ENCODED.search(text) is not None and bool(_ENCODED.search(text))
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if entities and "&" in text:
        text = html.unescape(text)
    return Decoded(text, overencoded)


def split_query(query: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` → ``[("a", "1"), ("b", "2")]``, still encoded (``normalise`` decodes).

    Like ``parse_qsl(keep_blank_values=True)`` but without decoding, so that decoding is done
    once, by the same rounds as everything else. ``;`` is not a separator (WHATWG URL).
    """
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs
