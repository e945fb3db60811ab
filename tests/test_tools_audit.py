"""``asgisec audit`` against real servers on loopback, run as an operator runs it.

The demo secured (``python -m asgisec demo``), a deliberately weak app, Starlette's
CORSMiddleware (A11, A13), and a closed port. Each audit is a real ``python -m asgisec audit``
process; its JSON, SARIF and text output and its exit status are what is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgisec.tools.catalog import AUDIT_CHECKS

from .servers import REPO_ROOT, cli_env, free_port, run_cli, serving
from .tool_servers import uvicorn_serving

AUDIT_TIMEOUT = 60.0  # seconds for one audit process, probes included, on a loaded machine


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = cli_env(TRUSTED_HOSTS="127.0.0.1,localhost", RATE_LIMIT_DEFAULT="1000/minute")
    cwd = tmp_path_factory.mktemp("demo")
    with serving(["demo", "--port", str(port)], port=port, env=env, cwd=cwd) as served:
        yield served.url


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with uvicorn_serving("tests.tool_apps:weak_app", cwd=tmp_path_factory.mktemp("weak")) as url:
        yield url


def audit(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(["audit", *args], env=env or cli_env(), cwd=cwd, timeout=AUDIT_TIMEOUT)


def audit_json(*args: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    done = audit(*args, "--format", "json", cwd=cwd)
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


def finding(report: dict[str, Any], check_id: str) -> dict[str, Any] | None:
    return next((f for f in report["findings"] if f["id"] == check_id), None)


def status(report: dict[str, Any], check_id: str) -> str:
    return str(next(c["status"] for c in report["checks"] if c["id"] == check_id))


# --------------------------------------------------------------------------- the demo


def test_demo_scores_an_a_over_plain_http_and_reports_https(demo: str, tmp_path: Path) -> None:
    code, report = audit_json(demo, cwd=tmp_path)
    assert report["schema"] == "asgisec.audit/1"
    assert report["scoring"]["algorithm"] == "MDN HTTP Observatory"
    assert report["scoring"]["algorithm_version"] == 4
    assert report["score"] >= 90
    assert report["grade"].startswith("A")
    assert report["scoring"]["scope"] == "http-only"
    tests = {t["name"]: t for t in report["scoring"]["tests"]}
    assert tests["strict-transport-security"]["scored"] is False
    assert tests["strict-transport-security"]["result"] == "hsts-not-implemented-no-https"
    assert tests["redirection"]["scored"] is False
    # HTTPS is reported as such, not hidden (info: a loopback target sits behind a proxy).
    https = finding(report, "https.not-served")
    assert https is not None
    assert https["severity"] == "info"
    for check_id in ("cors.credentialed-reflection", "disclosure.traceback", "xfo.missing"):
        assert status(report, check_id) == "pass", check_id
    assert status(report, "ratelimit.not-enforced") == "skipped"  # active probes are opt-in
    assert {c["id"] for c in report["checks"]} == set(AUDIT_CHECKS)
    assert code == 0
    assert report["passed"] is True


def test_demo_rate_limit_probe_sees_429_with_retry_after(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(TRUSTED_HOSTS="127.0.0.1", RATE_LIMIT_DEFAULT="15/minute")
    with serving(["demo", "--port", str(port)], port=port, env=env, cwd=tmp_path) as served:
        code, report = audit_json(
            served.url, "--probe-rate-limit", "--probe-requests", "40", cwd=tmp_path
        )
    assert status(report, "ratelimit.not-enforced") == "pass"
    assert status(report, "ratelimit.no-retry-after") == "pass"
    detail = next(c["detail"] for c in report["checks"] if c["id"] == "ratelimit.not-enforced")
    assert detail.startswith("429 after ")
    assert int(detail.split()[2]) <= 40
    assert code == 0


def test_min_score_fails_the_demo_above_its_score(demo: str, tmp_path: Path) -> None:
    code, report = audit_json(demo, "--min-score", "200", cwd=tmp_path)
    assert report["passed"] is False
    assert code == 1


def test_url_defaults_to_engine_base_url(demo: str, tmp_path: Path) -> None:
    done = audit("--format", "json", cwd=tmp_path, env=cli_env(ENGINE_BASE_URL=demo))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["target"] == demo
    missing = audit(
        cwd=tmp_path, env={k: v for k, v in cli_env().items() if k != "ENGINE_BASE_URL"}
    )
    assert missing.returncode == 2
    assert "ENGINE_BASE_URL" in missing.stderr


def test_security_audit_script_wraps_the_command(demo: str, tmp_path: Path) -> None:
    script = REPO_ROOT / "scripts" / "security_audit.sh"
    assert os.access(script, os.X_OK)
    env = cli_env(ENGINE_BASE_URL=demo, PYTHON=sys.executable)
    done = subprocess.run(
        [str(script), "--format", "json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["target"] == demo
    assert report["score"] >= 90


# --------------------------------------------------------------------------- the weak app


def test_weak_app_fails_with_credentialed_reflection_and_disclosure(
    weak: str, tmp_path: Path
) -> None:
    code, report = audit_json(weak, cwd=tmp_path)
    assert code == 1
    assert report["passed"] is False
    reflection = finding(report, "cors.credentialed-reflection")
    assert reflection is not None
    assert reflection["severity"] == "critical"
    assert "null" in reflection["detail"]  # the Observatory's origin probe misses `null` (A11)
    assert "https://evil.example" in reflection["detail"]
    assert finding(report, "cors.null-origin") is not None
    assert finding(report, "cors.preflight-permissive") is not None
    for check_id in (
        "disclosure.traceback",
        "disclosure.server-version",
        "disclosure.x-powered-by",
    ):
        assert finding(report, check_id) is not None, check_id
    assert finding(report, "disclosure.path-traversal") is not None
    for check_id in ("csp.missing", "xfo.missing", "xcto.missing", "cookies.no-httponly"):
        assert finding(report, check_id) is not None, check_id
    tests = {t["name"]: t["result"] for t in report["scoring"]["tests"]}
    assert tests["cross-origin-resource-sharing"] == (
        "cross-origin-resource-sharing-implemented-with-universal-access"
    )
    # 100 - 25 (CSP) - 50 (CORS) - 40 (session cookie, plain HTTP) - 5 - 20 → clamped to 0
    assert (report["score"], report["grade"]) == (0, "F")
    severities = [f["severity"] for f in report["findings"]]
    order = ["critical", "high", "medium", "low", "info"]
    assert severities == sorted(severities, key=order.index)  # worst first


def test_a18_traversal_probe_is_sent_encoded(weak: str, tmp_path: Path) -> None:
    """httpx normalises a literal /../ away, so that probe would test nothing (A18)."""
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        normalised = client.get(weak + "/static/../../../../etc/passwd")
        encoded = client.get(weak + "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    assert normalised.request.url.raw_path == b"/etc/passwd"
    assert "root:x:0:0" not in normalised.text
    assert "root:x:0:0" in encoded.text
    _, report = audit_json(weak, cwd=tmp_path)
    traversal = finding(report, "disclosure.path-traversal")
    assert traversal is not None
    assert "%2e%2e" in traversal["detail"]


def test_weak_app_fails_the_rate_limit_probe(weak: str, tmp_path: Path) -> None:
    _, report = audit_json(
        weak, "--probe-rate-limit", "--probe-requests", "20", "--probe-rate", "100", cwd=tmp_path
    )
    found = finding(report, "ratelimit.not-enforced")
    assert found is not None
    assert found["detail"] == "20 requests, no 429"


def test_fail_on_critical_still_fails_the_weak_app(weak: str, tmp_path: Path) -> None:
    code, _ = audit_json(weak, "--fail-on", "critical", cwd=tmp_path)
    assert code == 1


def test_sarif_output(weak: str, tmp_path: Path) -> None:
    done = audit(weak, "--format", "sarif", cwd=tmp_path)
    assert done.returncode == 1
    sarif = json.loads(done.stdout)
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rules == list(AUDIT_CHECKS)
    assert run["results"]
    for item in run["results"]:
        assert rules[item["ruleIndex"]] == item["ruleId"]
        assert item["level"] in ("error", "warning", "note")
        assert item["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith(weak)
    by_rule = {item["ruleId"]: item for item in run["results"]}
    assert by_rule["cors.credentialed-reflection"]["level"] == "error"


def test_text_report_names_score_findings_and_top_fixes(weak: str, tmp_path: Path) -> None:
    done = audit(weak, cwd=tmp_path)
    assert done.returncode == 1
    out = done.stdout
    assert "Score 0 [F]" in out
    assert "MDN HTTP Observatory algorithm v4" in out
    assert "cors.credentialed-reflection" in out
    assert "Top fixes" in out
    assert "FAIL" in out


# --------------------------------------------------------------------------- Starlette (A11, A13)


def test_a11_starlette_wildcard_with_credentials_is_critical(tmp_path: Path) -> None:
    with uvicorn_serving("tests.tool_apps:starlette_star", cwd=tmp_path) as url:
        code, report = audit_json(url, cwd=tmp_path)
    reflection = finding(report, "cors.credentialed-reflection")
    assert reflection is not None
    assert "null" in reflection["detail"]
    assert code == 1


def test_a13_starlette_listed_origin_is_not_a_finding(tmp_path: Path) -> None:
    with uvicorn_serving("tests.tool_apps:starlette_listed", cwd=tmp_path) as url:
        with httpx.Client(trust_env=False) as client:
            evil = client.get(url + "/", headers={"origin": "https://evil.example"})
        assert evil.headers.get("access-control-allow-credentials") == "true"
        assert "access-control-allow-origin" not in evil.headers
        _, report = audit_json(url, cwd=tmp_path)
    for check_id in ("cors.credentialed-reflection", "cors.origin-reflection", "cors.null-origin"):
        assert status(report, check_id) == "pass", check_id


# --------------------------------------------------------------------------- hostile targets


def test_cookies_are_never_sent_back_and_a_non_ascii_cookie_is_no_crash(tmp_path: Path) -> None:
    """Each probe stands alone: a cookie the target sets is judged, never replayed.

    Replaying it both changes what later probes test (an anonymous CORS or 404 probe becomes a
    logged-in one) and, for a Latin-1 cookie value, crashed the audit with a traceback (exit 1).
    """
    with uvicorn_serving("tests.tool_apps:cookie_app", cwd=tmp_path) as url:
        done = audit(url, "--format", "json", "--probe-rate-limit", "--probe-requests", "3",
                     cwd=tmp_path)  # fmt: skip
        with httpx.Client(trust_env=False) as client:
            seen = client.get(url + "/seen").text
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr  # the target has real findings (no CSP, ...)
    report = json.loads(done.stdout)
    assert report["scoring"]["tests"][1]["name"] == "cookies"
    assert finding(report, "cookies.no-secure") is not None  # the cookie is still judged
    assert seen == ""


# --------------------------------------------------------------------------- unreachable


def test_closed_port_exits_3(tmp_path: Path) -> None:
    done = audit(f"http://127.0.0.1:{free_port()}", "--format", "json", cwd=tmp_path)
    assert done.returncode == 3
    assert done.stdout == ""
    assert "unreachable" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert audit("ftp://example.com", cwd=tmp_path).returncode == 2
    assert audit("http://127.0.0.1:1", "--fail-on", "severe", cwd=tmp_path).returncode == 2
    assert audit("http://127.0.0.1:1", "--probe-requests", "0", cwd=tmp_path).returncode == 2
