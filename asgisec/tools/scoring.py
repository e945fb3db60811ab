"""The MDN HTTP Observatory's grading, applied to what an audit observed.

Algorithm version 4 of https://github.com/mdn/mdn-http-observatory: every site starts at 100;
each of ten tests yields one result with a modifier; the *uncurved* score adds only the
penalties; bonuses count only when the uncurved score is at least 90; the score is never below
0; the grade is read from the table at the score rounded down to a multiple of 5 (100+ is A+).

Deliberate differences, each a case in ``tests/test_tools_scoring.py``:

* ``max-age=abc`` is ``hsts-header-invalid`` (the Observatory's ``parseInt`` yields NaN and
  passes it as six months or more: case A1);
* ``max-age=0`` is ``hsts-disabled``, scored like ``hsts-not-implemented`` (RFC 6797 §6.1.1:
  0 tells the browser to forget the policy; case A3);
* the HSTS preload list is not consulted (no network look-ups besides the target), so
  ``hsts-preloaded`` and ``redirection-all-redirects-preloaded`` never occur;
* over plain HTTP the two tests that need HTTPS (redirection, HSTS) are reported but not
  scored (``scope: "http-only"``); the HTTPS findings stay in the report.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import msgspec

from .observed import Hop, Observation, Response

__all__ = [
    "ALGORITHM",
    "ALGORITHM_VERSION",
    "GRADES",
    "MODIFIERS",
    "Grading",
    "TestResult",
    "grade",
    "grade_for",
    "parse_csp",
]

ALGORITHM = "MDN HTTP Observatory"
ALGORITHM_VERSION = 4
MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90
SIX_MONTHS = 15_552_000  # the Observatory's threshold (15768000 is six months; many use this)

GRADES: dict[int, str] = {
    100: "A+", 95: "A", 90: "A", 85: "A-", 80: "B+", 75: "B", 70: "B", 65: "B-", 60: "C+",
    55: "C", 50: "C", 45: "C-", 40: "D+", 35: "D", 30: "D", 25: "D-", 20: "F", 15: "F",
    10: "F", 5: "F", 0: "F",
}  # fmt: skip

MODIFIERS: dict[str, int] = {
    # content-security-policy
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-implemented-but-duplicate-directives": 0,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    "csp-not-implemented-but-reporting-enabled": -25,
    # cookies
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    # cross-origin-resource-sharing
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    # redirection
    "redirection-to-https": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-not-tested": 0,  # asgisec: no plain-HTTP URL to try (never scored)
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    "redirection-invalid-cert": -20,
    # referrer-policy
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    # strict-transport-security
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-disabled": -20,  # asgisec (A3): max-age=0 switches HSTS off
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    "hsts-invalid-cert": -20,
    # subresource-integrity
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    # x-content-type-options
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    # x-frame-options
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    # cross-origin-resource-policy
    "corp-implemented-with-same-origin": 10,
    "corp-implemented-with-same-site": 10,
    "corp-implemented-with-cross-origin": 0,
    "corp-not-implemented": 0,
    "corp-header-invalid": -5,
}

_PASSING: dict[str, frozenset[str]] = {
    "content-security-policy": frozenset(
        {
            "csp-implemented-with-no-unsafe",
            "csp-implemented-with-no-unsafe-default-src-none",
            "csp-implemented-with-unsafe-inline-in-style-src-only",
            "csp-implemented-with-insecure-scheme-in-passive-content-only",
            "csp-implemented-but-duplicate-directives",
        }
    ),
    "cookies": frozenset(
        {
            "cookies-not-found",
            "cookies-secure-with-httponly-sessions-and-samesite",
            "cookies-secure-with-httponly-sessions",
        }
    ),
    "cross-origin-resource-sharing": frozenset(
        {
            "cross-origin-resource-sharing-not-implemented",
            "cross-origin-resource-sharing-implemented-with-public-access",
            "cross-origin-resource-sharing-implemented-with-restricted-access",
        }
    ),
    "redirection": frozenset({"redirection-to-https", "redirection-not-needed-no-http"}),
    "referrer-policy": frozenset({"referrer-policy-private", "referrer-policy-not-implemented"}),
    "strict-transport-security": frozenset({"hsts-implemented-max-age-at-least-six-months"}),
    "subresource-integrity": frozenset(
        {
            "sri-implemented-and-all-scripts-loaded-securely",
            "sri-implemented-and-external-scripts-loaded-securely",
            "sri-not-implemented-response-not-html",
            "sri-not-implemented-but-no-scripts-loaded",
            "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        }
    ),
    "x-content-type-options": frozenset({"x-content-type-options-nosniff"}),
    "x-frame-options": frozenset(
        {
            "x-frame-options-implemented-via-csp",
            "x-frame-options-sameorigin-or-deny",
            "x-frame-options-allow-from-origin",
        }
    ),
    "cross-origin-resource-policy": frozenset(
        {
            "corp-implemented-with-same-origin",
            "corp-implemented-with-same-site",
            "corp-implemented-with-cross-origin",
            "corp-not-implemented",
        }
    ),
}

HTTPS_ONLY_TESTS = frozenset({"redirection", "strict-transport-security"})


class TestResult(msgspec.Struct, frozen=True, kw_only=True):
    """One Observatory test: its name, result (an Observatory expectation id), modifier."""

    name: str
    result: str
    modifier: int
    passed: bool
    scored: bool = True


class Grading(msgspec.Struct, frozen=True, kw_only=True):
    score: int
    grade: str
    uncurved_score: int
    bonus_applied: bool
    scope: str  # "full" or "http-only"
    tests: list[TestResult]


def grade_for(score: int) -> str:
    """The Observatory's grade for a (non-negative) score."""
    score = max(score, 0)
    return GRADES[min(score - score % 5, 100)]


def grade(observation: Observation) -> Grading:
    """Run the ten tests on ``observation`` and combine them as the Observatory does."""
    csp_result, csp = _csp(observation)
    hsts_result = _hsts(observation)
    hsts_pass = hsts_result == "hsts-implemented-max-age-at-least-six-months"
    results = {
        "content-security-policy": csp_result,
        "cookies": _cookies(observation, hsts_pass),
        "cross-origin-resource-sharing": _cors(observation.cors, observation.cors_origin),
        "redirection": _redirection(observation),
        "referrer-policy": _referrer(observation.main),
        "strict-transport-security": hsts_result,
        "subresource-integrity": _sri(observation.main),
        "x-content-type-options": _xcto(observation.main),
        "x-frame-options": _xfo(observation.main, csp),
        "cross-origin-resource-policy": _corp(observation.main),
    }  # fmt: skip
    scope = "full" if observation.https else "http-only"
    tests = [
        TestResult(
            name=name,
            result=result,
            modifier=MODIFIERS[result],
            passed=result in _PASSING[name],
            scored=scope == "full" or name not in HTTPS_ONLY_TESTS,
        )
        for name, result in results.items()
    ]
    with_extra = 100 + sum(t.modifier for t in tests if t.scored)
    uncurved = 100 + sum(t.modifier for t in tests if t.scored and t.modifier < 0)
    bonus = uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT
    score = max(with_extra if bonus else uncurved, 0)
    return Grading(
        score=score,
        grade=grade_for(score),
        uncurved_score=max(uncurved, 0),
        bonus_applied=bonus,
        scope=scope,
        tests=tests,
    )


# --------------------------------------------------------------------------- CSP

_BROAD = frozenset(
    {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
)
_UNSAFE_INLINE = frozenset({"'unsafe-inline'", "data:"})
_BROAD_OR_INLINE = _BROAD | _UNSAFE_INLINE
_PASSIVE = ("img-src", "media-src")
_NONCE_HASH = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")
_DUPLICATES_ALLOWED = frozenset({"report-uri", "report-to"})


class CspError(ValueError):
    """The policy cannot be parsed (too short, or a directive repeated)."""


def parse_csp(values: list[str]) -> dict[str, set[str]]:
    """Directives → sources (lower-case) of the policies in ``values`` (comma-separated too).

    Several policies all apply, so a directive keeps only the sources every policy that sets
    it allows (an empty intersection is ``'none'``). Raises :class:`CspError` when invalid.
    """
    policies = [p.replace("\r", "").replace("\n", "").strip() for v in values for p in v.split(",")]
    merged: dict[str, set[str]] = {}
    for policy in policies:
        if len(policy) < len("img-src") - 1:
            raise CspError(f"policy too short: {policy!r}")
        seen: set[str] = set()
        for entry in policy.split(";"):
            tokens = entry.strip().split()
            if not tokens:
                continue
            directive = tokens[0].lower()
            if directive in seen:
                if directive in _DUPLICATES_ALLOWED:
                    continue
                raise CspError(f"directive {directive} repeated")
            seen.add(directive)
            sources = {token.lower() for token in tokens[1:]}
            if not sources and directive.endswith("-src"):
                sources = {"'none'"}
            if directive in merged:
                sources = merged[directive] & sources or {"'none'"}
            merged[directive] = sources
    return merged


class CspFacts(msgspec.Struct, kw_only=True):
    """What the findings need to know about the policy beyond the Observatory result."""

    policy: dict[str, set[str]] = {}
    unsafe_inline: bool = False
    unsafe_eval: bool = False
    insecure_scheme: bool = False
    unsafe_style: bool = False
    default_none: bool = False
    report_only: bool = False
    invalid: bool = False
    present: bool = False


def csp_facts(observation: Observation) -> tuple[str, CspFacts]:
    """The Observatory's CSP result and the facts behind it (public for the findings)."""
    return _csp(observation)


def _csp(observation: Observation) -> tuple[str, CspFacts]:
    main = observation.main
    facts = CspFacts()
    headers = main.values("content-security-policy")
    try:
        csp = parse_csp(headers)
    except CspError:
        facts.invalid = facts.present = True
        return "csp-header-invalid", facts
    if not csp:
        if main.first("content-security-policy-report-only"):
            facts.report_only = True
            return "csp-not-implemented-but-reporting-enabled", facts
        return "csp-not-implemented", facts
    facts.present = True
    facts.policy = csp
    https = urlsplit(main.url).scheme == "https"
    default = csp.get("default-src")
    object_src = set(csp.get("object-src") or default or {"*"})
    script_src = set(csp.get("script-src") or default or {"*"})
    style_src = set(csp.get("style-src") or default or {"*"})
    for sources in (script_src, style_src):
        if any(s.startswith(_NONCE_HASH) for s in sources):
            sources.discard("'unsafe-inline'")
    result: str | None = None
    if any(s.startswith(_NONCE_HASH) for s in script_src) and "'strict-dynamic'" in script_src:
        for source in list(script_src):
            if source.startswith(tuple(_BROAD)) or source in ("'self'", "'unsafe-inline'"):
                script_src.discard(source)
    elif "'strict-dynamic'" in script_src:
        result = "csp-header-invalid"
        facts.invalid = True
    active = [
        source
        for directive, sources in csp.items()
        if directive not in _PASSIVE and directive != "script-src"
        for source in sources
    ] + list(script_src)
    passive = [s for d in _PASSIVE for s in (csp.get(d) or default or set())]
    if script_src & _BROAD_OR_INLINE or object_src & _BROAD:
        result = result or "csp-implemented-with-unsafe-inline"
        facts.unsafe_inline = True
    if https and any(s.startswith(("http:", "ftp:")) for s in active):
        result = result or "csp-implemented-with-insecure-scheme"
        facts.insecure_scheme = True
    if "'unsafe-eval'" in script_src | style_src:
        result = result or "csp-implemented-with-unsafe-eval"
        facts.unsafe_eval = True
    if https and any(s.startswith(("http:", "ftp:")) for s in passive):
        result = result or "csp-implemented-with-insecure-scheme-in-passive-content-only"
        facts.insecure_scheme = True
    if style_src & _BROAD_OR_INLINE:
        result = result or "csp-implemented-with-unsafe-inline-in-style-src-only"
        facts.unsafe_style = True
    if default == {"'none'"}:
        result = result or "csp-implemented-with-no-unsafe-default-src-none"
        facts.default_none = True
    return result or "csp-implemented-with-no-unsafe", facts


# --------------------------------------------------------------------------- HSTS


class HstsFacts(msgspec.Struct, kw_only=True):
    header: str | None = None
    max_age: int | None = None
    include_subdomains: bool = False
    preload: bool = False


def parse_hsts(header: str) -> HstsFacts | None:
    """``max-age`` (digits only: ``abc`` is invalid, case A1) and flags; None when invalid."""
    facts = HstsFacts(header=header[:1024])
    if "," in header:
        return None  # sent twice (joined), which RFC 6797 §8.1 tells browsers to reject
    seen = set()
    for raw in header[:1024].split(";"):
        name, _, value = raw.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name in seen:
            return None  # RFC 6797 §6.1: each directive at most once
        seen.add(name)
        if name == "max-age":
            value = value.strip().strip('"')
            if not value.isdigit() or not value.isascii() or len(value) > 18:
                return None
            facts.max_age = int(value)
        elif name == "includesubdomains":
            facts.include_subdomains = True
        elif name == "preload":
            facts.preload = True
    return facts if facts.max_age is not None else None


def _hsts(observation: Observation) -> str:
    if not observation.https:
        return "hsts-not-implemented-no-https"
    if not observation.verified:
        return "hsts-invalid-cert"
    header = observation.main.first("strict-transport-security")
    if header is None:
        return "hsts-not-implemented"
    facts = parse_hsts(header)
    if facts is None or facts.max_age is None:
        return "hsts-header-invalid"
    if facts.max_age == 0:
        return "hsts-disabled"
    if facts.max_age < SIX_MONTHS:
        return "hsts-implemented-max-age-less-than-six-months"
    return "hsts-implemented-max-age-at-least-six-months"


# --------------------------------------------------------------------------- cookies


class Cookie(msgspec.Struct, kw_only=True):
    name: str
    secure: bool = False
    httponly: bool = False
    samesite: str | None = None  # the raw value, None when absent
    samesite_invalid: bool = False


def parse_set_cookie(header: str) -> Cookie | None:
    first, *attributes = header.split(";")
    name, eq, _ = first.partition("=")
    if not eq or not name.strip():
        return None
    cookie = Cookie(name=name.strip())
    for attribute in attributes:
        key, has_value, value = attribute.strip().partition("=")
        key = key.strip().lower()
        if key == "secure":
            cookie.secure = True
        elif key == "httponly":
            cookie.httponly = True
        elif key == "samesite":
            cookie.samesite = value.strip() if has_value else ""
            if value.strip().lower() not in ("lax", "strict", "none"):
                cookie.samesite_invalid = True
    return cookie


def cookies_seen(observation: Observation) -> list[Cookie]:
    """Every cookie set along the way to the main response (a browser's jar would hold them)."""
    responses = observation.chain or [observation.main]
    found = [parse_set_cookie(v) for r in responses for v in r.values("set-cookie")]
    return [c for c in found if c is not None]


# Worse results replace better ones, in this order (the Observatory's `onlyIfWorse`).
_COOKIE_ORDER = (
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
)


def _worse(new: str, current: str | None) -> str:
    if current is None or _COOKIE_ORDER.index(new) > _COOKIE_ORDER.index(current):
        return new
    return current


def _cookies(observation: Observation, hsts: bool) -> str:
    cookies = cookies_seen(observation)
    if not cookies:
        return "cookies-not-found"
    result: str | None = None
    missing_samesite = False
    for cookie in cookies:
        name = cookie.name.lower()
        session = "login" in name or "sess" in name
        if cookie.samesite_invalid or (
            not cookie.secure and (cookie.samesite or "").lower() == "none"
        ):
            result = _worse("cookies-samesite-flag-invalid", result)
        if not cookie.secure:
            result = _worse(
                "cookies-without-secure-flag-but-protected-by-hsts"
                if hsts
                else "cookies-without-secure-flag",
                result,
            )
        if "csrf" in name and not cookie.samesite:
            result = _worse("cookies-anticsrf-without-samesite-flag", result)
        if session and not cookie.secure:
            result = _worse(
                "cookies-session-without-secure-flag-but-protected-by-hsts"
                if hsts
                else "cookies-session-without-secure-flag",
                result,
            )
        if session and not cookie.httponly:
            result = _worse("cookies-session-without-httponly-flag", result)
        missing_samesite = missing_samesite or not cookie.samesite
    if result is not None:
        return result
    if missing_samesite:
        return "cookies-secure-with-httponly-sessions"
    return "cookies-secure-with-httponly-sessions-and-samesite"


# --------------------------------------------------------------------------- the rest


def _cors(response: Response | None, origin: str) -> str:
    acao = response.first("access-control-allow-origin") if response else None
    if response is None or not acao:
        return "cross-origin-resource-sharing-not-implemented"
    value = acao[:256].strip().lower()
    if value == "*":
        return "cross-origin-resource-sharing-implemented-with-public-access"
    credentials = (response.first("access-control-allow-credentials") or "").strip().lower()
    if acao.strip() == origin and credentials == "true":
        return "cross-origin-resource-sharing-implemented-with-universal-access"
    return "cross-origin-resource-sharing-implemented-with-restricted-access"


def _redirection(observation: Observation) -> str:
    route = observation.http_route
    if route is None:
        return "redirection-not-tested"
    if not observation.http_reachable:
        return "redirection-not-needed-no-http"
    if not observation.verified and observation.https and len(route) > 1:
        return "redirection-invalid-cert"
    return redirection_result(route)


def redirection_result(route: list[Hop]) -> str:
    """The Observatory's verdict on a redirect chain that starts at an http:// URL."""
    if len(route) == 1:
        return "redirection-missing"
    first, second, last = urlsplit(route[0].url), urlsplit(route[1].url), urlsplit(route[-1].url)
    if last.scheme != "https":
        return "redirection-not-to-https"
    if second.scheme == "http":
        return "redirection-not-to-https-on-initial-redirection"
    if first.scheme == "http" and first.hostname != second.hostname:
        return "redirection-off-host-from-http"
    return "redirection-to-https"


_REFERRER_GOOD = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
_REFERRER_BAD = ("origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade")


def _referrer(main: Response) -> str:
    values = main.values("referrer-policy")
    if not values:
        return "referrer-policy-not-implemented"
    valid = [
        token.strip().lower()
        for token in ", ".join(values).split(",")
        if token.strip().lower() in _REFERRER_GOOD + _REFERRER_BAD
    ]
    policy = valid[-1] if valid else ""  # the last recognised value wins
    if policy in _REFERRER_GOOD:
        return "referrer-policy-private"
    if policy in _REFERRER_BAD:
        return "referrer-policy-unsafe"
    return "referrer-policy-header-invalid"


def _xcto(main: Response) -> str:
    value = main.first("x-content-type-options")
    if not value:
        return "x-content-type-options-not-implemented"
    if value[:256].strip().lower() == "nosniff":
        return "x-content-type-options-nosniff"
    return "x-content-type-options-header-invalid"


def _xfo(main: Response, csp: CspFacts) -> str:
    if "frame-ancestors" in csp.policy:
        return "x-frame-options-implemented-via-csp"
    value = main.first("x-frame-options")
    if not value:
        return "x-frame-options-not-implemented"
    xfo = value[:1024].strip().lower()
    if xfo in ("deny", "sameorigin"):
        return "x-frame-options-sameorigin-or-deny"
    if xfo.startswith("allow-from"):
        return "x-frame-options-allow-from-origin"
    return "x-frame-options-header-invalid"


def _corp(main: Response) -> str:
    value = main.first("cross-origin-resource-policy")
    if not value:
        return "corp-not-implemented"
    return {
        "same-site": "corp-implemented-with-same-site",
        "same-origin": "corp-implemented-with-same-origin",
        "cross-origin": "corp-implemented-with-cross-origin",
    }.get(value[:256].strip().lower(), "corp-header-invalid")


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[str | None, bool]] = []  # (src, has integrity)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            found = dict(attrs)
            self.scripts.append((found.get("src"), bool(found.get("integrity"))))


def _sri(main: Response) -> str:
    content_type = (main.first("content-type") or "").split(";")[0].strip().lower()
    if content_type not in ("text/html", "application/xhtml+xml"):
        return "sri-not-implemented-response-not-html"
    parser = _Scripts()
    parser.feed(main.body)
    page = urlsplit(main.url)
    external = []
    for src, integrity in parser.scripts:
        if not src:
            continue
        if src.startswith("//"):
            external.append((False, integrity))  # protocol-relative: may load over http
            continue
        url = urlsplit(urljoin(main.url, src))
        if url.hostname == page.hostname:
            continue
        external.append((url.scheme == "https", integrity))
    if not parser.scripts:
        return "sri-not-implemented-but-no-scripts-loaded"
    if not external:
        return "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
    secure = all(ok for ok, _ in external)
    with_sri = all(integrity for _, integrity in external)
    if with_sri:
        return (
            "sri-implemented-and-external-scripts-loaded-securely"
            if secure
            else "sri-implemented-but-external-scripts-not-loaded-securely"
        )
    return (
        "sri-not-implemented-but-external-scripts-loaded-securely"
        if secure
        else "sri-not-implemented-and-external-scripts-not-loaded-securely"
    )
