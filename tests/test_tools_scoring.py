"""The Observatory's grading (algorithm v4) from recorded response headers.

Each case is a set of headers as a server sent them; the expected results and modifiers are
the published algorithm's (mdn/mdn-http-observatory ``src/grader/charts.js`` and
``src/scanner/index.js``), except the deliberate differences named in
``asgisec.tools.scoring`` (A1, A3), which have their own tests.
"""

# ruff: noqa: E501 - the case tables read best one case per line
from __future__ import annotations

import pytest

from asgisec.tools.findings import api_findings
from asgisec.tools.observed import Hop, Observation, Response
from asgisec.tools.scoring import (
    ALGORITHM_VERSION,
    GRADES,
    CspError,
    grade,
    grade_for,
    parse_csp,
)

HTTPS_URL = "https://api.example.com/"
REDIRECT = [Hop("http://api.example.com/", 301), Hop(HTTPS_URL, 200)]

ASGISEC_DEFAULTS = [
    ("content-type", "application/json"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("permissions-policy", "camera=(), geolocation=()"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("cache-control", "no-store"),
]
HSTS = ("strict-transport-security", "max-age=31536000; includeSubDomains")


def observed(
    headers: list[tuple[str, str]],
    *,
    url: str = HTTPS_URL,
    verified: bool = True,
    route: list[Hop] | None = REDIRECT,
    cors: list[tuple[str, str]] | None = None,
    body: str = "",
) -> Observation:
    main = Response(url=url, status=200, headers=headers, body=body)
    https = url.startswith("https:")
    return Observation(
        target=url,
        main=main,
        chain=[main],
        https=https,
        verified=verified,
        http_route=route if https else [Hop(url, 200)],
        http_reachable=True,
        cors=Response(url=url, status=200, headers=cors or []),
    )


def results(observation: Observation) -> dict[str, tuple[str, int]]:
    return {t.name: (t.result, t.modifier) for t in grade(observation).tests}


def test_algorithm_version_is_stated() -> None:
    assert ALGORITHM_VERSION == 4


def test_bare_app_over_https_scores_30_d() -> None:
    """No security header at all, but served over HTTPS behind a correct redirect."""
    grading = grade(observed([("content-type", "application/json")]))
    assert results(observed([("content-type", "application/json")])) == {
        "content-security-policy": ("csp-not-implemented", -25),
        "cookies": ("cookies-not-found", 0),
        "cross-origin-resource-sharing": ("cross-origin-resource-sharing-not-implemented", 0),
        "redirection": ("redirection-to-https", 0),
        "referrer-policy": ("referrer-policy-not-implemented", 0),
        "strict-transport-security": ("hsts-not-implemented", -20),
        "subresource-integrity": ("sri-not-implemented-response-not-html", 0),
        "x-content-type-options": ("x-content-type-options-not-implemented", -5),
        "x-frame-options": ("x-frame-options-not-implemented", -20),
        "cross-origin-resource-policy": ("corp-not-implemented", 0),
    }
    assert (grading.score, grading.grade, grading.scope) == (30, "D", "full")


def test_bare_app_whose_http_url_serves_content_scores_10_f() -> None:
    grading = grade(observed([("content-type", "application/json")], route=[REDIRECT[0]]))
    assert results(observed([], route=[REDIRECT[0]]))["redirection"] == ("redirection-missing", -20)
    assert (grading.score, grading.grade) == (10, "F")


def test_bare_app_over_plain_http_scores_only_what_http_can_show() -> None:
    grading = grade(observed([("content-type", "application/json")], url="http://127.0.0.1:8000/"))
    assert grading.scope == "http-only"
    unscored = {t.name for t in grading.tests if not t.scored}
    assert unscored == {"redirection", "strict-transport-security"}
    by_name = {t.name: t for t in grading.tests}
    assert by_name["strict-transport-security"].result == "hsts-not-implemented-no-https"
    assert by_name["redirection"].result == "redirection-missing"
    assert (grading.score, grading.grade) == (50, "C")  # 100 - 25 (CSP) - 5 - 20


def test_asgisec_defaults_over_https_score_a_plus_with_bonuses() -> None:
    grading = grade(observed([*ASGISEC_DEFAULTS, HSTS]))
    assert grading.uncurved_score == 100
    assert grading.bonus_applied
    # +10 CSP default-src 'none', +5 referrer, +5 XFO via frame-ancestors, +10 CORP same-origin
    assert (grading.score, grading.grade) == (130, "A+")


def test_asgisec_defaults_over_plain_http_stay_a_plus() -> None:
    grading = grade(observed(ASGISEC_DEFAULTS, url="http://127.0.0.1:8000/"))
    assert (grading.score, grading.grade, grading.scope) == (130, "A+", "http-only")


def test_a8_unsafe_inline_withholds_every_bonus() -> None:
    """A8: CSP 'unsafe-inline' (-20) with Referrer +5, cookies +5, XFO via CSP +5 → 80 B+."""
    headers = [
        ("content-type", "text/html"),
        HSTS,
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
        ("set-cookie", "session=abc; Secure; HttpOnly; SameSite=Lax"),
    ]
    table = results(observed(headers, body="<html><body>no scripts</body></html>"))
    assert table["content-security-policy"] == ("csp-implemented-with-unsafe-inline", -20)
    assert table["referrer-policy"] == ("referrer-policy-private", 5)
    assert table["cookies"] == ("cookies-secure-with-httponly-sessions-and-samesite", 5)
    assert table["x-frame-options"] == ("x-frame-options-implemented-via-csp", 5)
    grading = grade(observed(headers, body="<html><body>no scripts</body></html>"))
    assert grading.uncurved_score == 80
    assert not grading.bonus_applied
    assert (grading.score, grading.grade) == (80, "B+")  # not 95


def test_bonus_applies_from_an_uncurved_90() -> None:
    headers = [h for h in ASGISEC_DEFAULTS if h[0] != "x-content-type-options"]  # -5
    headers.append(("referrer-policy", "unsafe-url"))  # the last valid value wins: -5
    grading = grade(observed([*headers, HSTS]))
    assert grading.uncurved_score == 90
    assert grading.bonus_applied
    assert grading.score == 90 + 10 + 5 + 10  # CSP, XFO via CSP, CORP; referrer now -5


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (135, "A+"), (100, "A+"), (99, "A"), (90, "A"), (89, "A-"), (85, "A-"), (84, "B+"),
        (80, "B+"), (79, "B"), (70, "B"), (65, "B-"), (60, "C+"), (50, "C"), (45, "C-"),
        (40, "D+"), (35, "D"), (30, "D"), (25, "D-"), (24, "F"), (0, "F"), (-20, "F"),
    ],
)  # fmt: skip
def test_grade_table(score: int, expected: str) -> None:
    assert grade_for(score) == expected
    assert set(GRADES) == set(range(0, 101, 5))


# --------------------------------------------------------------------------- HSTS (A1, A3)


def _hsts(value: str) -> str:
    return results(observed([*ASGISEC_DEFAULTS, ("strict-transport-security", value)]))[
        "strict-transport-security"
    ][0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=31536000", "hsts-implemented-max-age-at-least-six-months"),
        ("max-age=15552000; includeSubDomains; preload", "hsts-implemented-max-age-at-least-six-months"),
        ("max-age=86400", "hsts-implemented-max-age-less-than-six-months"),
        ("max-age=abc", "hsts-header-invalid"),  # A1: NaN is not six months
        ("max-age=", "hsts-header-invalid"),
        ("max-age=-1", "hsts-header-invalid"),
        ("includeSubDomains", "hsts-header-invalid"),
        ("max-age=31536000, max-age=31536000", "hsts-header-invalid"),  # sent twice
        ("max-age=1; max-age=31536000", "hsts-header-invalid"),
        ("max-age=0", "hsts-disabled"),  # A3
        ('max-age="31536000"', "hsts-implemented-max-age-at-least-six-months"),
    ],
)  # fmt: skip
def test_hsts_results(value: str, expected: str) -> None:
    assert _hsts(value) == expected


def test_a1_hsts_max_age_nan_fails_as_invalid() -> None:
    observation = observed([*ASGISEC_DEFAULTS, ("strict-transport-security", "max-age=abc")])
    checks = {c.id: c for c in api_findings(observation)}
    assert checks["hsts.invalid"].status == "fail"
    assert checks["hsts.invalid"].severity == "high"
    assert checks["hsts.missing"].status == "pass"
    assert grade(observation).score < grade(observed([*ASGISEC_DEFAULTS, HSTS])).score


def test_a3_hsts_max_age_zero_is_a_distinct_disabled_result() -> None:
    observation = observed([*ASGISEC_DEFAULTS, ("strict-transport-security", "max-age=0")])
    checks = {c.id: c for c in api_findings(observation)}
    assert checks["hsts.disabled"].status == "fail"
    assert checks["hsts.invalid"].status == "pass"
    assert checks["hsts.short-max-age"].status == "pass"  # "disabled" is its own finding
    assert results(observation)["strict-transport-security"] == ("hsts-disabled", -20)


def test_hsts_with_an_invalid_certificate_does_not_count() -> None:
    observation = observed([*ASGISEC_DEFAULTS, HSTS], verified=False)
    assert results(observation)["strict-transport-security"] == ("hsts-invalid-cert", -20)


# --------------------------------------------------------------------------- CSP


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("default-src 'none'", "csp-implemented-with-no-unsafe-default-src-none"),
        ("default-src 'self'", "csp-implemented-with-no-unsafe"),
        ("default-src 'self'; script-src 'self' 'unsafe-inline'", "csp-implemented-with-unsafe-inline"),
        ("default-src 'self'; script-src 'self' data:", "csp-implemented-with-unsafe-inline"),
        ("default-src 'self'; object-src https:", "csp-implemented-with-unsafe-inline"),
        ("img-src 'self'", "csp-implemented-with-unsafe-inline"),  # script-src unrestricted
        ("default-src 'self'; script-src 'self' 'unsafe-eval'", "csp-implemented-with-unsafe-eval"),
        ("default-src 'self'; script-src 'nonce-abc' 'unsafe-inline'", "csp-implemented-with-no-unsafe"),
        ("default-src 'self'; script-src 'nonce-abc' 'strict-dynamic' https: 'unsafe-inline'", "csp-implemented-with-no-unsafe"),
        ("default-src 'self'; script-src 'strict-dynamic'", "csp-header-invalid"),
        ("default-src 'self'; style-src 'unsafe-inline'", "csp-implemented-with-unsafe-inline-in-style-src-only"),
        ("default-src 'self'; script-src http://cdn.example", "csp-implemented-with-insecure-scheme"),
        ("default-src 'self'; img-src http://img.example", "csp-implemented-with-insecure-scheme-in-passive-content-only"),
        ("default-src 'self'; default-src 'none'", "csp-header-invalid"),  # repeated
        ("a", "csp-header-invalid"),  # too short to be a policy
    ],
)  # fmt: skip
def test_csp_results(policy: str, expected: str) -> None:
    headers = [("content-security-policy", policy), HSTS]
    assert results(observed(headers))["content-security-policy"][0] == expected


def test_report_only_policy_is_not_enforced() -> None:
    observation = observed([("content-security-policy-report-only", "default-src 'none'")])
    assert results(observation)["content-security-policy"] == (
        "csp-not-implemented-but-reporting-enabled",
        -25,
    )
    checks = {c.id: c for c in api_findings(observation)}
    assert checks["csp.missing"].status == "fail"
    assert checks["csp.report-only"].status == "fail"


def test_csp_parser_keeps_only_what_every_policy_allows() -> None:
    policy = parse_csp(["default-src 'self' https://a.example; img-src", "default-src 'self'"])
    assert policy["default-src"] == {"'self'"}
    assert policy["img-src"] == {"'none'"}  # a source list with no sources is 'none'
    assert parse_csp(["default-src 'self'", "script-src https://x.example"])["script-src"] == {
        "https://x.example"
    }
    with pytest.raises(CspError):
        parse_csp(["script-src 'self'; script-src 'none'"])
    assert parse_csp(["report-uri /a; report-uri /b; default-src 'none'"])["default-src"] == {
        "'none'"
    }


# --------------------------------------------------------------------------- cookies, CORS


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        ([], "cookies-not-found"),
        (["id=1; Secure; HttpOnly; SameSite=Strict"], "cookies-secure-with-httponly-sessions-and-samesite"),
        (["id=1; Secure"], "cookies-secure-with-httponly-sessions"),
        (["id=1"], "cookies-without-secure-flag-but-protected-by-hsts"),
        (["sessionid=1; HttpOnly"], "cookies-session-without-secure-flag-but-protected-by-hsts"),
        (["sessionid=1; Secure"], "cookies-session-without-httponly-flag"),
        (["id=1; Secure; SameSite=Bogus"], "cookies-samesite-flag-invalid"),
        (["id=1; SameSite=None"], "cookies-samesite-flag-invalid"),
        (["csrftoken=1; Secure"], "cookies-anticsrf-without-samesite-flag"),
        # the worst result wins whatever the order
        (["sessionid=1; Secure", "id=1"], "cookies-session-without-httponly-flag"),
    ],
)  # fmt: skip
def test_cookie_results(cookies: list[str], expected: str) -> None:
    headers = [*ASGISEC_DEFAULTS, HSTS, *[("set-cookie", c) for c in cookies]]
    assert results(observed(headers))["cookies"][0] == expected


def test_session_cookie_without_secure_over_http_costs_40() -> None:
    headers = [*ASGISEC_DEFAULTS, ("set-cookie", "login=1; HttpOnly; SameSite=Lax")]
    table = results(observed(headers, url="http://api.example.com/"))
    assert table["cookies"] == ("cookies-session-without-secure-flag", -40)


def test_a11_credentialed_reflection_costs_50_and_is_critical() -> None:
    """A11, as recorded from Starlette CORSMiddleware(allow_origins=["*"], allow_credentials)."""
    reflected = [
        ("access-control-allow-origin", "https://evil.example"),
        ("access-control-allow-credentials", "true"),
        ("vary", "Origin"),
    ]
    observation = observed([*ASGISEC_DEFAULTS, HSTS], cors=reflected)
    assert results(observation)["cross-origin-resource-sharing"] == (
        "cross-origin-resource-sharing-implemented-with-universal-access",
        -50,
    )
    checks = {c.id: c for c in api_findings(observation)}
    assert checks["cors.credentialed-reflection"].status == "fail"
    assert checks["cors.credentialed-reflection"].severity == "critical"


def test_a13_credentials_without_a_reflected_origin_pass() -> None:
    """A13: Starlette with one listed origin sends ACAC: true and no ACAO to others."""
    observation = observed(
        [*ASGISEC_DEFAULTS, HSTS], cors=[("access-control-allow-credentials", "true")]
    )
    assert results(observation)["cross-origin-resource-sharing"][0] == (
        "cross-origin-resource-sharing-not-implemented"
    )
    checks = {c.id: c for c in api_findings(observation)}
    assert checks["cors.credentialed-reflection"].status == "pass"
    assert checks["cors.origin-reflection"].status == "pass"


def test_public_wildcard_is_not_penalised() -> None:
    observation = observed([*ASGISEC_DEFAULTS, HSTS], cors=[("access-control-allow-origin", "*")])
    assert results(observation)["cross-origin-resource-sharing"][1] == 0
    assert {c.id: c.status for c in api_findings(observation)}["cors.wildcard"] == "fail"


# --------------------------------------------------------------------------- SRI, referrer


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<p>no scripts</p>", "sri-not-implemented-but-no-scripts-loaded"),
        ('<script src="/app.js"></script>', "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"),
        ('<script src="https://cdn.example/x.js"></script>', "sri-not-implemented-but-external-scripts-loaded-securely"),
        ('<script src="https://cdn.example/x.js" integrity="sha384-x"></script>', "sri-implemented-and-external-scripts-loaded-securely"),
        ('<script src="http://cdn.example/x.js"></script>', "sri-not-implemented-and-external-scripts-not-loaded-securely"),
        ('<script src="//cdn.example/x.js" integrity="sha384-x"></script>', "sri-implemented-but-external-scripts-not-loaded-securely"),
    ],
)  # fmt: skip
def test_sri_results(body: str, expected: str) -> None:
    headers = [("content-type", "text/html; charset=utf-8"), *ASGISEC_DEFAULTS[1:], HSTS]
    assert results(observed(headers, body=body))["subresource-integrity"][0] == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["no-referrer"], "referrer-policy-private"),
        (["unsafe-url"], "referrer-policy-unsafe"),
        (["no-referrer, unsafe-url"], "referrer-policy-unsafe"),
        (["unsafe-url", "strict-origin"], "referrer-policy-private"),
        (["bogus"], "referrer-policy-header-invalid"),
    ],
)
def test_referrer_results(values: list[str], expected: str) -> None:
    headers = [("referrer-policy", v) for v in values]
    assert results(observed(headers))["referrer-policy"][0] == expected
