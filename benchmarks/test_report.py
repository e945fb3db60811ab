"""report.py rewrites only its own part of docs/benchmarks.md, and renders a run it is given."""

from __future__ import annotations

from typing import Any

from .report import END, START, merge, render

WIRE = "<!-- wire:start -->\n## Over the wire\n\n| a | b |\n<!-- wire:end -->"


def test_merge_replaces_only_the_in_process_part() -> None:
    page = f"# Benchmarks\n\nintro\n\n{START}\nold numbers\n{END}\n\n{WIRE}\n"
    merged = merge(page, f"{START}\nnew numbers\n{END}")
    assert "new numbers" in merged
    assert "old numbers" not in merged
    assert merged.startswith("# Benchmarks\n\nintro\n")
    assert merged.endswith(f"{WIRE}\n")


def test_merge_keeps_the_wire_section_of_a_page_without_markers() -> None:
    page = f"# Benchmarks\n\nold page\n\n{WIRE}\n\ntrailing"
    merged = merge(page, f"{START}\nnew\n{END}")
    assert "old page" not in merged
    assert WIRE in merged
    assert merged.index(END) < merged.index("<!-- wire:start -->")


def test_merge_of_a_new_page() -> None:
    merged = merge(None, f"{START}\nnew\n{END}")
    assert merged.startswith("# Benchmarks\n")
    assert f"{START}\nnew\n{END}" in merged


def _bench(case: str, median_s: float, **extra: Any) -> dict[str, Any]:
    info = {"case": case, "label": case, "family": "asgisec", "batch": 100, **extra}
    stats = {"median": median_s, "iqr": median_s / 10, "mean": median_s, "rounds": 1000}
    return {"extra_info": info, "stats": stats}


def _point(curve: str, size: int, median_s: float, **extra: Any) -> dict[str, Any]:
    info = {"curve": curve, "size": size, "label": curve, "batch": 100, **extra}
    return {"extra_info": info, "stats": {"median": median_s, "iqr": 0.0}}


def test_render_a_run() -> None:
    """A run where asgisec's full stack costs 10 µs and every full peer stack more."""
    benches = [
        _bench("bare", 100e-6, family="baseline"),
        _bench("starlette-router", 600e-6, family="baseline"),
        _bench("asgisec-shell", 500e-6),
        _bench("asgisec-headers", 530e-6),
        _bench("asgisec-full", 1100e-6),
        _bench("starlette-trustedhost-cors", 700e-6, family="starlette"),
        _bench("secweb-headers", 180e-6, family="peer"),
        _bench("peer-full-typical-slowapi", 13_000e-6, family="peer", baseline="starlette-router"),
        _bench("peer-full-secure-slowapi", 3_100e-6, family="peer", baseline="starlette-router"),
        _bench("peer-full-secweb-limits", 2_500e-6, family="peer"),
        _point("hosts-exact", 1, 600e-6),
        _point("hosts-exact", 10_000, 620e-6),
        _point("rate-rules", 1, 900e-6),
        _point("rate-rules", 20, 2_800e-6),
        _point("memory-clients", 10_000, 1_000e-6, bytes_per_key=150.0),
        _point("memory-bound", 1_000_000, 1_200e-6, bytes_per_key=160.0, keys=100_000),
    ]
    data = {
        "benchmarks": benches,
        "machine_info": {"asgisec_bench": {"cpu_model": "test CPU"}},
        "commit_info": {},
        "datetime": "2026-12-04T06:00:00+00:00",
    }
    charts: dict[str, str] = {}
    text = render(data, charts)
    assert text.startswith(START)
    assert text.endswith(END)
    # Full overhead 10 µs; the cheapest full peer stack: Secweb + limits, 24 µs.
    assert "| 10.00 µs | 24.00 µs (peer-full-secweb-limits) | ✅ PASS |" in text
    # Secweb's headers alone (0.8 µs) beat asgisec's headers stage (4.3 µs): said so.
    assert "**asgisec slower**" in text
    assert "asgisec-headers vs secweb-headers (0.19x)" in text
    assert "linear: 1.00 µs per matching rule" in text
    assert "| hosts-exact | 1 → 10,000 | 6.00 → 6.20 | 1.03x | flat |" in text
    assert "leave 100,000 keys (16.0 MB)" in text
    assert sorted(charts) == [
        "peers.svg",
        "scaling-clients.svg",
        "scaling-config.svg",
        "scaling-rules.svg",
    ]
    assert all(svg.startswith("<svg") for svg in charts.values())
