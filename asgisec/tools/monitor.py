"""``asgisec monitor URL``: poll ``/health``, turn counter deltas into hourly rates, and alert.

    asgisec monitor URL [--once] [--interval S] [--count N] [--format text|json]
                        [--webhook URL] [--state FILE] [--cacert FILE] [--timeout S]

Thresholds come from the guide's variables, per hour: ``ALERT_THRESHOLD_BLOCKED`` (50),
``ALERT_THRESHOLD_SUSPICIOUS`` (25), ``ALERT_THRESHOLD_RATE_LIMITED`` (100). Also alerted:
more than 1 % of requests blocked, a certificate expiring within 30 days, any health check
not healthy, and the target down (503, timeout, or no security block: counters are then not
read at all, never taken as 0). ``--once`` polls once (for cron; ``--state`` keeps the
history between runs) and exits 1 when an alert fired, 3 when the target was down.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from .catalog import MONITOR_ALERTS
from .common import error, http_url, positive_float, positive_int
from .model import EXIT_FINDINGS, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from .rates import COUNTERS, Sample, prune, rates, sample_from_block

__all__ = ["DEFAULT_THRESHOLDS", "Alert", "Poll", "evaluate", "register", "run_monitor"]

SCHEMA = "asgisec.monitor/1"
DEFAULT_INTERVAL = 300.0  # seconds: the guide's "every 5 minutes"
# The guide's "Alerting Thresholds", per hour; each overridable by its variable.
DEFAULT_THRESHOLDS = {
    "ALERT_THRESHOLD_BLOCKED": 50.0,
    "ALERT_THRESHOLD_SUSPICIOUS": 25.0,
    "ALERT_THRESHOLD_RATE_LIMITED": 100.0,
}
BLOCKED_RATIO = 0.01  # the guide's KPI: blocked requests "should be <1% of total requests"
# Below this many requests in the window a single refusal is already 1 %: it says nothing.
RATIO_MIN_REQUESTS = 100
CERT_DAYS = 30  # the guide: "SSL certificate expiry (<30 days)"
HEALTHY = frozenset({"healthy", "ok", "pass", "up"})

_RATE_ALERTS = (
    ("blocked_requests", "ALERT_THRESHOLD_BLOCKED", "monitor.blocked", "blocked"),
    ("suspicious_requests", "ALERT_THRESHOLD_SUSPICIOUS", "monitor.suspicious", "suspicious"),
    (
        "rate_limited_requests",
        "ALERT_THRESHOLD_RATE_LIMITED",
        "monitor.rate-limited",
        "rate-limited",
    ),
)


class Alert(msgspec.Struct, frozen=True):
    id: str
    severity: str
    message: str


class Poll(msgspec.Struct, kw_only=True):
    """One poll, as printed with ``--format json`` and posted to the webhook."""

    schema: str = SCHEMA
    at: str
    target: str
    status: str  # "ok", "alert" or "down"
    counters: dict[str, int] = {}  # the fleet's totals when /health reports them
    source: str = "process"  # whose counts the rates are from: "fleet" or "process"
    increases: dict[str, int] = {}
    rates_per_hour: dict[str, float] = {}
    window_seconds: float | None = None
    reset: bool = False
    thresholds: dict[str, float] = {}
    certificate_days_left: int | None = None
    alerts: list[Alert] = []


def _alert(alert_id: str, message: str) -> Alert:
    return Alert(alert_id, MONITOR_ALERTS[alert_id].severity, message)


def thresholds_from_env(environ: Mapping[str, str]) -> dict[str, float]:
    """The three thresholds; raises ValueError naming a variable that is not a number ≥ 0."""
    found = {}
    for name, default in DEFAULT_THRESHOLDS.items():
        raw = environ.get(name, "").strip()
        if not raw:
            found[name] = default
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not value >= 0 or math.isinf(value):
            raise ValueError(f"{name}={raw!r}: expected a number of events per hour ≥ 0")
        found[name] = value
    return found


def _unhealthy(health: Mapping[str, Any]) -> list[str]:
    bad = []
    checks = health.get("checks")
    if isinstance(checks, Mapping):
        for name, check in checks.items():
            status = check.get("status") if isinstance(check, Mapping) else None
            if isinstance(status, str) and status.lower() not in HEALTHY:
                bad.append(f"{name}: {status}")
    overall = health.get("status")
    if isinstance(overall, str) and overall.lower() not in HEALTHY and not bad:
        bad.append(f"status: {overall}")
    return bad


def evaluate(
    history: list[Sample],
    health: Mapping[str, Any],
    *,
    now: float,
    thresholds: Mapping[str, float],
) -> tuple[list[Alert], dict[str, float], dict[str, int], float | None, bool]:
    """Alerts for the newest sample (last in ``history``) and the health document it came from."""
    per_hour, increases, window = rates(history, now)
    alerts = []
    hours = "" if window is None else f" in the last {_duration(window)}"
    for counter, variable, alert_id, label in _RATE_ALERTS:
        rate = per_hour.get(counter)
        if rate is not None and rate > thresholds[variable]:
            alerts.append(
                _alert(
                    alert_id,
                    f"{increases[counter]} {label} requests{hours}: {rate:.0f}/h "
                    f"> {variable}={thresholds[variable]:g}/h",
                )
            )
    total = increases.get("total_requests")
    blocked = increases.get("blocked_requests")
    if (
        total is not None
        and blocked is not None
        and total >= RATIO_MIN_REQUESTS
        and blocked / total > BLOCKED_RATIO
    ):
        alerts.append(
            _alert(
                "monitor.blocked-ratio",
                f"{blocked} of {total} requests blocked{hours} ({blocked / total:.1%} > 1%)",
            )
        )
    for bad in _unhealthy(health):
        alerts.append(_alert("monitor.unhealthy", f"health check not healthy: {bad}"))
    reset = False
    same = [s for s in history if s.series == history[-1].series] if history else []
    if len(same) >= 2:
        before, after = same[-2], same[-1]
        restarted = (
            before.started_at is not None
            and after.started_at is not None
            and before.started_at != after.started_at
        )
        went_down = any(after.counters.get(k, v) < v for k, v in before.counters.items())
        reset = restarted or went_down
    return alerts, per_hour, increases, window, reset


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def health_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith("/health"):
        return url
    return url.rstrip("/") + "/health"


def _security_block(health: Any) -> Mapping[str, Any] | None:
    if not isinstance(health, Mapping):
        return None
    checks = health.get("checks")
    block = checks.get("security") if isinstance(checks, Mapping) else None
    return block if isinstance(block, Mapping) else None


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "monitor",
        help="poll /health and alert on blocked, suspicious and rate-limited request rates",
        description=(
            "Poll a service's /health, compute per-hour rates from the security counters "
            "(surviving restarts) and alert past the ALERT_THRESHOLD_* variables."
        ),
        epilog="--once exits 1 when an alert fired, 3 when the target was down.",
    )
    parser.add_argument("url", type=http_url, metavar="URL", help="the service (or its /health)")
    parser.add_argument("--once", action="store_true", help="poll once and exit (for cron)")
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL,
        metavar="S",
        help="seconds between polls (default: %(default)g)",
    )
    parser.add_argument(
        "--count", type=positive_int, metavar="N", help="stop after N polls (default: never)"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--webhook", type=http_url, metavar="URL", help="POST alerts here as JSON")
    parser.add_argument(
        "--state", metavar="FILE", help="keep the last hour of samples here between runs"
    )
    parser.add_argument("--cacert", metavar="FILE", help="trust this CA bundle (private CAs)")
    parser.add_argument(
        "--timeout", type=positive_float, default=10.0, metavar="S", help="per request (10 s)"
    )
    parser.set_defaults(handler=run_monitor)


class _State:
    """The sample history, in memory and optionally in a JSON file (written atomically)."""

    def __init__(self, path: str | None, target: str) -> None:
        self.path = Path(path) if path else None
        self.target = target
        self.samples: list[Sample] = []
        if self.path is not None and self.path.is_file():
            with contextlib.suppress(OSError, msgspec.DecodeError):
                stored = msgspec.json.decode(self.path.read_bytes(), type=dict[str, list[Sample]])
                self.samples = stored.get(target, [])

    def add(self, sample: Sample) -> list[Sample]:
        self.samples = prune([*self.samples, sample], sample.at)
        if self.path is not None:
            stored: dict[str, list[Sample]] = {}
            with contextlib.suppress(OSError, msgspec.DecodeError):
                stored = msgspec.json.decode(self.path.read_bytes(), type=dict[str, list[Sample]])
            stored[self.target] = self.samples
            try:
                handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=".monitor-")
                with os.fdopen(handle, "wb") as out:
                    out.write(msgspec.json.encode(stored))
                os.replace(name, self.path)
            except OSError as exc:
                error(f"monitor: cannot write --state {self.path}: {exc}")
        return self.samples


def run_monitor(args: argparse.Namespace) -> int:
    try:
        thresholds = thresholds_from_env(os.environ)
    except ValueError as exc:
        error(f"monitor: {exc}")
        return EXIT_USAGE
    if args.cacert is not None and not os.path.isfile(args.cacert):
        error(f"monitor: --cacert {args.cacert!r}: no such file")
        return EXIT_USAGE
    try:
        import httpx  # noqa: PLC0415 - the `tools` extra
    except ImportError:
        error('monitor needs the tools extra: pip install "asgisec[tools]"')
        return EXIT_USAGE

    import ssl  # noqa: PLC0415

    url = health_url(args.url)
    state = _State(args.state, url)
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=args.cacert)
    polls = 1 if args.once else args.count
    worst = EXIT_OK
    done = 0
    with httpx.Client(verify=verify, timeout=args.timeout, trust_env=False) as client:
        try:
            while polls is None or done < polls:
                started = time.monotonic()
                poll = _poll(client, url, args, state, thresholds)
                done += 1
                _emit(poll, args.format)
                if poll.alerts and args.webhook:
                    _post(client, args.webhook, poll)
                status = {"down": EXIT_UNREACHABLE, "alert": EXIT_FINDINGS}.get(poll.status, 0)
                worst = max(worst, status)
                if polls is not None and done >= polls:
                    break
                time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
        except KeyboardInterrupt:
            return EXIT_OK
    return worst


def _poll(
    client: Any,
    url: str,
    args: argparse.Namespace,
    state: _State,
    thresholds: dict[str, float],
) -> Poll:
    import httpx  # noqa: PLC0415 - the `tools` extra

    now = time.time()
    stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    poll = Poll(at=stamp, target=url, status="ok", thresholds=thresholds)
    try:
        response = client.get(url, headers={"user-agent": "asgisec-monitor"})
        health = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        poll.status = "down"
        poll.alerts = [_alert("monitor.target-down", f"{url} did not answer: {reason}")]
        return poll
    block = _security_block(health)
    if block is None:
        why = (
            f"answered {response.status_code}"
            if response.status_code != 200
            else "answered without checks.security"
        )
        poll.status = "down"
        poll.alerts = [_alert("monitor.target-down", f"{url} {why}; counters not read")]
        return poll
    sample = sample_from_block(block, now)
    if not sample.counters:
        # A block with none of the counters (renamed, strings, a hand-written /health) would
        # read as a quiet service forever: nothing is being monitored, so say the target is down.
        poll.status = "down"
        names = ", ".join(COUNTERS)
        poll.alerts = [
            _alert("monitor.target-down", f"{url} has no security counters ({names}); not read")
        ]
        return poll
    history = state.add(sample)
    document = health if isinstance(health, Mapping) else {}
    alerts, per_hour, increases, window, reset = evaluate(
        history, document, now=now, thresholds=thresholds
    )
    poll.source = sample.series
    if window is None and sample.series == "fleet":
        # The first sight of a fleet: its totals have no known start. The counts of the
        # process that answered, since its own start, are a lower bound for that time.
        local = sample_from_block(block, now, fleet=False)
        alerts, per_hour, increases, window, reset = evaluate(
            [local], document, now=now, thresholds=thresholds
        )
        poll.source = local.series
    poll.counters = sample.counters
    poll.increases = increases
    poll.rates_per_hour = {k: round(v, 3) for k, v in per_hour.items()}
    poll.window_seconds = None if window is None else round(window, 3)
    poll.reset = reset
    if urlsplit(url).scheme == "https":
        from .tls import inspect_certificate  # noqa: PLC0415

        parts = urlsplit(url)
        info = inspect_certificate(
            parts.hostname or "", parts.port or 443, cafile=args.cacert, timeout=args.timeout
        )
        poll.certificate_days_left = info.days_left
        if info.days_left is not None and info.days_left < CERT_DAYS:
            when = "has expired" if info.expired else f"expires in {info.days_left} days"
            alerts.append(_alert("monitor.cert-expiry", f"the certificate {when}"))
    poll.alerts = alerts
    poll.status = "alert" if alerts else "ok"
    return poll


def _emit(poll: Poll, fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(msgspec.json.encode(poll).decode() + "\n")
    elif poll.alerts:
        for alert in poll.alerts:
            print(f"{poll.at} ALERT {alert.id} [{alert.severity}] {alert.message}")
    else:
        shown = ", ".join(
            f"{name.removesuffix('_requests')} {rate:.0f}/h"
            for name, rate in poll.rates_per_hour.items()
            if name != "total_requests"
        )
        window = (
            "no baseline yet (the target reports no started_at)"
            if poll.window_seconds is None
            else f"over {_duration(poll.window_seconds)}"
        )
        note = " (counters reset since the last poll)" if poll.reset else ""
        print(f"{poll.at} OK {poll.target}: {shown or 'no counters'} {window}{note}")
    sys.stdout.flush()


def _post(client: Any, webhook: str, poll: Poll) -> None:
    import httpx  # noqa: PLC0415 - the `tools` extra

    try:
        response = client.post(
            webhook,
            content=msgspec.json.encode(poll),
            headers={"content-type": "application/json", "user-agent": "asgisec-monitor"},
        )
    except httpx.HTTPError as exc:
        error(f"monitor: webhook {webhook} failed: {type(exc).__name__}")
        return
    if response.status_code >= 300:
        error(f"monitor: webhook {webhook} answered {response.status_code}")
