"""The requests an audit sends, and what came back, as an :class:`~.observed.Observation`.

By default an audit sends a fixed, small set of requests (about ten): the target (following
at most :data:`MAX_REDIRECTS` redirects), its plain-HTTP twin, two CORS probes (an unknown
origin and ``null``), one preflight, a 404, an unknown method, malformed JSON, an undecodable
path and an encoded path traversal. The rate-limit burst is opt-in and bounded in count and
rate. Bodies are read up to :data:`MAX_BODY` bytes. httpx is imported by the caller's
handler, never at import time of the core.
"""

from __future__ import annotations

import secrets
import ssl
import time
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from .catalog import result
from .model import Result
from .observed import Hop, Observation, Response

if TYPE_CHECKING:
    import httpx

__all__ = [
    "EVIL_ORIGIN",
    "MAX_BODY",
    "MAX_PROBE_RATE",
    "MAX_PROBE_REQUESTS",
    "MAX_REDIRECTS",
    "TRAVERSAL_PATH",
    "Unreachable",
    "not_probed",
    "observe",
    "probe_rate_limit",
]

MAX_REDIRECTS = 10  # as browsers give up after ~20; ten hops is already a misconfiguration
MAX_BODY = 65_536  # enough to find a traceback or a debug page; never a whole download
EVIL_ORIGIN = "https://evil.example"  # .example is reserved (RFC 2606): never a real site
# Encoded so no client normalises it away (httpx turns a literal /../ into /etc/passwd: A18).
TRAVERSAL_PATH = "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"
MAX_PROBE_REQUESTS = 1000
MAX_PROBE_RATE = 100.0  # requests per second


class Unreachable(Exception):
    """Nothing answered at the target: exit status 3."""


def _client(verify: ssl.SSLContext | bool, timeout: float, user_agent: str) -> httpx.Client:
    """A client that never stores a cookie: every probe is sent as a stranger would send it.

    Replaying the target's cookies would turn the anonymous probes into logged-in ones, and
    a cookie that is not ASCII cannot even be sent back (httpx raises while building the
    request). Cookies are still judged: from each response's own ``Set-Cookie``.
    """
    import httpx  # noqa: PLC0415 - the `tools` extra

    return httpx.Client(
        verify=verify,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": user_agent},
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # accepts none
    )


def _record(response: httpx.Response, body: bytes) -> Response:
    return Response(
        url=str(response.url),
        status=response.status_code,
        headers=[
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in response.headers.raw
        ],
        body=body.decode("utf-8", "replace"),
    )


def _fetch(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Response:
    with client.stream(method, url, headers=headers, content=content) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= MAX_BODY:
                break
        return _record(response, bytes(body[:MAX_BODY]))


def _follow(client: httpx.Client, url: str) -> list[Response]:
    """GET ``url`` and each redirect after it (bounded); raises httpx errors on the first hop."""
    import httpx  # noqa: PLC0415 - the `tools` extra

    chain = [_fetch(client, "GET", url)]
    while len(chain) <= MAX_REDIRECTS:
        last = chain[-1]
        location = last.first("location")
        if last.status not in (301, 302, 303, 307, 308) or not location:
            break
        target = str(httpx.URL(last.url).join(location))
        if urlsplit(target).scheme not in ("http", "https"):
            break
        try:
            chain.append(_fetch(client, "GET", target))
        except httpx.HTTPError:
            break
    return chain


def _http_twin(url: str, http_url: str | None) -> str | None:
    """Where to look for the plain-HTTP redirect of an https:// target (None: nowhere)."""
    if http_url is not None:
        return http_url
    parts = urlsplit(url)
    if parts.port not in (None, 443):
        return None  # port 80 is not this service's twin when HTTPS runs on another port
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    return urlunsplit(("http", shown, parts.path or "/", parts.query, ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def observe(
    target: str,
    *,
    verify: ssl.SSLContext | bool,
    verified: bool,
    http_url: str | None = None,
    timeout: float = 10.0,
    user_agent: str = "asgisec-audit",
) -> Observation:
    """Send the audit's fixed requests to ``target``; raises :class:`Unreachable`."""
    import httpx  # noqa: PLC0415 - the `tools` extra

    with _client(verify, timeout, user_agent) as client:
        try:
            chain = _follow(client, target)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{target}: {exc or type(exc).__name__}") from None
        main = chain[-1]
        https = urlsplit(main.url).scheme == "https"
        observation = Observation(
            target=target, main=main, chain=chain, https=https, verified=https and verified
        )
        if urlsplit(target).scheme == "http":
            observation.http_route = [Hop(r.url, r.status) for r in chain]
            observation.http_reachable = True
        else:
            twin = _http_twin(target, http_url)
            if twin is not None:
                try:
                    route = _follow(client, twin)
                except httpx.HTTPError:
                    observation.http_route, observation.http_reachable = [], False
                else:
                    observation.http_route = [Hop(r.url, r.status) for r in route]
                    observation.http_reachable = True

        def attempt(
            method: str,
            url: str,
            extra: dict[str, str] | None = None,
            content: bytes | None = None,
        ) -> Response | None:
            try:
                return _fetch(client, method, url, headers=extra, content=content)
            except httpx.HTTPError:
                return None

        url, origin = main.url, _origin(main.url)
        observation.cors_origin = EVIL_ORIGIN
        observation.cors = attempt("GET", url, {"origin": EVIL_ORIGIN})
        observation.null_origin = attempt("GET", url, {"origin": "null"})
        observation.preflight = attempt(
            "OPTIONS",
            url,
            {
                "origin": EVIL_ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,authorization",
            },
        )
        probes = [
            attempt("GET", f"{origin}/asgisec-audit-{secrets.token_hex(8)}"),
            attempt("ASGISECPROBE", url),
            attempt("POST", url, {"content-type": "application/json"}, b'{"asgisec": '),
            attempt("GET", f"{origin}/%ff%fe%fd"),
        ]
        observation.errors = [p for p in probes if p is not None]
        observation.traversal = attempt("GET", origin + TRAVERSAL_PATH)
    return observation


def probe_rate_limit(
    url: str,
    *,
    verify: ssl.SSLContext | bool,
    requests: int,
    rate: float,
    timeout: float = 10.0,
    user_agent: str = "asgisec-audit",
) -> list[Result]:
    """GET ``url`` up to ``requests`` times at ``rate`` per second; stop at the first 429."""
    import httpx  # noqa: PLC0415 - the `tools` extra

    count = max(1, min(requests, MAX_PROBE_REQUESTS))
    pause = 1.0 / max(0.1, min(rate, MAX_PROBE_RATE))
    limited: Response | None = None
    sent = 0
    with _client(verify, timeout, user_agent) as client:
        started = time.monotonic()
        for sent in range(1, count + 1):
            try:
                response = _fetch(client, "GET", url)
            except httpx.HTTPError as exc:
                why = f"request {sent} failed: {exc or type(exc).__name__}"
                return [
                    result("ratelimit.not-enforced", "inconclusive", why),
                    result("ratelimit.no-retry-after", "inconclusive", why),
                ]
            if response.status == 429:
                limited = response
                break
            delay = started + sent * pause - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    if limited is None:
        return [
            result("ratelimit.not-enforced", "fail", f"{sent} requests, no 429"),
            result("ratelimit.no-retry-after", "skipped", "no 429 seen"),
        ]
    retry_after = (limited.first("retry-after") or "").strip()
    return [
        result("ratelimit.not-enforced", "pass", f"429 after {sent} requests"),
        result(
            "ratelimit.no-retry-after",
            "pass" if retry_after else "fail",
            f"Retry-After: {retry_after}" if retry_after else "429 without Retry-After",
        ),
    ]


def not_probed() -> list[Result]:
    why = "active probe, opt-in: --probe-rate-limit"
    return [
        result("ratelimit.not-enforced", "skipped", why),
        result("ratelimit.no-retry-after", "skipped", why),
    ]
