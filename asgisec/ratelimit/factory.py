"""Build the rate-limit backend named by ``RATE_LIMIT_STORAGE_URI``.

A remote store is always wrapped in :class:`~.resilient.ResilientBackend`: the backend
timeout, the circuit breaker and the fail-open/closed policy apply to every remote backend,
so no storage can make a request slow or turn into a 500.
"""

from __future__ import annotations

import logging

from ..config import RateLimitConfig
from .backend import RateLimitBackend
from .memory import MemoryBackend
from .resilient import ResilientBackend

__all__ = ["backend_from_config"]


def backend_from_config(config: RateLimitConfig) -> RateLimitBackend:
    """The configured backend; raises ConfigError (naming the extra) when redis is missing."""
    uri = config.rate_limit_storage_uri
    if uri.startswith("memory://"):
        return MemoryBackend(max_keys=config.rate_limit_max_keys)
    from .redis import RedisBackend  # noqa: PLC0415 - the redis extra is optional

    primary = RedisBackend.from_url(uri, timeout=config.rate_limit_backend_timeout)
    # Fail-open keeps limits per process during an outage rather than dropping them.
    fallback = MemoryBackend(max_keys=config.rate_limit_max_keys)
    return ResilientBackend(
        primary,
        fail_mode=config.rate_limit_fail_mode,
        timeout_s=config.rate_limit_backend_timeout,
        fallback=fallback if config.rate_limit_fail_mode == "open" else None,
        logger=logging.getLogger("asgisec.ratelimit"),
    )
