"""The storage interface: one atomic call decides every bucket of a request.

A request may fall under several limits (the default plus a route rule, or two limits in one
rule). They are checked and consumed together: either every bucket admits the request and all
are charged, or none is charged (envoyproxy/ratelimit #427: refused requests must not eat
other policies' quota). Backends receive the client identity and the compiled buckets and
build their own keys, so the Redis backend can give one request's keys one hash tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .bucket import Bucket, BucketResult

__all__ = ["Decision", "RateLimitBackend"]


class Decision:
    """The verdict for a request, with what the response headers need.

    ``unavailable`` marks the verdict of a fail-closed policy while the storage is down: the
    request is refused with 503 (not 429), ``results`` is empty (there is no budget to
    report) and ``retry_after_us`` says when to come back. ``retry_after_us`` may also be
    given explicitly; by default it is derived from the refusing buckets.
    """

    __slots__ = ("allowed", "results", "retry_after_us", "unavailable")

    def __init__(
        self,
        allowed: bool,
        results: Sequence[BucketResult],
        *,
        unavailable: bool = False,
        retry_after_us: int | None = None,
    ) -> None:
        self.allowed = allowed
        self.results = results
        self.unavailable = unavailable
        if retry_after_us is not None:
            self.retry_after_us = retry_after_us
            return
        # The request passes when the slowest refusing bucket has refilled; -1 = never.
        retry = 0
        if not allowed:
            for result in results:
                if not result.allowed:
                    if result.retry_us < 0:
                        retry = -1
                        break
                    retry = max(retry, result.retry_us)
        self.retry_after_us = retry


class RateLimitBackend(Protocol):
    """Where buckets live. Implementations must make :meth:`consume` atomic."""

    async def consume(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        """Check all ``buckets`` of ``identity`` and charge ``cost`` to all, or to none."""
        ...

    async def aclose(self) -> None:
        """Release connections; called on lifespan shutdown."""
        ...
