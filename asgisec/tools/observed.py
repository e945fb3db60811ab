"""What an audit saw on the wire, as plain values: the input of scoring and findings.

Probing (:mod:`.probes`) fills these in; everything downstream is pure and is unit-tested
from recorded headers.
"""

from __future__ import annotations

import msgspec

__all__ = ["Hop", "Observation", "Response"]


class Response(msgspec.Struct, kw_only=True):
    """One HTTP response: header names lower-case, in the order received; the body's start."""

    url: str
    status: int
    headers: list[tuple[str, str]] = []
    body: str = ""

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def first(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None


class Hop(msgspec.Struct, frozen=True):
    """One step of a redirect chain: the URL requested and the status it answered."""

    url: str
    status: int


class Observation(msgspec.Struct, kw_only=True):
    """Everything the scoring and the API checks look at.

    ``main`` is the final response to ``GET target`` (redirects followed); ``chain`` the
    responses on the way, ``main`` last. ``http_route`` is the redirect chain that starts at
    the plain-HTTP URL, or None when it was not tested; ``http_reachable`` False when nothing
    answered there. ``cors`` is the answer to the same GET with ``Origin: cors_origin``.
    """

    target: str
    main: Response
    chain: list[Response] = []
    https: bool = False
    verified: bool = False
    http_route: list[Hop] | None = None
    http_reachable: bool | None = None
    cors_origin: str = "https://evil.example"
    cors: Response | None = None
    null_origin: Response | None = None
    preflight: Response | None = None
    errors: list[Response] = []  # 404, 405 and malformed-request probes
    traversal: Response | None = None
