"""``asgisec audit URL``: probe a live service, grade it, and list what to fix.

    asgisec audit [URL] [--format text|json|sarif] [--fail-on SEVERITY] [--min-score N]
                  [--probe-rate-limit [--probe-requests N] [--probe-rate R]]
                  [--http-url URL] [--cacert FILE] [--timeout S]

URL defaults to ``ENGINE_BASE_URL`` (the guide's variable). Exit status: 0 pass; 1 a finding
at or above ``--fail-on`` (default high) or a score below ``--min-score``; 2 usage; 3 the
target did not answer.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from .common import error, http_url, positive_float, positive_int
from .model import EXIT_FINDINGS, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, SEVERITIES, Result

__all__ = ["register", "run_audit"]

DEFAULT_PROBE_REQUESTS = 150  # past the default 100/minute burst, with margin
DEFAULT_PROBE_RATE = 50.0  # requests per second: a 150-request burst takes about 3 s
URL_VARIABLE = "ENGINE_BASE_URL"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "audit",
        help="probe a live service and grade its security (headers, CORS, disclosure, TLS)",
        description=(
            "Probe a live service: security headers scored on the MDN HTTP Observatory "
            "algorithm, plus CORS, information disclosure, cookies, rate limiting and TLS."
        ),
        epilog="Exit status: 0 pass, 1 findings/score, 2 usage, 3 target unreachable.",
    )
    parser.add_argument(
        "url",
        nargs="?",
        type=http_url,
        metavar="URL",
        help=f"the service's base URL (default: ${URL_VARIABLE})",
    )
    parser.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES,
        default="high",
        help="exit 1 on a finding of this severity or worse (default: %(default)s)",
    )
    parser.add_argument(
        "--min-score",
        type=int,
        default=0,
        metavar="N",
        help="exit 1 when the score is below N (default: %(default)s)",
    )
    parser.add_argument(
        "--probe-rate-limit",
        action="store_true",
        help="actively check rate limiting with a bounded burst of GET requests (opt-in)",
    )
    parser.add_argument(
        "--probe-requests",
        type=positive_int,
        default=DEFAULT_PROBE_REQUESTS,
        metavar="N",
        help="most requests in the burst (default: %(default)s, at most 1000)",
    )
    parser.add_argument(
        "--probe-rate",
        type=positive_float,
        default=DEFAULT_PROBE_RATE,
        metavar="R",
        help="burst requests per second (default: %(default)s, at most 100)",
    )
    parser.add_argument(
        "--http-url",
        type=http_url,
        metavar="URL",
        help="where the plain-HTTP redirect lives (default: port 80 of an https:// URL's host)",
    )
    parser.add_argument("--cacert", metavar="FILE", help="trust this CA bundle (private CAs)")
    parser.add_argument(
        "--timeout", type=positive_float, default=10.0, metavar="S", help="per request (10 s)"
    )
    parser.set_defaults(handler=run_audit)


def run_audit(args: argparse.Namespace) -> int:
    url: str | None = args.url or os.environ.get(URL_VARIABLE) or None
    if url is None:
        error(f"audit: give a URL or set {URL_VARIABLE}")
        return EXIT_USAGE
    try:
        url = http_url(url)
    except argparse.ArgumentTypeError as exc:
        error(f"audit: {URL_VARIABLE}: {exc}")
        return EXIT_USAGE
    if args.cacert is not None and not os.path.isfile(args.cacert):
        error(f"audit: --cacert {args.cacert!r}: no such file")
        return EXIT_USAGE
    try:
        import httpx  # noqa: F401, PLC0415 - the `tools` extra
        import rich  # noqa: F401, PLC0415
    except ImportError:
        error('audit needs the tools extra: pip install "asgisec[tools]"')
        return EXIT_USAGE

    from .findings import api_findings  # noqa: PLC0415
    from .probes import Unreachable, not_probed, observe, probe_rate_limit  # noqa: PLC0415
    from .report import AuditReport, render_json, render_sarif, render_text  # noqa: PLC0415
    from .scoring import grade  # noqa: PLC0415
    from .tls import certificate_results, inspect_certificate, protocol_results  # noqa: PLC0415

    user_agent = f"asgisec-audit/{__version__}"
    tls_checks: list[Result] = []
    verified = False
    verify: ssl.SSLContext | bool = False
    parts = urlsplit(url)
    if parts.scheme == "https":
        host, port = parts.hostname or "", parts.port or 443
        info = inspect_certificate(host, port, cafile=args.cacert, timeout=args.timeout)
        if not info.reachable:
            error(f"audit: {url} did not answer: {info.error}")
            return EXIT_UNREACHABLE
        verified = info.verified
        verify = ssl.create_default_context(cafile=args.cacert) if verified else False
        tls_checks = certificate_results(info) + protocol_results(host, port, timeout=args.timeout)
    try:
        observation = observe(
            url,
            verify=verify if parts.scheme == "https" else True,
            verified=verified,
            http_url=args.http_url,
            timeout=args.timeout,
            user_agent=user_agent,
        )
    except Unreachable as exc:
        error(f"audit: target unreachable: {exc}")
        return EXIT_UNREACHABLE
    final = urlsplit(observation.main.url)
    if parts.scheme == "http" and final.scheme == "https":
        # Redirected to HTTPS: the TLS checks apply to where the redirect led.
        host, port = final.hostname or "", final.port or 443
        info = inspect_certificate(host, port, cafile=args.cacert, timeout=args.timeout)
        tls_checks = certificate_results(info) + protocol_results(host, port, timeout=args.timeout)
    checks = api_findings(observation)
    if args.probe_rate_limit:
        checks += probe_rate_limit(
            observation.main.url,
            verify=verify if observation.https else True,
            requests=args.probe_requests,
            rate=args.probe_rate,
            timeout=args.timeout,
            user_agent=user_agent,
        )
    else:
        checks += not_probed()
    if not tls_checks:
        from .catalog import AUDIT_CHECKS, result  # noqa: PLC0415

        checks += [
            result(check_id, "skipped", "plain HTTP: no TLS")
            for check_id in AUDIT_CHECKS
            if check_id.startswith("tls.")
        ]
    checks += tls_checks
    report = AuditReport(
        target=url,
        final_url=observation.main.url,
        status_code=observation.main.status,
        grading=grade(observation),
        checks=checks,
        fail_on=args.fail_on,
        min_score=args.min_score,
    )
    render = {"json": render_json, "sarif": render_sarif}.get(args.format, render_text)
    render(report, sys.stdout)
    sys.stdout.flush()
    return EXIT_OK if report.passed else EXIT_FINDINGS
