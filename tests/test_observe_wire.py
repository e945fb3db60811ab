"""Issue 5's "Done when", each proved on the served demo (`asgisec demo`) over the wire.

Real processes (``python -m asgisec demo``) on free loopback ports, httpx as the client, the
request log read from the server's stderr, Redis a real ``redis-server`` from the fixtures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from .servers import Served, cli_env, free_port, run_cli, serving

HOSTS = "127.0.0.1,localhost"
CALCULATE = {"time": "2026-06-21T12:00:00Z", "latitude": 51.48, "longitude": 0.0}
WAIT = 15.0  # seconds, bounded: a ban or a counter reaches every process within ~1 s


def _client() -> httpx.Client:
    return httpx.Client(timeout=5.0, trust_env=False)


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            try:
                lines.append(msgspec.json.decode(raw))
            except msgspec.DecodeError:
                continue
    return lines


def _request_lines(served: Served) -> list[dict[str, Any]]:
    _, err = served.output_so_far()
    return [line for line in _json_lines(err) if "request_id" in line]


def _suspicious(client: httpx.Client, url: str) -> int:
    count: int = client.get(f"{url}/health").json()["checks"]["security"]["suspicious_requests"]
    return count


def _demo(tmp_path: Path, **env: str) -> Any:
    port = free_port()
    return serving(
        ["demo", "--port", str(port)],
        port=port,
        env=cli_env(TRUSTED_HOSTS=HOSTS, **env),
        cwd=tmp_path,
    )


def test_sqlmap_on_the_demo_counts_once_and_logs_one_warning(tmp_path: Path) -> None:
    with _demo(tmp_path) as served, _client() as client:
        before = _suspicious(client, served.url)
        response = client.post(
            f"{served.url}/api/calculate", json=CALCULATE, headers={"user-agent": "sqlmap/1.7"}
        )
        assert response.status_code == 200  # log mode
        after = _suspicious(client, served.url)
        served.wait_for_output("Suspicious request detected")
        request_id = response.headers["x-request-id"]
        time.sleep(0.2)  # let the writer thread flush anything else queued
        lines = _request_lines(served)
    assert after == before + 1
    warnings = [line for line in lines if line["level"] == "WARNING"]
    assert len(warnings) == 1, warnings
    (warning,) = warnings
    assert warning["message"] == "Suspicious request detected"
    assert warning["reason"] == "Suspicious user-agent: sqlmap"
    assert warning["request_id"] == request_id
    assert warning["client_ip"] == "127.0.0.1"
    assert warning["path"] == "/api/calculate"
    assert {line["path"] for line in lines if line["level"] == "INFO"} == {"/health"}


def test_block_mode_on_the_demo_answers_403(tmp_path: Path) -> None:
    with _demo(tmp_path, SUSPICIOUS_MODE="block") as served, _client() as client:
        response = client.post(
            f"{served.url}/api/calculate", json=CALCULATE, headers={"user-agent": "sqlmap/1.7"}
        )
        clean = client.post(f"{served.url}/api/calculate", json=CALCULATE)
        security = client.get(f"{served.url}/health").json()["checks"]["security"]
    assert response.status_code == 403
    assert response.json() == {"error": "suspicious_blocked", "message": "Request blocked."}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert clean.status_code == 200
    assert security["suspicious_requests"] == 1
    assert security["blocked_by_reason"]["suspicious_blocked"] == 1


def test_obrien_and_select_a_plan_pass_and_double_encoded_traversal_is_flagged(
    tmp_path: Path,
) -> None:
    with _demo(tmp_path, SUSPICIOUS_MODE="block") as served, _client() as client:
        obrien = client.get(f"{served.url}/health?q=O'Brien")
        plan = client.get(f"{served.url}/health", params={"q": "select a plan"})
        assert _suspicious(client, served.url) == 0
        # httpx would re-encode a params value; the raw query goes in the URL as typed
        traversal = client.get(f"{served.url}/health?file=..%252f..%252fetc%252fpasswd")
        assert _suspicious(client, served.url) == 1
    assert obrien.status_code == 200
    assert plan.status_code == 200
    assert traversal.status_code == 403


def _secret_calls(client: httpx.Client, url: str) -> None:
    secret = {"authorization": "Bearer S3CR3T"}
    client.get(f"{url}/health", headers=secret)  # an ordinary request
    client.get(f"{url}/health", headers={**secret, "user-agent": "sqlmap/1.7"})  # a warning
    client.get(f"{url}/health", headers={**secret, "host": "evil.example"})  # a refusal
    client.get(f"{url}/health?token=S3CR3T", headers=secret)


def test_a_bearer_token_never_reaches_the_logs(tmp_path: Path) -> None:
    with _demo(tmp_path) as served, _client() as client:
        _secret_calls(client, served.url)
        served.wait_for_output('"request_id"', count=4)
    output = served.stdout + served.stderr
    assert len(_json_lines(served.stderr)) >= 4
    assert "S3CR3T" not in output


def test_log_sensitive_data_true_logs_the_token(tmp_path: Path) -> None:
    with _demo(tmp_path, LOG_SENSITIVE_DATA="true") as served, _client() as client:
        _secret_calls(client, served.url)
        served.wait_for_output('"request_id"', count=4)
    assert "Bearer S3CR3T" in served.stderr


def test_metrics_path_serves_text_a_prometheus_parser_accepts(tmp_path: Path) -> None:
    with _demo(tmp_path, METRICS_PATH="/metrics") as served, _client() as client:
        client.get(f"{served.url}/health", headers={"host": "evil.example"})
        client.get(f"{served.url}/health", headers={"user-agent": "Nikto/2.5.0"})
        response = client.get(f"{served.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["asgisec_requests"].samples[0].value >= 3
    blocked = {s.labels["reason"]: s.value for s in families["asgisec_blocked"].samples}
    assert blocked["invalid_host"] == 1
    suspicious = {s.labels["category"]: s.value for s in families["asgisec_suspicious"].samples}
    assert suspicious == {"scanner": 1}
    assert families["asgisec_overhead_seconds"].type == "histogram"


# --------------------------------------------------------------------------- Redis: the fleet


def _poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {WAIT} s")
        time.sleep(0.1)


def _answers(client: httpx.Client, url: str, status: int) -> Callable[[], bool]:
    return lambda: client.get(f"{url}/health").status_code == status


def test_a_ban_added_with_the_cli_is_enforced_by_two_processes_sharing_redis(
    tmp_path: Path, redis_url: str
) -> None:
    env = {"RATE_LIMIT_STORAGE_URI": redis_url}
    cli = cli_env(TRUSTED_HOSTS=HOSTS, **env)
    with _demo(tmp_path, **env) as one, _demo(tmp_path, **env) as two, _client() as client:
        for served in (one, two):
            assert client.get(f"{served.url}/health").status_code == 200
        added = run_cli(["bans", "add", "127.0.0.1", "--for", "1h"], env=cli, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        assert "banned 127.0.0.1" in added.stdout
        for served in (one, two):
            _poll(_answers(client, served.url, 403), f"{served.url} refusing the banned address")
            refused = client.get(f"{served.url}/api/calculate")
            assert refused.status_code == 403
            assert refused.json()["error"] == "banned"
        listed = run_cli(["bans", "list"], env=cli, cwd=tmp_path)
        assert listed.returncode == 0
        assert "127.0.0.1" in listed.stdout
        removed = run_cli(["bans", "remove", "127.0.0.1"], env=cli, cwd=tmp_path)
        assert removed.returncode == 0
        for served in (one, two):
            _poll(_answers(client, served.url, 200), f"{served.url} serving again, ban lifted")


def test_auto_ban_and_counters_are_shared_across_processes(tmp_path: Path, redis_url: str) -> None:
    env = {"RATE_LIMIT_STORAGE_URI": redis_url, "AUTO_BAN_THRESHOLD": "2"}
    with _demo(tmp_path, **env) as one, _demo(tmp_path, **env) as two, _client() as client:
        scanner = {"user-agent": "nuclei"}
        # One finding in each process: neither alone reaches the threshold of two.
        assert client.get(f"{one.url}/health", headers=scanner).status_code == 200
        assert client.get(f"{two.url}/health", headers=scanner).status_code == 200
        _poll(
            lambda: all(
                client.get(f"{served.url}/health").status_code == 403 for served in (one, two)
            ),
            "both processes banning after two findings across the fleet",
        )
    for served in (one, two):
        assert "Request blocked" in served.stderr


def test_fleet_counters_reach_health(tmp_path: Path, redis_url: str) -> None:
    env = {"RATE_LIMIT_STORAGE_URI": redis_url}
    with _demo(tmp_path, **env) as one, _demo(tmp_path, **env) as two, _client() as client:
        for _ in range(3):
            client.get(f"{one.url}/health", headers={"host": "evil.example"})
            client.get(f"{two.url}/health", headers={"host": "evil.example"})

        def fleet_sees_both() -> bool:
            fleet = client.get(f"{one.url}/health").json()["checks"]["security"].get("fleet")
            return bool(fleet) and fleet["blocked_requests"] >= 6

        _poll(fleet_sees_both, "the fleet's blocked count covering both processes")


def test_bans_cli_refuses_memory_storage_and_bad_addresses(tmp_path: Path) -> None:
    memory = run_cli(["bans", "list"], env=cli_env(), cwd=tmp_path)
    assert memory.returncode == 2
    assert "memory://" in memory.stderr
    assert "Traceback" not in memory.stderr
    bad = run_cli(
        ["bans", "add", "not-an-ip"],
        env=cli_env(RATE_LIMIT_STORAGE_URI="redis://127.0.0.1:1/0"),
        cwd=tmp_path,
    )
    assert bad.returncode == 2
    assert "not an IP address" in bad.stderr
    down = run_cli(
        ["bans", "add", "192.0.2.1", "--for", "10m"],
        env=cli_env(RATE_LIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0"),
        cwd=tmp_path,
    )
    assert down.returncode == 1
    assert "cannot reach Redis" in down.stderr
    assert "Traceback" not in down.stderr


def test_bans_cli_refuses_an_endless_duration_and_lists_any_expiry(
    tmp_path: Path, redis_url: str, redis_server: Any
) -> None:
    cli = cli_env(RATE_LIMIT_STORAGE_URI=redis_url)
    # Past what a date can say: refused as usage, nothing written (it used to be written and
    # then reported as "cannot reach Redis", exit 1, and break every later `bans list`).
    endless = run_cli(
        ["bans", "add", "192.0.2.1", "--for", "99999999999999d"], env=cli, cwd=tmp_path
    )
    assert endless.returncode == 2, endless.stderr
    assert "--for" in endless.stderr
    assert redis_server.command("ZCARD", "asgisec:v1:bans") == 0
    # A ban far past year 9999 (AUTO_BAN_DURATION has no upper bound; or written by hand)
    # is still listed, never a crash that hides every other ban.
    redis_server.command("ZADD", "asgisec:v1:bans", "1e300", "192.0.2.2", "4102444800", "192.0.2.3")
    listed = run_cli(["bans", "list"], env=cli, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "192.0.2.2" in listed.stdout
    assert "192.0.2.3\tuntil 2100-01-01T00:00:00+00:00" in listed.stdout
