"""``asgisec monitor``: the counter arithmetic (M1), then real polls of real servers.

Over the wire: the demo secured (quiet, then driven past a threshold with refused
requests), and ``tests.tool_apps:counters_app``, whose ``/health`` counters, ``started_at``,
status and HTTP status the test sets, for restarts (M1), a target down (M4), unhealthy
checks and the webhook (a real local HTTP receiver).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from asgisec.tools.monitor import DEFAULT_THRESHOLDS, evaluate, thresholds_from_env
from asgisec.tools.rates import Sample, increase, prune, rates, sample_from_block

from .servers import REPO_ROOT, cli_env, free_port, run_cli, serving
from .tool_servers import uvicorn_serving

MONITOR_TIMEOUT = 60.0
T0 = 1_800_000_000.0


def sample(at: float, started: float | None = None, **counters: int) -> Sample:
    return Sample(at=at, counters=counters, started_at=started)


# --------------------------------------------------------------------------- arithmetic


def test_m1_a_restart_is_a_new_series_not_a_negative_rate() -> None:
    history = [
        sample(T0, T0 - 86_400, blocked_requests=1000),
        sample(T0 + 300, T0 + 200, blocked_requests=12),
    ]
    assert increase(history, "blocked_requests") == 12
    alerts, per_hour, _, _, reset = evaluate(
        history, {"status": "healthy"}, now=T0 + 300, thresholds=DEFAULT_THRESHOLDS
    )
    assert reset
    assert per_hour["blocked_requests"] == 12
    assert alerts == []


def test_fleet_totals_are_a_series_of_their_own() -> None:
    """With workers on Redis, /health answers from one process: its counts are a part, and
    the next poll's process looks like a restart. The fleet's totals are the series."""
    block = {"suspicious_requests": 13, "started_at": T0 - 50, "fleet": {"suspicious_requests": 30}}
    fleet = sample_from_block(block, T0)
    assert (fleet.series, fleet.counters, fleet.started_at) == (
        "fleet",
        {"suspicious_requests": 30},
        None,
    )
    local = sample_from_block(block, T0, fleet=False)
    assert (local.series, local.counters["suspicious_requests"]) == ("process", 13)
    assert rates([fleet], T0) == ({}, {}, None)  # no known start for the fleet's totals
    history = [
        fleet,
        Sample(
            at=T0 + 60, counters={"suspicious_requests": 17}, started_at=T0 - 1
        ),  # not synced yet
        Sample(at=T0 + 120, counters={"suspicious_requests": 45}, series="fleet"),
    ]
    _, increases, window = rates(history, T0 + 120)
    assert increases["suspicious_requests"] == 15  # 30 -> 45: the process sample is left out
    assert window == 120


def test_m1_a_smaller_count_without_started_at_is_a_reset() -> None:
    history = [sample(T0, blocked_requests=1000), sample(T0 + 60, blocked_requests=12)]
    assert increase(history, "blocked_requests") == 12


def test_increase_sums_every_step_and_resets() -> None:
    history = [
        sample(T0, 1.0, blocked_requests=5),
        sample(T0 + 10, 1.0, blocked_requests=9),  # +4
        sample(T0 + 20, 2.0, blocked_requests=3),  # restart: +3
        sample(T0 + 30, 2.0, blocked_requests=10),  # +7
    ]
    assert increase(history, "blocked_requests") == 14
    assert increase(history, "suspicious_requests") is None  # never reported: unknown, not 0


def test_a_short_window_is_never_extrapolated_upwards() -> None:
    history = [sample(T0, 1.0, blocked_requests=0), sample(T0 + 5, 1.0, blocked_requests=1)]
    per_hour, increases, window = rates(history, T0 + 5)
    assert window == 5
    assert increases["blocked_requests"] == 1
    assert per_hour["blocked_requests"] == 1  # not 720/h


def test_a_long_window_is_averaged_per_hour() -> None:
    history = [
        sample(T0, 1.0, blocked_requests=0),
        sample(T0 + 1800, 1.0, blocked_requests=50),
        sample(T0 + 7200, 1.0, blocked_requests=200),
    ]
    pruned = prune(history, T0 + 7200)
    assert [s.at for s in pruned] == [T0 + 1800, T0 + 7200]  # the baseline is an hour+ old
    per_hour, increases, window = rates(history, T0 + 7200)
    assert window == 5400
    assert increases["blocked_requests"] == 150
    assert per_hour["blocked_requests"] == pytest.approx(100.0)


def test_first_poll_counts_from_started_at_or_knows_nothing() -> None:
    per_hour, _, window = rates([sample(T0, T0 - 10, suspicious_requests=30)], T0)
    assert window == 10
    assert per_hour["suspicious_requests"] == 30
    assert rates([sample(T0, None, suspicious_requests=30)], T0) == ({}, {}, None)
    day_old = rates([sample(T0, T0 - 86_400, suspicious_requests=48)], T0)[0]
    assert day_old["suspicious_requests"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("blocked", "total", "alerted"),
    [(2, 100, True), (1, 100, False), (5, 50, False), (30, 1000, True), (0, 0, False)],
)
def test_blocked_ratio_alert(blocked: int, total: int, alerted: bool) -> None:
    history = [
        sample(T0, 1.0, blocked_requests=0, total_requests=0),
        sample(T0 + 60, 1.0, blocked_requests=blocked, total_requests=total),
    ]
    alerts = evaluate(history, {}, now=T0 + 60, thresholds=DEFAULT_THRESHOLDS)[0]
    assert ("monitor.blocked-ratio" in {a.id for a in alerts}) is alerted


def test_unhealthy_check_alerts() -> None:
    health = {"status": "degraded", "checks": {"security": {"status": "degraded"}}}
    alerts = evaluate([sample(T0)], health, now=T0, thresholds=DEFAULT_THRESHOLDS)[0]
    assert [a.id for a in alerts] == ["monitor.unhealthy"]


def test_thresholds_from_env() -> None:
    assert thresholds_from_env({}) == {
        "ALERT_THRESHOLD_BLOCKED": 50,
        "ALERT_THRESHOLD_SUSPICIOUS": 25,
        "ALERT_THRESHOLD_RATE_LIMITED": 100,
    }
    assert (
        thresholds_from_env({"ALERT_THRESHOLD_SUSPICIOUS": "10"})["ALERT_THRESHOLD_SUSPICIOUS"]
        == 10
    )
    for bad in ("ten", "-1", "nan", "inf"):
        with pytest.raises(ValueError, match="ALERT_THRESHOLD_BLOCKED"):
            thresholds_from_env({"ALERT_THRESHOLD_BLOCKED": bad})


# --------------------------------------------------------------------------- over the wire


def monitor(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["monitor", *args], env=cli_env(**env), cwd=cwd, timeout=MONITOR_TIMEOUT)


def polls(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    # The demo's own /health never degrades here (a test that refuses 30 of 31 requests would
    # pass HEALTH_BLOCKED_RATE_THRESHOLD, and on a loaded machine one slow request puts the
    # p99 of 30 over HEALTH_OVERHEAD_THRESHOLD_MS's 10 ms): these tests are about the
    # monitor's thresholds, and exact alert lists must not depend on the machine's speed.
    env = cli_env(
        TRUSTED_HOSTS="127.0.0.1",
        RATE_LIMIT_DEFAULT="10000/minute",
        HEALTH_BLOCKED_RATE_THRESHOLD="1",
        HEALTH_OVERHEAD_THRESHOLD_MS="60000",
    )
    with serving(["demo", "--port", str(port)], port=port, env=env, cwd=tmp_path) as served:
        yield served.url


def test_quiet_demo_exits_0(demo: str, tmp_path: Path) -> None:
    done = monitor(demo, "--once", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " OK " in done.stdout
    (poll,) = polls(monitor(demo, "--once", "--format", "json", cwd=tmp_path))
    assert poll["schema"] == "asgisec.monitor/1"
    assert poll["status"] == "ok"
    assert poll["alerts"] == []
    assert poll["counters"]["blocked_requests"] == 0
    assert poll["window_seconds"] > 0  # counted from the demo's started_at


def test_demo_past_the_blocked_threshold_exits_1(demo: str, tmp_path: Path) -> None:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        for _ in range(30):
            assert client.get(demo + "/", headers={"host": "evil.example"}).status_code == 400
    done = monitor(demo, "--once", "--format", "json", cwd=tmp_path, ALERT_THRESHOLD_BLOCKED="25")
    assert done.returncode == 1
    (poll,) = polls(done)
    assert poll["status"] == "alert"
    assert poll["counters"]["blocked_requests"] == 30
    assert [a["id"] for a in poll["alerts"]] == ["monitor.blocked"]
    assert "ALERT_THRESHOLD_BLOCKED=25" in poll["alerts"][0]["message"]
    # The default threshold (50/h) is not crossed by the same 30 refusals.
    assert monitor(demo, "--once", cwd=tmp_path).returncode == 0


@pytest.fixture
def counters(tmp_path: Path) -> Iterator[str]:
    with uvicorn_serving("tests.tool_apps:counters_app", cwd=tmp_path) as url:
        yield url


def drive(url: str, **state: Any) -> None:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        client.post(url + "/control", json=state).raise_for_status()


def test_m1_restart_over_the_wire_with_state(counters: str, tmp_path: Path) -> None:
    state = str(tmp_path / "monitor.json")
    old_start = time.time() - 30 * 86_400
    drive(counters, blocked_requests=1000, total_requests=500_000, started_at=old_start)
    first = monitor(counters, "--once", "--state", state, "--format", "json", cwd=tmp_path)
    assert first.returncode == 0, first.stdout
    restart = time.time() - 60
    drive(counters, blocked_requests=12, total_requests=2000, started_at=restart)
    second = monitor(counters, "--once", "--state", state, "--format", "json", cwd=tmp_path)
    (poll,) = polls(second)
    assert poll["reset"] is True
    assert poll["increases"]["blocked_requests"] == 12  # not -988
    assert poll["alerts"] == []
    assert second.returncode == 0
    drive(counters, blocked_requests=80, total_requests=10_000)  # 0.8 % blocked: no ratio alert
    third = monitor(counters, "--once", "--state", state, "--format", "json", cwd=tmp_path)
    (poll,) = polls(third)
    assert poll["reset"] is False
    assert poll["increases"]["blocked_requests"] == 80  # 12 since the restart, then 68 more
    assert [a["id"] for a in poll["alerts"]] == ["monitor.blocked"]
    assert third.returncode == 1


def test_m4_a_503_is_target_down_and_counters_are_not_read(counters: str, tmp_path: Path) -> None:
    drive(counters, http_status=503, blocked_requests=0)
    done = monitor(counters, "--once", "--format", "json", cwd=tmp_path)
    assert done.returncode == 3
    (poll,) = polls(done)
    assert poll["status"] == "down"
    assert poll["counters"] == {}  # never read as 0
    assert [a["id"] for a in poll["alerts"]] == ["monitor.target-down"]
    assert "503" in poll["alerts"][0]["message"]


def test_m4_a_block_without_counters_is_target_down_not_a_quiet_service(
    counters: str, tmp_path: Path
) -> None:
    # Renamed or stringly-typed counters are not counters: no number is read, none made up.
    drive(counters, blocked_requests="500", suspicious_requests=None, rate_limited_requests=None,
          total_requests=1.5)  # fmt: skip
    done = monitor(counters, "--once", "--format", "json", cwd=tmp_path)
    assert done.returncode == 3
    (poll,) = polls(done)
    assert poll["status"] == "down"
    assert poll["counters"] == {}
    assert [a["id"] for a in poll["alerts"]] == ["monitor.target-down"]
    assert "no security counters" in poll["alerts"][0]["message"]
    drive(counters, blocked_requests=0)  # one real counter is enough to be read
    assert monitor(counters, "--once", cwd=tmp_path).returncode == 0


def test_m4_nothing_listening_is_target_down(tmp_path: Path) -> None:
    done = monitor(f"http://127.0.0.1:{free_port()}", "--once", cwd=tmp_path)
    assert done.returncode == 3
    assert "ALERT monitor.target-down" in done.stdout
    assert "Traceback" not in done.stderr


def test_an_unhealthy_check_alerts(counters: str, tmp_path: Path) -> None:
    drive(counters, status="degraded", http_status=200)
    done = monitor(counters, "--once", cwd=tmp_path)
    assert done.returncode == 1
    assert "monitor.unhealthy" in done.stdout


def test_suspicious_threshold_from_env(counters: str, tmp_path: Path) -> None:
    drive(counters, status="healthy", suspicious_requests=30, started_at=time.time() - 10)
    assert monitor(counters, "--once", cwd=tmp_path).returncode == 1  # 30 > 25/h
    assert (
        monitor(counters, "--once", cwd=tmp_path, ALERT_THRESHOLD_SUSPICIOUS="40").returncode == 0
    )
    done = monitor(counters, "--once", cwd=tmp_path, ALERT_THRESHOLD_SUSPICIOUS="10")
    assert done.returncode == 1
    assert "monitor.suspicious" in done.stdout
    bad = monitor(counters, "--once", cwd=tmp_path, ALERT_THRESHOLD_SUSPICIOUS="lots")
    assert bad.returncode == 2
    assert "ALERT_THRESHOLD_SUSPICIOUS" in bad.stderr


def test_workers_on_redis_are_judged_by_the_fleet_totals(counters: str, tmp_path: Path) -> None:
    """Polls reach worker A, then B, then A ...: each has its own counters and started_at.

    Read as one series, every poll would be a restart and each worker's count would be added
    again (13 + 17 + 13 + 17 ... a false alarm). The fleet's totals say what happened: 30
    suspicious requests, then no more, then 50 more.
    """
    state = str(tmp_path / "monitor.json")
    start = time.time() - 600
    workers = [
        {"suspicious_requests": 13, "total_requests": 14, "started_at": start},
        {"suspicious_requests": 17, "total_requests": 18, "started_at": start + 0.2},
    ]
    fleet = {"suspicious_requests": 30, "total_requests": 32, "blocked_requests": 0,
             "rate_limited_requests": 0}  # fmt: skip
    found = []
    for index in range(6):
        drive(counters, fleet=fleet, **workers[index % 2])
        done = monitor(counters, "--once", "--state", state, "--format", "json", cwd=tmp_path,
                       ALERT_THRESHOLD_SUSPICIOUS="40")  # fmt: skip
        (poll,) = polls(done)
        found.append(poll)
        assert done.returncode == 0, poll
    assert found[0]["source"] == "process"  # the first sight: the one worker's counts since start
    assert found[0]["increases"]["suspicious_requests"] == 13
    assert [p["source"] for p in found[1:]] == ["fleet"] * 5
    assert [p["increases"]["suspicious_requests"] for p in found[1:]] == [0] * 5
    assert found[-1]["counters"]["suspicious_requests"] == 30
    drive(counters, fleet={**fleet, "suspicious_requests": 80}, **workers[0])
    done = monitor(counters, "--once", "--state", state, "--format", "json", cwd=tmp_path,
                   ALERT_THRESHOLD_SUSPICIOUS="40")  # fmt: skip
    (poll,) = polls(done)
    assert poll["increases"]["suspicious_requests"] == 50
    assert [a["id"] for a in poll["alerts"]] == ["monitor.suspicious"]
    assert done.returncode == 1


@contextlib.contextmanager
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on loopback that keeps every JSON body POSTed to it."""
    received: list[dict[str, Any]] = []

    class Receive(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_webhook_receives_alerts_only(counters: str, tmp_path: Path) -> None:
    with receiver() as (hook, received):
        drive(counters, status="healthy", suspicious_requests=0, blocked_requests=0,
              rate_limited_requests=0, started_at=time.time() - 10)  # fmt: skip
        assert monitor(counters, "--once", "--webhook", hook, cwd=tmp_path).returncode == 0
        assert received == []
        drive(counters, rate_limited_requests=150)
        assert monitor(counters, "--once", "--webhook", hook, cwd=tmp_path).returncode == 1
    (posted,) = received
    assert posted["schema"] == "asgisec.monitor/1"
    assert [a["id"] for a in posted["alerts"]] == ["monitor.rate-limited"]
    assert posted["counters"]["rate_limited_requests"] == 150


def test_loop_mode_polls_every_interval(counters: str, tmp_path: Path) -> None:
    drive(counters, status="healthy", suspicious_requests=0, blocked_requests=0,
          rate_limited_requests=0, started_at=time.time() - 10)  # fmt: skip
    done = monitor(counters, "--interval", "0.2", "--count", "3", "--format", "json", cwd=tmp_path)
    found = polls(done)
    assert len(found) == 3
    assert all(p["status"] == "ok" for p in found)
    assert found[-1]["window_seconds"] > found[0]["window_seconds"]
    assert done.returncode == 0


def test_security_monitor_script_honours_thresholds(counters: str, tmp_path: Path) -> None:
    script = REPO_ROOT / "scripts" / "security_monitor.sh"
    assert os.access(script, os.X_OK)
    drive(counters, status="healthy", suspicious_requests=30, started_at=time.time() - 10)

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "--once"],
            env=cli_env(ENGINE_BASE_URL=counters, PYTHON=sys.executable, **env),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=MONITOR_TIMEOUT,
            check=False,
        )

    assert run(ALERT_THRESHOLD_SUSPICIOUS="50").returncode == 0
    alerted = run(ALERT_THRESHOLD_SUSPICIOUS="10")
    assert alerted.returncode == 1
    assert "monitor.suspicious" in alerted.stdout


def test_certificate_expiry_alert(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=10, hours=1))
    certfile, cafile = tmp_path / "cert.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    ca.cert_pem.write_to_path(str(cafile))
    port = free_port()
    import ssl

    verify = ssl.create_default_context(cafile=str(cafile))
    args = ["demo", "--port", str(port), "--ssl-certfile", str(certfile)]
    env = cli_env(TRUSTED_HOSTS="127.0.0.1")
    with serving(args, port=port, env=env, cwd=tmp_path, scheme="https", verify=verify) as s:
        done = monitor(s.url, "--once", "--cacert", str(cafile), "--format", "json", cwd=tmp_path)
    (poll,) = polls(done)
    assert poll["certificate_days_left"] == 10
    assert [a["id"] for a in poll["alerts"]] == ["monitor.cert-expiry"]
    assert done.returncode == 1
