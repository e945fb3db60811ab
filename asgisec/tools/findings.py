"""The audit's checks beyond the Observatory's score: one :class:`Result` per catalogued id.

Pure functions of an :class:`~.observed.Observation`; TLS results come from :mod:`.tls`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from .catalog import result
from .model import Result
from .observed import Observation, Response
from .scoring import SIX_MONTHS, cookies_seen, csp_facts, parse_hsts, redirection_result

__all__ = ["DEBUG_SIGNATURES", "TRACEBACK_SIGNATURES", "api_findings", "is_loopback"]

# Stack traces as Python, ASGI frameworks and a few common runtimes print them (case A16).
TRACEBACK_SIGNATURES = (
    re.compile(r"Traceback \(most recent call last\):"),
    re.compile(r'File "[^"]+", line \d+, in \S+'),
    re.compile(r"\bat [\w$.]+\([\w]+\.java:\d+\)"),  # Java
    re.compile(r"\bat \S+ \((?:/|[A-Za-z]:\\)[^)]+:\d+:\d+\)"),  # Node.js
)
DEBUG_SIGNATURES = (
    re.compile(r"<title>\s*Starlette Debugger\s*</title>", re.IGNORECASE),
    re.compile(r"You're seeing this error because you have\s+(?:<code>)?DEBUG = True"),
    re.compile(r"Werkzeug Debugger|The debugger caught an exception", re.IGNORECASE),
    re.compile(r"<title>\s*(?:\w+ )?at /.*</title>.*Django", re.IGNORECASE | re.DOTALL),
)
_PASSWD = re.compile(r"root:[^:\n]*:0:0:")
_VERSION = re.compile(r"\d+\.\d+|/\d")


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_findings(observation: Observation) -> list[Result]:
    """Every non-TLS check, passed or not, in catalogue order."""
    return [
        *_https(observation),
        *_hsts(observation),
        *_csp(observation),
        *_headers(observation.main),
        *_cookies(observation),
        *_cors(observation),
        *_disclosure(observation),
    ]


def _https(observation: Observation) -> list[Result]:
    if not observation.https:
        local = is_loopback(observation.target)
        detail = (
            "loopback target: HSTS and redirection can only be judged on the public https:// "
            "URL (they are reported, not scored)"
            if local
            else "HSTS and redirection cannot be checked; they are reported, not scored"
        )
        out = [result("https.not-served", "fail", detail, severity="info" if local else None)]
        skipped = "the target is plain HTTP"
        out += [
            result(i, "skipped", skipped)
            for i in (
                "https.redirect-missing",
                "https.redirect-off-host",
                "https.redirect-via-http",
                "https.redirect-status",
            )
        ]
        return out
    out = [result("https.not-served", "pass")]
    route = observation.http_route
    if route is None:
        why = "no plain-HTTP URL to try (default port only; pass --http-url)"
        return out + [
            result(i, "inconclusive", why)
            for i in (
                "https.redirect-missing",
                "https.redirect-off-host",
                "https.redirect-via-http",
                "https.redirect-status",
            )
        ]
    if not observation.http_reachable:
        nothing = "nothing answers on plain HTTP"
        return out + [
            result(i, "pass", nothing)
            for i in (
                "https.redirect-missing",
                "https.redirect-off-host",
                "https.redirect-via-http",
                "https.redirect-status",
            )
        ]
    verdict = redirection_result(route)
    path = " -> ".join(f"{hop.url} ({hop.status})" for hop in route)
    missing = verdict in ("redirection-missing", "redirection-not-to-https")
    out.append(result("https.redirect-missing", "fail" if missing else "pass", path))
    off_host = verdict == "redirection-off-host-from-http"
    out.append(result("https.redirect-off-host", "fail" if off_host else "pass", path))
    via_http = verdict == "redirection-not-to-https-on-initial-redirection"
    out.append(result("https.redirect-via-http", "fail" if via_http else "pass", path))
    if len(route) > 1:
        permanent = route[0].status in (301, 308)
        out.append(
            result(
                "https.redirect-status",
                "pass" if permanent else "fail",
                f"first redirect answered {route[0].status}",
            )
        )
    else:
        out.append(result("https.redirect-status", "skipped", "no redirect"))
    return out


def _hsts(observation: Observation) -> list[Result]:
    ids = ("hsts.missing", "hsts.invalid", "hsts.disabled", "hsts.short-max-age")
    if not observation.https:
        return [result(i, "skipped", "HSTS is only sent over HTTPS") for i in ids] + [
            result("hsts.no-include-subdomains", "skipped", "HSTS is only sent over HTTPS")
        ]
    header = observation.main.first("strict-transport-security")
    if header is None:
        return [result("hsts.missing", "fail", "no Strict-Transport-Security over HTTPS")] + [
            result(i, "skipped", "no header") for i in (*ids[1:], "hsts.no-include-subdomains")
        ]
    out = [result("hsts.missing", "pass")]
    facts = parse_hsts(header)
    shown = header[:200]
    if facts is None or facts.max_age is None:
        out.append(result("hsts.invalid", "fail", f"Strict-Transport-Security: {shown}"))
        return out + [
            result(i, "skipped", "header invalid")
            for i in ("hsts.disabled", "hsts.short-max-age", "hsts.no-include-subdomains")
        ]
    out.append(result("hsts.invalid", "pass"))
    out.append(result("hsts.disabled", "fail" if facts.max_age == 0 else "pass", shown))
    short = 0 < facts.max_age < SIX_MONTHS
    age = f"max-age={facts.max_age}"
    out.append(result("hsts.short-max-age", "fail" if short else "pass", age))
    out.append(
        result("hsts.no-include-subdomains", "pass" if facts.include_subdomains else "fail", shown)
    )
    return out


def _csp(observation: Observation) -> list[Result]:
    verdict, facts = csp_facts(observation)
    rest = (
        "csp.unsafe-inline",
        "csp.unsafe-eval",
        "csp.insecure-scheme",
        "csp.unsafe-style",
        "csp.no-default-src",
        "csp.no-frame-ancestors",
    )
    if not facts.present:
        return [
            result("csp.missing", "fail", verdict),
            result("csp.invalid", "skipped", "no policy"),
            result("csp.report-only", "fail" if facts.report_only else "skipped"),
        ] + [result(i, "skipped", "no policy") for i in rest]
    if facts.invalid:
        return [
            result("csp.missing", "pass"),
            result("csp.invalid", "fail", verdict),
            result("csp.report-only", "skipped"),
        ] + [result(i, "skipped", "policy invalid") for i in rest]
    policy = facts.policy

    def flag(check_id: str, failed: bool, detail: str = "") -> Result:
        return result(check_id, "fail" if failed else "pass", detail if failed else "")

    return [
        result("csp.missing", "pass"),
        result("csp.invalid", "pass"),
        result("csp.report-only", "pass"),
        flag("csp.unsafe-inline", facts.unsafe_inline, verdict),
        flag("csp.unsafe-eval", facts.unsafe_eval, "'unsafe-eval' in script-src or style-src"),
        flag("csp.insecure-scheme", facts.insecure_scheme, "http: or ftp: sources"),
        flag("csp.unsafe-style", facts.unsafe_style, "inline or broad style sources"),
        flag("csp.no-default-src", "default-src" not in policy, "no default-src directive"),
        flag(
            "csp.no-frame-ancestors",
            "frame-ancestors" not in policy,
            "no frame-ancestors directive",
        ),
    ]


def _headers(main: Response) -> list[Result]:
    out = []
    csp = main.values("content-security-policy")
    framed_by_csp = any("frame-ancestors" in value.lower() for value in csp)
    xfo = main.first("x-frame-options")
    if xfo is None:
        out.append(result("xfo.missing", "pass" if framed_by_csp else "fail"))
        out.append(result("xfo.invalid", "skipped", "no X-Frame-Options"))
    else:
        out.append(result("xfo.missing", "pass"))
        value = xfo.strip().lower()
        ok = value in ("deny", "sameorigin") or value.startswith("allow-from")
        out.append(result("xfo.invalid", "pass" if ok else "fail", f"X-Frame-Options: {xfo[:80]}"))
    xcto = main.first("x-content-type-options")
    out.append(result("xcto.missing", "fail" if xcto is None else "pass"))
    if xcto is None:
        out.append(result("xcto.invalid", "skipped", "no X-Content-Type-Options"))
    else:
        ok = xcto.strip().lower() == "nosniff"
        out.append(result("xcto.invalid", "pass" if ok else "fail", xcto[:80]))
    referrer = main.values("referrer-policy")
    out.append(result("referrer-policy.missing", "pass" if referrer else "fail"))
    tokens = [t.strip().lower() for t in ", ".join(referrer).split(",") if t.strip()]
    good = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
    bad = ("origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade")
    known = [t for t in tokens if t in good + bad]
    if not referrer:
        out.append(result("referrer-policy.unsafe", "skipped", "no Referrer-Policy"))
        out.append(result("referrer-policy.invalid", "skipped", "no Referrer-Policy"))
    else:
        unsafe = bool(known) and known[-1] in bad
        out.append(result("referrer-policy.unsafe", "fail" if unsafe else "pass", ", ".join(known)))
        out.append(result("referrer-policy.invalid", "pass" if known else "fail"))
    for check_id, name in (
        ("permissions-policy.missing", "permissions-policy"),
        ("coop.missing", "cross-origin-opener-policy"),
        ("corp.missing", "cross-origin-resource-policy"),
        ("coep.missing", "cross-origin-embedder-policy"),
    ):
        out.append(result(check_id, "pass" if main.first(name) else "fail"))
    corp = main.first("cross-origin-resource-policy")
    if corp is None:
        out.append(result("corp.invalid", "skipped", "no Cross-Origin-Resource-Policy"))
    else:
        ok = corp.strip().lower() in ("same-origin", "same-site", "cross-origin")
        out.append(result("corp.invalid", "pass" if ok else "fail", corp[:80]))
    return out


def _cookies(observation: Observation) -> list[Result]:
    ids = ("cookies.no-secure", "cookies.no-httponly", "cookies.no-samesite")
    cookies = cookies_seen(observation)
    if not cookies:
        return [result(i, "skipped", "no cookies set") for i in (*ids, "cookies.samesite-invalid")]
    insecure = [c.name for c in cookies if not c.secure]
    sessions = [c for c in cookies if "sess" in c.name.lower() or "login" in c.name.lower()]
    readable = [c.name for c in sessions if not c.httponly]
    no_samesite = [c.name for c in cookies if not c.samesite]
    bad_samesite = [
        c.name
        for c in cookies
        if c.samesite_invalid or (not c.secure and (c.samesite or "").lower() == "none")
    ]

    def flag(check_id: str, names: list[str]) -> Result:
        return result(check_id, "fail" if names else "pass", ", ".join(names[:10]))

    return [
        flag("cookies.no-secure", insecure),
        flag("cookies.no-httponly", readable),
        flag("cookies.no-samesite", no_samesite),
        flag("cookies.samesite-invalid", bad_samesite),
    ]


def _cors(observation: Observation) -> list[Result]:
    def allowed(response: Response | None, origin: str) -> tuple[bool, bool]:
        if response is None:
            return False, False
        acao = (response.first("access-control-allow-origin") or "").strip()
        credentials = (response.first("access-control-allow-credentials") or "").strip()
        return acao == origin, credentials.lower() == "true"

    evil, evil_credentials = allowed(observation.cors, observation.cors_origin)
    null, null_credentials = allowed(observation.null_origin, "null")
    credentialed = [
        origin
        for origin, ok, creds in (
            (observation.cors_origin, evil, evil_credentials),
            ("null", null, null_credentials),
        )
        if ok and creds
    ]
    out = [
        result(
            "cors.credentialed-reflection",
            "fail" if credentialed else "pass",
            "reflected with credentials: " + ", ".join(credentialed) if credentialed else "",
        ),
        result("cors.null-origin", "fail" if null else "pass", "Origin: null allowed" * null),
        result(
            "cors.origin-reflection",
            "fail" if evil else "pass",
            f"Origin: {observation.cors_origin} reflected" if evil else "",
        ),
    ]
    wildcard = observation.cors is not None and (
        (observation.cors.first("access-control-allow-origin") or "").strip() == "*"
    )
    out.append(result("cors.wildcard", "fail" if wildcard else "pass"))
    preflight = observation.preflight
    if preflight is None:
        out.append(result("cors.preflight-permissive", "inconclusive", "no preflight answer"))
    else:
        granted = (preflight.first("access-control-allow-origin") or "").strip() in (
            observation.cors_origin,
            "*",
        ) and 200 <= preflight.status < 300
        detail = f"OPTIONS from {observation.cors_origin} answered {preflight.status}"
        out.append(result("cors.preflight-permissive", "fail" if granted else "pass", detail))
    return out


def _disclosure(observation: Observation) -> list[Result]:
    responses = [observation.main, *observation.errors]
    servers = sorted({v for r in responses for v in r.values("server")})
    versioned = [s for s in servers if _VERSION.search(s)]
    banner = [s for s in servers if not _VERSION.search(s)]
    powered = sorted({v for r in responses for v in r.values("x-powered-by")})
    out = [
        result("disclosure.server-banner", "fail" if banner else "pass", ", ".join(banner)),
        result("disclosure.server-version", "fail" if versioned else "pass", ", ".join(versioned)),
        result("disclosure.x-powered-by", "fail" if powered else "pass", ", ".join(powered)),
    ]
    traces = [r for r in responses if any(p.search(r.body) for p in TRACEBACK_SIGNATURES)]
    debug = [r for r in responses if any(p.search(r.body) for p in DEBUG_SIGNATURES)]

    def where(found: list[Response]) -> str:
        return "; ".join(f"{r.status} from {urlsplit(r.url).path or '/'}" for r in found[:5])

    out.append(result("disclosure.traceback", "fail" if traces else "pass", where(traces)))
    out.append(result("disclosure.debug-page", "fail" if debug else "pass", where(debug)))
    traversal = observation.traversal
    if traversal is None:
        out.append(result("disclosure.path-traversal", "inconclusive", "probe not answered"))
    else:
        leaked = bool(_PASSWD.search(traversal.body))
        detail = f"{urlsplit(traversal.url).path} answered {traversal.status}"
        out.append(result("disclosure.path-traversal", "fail" if leaked else "pass", detail))
    return out
