"""``asgisec bench``: what asgisec adds to *your* app's latency, against a budget.

    asgisec bench [MODULE:APP] [--budget-ms 10] [--requests N] [--concurrency C] [--path P]
                  [--format text|json] [--plot FILE]

**What is measured.** In one process and one event loop, with no server and no network, the
bare app (the demo when no app is given) and the same app wrapped by ``secure()`` with the
configuration from the environment (and ``./.env``) are sent the same ``GET P`` over ASGI,
alternately: a round is ``C`` concurrent requests to one side, then ``C`` to the other, the
order flipping every round so neither side always runs first. Each request is timed from the
call into the app until it returns (``perf_counter_ns``), so the times include everything the
middleware does on the event loop — and the rate-limit storage round trip when
``RATE_LIMIT_STORAGE_URI`` points at Redis. What a server and the network add is the same
with or without asgisec and is left out on purpose.

**Overhead** of request *k* is its secured time minus the bare time of its partner (the
*k*-th request of the adjacent round on the other side); p50/p99/max are over those paired
differences. **Throughput** is requests per second of event-loop time on each side (with
``C`` > 1 that includes the task per request in flight, which a server creates too). The
verdict: exit 1 when the p99 overhead exceeds ``--budget-ms``, 0 otherwise; 2 for bad usage
or configuration (as every ``asgisec`` command).

Each request comes from its own client address (10.0.0.0/8), as traffic from many clients
does, so a per-client rate limit does not turn the run into a measurement of 429s; any
secured answer whose status differs from the bare one is counted and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import logging
import queue
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager, suppress
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .cli import DEMO_APP, EXIT_FAILURE, EXIT_OK, StartupError, import_app, load_config
from .config import SecurityConfig
from .logs import LOGGER_NAME
from .middleware import ASGIApp, SecurityMiddleware

__all__ = ["register"]

Message = MutableMapping[str, Any]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C: neither a pass nor a fail
DEFAULT_BUDGET_MS = 10.0  # the guide's latency budget: security overhead < 10 ms
DEFAULT_REQUESTS = 10_000  # per side: p99 rests on 100 samples; about a second for the demo
WARMUP_FRACTION = 10  # 1/10 of the requests (at least 20) run first and are not recorded
LIFESPAN_TIMEOUT = 10.0  # seconds the app gets to finish its lifespan start-up or shutdown
_FIRST_CLIENT = int(ipaddress.IPv4Address("10.0.0.1"))
_URL_SAFE = "/?%:@!$&'()*+,;=-._~"  # RFC 3986 reserved and unreserved: kept as typed


# --------------------------------------------------------------------------- one request


def _host_for(config: SecurityConfig) -> bytes:
    """A Host the configuration trusts: the first exact name, or a name under a wildcard."""
    for pattern in config.hosts.trusted_hosts:
        if pattern == "*":
            continue
        name = "bench" + pattern[1:] if pattern.startswith("*.") else pattern
        bracketed = ":" in name and not name.startswith("[")
        return (f"[{name}]" if bracketed else name).encode("ascii")
    return b"localhost"


class Target:
    """One side of the comparison: an ASGI app and the request it is sent."""

    def __init__(self, app: ASGIApp, path: str, host: bytes, state: dict[str, Any]) -> None:
        self.app = app
        self.target = path
        # As a server hands it over: raw_path and query as sent (percent-encoded, ASCII), path
        # percent-decoded (UTF-8). ``--path /items/a%20b`` reaches the app as "/items/a b".
        raw_target = quote(path, safe=_URL_SAFE)
        encoded_path, _, query = raw_target.partition("?")
        decoded_path = unquote(encoded_path)
        self.base: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": decoded_path,
            "raw_path": encoded_path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "root_path": "",
            "headers": [
                (b"host", host),
                (b"user-agent", b"asgisec-bench"),
                (b"accept", b"*/*"),
            ],
            "server": ("127.0.0.1", 8000),
            "extensions": {},
        }
        self.state = state

    async def one(self, client: int) -> tuple[int, int]:
        """Send the request once from client number ``client``: (nanoseconds, status)."""
        scope = dict(self.base)
        scope["headers"] = list(self.base["headers"])
        scope["client"] = (str(ipaddress.IPv4Address(_FIRST_CLIENT + client % 16_000_000)), 40000)
        scope["state"] = dict(self.state)
        done = asyncio.Event()
        status = 0
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # as a server: the client goes away once it has its answer
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        start = time.perf_counter_ns()
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # one line and exit 2, never a traceback read as "over budget"
            raise StartupError(
                f"the app raised {type(exc).__name__} for GET {self.target}: {exc} "
                "(bench a path the app answers, e.g. --path /health)"
            ) from exc
        elapsed = time.perf_counter_ns() - start
        done.set()
        return elapsed, status


# --------------------------------------------------------------------------- lifespan


class Lifespan:
    """The app's lifespan, driven as a server does (``lifespan="auto"``: optional)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.state: dict[str, Any] = {}
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope: dict[str, Any] = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "state": self.state,
        }
        with suppress(Exception):  # an app without a lifespan may raise on the scope
            await self.app(scope, self.inbox.get, self.outbox.put)
        # An app that raised, or returned without answering (the raw ASGI idiom
        # ``if scope["type"] != "http": return``), has no lifespan: servers carry on.
        await self.outbox.put({"type": "lifespan.unsupported"})

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        answer = await asyncio.wait_for(self.outbox.get(), LIFESPAN_TIMEOUT)
        if answer["type"] == "lifespan.startup.failed":
            raise StartupError(f"the app's lifespan start-up failed: {answer.get('message', '')}")
        if answer["type"] != "lifespan.startup.complete":
            self.task = None  # the app has no lifespan; fine, as with uvicorn's "auto"

    async def shutdown(self) -> None:
        if self.task is None:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self.outbox.get(), LIFESPAN_TIMEOUT)
        except TimeoutError:
            self.task.cancel()


# --------------------------------------------------------------------------- the run


def _bypassed(secured_app: SecurityMiddleware) -> int:
    """Rate-limit decisions made so far without the remote storage (0 for memory://)."""
    return int(getattr(secured_app.backend, "bypassed", 0))


def _percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-int(fraction * 1000) * len(sorted_values) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _summary(times: list[int], busy_ns: int) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": _percentile(ordered, 0.50) / 1e6,
        "p99_ms": _percentile(ordered, 0.99) / 1e6,
        "max_ms": ordered[-1] / 1e6,
        "throughput_rps": len(times) / (busy_ns / 1e9) if busy_ns else 0.0,
    }


Round = tuple[list[int], list[int], int]  # times (ns), statuses, wall time (ns)


async def _round(target: Target, concurrency: int, first_client: int) -> Round:
    start = time.perf_counter_ns()
    if concurrency == 1:
        results = [await target.one(first_client)]  # no task: nothing else is in flight
    else:  # one task per request in flight, as a server runs them
        results = await asyncio.gather(*(target.one(first_client + i) for i in range(concurrency)))
    wall = time.perf_counter_ns() - start
    return [t for t, _ in results], [s for _, s in results], wall


async def measure(
    app: ASGIApp,
    config: SecurityConfig,
    *,
    path: str,
    requests: int,
    concurrency: int,
    progress: Any = None,
) -> dict[str, Any]:
    """Run the comparison; returns the report (see :func:`report_json`)."""
    secured_app = SecurityMiddleware(app, config)
    lifespan = Lifespan(secured_app)  # passes through to the app; closes a Redis backend
    await lifespan.startup()
    host = _host_for(config)
    bare = Target(app, path, host, lifespan.state)
    secured = Target(secured_app, path, host, lifespan.state)
    warmup = max(20, requests // WARMUP_FRACTION)
    times: dict[str, list[int]] = {"bare": [], "secured": []}
    statuses: dict[str, dict[int, int]] = {"bare": {}, "secured": {}}
    busy = {"bare": 0, "secured": 0}
    mismatched = 0
    client = 0
    bypassed_before = 0
    try:
        warmup_rounds = -(-warmup // concurrency)  # whole rounds: at least `warmup` requests
        rounds = warmup_rounds + -(-requests // concurrency)  # then at least `requests`
        for number in range(rounds):
            recording = number >= warmup_rounds
            if number == warmup_rounds:
                bypassed_before = _bypassed(secured_app)
            order = (("bare", bare), ("secured", secured))
            if number % 2:
                order = order[::-1]
            got: dict[str, Round] = {}
            for name, target in order:
                got[name] = await _round(target, concurrency, client)
                client += concurrency
            # Between rounds, untimed: let the loop run. An app that never suspends would
            # otherwise hold it for the whole run, and Ctrl-C (which cancels the main task)
            # would go unheard until a second one broke out with a traceback.
            await asyncio.sleep(0)
            if not recording:
                continue
            for name in ("bare", "secured"):
                elapsed, codes, wall = got[name]
                times[name] += elapsed
                busy[name] += wall
                for code in codes:
                    statuses[name][code] = statuses[name].get(code, 0) + 1
            mismatched += sum(
                a != b for a, b in zip(got["bare"][1], got["secured"][1], strict=True)
            )
            if progress is not None:
                progress(concurrency)
    finally:
        await lifespan.shutdown()
    overhead = sorted(s - b for s, b in zip(times["secured"], times["bare"], strict=True))
    return {
        "bare": {**_summary(times["bare"], busy["bare"]), "statuses": statuses["bare"]},
        "secured": {**_summary(times["secured"], busy["secured"]), "statuses": statuses["secured"]},
        "overhead": {
            "p50_ms": _percentile(overhead, 0.50) / 1e6,
            "p99_ms": _percentile(overhead, 0.99) / 1e6,
            "max_ms": overhead[-1] / 1e6,
        },
        "requests": len(overhead),
        "status_mismatches": mismatched,
        # Decisions made without the rate-limit storage (Redis unreachable or over
        # RATE_LIMIT_BACKEND_TIMEOUT): their round trip is not in the numbers.
        "storage_bypassed": _bypassed(secured_app) - bypassed_before,
        "samples_ns": times,
    }


# --------------------------------------------------------------------------- output

MEASURED = (
    "in-process over ASGI, one event loop, no server or network: the bare app and the same "
    "app wrapped by secure() (configuration from the environment) sent the same request "
    "alternately; overhead = secured minus bare time of paired requests"
)


def _duration(ms: float) -> str:
    if abs(ms) < 1:
        return f"{ms * 1000:.1f} µs"
    return f"{ms:.2f} ms"


def report_json(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The machine-readable report (``--format json``): numbers in milliseconds."""
    p99 = result["overhead"]["p99_ms"]
    return {
        "app": args.app or DEMO_APP,
        "method": "GET",
        "path": args.path,
        "requests": result["requests"],
        "concurrency": args.concurrency,
        "measured": MEASURED,
        "bare": result["bare"],
        "secured": result["secured"],
        "overhead": result["overhead"],
        "status_mismatches": result["status_mismatches"],
        "storage_bypassed": result["storage_bypassed"],
        "budget_ms": args.budget_ms,
        "within_budget": p99 <= args.budget_ms,
    }


def report_text(report: dict[str, Any]) -> str:
    lines = [
        f"asgisec bench: {report['app']} GET {report['path']}: {report['requests']} requests "
        f"per side, concurrency {report['concurrency']}",
        f"measured: {report['measured']}",
        "",
        f"{'':10}{'p50':>12}{'p99':>12}{'max':>12}{'throughput':>16}",
    ]
    for side in ("bare", "secured"):
        row = report[side]
        lines.append(
            f"{side:10}{_duration(row['p50_ms']):>12}{_duration(row['p99_ms']):>12}"
            f"{_duration(row['max_ms']):>12}{row['throughput_rps']:>12,.0f} rps"
        )
    overhead = report["overhead"]
    lines.append(
        f"{'overhead':10}{_duration(overhead['p50_ms']):>12}{_duration(overhead['p99_ms']):>12}"
        f"{_duration(overhead['max_ms']):>12}"
    )
    for side in ("bare", "secured"):
        codes = ", ".join(f"{n}x {code}" for code, n in sorted(report[side]["statuses"].items()))
        lines.append(f"{side} statuses: {codes}")
    if report["storage_bypassed"]:
        lines.append(
            f"warning: {report['storage_bypassed']} rate-limit decisions were made without the "
            "storage (RATE_LIMIT_STORAGE_URI unreachable or slower than "
            "RATE_LIMIT_BACKEND_TIMEOUT): its round trip is not in these numbers"
        )
    if report["status_mismatches"]:
        lines.append(
            f"warning: {report['status_mismatches']} secured answers differ from the bare app's: "
            "the secured side measured asgisec's refusals for those (check TRUSTED_HOSTS, "
            "rate limits, --path)"
        )
    lines.append("")
    verdict = "PASS" if report["within_budget"] else "FAIL"
    sign = "≤" if report["within_budget"] else ">"
    lines.append(
        f"{verdict}: p99 overhead {_duration(overhead['p99_ms'])} {sign} budget "
        f"{report['budget_ms']:g} ms (p50 overhead {_duration(overhead['p50_ms'])})"
    )
    return "\n".join(lines)


def write_plot(path: Path, result: dict[str, Any], title: str) -> None:
    """The latency distributions (cumulative), bare vs secured, as an SVG line chart."""
    from .svg import Series, line_chart  # noqa: PLC0415 - only --plot needs it

    series = []
    for side in ("bare", "secured"):
        ordered = sorted(result["samples_ns"][side])
        cut = ordered[: max(1, _percentile_index(len(ordered), 0.995))]
        step = max(1, len(cut) // 400)
        points = [
            (ordered[i] / 1000, 100 * (i + 1) / len(ordered)) for i in range(0, len(cut), step)
        ]
        series.append(Series(side, points))
    svg = line_chart(
        title,
        series,
        x_label="latency per request (µs), up to p99.5",
        y_label="requests at or below (%)",
        legend="bottom-right",
    )
    path.write_text(svg, encoding="utf-8")


def _percentile_index(count: int, fraction: float) -> int:
    return max(1, round(count * fraction))


# --------------------------------------------------------------------------- command


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ≥ 1")
    return int(text)


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of milliseconds")
    return value


def _path(text: str) -> str:
    if not text.startswith("/") or any(ch in text for ch in " \r\n\t#"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a request path (e.g. /health)")
    return text


def register(commands: Any) -> None:
    """Add ``asgisec bench`` to the command line (see asgisec/cli.py ``TOOL_MODULES``)."""
    bench = commands.add_parser(
        "bench",
        help="measure the latency asgisec adds to an app, against a budget",
        description=__doc__.split("\n\n", 2)[2].split("\n\n")[0] if __doc__ else None,
    )
    bench.add_argument(
        "app", nargs="?", metavar="MODULE:APP", help=f"the app to measure (default: {DEMO_APP})"
    )
    bench.add_argument(
        "--budget-ms",
        type=_budget,
        default=DEFAULT_BUDGET_MS,
        metavar="MS",
        help="exit 1 when the p99 overhead exceeds this (default: %(default)g)",
    )
    bench.add_argument(
        "--requests",
        type=_positive,
        default=DEFAULT_REQUESTS,
        metavar="N",
        help="requests per side, after a warm-up (default: %(default)s)",
    )
    bench.add_argument(
        "--concurrency",
        type=_positive,
        default=1,
        metavar="C",
        help="requests in flight at once on each side (default: %(default)s)",
    )
    bench.add_argument(
        "--path", type=_path, default="/", metavar="P", help="GET this path (default: /)"
    )
    bench.add_argument("--format", choices=("text", "json"), default="text")
    bench.add_argument(
        "--plot", type=Path, metavar="FILE", help="write the latency distributions as SVG"
    )
    bench.add_argument(
        "--env-file",
        metavar="FILE",
        help="read variables from FILE; the process environment wins (default: ./.env)",
    )
    bench.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.env_file)  # a bad value: one line, exit 2 (cli.main)
    app = import_app(args.app or DEMO_APP)
    if args.plot is not None and not args.plot.parent.is_dir():
        raise StartupError(f"--plot {str(args.plot)!r}: no such directory")
    if args.plot is not None and args.plot.is_dir():
        raise StartupError(f"--plot {str(args.plot)!r} is a directory: name the SVG file")
    try:
        with _request_logs_not_written():
            result = asyncio.run(_measure_with_progress(app, config, args))
    except KeyboardInterrupt:
        print("asgisec bench: interrupted, no verdict", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    report = report_json(result, args)
    if args.format == "json":
        print(json.dumps(report, indent=2), flush=True)
    else:
        print(report_text(report), flush=True)
    if args.plot is not None:
        title = f"{report['app']} GET {report['path']}: latency, bare vs secured"
        try:
            write_plot(args.plot, result, title)
        except OSError as exc:  # the report is out; the plot could not be written
            raise StartupError(f"--plot {str(args.plot)!r}: {exc.strerror or exc}") from None
        print(f"plot written to {args.plot}", file=sys.stderr, flush=True)
    return EXIT_OK if report["within_budget"] else EXIT_FAILURE


@contextmanager
def _request_logs_not_written() -> Iterator[None]:
    """Request lines are built and queued as configured, then dropped instead of written.

    With ``ENABLE_REQUEST_LOGGING`` on (the default), asgisec queues one JSON line per request
    for a writer thread on stderr: a run would print thousands of them over the report and the
    progress bar. Here the same handler and thread run, so the cost on the event loop is
    measured, but the thread discards the lines. A logger the app configured is left alone.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if logger.handlers:
        yield
        return
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(lines, logging.NullHandler())
    handler = QueueHandler(lines)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    listener.start()
    try:
        yield
    finally:
        listener.stop()
        logger.removeHandler(handler)
        logger.propagate = propagate


async def _measure_with_progress(
    app: ASGIApp, config: SecurityConfig, args: argparse.Namespace
) -> dict[str, Any]:
    """The measurement, under a rich progress bar on stderr when it is a terminal."""
    console = _stderr_console()
    gc.collect()  # start both sides from the same heap
    if console is None:
        return await measure(
            app, config, path=args.path, requests=args.requests, concurrency=args.concurrency
        )
    from rich.progress import Progress  # noqa: PLC0415 - rich is there: we have a console

    with Progress(console=console, transient=True) as progress:
        total = -(-args.requests // args.concurrency) * args.concurrency  # whole rounds
        task = progress.add_task("bare vs secured", total=total)
        return await measure(
            app,
            config,
            path=args.path,
            requests=args.requests,
            concurrency=args.concurrency,
            progress=lambda n: progress.advance(task, n),
        )


def _stderr_console() -> Any:
    """A rich console on stderr when rich is installed and stderr is a terminal, else None."""
    try:
        from rich.console import Console  # noqa: PLC0415 - optional: the `tools` extra
    except ImportError:
        return None
    console = Console(stderr=True)
    return console if console.is_terminal else None
