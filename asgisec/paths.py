"""Per-path policies: which settings apply to a request path, compiled at start-up.

A :class:`PathMap` maps path prefixes (normalised by
:func:`~asgisec.guards_config.normalise_path_prefix`) to values. A prefix matches on segment
boundaries only, so ``/docs`` covers ``/docs`` and ``/docs/x`` but not ``/docsearch``; the
longest matching prefix wins; ``/`` covers every path. A path with a ``.`` or ``..`` segment
matches nothing: ``/health/../admin`` must not borrow the exemptions of ``/health``.

Lookup is one dict probe per path segment, and nothing at all when no prefix is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

__all__ = ["PathMap"]

T = TypeVar("T")


class PathMap(Generic[T]):
    """Path prefix → value, longest prefix first, on segment boundaries."""

    __slots__ = ("entries", "root")

    def __init__(self, entries: Mapping[str, T]) -> None:
        self.entries = {prefix: value for prefix, value in entries.items() if prefix != "/"}
        self.root: T | None = entries.get("/")

    def __bool__(self) -> bool:
        return bool(self.entries) or self.root is not None

    def match(self, path: str) -> T | None:
        """The value of the longest prefix covering ``path``, or None."""
        if "/." in path and any(part in (".", "..") for part in path.split("/")):
            return None
        entries = self.entries
        if entries:
            found = entries.get(path)
            if found is not None:
                return found
            end = path.rfind("/")
            while end > 0:
                found = entries.get(path[:end])
                if found is not None:
                    return found
                end = path.rfind("/", 0, end)
        return self.root
