"""Counter arithmetic for the monitor: increases over the last hour, surviving resets.

A counter only grows while its process lives. When a poll shows a smaller value than the one
before, or ``started_at`` changed, the process restarted and the new value is everything
since the restart (Prometheus ``rate()`` semantics, case M1): the increase is never negative
and a restart never looks like an attack.

Rates are "events in the last hour": the increase since the newest sample at least an hour
old (divided by the hours elapsed), or, when the history is shorter than an hour, the
increase itself: seen in less than an hour, it is at least that many per hour. A short
window is never extrapolated upwards, so one refusal in a five-second window is 1/h, not 720.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

__all__ = [
    "COUNTERS",
    "HORIZON",
    "Sample",
    "increase",
    "prune",
    "rates",
    "sample_from_block",
]

HORIZON = 3600.0  # seconds: the guide's thresholds are per hour
COUNTERS = ("blocked_requests", "suspicious_requests", "rate_limited_requests", "total_requests")


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    at: float  # Unix time of the poll
    counters: dict[str, int]  # only the counters the target reported
    started_at: float | None = None  # the target's own start time, when it reports one
    # "process": the counters of the one process that answered; "fleet": the totals every
    # process adds to Redis (the block's ``fleet``). Rates only compare samples of a kind.
    series: str = "process"


def _counts(block: Mapping[str, Any]) -> dict[str, int]:
    return {
        name: value
        for name in COUNTERS
        if isinstance(value := block.get(name), int) and not isinstance(value, bool) and value >= 0
    }


def sample_from_block(block: Mapping[str, Any], at: float, *, fleet: bool = True) -> Sample:
    """The counters of a ``checks.security`` block; missing or non-integer ones are left out.

    With several worker processes sharing Redis, each poll reaches one of them: its own
    counters are a part of the traffic, and another process's on the next poll would look
    like a restart. The block's ``fleet`` totals (every process's counts) are used instead
    when present; they outlive any one process, so they have no ``started_at``.
    """
    shared = block.get("fleet")
    if fleet and isinstance(shared, Mapping) and (counters := _counts(shared)):
        return Sample(at=at, counters=counters, series="fleet")
    started = block.get("started_at")
    started_at = float(started) if isinstance(started, int | float) and started > 0 else None
    return Sample(at=at, counters=_counts(block), started_at=started_at)


def _restarted(previous: Sample, current: Sample) -> bool:
    return (
        previous.started_at is not None
        and current.started_at is not None
        and current.started_at != previous.started_at
    )


def increase(samples: Sequence[Sample], name: str) -> int | None:
    """The counter's growth across ``samples`` (oldest first), resets included; None if unknown."""
    if not samples or name not in samples[-1].counters:
        return None
    total = 0
    for before, after in itertools.pairwise(samples):
        if name not in after.counters:
            return None
        value = after.counters[name]
        previous = before.counters.get(name)
        if previous is None or _restarted(before, after) or value < previous:
            total += value  # a new series: everything since the restart
        else:
            total += value - previous
    return total


def prune(samples: Sequence[Sample], now: float, horizon: float = HORIZON) -> list[Sample]:
    """Keep the samples inside the horizon and the newest one older than it (the baseline)."""
    ordered = sorted(samples, key=lambda s: s.at)
    old = [s for s in ordered if s.at <= now - horizon]
    recent = [s for s in ordered if s.at > now - horizon]
    return old[-1:] + recent


def rates(
    samples: Sequence[Sample], now: float, horizon: float = HORIZON
) -> tuple[dict[str, float], dict[str, int], float | None]:
    """``(per-hour rates, increases, window in seconds)`` from the history ending at ``now``.

    The target's ``started_at`` (if reported) stands for a zero baseline when there is a
    single sample or the target started within the horizon: the counts are all since that
    start. With one sample and no ``started_at``, nothing is known yet.
    """
    if not samples:
        return {}, {}, None
    series = max(samples, key=lambda s: s.at).series  # a fleet's totals never mix with a process's
    window = prune([s for s in samples if s.series == series], now, horizon)
    first = window[0]
    started = first.started_at
    # The target's start is a known zero: use it as the baseline when it is the only history
    # there is, or when the process started inside the horizon (then the zero is exact).
    if (
        started is not None
        and started <= first.at
        and (len(window) == 1 or started >= now - horizon)
    ):
        baseline = Sample(at=started, counters=dict.fromkeys(first.counters, 0), started_at=started)
        window = [baseline, *window]
    elif len(window) == 1:
        return {}, {}, None
    elapsed = max(window[-1].at - window[0].at, 0.0)
    increases = {name: value for name in COUNTERS if (value := increase(window, name)) is not None}
    hours = max(elapsed, horizon) / 3600.0  # under an hour: the count itself, never scaled up
    per_hour = {name: value / hours for name, value in increases.items()}
    return per_hour, increases, elapsed
