"""Over-the-wire benchmarks: asgisec on Redis against its peers (issue 3), asgisec stage by
stage and in full against the peer middlewares of the in-process comparison (issue 7).

    python benchmarks/wire.py                      # measure, then update docs/benchmarks.md
    python benchmarks/wire.py --cases redis        # issue 3's cases only (its table, targets)
    python benchmarks/wire.py --cases peers        # issue 7's cases only (the peer table)
    python benchmarks/wire.py --duration 20        # seconds per measurement
    python benchmarks/wire.py --json run.json      # also keep the raw results
    python benchmarks/wire.py --from-json run.json # rewrite the section from a saved run

How long a run takes with the defaults (5 s per measurement, a 2 s warm-up, 3 rounds): every
case costs its warm-up, 3 measurements, and 0.3 s of settling after each (about 18 s), plus
1-2 s to start its server and check it. All 21 cases: about 21 x 19.5 s ≈ 7 minutes; ``--cases
redis`` (9 cases) about 3 minutes; ``--cases peers`` (15 cases) about 5 minutes. In general
about ``cases x (warmup + 0.3 + rounds x (duration + 0.3) + 1.5)`` seconds. A run of one group
writes a section with that group's table only (it says the other was not measured): the page is
meant to show one whole default run.

Before anything is timed, every case answers the timed request once and must show what it
claims to measure (:func:`verify`, :data:`EXPECT`): 200 and the body, the headers of its stages
exactly once and none of the stages it lacks, and an untrusted ``Host`` refused where hosts are
checked; otherwise the run stops and prints the servers' logs.

Every case of :mod:`benchmarks.wire_apps` is served by its own ``uvicorn`` process (one
worker) on a loopback port, against one ``redis-server`` started here, and loaded by ``wrk``
(C, event-driven, one thread) with 64 concurrent connections for a bounded time. The cases run
in interleaved rounds (A B C ... A B C ...) so that the other work on a shared machine spreads
over all of them; each case's best round is reported. On a machine with 2 or more cores the
servers run on CPU 0 and wrk and Redis on CPU 1 (``taskset``), so the load generator never
competes with the server it measures; wrk's and the server's CPU time are recorded to show it.

``wrk`` comes from Debian's ``wrk`` package: when it is missing this script installs it with
``apt-get`` (as root, or through ``sudo``). ``scripts/test`` installs it too.

The results go between ``<!-- wire:start -->`` and ``<!-- wire:end -->`` in docs/benchmarks.md;
the rest of the page belongs to ``benchmarks/report.py``, which keeps this section.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/wire.py` puts benchmarks/ first, not ROOT
    sys.path.insert(0, str(ROOT))

from benchmarks.peers import HEADERS as PEER_HEADERS  # noqa: E402
from benchmarks.wire_apps import (  # noqa: E402
    BODY,
    PATH,
    REDIS_URL_VARIABLE,
    REQUEST_HEADERS,
    RESPONSE,
)

DEFAULT_OUTPUT = ROOT / "docs" / "benchmarks.md"
START = "<!-- wire:start -->"
END = "<!-- wire:end -->"

BARE = "bare"
MEMORY = "asgisec_memory"
REDIS = "asgisec_redis"
UNBATCHED = "asgisec_redis_unbatched"
PING = "redis_ping"
EVALSHA = "redis_evalsha"
HEADERS = "bare_with_headers"
HEADER_COUNT = 12  # asgisec's response headers on this route: 9 security, request id, 2 RateLimit
STARLETTE = "starlette"
SLOWAPI = "slowapi_redis"
# Issue 7's peers and asgisec's stages (factories in benchmarks.wire_apps).
TYPICAL = "typical_stack"
SLOWAPI_MEMORY = "slowapi_memory"
PEER_TYPICAL = "peer_typical_slowapi"
PEER_SECURE = "peer_secure_slowapi"
PEER_SECWEB = "peer_secweb_limits"
HOSTS = "asgisec_hosts"
SEC_HEADERS = "asgisec_headers"
CORS = "asgisec_cors"
RATELIMIT = "asgisec_ratelimit"
FULL = "asgisec_full"
FULL_REDIS = "asgisec_full_redis"
SHIPPED = "asgisec_shipped"
CASES: dict[str, str] = {  # factory in benchmarks.wire_apps → label on the page
    BARE: "bare raw-ASGI app",
    HEADERS: "bare app sending asgisec's headers",
    MEMORY: "asgisec `secure()` (defaults, request logs off), memory backend",
    REDIS: "asgisec `secure()` (defaults, request logs off), Redis backend",
    UNBATCHED: "asgisec `secure()` (defaults, request logs off), Redis backend, coalescing off",
    PING: "bare app + redis-py `PING` per request",
    EVALSHA: "bare app + redis-py `EVALSHA` per request",
    STARLETTE: "Starlette route (no limiter)",
    SLOWAPI: "Starlette route + slowapi on Redis",
    TYPICAL: "typical user stack: Starlette TrustedHost + CORS + BaseHTTPMiddleware headers",
    SLOWAPI_MEMORY: "slowapi `SlowAPIASGIMiddleware`, memory storage (on a Starlette route)",
    PEER_TYPICAL: "typical user stack + slowapi (memory)",
    PEER_SECURE: "Starlette TrustedHost + CORS + secure + slowapi (memory)",
    PEER_SECWEB: "Starlette TrustedHost + CORS + Secweb + limits (memory)",
    HOSTS: "asgisec, trusted hosts only",
    SEC_HEADERS: "asgisec, security headers only",
    CORS: "asgisec, CORS only",
    RATELIMIT: "asgisec, memory rate limit only",
    FULL: "asgisec `secure()`: hosts + headers + CORS + body + rate limit + guards, memory",
    FULL_REDIS: "asgisec `secure()`: the same, Redis backend",
    SHIPPED: "asgisec `secure()` as shipped: the same + detection (request logs off), memory",
}
# The issue-3 table (its targets) and the issue-7 table: which cases each needs, in order.
REDIS_CASES = (BARE, HEADERS, MEMORY, REDIS, UNBATCHED, PING, EVALSHA, STARLETTE, SLOWAPI)
PEER_CASES = (
    BARE,
    STARLETTE,
    TYPICAL,
    SLOWAPI_MEMORY,
    SLOWAPI,
    PEER_TYPICAL,
    PEER_SECURE,
    PEER_SECWEB,
    HOSTS,
    SEC_HEADERS,
    CORS,
    RATELIMIT,
    FULL,
    FULL_REDIS,
    SHIPPED,
)
GROUPS = {"redis": REDIS_CASES, "peers": PEER_CASES, "all": tuple(CASES)}

# What each case's answer must show before it is timed (beyond 200 and the expected body):
# the headers its stages add (each exactly once), the headers of stages it lacks, and whether
# a request for an untrusted Host must be refused with 400.
_SECURITY = frozenset(
    {
        "x-content-type-options",
        "strict-transport-security",
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
        "cache-control",
    }
)
_USER = frozenset(name.lower() for name in PEER_HEADERS)
_CORS = frozenset({"access-control-allow-origin", "vary"})
_RATE = frozenset({"ratelimit-policy", "ratelimit"})
_XFO = frozenset({"x-frame-options", "x-content-type-options"})
_ID = frozenset({"x-request-id"})


@dataclass(frozen=True)
class Expect:
    present: frozenset[str] = frozenset()
    absent: frozenset[str] = frozenset()
    refuses_bad_host: bool = False


_ISSUE3_ASGISEC = Expect(_SECURITY | _RATE | _ID, _CORS, refuses_bad_host=True)
_NOTHING = Expect(absent=_SECURITY | _CORS | _RATE | _ID)
_FULL = Expect(_SECURITY | _CORS | _RATE | _ID, refuses_bad_host=True)
EXPECT: dict[str, Expect] = {
    BARE: _NOTHING,
    HEADERS: Expect(_SECURITY | _RATE | _ID, _CORS),
    MEMORY: _ISSUE3_ASGISEC,
    REDIS: _ISSUE3_ASGISEC,
    UNBATCHED: _ISSUE3_ASGISEC,
    PING: _NOTHING,
    EVALSHA: _NOTHING,
    STARLETTE: _NOTHING,
    SLOWAPI: _NOTHING,
    TYPICAL: Expect(_USER | _CORS, _RATE | _ID, refuses_bad_host=True),
    SLOWAPI_MEMORY: _NOTHING,
    PEER_TYPICAL: Expect(_USER | _CORS, _RATE | _ID, refuses_bad_host=True),
    PEER_SECURE: Expect(_XFO | _CORS, _RATE | _ID, refuses_bad_host=True),
    PEER_SECWEB: Expect(_XFO | _CORS, _RATE | _ID, refuses_bad_host=True),
    HOSTS: Expect(_ID, _SECURITY | _CORS | _RATE, refuses_bad_host=True),
    SEC_HEADERS: Expect(_SECURITY | _ID, _CORS | _RATE),
    CORS: Expect(_CORS | _ID, _SECURITY | _RATE),
    RATELIMIT: Expect(_RATE | _ID, _SECURITY | _CORS),
    FULL: _FULL,
    FULL_REDIS: _FULL,
    SHIPPED: _FULL,
}
TARGET_SLOWAPI = 5.0  # throughput with Redis ≥ 5x slowapi + Redis
TARGET_BARE = 0.5  # throughput with Redis ≥ 0.5x the bare app

SETTLE = 0.3  # seconds after wrk stops: requests still in flight finish
STARTUP_TIMEOUT = 20.0  # seconds: a cold interpreter and its imports, with margin
PACKAGES = ("asgisec", "uvicorn", "h11", "redis", "hiredis", "starlette", "slowapi", "limits")

# wrk: POST the body with REQUEST_HEADERS; at the end print one machine-readable line
# (latencies in µs).
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = %(body)s
%(headers)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WIRE-RESULT %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


# --------------------------------------------------------------------------- processes


def wrk_script() -> str:
    """The Lua script: the body and :data:`REQUEST_HEADERS` (JSON strings are Lua strings)."""
    headers = "\n".join(
        f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in REQUEST_HEADERS
    )
    return WRK_SCRIPT % {"body": json.dumps(BODY.decode()), "headers": headers}


def ask(port: int, host: str | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """The request wrk sends, once (``host``: another ``Host``): status, headers, body."""
    headers = dict(REQUEST_HEADERS)
    if host is not None:
        headers["Host"] = host
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", PATH, body=BODY, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return response.status, [(k.lower(), v) for k, v in response.getheaders()], body
    finally:
        connection.close()


def verify(case: str, port: int) -> list[str]:
    """What is wrong with ``case``'s answer to the timed request (nothing: ``[]``)."""
    expect = EXPECT[case]
    status, headers, body = ask(port)
    problems = []
    if status != 200:
        problems.append(f"status {status}, not 200: {body[:200]!r}")
    elif body != RESPONSE:
        problems.append(f"unexpected body {body[:200]!r}")
    names = [name for name, _ in headers]
    for name in sorted(expect.present):
        if names.count(name) != 1:
            problems.append(f"header {name} sent {names.count(name)} times, not once")
    extra = sorted(expect.absent & set(names))
    if extra:
        problems.append(f"headers of a stage it should not run: {extra}")
    if expect.refuses_bad_host:
        refused, _, _ = ask(port, host="evil.example")
        if refused != 400:
            problems.append(f"an untrusted Host got {refused}, not 400")
    return [f"{case}: {problem}" for problem in problems]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_wrk() -> str:
    """The path of ``wrk``, installing Debian's package first when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("wire.py: wrk is missing; installing Debian's wrk package with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        check=True,
        env=env,
    )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wire.py: apt-get installed wrk, but it is not on PATH")
    return found


def pinning() -> tuple[list[str], list[str]]:
    """``taskset`` prefixes: servers on CPU 0, the load generator and Redis on CPU 1."""
    taskset = shutil.which("taskset")
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if taskset is None or len(cpus) < 2:
        return [], []
    return [taskset, "-c", str(cpus[0])], [taskset, "-c", str(cpus[1])]


def redis_calls(url: str) -> dict[str, int]:
    """Calls of each command Redis has executed so far (``INFO commandstats``).

    Commands a script runs are counted too (asgisec's script runs TIME, GET, PTTL and SET).
    """
    import redis

    with redis.Redis.from_url(url, socket_timeout=5) as client:
        stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process and its threads, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_http(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise SystemExit(f"wire.py: {what} exited with {process.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                message = f"wire.py: {what} did not listen within {STARTUP_TIMEOUT} s"
                raise SystemExit(message) from None
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout=10)


@contextlib.contextmanager
def redis_server(directory: Path, prefix: list[str]) -> Iterator[tuple[str, int]]:
    """A throw-away ``redis-server`` on a free loopback port: ``(url, pid)``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("wire.py: redis-server is not installed (scripts/test installs it)")
    port = free_port()
    argv = [
        *prefix,
        binary,
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
        *("--save", "", "--appendonly", "no", "--daemonize", "no"),
    ]
    with (directory / "redis.log").open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        _stop(process)


@contextlib.contextmanager
def served(case: str, redis_url: str, prefix: list[str], log: Path) -> Iterator[tuple[int, int]]:
    """``uvicorn`` serving ``benchmarks.wire_apps:<case>`` (one worker): ``(port, pid)``."""
    port = free_port()
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "uvicorn",
        f"benchmarks.wire_apps:{case}",
        "--factory",
        *("--host", "127.0.0.1", "--port", str(port)),
        *("--workers", "1", "--no-access-log", "--log-level", "warning"),
    ]
    env = {
        **os.environ,
        REDIS_URL_VARIABLE: redis_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_http(port, process, f"uvicorn serving {case}")
        yield port, process.pid
    finally:
        _stop(process)


def run_wrk(
    wrk: str, prefix: list[str], script: Path, port: int, *, connections: int, duration: float
) -> dict[str, Any]:
    """One bounded ``wrk`` run; its counters, latencies and CPU time."""
    seconds = max(1, round(duration))
    argv = [
        *prefix,
        wrk,
        *("-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s"),
        *("-s", str(script)),
        f"http://127.0.0.1:{port}{PATH}",
    ]
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            process.wait()
            raise
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    line = next((x for x in text.splitlines() if x.startswith("WIRE-RESULT ")), None)
    if process.returncode != 0 or line is None:
        raise SystemExit(f"wire.py: wrk failed ({process.returncode}):\n{text}")
    values = [float(x) for x in line.split()[1:]]
    names = ["requests", "duration_us", "connect", "read", "write", "status", "timeout"]
    result: dict[str, Any] = dict(zip(names, values, strict=False))
    result.update(p50_us=values[7], p90_us=values[8], p99_us=values[9], max_us=values[10])
    result["wrk_cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def _per_request(result: dict[str, Any]) -> str:
    """Redis commands per request, e.g. ``evalsha 1.00, get 1.00``."""
    calls = result["redis_calls"]
    return ", ".join(
        f"{name} {count / result['requests']:.2f}"
        for name, count in sorted(calls.items(), key=lambda item: -item[1])
    )


# --------------------------------------------------------------------------- the run


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    wrk_version = subprocess.run(
        [shutil.which("wrk") or "wrk", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": versions,
        "redis_server": next((w[2:] for w in redis_version if w.startswith("v=")), "?"),
        "wrk": wrk_version[1] if len(wrk_version) > 1 else "?",
        "load_average": list(os.getloadavg()),
    }


class Bench:
    """Everything a run needs, all started: Redis, one server per case, wrk and its script."""

    def __init__(self, directory: Path, cases: Sequence[str], stack: contextlib.ExitStack) -> None:
        self.directory = directory
        self.wrk = ensure_wrk()
        self.server_cpu, self.tool_cpu = pinning()
        self.script = directory / "post.lua"
        self.script.write_text(wrk_script())
        self.redis_url, self.redis_pid = stack.enter_context(redis_server(directory, self.tool_cpu))
        # All servers start at once (start-up is the slow part); idle ones cost nothing.
        self.servers = {
            case: stack.enter_context(
                served(case, self.redis_url, self.server_cpu, directory / f"{case}.log")
            )
            for case in cases
        }

    def verify(self) -> None:
        """Every case answers the timed request as it claims to (see :data:`EXPECT`), or exit."""
        problems = [
            problem for case, (port, _) in self.servers.items() for problem in verify(case, port)
        ]
        if problems:
            logs = [f"--- {case} server log ---\n{log}" for case, log in self.logs().items()]
            raise SystemExit(
                "\n".join(["wire.py: a case is not what it claims:", *problems, *logs])
            )

    def load(self, case: str, *, connections: int, duration: float) -> dict[str, Any]:
        """One bounded wrk run against ``case``, with CPU times and Redis commands around it."""
        port, pid = self.servers[case]
        cpu, redis_cpu = cpu_seconds(pid), cpu_seconds(self.redis_pid)
        calls = redis_calls(self.redis_url)
        result = run_wrk(
            self.wrk, self.tool_cpu, self.script, port, connections=connections, duration=duration
        )
        # Requests in flight when wrk stops finish after it (and are not in its count): let
        # them land here rather than in the next case's counters.
        time.sleep(SETTLE)
        after = redis_calls(self.redis_url)
        result["redis_calls"] = {
            name: after[name] - calls.get(name, 0)
            for name in after
            if after[name] != calls.get(name, 0) and name not in ("info", "client")
        }
        result["server_cpu_s"] = cpu_seconds(pid) - cpu
        result["redis_cpu_s"] = cpu_seconds(self.redis_pid) - redis_cpu
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
        return result

    def logs(self) -> dict[str, str]:
        """What each server printed (warnings, tracebacks), its last 2000 characters."""
        logs = {}
        for case in self.servers:
            text = (self.directory / f"{case}.log").read_text(errors="replace")
            if text.strip():
                logs[case] = text[-2000:]
        return logs


def run(
    cases: Sequence[str] = tuple(CASES),
    *,
    duration: float = 5.0,
    warmup: float = 2.0,
    rounds: int = 3,
    connections: int = 64,
) -> dict[str, Any]:
    """Serve every case, load each in interleaved rounds; the raw results of the whole run."""
    started = datetime.now(UTC)
    measured: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        bench = Bench(Path(tmp), cases, stack)
        bench.verify()  # before anything is timed: 200, the stage's headers, a bad Host refused
        for case in cases:  # warm-up: connections, imports, caches, the script in Redis
            print(f"wire.py: warming up {case}", flush=True)
            bench.load(case, connections=connections, duration=warmup)
        for number in range(rounds):
            for case in cases:
                result = bench.load(case, connections=connections, duration=duration)
                measured[case].append(result)
                print(
                    f"wire.py: round {number + 1}/{rounds} {case:<24} "
                    f"{result['rps']:8.0f} req/s  p99 {result['p99_us'] / 1000:6.2f} ms  "
                    f"Redis {_per_request(result)}",
                    flush=True,
                )
        logs = bench.logs()
        pinned = bool(bench.server_cpu)
    return {
        "datetime": started.isoformat(),
        "machine": machine(),
        "settings": {
            "duration_s": max(1, round(duration)),
            "warmup_s": max(1, round(warmup)),
            "rounds": rounds,
            "connections": connections,
            "pinned": pinned,
            "wrk_threads": 1,
        },
        "commit": _commit(),
        "cases": measured,
        "logs": logs,
    }


def select(spec: str) -> tuple[str, ...]:
    """The cases named by ``--cases`` (groups of :data:`GROUPS` or case names), in page order."""
    chosen: set[str] = set()
    for word in filter(None, (part.strip() for part in spec.split(","))):
        if word in GROUPS:
            chosen.update(GROUPS[word])
        elif word in CASES:
            chosen.add(word)
        else:
            known = ", ".join([*GROUPS, *CASES])
            raise SystemExit(f"wire.py: unknown case or group {word!r} (known: {known})")
    if not chosen:
        raise SystemExit("wire.py: --cases names no case")
    return tuple(case for case in CASES if case in chosen)


def _commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {"id": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def check(data: dict[str, Any]) -> list[str]:
    """Problems that make a run meaningless: errors, refusals, nothing served."""
    problems = []
    for case, results in data["cases"].items():
        for result in results:
            errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout")}
            if any(errors.values()):
                problems.append(f"{case}: wrk counted errors {errors}")
            if result["requests"] <= 0:
                problems.append(f"{case}: no request completed")
    return problems


def best(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the highest throughput: the one least disturbed by other work."""
    return max(results, key=lambda result: result["rps"])


# --------------------------------------------------------------------------- the page


def verdict(ok: bool) -> str:
    return "✅ PASS" if ok else "❌ FAIL"


class Row:
    """One case of the run: its best round's throughput and latency, its median CPU cost."""

    def __init__(self, case: str, results: list[dict[str, Any]]) -> None:
        top = best(results)
        self.case = case
        self.rps: float = top["rps"]
        self.p50_ms: float = top["p50_us"] / 1000
        self.p99_ms: float = top["p99_us"] / 1000
        seconds = top["duration_us"] / 1e6
        self.server_share = 100 * top["server_cpu_s"] / seconds
        self.wrk_share = 100 * top["wrk_cpu_s"] / seconds
        self.redis_share = 100 * top["redis_cpu_s"] / seconds
        # CPU time is what a request costs whether or not another process held the core.
        self.cpu_us: float = statistics.median(
            1e6 * result["server_cpu_s"] / result["requests"] for result in results
        )
        self.redis_us: float = statistics.median(
            1e6 * result["redis_cpu_s"] / result["requests"] for result in results
        )
        calls = top["redis_calls"]
        main = [name for name in ("evalsha", "eval", "ping") if calls.get(name)]
        self.calls = (
            ", ".join(f"{name} {calls[name] / top['requests']:.2f}" for name in main) or "none"
        )


def render(data: dict[str, Any]) -> str:
    """The section between the markers, from one run's raw results.

    The issue-3 table and targets need every case of :data:`REDIS_CASES`, the peer table
    every case of :data:`PEER_CASES`; a run with only one of the two (``--cases``) renders it
    alone and says the other was not measured.
    """
    rows = {case: Row(case, results) for case, results in data["cases"].items() if results}
    have_redis = set(REDIS_CASES) <= rows.keys()
    have_peers = set(PEER_CASES) <= rows.keys()
    if not (have_redis or have_peers):
        missing = sorted((set(REDIS_CASES) | set(PEER_CASES)) - rows.keys())
        raise SystemExit(f"wire.py: the run lacks the cases {missing}: run them all")
    settings = data["settings"]
    info = data["machine"]
    commit = data.get("commit", {})
    when = datetime.fromisoformat(data["datetime"])

    out: list[str] = []
    add = out.append
    add(START)
    add("## Over the wire: rate limits on Redis (issue 3), asgisec next to its peers (issue 7)")
    add("")
    add(
        "Real HTTP requests through uvicorn. Issue 3: asgisec with its Redis backend next to "
        "the same app bare, next to one bare redis-py call per request, and next to slowapi on "
        "the same Redis. Issue 7: asgisec stage by stage and in full next to the peer "
        "middlewares of the in-process comparison, built the same way around the same app. "
        "Every figure in this section comes from one run."
    )
    add("")
    add("```sh")
    add("python benchmarks/wire.py                 # the run, then this section (~7 minutes)")
    add("python benchmarks/wire.py --cases redis   # issue 3's cases only (~3 minutes)")
    add("pytest benchmarks --benchmark-disable     # includes a smoke run of it (seconds)")
    add("```")
    add("")
    add(
        "*Generated by `benchmarks/wire.py` — do not edit by hand; `benchmarks/report.py` "
        "keeps this section when it rewrites the rest of the page. wrk is Debian's `wrk` "
        "package: `scripts/test` installs it, and `wire.py` installs it with apt-get when "
        "it is missing.*"
    )
    add("")
    if not (have_redis and have_peers):
        left_out = "the peer comparison (issue 7)" if have_redis else "the Redis table (issue 3)"
        add(f"*This run measured only part of the cases: {left_out} was not measured.*")
        add("")
    add("### The run")
    add("")
    dirty = " (with uncommitted changes)" if commit.get("dirty") else ""
    add(f"- **When:** {when:%Y-%m-%d %H:%M:%S} UTC")
    if commit.get("id"):
        add(f"- **Commit:** `{commit['id'][:12]}`{dirty}")
    add(f"- **CPU:** {info['cpu_model']}, {info['logical_cpus']} logical cores")
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    add(
        f"- **Load average** (1, 5, 15 min) at the end: {load}: the machine is shared with "
        "other work, which is why every case runs several times (below)"
    )
    add(f"- **OS:** {info['platform']}; **Python:** {info['python']}")
    add(f"- **redis-server** {info['redis_server']}; **wrk** {info['wrk']}")
    add("- **Packages:** " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    add("")
    add("### How it is measured")
    add("")
    add(
        f"- Each case is its own `uvicorn` process with **1 worker** (asyncio loop, h11: "
        f"uvloop and httptools are not installed), all against one `redis-server` on "
        f"loopback. Every case answers the same `POST {PATH}` ({len(BODY)}-byte JSON body; "
        f"`Host: 127.0.0.1`, the in-process benchmark's {len(REQUEST_HEADERS) - 1} other "
        "headers: a browser's user agent, `Accept*`, an allowed `Origin`, `Content-Type`; and "
        "`X-Forwarded-Proto: https`, which uvicorn trusts from loopback, so the apps see "
        "HTTPS as behind a TLS-terminating proxy) with the same 200 JSON body. Every limit is "
        "1000000/second: nothing is refused, every case measures the cost of deciding."
    )
    add(
        "- Before anything is timed, every case answers that request once and must show what "
        "it claims to measure: status 200, the body, the headers of its stages present "
        "exactly once, those of the stages it lacks absent, and (where hosts are checked) "
        "an untrusted `Host` refused with 400."
    )
    add(
        f"- Load: **wrk**, 1 thread, **{settings['connections']} concurrent keep-alive "
        f"connections**, {settings['duration_s']} s per measurement after a "
        f"{settings['warmup_s']} s warm-up of each case; {settings['rounds']} interleaved "
        "rounds (every case once, then every case again, ...), so that other work on the "
        "machine spreads over all cases."
    )
    if settings["pinned"]:
        add(
            "- The servers run on CPU 0, wrk and Redis on CPU 1 (`taskset`), so the load "
            "generator never takes the measured server's core; the CPU columns show wrk far "
            "from saturated."
        )
    else:
        add("- One usable core: nothing is pinned, wrk shares the server's CPU.")
    add(
        "- **req/s, p50, p99**: each case's round with the highest throughput (the least "
        "disturbed one). **Server CPU per request**: the server process's user + system CPU "
        "time (from `/proc`) divided by the requests wrk completed, median over the rounds. "
        "It does not depend on how often another process took the core, so it is the "
        "steadier measure of what a case costs; **cost over bare** is that CPU time minus "
        "the bare app's."
    )
    add(
        "- **Redis calls per request** come from `INFO commandstats` before and after each "
        "round: they show which cases really decided on Redis (a case that fell back to "
        "local buckets would show fewer than 1)."
    )
    add(
        "- *coalescing off* is asgisec's Redis backend with `max_batch=1` and 64 pipelines "
        "in flight: one round trip per request, like a client without coalescing."
    )
    add("")
    if have_redis:
        _render_redis(rows, add)
    if have_peers:
        _render_peers(rows, add)
    add(END)
    return "\n".join(out) + "\n"


def _render_redis(rows: dict[str, Row], add: Callable[[str], None]) -> None:
    """Issue 3: the Redis table, its targets, where the time goes."""
    bare, redis, slowapi = rows[BARE], rows[REDIS], rows[SLOWAPI]

    def cost(case: str) -> float:  # server CPU µs per request over the bare app's
        return rows[case].cpu_us - bare.cpu_us

    add("### Results: rate limits on Redis (issue 3)")
    add("")
    add(
        "The asgisec rows of this table run `secure()` with its defaults (detection on, no "
        "CORS configured) except request logs, which are off as in every wire case."
    )
    add("")
    add(
        "| Case | req/s | p50 ms | p99 ms | server CPU µs/req | cost over bare µs/req | "
        "x bare | x slowapi | Redis calls/req | Redis CPU µs/req | server / wrk / Redis CPU |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for case in REDIS_CASES:
        row, label = rows[case], CASES[case]
        add(
            f"| {label} | {row.rps:.0f} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | "
            f"{row.cpu_us:.0f} | {'' if case == BARE else f'{cost(case):+.0f}'} | "
            f"{row.rps / bare.rps:.2f} | {row.rps / slowapi.rps:.2f} | {row.calls} | "
            f"{row.redis_us:.1f} | {row.server_share:.0f} / {row.wrk_share:.0f} / "
            f"{row.redis_share:.0f} % |"
        )
    add("")
    evalsha_ok = cost(REDIS) <= cost(EVALSHA)
    slowapi_ratio = redis.rps / slowapi.rps
    bare_ratio = redis.rps / bare.rps
    add("### Targets (issue 3)")
    add("")
    add("| Target | Measured | Limit | Result |")
    add("| --- | ---: | ---: | --- |")
    add(
        f"| asgisec's per-request cost (whole `secure()`, Redis backend) ≤ a bare redis-py "
        f"EVALSHA's | {cost(REDIS):.0f} µs | {cost(EVALSHA):.0f} µs | {verdict(evalsha_ok)} |"
    )
    add(
        f"| throughput with Redis ≥ {TARGET_SLOWAPI:g}x slowapi + Redis | "
        f"{slowapi_ratio:.2f}x | {TARGET_SLOWAPI:.2f}x | "
        f"{verdict(slowapi_ratio >= TARGET_SLOWAPI)} |"
    )
    add(
        f"| throughput with Redis ≥ {TARGET_BARE:g}x the bare app | {bare_ratio:.2f}x | "
        f"{TARGET_BARE:.2f}x | {verdict(bare_ratio >= TARGET_BARE)} |"
    )
    add("")
    add("### Where the time goes")
    add("")
    headers = cost(HEADERS)
    add(
        f"- The bare app costs the server {bare.cpu_us:.0f} µs of CPU per request: that is "
        "uvicorn's own work (h11 in pure Python), so a fixed cost per request weighs "
        "heavily in the *x bare* column; a real endpoint does work of its own."
    )
    add(
        f"- Writing asgisec's {HEADER_COUNT} extra response headers alone costs the server "
        f"{headers:.0f} µs per request (*bare app sending asgisec's headers*): h11 validates "
        f"and encodes each header in Python. asgisec's whole pipeline with memory buckets "
        f"costs {cost(MEMORY):.0f} µs over bare, so its own code costs about "
        f"{cost(MEMORY) - headers:.0f} µs of that."
    )
    add(
        f"- Deciding on Redis instead of in memory adds {cost(REDIS) - cost(MEMORY):.0f} µs "
        f"per request, against {cost(EVALSHA):.0f} µs for one bare redis-py `EVALSHA` of the "
        f"same script and {cost(PING):.0f} µs for a bare `PING`: coalescing the decisions of "
        "one event-loop tick into one pipeline is what makes the shared decision cheaper "
        "than a single bare call."
    )
    unbatched = rows[UNBATCHED]
    add(
        f"- Coalescing measured: {redis.rps:.0f} req/s and {redis.cpu_us:.0f} µs of server "
        f"CPU per request with it, {unbatched.rps:.0f} req/s and {unbatched.cpu_us:.0f} µs "
        f"with one round trip per request; Redis spends {redis.redis_us:.1f} µs against "
        f"{unbatched.redis_us:.1f} µs per request."
    )
    add(
        f"- slowapi decides with a synchronous Redis client on the event loop: "
        f"{slowapi.rps:.0f} req/s, {slowapi.rps / rows[STARLETTE].rps:.2f}x the same "
        f"Starlette route without it, p99 {slowapi.p99_ms:.0f} ms."
    )
    add("")


def _render_peers(rows: dict[str, Row], add: Callable[[str], None]) -> None:
    """Issue 7: asgisec stage by stage and in full next to the peer middlewares."""
    bare, full = rows[BARE], rows[FULL]
    add("### Results: asgisec next to its peers (issue 7)")
    add("")
    add(
        "The peers are built by `benchmarks/peers.py` around the bare app exactly as in the "
        "in-process comparison, and asgisec's stages come from the same configurations "
        "(`benchmarks/stages.py`); only the trusted hosts differ (`127.0.0.1`, wrk's `Host`, "
        "and `www.example.com`, for Starlette and asgisec alike)."
    )
    add("")
    add(
        "- **Like for like**: the asgisec per-stage and *full* rows run with detection "
        "(`SUSPICIOUS_MODE=off`) and request logs (`ENABLE_REQUEST_LOGGING=false`) off, "
        "because no peer offers them. *Full* is what every full peer stack offers: trusted "
        "hosts, security headers, CORS, a body limit, a rate limit, and the request timeout "
        "and concurrency cap."
    )
    add(
        "- **As shipped** is *full* with detection on (`SUSPICIOUS_MODE=log`, the default). "
        "Request logs are **off** in it too, unlike the real default: over the wire, one "
        "JSON line per request written to the terminal would measure the terminal, not the "
        "middleware (the in-process comparison measures logging on its own)."
    )
    add(
        "- slowapi needs a Starlette route to find the endpoint's limits, so its rows include "
        "Starlette's routing: compare them with the *Starlette route* row as well as with "
        "bare. slowapi and limits send no rate-limit headers; that they are engaged with these "
        "builders is checked in-process (`test_rate_limiters_really_limit`), and slowapi on "
        "Redis shows its Redis calls in the table above."
    )
    add(
        "- **x bare** and **x asgisec full** are throughput ratios (best round against best "
        "round); above 1.00 is faster."
    )
    add("")
    add(
        "| Case | req/s | p50 ms | p99 ms | server CPU µs/req | cost over bare µs/req | "
        "x bare | x asgisec full |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in PEER_CASES:
        row, label = rows[case], CASES[case]
        strong = "**" if case == FULL else ""
        add(
            f"| {label} | {strong}{row.rps:.0f}{strong} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | "
            f"{row.cpu_us:.0f} | {'' if case == BARE else f'{row.cpu_us - bare.cpu_us:+.0f}'} | "
            f"{row.rps / bare.rps:.2f} | {row.rps / full.rps:.2f} |"
        )
    add("")
    stacks = (TYPICAL, PEER_TYPICAL, PEER_SECURE, PEER_SECWEB)
    add(
        "- asgisec in full serves "
        + "; ".join(f"{full.rps / rows[case].rps:.2f}x the {CASES[case]}" for case in stacks)
        + f". On Redis it serves {rows[FULL_REDIS].rps / rows[SLOWAPI].rps:.2f}x slowapi on "
        f"Redis; as shipped (with detection) {rows[SHIPPED].rps / full.rps:.2f}x *full*."
    )
    add("")


def splice(page: str, section: str) -> str:
    """``page`` with its wire section replaced by ``section`` (appended if it has none)."""
    start, end = page.find(START), page.find(END)
    if start >= 0 and end > start:
        return page[:start] + section.rstrip("\n") + page[end + len(END) :]
    return page.rstrip("\n") + "\n\n" + section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per case")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all cases")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument(
        "--cases",
        default="all",
        help="comma-separated groups (all, redis: issue 3's table, peers: issue 7's) or case "
        "names; default all",
    )
    parser.add_argument("--json", type=Path, help="also save the raw results here")
    parser.add_argument("--from-json", type=Path, help="render a saved run; measure nothing")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the page to update")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        data = run(
            select(args.cases),
            duration=args.duration,
            warmup=args.warmup,
            rounds=args.rounds,
            connections=args.connections,
        )
        if args.json is not None:
            args.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    problems = check(data)
    if problems:
        print("\n".join(["wire.py: the run is not usable:", *problems]), file=sys.stderr)
        for case, log in data.get("logs", {}).items():
            print(f"--- {case} server log ---\n{log}", file=sys.stderr)
        return 1
    page = args.output.read_text(encoding="utf-8") if args.output.exists() else "# Benchmarks\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(splice(page, render(data)), encoding="utf-8")
    print(f"wrote the wire section of {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
