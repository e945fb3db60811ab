"""Run the corpus through a :class:`~asgisec.detection.Detector` and measure it.

Each sample is turned into the request facts the middleware would hand the detector: a path
is percent-encoded as a client sends it (``scope["path"]`` is its decoded form, as servers
give it), a query value is encoded by the sample's encoding, bodies are real JSON and form
encodings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, unquote

import msgspec

from asgisec.detection import Detector, Finding

from .samples import ATTACKS, BENIGN, Sample

__all__ = ["Report", "detect", "measure"]


def detect(detector: Detector, sample: Sample) -> Finding | None:
    """What the detector says about ``sample`` sent the way its location is sent."""
    if sample.location == "query":
        return detector.scan("/api/search", b"/api/search", sample.query_string(), None)
    if sample.location == "path":
        value = sample.value if sample.value.startswith("/") else "/" + sample.value
        raw = quote(value, safe="/%;:@!$&'()*+,=~")
        return detector.scan(unquote(raw), raw.encode("ascii"), b"", None)
    if sample.location == "user_agent":
        return detector.scan("/", b"/", b"", sample.value.encode("utf-8"))
    if sample.location == "referer":
        url = sample.value
        if sample.category != "benign":
            url = "https://shop.example/search?q=" + quote(sample.value, safe="")
        return detector.scan("/", b"/", b"", None, url.encode("ascii"))
    if sample.location == "json":
        body = msgspec.json.encode({sample.name: sample.value, "per_page": 20})
        return detector.scan_body("/api/items", b"application/json", body)
    if sample.location == "form":
        body = f"{sample.name}={quote_plus(sample.value)}&per_page=20".encode()
        return detector.scan_body("/api/items", b"application/x-www-form-urlencoded", body)
    raise ValueError(f"unknown location {sample.location!r}")


@dataclass
class Report:
    """Detection rate per attack category and the false-positive rate on benign requests."""

    detected: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    missed: dict[str, list[Sample]] = field(default_factory=dict)
    benign_total: int = 0
    false_positives: list[tuple[Sample, Finding]] = field(default_factory=list)

    def rate(self, category: str) -> float:
        return self.detected[category] / self.totals[category]

    @property
    def false_positive_rate(self) -> float:
        return len(self.false_positives) / self.benign_total

    def markdown(self) -> str:
        lines = [
            "| Category | Samples | Detected | Rate |",
            "| --- | ---: | ---: | ---: |",
        ]
        for category in sorted(self.totals):
            lines.append(
                f"| {category} | {self.totals[category]} | {self.detected[category]} "
                f"| {self.rate(category):.1%} |"
            )
        lines.append(
            f"| **benign** (false positives) | {self.benign_total} "
            f"| {len(self.false_positives)} | {self.false_positive_rate:.2%} |"
        )
        return "\n".join(lines) + "\n"


def measure(detector: Detector | None = None) -> Report:
    detector = detector or Detector()
    report = Report()
    for sample in ATTACKS:
        report.totals[sample.category] = report.totals.get(sample.category, 0) + 1
        report.detected.setdefault(sample.category, 0)
        if detect(detector, sample) is not None:
            report.detected[sample.category] += 1
        else:
            report.missed.setdefault(sample.category, []).append(sample)
    for sample in BENIGN:
        report.benign_total += 1
        finding = detect(detector, sample)
        if finding is not None:
            report.false_positives.append((sample, finding))
    return report
