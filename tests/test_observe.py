"""Detection, request logs, counters, metrics and containment through the ASGI shell.

Raw ASGI through tests/driver.py; log lines are read from the ``asgisec.requests`` logger with
a capturing handler (the queue handler asgisec installs keeps writing to stderr beside it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from asgisec import HostsConfig, RateLimitConfig, SecurityConfig, SecurityMiddleware
from asgisec.config import ProxyConfig, RequestConfig
from asgisec.config_observe import (
    ContainmentConfig,
    DetectionConfig,
    LoggingConfig,
    MetricsConfig,
)
from asgisec.guards_config import GuardsConfig
from asgisec.logs import LOGGER_NAME, REDACTED
from asgisec.ratelimit.memory import MemoryBackend
from tests.driver import call, make_scope

SQLMAP = [("user-agent", "sqlmap/1.7")]


class Lines(logging.Handler):
    """Every request line, decoded."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        self.raw.append(text)
        self.lines.append(msgspec.json.decode(text))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


seen_bodies: list[bytes] = []


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, records it, answers 200 with its length."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    seen_bodies.append(body)
    if scope["path"] == "/slow":
        await asyncio.sleep(0.02)
    payload = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def secured(app: Any = echo, **sections: Any) -> SecurityMiddleware:
    config = SecurityConfig(
        hosts=sections.pop("hosts", HostsConfig(trusted_hosts=("api.example",))),
        rate_limit=sections.pop("rate_limit", RateLimitConfig(rate_limit_default="none")),
        **sections,
    )
    return SecurityMiddleware(app, config, backend=MemoryBackend(clock=lambda: 0))


def block_mode() -> DetectionConfig:
    return DetectionConfig(suspicious_mode="block")


# --------------------------------------------------------------------------- detection


@pytest.mark.anyio
async def test_sqlmap_counts_exactly_once_and_writes_one_warning_line(lines: Lines) -> None:
    middleware = secured()
    before = middleware.health()["suspicious_requests"]
    response = await call(middleware, make_scope("GET", "/api/calculate", SQLMAP))
    assert response.status == 200  # log mode: the app still answers
    assert middleware.health()["suspicious_requests"] == before + 1
    assert middleware.counters.by_category == {"scanner": 1}
    warnings = [line for line in lines.lines if line["level"] == "WARNING"]
    assert len(warnings) == 1
    assert len(lines.lines) == 1  # one line per request: the warning is that line
    line = warnings[0]
    assert line["message"] == "Suspicious request detected"
    assert line["reason"] == "Suspicious user-agent: sqlmap"
    assert line["request_id"] == response.header("x-request-id")
    assert line["client_ip"] == "203.0.113.7"
    assert line["path"] == "/api/calculate"
    assert line["action"] == "logged"
    assert line["status"] == 200


@pytest.mark.anyio
async def test_block_mode_answers_a_decorated_403_and_the_app_never_runs(lines: Lines) -> None:
    middleware = secured(detection=block_mode())
    seen_bodies.clear()
    response = await call(middleware, make_scope("GET", "/api/calculate", SQLMAP))
    assert response.status == 403
    assert response.json() == {"error": "suspicious_blocked", "message": "Request blocked."}
    assert response.header("x-content-type-options") == "nosniff"
    assert response.header("x-request-id")
    assert seen_bodies == []
    snapshot = middleware.counters.snapshot()
    assert snapshot["suspicious_requests"] == 1
    assert snapshot["blocked_by_reason"]["suspicious_blocked"] == 1
    (line,) = lines.lines
    assert (line["level"], line["action"], line["status"]) == ("WARNING", "blocked", 403)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "qs", [b"q=O%27Brien", b"q=O'Brien", b"q=select+a+plan", b"q=select%20a%20plan"]
)
async def test_done_when_benign_queries_are_not_flagged(lines: Lines, qs: bytes) -> None:
    middleware = secured(detection=block_mode())
    response = await call(middleware, make_scope("GET", "/api/search", query=qs))
    assert response.status == 200
    assert middleware.counters.suspicious == 0
    assert [line["level"] for line in lines.lines] == ["INFO"]


@pytest.mark.anyio
async def test_done_when_double_encoded_traversal_is_flagged(lines: Lines) -> None:
    middleware = secured()
    qs = b"file=..%252f..%252fetc%252fpasswd"
    await call(middleware, make_scope("GET", "/api/files", query=qs))
    assert middleware.counters.by_category == {"traversal": 1}
    assert lines.lines[0]["reason"] == "Path traversal or file probe in query parameter 'file'"


@pytest.mark.anyio
async def test_a_json_body_is_scanned_and_then_given_to_the_app_whole(lines: Lines) -> None:
    middleware = secured()
    seen_bodies.clear()
    body = msgspec.json.encode({"comment": "<script>alert(1)</script>"})
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    chunks = [body[:10], body[10:]]
    response = await call(middleware, make_scope("POST", "/api/items", headers), chunks)
    assert response.status == 200
    assert seen_bodies == [body]
    assert middleware.counters.by_category == {"xss": 1}
    assert lines.lines[0]["reason"] == "Cross-site scripting in JSON field 'comment'"
    blocked = secured(detection=block_mode())
    response = await call(blocked, make_scope("POST", "/api/items", headers), chunks)
    assert response.status == 403


@pytest.mark.anyio
async def test_a_body_past_the_scan_limit_is_not_scanned_but_still_delivered() -> None:
    middleware = secured(detection=DetectionConfig(suspicious_body_limit=32))
    seen_bodies.clear()
    body = b"comment=%3Cscript%3E" + b"x" * 100
    headers = [("content-type", "application/x-www-form-urlencoded")]  # chunked: no length
    response = await call(middleware, make_scope("POST", "/f", headers), [body[:20], body[20:]])
    assert response.status == 200
    assert seen_bodies == [body]
    assert middleware.counters.suspicious == 0


@pytest.mark.anyio
async def test_scanned_bodies_still_obey_the_body_limit() -> None:
    middleware = secured(request=RequestConfig(max_request_size=50))
    body = b'{"a": "' + b"x" * 60 + b'"}'
    headers = [("content-type", "application/json")]
    response = await call(middleware, make_scope("POST", "/f", headers), [body[:30], body[30:]])
    assert response.status == 413


@pytest.mark.anyio
async def test_a_scanned_body_is_read_under_the_request_timeout(lines: Lines) -> None:
    """A client that stalls in a JSON body gets the 504 it gets for any other body (the scan
    reads it before the app, but not outside REQUEST_TIMEOUT), and the wait is not asgisec's."""
    middleware = secured(guards=GuardsConfig(request_timeout=0.05, max_concurrent_requests=1))
    seen_bodies.clear()
    pending = [{"type": "http.request", "body": b'{"comment": "hel', "more_body": True}]
    sent: list[dict[str, Any]] = []

    async def stalling() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)  # the rest of the body never comes
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [("content-type", "application/json"), ("content-length", "40")]
    await asyncio.wait_for(middleware(make_scope("POST", "/f", headers), stalling, send), 5)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [504]
    assert middleware.counters.blocked["timeout"] == 1
    assert seen_bodies == []
    assert middleware.slots is not None
    assert middleware.slots.in_use == 0
    (line,) = lines.lines
    assert (line["status"], line["reason"]) == (504, "timeout")
    assert line["duration_ms"] - line["overhead_ms"] >= 50  # waiting for the client
    response = await call(middleware, make_scope())  # the slot is free again
    assert response.status == 200


# --------------------------------------------------------------------------- logs


@pytest.mark.anyio
async def test_every_request_is_one_json_line_with_the_issue_fields(lines: Lines) -> None:
    middleware = secured()
    await call(middleware, make_scope("GET", "/slow", [("user-agent", "curl/8.5.0")]))
    await call(middleware, make_scope(host="evil.example"))
    ok, refused = lines.lines
    for field in (
        "timestamp", "level", "message", "request_id", "client_ip", "method", "path",
        "status", "duration_ms", "bytes", "user_agent",
    ):  # fmt: skip
        assert field in ok, field
    assert (ok["level"], ok["message"], ok["status"], ok["bytes"]) == ("INFO", "Request", 200, 11)
    assert ok["user_agent"] == "curl/8.5.0"
    assert "reason" not in ok
    # asgisec's own time excludes the app's (which slept 20 ms).
    assert ok["duration_ms"] - ok["overhead_ms"] >= 20
    assert refused["level"] == "WARNING"
    assert (refused["message"], refused["reason"], refused["status"]) == (
        "Request blocked",
        "invalid_host",
        400,
    )


def _secret_request() -> dict[str, Any]:
    return make_scope(
        "GET",
        "/api/calculate",
        [
            ("authorization", "Bearer S3CR3T"),
            ("cookie", "session=S3CR3T"),
            ("x-api-key", "S3CR3T"),
            ("user-agent", "sqlmap/1.7"),  # a warning line: the one that carries headers
        ],
        query=b"token=S3CR3T&api_key=S3CR3T&password=S3CR3T&q=fine",
    )


@pytest.mark.anyio
async def test_secrets_never_reach_a_log_line_by_default(lines: Lines) -> None:
    middleware = secured()
    await call(middleware, _secret_request())
    await call(middleware, make_scope(headers=[("authorization", "Bearer S3CR3T")]))
    assert len(lines.raw) == 2
    assert all("S3CR3T" not in raw for raw in lines.raw)
    warning = lines.lines[0]
    assert warning["headers"]["authorization"] == REDACTED
    assert warning["headers"]["cookie"] == REDACTED
    assert warning["headers"]["x-api-key"] == REDACTED
    assert warning["headers"]["user-agent"] == "sqlmap/1.7"
    assert warning["query"] == f"token={REDACTED}&api_key={REDACTED}&password={REDACTED}&q=fine"


@pytest.mark.anyio
async def test_secrets_in_the_referer_and_other_secret_names_are_redacted_too(
    lines: Lines,
) -> None:
    """An OAuth redirect's page carries its token in the URL, and the browser sends that URL
    as the Referer of the next request; a JWT travels as ?jwt=; Cookie2 is a cookie."""
    middleware = secured()
    referer = "https://app.example/callback?state=ok&access_token=S3CR3T&code=S3CR3T#x"
    headers = [*SQLMAP, ("referer", referer), ("cookie2", "S3CR3T")]
    await call(middleware, make_scope(headers=headers, query=b"jwt=S3CR3T&bearer=S3CR3T&q=1"))
    (raw,) = lines.raw
    assert "S3CR3T" not in raw
    (line,) = lines.lines
    assert line["headers"]["referer"] == (
        f"https://app.example/callback?state=ok&access_token={REDACTED}&code={REDACTED}#x"
    )
    assert line["headers"]["cookie2"] == REDACTED
    assert line["query"] == f"jwt={REDACTED}&bearer={REDACTED}&q=1"
    sensitive = secured(logging=LoggingConfig(log_sensitive_data=True))
    await call(sensitive, make_scope(headers=headers))
    assert lines.lines[-1]["headers"]["referer"] == referer


@pytest.mark.anyio
async def test_log_sensitive_data_logs_them_as_sent(lines: Lines) -> None:
    middleware = secured(logging=LoggingConfig(log_sensitive_data=True))
    await call(middleware, _secret_request())
    (line,) = lines.lines
    assert line["headers"]["authorization"] == "Bearer S3CR3T"
    assert "token=S3CR3T" in line["query"]


@pytest.mark.anyio
async def test_request_logging_off_writes_nothing(lines: Lines) -> None:
    middleware = secured(logging=LoggingConfig(enable_request_logging=False))
    await call(middleware, make_scope(headers=SQLMAP))
    assert lines.lines == []
    assert middleware.counters.suspicious == 1  # counting does not depend on logging


@pytest.mark.anyio
async def test_a_failing_log_handler_never_breaks_a_response() -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise OSError("disk full")

    broken = Broken()
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(broken)
    try:
        middleware = secured()
        response = await call(middleware, make_scope(headers=SQLMAP))
        assert response.status == 200
        refused = await call(middleware, make_scope(host="evil.example"))
        assert refused.status == 400
    finally:
        logger.removeHandler(broken)


FORKED_WORKER = textwrap.dedent(
    """
    import logging, os, time
    from asgisec.logs import RequestLog

    log = RequestLog(enabled=True, sensitive=False)  # built before the fork, as with --preload
    pid = os.fork()
    if pid == 0:
        log.emit(logging.INFO, {"message": "Request", "who": "child"})
        time.sleep(0.5)  # the writer's batch interval is 10 ms
        os._exit(0)  # no atexit in a forked worker killed by its master
    os.waitpid(pid, 0)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_worker_forked_after_start_up_still_writes_its_request_lines() -> None:
    """gunicorn --preload builds the app (and asgisec's log writer) and then forks workers;
    a thread does not survive a fork, so without a writer of their own their lines would
    queue up unwritten for ever."""
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKER],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [msgspec.json.decode(line) for line in done.stderr.splitlines() if line.strip()]
    assert [line["who"] for line in lines] == ["child"]


# --------------------------------------------------------------------------- counters, health


@pytest.mark.anyio
async def test_health_gains_rates_percentiles_and_degrades_past_the_threshold() -> None:
    middleware = secured(metrics=MetricsConfig(health_blocked_rate_threshold=0.5))
    for _ in range(10):
        await call(middleware, make_scope())
    health = middleware.health()
    assert health["status"] == "healthy"
    assert health["total_requests"] == 10
    assert health["blocked_rate"] == 0.0
    assert 0 < health["overhead_ms_p50"] <= health["overhead_ms_p99"]
    for _ in range(15):
        await call(middleware, make_scope(host="evil.example"))
    health = middleware.health()
    assert health["blocked_rate"] == round(15 / 25, 4)
    assert health["status"] == "degraded"
    assert health["blocked_by_reason"]["invalid_host"] == 15
    # the guide's block is still all there
    for key in ("blocked_requests", "rate_limited_requests", "suspicious_requests",
                "security_headers_enabled", "trusted_hosts_configured"):  # fmt: skip
        assert key in health


@pytest.mark.anyio
async def test_overhead_threshold_degrades_health() -> None:
    tiny = MetricsConfig(health_overhead_threshold_ms=0.000001)
    middleware = secured(metrics=tiny)
    for _ in range(19):
        await call(middleware, make_scope())
    assert middleware.health()["status"] == "healthy"  # under 20 requests: no verdict yet
    await call(middleware, make_scope())
    assert middleware.health()["status"] == "degraded"


# --------------------------------------------------------------------------- metrics


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


@pytest.mark.anyio
async def test_metrics_path_serves_prometheus_text_to_allowed_clients_only() -> None:
    middleware = secured(metrics=MetricsConfig(metrics_path="/metrics"))
    await call(middleware, make_scope())
    await call(middleware, make_scope(host="evil.example"))
    await call(middleware, make_scope(headers=SQLMAP))
    seen_bodies.clear()
    local = make_scope("GET", "/metrics", client=("127.0.0.1", 5000))
    response = await call(middleware, local)
    assert response.status == 200
    assert response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    assert response.header("x-content-type-options") == "nosniff"
    assert seen_bodies == []  # answered by asgisec
    families = _families(response.body.decode())
    requests = families["asgisec_requests"]
    assert requests.type == "counter"
    assert requests.samples[0].value == 4  # the scrape itself counts
    blocked = {s.labels["reason"]: s.value for s in families["asgisec_blocked"].samples}
    assert blocked["invalid_host"] == 1
    assert blocked["rate_limited"] == 0
    assert {s.labels["category"]: s.value for s in families["asgisec_suspicious"].samples} == {
        "scanner": 1
    }
    histogram = families["asgisec_overhead_seconds"]
    assert histogram.type == "histogram"
    buckets = [s for s in histogram.samples if s.name.endswith("_bucket")]
    values = [s.value for s in buckets]
    assert values == sorted(values)
    assert buckets[-1].labels["le"] == "+Inf"
    assert buckets[-1].value == 3  # the scrape is observed when it ends
    # anyone else: the path does not exist
    outsider = await call(middleware, make_scope("GET", "/metrics"))
    assert outsider.status == 404
    assert b"asgisec" not in outsider.body
    ipv6 = await call(middleware, make_scope("GET", "/metrics", client=("::1", 5000)))
    assert ipv6.status == 200


@pytest.mark.anyio
async def test_metrics_are_off_by_default() -> None:
    middleware = secured()
    seen_bodies.clear()
    response = await call(middleware, make_scope("GET", "/metrics", client=("127.0.0.1", 1)))
    assert response.status == 200
    assert seen_bodies == [b""]  # the app's own /metrics, if it has one


# --------------------------------------------------------------------------- containment


@pytest.mark.anyio
async def test_blocked_ips_are_refused_before_anything_else() -> None:
    containment = ContainmentConfig(blocked_ips=("198.51.100.0/24", "2001:db8::/32", "192.0.2.7"))
    middleware = secured(containment=containment)
    seen_bodies.clear()
    for client in ("198.51.100.9", "2001:db8::1", "192.0.2.7"):
        response = await call(middleware, make_scope(client=(client, 1), host="evil.example"))
        assert response.status == 403, client
        assert response.json()["error"] == "banned"
        assert response.header("x-frame-options") == "DENY"
    assert seen_bodies == []
    assert middleware.counters.blocked["banned"] == 3
    assert middleware.counters.blocked["invalid_host"] == 0  # the ban came first
    ok = await call(middleware, make_scope(client=("192.0.2.8", 1)))
    assert ok.status == 200


@pytest.mark.anyio
async def test_blocklist_uses_the_resolved_client_behind_a_trusted_proxy() -> None:
    middleware = secured(
        proxies=ProxyConfig(trusted_proxies=("10.0.0.1",)),
        containment=ContainmentConfig(blocked_ips=("203.0.113.50",)),
    )
    forwarded = [("x-forwarded-for", "203.0.113.50")]
    via_proxy = await call(middleware, make_scope(headers=forwarded, client=("10.0.0.1", 1)))
    assert via_proxy.status == 403
    # a client talking directly cannot pin the blame on someone else
    direct = await call(middleware, make_scope(headers=forwarded, client=("192.0.2.1", 1)))
    assert direct.status == 200


@pytest.mark.anyio
async def test_auto_ban_after_threshold_suspicious_requests_within_the_window() -> None:
    containment = ContainmentConfig(auto_ban_threshold=3, auto_ban_window=60, auto_ban_duration=60)
    middleware = secured(containment=containment)
    attacker = ("203.0.113.66", 1)
    for _ in range(3):
        response = await call(middleware, make_scope(headers=SQLMAP, client=attacker))
        assert response.status == 200  # log mode: served, but counted
    banned = await call(middleware, make_scope(client=attacker))  # even a clean request
    assert banned.status == 403
    assert banned.json()["error"] == "banned"
    bystander = await call(middleware, make_scope(client=("203.0.113.67", 1)))
    assert bystander.status == 200
    assert middleware.health()["banned_clients"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("seen_as", "banned_as"),
    [
        ("::ffff:203.0.113.66", "203.0.113.66"),  # a dual-stack server ([::]) names IPv4 so
        ("203.0.113.66", "::ffff:203.0.113.66"),
        ("2001:DB8:0:0::66", "2001:db8::66"),  # and an address in any of its spellings
    ],
)
async def test_a_ban_holds_for_every_spelling_of_the_address(seen_as: str, banned_as: str) -> None:
    middleware = secured()
    middleware.observer.bans.ban(banned_as, time.time() + 60)
    refused = await call(middleware, make_scope(client=(seen_as, 1)))
    assert refused.status == 403
    assert refused.json()["error"] == "banned"
    other = await call(middleware, make_scope(client=("::ffff:203.0.113.67", 1)))
    assert other.status == 200


@pytest.mark.anyio
async def test_auto_ban_takes_effect_for_clients_a_dual_stack_server_names_ipv4_mapped() -> None:
    containment = ContainmentConfig(auto_ban_threshold=2, auto_ban_window=60, auto_ban_duration=60)
    middleware = secured(containment=containment)
    attacker = ("::ffff:203.0.113.66", 1)
    for _ in range(2):
        await call(middleware, make_scope(headers=SQLMAP, client=attacker))
    banned = await call(middleware, make_scope(client=attacker))
    assert banned.status == 403
    assert middleware.health()["banned_clients"] == 1


@pytest.mark.anyio
async def test_a_shared_auto_ban_is_stored_under_the_address_the_cli_names(
    redis_url: str, redis_server: Any
) -> None:
    """Strikes and bans go to Redis in the plain spelling, so `asgisec bans remove 1.2.3.4`
    lifts the auto-ban of a client a dual-stack server named ``::ffff:1.2.3.4`` (stored as
    sent, no spelling of it could be removed), and strikes from every spelling add up."""
    middleware = secured(
        rate_limit=RateLimitConfig(rate_limit_default="none", rate_limit_storage_uri=redis_url),
        containment=ContainmentConfig(auto_ban_threshold=2, auto_ban_duration=60),
    )
    shared = middleware.observer.shared
    assert shared is not None
    try:
        for client in ("::ffff:203.0.113.66", "203.0.113.66"):
            await call(middleware, make_scope(headers=SQLMAP, client=(client, 1)))
        for _ in range(100):  # the sync task runs each second; bounded at 10 s
            if redis_server.command("ZCARD", "asgisec:v1:bans"):
                break
            await asyncio.sleep(0.1)
        assert redis_server.command("ZRANGE", "asgisec:v1:bans", 0, -1) == [b"203.0.113.66"]
        banned = await call(middleware, make_scope(client=("::ffff:203.0.113.66", 1)))
        assert banned.status == 403
    finally:
        await middleware.observer.aclose()


def test_containment_config_is_validated() -> None:
    from asgisec.errors import ConfigError

    with pytest.raises(ConfigError, match="BLOCKED_IPS"):
        SecurityConfig.from_env({"BLOCKED_IPS": "10.0.0.0/8,not-an-ip"}, env_file=None)
    with pytest.raises(ConfigError, match="METRICS_ALLOWED_IPS"):
        SecurityConfig.from_env({"METRICS_ALLOWED_IPS": "localhost"}, env_file=None)
    with pytest.raises(ConfigError, match="METRICS_PATH"):
        SecurityConfig.from_env({"METRICS_PATH": "metrics"}, env_file=None)
    with pytest.raises(ConfigError, match="SUSPICIOUS_MODE"):
        SecurityConfig.from_env({"SUSPICIOUS_MODE": "panic"}, env_file=None)
    config = SecurityConfig.from_env(
        {"AUTO_BAN_THRESHOLD": "5", "SUSPICIOUS_MODE": "BLOCK", "METRICS_PATH": "/metrics"},
        env_file=None,
    )
    assert config.containment.auto_ban_threshold == 5
    assert config.detection.suspicious_mode == "block"


@pytest.mark.anyio
async def test_a_banned_client_cannot_open_a_websocket_either() -> None:
    from tests.test_pipeline import WsRecorder, ws_app, ws_scope

    middleware = secured(ws_app, containment=ContainmentConfig(blocked_ips=("203.0.113.0/24",)))
    recorder = WsRecorder()
    scope = ws_scope([(b"host", b"api.example")], extension=True)
    await middleware(scope, recorder.receive, recorder.send)
    start = recorder.sent[0]
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 403
    assert b'"banned"' in recorder.sent[1]["body"]
    assert middleware.counters.blocked["banned"] == 1
    allowed = secured(ws_app)
    recorder = WsRecorder()
    await allowed(scope, recorder.receive, recorder.send)
    assert recorder.sent[0]["type"] == "websocket.accept"
