"""asgisec: a pure-ASGI security core that wraps any ASGI app in one call.

    from asgisec import secure
    app = secure(app)            # configuration from the environment and .env

See the README for every environment variable.
"""

from __future__ import annotations

from .config import (
    CorsConfig,
    GuardsConfig,
    HeadersConfig,
    HostsConfig,
    RateLimitConfig,
    RequestConfig,
    SecurityConfig,
)
from .errors import AsgisecError, BackendError, ConfigError
from .middleware import SecurityMiddleware, secure
from .status import security_health

__all__ = [
    "AsgisecError",
    "BackendError",
    "ConfigError",
    "CorsConfig",
    "GuardsConfig",
    "HeadersConfig",
    "HostsConfig",
    "RateLimitConfig",
    "RequestConfig",
    "SecurityConfig",
    "SecurityMiddleware",
    "__version__",
    "secure",
    "security_health",
]

__version__ = "0.1.0"
