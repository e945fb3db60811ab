"""Issue 2's "Done when" on the served demo: ``asgisec demo`` as a user starts it, over the wire.

One real process (``python -m asgisec demo``) on a free loopback port, httpx as the client.
Every refusal the line lists is sent, and ``/health`` must then count exactly those.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from .servers import cli_env, free_port, serving

ALLOWED = "https://app.example"
LIMIT = 3  # RATE_LIMIT_TIMESOLVE=3/minute
MAX = 1000  # MAX_REQUEST_SIZE, far below the demo's own 64 KiB cap: a 413 here is asgisec's
TIMESOLVE = {"after": "2026-06-21T00:00:00Z", "latitude": 51.48, "longitude": 0.0}
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
GUIDE_FIELDS = (
    "status",
    "blocked_requests",
    "rate_limited_requests",
    "suspicious_requests",
    "security_headers_enabled",
    "trusted_hosts_configured",
)


def _security(client: httpx.Client, url: str) -> dict[str, Any]:
    response = client.get(f"{url}/health")
    assert response.status_code == 200
    block: dict[str, Any] = response.json()["checks"]["security"]
    return block


def _cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


def _chunks(size: int, pieces: int) -> Iterator[bytes]:
    for _ in range(pieces):
        yield b"x" * size


def test_done_when_on_the_served_demo(tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(
        TRUSTED_HOSTS="127.0.0.1,localhost",
        ALLOWED_ORIGINS=ALLOWED,
        RATE_LIMIT_TIMESOLVE=f"{LIMIT}/minute",
        MAX_REQUEST_SIZE=str(MAX),
    )
    args = ["demo", "--port", str(port)]
    with (
        serving(args, port=port, env=env, cwd=tmp_path) as served,
        httpx.Client(timeout=5.0, trust_env=False) as client,
    ):
        url = served.url
        before = _security(client, url)
        assert before["blocked_requests"] == 0
        assert before["rate_limited_requests"] == 0

        # GET /health: 200, the guide's JSON and the security headers.
        health = client.get(f"{url}/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "healthy"
        for field in GUIDE_FIELDS:
            assert field in body["checks"]["security"], field
        assert body["checks"]["security"]["security_headers_enabled"] is True
        assert body["checks"]["security"]["trusted_hosts_configured"] == 2
        for name, value in SECURITY_HEADERS.items():
            assert health.headers.get_list(name) == [value], name
        assert "content-security-policy" in health.headers
        assert "strict-transport-security" not in health.headers  # plain HTTP

        # Host: evil.example → 400.
        evil = client.get(f"{url}/health", headers={"host": "evil.example"})
        assert evil.status_code == 400
        assert evil.json()["error"] == "invalid_host"

        # Preflights: the allowed origin gets 2xx and itself echoed; another gets no CORS
        # headers but Vary: Origin. Preflights never count against the route's limit.
        preflight = {"access-control-request-method": "POST"}
        for _ in range(LIMIT + 1):
            granted = client.options(
                f"{url}/api/timesolve", headers={"origin": ALLOWED, **preflight}
            )
            assert 200 <= granted.status_code < 300
            assert granted.headers.get_list("access-control-allow-origin") == [ALLOWED]
        other = client.options(
            f"{url}/api/timesolve", headers={"origin": "https://evil.example", **preflight}
        )
        assert _cors_headers(other) == []
        assert "origin" in other.headers["vary"].lower()

        # RATE_LIMIT_TIMESOLVE=3/minute: the 4th POST in the minute → 429 with Retry-After ≥ 1
        # (and the CORS grant, so the allowed page can read it).
        statuses = []
        for _ in range(LIMIT + 1):
            reply = client.post(f"{url}/api/timesolve", json=TIMESOLVE, headers={"origin": ALLOWED})
            statuses.append(reply.status_code)
        assert statuses == [200] * LIMIT + [429]
        assert int(reply.headers["retry-after"]) >= 1
        assert reply.headers["access-control-allow-origin"] == ALLOWED

        # Bodies over MAX_REQUEST_SIZE, declared or chunked → asgisec's 413.
        declared = client.post(
            f"{url}/api/calculate",
            content=b"x" * (MAX + 1),
            headers={"content-type": "application/json"},
        )
        chunked = client.post(
            f"{url}/api/calculate",
            content=_chunks(600, 2),  # no Content-Length: Transfer-Encoding: chunked
            headers={"content-type": "application/json"},
        )
        for refused in (declared, chunked):
            assert refused.status_code == 413
            assert refused.json() == {
                "error": "too_large",
                "message": f"Request body larger than {MAX} bytes.",
            }
            assert refused.headers["x-content-type-options"] == "nosniff"

        # The counters say exactly that: 1 host, 1 CORS, 2 bodies; 1 rate-limited.
        after = _security(client, url)
    assert after["blocked_requests"] == 4
    assert after["rate_limited_requests"] == 1
    assert after["suspicious_requests"] == 0
    reasons = {k: v for k, v in after["blocked_by_reason"].items() if v}
    assert reasons == {"invalid_host": 1, "cors": 1, "too_large": 2}
    # Since `before` was counted: health, evil, 4 + 1 preflights, 4 posts, 2 bodies, `after`.
    sent = 1 + 1 + (LIMIT + 1) + 1 + (LIMIT + 1) + 2 + 1
    assert after["total_requests"] - before["total_requests"] == sent
    assert "Traceback" not in served.stderr


def test_the_demo_trusts_the_address_it_serves_when_no_trusted_hosts_are_set(
    tmp_path: Path,
) -> None:
    """A new user's first ``asgisec demo``, with nothing configured: ``Host: evil.example``
    is refused all the same (the demo trusts the loopback names it serves), and it says so."""
    port = free_port()
    with (
        serving(["demo", "--port", str(port)], port=port, env=cli_env(), cwd=tmp_path) as served,
        httpx.Client(timeout=5.0, trust_env=False) as client,
    ):
        url = served.url
        assert client.get(f"{url}/health").status_code == 200
        assert client.get(f"{url}/health", headers={"host": f"localhost:{port}"}).is_success
        evil = client.get(f"{url}/health", headers={"host": "evil.example"})
        assert evil.status_code == 400
        assert evil.json()["error"] == "invalid_host"
        security = _security(client, url)
        assert security["trusted_hosts_configured"] == 3
        _, stderr = served.output_so_far()
        assert "the demo trusts the address it serves (127.0.0.1,localhost,[::1])" in stderr
        assert "TRUSTED_HOSTS is empty" not in stderr


def test_the_demo_keeps_the_operators_trusted_hosts_from_the_env_file(tmp_path: Path) -> None:
    """TRUSTED_HOSTS in ./.env is the operator's choice: the demo default never overrides it."""
    (tmp_path / ".env").write_text("TRUSTED_HOSTS=api.example\n")
    port = free_port()
    with (
        serving(["demo", "--port", str(port)], port=port, env=cli_env(), cwd=tmp_path) as served,
        httpx.Client(timeout=5.0, trust_env=False) as client,
    ):
        url = served.url
        assert client.get(f"{url}/health").status_code == 400  # Host: 127.0.0.1:PORT
        assert client.get(f"{url}/health", headers={"host": "api.example"}).status_code == 200
        _, stderr = served.output_so_far()
        assert "the demo trusts" not in stderr
