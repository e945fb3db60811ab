"""asgisec's own answers, canned at start-up.

Every refusal is a short JSON body that names the refusal and nothing else: no paths, no
versions, no configuration. The per-request parts (security headers, CORS grant, request id,
Retry-After) are added by the middleware like on any other response.
"""

from __future__ import annotations

import msgspec

__all__ = ["Rejection", "canned"]

Header = tuple[bytes, bytes]


class Rejection:
    """A ready response: status, the JSON body, and its content headers."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.body = msgspec.json.encode({"error": reason, "message": message})
        self.headers: tuple[Header, ...] = (
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode("ascii")),
        )


def canned(max_request_size: int) -> dict[str, Rejection]:
    """Every refusal asgisec can send, by reason."""
    rejections = [
        Rejection(400, "bad_request", "Malformed request."),
        Rejection(400, "invalid_host", "Invalid host header."),
        Rejection(403, "cors", "Cross-origin request not allowed."),
        Rejection(403, "banned", "Access denied."),
        Rejection(403, "suspicious_blocked", "Request blocked."),
        Rejection(404, "not_found", "Not found."),
        Rejection(413, "too_large", f"Request body larger than {max_request_size} bytes."),
        Rejection(429, "rate_limited", "Too many requests."),
        Rejection(500, "internal_error", "Internal server error."),
        Rejection(503, "unavailable", "Service temporarily unavailable."),
        Rejection(403, "https_required", "HTTPS required."),
        Rejection(504, "timeout", "The request took too long."),
        Rejection(503, "overloaded", "Too many requests in progress; retry shortly."),
        Rejection(308, "https_redirect", "Use HTTPS."),
    ]
    return {rejection.reason: rejection for rejection in rejections}
