"""The failure policy around a remote backend: a timeout, a circuit breaker, open or closed.

A rate limiter must not turn a storage outage into an API outage (slowapi #253: a 500 on every
route) nor add seconds to every request (envoyproxy/ratelimit #462). So each call to the
primary backend is bounded by ``timeout_s`` (or by the primary itself when it says so with
``bounds_calls``, as :class:`~.redis.RedisBackend` does, telling a busy event loop from a slow
Redis); after ``failure_threshold`` consecutive failures the circuit *opens* and the primary
is not called at all for ``cooldown_s``; then it is probed (half-open) and the probe either
closes the circuit or opens it for another cool-down. A primary with ``warm_up()`` (Redis) is
probed beside the requests by the first one after the cool-down: the probe reconnects and
reloads the script bounded by the primary's own limit, not one request's ``timeout_s``, and
no request waits for it. Any other primary is probed by that request itself. Calls that were
already in flight when a failure was counted do not count again: the calls of one coalesced
pipeline fail together, and that is one failure, not a hundred in a row.

While the primary cannot decide, ``fail_mode`` does:

- ``"open"`` admits the request, from the ``fallback`` backend's buckets when one is given (a
  per-process :class:`~.memory.MemoryBackend`: limits hold per worker during the outage);
  without a fallback the decision carries no bucket results (send no RateLimit header);
- ``"closed"`` refuses it with :attr:`Decision.unavailable` set: a 503 with ``Retry-After``
  (the time left in the cool-down), never a 429 that would blame the client.

An incident is logged once: one warning when the circuit opens, one info line when the
primary answers again. :attr:`ResilientBackend.bypassed` counts the decisions made without
the primary. :meth:`consume` never raises (cancellation excepted).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from .backend import Decision, RateLimitBackend
from .bucket import Bucket

__all__ = ["COOLDOWN_S", "ResilientBackend"]

_US = 1_000_000
COOLDOWN_S = 5.0  # a restart or a failover takes seconds; probe that often


class ResilientBackend:
    """Wraps ``primary`` with a timeout, a circuit breaker and a fail-open/closed policy."""

    def __init__(
        self,
        primary: RateLimitBackend,
        *,
        fail_mode: Literal["open", "closed"] = "open",
        timeout_s: float = 0.05,  # RATE_LIMIT_BACKEND_TIMEOUT's default (50 ms)
        failure_threshold: int = 3,  # one lost packet is not an outage; three in a row are
        cooldown_s: float = COOLDOWN_S,
        fallback: RateLimitBackend | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fail_mode not in ("open", "closed"):
            raise ValueError("fail_mode is 'open' or 'closed'")
        if timeout_s <= 0 or cooldown_s <= 0 or failure_threshold < 1:
            raise ValueError("timeout_s and cooldown_s > 0, failure_threshold >= 1")
        self.primary = primary
        self.fail_mode = fail_mode
        self.timeout_s = timeout_s
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.fallback = fallback
        self.logger = logger or logging.getLogger("asgisec.ratelimit")
        self.clock = clock
        self.bypassed = 0  # decisions made without the primary (both fail modes)
        self.incidents = 0  # times the circuit opened
        self._failures = 0  # consecutive
        self._open_until: float | None = None  # set while the circuit is open
        self._opened_at = 0.0
        self._bypassed_at_open = 0
        self._probing = False
        self._probe_task: asyncio.Task[None] | None = None
        # A primary that can reconnect on its own (RedisBackend.warm_up) is probed that way.
        self._warm_up: Callable[[], Awaitable[None]] | None = getattr(primary, "warm_up", None)
        self._failed_at = -math.inf  # when the last failure was counted
        # A primary that bounds every call itself (RedisBackend) gets no second timeout.
        self._bounded = bool(getattr(primary, "bounds_calls", False))

    @property
    def circuit_open(self) -> bool:
        """True from the moment the circuit opens until a probe succeeds."""
        return self._open_until is not None

    @property
    def probing(self) -> bool:
        """True while a half-open probe is in flight."""
        return self._probing

    async def consume(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        """The primary's decision, or the fail mode's when the primary cannot give one."""
        probe = False
        started = self.clock()
        if self._open_until is not None:
            if self._probing or started < self._open_until:
                return await self._degraded(identity, buckets, cost)
            if self._warm_up is not None:  # half-open: a probe that no request waits for
                self._probe_beside(started, self._warm_up)
                return await self._degraded(identity, buckets, cost)
            self._probing = probe = True  # half-open: this request tries the primary
        try:
            if self._bounded:
                decision = await self.primary.consume(identity, buckets, cost)
            else:
                async with asyncio.timeout(self.timeout_s):
                    decision = await self.primary.consume(identity, buckets, cost)
        except Exception as exc:  # BackendError, TimeoutError, or a bug: never a 500
            self._failed(exc, started)
            return await self._degraded(identity, buckets, cost)
        finally:
            if probe:
                self._probing = False
        self._succeeded()
        return decision

    def _probe_beside(self, started: float, warm_up: Callable[[], Awaitable[None]]) -> None:
        """Start the half-open probe as a task of its own (one at a time)."""
        self._probing = True
        task = asyncio.get_running_loop().create_task(self._probe(started, warm_up))
        self._probe_task = task  # a strong reference until it is done; aclose cancels it

    async def _probe(self, started: float, warm_up: Callable[[], Awaitable[None]]) -> None:
        """Reconnect and reload (the primary's ``warm_up``): success closes the circuit."""
        try:
            await warm_up()
        except Exception as exc:  # the boundary: the probe failed, another cool-down
            self._failed(exc, started)
        else:
            self._succeeded()
        finally:
            self._probing = False
            self._probe_task = None

    async def warm_up(self) -> None:
        """Let the primary connect before the first request, if it can; never raises.

        A primary that cannot be reached now is not an incident yet: the requests will find
        out, and the circuit decides as usual.
        """
        if self._warm_up is None:
            return
        try:
            await self._warm_up()
        except Exception as exc:
            self.logger.warning("rate-limit storage not reachable at start-up (%s)", exc)

    async def aclose(self) -> None:
        probe = self._probe_task
        if probe is not None:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
        try:
            await self.primary.aclose()
        finally:
            if self.fallback is not None:
                await self.fallback.aclose()

    # ------------------------------------------------------------------ the circuit

    def _failed(self, exc: Exception, started: float) -> None:
        if started < self._failed_at:
            # In flight when the last failure was counted: the same broken round trip (a
            # coalesced pipeline fails all its calls at once), not one more failure in a row.
            return
        self._failures += 1
        now = self._failed_at = self.clock()
        if self._open_until is not None:  # a failed probe: same incident, another cool-down
            self._open_until = now + self.cooldown_s
            return
        if self._failures >= self.failure_threshold:
            self._open_until = now + self.cooldown_s
            self._opened_at = now
            self._bypassed_at_open = self.bypassed
            self.incidents += 1
            reason = str(exc) or type(exc).__name__
            self.logger.warning(
                "rate-limit storage unavailable after %d consecutive failures (%s); "
                "fail-%s for %g s between probes",
                self._failures,
                reason,
                self.fail_mode,
                self.cooldown_s,
            )

    def _succeeded(self) -> None:
        self._failures = 0
        if self._open_until is not None:
            self._open_until = None
            self.logger.info(
                "rate-limit storage recovered after %.1f s; %d decisions made without it",
                self.clock() - self._opened_at,
                self.bypassed - self._bypassed_at_open,
            )

    async def _degraded(self, identity: str, buckets: Sequence[Bucket], cost: int) -> Decision:
        self.bypassed += 1
        if self.fail_mode == "closed":
            left = self.cooldown_s if self._open_until is None else self._open_until - self.clock()
            retry_us = max(_US, int(left * _US))  # Retry-After is whole seconds, at least 1
            return Decision(False, (), unavailable=True, retry_after_us=retry_us)
        if self.fallback is not None:
            try:
                return await self.fallback.consume(identity, buckets, cost)
            except Exception:  # a fallback that fails too still admits: fail-open means open
                self.logger.debug("fallback rate-limit backend failed", exc_info=True)
        return Decision(True, ())
