"""Measured quality: detection rate per category and false-positive rate on the corpus.

Fails below 90 % detection in any category or above 0.1 % false positives, and when the
published table in docs/detection.md is not a fresh measurement (scripts/detection_report.py
writes it).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.corpus.measure import Report, measure
from tests.corpus.samples import ATTACKS, BENIGN

ROOT = Path(__file__).resolve().parent.parent
MIN_DETECTION = 0.90
MAX_FALSE_POSITIVES = 0.001
CATEGORIES = ("sqli", "xss", "traversal", "cmdi", "crlf", "scanner")


@pytest.fixture(scope="module")
def report() -> Report:
    return measure()


def test_the_corpus_is_a_few_hundred_of_each() -> None:
    per_category = Counter(sample.category for sample in ATTACKS)
    for category in CATEGORIES:
        assert per_category[category] >= 200, category
    assert len(BENIGN) >= 1_000  # 0.1 % must mean something: at most one in a thousand
    assert len({(s.location, s.value) for s in BENIGN}) >= 900  # mostly distinct requests
    assert {s.location for s in BENIGN} >= {"query", "path", "user_agent", "json", "form"}


@pytest.mark.parametrize("category", CATEGORIES)
def test_detection_rate_per_category(report: Report, category: str) -> None:
    missed = [s.value for s in report.missed.get(category, [])][:10]
    assert report.rate(category) >= MIN_DETECTION, missed


def test_false_positive_rate(report: Report) -> None:
    shown = [(s.value, f.reason) for s, f in report.false_positives][:10]
    assert report.false_positive_rate <= MAX_FALSE_POSITIVES, shown


def test_the_report_in_docs_is_the_measured_one(report: Report) -> None:
    doc = (ROOT / "docs" / "detection.md").read_text(encoding="utf-8")
    assert report.markdown() in doc, "run: python scripts/detection_report.py"
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "detection_report.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
