"""The values the tools pass around: check results, severities and exit codes."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "SEVERITIES",
    "Result",
    "Severity",
    "Status",
    "at_least",
]

# The exit statuses every tool shares (the contract; argparse already exits 2).
EXIT_OK = 0
EXIT_FINDINGS = 1  # findings at/above --fail-on, a score below --min-score, an alert, an error
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3  # the target did not answer at all: nothing could be judged

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")

# pass: checked and fine. fail: checked and wrong (a finding). inconclusive: the check could
# not be performed here (never reported as a pass). skipped: not applicable to this target.
Status = Literal["pass", "fail", "inconclusive", "skipped"]


def at_least(severity: str, threshold: str) -> bool:
    """``severity`` is ``threshold`` or worse."""
    order: tuple[str, ...] = SEVERITIES
    return order.index(severity) >= order.index(threshold)


class Result(msgspec.Struct, frozen=True, kw_only=True):
    """One check's outcome. ``severity`` is what a failure weighs (also shown on a pass)."""

    id: str
    status: Status
    severity: Severity
    title: str
    detail: str = ""
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"
