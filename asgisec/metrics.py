"""asgisec's own time per request, and the Prometheus text exposition of every counter.

The histogram has fixed buckets (no per-request allocation, exact under concurrency like the
counters: it changes only on the event loop). Percentiles are read from the buckets by
linear interpolation inside the bucket that holds them, the way Prometheus'
``histogram_quantile`` does.
"""

from __future__ import annotations

import bisect
import time
from typing import Any

__all__ = ["BUCKETS_MS", "CONTENT_TYPE", "OverheadHistogram", "prometheus_text"]

# Upper bounds in milliseconds: asgisec's own work is tens of microseconds; a slow Redis or
# a body scan shows up in the upper buckets (the guide's budget is 10 ms).
BUCKETS_MS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0)
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class OverheadHistogram:
    __slots__ = ("count", "counts", "sum_ms")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_MS) + 1)  # the last is +Inf
        self.count = 0
        self.sum_ms = 0.0

    def observe(self, ms: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_MS, ms)] += 1
        self.count += 1
        self.sum_ms += ms

    def quantile(self, q: float) -> float:
        """The ``q`` quantile in milliseconds (0.0 before any request)."""
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for index, count in enumerate(self.counts):
            if seen + count >= rank and count:
                low = BUCKETS_MS[index - 1] if index else 0.0
                if index == len(BUCKETS_MS):
                    return BUCKETS_MS[-1]  # past the last bound: report the bound, as Prometheus
                return low + (BUCKETS_MS[index] - low) * (rank - seen) / count
            seen += count
        return BUCKETS_MS[-1]


_STARTED = time.time()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(snapshot: dict[str, Any], histogram: OverheadHistogram, extra: Any) -> bytes:
    """Text exposition format 0.0.4 of ``snapshot`` (counters), the histogram and ``extra``.

    ``extra`` maps metric name → (type, help, value or {label: value}, label name).
    """
    out: list[str] = []

    def metric(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")

    metric("asgisec_requests_total", "counter", "Requests seen by asgisec.")
    out.append(f"asgisec_requests_total {snapshot['total_requests']}")
    metric("asgisec_blocked_total", "counter", "Requests asgisec refused, by reason.")
    reasons = dict(snapshot["blocked_by_reason"])
    reasons["rate_limited"] = snapshot["rate_limited_requests"]
    for reason, value in sorted(reasons.items()):
        out.append(f'asgisec_blocked_total{{reason="{_escape(reason)}"}} {value}')
    metric("asgisec_suspicious_total", "counter", "Suspicious requests detected, by category.")
    for category, value in sorted(snapshot["suspicious_by_category"].items()):
        out.append(f'asgisec_suspicious_total{{category="{_escape(category)}"}} {value}')
    metric(
        "asgisec_overhead_seconds",
        "histogram",
        "asgisec's own time per request, the application's excluded.",
    )
    cumulative = 0
    for bound, count in zip(BUCKETS_MS, histogram.counts, strict=False):
        cumulative += count
        out.append(f'asgisec_overhead_seconds_bucket{{le="{bound / 1000:g}"}} {cumulative}')
    out.append(f'asgisec_overhead_seconds_bucket{{le="+Inf"}} {histogram.count}')
    out.append(f"asgisec_overhead_seconds_sum {histogram.sum_ms / 1000:.9f}")
    out.append(f"asgisec_overhead_seconds_count {histogram.count}")
    metric("asgisec_start_time_seconds", "gauge", "When this process started (resets show).")
    out.append(f"asgisec_start_time_seconds {_STARTED:.3f}")
    for name, (kind, help_, value, label) in extra.items():
        metric(name, kind, help_)
        if isinstance(value, dict):
            for key, number in sorted(value.items()):
                out.append(f'{name}{{{label}="{_escape(str(key))}"}} {number}')
        else:
            out.append(f"{name} {value}")
    return ("\n".join(out) + "\n").encode("utf-8")
