"""Build the rate-limit backend named by ``RATE_LIMIT_STORAGE_URI``."""

from __future__ import annotations

from ..config import RateLimitConfig, mask_secret
from ..errors import ConfigError
from .backend import RateLimitBackend

__all__ = ["backend_from_config"]


def backend_from_config(config: RateLimitConfig) -> RateLimitBackend:
    uri = config.rate_limit_storage_uri
    raise ConfigError("RATE_LIMIT_STORAGE_URI", mask_secret(uri), "memory:// (Redis: in progress)")
