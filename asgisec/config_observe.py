"""Configuration of detection, request logs, metrics and containment (issue 5's sections).

Kept apart from :mod:`asgisec.config` so that module stays small; the Structs share its base
and option helper, and appear on :class:`~asgisec.config.SecurityConfig` like every other
section (so the env parser, the README table and ``asgisec env`` see them).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from .config import _opt, _Section
from .errors import ConfigError

__all__ = ["ContainmentConfig", "DetectionConfig", "LoggingConfig", "MetricsConfig"]


def _check_networks(variable: str, entries: tuple[str, ...]) -> None:
    for entry in entries:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                variable, entry, "IP addresses or CIDR networks, comma-separated"
            ) from None


class DetectionConfig(_Section, frozen=True):
    suspicious_mode: Annotated[
        Literal["log", "block", "off"],
        _opt(
            "What a suspicious request (scanner, traversal, SQLi, XSS, command or CRLF "
            "injection) gets: `log` counts and logs it, `block` also answers 403, `off` skips "
            "detection."
        ),
    ] = "log"  # detection has false positives: watch the log before blocking on it
    suspicious_body_limit: Annotated[
        int,
        _opt(
            "Form and JSON bodies up to this many bytes are scanned before the app reads them; "
            "0 scans no bodies.",
            ge=0,
        ),
    ] = 65_536  # 64 KiB: every form and most JSON calls, and a bounded buffer per request
    suspicious_patterns: Annotated[
        str,
        _opt(
            "An extra regular expression (case-insensitive) matched against the decoded path, "
            "query, selected headers and bodies, e.g. `wp-login\\.php|xmlrpc\\.php`."
        ),
    ] = ""  # nothing beyond the built-in rules until the operator knows their own probes
    suspicious_exemptions: Annotated[
        str,
        _opt(
            "Paths where some categories are not flagged: `PATTERN=CATEGORY,...;PATTERN=all`, "
            "e.g. `/api/posts/*=xss` for a rich-text editor."
        ),
    ] = ""  # every route is scanned for everything until a route is known to need HTML etc.

    def __post_init__(self) -> None:
        from .detection.detector import parse_exemptions  # noqa: PLC0415 - avoids a cycle
        from .detection.rules import check_pattern  # noqa: PLC0415

        if self.suspicious_patterns:
            try:
                check_pattern(self.suspicious_patterns)
            except ValueError as exc:
                raise ConfigError(
                    "SUSPICIOUS_PATTERNS", self.suspicious_patterns, str(exc)
                ) from None
        try:
            parse_exemptions(self.suspicious_exemptions)
        except ValueError as exc:
            raise ConfigError(
                "SUSPICIOUS_EXEMPTIONS", self.suspicious_exemptions, str(exc)
            ) from None


class LoggingConfig(_Section, frozen=True):
    enable_request_logging: Annotated[
        bool,
        _opt(
            "One JSON line per request on the `asgisec.requests` logger (stderr unless you "
            "give it handlers), and a WARNING line per suspicious or blocked request."
        ),
    ] = True  # the guide's checklist: "Enable request logging for audit trails"
    log_sensitive_data: Annotated[
        bool,
        _opt(
            "Log Authorization, Cookie, API-key headers and secret-looking query parameters "
            "as sent instead of `[REDACTED]`."
        ),
    ] = False  # logs travel further than the app's data; secrets must not go with them


class MetricsConfig(_Section, frozen=True):
    metrics_path: Annotated[
        str,
        _opt("Serve Prometheus text metrics at this path (e.g. `/metrics`); empty disables."),
    ] = ""  # off: metrics reveal traffic and attack volume; expose them on purpose
    metrics_allowed_ips: Annotated[
        tuple[str, ...],
        _opt("Client IPs or CIDRs allowed to read `METRICS_PATH`; others get 404."),
    ] = ("127.0.0.1", "::1")  # a scraper on the same host; widen to your Prometheus' network
    health_blocked_rate_threshold: Annotated[
        float,
        _opt("`/health` security status is `degraded` when more than this share is refused.", gt=0),
    ] = 0.5  # half the traffic refused: an attack in progress or a misconfiguration
    health_overhead_threshold_ms: Annotated[
        float,
        _opt("`/health` security status is `degraded` when asgisec's own p99 exceeds this.", gt=0),
    ] = 10.0  # the guide's KPI: "Response Time Impact - Security overhead (<10ms)"

    def __post_init__(self) -> None:
        if self.metrics_path and (
            not self.metrics_path.startswith("/") or any(c in self.metrics_path for c in "?# ")
        ):
            raise ConfigError("METRICS_PATH", self.metrics_path, "a path such as /metrics")
        _check_networks("METRICS_ALLOWED_IPS", self.metrics_allowed_ips)


class ContainmentConfig(_Section, frozen=True):
    blocked_ips: Annotated[
        tuple[str, ...],
        _opt("Client IPs or CIDRs refused with 403 before anything else."),
    ] = ()  # nobody is blocked until an operator says so
    auto_ban_threshold: Annotated[
        int,
        _opt(
            "Ban a client after this many suspicious requests within `AUTO_BAN_WINDOW`; "
            "0 disables auto-ban.",
            ge=0,
        ),
    ] = 0  # off: detection has false positives, and a ban refuses everything a client sends
    auto_ban_window: Annotated[
        int, _opt("Seconds over which suspicious requests are counted for auto-ban.", ge=1)
    ] = 60  # a scanner sends dozens a minute; a person who trips one rule does not repeat it
    auto_ban_duration: Annotated[int, _opt("Seconds an auto-banned client stays banned.", ge=1)] = (
        3_600  # an hour: long enough to end a scan, short enough for a shared (NAT) address
    )

    def __post_init__(self) -> None:
        _check_networks("BLOCKED_IPS", self.blocked_ips)
