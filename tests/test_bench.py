"""``asgisec bench``: the verdict against a latency budget, as an operator runs it in CI.

Behaviour, never speed: the budgets used are either far above anything asgisec costs (10 ms,
the guide's budget) or far below anything a Python call can take (1 µs), so the exit status is
certain on any machine; the numbers themselves are only checked for consistency.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from asgisec import HostsConfig, RateLimitConfig, SecurityConfig
from asgisec.bench import _host_for, measure
from asgisec.demo import app as demo_app

from .servers import cli_env, run_cli

BENCH_TIMEOUT = 120.0  # seconds: 10,000 requests a side take about one on an idle machine


def bench(args: list[str], tmp_path: Path, **env: str) -> Any:
    return run_cli(["bench", *args], env=cli_env(**env), cwd=tmp_path, timeout=BENCH_TIMEOUT)


def test_demo_within_the_guides_budget_exits_0(tmp_path: Path) -> None:
    result = bench(["--budget-ms", "10"], tmp_path, TRUSTED_HOSTS="api.example.com")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "asgisec.demo:app GET /" in out
    assert "in-process over ASGI" in out  # it says what it measured
    header = next(line for line in out.splitlines() if "p50" in line)
    assert header.split()[:3] == ["p50", "p99", "max"]
    assert any(line.startswith("overhead") for line in out.splitlines())
    assert "PASS: p99 overhead" in out
    assert "10000x 200" in out  # every request answered by the app on both sides


def test_impossible_budget_exits_1(tmp_path: Path) -> None:
    result = bench(["--budget-ms", "0.001", "--requests", "500"], tmp_path)
    assert result.returncode == 1, result.stderr
    assert "FAIL: p99 overhead" in result.stdout
    assert "> budget 0.001 ms" in result.stdout


def test_json_report(tmp_path: Path) -> None:
    args = ["--format", "json", "--requests", "300", "--concurrency", "4", "--path", "/health"]
    result = bench(args, tmp_path, TRUSTED_HOSTS="*.example.com")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["app"] == "asgisec.demo:app"
    assert (report["path"], report["concurrency"], report["budget_ms"]) == ("/health", 4, 10.0)
    assert report["requests"] == 300
    assert report["within_budget"] is True
    assert report["status_mismatches"] == 0
    for side in ("bare", "secured"):
        row = report[side]
        assert row["statuses"] == {"200": 300}
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["throughput_rps"] > 0
    overhead = report["overhead"]
    assert overhead["p50_ms"] <= overhead["p99_ms"] <= overhead["max_ms"]


def test_plot_is_an_svg_with_both_sides(tmp_path: Path) -> None:
    plot = tmp_path / "latency.svg"
    result = bench(["--requests", "200", "--plot", str(plot)], tmp_path)
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(plot.read_text(encoding="utf-8"))
    svg = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{svg}svg"
    assert len(root.findall(f"{svg}polyline")) == 2
    legend = [text.text for text in root.iter(f"{svg}text")]
    assert "bare" in legend
    assert "secured" in legend


USER_APP = """
import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello"}  # lifespan state: only there if the lifespan ran


async def item(request):
    return JSONResponse({"id": request.path_params["id"], "says": request.state.greeting})


app = Starlette(routes=[Route("/items/{id}", item)], lifespan=lifespan)
"""


def test_users_app_with_lifespan_state(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(USER_APP, encoding="utf-8")
    args = ["main:app", "--path", "/items/7?full=1", "--requests", "200", "--format", "json"]
    result = bench(args, tmp_path, RATE_LIMIT_RULES="/items/{id}=5/minute")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # Every request from its own client: a per-client limit never turns the run into 429s.
    assert report["secured"]["statuses"] == {"200": 200}
    assert report["bare"]["statuses"] == {"200": 200}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--budget-ms", "0"], {}, "is not a positive number"),
        (["--budget-ms", "abc"], {}, "is not a positive number"),
        (["--budget-ms", "nan"], {}, "is not a positive number"),
        (["--requests", "0"], {}, "is not a whole number"),
        (["--concurrency", "-1"], {}, "is not a whole number"),
        (["--path", "health"], {}, "is not a request path"),
        (["--format", "xml"], {}, "invalid choice"),
        (["nope:app"], {}, "no module named 'nope'"),
        ([], {"TRUSTED_HOSTS": "example.com:8000"}, "TRUSTED_HOSTS"),
        (["--plot", "/no/such/dir/x.svg"], {}, "no such directory"),
        (["--plot", "."], {}, "is a directory"),
        (["--plot", "/proc/latency.svg"], {}, "--plot '/proc/latency.svg': "),
    ],
    ids=[
        "zero-budget",
        "text-budget",
        "nan-budget",
        "zero-requests",
        "negative-concurrency",
        "relative-path",
        "format",
        "app",
        "config",
        "plot-dir",
        "plot-is-a-dir",
        "plot-unwritable",
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = bench(args, tmp_path, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("trusted", "host"),
    [
        ((), b"localhost"),
        (("*",), b"localhost"),
        (("api.example.com", "*.example.com"), b"api.example.com"),
        (("*.example.com",), b"bench.example.com"),
        (("::1",), b"[::1]"),
    ],
)
def test_the_request_carries_a_trusted_host(trusted: tuple[str, ...], host: bytes) -> None:
    assert _host_for(SecurityConfig(hosts=HostsConfig(trusted_hosts=trusted))) == host


def test_measure_pairs_every_request_and_reports_refusals() -> None:
    """In process: a limit the shared client identity would hit is still never hit, and a
    secured answer that differs from the bare one is counted as a mismatch."""
    config = SecurityConfig(
        hosts=HostsConfig(trusted_hosts=("api.example.com",)),
        rate_limit=RateLimitConfig(rate_limit_default="1/minute"),
    )
    result = asyncio.run(measure(demo_app, config, path="/", requests=50, concurrency=3))
    assert result["requests"] == 51  # whole rounds of 3
    assert result["secured"]["statuses"] == {200: 51}
    assert result["status_mismatches"] == 0
    missing = asyncio.run(measure(demo_app, config, path="/nope", requests=10, concurrency=1))
    assert missing["bare"]["statuses"] == missing["secured"]["statuses"] == {404: 10}

    calls = 0

    async def flip_flop(scope: Any, receive: Any, send: Any) -> None:
        """200 and 201 in turn: every pair of bare and secured answers differs."""
        nonlocal calls
        if scope["type"] != "http":
            raise RuntimeError("no lifespan")  # as an app without one: bench carries on
        calls += 1
        await send({"type": "http.response.start", "status": 200 + calls % 2, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    flipped = asyncio.run(measure(flip_flop, config, path="/", requests=10, concurrency=1))
    assert flipped["status_mismatches"] == 10


def test_redis_round_trip_is_part_of_what_is_measured(
    tmp_path: Path, redis_url: str, redis_server: Any
) -> None:
    """With RATE_LIMIT_STORAGE_URI on a real Redis, every secured request consults it."""
    args = ["--requests", "200", "--format", "json"]
    result = bench(args, tmp_path, RATE_LIMIT_STORAGE_URI=redis_url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["secured"]["statuses"] == {"200": 200}
    assert report["overhead"]["p50_ms"] > 0
    # The buckets are in Redis, one per client at least: the storage was really used (a
    # fail-open run on an unreachable Redis answers 200 too, and writes nothing there).
    assert int(redis_server.command("DBSIZE")) >= 200
    assert report["storage_bypassed"] == 0


def test_unreachable_redis_is_reported_not_passed_off_as_measured(tmp_path: Path) -> None:
    """Redis down: asgisec fails open and every answer is a 200, but no round trip happened;
    the report says so instead of a verdict that looks like one with Redis in it."""
    with socket.socket() as closed:  # a port nothing listens on: bound, never listening
        closed.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        result = bench(["--requests", "100"], tmp_path, RATE_LIMIT_STORAGE_URI=url)
        as_json = bench(
            ["--requests", "100", "--format", "json"], tmp_path, RATE_LIMIT_STORAGE_URI=url
        )
    assert result.returncode == 0, result.stderr
    assert "rate-limit decisions were made without the storage" in result.stdout
    report = json.loads(as_json.stdout)
    assert report["storage_bypassed"] == 100
    assert report["secured"]["statuses"] == {"200": 100}


RAW_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return  # the raw ASGI idiom of docs/embedding.md: no lifespan, and no answer to it
    if scope["path"] == "/boom":
        raise ValueError("the app's own bug")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
"""


def test_raw_app_that_returns_from_lifespan_is_measured(tmp_path: Path) -> None:
    """An app that returns from the lifespan scope without a word has no lifespan (as uvicorn
    and hypercorn take it): measured at once, not a 10 s wait and a traceback."""
    (tmp_path / "raw.py").write_text(RAW_APP, encoding="utf-8")
    result = bench(["raw:app", "--requests", "100", "--format", "json"], tmp_path)
    assert result.returncode == 0, result.stderr  # it was a TimeoutError after 10 s, exit 1
    assert json.loads(result.stdout)["secured"]["statuses"] == {"200": 100}


def test_app_raising_is_a_usage_error_not_a_verdict(tmp_path: Path) -> None:
    """Exit 1 means "over budget" to CI: an app that raises on the path is exit 2, one line."""
    (tmp_path / "raw.py").write_text(RAW_APP, encoding="utf-8")
    result = bench(["raw:app", "--path", "/boom", "--requests", "50"], tmp_path)
    assert result.returncode == 2
    assert "the app raised ValueError for GET /boom: the app's own bug" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("requests", "concurrency"), [(5, 50), (30, 25), (1, 1)])
def test_at_least_the_requests_asked_for(tmp_path: Path, requests: int, concurrency: int) -> None:
    """More in flight than requests asked for, or a warm-up that is not a whole number of
    rounds: still whole rounds of ``C``, never fewer than ``N`` requests, never a crash."""
    args = ["--requests", str(requests), "--concurrency", str(concurrency), "--format", "json"]
    result = bench(args, tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["requests"] == -(-requests // concurrency) * concurrency
    assert report["secured"]["statuses"] == {"200": report["requests"]}


def test_request_logs_do_not_bury_the_report(tmp_path: Path) -> None:
    """Request logging on (the default): the lines are built and queued, not printed."""
    result = bench(["--requests", "500"], tmp_path, ENABLE_REQUEST_LOGGING="true")
    assert result.returncode == 0, result.stderr
    assert '"message":"Request"' not in result.stderr
    assert '"message":"Request"' not in result.stdout
    assert "PASS: p99 overhead" in result.stdout


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query"),
    [
        ("/items/a%20b?q=%C3%A9", "/items/a b", b"/items/a%20b", b"q=%C3%A9"),
        ("/caf\u00e9?q=\u00e9", "/caf\u00e9", b"/caf%C3%A9", b"q=%C3%A9"),
        ("/plain?a=1&b=2", "/plain", b"/plain", b"a=1&b=2"),
    ],
    ids=["escaped", "non-ascii", "plain"],
)
def test_path_reaches_the_app_as_a_server_hands_it_over(
    target: str, path: str, raw_path: bytes, query: bytes
) -> None:
    """``--path`` is what a client sends: the app gets it percent-decoded in ``path`` and as
    sent (ASCII, percent-encoded) in ``raw_path`` and ``query_string``, as uvicorn gives it."""
    seen: list[tuple[str, bytes, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append((scope["path"], scope["raw_path"], scope["query_string"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    asyncio.run(measure(app, SecurityConfig(), path=target, requests=1, concurrency=1))
    assert set(seen) == {(path, raw_path, query)}


STARTED_APP = """
from pathlib import Path

from asgisec.demo import app as demo


async def app(scope, receive, send):
    if scope["type"] == "http":
        Path("started").touch()  # the measurement is under way
    await demo(scope, receive, send)
"""


def test_ctrl_c_stops_the_run_without_a_verdict(tmp_path: Path) -> None:
    """One Ctrl-C ends the run at once: exit 130 and one line, no traceback, no verdict."""
    (tmp_path / "marked.py").write_text(STARTED_APP, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "asgisec", "bench", "marked:app", "--requests", "1000000000"],
        env=cli_env(TRUSTED_HOSTS="localhost"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # SIGINT as a terminal delivers it (a parent started in the background may ignore it).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    try:
        deadline = time.monotonic() + BENCH_TIMEOUT
        while not (tmp_path / "started").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=BENCH_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "interrupted, no verdict" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert b"PASS" not in stdout
    assert b"FAIL" not in stdout
