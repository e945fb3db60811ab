"""The per-request record: status, bytes, timing, client, findings; counted and logged at the end.

The middleware wraps the server's ``send`` in an :class:`Exchange` (one small object per
request, the only per-request state), fills in what the pipeline learns (client address,
request id, a finding, a refusal), and hands it to :meth:`Observer.finish` in its
``finally``. Everything here is bookkeeping: it never changes a response and never raises.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .bans import AutoBan, BanList, SharedState, plain_address
from .clients import ClientResolver, parse_networks
from .config import SecurityConfig
from .counters import SecurityCounters
from .detection import Finding
from .logs import RequestLog, redact_headers, redact_query
from .metrics import CONTENT_TYPE, OverheadHistogram, prometheus_text

__all__ = ["Exchange", "Observer", "read_body"]

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]

_MIN_SAMPLE = 20  # requests before /health judges rates: one refusal of three is no trend


class Exchange:
    """``send`` for one request, recording what went out; and what the pipeline learned."""

    __slots__ = (
        "app_seconds",
        "bytes",
        "client",
        "finding",
        "reason",
        "request_id",
        "send",
        "started",
        "status",
        "user_agent",
    )

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = time.perf_counter()
        self.app_seconds = 0.0
        self.status = 0
        self.bytes = 0
        self.client = "unknown"
        self.request_id = b""
        self.user_agent: bytes | None = None
        self.finding: Finding | None = None
        self.reason: str | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
        elif kind == "http.response.body":
            self.bytes += len(message.get("body", b""))
        await self.send(message)


async def read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """Read request messages until the body ends or passes ``limit`` bytes.

    Returns the messages read (to replay to the app) and the body, or None when it was
    longer than ``limit`` or the client went away (then it is not scanned).
    """
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives back ``messages`` first, then reads on."""
    pending = list(messages)

    async def replaying() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replaying


class Observer:
    """Counters, histogram, logs, bans and metrics for one middleware instance."""

    def __init__(
        self, config: SecurityConfig, counters: SecurityCounters, clients: ClientResolver
    ) -> None:
        self.counters = counters
        self.histogram = OverheadHistogram()
        self.log = RequestLog(
            config.logging.enable_request_logging, config.logging.log_sensitive_data
        )
        self.sensitive = config.logging.log_sensitive_data
        containment = config.containment
        self.bans = BanList(containment.blocked_ips)
        self.auto_ban = (
            AutoBan(
                containment.auto_ban_threshold,
                containment.auto_ban_window,
                containment.auto_ban_duration,
            )
            if containment.auto_ban_threshold
            else None
        )
        metrics = config.metrics
        self.metrics_path = metrics.metrics_path
        self.metrics_allowed = parse_networks(metrics.metrics_allowed_ips)
        self.blocked_threshold = metrics.health_blocked_rate_threshold
        self.overhead_threshold = metrics.health_overhead_threshold_ms
        uri = config.rate_limit.rate_limit_storage_uri
        self.shared = (
            None
            if uri.startswith("memory://")
            else SharedState(uri, self.bans, counters, self.auto_ban)
        )

    # ------------------------------------------------------------------ during the request

    def suspicious(self, exchange: Exchange, finding: Finding) -> None:
        """Count a finding (once per request) and feed auto-ban."""
        if exchange.finding is not None:
            return
        exchange.finding = finding
        self.counters.suspicious += 1
        by_category = self.counters.by_category
        by_category[finding.category] = by_category.get(finding.category, 0) + 1
        client = exchange.client
        if self.auto_ban is None or client == "unknown":
            return
        if self.shared is not None:
            # counted fleet-wide at the next sync, under the spelling `asgisec bans` uses
            self.shared.strikes.append(plain_address(client))
        elif self.auto_ban.strike(client, time.monotonic()):
            self.bans.ban(client, time.time() + self.auto_ban.duration)
            logging.getLogger("asgisec.bans").warning(
                "auto-ban: %s banned for %d s", client, self.auto_ban.duration
            )

    def metrics_allowed_for(self, client: str) -> bool:
        from .clients import _parse_ip  # noqa: PLC0415 - cached parse, shared with bans

        address = _parse_ip(client)
        return address is not None and any(address in net for net in self.metrics_allowed)

    def metrics_body(self) -> tuple[bytes, bytes]:
        extra: dict[str, Any] = {
            "asgisec_banned_clients": (
                "gauge",
                "Addresses and networks banned right now.",
                len(self.bans.listing()),
                "",
            )
        }
        fleet = self.shared.fleet if self.shared is not None else {}
        if fleet:
            extra["asgisec_fleet_requests_total"] = (
                "counter",
                "Requests seen by every process sharing this Redis.",
                fleet.get("total", 0),
                "",
            )
            blocked = {k[8:]: v for k, v in fleet.items() if k.startswith("blocked:")}
            blocked["rate_limited"] = fleet.get("rate_limited", 0)
            extra["asgisec_fleet_blocked_total"] = (
                "counter",
                "Requests refused by every process sharing this Redis, by reason.",
                blocked,
                "reason",
            )
            extra["asgisec_fleet_suspicious_total"] = (
                "counter",
                "Suspicious requests seen by every process sharing this Redis.",
                fleet.get("suspicious", 0),
                "",
            )
        body = prometheus_text(self.counters.snapshot(), self.histogram, extra)
        return body, CONTENT_TYPE

    # ------------------------------------------------------------------ at the end

    def finish(self, exchange: Exchange, scope: MutableMapping[str, Any]) -> None:
        """Time, count and log the request. Never raises."""
        try:
            elapsed = time.perf_counter() - exchange.started
            overhead_ms = max(0.0, (elapsed - exchange.app_seconds) * 1000)
            self.histogram.observe(overhead_ms)
            if self.shared is not None:
                self.shared.start()  # no-op once running; here for servers without lifespan
            if not self.log.enabled:
                return
            line: dict[str, Any] = {
                "message": "Request",
                "request_id": exchange.request_id.decode("latin-1"),
                "client_ip": exchange.client,
                "method": scope.get("method", ""),
                "path": scope.get("path", ""),
                "query": redact_query(scope.get("query_string", b""), self.sensitive),
                "status": exchange.status,
                "duration_ms": round(elapsed * 1000, 3),
                "overhead_ms": round(overhead_ms, 3),
                "bytes": exchange.bytes,
                "user_agent": (exchange.user_agent or b"").decode("latin-1")[:512],
            }
            level = logging.INFO
            finding = exchange.finding
            if finding is not None:
                level = logging.WARNING
                line["message"] = "Suspicious request detected"
                line["reason"] = finding.reason
                line["category"] = finding.category
                line["action"] = "blocked" if exchange.reason == "suspicious_blocked" else "logged"
            elif exchange.reason is not None:
                level = logging.WARNING
                line["message"] = "Request blocked"
                line["reason"] = exchange.reason
            if level == logging.WARNING:
                line["headers"] = redact_headers(scope.get("headers", ()), self.sensitive)
            self.log.emit(level, line)
        except Exception:  # noqa: S110 - bookkeeping must never cost a response
            pass

    # ------------------------------------------------------------------ health

    def health_fields(self, counts: dict[str, Any]) -> dict[str, Any]:
        total = counts["total_requests"]
        refused = counts["blocked_requests"] + counts["rate_limited_requests"]
        blocked_rate = refused / total if total else 0.0
        p50 = self.histogram.quantile(0.5)
        p99 = self.histogram.quantile(0.99)
        degraded = total >= _MIN_SAMPLE and (
            blocked_rate > self.blocked_threshold or p99 > self.overhead_threshold
        )
        fields: dict[str, Any] = {
            "status": "degraded" if degraded else "healthy",
            "blocked_rate": round(blocked_rate, 4),
            "overhead_ms_p50": round(p50, 3),
            "overhead_ms_p99": round(p99, 3),
            "suspicious_by_category": counts["suspicious_by_category"],
            "banned_clients": len(self.bans.listing()),
        }
        if self.shared is not None and self.shared.fleet:
            fleet = self.shared.fleet
            fields["fleet"] = {
                "total_requests": fleet.get("total", 0),
                "blocked_requests": sum(v for k, v in fleet.items() if k.startswith("blocked:")),
                "rate_limited_requests": fleet.get("rate_limited", 0),
                "suspicious_requests": fleet.get("suspicious", 0),
            }
        return fields

    def start(self) -> None:
        """Start sharing bans and counters (at lifespan start-up, or the first request)."""
        if self.shared is not None:
            self.shared.start()

    async def aclose(self) -> None:
        """Stop sharing, after a last sync. Never raises."""
        if self.shared is not None:
            with contextlib.suppress(Exception):  # shutdown goes on whatever Redis does
                await self.shared.aclose()
