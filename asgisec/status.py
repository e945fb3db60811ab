"""How an application reads asgisec's security block for its own health endpoint.

The middleware puts itself in the request scope under ``"asgisec"``; any handler below it,
in any framework, can then call :func:`security_health` with the scope it was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SCOPE_KEY", "security_health"]

SCOPE_KEY = "asgisec"


def security_health(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The guide's ``checks.security`` block for the middleware serving this request.

    An app that is not wrapped gets ``status: "unprotected"`` and zero counts, so a health
    check reports the missing protection instead of failing.
    """
    middleware = scope.get(SCOPE_KEY)
    if middleware is None:
        return {
            "status": "unprotected",
            "blocked_requests": 0,
            "rate_limited_requests": 0,
            "suspicious_requests": 0,
            "security_headers_enabled": False,
            "trusted_hosts_configured": 0,
        }
    block: dict[str, Any] = middleware.health()
    return block
