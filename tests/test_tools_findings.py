"""The audit's API findings from recorded responses (cases A15, A16), and the catalogue."""

from __future__ import annotations

import pytest

from asgisec.tools.catalog import AUDIT_CHECKS, CONFIG_CHECKS, MONITOR_ALERTS
from asgisec.tools.findings import api_findings
from asgisec.tools.model import SEVERITIES, at_least
from asgisec.tools.observed import Hop, Observation, Response

URL = "https://api.example.com/"


def checks(
    headers: list[tuple[str, str]] | None = None,
    *,
    errors: list[Response] | None = None,
    url: str = URL,
) -> dict[str, tuple[str, str]]:
    main = Response(url=url, status=200, headers=headers or [])
    observation = Observation(
        target=url,
        main=main,
        chain=[main],
        https=url.startswith("https"),
        verified=True,
        http_route=[Hop("http://api.example.com/", 301), Hop(URL, 200)],
        http_reachable=True,
        errors=errors or [],
        traversal=Response(url=url + "static/%2e%2e/etc/passwd", status=404),
    )
    return {c.id: (c.status, c.severity) for c in api_findings(observation)}


@pytest.mark.parametrize(
    ("headers", "check_id", "severity"),
    [
        ([("server", "uvicorn")], "disclosure.server-banner", "info"),
        ([("server", "nginx/1.25.3")], "disclosure.server-version", "low"),
        ([("server", "Apache/2.4.58 (Ubuntu)")], "disclosure.server-version", "low"),
        ([("x-powered-by", "Express")], "disclosure.x-powered-by", "low"),
    ],
)
def test_a15_server_banners(headers: list[tuple[str, str]], check_id: str, severity: str) -> None:
    found = checks(headers)
    assert found[check_id] == ("fail", severity)
    others = {"disclosure.server-banner", "disclosure.server-version", "disclosure.x-powered-by"}
    for other in others - {check_id}:
        assert found[other][0] == "pass", other


def test_a15_no_banner_passes() -> None:
    found = checks([("content-type", "application/json")])
    assert found["disclosure.server-banner"][0] == "pass"
    assert found["disclosure.server-version"][0] == "pass"


TRACEBACK = """Traceback (most recent call last):
  File "/app/main.py", line 12, in handler
    user = users[request.user_id]
KeyError: 'user_id'
"""
STARLETTE_DEBUG = "<html><head><title>Starlette Debugger</title></head><body>...</body></html>"
DJANGO_DEBUG = (
    "<p>You're seeing this error because you have <code>DEBUG = True</code> in your Django "
    "settings file.</p>"
)


@pytest.mark.parametrize(
    ("body", "check_id"),
    [
        (TRACEBACK, "disclosure.traceback"),
        (STARLETTE_DEBUG, "disclosure.debug-page"),
        (DJANGO_DEBUG, "disclosure.debug-page"),
        ("<title>Werkzeug Debugger</title>", "disclosure.debug-page"),
    ],
)
def test_a16_debug_output_on_an_error_page_is_high(body: str, check_id: str) -> None:
    error = Response(url=URL + "missing", status=500, body=body)
    assert checks(errors=[error])[check_id] == ("fail", "high")


def test_a16_a_plain_error_body_passes() -> None:
    error = Response(url=URL + "x", status=500, body='{"error": "internal_error"}')
    found = checks(errors=[error])
    assert found["disclosure.traceback"][0] == "pass"
    assert found["disclosure.debug-page"][0] == "pass"


def test_plain_http_target_reports_https_findings_not_hides_them() -> None:
    found = checks(url="http://api.example.com/")
    assert found["https.not-served"] == ("fail", "high")
    assert found["hsts.missing"][0] == "skipped"
    local = checks(url="http://127.0.0.1:8000/")
    assert local["https.not-served"] == ("fail", "info")  # loopback: audit the public URL


def test_redirect_chain_findings() -> None:
    main = Response(url=URL, status=200)

    def route(hops: list[Hop]) -> dict[str, str]:
        observation = Observation(
            target=URL, main=main, https=True, verified=True, http_route=hops, http_reachable=True
        )
        return {c.id: c.status for c in api_findings(observation)}

    good = route([Hop("http://api.example.com/", 301), Hop(URL, 200)])
    assert good["https.redirect-missing"] == good["https.redirect-status"] == "pass"
    temporary = route([Hop("http://api.example.com/", 302), Hop(URL, 200)])
    assert temporary["https.redirect-status"] == "fail"
    off_host = route([Hop("http://api.example.com/", 301), Hop("https://www.example.com/", 200)])
    assert off_host["https.redirect-off-host"] == "fail"
    via_http = route([Hop("http://api.example.com/", 301), Hop("http://www.example.com/", 301),
                      Hop(URL, 200)])  # fmt: skip
    assert via_http["https.redirect-via-http"] == "fail"
    assert route([Hop("http://api.example.com/", 200)])["https.redirect-missing"] == "fail"


def test_every_id_is_unique_and_severities_are_known() -> None:
    ids = [*AUDIT_CHECKS, *MONITOR_ALERTS, *CONFIG_CHECKS]
    assert len(ids) == len(set(ids))
    for check in [*AUDIT_CHECKS.values(), *MONITOR_ALERTS.values(), *CONFIG_CHECKS.values()]:
        assert check.severity in SEVERITIES
        assert check.title
        assert check.fix


def test_every_audit_id_is_produced() -> None:
    """No catalogued audit id is dead: each appears in some run of the checks."""
    produced = set(checks()) | {c for c in AUDIT_CHECKS if c.startswith(("tls.", "ratelimit."))}
    assert produced == set(AUDIT_CHECKS)


def test_severity_order() -> None:
    assert at_least("critical", "high")
    assert at_least("high", "high")
    assert not at_least("medium", "high")
