"""Done-when of issue 6, end to end: ``ALERT_THRESHOLD_SUSPICIOUS=10 asgisec monitor URL
--once`` exits non-zero after 30 sqlmap requests within the window, and 0 on a quiet service.

Detection runs in its default ``log`` mode: every sqlmap request is served and counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from .servers import cli_env, free_port, run_cli, serving

SQLMAP = "sqlmap/1.8.2#stable (https://sqlmap.org)"  # sqlmap's DEFAULT_USER_AGENT
DEMO_ENV = {"TRUSTED_HOSTS": "127.0.0.1", "RATE_LIMIT_DEFAULT": "10000/minute"}


def _monitor(url: str, cwd: Path) -> tuple[int, dict[str, object]]:
    done = run_cli(
        ["monitor", url, "--once", "--format", "json"],
        env=cli_env(ALERT_THRESHOLD_SUSPICIOUS="10"),
        cwd=cwd,
        timeout=60,
    )
    (poll,) = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return done.returncode, poll


def test_monitor_alerts_after_30_sqlmap_requests_and_not_on_a_quiet_demo(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(**DEMO_ENV)
    with serving(["demo", "--port", str(port)], port=port, env=env, cwd=tmp_path) as served:
        quiet_code, quiet = _monitor(served.url, tmp_path)
        assert quiet_code == 0, quiet
        assert quiet["alerts"] == []
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            for _ in range(30):
                response = client.get(served.url + "/", headers={"user-agent": SQLMAP})
                assert response.status_code == 200
        code, poll = _monitor(served.url, tmp_path)
    counters = poll["counters"]
    assert isinstance(counters, dict)
    assert counters["suspicious_requests"] == 30
    assert "monitor.suspicious" in [a["id"] for a in poll["alerts"]]  # type: ignore[attr-defined]
    assert code != 0
