"""Every check id the tools report, with its severity, meaning and fix.

The ids are stable: scripts, SARIF consumers and suppressions key on them. ``docs/tools.md``
lists the same ids (a test keeps the two equal). An id names the *problem*: ``hsts.missing``
passes when HSTS is present.
"""

from __future__ import annotations

import msgspec

from .model import Result, Severity, Status

__all__ = ["AUDIT_CHECKS", "CONFIG_CHECKS", "MONITOR_ALERTS", "Check", "all_ids", "result"]


class Check(msgspec.Struct, frozen=True):
    severity: Severity
    title: str
    fix: str


_C = Check

AUDIT_CHECKS: dict[str, Check] = {
    # HTTPS enforcement
    "https.not-served": _C(
        "high",
        "The target is served over plain HTTP",
        "Serve the API over HTTPS only (TLS at the proxy, or asgisec serve --ssl-certfile) "
        "and audit the public https:// URL.",
    ),
    "https.redirect-missing": _C(
        "high",
        "The HTTP URL does not redirect to HTTPS",
        "Answer every http:// request with a 301 or 308 to the same host on https://.",
    ),
    "https.redirect-off-host": _C(
        "medium",
        "The first HTTP redirect goes to another host",
        "Redirect to the same host on HTTPS first (so HSTS is set), then elsewhere.",
    ),
    "https.redirect-via-http": _C(
        "medium",
        "The first HTTP redirect goes to another http:// URL",
        "Redirect straight to https:// on the first hop.",
    ),
    "https.redirect-status": _C(
        "low",
        "The HTTP-to-HTTPS redirect is not permanent (301/308)",
        "Use 301 (or 308 to keep the method) so clients and caches remember it.",
    ),
    # HSTS
    "hsts.missing": _C(
        "high",
        "No Strict-Transport-Security header over HTTPS",
        "Send Strict-Transport-Security: max-age=31536000; includeSubDomains (HSTS_MAX_AGE).",
    ),
    "hsts.invalid": _C(
        "high",
        "The Strict-Transport-Security header cannot be parsed",
        "Write it as max-age=<seconds>[; includeSubDomains][; preload], sent once.",
    ),
    "hsts.disabled": _C(
        "high",
        "Strict-Transport-Security max-age=0 (HSTS switched off)",
        "max-age=0 tells browsers to forget HSTS; set HSTS_MAX_AGE=31536000.",
    ),
    "hsts.short-max-age": _C(
        "medium",
        "HSTS max-age is under six months",
        "Raise HSTS_MAX_AGE to at least 15552000 (six months); one year is usual.",
    ),
    "hsts.no-include-subdomains": _C(
        "low",
        "HSTS without includeSubDomains",
        "Set HSTS_INCLUDE_SUBDOMAINS=true once every subdomain serves HTTPS.",
    ),
    # CSP
    "csp.missing": _C(
        "high",
        "No Content-Security-Policy header",
        "Send a policy; for an API: CSP_POLICY=\"default-src 'none'; frame-ancestors 'none'\".",
    ),
    "csp.invalid": _C(
        "high",
        "The Content-Security-Policy header cannot be parsed",
        "Fix the policy syntax (no repeated directives); check it with a CSP evaluator.",
    ),
    "csp.report-only": _C(
        "medium",
        "Only Content-Security-Policy-Report-Only is sent: nothing is enforced",
        "Enforce the policy with Content-Security-Policy once the reports are clean.",
    ),
    "csp.unsafe-inline": _C(
        "high",
        "CSP allows inline or unrestricted scripts or objects",
        "Remove 'unsafe-inline', data: and broad sources (https:, *) from script-src and "
        "object-src, and set script-src/object-src or default-src.",
    ),
    "csp.unsafe-eval": _C(
        "medium",
        "CSP allows 'unsafe-eval'",
        "Stop using eval() and remove 'unsafe-eval'.",
    ),
    "csp.insecure-scheme": _C(
        "medium",
        "CSP on an HTTPS site allows http: sources",
        "Load every resource over HTTPS and drop http: sources.",
    ),
    "csp.unsafe-style": _C(
        "low",
        "CSP allows inline or unrestricted styles",
        "Remove 'unsafe-inline', data: and broad sources from style-src.",
    ),
    "csp.no-default-src": _C(
        "low",
        "CSP without default-src",
        "Start the policy from default-src 'none' and allow only what is needed.",
    ),
    "csp.no-frame-ancestors": _C(
        "low",
        "CSP without frame-ancestors",
        "Add frame-ancestors 'none' (the modern form of X-Frame-Options: DENY).",
    ),
    # Framing and sniffing
    "xfo.missing": _C(
        "medium",
        "Neither X-Frame-Options nor CSP frame-ancestors: responses can be framed",
        "Send X-Frame-Options: DENY (X_FRAME_OPTIONS) and frame-ancestors 'none'.",
    ),
    "xfo.invalid": _C(
        "medium",
        "X-Frame-Options has an unrecognised value",
        "Use DENY or SAMEORIGIN.",
    ),
    "xcto.missing": _C(
        "medium",
        "No X-Content-Type-Options: nosniff",
        "Send X-Content-Type-Options: nosniff (asgisec does by default).",
    ),
    "xcto.invalid": _C(
        "medium",
        "X-Content-Type-Options is not nosniff",
        "The only valid value is nosniff.",
    ),
    # Referrer, permissions, cross-origin isolation
    "referrer-policy.missing": _C(
        "low",
        "No Referrer-Policy header",
        "Send Referrer-Policy: strict-origin-when-cross-origin (REFERRER_POLICY).",
    ),
    "referrer-policy.unsafe": _C(
        "medium",
        "Referrer-Policy leaks full URLs cross-origin",
        "Use no-referrer, same-origin, strict-origin or strict-origin-when-cross-origin.",
    ),
    "referrer-policy.invalid": _C(
        "low",
        "Referrer-Policy has no recognised value",
        "Use one of the values of the Referrer-Policy specification.",
    ),
    "permissions-policy.missing": _C(
        "low",
        "No Permissions-Policy header",
        "Deny the powerful features an API never needs (PERMISSIONS_POLICY).",
    ),
    "coop.missing": _C(
        "low",
        "No Cross-Origin-Opener-Policy header",
        "Send Cross-Origin-Opener-Policy: same-origin (CROSS_ORIGIN_OPENER_POLICY).",
    ),
    "corp.missing": _C(
        "low",
        "No Cross-Origin-Resource-Policy header",
        "Send Cross-Origin-Resource-Policy: same-origin (CROSS_ORIGIN_RESOURCE_POLICY).",
    ),
    "corp.invalid": _C(
        "low",
        "Cross-Origin-Resource-Policy has an unrecognised value",
        "Use same-origin, same-site or cross-origin.",
    ),
    "coep.missing": _C(
        "info",
        "No Cross-Origin-Embedder-Policy header",
        "Only needed for cross-origin isolation of documents; APIs may omit it.",
    ),
    # Cookies
    "cookies.no-secure": _C(
        "high",
        "A cookie is set without Secure",
        "Set Secure on every cookie (and serve HTTPS only).",
    ),
    "cookies.no-httponly": _C(
        "high",
        "A session cookie is set without HttpOnly",
        "Set HttpOnly on session and login cookies so scripts cannot read them.",
    ),
    "cookies.no-samesite": _C(
        "low",
        "A cookie is set without SameSite",
        "Set SameSite=Lax or Strict.",
    ),
    "cookies.samesite-invalid": _C(
        "medium",
        "A cookie has an invalid SameSite, or SameSite=None without Secure",
        "Use SameSite=Lax or Strict; SameSite=None requires Secure.",
    ),
    # CORS
    "cors.credentialed-reflection": _C(
        "critical",
        "Any Origin (or null) is reflected with Access-Control-Allow-Credentials: true",
        "Allow only named origins (ALLOWED_ORIGINS); never reflect the request's Origin "
        "when credentials are allowed.",
    ),
    "cors.null-origin": _C(
        "high",
        "Origin: null is accepted",
        "Never allow the null origin: sandboxed iframes and local files send it.",
    ),
    "cors.origin-reflection": _C(
        "medium",
        "An arbitrary Origin is reflected in Access-Control-Allow-Origin",
        "List the allowed origins instead of echoing whatever is sent.",
    ),
    "cors.wildcard": _C(
        "info",
        "Access-Control-Allow-Origin: * (public, uncredentialed access)",
        "Fine for public data; otherwise list the allowed origins.",
    ),
    "cors.preflight-permissive": _C(
        "high",
        "A preflight from an unknown Origin is granted",
        "Answer preflights from origins that are not allowed without CORS headers (403).",
    ),
    # Information disclosure
    "disclosure.server-banner": _C(
        "info",
        "A Server header names the software",
        "Remove the Server header (uvicorn --no-server-header; asgisec serve does).",
    ),
    "disclosure.server-version": _C(
        "low",
        "The Server header carries a version number",
        "Remove the Server header, or at least its version (nginx: server_tokens off).",
    ),
    "disclosure.x-powered-by": _C(
        "low",
        "An X-Powered-By header names the framework",
        "Remove X-Powered-By.",
    ),
    "disclosure.traceback": _C(
        "high",
        "A stack trace is sent to clients",
        "Turn debug off in production and answer errors with a generic body.",
    ),
    "disclosure.debug-page": _C(
        "high",
        "A framework debug page is exposed",
        "Turn debug mode off (Starlette debug=False, Django DEBUG=False, Flask debug off).",
    ),
    "disclosure.path-traversal": _C(
        "critical",
        "An encoded ../ path reaches files outside the web root",
        "Resolve paths and refuse any that leave the served directory.",
    ),
    # Rate limiting (active probe, opt-in)
    "ratelimit.not-enforced": _C(
        "medium",
        "A bounded burst was never answered 429",
        "Set RATE_LIMIT_DEFAULT (e.g. 100/minute), shared on Redis across workers.",
    ),
    "ratelimit.no-retry-after": _C(
        "low",
        "A 429 came without Retry-After",
        "Send Retry-After with every 429 so clients back off (asgisec does).",
    ),
    # TLS
    "tls.protocol-tls1.0": _C(
        "high",
        "TLS 1.0 is accepted",
        "Offer TLS 1.2 and 1.3 only.",
    ),
    "tls.protocol-tls1.1": _C(
        "high",
        "TLS 1.1 is accepted",
        "Offer TLS 1.2 and 1.3 only.",
    ),
    "tls.weak-ciphers": _C(
        "high",
        "Weak cipher suites are accepted (NULL, anonymous, export, DES, 3DES, RC4, MD5)",
        "Use a modern cipher list, e.g. Mozilla's intermediate configuration.",
    ),
    "tls.cert-expired": _C(
        "critical",
        "The certificate has expired",
        "Renew it now and automate renewal (Let's Encrypt, cert-manager).",
    ),
    "tls.cert-expiring": _C(
        "high",
        "The certificate expires within 30 days",
        "Renew it and automate renewal (Let's Encrypt, cert-manager).",
    ),
    "tls.cert-hostname": _C(
        "high",
        "The certificate does not match the host name",
        "Serve a certificate whose subjectAltName covers the host.",
    ),
    "tls.cert-untrusted": _C(
        "high",
        "The certificate chain does not verify",
        "Serve the full chain from a trusted CA (pass --cacert for a private CA).",
    ),
}

MONITOR_ALERTS: dict[str, Check] = {
    "monitor.target-down": _C(
        "critical",
        "/health did not answer 200 with the security block",
        "Check the service and its proxy; counters are not read while it is down.",
    ),
    "monitor.blocked": _C(
        "high",
        "Blocked requests per hour above ALERT_THRESHOLD_BLOCKED",
        "Look at blocked_by_reason and the logs: an attack, or a misconfigured client.",
    ),
    "monitor.suspicious": _C(
        "high",
        "Suspicious requests per hour above ALERT_THRESHOLD_SUSPICIOUS",
        "Look at the suspicious-request log lines; block the sources if needed.",
    ),
    "monitor.rate-limited": _C(
        "medium",
        "Rate-limited requests per hour above ALERT_THRESHOLD_RATE_LIMITED",
        "Find the clients hitting the limits; raise a limit only if they are legitimate.",
    ),
    "monitor.blocked-ratio": _C(
        "medium",
        "More than 1 % of requests were blocked",
        "A high share of refusals usually means a misconfiguration (TRUSTED_HOSTS, CORS).",
    ),
    "monitor.cert-expiry": _C(
        "high",
        "The certificate expires within 30 days",
        "Renew it and automate renewal.",
    ),
    "monitor.unhealthy": _C(
        "high",
        "A health check reports a status other than healthy",
        "Read the check's status in /health and fix what it reports.",
    ),
}

CONFIG_CHECKS: dict[str, Check] = {
    "security.E001": _C(
        "high",
        "A password or secret is a known default, weak or empty",
        "Generate a long random value, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
    ),
    "security.E002": _C(
        "high",
        "ALLOWED_ORIGINS contains *",
        "List the origins that may call the API: ALLOWED_ORIGINS=https://app.example.com.",
    ),
    "security.E003": _C(
        "high",
        "ALLOWED_ORIGINS contains an http:// origin",
        "Allow https:// origins only in production.",
    ),
    "security.E004": _C(
        "high",
        "TRUSTED_HOSTS is empty",
        "Name the hosts the service answers to: TRUSTED_HOSTS=api.example.com.",
    ),
    "security.E005": _C(
        "high",
        "TRUSTED_HOSTS accepts any host (*)",
        "Name the hosts the service answers to.",
    ),
    "security.E006": _C(
        "high",
        "A Redis URL for a remote host has no password",
        "Enable requirepass/ACLs and put the password in the URL (rediss://:PASSWORD@host).",
    ),
    "security.E007": _C(
        "high",
        "A database URL for a remote host does not require TLS",
        "Add sslmode=verify-full (or require) to the database URL.",
    ),
    "security.E008": _C(
        "high",
        "Security headers are disabled (ENABLE_SECURITY_HEADERS=false)",
        "Set ENABLE_SECURITY_HEADERS=true.",
    ),
    "security.E009": _C(
        "high",
        "LOG_SENSITIVE_DATA=true: secrets and personal data go to the logs",
        "Set LOG_SENSITIVE_DATA=false.",
    ),
    "security.E010": _C(
        "high",
        "SECRET_KEY is weak (under 50 characters, under 5 distinct, or django-insecure-)",
        "Generate a long random SECRET_KEY and keep it out of the repository.",
    ),
    "security.E011": _C(
        "high",
        "The configuration does not load: asgisec would refuse to start",
        "Fix the variable named in the message (asgisec env shows the effective values).",
    ),
    "security.W001": _C(
        "medium",
        "HSTS_MAX_AGE is under six months (or 0, which disables HSTS)",
        "Set HSTS_MAX_AGE=31536000.",
    ),
    "security.W002": _C(
        "medium",
        "Several workers with in-memory rate limits: each worker has its own buckets",
        "Set RATE_LIMIT_STORAGE_URI to a Redis URL.",
    ),
    "security.W003": _C(
        "medium",
        "No request-size limit (MAX_REQUEST_SIZE=0)",
        "Set MAX_REQUEST_SIZE (1048576 is the default).",
    ),
    "security.W004": _C(
        "medium",
        "No concurrency limit (MAX_CONCURRENT_REQUESTS=0)",
        "Set MAX_CONCURRENT_REQUESTS (100, the guide's value, is the default).",
    ),
    "security.W005": _C(
        "medium",
        "A Redis URL on loopback has no password",
        "Enable requirepass/ACLs even locally; another local process can reach it.",
    ),
    "security.W006": _C(
        "medium",
        "A Redis URL for a remote host does not use TLS (redis:// instead of rediss://)",
        "Use rediss:// so the password and data are encrypted on the network.",
    ),
    "security.W007": _C(
        "medium",
        "Rate limiting is off (RATE_LIMIT_DEFAULT=none)",
        "Set RATE_LIMIT_DEFAULT, e.g. 100/minute.",
    ),
    "security.W008": _C(
        "medium",
        "Request logging is off (ENABLE_REQUEST_LOGGING=false)",
        "Set ENABLE_REQUEST_LOGGING=true to keep an audit trail.",
    ),
    "security.W009": _C(
        "low",
        "A security header is disabled (its variable is empty)",
        "Restore the default value of the variable named in the message.",
    ),
    "security.W010": _C(
        "low",
        "ALLOWED_ORIGINS contains an http:// origin on loopback (development only)",
        "Remove local development origins from production configuration.",
    ),
}


def all_ids() -> list[str]:
    """Every documented id, in catalogue order."""
    return [*AUDIT_CHECKS, *MONITOR_ALERTS, *CONFIG_CHECKS]


def result(
    check_id: str,
    status: Status,
    detail: str = "",
    *,
    severity: Severity | None = None,
) -> Result:
    """A :class:`Result` for a catalogued audit check (KeyError on a typo, caught in tests)."""
    check = AUDIT_CHECKS[check_id]
    return Result(
        id=check_id,
        status=status,
        severity=check.severity if severity is None else severity,
        title=check.title,
        detail=detail,
        fix=check.fix,
    )
