"""Security counters, and the ``/health`` block built from them.

Counters are plain integers mutated only from the event loop that serves the middleware, between
awaits, so every increment is exact under any number of concurrent requests without a lock.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["BLOCK_REASONS", "SecurityCounters"]

# Why asgisec refused a request. Rate limiting is counted apart, as the guide's block does.
BLOCK_REASONS = (
    "bad_request",
    "invalid_host",
    "cors",
    "too_large",
    "unavailable",
    "https_required",  # a ws:// handshake under FORCE_HTTPS
    "timeout",  # the app ran past REQUEST_TIMEOUT (504, or cancelled mid-response)
    "overloaded",  # MAX_CONCURRENT_REQUESTS were already in the app (503)
    "suspicious_blocked",  # SUSPICIOUS_MODE=block refused a finding (403)
    "banned",  # BLOCKED_IPS or an auto-ban (403)
)


class SecurityCounters:
    """Monotonic counts since start-up."""

    __slots__ = (
        "blocked",
        "by_category",
        "csp_reports",
        "rate_limited",
        "started_at",
        "suspicious",
        "total",
    )

    def __init__(self) -> None:
        # Unix time the counts start from: a monitor that sees it change knows the counters
        # were reset (a restart), so a smaller count is a new series, not a negative rate.
        self.started_at = round(time.time(), 3)
        self.total = 0
        self.rate_limited = 0
        self.suspicious = 0  # requests with a detection finding (logged or blocked)
        self.csp_reports = 0  # violation reports received at CSP_REPORT_PATH
        self.blocked: dict[str, int] = dict.fromkeys(BLOCK_REASONS, 0)
        self.by_category: dict[str, int] = {}  # suspicious requests by finding category

    @property
    def blocked_total(self) -> int:
        """Requests refused for any reason other than rate limiting."""
        return sum(self.blocked.values())

    def snapshot(self) -> dict[str, Any]:
        return {
            "total_requests": self.total,
            "blocked_requests": self.blocked_total,
            "blocked_by_reason": dict(self.blocked),
            "rate_limited_requests": self.rate_limited,
            "suspicious_requests": self.suspicious,
            "suspicious_by_category": dict(self.by_category),
            "csp_reports": self.csp_reports,
            "started_at": self.started_at,
        }

    def flat(self) -> dict[str, int]:
        """Every count under one flat name, as the fleet hash in Redis stores them."""
        flat = {
            "total": self.total,
            "rate_limited": self.rate_limited,
            "suspicious": self.suspicious,
        }
        flat.update({f"blocked:{k}": v for k, v in self.blocked.items()})
        flat.update({f"suspicious:{k}": v for k, v in self.by_category.items()})
        return flat
