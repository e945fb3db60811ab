"""Content-Security-Policy: per-request nonces, the report-only policy, violation reports,
and the response header sets (one per path prefix with overrides), all compiled at start-up.

With ``CSP_NONCE=true`` each policy is split once into the bytes before and after its nonce,
so a request costs 18 random bytes, one base64 call and one concatenation. The nonce is made
per request and handed to the app in ``scope["csp_nonce"]``: no module or middleware state
holds it, so two concurrent requests can never see each other's (Secweb's race, B25).
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

__all__ = [
    "REPORT_MAX_BYTES",
    "HeaderSet",
    "new_nonce",
    "nonce_template",
    "read_reports",
    "with_report_uri",
]

Header = tuple[bytes, bytes]
logger = logging.getLogger("asgisec")

# A violation report is well under 2 KiB; the Reporting API may batch a few. 64 KiB is ample
# and bounds what one request can make asgisec parse and log.
REPORT_MAX_BYTES = 65_536
# At most this many reports of one request are logged (each is counted).
_REPORTS_LOGGED = 10
_FIELD_CHARS = 200  # a logged field is cut here: report fields are attacker-controlled

_NONCE = "\x00nonce\x00"  # placeholder while compiling; never in a configured policy
_CSP = b"content-security-policy"
_CSP_RO = b"content-security-policy-report-only"


def new_nonce() -> str:
    """144 random bits, base64 (CSP's ``base64-value``): unguessable and unique per request."""
    return base64.b64encode(os.urandom(18)).decode("ascii")


def _directives(policy: str) -> list[list[str]]:
    return [part.split() for part in policy.split(";") if part.strip()]


def nonce_template(policy: str) -> tuple[bytes, bytes]:
    """``policy`` with ``'nonce-…'`` in ``script-src``, split around where the nonce goes.

    ``script-src`` is created from ``default-src`` when absent (what the browser would fall
    back to); ``'none'`` is dropped from it, since a nonce is a source.
    """
    directives = _directives(policy)
    source = f"'nonce-{_NONCE}'"
    script = next((d for d in directives if d[0].lower() == "script-src"), None)
    if script is None:
        default = next((d for d in directives if d[0].lower() == "default-src"), None)
        script = ["script-src", *(default[1:] if default else [])]
        directives.append(script)
    script[1:] = [s for s in script[1:] if s.lower() != "'none'"] + [source]
    before, after = "; ".join(" ".join(d) for d in directives).split(_NONCE)
    return before.encode("latin-1"), after.encode("latin-1")


def with_report_uri(policy: str, path: str) -> str:
    """``policy`` reporting to ``path``, unless it already names its own report-uri."""
    if not path or not policy or "report-uri" in policy.lower():
        return policy
    return f"{policy.rstrip().rstrip(';')}; report-uri {path}"


class HeaderSet:
    """The security headers of one kind of response, precompiled.

    ``http``/``https`` are complete static blocks (refusals, and app responses without
    nonces). With nonces, app responses get ``nonce_http``/``nonce_https`` (the same minus
    the CSP headers) plus :meth:`nonced` built per request.
    """

    __slots__ = ("http", "https", "nonce_http", "nonce_https", "templates")

    def __init__(
        self,
        base: Iterable[Header],
        hsts: Header | None,
        overrides: Mapping[str, str],
        *,
        nonce: bool,
        report_path: str,
    ) -> None:
        headers: dict[bytes, bytes] = dict(base)
        hsts_override = overrides.get("strict-transport-security")
        if hsts_override is not None:  # sent on https only, like the configured one
            hsts = (b"strict-transport-security", hsts_override.encode()) if hsts_override else None
            overrides = {k: v for k, v in overrides.items() if k != "strict-transport-security"}
        for name, value in overrides.items():
            key = name.encode("ascii")
            if value:
                headers[key] = value.encode("latin-1")
            else:
                headers.pop(key, None)
        for policy in (_CSP, _CSP_RO):
            if policy in headers:
                text = with_report_uri(headers[policy].decode("latin-1"), report_path)
                headers[policy] = text.encode("latin-1")
        block = list(headers.items())
        self.http: tuple[Header, ...] = tuple(block)
        self.https: tuple[Header, ...] = (*block, hsts) if hsts else tuple(block)
        self.templates: tuple[tuple[bytes, bytes, bytes], ...] = ()
        if nonce:
            self.templates = tuple(
                (policy, *nonce_template(headers[policy].decode("latin-1")))
                for policy in (_CSP, _CSP_RO)
                if policy in headers
            )
        names = {t[0] for t in self.templates}
        self.nonce_http = tuple(h for h in self.http if h[0] not in names)
        self.nonce_https = tuple(h for h in self.https if h[0] not in names)

    def nonced(self, nonce: bytes) -> list[Header]:
        return [(name, before + nonce + after) for name, before, after in self.templates]


class _Report(msgspec.Struct):
    """The fields worth logging, from either report format (others are ignored)."""

    document_uri: Any = msgspec.field(default=None, name="document-uri")
    violated_directive: Any = msgspec.field(default=None, name="violated-directive")
    effective_directive: Any = msgspec.field(default=None, name="effective-directive")
    blocked_uri: Any = msgspec.field(default=None, name="blocked-uri")
    documentURL: Any = None  # the Reporting API's spelling
    effectiveDirective: Any = None
    blockedURL: Any = None


def _field(*values: Any) -> str:
    for value in values:
        if isinstance(value, str) and value:
            return value[:_FIELD_CHARS]
    return "-"


def read_reports(body: bytes, request_id: str) -> int | None:
    """Log the violation reports in ``body``; return how many, or None when it is not JSON.

    Accepts the ``report-uri`` format (``{"csp-report": {...}}``) and the Reporting API's
    (``[{"type": "csp-violation", "body": {...}}]``). Fields are cut short and logged with
    ``%r``, so a report cannot forge log lines.
    """
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    items = data if isinstance(data, list) else [data]
    reports = []
    for item in items:
        if not isinstance(item, dict):
            continue
        inner = item.get("csp-report", item.get("body"))
        if isinstance(inner, dict):
            reports.append(inner)
    for inner in reports[:_REPORTS_LOGGED]:
        try:
            report = msgspec.convert(inner, _Report)
        except msgspec.ValidationError:
            report = _Report()
        logger.warning(
            "CSP violation: directive=%r blocked=%r document=%r request_id=%s",
            _field(
                report.effective_directive, report.effectiveDirective, report.violated_directive
            ),
            _field(report.blocked_uri, report.blockedURL),
            _field(report.document_uri, report.documentURL),
            request_id,
        )
    return len(reports)
