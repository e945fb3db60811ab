"""Audit reports: a terminal report (rich), JSON with a versioned schema, and SARIF 2.1.0.

JSON schema ``asgisec.audit/1`` (fields are only ever added within a version)::

    schema, tool{name, version}, target, final_url, status_code, generated_at,
    score, grade, passed,
    scoring{algorithm, algorithm_version, scope, uncurved_score, bonus_applied,
            tests[{name, result, modifier, passed, scored}]},
    findings[{id, severity, title, detail, fix}]        # failed checks, worst first
    inconclusive[{id, title, detail}],
    checks[{id, status, severity, title, detail}],      # every check, as run
    summary{critical, high, medium, low, info, inconclusive},
    policy{fail_on, min_score}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

from .. import __version__
from .catalog import AUDIT_CHECKS
from .model import SEVERITIES, Result
from .scoring import ALGORITHM, ALGORITHM_VERSION, Grading

__all__ = ["SCHEMA", "AuditReport", "render_json", "render_sarif", "render_text"]

SCHEMA = "asgisec.audit/1"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/asgisec/asgisec/blob/main/docs/tools.md"
_SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub code scanning reads this to rank alerts (CVSS-like: 9.0+ critical, 7.0+ high ...).
_SECURITY_SEVERITY = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "3.0",
    "info": "0.0",
}


class AuditReport(msgspec.Struct, kw_only=True):
    target: str
    final_url: str
    status_code: int
    grading: Grading
    checks: list[Result]
    fail_on: str
    min_score: int
    generated_at: datetime = msgspec.field(default_factory=lambda: datetime.now(UTC))

    @property
    def findings(self) -> list[Result]:
        failed = [c for c in self.checks if c.status == "fail"]
        return sorted(failed, key=lambda c: -SEVERITIES.index(c.severity))

    @property
    def inconclusive(self) -> list[Result]:
        return [c for c in self.checks if c.status == "inconclusive"]

    @property
    def passed(self) -> bool:
        from .model import at_least  # noqa: PLC0415

        blocking = any(at_least(f.severity, self.fail_on) for f in self.findings)
        return not blocking and self.grading.score >= self.min_score


def _json_value(report: AuditReport) -> dict[str, Any]:
    grading = report.grading
    summary = dict.fromkeys(reversed(SEVERITIES), 0)
    for finding in report.findings:
        summary[finding.severity] += 1
    return {
        "schema": SCHEMA,
        "tool": {"name": "asgisec", "version": __version__},
        "target": report.target,
        "final_url": report.final_url,
        "status_code": report.status_code,
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "score": grading.score,
        "grade": grading.grade,
        "passed": report.passed,
        "scoring": {
            "algorithm": ALGORITHM,
            "algorithm_version": ALGORITHM_VERSION,
            "scope": grading.scope,
            "uncurved_score": grading.uncurved_score,
            "bonus_applied": grading.bonus_applied,
            "tests": [msgspec.to_builtins(t) for t in grading.tests],
        },
        "findings": [
            {"id": f.id, "severity": f.severity, "title": f.title, "detail": f.detail, "fix": f.fix}
            for f in report.findings
        ],
        "inconclusive": [
            {"id": c.id, "title": c.title, "detail": c.detail} for c in report.inconclusive
        ],
        "checks": [
            {
                "id": c.id,
                "status": c.status,
                "severity": c.severity,
                "title": c.title,
                "detail": c.detail,
            }
            for c in report.checks
        ],
        "summary": {**summary, "inconclusive": len(report.inconclusive)},
        "policy": {"fail_on": report.fail_on, "min_score": report.min_score},
    }


def render_json(report: AuditReport, out: TextIO) -> None:
    out.write(msgspec.json.format(msgspec.json.encode(_json_value(report)), indent=2).decode())
    out.write("\n")


def render_sarif(report: AuditReport, out: TextIO) -> None:
    """SARIF 2.1.0: one rule per catalogued check, one result per finding."""
    rule_ids = list(AUDIT_CHECKS)
    rules = [
        {
            "id": check_id,
            "name": check_id.replace(".", "-"),
            "shortDescription": {"text": check.title},
            "help": {"text": check.fix},
            "helpUri": f"{INFORMATION_URI}#{check_id.replace('.', '')}",
            "defaultConfiguration": {"level": _SARIF_LEVEL.get(check.severity, "note")},
            "properties": {
                "tags": ["security"],
                "security-severity": _SECURITY_SEVERITY[check.severity],
            },
        }
        for check_id, check in AUDIT_CHECKS.items()
    ]
    results = [
        {
            "ruleId": finding.id,
            "ruleIndex": rule_ids.index(finding.id),
            "level": _SARIF_LEVEL.get(finding.severity, "note"),
            "message": {"text": finding.title + (f": {finding.detail}" if finding.detail else "")},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": report.final_url}}}],
            "properties": {"severity": finding.severity},
        }
        for finding in report.findings
    ]
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "asgisec audit",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {
                    "score": report.grading.score,
                    "grade": report.grading.grade,
                    "algorithm": f"{ALGORITHM} v{ALGORITHM_VERSION}",
                    "scope": report.grading.scope,
                },
            }
        ],
    }
    out.write(msgspec.json.format(msgspec.json.encode(sarif), indent=2).decode())
    out.write("\n")


_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}
TOP_FIXES = 5


def render_text(report: AuditReport, out: TextIO) -> None:
    """The terminal report: score and grade, the Observatory tests, findings, top fixes."""
    from rich.console import Console  # noqa: PLC0415 - the `tools` extra
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    console = Console(file=out, highlight=False, width=max(100, Console(file=out).width))
    grading = report.grading
    scope = ""
    if grading.scope != "full":
        scope = " — plain HTTP: redirection and HSTS reported, not scored"
    console.print(Text(f"asgisec audit {report.target}", style="bold"))
    if report.final_url != report.target:
        console.print(f"final URL: {report.final_url} ({report.status_code})")
    console.print(
        Text.assemble(
            ("Score ", "bold"),
            (f"{grading.score}", "bold"),
            (f" [{grading.grade}]", "bold green" if grading.grade.startswith("A") else "bold"),
            f"  ({ALGORITHM} algorithm v{ALGORITHM_VERSION}{scope}"
            + ("" if grading.bonus_applied else "; bonuses withheld below 90")
            + ")",
        )
    )
    tests = Table(title="Observatory tests", title_justify="left", box=None, pad_edge=False)
    tests.add_column("Test", no_wrap=True)
    tests.add_column("Result", overflow="fold")
    tests.add_column("Modifier", justify="right", no_wrap=True)
    for test in grading.tests:
        modifier = f"{test.modifier:+d}" if test.scored else f"({test.modifier:+d}, not scored)"
        tests.add_row(test.name, test.result, modifier)
    console.print(tests)
    findings = report.findings
    if findings:
        table = Table(title="Findings", title_justify="left", box=None, pad_edge=False)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Check", no_wrap=True)
        table.add_column("What", overflow="fold")
        for finding in findings:
            what = finding.title + (f" ({finding.detail})" if finding.detail else "")
            table.add_row(
                Text(finding.severity.upper(), style=_STYLE[finding.severity]), finding.id, what
            )
        console.print(table)
        console.print(Text("Top fixes", style="bold"))
        worth = [f for f in findings if f.severity != "info"] or findings
        for number, finding in enumerate(worth[:TOP_FIXES], 1):
            console.print(f" {number}. [{finding.id}] {finding.fix}", markup=False)
    else:
        console.print("No findings.")
    if report.inconclusive:
        console.print(Text("Inconclusive (could not be checked from here)", style="bold"))
        for check in report.inconclusive:
            console.print(f" - {check.id}: {check.detail}", markup=False)
    verdict = "PASS" if report.passed else "FAIL"
    console.print(
        Text(
            f"{verdict} (fail on {report.fail_on} and above, minimum score {report.min_score})",
            style="bold green" if report.passed else "bold red",
        )
    )
