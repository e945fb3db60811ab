"""Run the in-process benchmarks once and write docs/benchmarks.md (and its charts) from that run.

    python benchmarks/report.py                     # run pytest benchmarks, write the page
    python benchmarks/report.py --json run.json     # write the page from an earlier run's JSON
    python benchmarks/report.py -- --benchmark-max-time=5   # extra pytest arguments

Every number on the page (and the machine description) comes from the one JSON file that
pytest-benchmark wrote, so the page can be regenerated from a saved run. The charts are SVG
files beside the page (docs/benchmarks/*.svg), drawn by ``asgisec.svg``.

This script owns the part of the page between ``<!-- inprocess:start -->`` and
``<!-- inprocess:end -->``. Anything else already in the page — in particular the
over-the-wire section between ``<!-- wire:start -->`` and ``<!-- wire:end -->`` — is kept as it
is when the page is rewritten.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/report.py` from anywhere imports this asgisec

from asgisec.svg import Series, bar_chart, line_chart  # noqa: E402

DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- inprocess:start -->", "<!-- inprocess:end -->"

# Defaults for a report run: warm up, and long enough per case for thousands of rounds.
PYTEST_ARGS = (
    "--benchmark-warmup=on",
    "--benchmark-warmup-iterations=200",
    "--benchmark-min-rounds=200",
    "--benchmark-max-time=3",
    "--benchmark-sort=name",
)

BARE = "bare"
SHELL = "asgisec-shell"
FULL = "asgisec-full"
HEADERS = "asgisec-headers"
STARLETTE = "starlette-trustedhost-cors"
HEADERS_LIMIT_US = 1.5  # issue 2: the headers stage costs at most 1.5 µs
FLAT_RATIO = 1.5  # largest / smallest size within this: flat (run-to-run noise is ~±20%)

# Same feature, side by side: asgisec's stage next to the peers offering that feature alone.
SIDE_BY_SIDE = (
    ("Trusted hosts", "asgisec-hosts", ("starlette-trustedhost",)),
    ("CORS", "asgisec-cors", ("starlette-cors",)),
    ("Security headers", HEADERS, ("user-headers", "secure-headers", "secweb-headers")),
    ("Rate limit (memory)", "asgisec-ratelimit", ("slowapi-memory", "limits-memory")),
    (
        "Hosts + CORS + headers + rate limit",
        FULL,
        ("peer-full-typical-slowapi", "peer-full-secure-slowapi", "peer-full-secweb-limits"),
    ),
)
FULL_PEERS = SIDE_BY_SIDE[-1][2]  # the peer stacks that offer what asgisec's full config does

CURVE_CHARTS = {
    "config": (
        ("hosts-exact", "hosts-wildcard", "cors-origins"),
        "entries configured",
        "scaling-config.svg",
    ),
    "rules": (("rate-rules",), "rate-limit rules matching the request", "scaling-rules.svg"),
    "detection": (
        ("detection-query",),
        "bytes of query string scanned",
        "scaling-detection.svg",
    ),
    "clients": (("memory-clients",), "distinct clients held", "scaling-clients.svg"),
}


class Row:
    """One overhead case of the run, in µs per request."""

    def __init__(self, bench: dict[str, Any]) -> None:
        info = bench["extra_info"]
        stats = bench["stats"]
        scale = 1e6 / info["batch"]  # seconds per batch → µs per request
        self.case: str = info["case"]
        self.label: str = info["label"]
        self.family: str = info["family"]
        self.baseline: str = info.get("baseline", BARE)
        self.median: float = stats["median"] * scale
        self.iqr: float = stats["iqr"] * scale
        self.mean: float = stats["mean"] * scale
        self.rounds: int = stats["rounds"]


class Point:
    """One size of a scaling curve, in µs per request."""

    def __init__(self, bench: dict[str, Any]) -> None:
        info = bench["extra_info"]
        stats = bench["stats"]
        self.curve: str = info["curve"]
        self.size: int = info["size"]
        self.label: str = info["label"]
        self.median: float = stats["median"] * 1e6 / info["batch"]
        self.iqr: float = stats["iqr"] * 1e6 / info["batch"]
        self.bytes_per_key: float | None = info.get("bytes_per_key")
        self.keys: int | None = info.get("keys")


def run_benchmarks(json_path: Path, extra: list[str]) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={json_path}",
        *PYTEST_ARGS,
        *extra,
    ]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def verdict(ok: bool) -> str:
    return "✅ PASS" if ok else "❌ FAIL"


# --------------------------------------------------------------------------- the page


def render(data: dict[str, Any], charts: dict[str, str] | None = None) -> str:
    """The in-process part of the page (between the markers); ``charts`` receives the SVGs."""
    charts = {} if charts is None else charts
    benches = data["benchmarks"]
    rows = {row.case: row for row in (Row(b) for b in benches if "case" in b["extra_info"])}
    points = [Point(b) for b in benches if "curve" in b["extra_info"]]
    order = [b["extra_info"]["case"] for b in benches if "case" in b["extra_info"]]
    missing = {BARE, SHELL, FULL, HEADERS, STARLETTE, *FULL_PEERS} - rows.keys()
    if missing:
        raise SystemExit(f"the run lacks the cases {sorted(missing)}: run every case at once")

    def overhead(case: str) -> float:
        row = rows[case]
        return row.median - rows[row.baseline].median

    bare = rows[BARE].median
    shell = rows[SHELL].median
    full = overhead(FULL)
    machine = data["machine_info"].get("asgisec_bench", {})
    commit = data.get("commit_info", {})
    when = datetime.fromisoformat(data["datetime"])
    batch = benches[0]["extra_info"]["batch"]

    out: list[str] = [START, ""]
    add = out.append
    add("## In process: what each middleware adds to a request")
    add("")
    add("```sh")
    add("pytest benchmarks                         # the timed run (tables in the terminal)")
    add("python benchmarks/report.py               # the timed run, then this section")
    add("pytest benchmarks --benchmark-disable     # each case once, checked: a smoke test")
    add("```")
    add("")
    add(
        "*Generated by `benchmarks/report.py` from one `pytest benchmarks` run — do not edit by "
        "hand. The benchmarks are not part of the default test run (`testpaths = tests`).*"
    )
    add("")
    add("### The run")
    add("")
    dirty = " (with uncommitted changes)" if commit.get("dirty") else ""
    add(f"- **When:** {when:%Y-%m-%d %H:%M:%S} UTC, one `pytest benchmarks` session")
    if commit.get("id"):
        add(f"- **Commit:** `{commit['id'][:12]}`{dirty}")
    add(f"- **CPU:** {machine.get('cpu_model', 'unknown')}")
    add(
        f"- **Cores:** {machine.get('logical_cpus', '?')} logical, "
        f"{machine.get('usable_cpus', '?')} usable by the process"
    )
    if machine.get("load_average"):
        load = ", ".join(f"{x:.2f}" for x in machine["load_average"])
        add(
            f"- **Load average** (1, 5, 15 min) at the end of the run: {load} (a shared machine:"
            " other work shows up as spread)"
        )
    add(f"- **OS:** {machine.get('platform', data['machine_info'].get('system', '?'))}")
    add(f"- **Python:** {machine.get('python', data['machine_info'].get('python_version'))}")
    packages = machine.get("packages", {})
    add("- **Packages:** " + ", ".join(f"{name} {ver}" for name, ver in packages.items()))
    add("")
    add("### How it is measured")
    add("")
    add(
        "Every case wraps the same bare raw-ASGI app (it reads the JSON body and answers 200 "
        "`application/json`) and serves the same request: `POST /api/calculate` over HTTPS with "
        "8 headers a browser's `fetch()` sends (`host`, `user-agent`, `accept`, "
        "`accept-encoding`, `accept-language`, `origin` — an allowed one —, `content-type`, "
        "`content-length`) and a 76-byte body."
    )
    add("")
    add(
        f"- **One event loop** for the whole session. A round is one "
        f"`loop.run_until_complete(batch())`, and `batch()` awaits the app **{batch} times** in "
        f"a row: **µs/request = time of a round ÷ {batch}**. Entering the loop costs a few µs "
        "per round, under 0.1 µs per request, the same for every case."
    )
    add(
        "- Per request the driver copies the scope (a server builds a fresh one) and passes a "
        "`receive` that returns the whole body and a `send` that drops what it gets. The "
        "numbers are the CPU time each middleware spends on the event-loop thread, with no "
        "network, parsing or server cost around it (the over-the-wire numbers are elsewhere "
        "on this page)."
    )
    add(
        "- Each case checks its answer before and after it is timed: status 200, the app's "
        "body, the headers it adds present exactly once, the headers it does not add absent, "
        "and for the stages that refuse, that a bad request is refused (bad `Host` → 400, "
        "`Content-Length` over the limit → 413). Every rate limit (1000000/second) is far above "
        "what a run sends, and a separate test checks each limiter really limits when tight "
        "(2/minute: 200, 200, 429), so no case times an exempt or refused path."
    )
    add(
        "- Stage-alone asgisec configurations turn the other stages off as an operator would: "
        "`TRUSTED_HOSTS=*`, `ENABLE_SECURITY_HEADERS=false`, `ALLOWED_ORIGINS=` (empty), "
        "`MAX_REQUEST_SIZE=0`, `RATE_LIMIT_DEFAULT=none`. *asgisec, every stage off* is the "
        "shell every stage shares (the header pass, the Host parse, the request id, the "
        "wrapped `send`), so each asgisec stage alone includes it."
    )
    add(
        "- The peers are built as their users build them (benchmarks/peers.py). slowapi finds "
        "the endpoint in a Starlette app's routes (an unmatched route is exempt), so its cases "
        "run the bare app as a Starlette route and their overhead is taken over that router "
        "alone (*baseline* column), not over the bare app."
    )
    add(
        "- pytest-benchmark repeats rounds for a few seconds per case after a warm-up; garbage "
        "collection stays on. The headline is the **median**, with the **IQR** as its spread. "
        "Overhead = case median minus baseline median."
    )
    add("")

    # -- everything
    add("### Every case")
    add("")
    add(
        "| Case | median µs/req | IQR | baseline | overhead (µs) | overhead ÷ asgisec full | "
        "rounds |"
    )
    add("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for case in order:
        row = rows[case]
        if row.family == "baseline":
            add(f"| {row.label} | {row.median:.2f} | {row.iqr:.2f} | — | | | {row.rounds} |")
            continue
        cost = overhead(case)
        ratio = f"{cost / full:.2f}x" if full > 0 else ""
        add(
            f"| {row.label} | {row.median:.2f} | {row.iqr:.2f} | {row.baseline} | {cost:.2f} | "
            f"{ratio} | {row.rounds} |"
        )
    add("")

    # -- side by side
    add("### Same feature, side by side")
    add("")
    add(
        "Each row puts asgisec's stage alone (shell included) next to peers that offer that "
        "feature alone; the last group compares whole stacks offering hosts + CORS + security "
        "headers + a rate limit (none of the peers has a body limit; asgisec's full "
        "configuration does). *peer ÷ asgisec* above 1 means the peer costs more."
    )
    add("")
    add("| Feature | Middleware | overhead µs/req | peer ÷ asgisec | |")
    add("| --- | --- | ---: | ---: | --- |")
    slower: list[str] = []
    for feature, ours, theirs in SIDE_BY_SIDE:
        if ours not in rows:  # a partial run (-k): show what was measured
            continue
        mine = overhead(ours)
        add(f"| **{feature}** | asgisec: {rows[ours].label} | {mine:.2f} | | |")
        for peer in theirs:
            if peer not in rows:
                continue
            cost = overhead(peer)
            times = cost / mine if mine > 0 else float("inf")
            note = "asgisec faster" if times > 1 else "**asgisec slower**"
            if times <= 1:
                slower.append(f"{rows[ours].label} vs {rows[peer].label} ({times:.2f}x)")
            add(f"| | {rows[peer].label} | {cost:.2f} | {times:.2f}x | {note} |")
    add("")
    if slower:
        add(
            "Where asgisec is slower, honestly: "
            + "; ".join(slower)
            + ". A single-purpose peer middleware has no shell to pay for: asgisec's stage "
            f"alone includes the {shell - bare:.2f} µs shell that every stage shares, and its "
            "rate limit is a token bucket with exact remaining/reset headers "
            "(`RateLimit`/`RateLimit-Policy`) where a fixed window does one counter increment."
        )
        add("")
    bars = [(f"asgisec: {rows[FULL].label}", full)]
    bars += [(rows[p].label, overhead(p)) for p in (*FULL_PEERS, "typical-stack") if p in rows]
    charts["peers.svg"] = bar_chart(
        "Overhead per request, full stacks (in process, lower is better)", bars, unit="µs"
    )
    add("![Full stacks: overhead per request](benchmarks/peers.svg)")
    add("")

    # -- targets
    add("### Targets")
    add("")
    add("| Target | Measured | Limit | Result |")
    add("| --- | ---: | ---: | --- |")
    cheapest = min(FULL_PEERS, key=overhead)
    add(
        f"| asgisec full overhead below every peer stack with the same features (issue 7) | "
        f"{full:.2f} µs | {overhead(cheapest):.2f} µs ({rows[cheapest].label}) | "
        f"{verdict(all(full < overhead(p) for p in FULL_PEERS))} |"
    )
    reference = overhead(STARLETTE)
    add(
        f"| full `secure()` overhead ≤ Starlette TrustedHost + CORS overhead (issue 2) | "
        f"{full:.2f} µs | {reference:.2f} µs | {verdict(full <= reference)} |"
    )
    headers = overhead(HEADERS)
    add(
        f"| security-headers stage (headers-only config) overhead over bare ≤ "
        f"{HEADERS_LIMIT_US} µs (issue 2) | {headers:.2f} µs | {HEADERS_LIMIT_US:.2f} µs | "
        f"{verdict(headers <= HEADERS_LIMIT_US)} |"
    )
    add("")
    add(
        "The issue-2 targets compare asgisec's whole pipeline with two Starlette middlewares "
        "that do less (no headers, no request id, no body or rate limit), and the headers "
        f"stage including the shared shell ({shell - bare:.2f} µs here; the headers themselves "
        f"add {rows[HEADERS].median - shell:+.2f} µs on top of it)."
    )
    add("")

    # -- scaling
    add(render_scaling(points, charts))
    add(END)
    return "\n".join(out)


def _fit_slope(points: list[Point]) -> float:
    """Least-squares µs per unit of size."""
    n = len(points)
    mean_x = sum(p.size for p in points) / n
    mean_y = sum(p.median for p in points) / n
    var = sum((p.size - mean_x) ** 2 for p in points)
    if var == 0:
        return 0.0
    return sum((p.size - mean_x) * (p.median - mean_y) for p in points) / var


def render_scaling(points: list[Point], charts: dict[str, str]) -> str:
    out: list[str] = []
    add = out.append
    add("### Scaling: cost per request as the work grows")
    add("")
    if not points:
        add("*(not in this run)*")
        add("")
        return "\n".join(out)
    add(
        "One stage on (the others off), one thing grown, the same request. *Flat* means the "
        f"largest size costs at most {FLAT_RATIO}x the smallest (differences within that are "
        "this shared machine's noise); the rule and detection curves are fitted with a line."
    )
    add("")
    curves: dict[str, list[Point]] = defaultdict(list)
    for point in points:
        curves[point.curve].append(point)
    add("| Curve | sizes | µs/request at each size | growth | verdict |")
    add("| --- | --- | --- | ---: | --- |")
    for name, curve in curves.items():
        if name == "memory-bound":
            continue
        curve.sort(key=lambda p: p.size)
        sizes = " → ".join(f"{p.size:,}" for p in curve)
        values = " → ".join(f"{p.median:.2f}" for p in curve)
        growth = curve[-1].median / curve[0].median if curve[0].median else 0.0
        if name == "rate-rules":
            slope = _fit_slope(curve)
            result = f"linear: {slope:.2f} µs per matching rule"
        elif name == "detection-query":
            # Linear: the cost per byte of the largest size is no more than FLAT_RATIO times
            # that of the size before it (backtracking would multiply it).
            big, before = curve[-1], curve[-2]
            per_byte = big.median / big.size
            linear = per_byte <= FLAT_RATIO * before.median / before.size
            result = (
                f"{'linear' if linear else '**superlinear**'}: "
                f"{_fit_slope(curve) * 1000:.1f} ns per byte"
            )
        else:
            result = "flat" if growth <= FLAT_RATIO else "**grows**"
        add(f"| {curve[0].label} | {sizes} | {values} | {growth:.2f}x | {result} |")
    add("")
    clients = sorted(curves.get("memory-clients", []), key=lambda p: p.size)
    if clients:
        add("Memory backend, bytes per client key (measured with tracemalloc while filling):")
        add("")
        add("| distinct clients held | µs/request | bytes per key | memory held |")
        add("| ---: | ---: | ---: | ---: |")
        for p in clients:
            per_key = p.bytes_per_key or 0.0
            add(
                f"| {p.size:,} | {p.median:.2f} | {per_key:,.0f} | "
                f"{per_key * p.size / 1e6:,.1f} MB |"
            )
        add("")
    for bound in curves.get("memory-bound", []):
        per_key = bound.bytes_per_key or 0.0
        keys = bound.keys or 0
        add(
            f"**Bounded:** {bound.size:,} distinct clients through the default "
            f"`RATE_LIMIT_MAX_KEYS` leave {keys:,} keys ({per_key * keys / 1e6:,.1f} MB); a "
            f"request from a client the bound has evicted (an insert and an eviction) costs "
            f"{bound.median:.2f} µs."
        )
        add("")
    for names, x_label, filename in CURVE_CHARTS.values():
        series = [
            Series(curves[n][0].label, [(p.size, p.median) for p in curves[n]])
            for n in names
            if curves.get(n)
        ]
        if not series:
            continue
        charts[filename] = line_chart(
            f"µs per request vs {x_label}",
            series,
            x_label=x_label,
            y_label="µs per request (median)",
            log_x=filename != "scaling-rules.svg",
        )
        add(f"![µs per request vs {x_label}](benchmarks/{filename})")
        add("")
    return "\n".join(out)


def merge(existing: str | None, section: str) -> str:
    """The page with ``section`` in place of the old in-process part; the rest is kept."""
    if existing is None:
        return (
            "# Benchmarks\n\nWhat asgisec adds to each request, next to the peers, measured.\n\n"
            + section
            + "\n"
        )
    if START in existing and END in existing:
        before, rest = existing.split(START, 1)
        _, after = rest.split(END, 1)
        return before + section + after
    wire = ""
    if "<!-- wire:start -->" in existing and "<!-- wire:end -->" in existing:
        _, rest = existing.split("<!-- wire:start -->", 1)
        body, _ = rest.split("<!-- wire:end -->", 1)
        wire = "\n<!-- wire:start -->" + body + "<!-- wire:end -->\n"
    # A page from before the markers: replaced, except an over-the-wire section.
    return merge(None, section).rstrip("\n") + "\n" + wire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--json", type=Path, help="read this pytest-benchmark JSON, do not run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the page to write")
    parser.add_argument("--keep-json", type=Path, help="also save the run's JSON here")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.json is not None:
        data = json.loads(args.json.read_text(encoding="utf-8"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            json_path = Path(tmp) / "benchmarks.json"
            run_benchmarks(json_path, args.pytest_args)
            text = json_path.read_text(encoding="utf-8")
        if args.keep_json is not None:
            args.keep_json.write_text(text, encoding="utf-8")
        data = json.loads(text)
    charts: dict[str, str] = {}
    section = render(data, charts)
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    existing = output.read_text(encoding="utf-8") if output.is_file() else None
    output.write_text(merge(existing, section), encoding="utf-8")
    chart_dir = output.parent / "benchmarks"
    chart_dir.mkdir(exist_ok=True)
    for name, svg in charts.items():
        (chart_dir / name).write_text(svg, encoding="utf-8")
    print(f"wrote {output} and {len(charts)} charts in {chart_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
