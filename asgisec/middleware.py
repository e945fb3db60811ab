"""The ASGI shell: one pass per request through every policy, in a fixed order.

The policies (hosts, HTTPS, CORS, headers, rate-limit rules, guards, paths) are plain objects
compiled from the configuration in ``__init__``; this module only moves ASGI messages and asks
them. Read ``_http`` top to bottom to follow a request:

0. paths excluded from every check go straight to the app;
1. one pass over the request headers (host, origin, preflight fields, request id, proxies,
   user agent) and the client's address;
2. blocklist and bans → trusted host → HTTPS enforcement (308 to a validated host);
3. CORS preflight (answered here: never reaches the app, never rate-limited), then the
   metrics endpoint and the suspicious-request scan (log or block);
4. rate limit (one backend call for all the request's buckets) → concurrency slot;
5. body limit (declared length now, streamed bytes as they arrive);
6. under the deadline: the scan of a small form or JSON body, then the app, with ``send``
   wrapped once to add the precompiled headers;
7. ``finally``: the slot is released; the request is counted and logged.

Websocket handshakes get the host, HTTPS and Origin checks and are refused before accept.
Refusals are responses, not exceptions, and go out decorated like any other response.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .clients import ClientResolver, rate_limit_identity
from .config import SecurityConfig
from .cors import CorsPolicy
from .counters import SecurityCounters
from .csp import REPORT_MAX_BYTES, HeaderSet, new_nonce, read_reports
from .detection import Detector
from .env import validate
from .guards import ConcurrencyLimit, Deadlines, WebsocketOrigins
from .headers import HeaderPolicy
from .hosts import HostPolicy, parse_host
from .https import HttpsPolicy
from .observe import Exchange, Observer, read_body, replay
from .paths import PathMap
from .ratelimit.backend import Decision, RateLimitBackend
from .ratelimit.factory import backend_from_config
from .ratelimit.memory import MemoryBackend
from .ratelimit.rules import RuleSet, state_headers
from .responses import Rejection, canned
from .status import SCOPE_KEY

__all__ = ["SecurityMiddleware", "secure"]

# The same loose aliases as starlette.types, so Middleware(SecurityMiddleware, ...) type-checks.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Header = tuple[bytes, bytes]

logger = logging.getLogger("asgisec")

# A client's X-Request-ID is kept only if it is short and plain: it ends up in logs.
_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
# An overloaded process frees a slot within a request's time; one second is an honest retry.
_RETRY_SOON: Header = (b"retry-after", b"1")
_SECURE_PROTOS = (b"https", b"wss")
_VARY_ORIGIN: Header = (b"vary", b"Origin")


class _BodyTooLarge(Exception):
    """Raised from ``receive`` inside the app when the body passes the limit."""


def _several_workers() -> bool:
    """Best effort: are we one of several worker processes (uvicorn, gunicorn, asgisec serve)?"""
    for variable in ("ASGISEC_WORKERS", "WEB_CONCURRENCY"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 1:
            return True
    # uvicorn --workers N and hypercorn -w N start their workers with multiprocessing, numbered
    # from 1. hypercorn serves even one worker from a child process, and uvicorn --reload its
    # one server: process number 1 alone is not "several". Worker 2 and up warn.
    if multiprocessing.parent_process() is None:
        return False
    number = multiprocessing.current_process()._identity  # (n,) for the n-th child started
    return bool(number) and number[-1] > 1


def _new_request_id() -> bytes:
    # 128 random bits as 32 hex digits. An id must be unique, not secret: Mersenne Twister
    # (seeded from the OS, reseeded in forked workers) costs a fraction of a getrandom call.
    return b"%032x" % random.getrandbits(128)


class SecurityMiddleware:
    """Wraps an ASGI app with every asgisec policy. Stateless per request.

    ``config=None`` reads :meth:`SecurityConfig.from_env`. ``backend`` overrides the rate-limit
    storage chosen by ``RATE_LIMIT_STORAGE_URI`` (tests inject a memory backend with a fake
    clock this way).
    """

    def __init__(
        self,
        app: ASGIApp,
        config: SecurityConfig | None = None,
        *,
        backend: RateLimitBackend | None = None,
    ) -> None:
        self.app = app
        self.config = validate(SecurityConfig.from_env() if config is None else config)
        self.hosts = HostPolicy(self.config.hosts.trusted_hosts)
        proxies = self.config.proxies
        self.clients = ClientResolver(proxies.trusted_proxies, proxies.trusted_proxy_header)
        # Forwarded headers are only read (and only worth collecting) when a proxy is trusted.
        self.forwarded_header = (
            proxies.trusted_proxy_header.encode() if proxies.trusted_proxies else b""
        )
        self.ipv6_prefix = self.config.rate_limit.rate_limit_ipv6_prefix
        self.headers = HeaderPolicy(self.config.headers)
        self.cors = CorsPolicy(self.config.cors)
        self.rules = RuleSet(self.config.rate_limit)
        self.max_body = self.config.request.max_request_size
        self.rejections = canned(self.max_body)
        self.counters = SecurityCounters()
        detection = self.config.detection
        self.detector = Detector(
            detection.suspicious_mode,
            body_limit=detection.suspicious_body_limit,
            patterns=detection.suspicious_patterns,
            exemptions=detection.suspicious_exemptions,
        )
        self.observer = Observer(self.config, self.counters, self.clients)
        self.backend: RateLimitBackend = (
            backend if backend is not None else self._backend_from_config()
        )  # not `or`: an empty MemoryBackend is falsy (it has __len__)
        # Only a remote backend holds connections worth closing at lifespan shutdown.
        self.closes_backend = (
            not isinstance(self.backend, MemoryBackend) or self.observer.shared is not None
        )
        # The memory backend decides without awaiting: called directly, no coroutine per request.
        self.consume_now = (
            self.backend.consume_now if isinstance(self.backend, MemoryBackend) else None
        )
        self.rate_limit_headers = self.config.rate_limit.rate_limit_headers
        self.legacy_headers = self.config.rate_limit.rate_limit_legacy_headers
        self._compile_guards()
        if not self.config.hosts.trusted_hosts:
            logger.warning(
                "TRUSTED_HOSTS is empty: any Host header is accepted. Set it to the names "
                "this service answers to (e.g. TRUSTED_HOSTS=api.example.com)."
            )

    def _compile_guards(self) -> None:
        """HTTPS, websockets, deadline, slots, CSP and per-path policies, from config.guards."""
        guards = self.config.guards
        proxies = self.config.proxies
        # X-Forwarded-Proto goes with X-Forwarded-For; the Forwarded header carries proto= too.
        self.reads_proto = bool(proxies.trusted_proxies)
        self.proto_in_forwarded = proxies.trusted_proxy_header == "forwarded"
        self.proto_header = b"" if self.proto_in_forwarded else b"x-forwarded-proto"
        self.https = HttpsPolicy(guards, self.hosts)
        self.ws_origins = WebsocketOrigins(
            guards.websocket_allowed_origins or self.config.cors.allowed_origins
        )
        self.deadlines = Deadlines(guards.request_timeout) if guards.request_timeout else None
        self.slots = (
            ConcurrencyLimit(guards.max_concurrent_requests)
            if guards.max_concurrent_requests
            else None
        )
        # An empty map is None, so the per-request test is a plain truth test of an attribute.
        self.excluded: PathMap[bool] | None = (
            PathMap(dict.fromkeys(guards.excluded_paths, True)) or None
        )
        self.rate_exempt: PathMap[bool] | None = (
            PathMap(dict.fromkeys(guards.rate_limit_exempt_paths, True)) or None
        )
        self.csp_nonce = guards.csp_nonce
        self.report_path = guards.csp_report_path
        base = list(self.headers.http)
        if self.headers.enabled and guards.csp_report_only:
            base.append(
                (b"content-security-policy-report-only", guards.csp_report_only.encode("latin-1"))
            )
        hsts = self.headers.https[-1] if len(self.headers.https) > len(self.headers.http) else None

        def header_set(overrides: dict[str, str]) -> HeaderSet:
            return HeaderSet(
                base, hsts, overrides, nonce=guards.csp_nonce, report_path=guards.csp_report_path
            )

        self.header_set = header_set({})
        self.path_headers: PathMap[HeaderSet] | None = (
            PathMap(
                {prefix: header_set(overrides) for prefix, overrides in guards.path_headers.items()}
            )
            or None
        )

    def _backend_from_config(self) -> RateLimitBackend:
        uri = self.config.rate_limit.rate_limit_storage_uri
        if uri.startswith("memory://") and self.rules.enabled and _several_workers():
            logger.warning(
                "RATE_LIMIT_STORAGE_URI=memory:// with several worker processes: each worker "
                "keeps its own buckets, so every limit is multiplied by the worker count. "
                "Use a Redis URL to share limits."
            )
        return backend_from_config(self.config.rate_limit)

    # ------------------------------------------------------------------ status

    def health(self) -> dict[str, Any]:
        """The guide's ``checks.security`` block (see :func:`asgisec.security_health`)."""
        counts = self.counters.snapshot()
        observed = self.observer.health_fields(counts)
        return {
            "status": observed.pop("status"),
            "blocked_requests": counts["blocked_requests"],
            "rate_limited_requests": counts["rate_limited_requests"],
            "suspicious_requests": counts["suspicious_requests"],
            "security_headers_enabled": self.headers.enabled,
            "trusted_hosts_configured": self.hosts.configured,
            "total_requests": counts["total_requests"],
            "blocked_by_reason": counts["blocked_by_reason"],
            "csp_reports": counts["csp_reports"],
            "started_at": counts["started_at"],
            **observed,
        }

    # ------------------------------------------------------------------ the pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan" and self.closes_backend:
            await self._lifespan(scope, receive, send)
        else:  # future scope types pass through untouched
            await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, untouched; the backend's connections close at shutdown."""

        async def send_and_close(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                # Connected before the server accepts a request: a first request that has to
                # connect within RATE_LIMIT_BACKEND_TIMEOUT can miss it on a healthy Redis.
                warm_up = getattr(self.backend, "warm_up", None)
                if warm_up is not None:
                    try:
                        await warm_up()
                    except Exception as exc:  # a storage down at start: the failure policy
                        logger.warning("rate-limit storage not reachable at start-up (%s)", exc)
                self.observer.start()  # shared bans load before the first request, not after
            elif message["type"] == "lifespan.shutdown.complete":
                try:
                    await self.backend.aclose()
                except Exception:  # closing must never fail the shutdown
                    logger.warning("closing the rate-limit backend failed", exc_info=True)
                await self.observer.aclose()  # never raises
            await send(message)

        await self.app(scope, receive, send_and_close)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # 0. Paths excluded from every check (EXCLUDED_PATHS): untouched and uncounted.
        path: str = scope["path"]
        if self.excluded is not None and self.excluded.match(path):
            await self.app(scope, receive, send)
            return
        exchange = Exchange(send)  # records status, bytes and timing; counted and logged below
        try:
            await self._pipeline(scope, receive, exchange, path)
        finally:
            self.observer.finish(exchange, scope)

    async def _pipeline(self, scope: Scope, receive: Receive, send: Exchange, path: str) -> None:
        self.counters.total += 1
        scope[SCOPE_KEY] = self

        # 1. One pass over the request headers. A repeated Host or a conflicting repeated
        # Content-Length is malformed (RFC 9112 §3.2, §6.3): it becomes an unparsable value.
        # No name repeated (nearly every request): a dict built in C answers each question.
        # Otherwise the loop below keeps the rules for repeated fields exact.
        raw_headers = scope["headers"]
        if type(raw_headers) is not list:
            raw_headers = list(raw_headers)
        forwarded_name = self.forwarded_header
        proto_name = self.proto_header
        fields = dict(raw_headers)
        forwarded: list[bytes] | None = None
        protos: list[bytes] | None = None
        if len(fields) == len(raw_headers):
            get = fields.get
            host_raw = get(b"host")
            origin = get(b"origin")
            content_length = get(b"content-length")
            request_id = get(b"x-request-id")
            acr_method = get(b"access-control-request-method")
            acr_headers = get(b"access-control-request-headers")
            user_agent = get(b"user-agent")
            referer = get(b"referer")
            content_type = get(b"content-type")
            if forwarded_name and forwarded_name in fields:
                forwarded = [fields[forwarded_name]]
            if proto_name and proto_name in fields:
                protos = [fields[proto_name]]
        else:
            host_raw = origin = request_id = acr_method = acr_headers = content_length = None
            user_agent = referer = content_type = None
            for name, value in raw_headers:
                if name == b"host":
                    host_raw = value if host_raw is None else b""
                elif name == b"origin":
                    origin = value
                elif name == b"content-length":
                    content_length = value if content_length in (None, value) else b"-"
                elif name == b"x-request-id":
                    request_id = value
                elif name == b"access-control-request-method":
                    acr_method = value
                elif name == b"access-control-request-headers":
                    acr_headers = value
                elif name == b"user-agent":
                    user_agent = value
                elif name == b"referer":
                    referer = value
                elif name == b"content-type":
                    content_type = value
                elif name == forwarded_name:
                    forwarded = [value] if forwarded is None else [*forwarded, value]
                elif name == proto_name:
                    protos = [value] if protos is None else [*protos, value]
        if request_id is None or not _REQUEST_ID_RE.fullmatch(request_id):
            request_id = _new_request_id()
        peer = scope.get("client")
        client = self.clients.resolve(peer[0] if peer else None, forwarded)
        send.client = client
        send.request_id = request_id
        send.user_agent = user_agent
        https = scope.get("scheme") == "https"
        if self.reads_proto:  # a TLS-terminating proxy we trust says how the client came
            https = self._forwarded_secure(scope, forwarded, protos, https)
        extra: list[Header] = [(b"x-request-id", request_id)]
        cors = self.cors
        origin_allowed = cors.allows(origin)
        if origin_allowed:
            assert origin is not None
            extra.append((b"access-control-allow-origin", origin))
            extra.extend(cors.response_headers)

        # 2. Blocklist and bans first, then the trusted host (malformed Host is always refused;
        # a missing one only when hosts are configured).
        bans = self.observer.bans
        if bans.active and bans.refuses(client) is not None:
            await self._reject(send, "banned", https, extra)
            return
        host = None
        if host_raw is None:
            if not self.hosts.allow_any:
                await self._reject(send, "invalid_host", https, extra)
                return
        else:
            host = parse_host(host_raw)
            if not self.hosts.allows(host):
                await self._reject(send, "invalid_host", https, extra)
                return
        # HTTPS enforcement: 308 to the same path on a validated host, never the client's own.
        if not https and self.https.redirects(path):
            raw_path = scope.get("raw_path") or path.encode("utf-8", "replace")
            location = self.https.location(host, raw_path, scope.get("query_string", b""))
            extra.append((b"location", location))
            await self._reject(send, "https_redirect", https, extra, count=False)
            return

        # 3. CORS preflight: answered here, before rate limiting and the app.
        if (
            cors.enabled
            and acr_method is not None
            and origin is not None
            and scope["method"] == "OPTIONS"
        ):
            if not origin_allowed:
                await self._reject(send, "cors", https, [extra[0], cors.preflight_vary])
                return
            headers = [*cors.preflight(origin, acr_headers, acr_method), extra[0]]
            await self._respond(send, 204, headers, b"", https)
            return

        # Metrics for the allowed scrapers; the path does not exist for anyone else.
        observer = self.observer
        if observer.metrics_path and path == observer.metrics_path:
            if not observer.metrics_allowed_for(client):
                await self._reject(send, "not_found", https, extra, count=False)
                return
            body, kind = observer.metrics_body()
            headers = [(b"content-type", kind), (b"content-length", b"%d" % len(body)), *extra]
            await self._respond(send, 200, headers, body, https)
            return

        # 3b. Suspicious-request scan of the request line and selected headers.
        detector = self.detector
        if detector.enabled:
            finding = detector.scan(
                path, scope.get("raw_path"), scope["query_string"], user_agent, referer
            )
            if finding is not None:
                observer.suspicious(send, finding)
                if detector.blocks:
                    await self._reject(send, "suspicious_blocked", https, extra)
                    return

        # 4. Rate limit: every bucket of this request in one atomic backend call.
        if self.rules.enabled and not (
            self.rate_exempt is not None and self.rate_exempt.match(path)
        ):
            buckets = self.rules.match(path)
            identity = rate_limit_identity(client, self.ipv6_prefix)
            consume_now = self.consume_now
            decision: Decision = (
                consume_now(identity, buckets)
                if consume_now is not None
                else await self.backend.consume(identity, buckets)
            )
            if self.rate_limit_headers:
                extra.append(self.rules.policy_header(buckets))
                extra += state_headers(
                    buckets, decision.results, self.legacy_headers, charged=decision.allowed
                )
            if (
                decision.unavailable
            ):  # fail-closed while the storage is down: not the client's fault
                seconds = max(1, -(-decision.retry_after_us // 1_000_000))
                extra.append((b"retry-after", str(seconds).encode("ascii")))
                await self._reject(send, "unavailable", https, extra)
                return
            if not decision.allowed:
                if decision.retry_after_us >= 0:  # -1: this cost can never pass; no promise
                    seconds = max(1, -(-decision.retry_after_us // 1_000_000))
                    extra.append((b"retry-after", str(seconds).encode("ascii")))
                await self._reject(send, "rate_limited", https, extra)
                return
        # ... then a concurrency slot: refused at once when all are taken, never queued.
        slots = self.slots
        if slots is not None and not slots.acquire():
            extra.append(_RETRY_SOON)
            await self._reject(send, "overloaded", https, extra)
            return
        try:
            # 5. Body limit, declared: refuse before the app runs at all.
            limit = self.max_body
            if limit and content_length is not None:
                if not content_length.isdigit():  # servers usually refuse this first; be sure
                    await self._reject(send, "bad_request", https, extra)
                    return
                # int() refuses more than 4300 digits; a length that long is over any limit.
                digits = content_length.lstrip(b"0")
                if len(digits) > 4000 or int(digits or b"0") > limit:
                    await self._reject(send, "too_large", https, extra)
                    return
            # 5b. A small form or JSON body is scanned before the app reads it (in _app, under
            # the deadline: a client that stalls mid-body must not hold its slot for ever).
            scan_type = (
                content_type
                if detector.enabled and detector.wants_body(content_type, _length(content_length))
                else None
            )
            await self._app(
                scope,
                receive,
                send,
                path=path,
                request_id=request_id,
                https=https,
                extra=extra,
                scan_type=scan_type,
            )
        finally:
            # 7. Whatever happened in the app: the slot is free again.
            if slots is not None:
                slots.release()

    async def _app(
        self,
        scope: Scope,
        receive: Receive,
        send: Exchange,
        *,
        path: str,
        request_id: bytes,
        https: bool,
        extra: list[Header],
        scan_type: bytes | None = None,
    ) -> None:
        """6. The app (or the CSP report endpoint) under the deadline, its headers added.

        ``scan_type``: the content type of a body to scan first (5b), under the same deadline.
        """
        refusal_extra = list(extra)  # asgisec's own refusals keep the strict headers
        header_set = self.header_set
        if self.path_headers is not None:
            header_set = self.path_headers.match(path) or header_set
        if self.csp_nonce:  # fresh per request, and only ever in this request's scope
            nonce = new_nonce()
            scope["csp_nonce"] = nonce
            block = header_set.nonce_https if https else header_set.nonce_http
            extra += header_set.nonced(nonce.encode("ascii"))
        else:
            block = header_set.https if https else header_set.http
        names = self.headers.names
        vary_origin = self.cors.enabled
        started = False
        too_large = False

        server_send = send.send  # what the Exchange would record is recorded here directly

        async def send_decorated(message: Message) -> None:
            nonlocal started
            kind = message["type"]
            if kind == "http.response.start":
                if too_large:
                    return  # the app answered a body it was never given: 413 goes instead
                started = True
                message = dict(message)
                message["headers"] = _merge(
                    message.get("headers", ()), block, extra, names, vary_origin
                )
                send.status = message["status"]
            elif too_large and not started:
                return
            elif kind == "http.response.body":
                send.bytes += len(message.get("body", b""))
            await server_send(message)

        app_receive = receive
        limit = self.max_body
        if limit:
            received = 0

            async def app_receive() -> Message:
                nonlocal received, too_large
                if too_large:
                    raise _BodyTooLarge
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        too_large = True
                        raise _BodyTooLarge
                return message

        app = self.app
        if self.report_path and path == self.report_path and scope["method"] == "POST":

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                await self._csp_report(receive, send, request_id)

        deadlines = self.deadlines
        deadline = deadlines.enter() if deadlines is not None else None
        timed_out = False
        app_started = time.perf_counter()
        try:
            try:
                if scan_type is not None:
                    # 5b. Read through the body limit, scanned, replayed to the app. Waiting
                    # for the client's bytes is counted with the app's time (it is not work
                    # asgisec does: a slow upload must not degrade /health); the scan is not.
                    messages, scanned = await read_body(app_receive, self.detector.body_limit)
                    read_done = time.perf_counter()
                    app_receive = replay(messages, app_receive)
                    finding = (
                        None
                        if scanned is None
                        else self.detector.scan_body(path, scan_type, scanned)
                    )
                    if finding is not None:
                        self.observer.suspicious(send, finding)
                        if self.detector.blocks:
                            await self._reject(send, "suspicious_blocked", https, refusal_extra)
                            return
                    app_started += time.perf_counter() - read_done
                await app(scope, app_receive, send_decorated)
            finally:  # the clock stops with the app, before asgisec answers for it
                send.app_seconds = time.perf_counter() - app_started
                if deadlines is not None:
                    deadlines.leave(deadline)
        except _BodyTooLarge:
            pass  # handled below, whether the app let it through or swallowed it
        except asyncio.CancelledError:
            if deadline is None or not deadline.ours():
                raise  # the server's cancellation (client gone, shutdown) goes on
            timed_out = True
        except Exception:
            if deadline is not None:
                deadline.ours()  # the app turned the deadline into an error: take it back
            if not started:
                await self._reject(send, "internal_error", https, extra, count=False)
            raise  # the app's own error goes on to the server's error handling and logs
        if deadline is not None and deadline.expired and not timed_out:
            timed_out = deadline.ours()  # the app swallowed the cancellation and returned
        if timed_out:
            if not started:
                await self._reject(send, "timeout", https, extra)
            else:  # too late for a 504: the response ends cut short, and is counted
                self.counters.blocked["timeout"] += 1
                send.reason = "timeout"  # and its log line says so
            return
        if too_large:
            if not started:
                await self._reject(send, "too_large", https, extra)
            else:
                self.counters.blocked["too_large"] += 1
                send.reason = "too_large"

    def _client(self, scope: Scope, forwarded: list[bytes] | None) -> str:
        peer = scope.get("client")
        return self.clients.resolve(peer[0] if peer else None, forwarded)

    def _forwarded_secure(
        self, scope: Scope, forwarded: list[bytes] | None, protos: list[bytes] | None, now: bool
    ) -> bool:
        peer = scope.get("client")
        proto = self.clients.forwarded_proto(
            peer[0] if peer else None, forwarded if self.proto_in_forwarded else protos
        )
        return now if proto is None else proto in _SECURE_PROTOS

    async def _csp_report(self, receive: Receive, send: Send, request_id: bytes) -> None:
        """``CSP_REPORT_PATH``: read at most 64 KiB of reports, count and log them, 204."""
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away mid-report: nothing was received, nothing is counted,
                # and the request still ends with a defined answer (the server drops it).
                await _send_canned(send, self.rejections["bad_request"])
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > REPORT_MAX_BYTES:
                rejection = self.rejections["too_large"]
                self.counters.blocked["too_large"] += 1
                await _send_canned(send, rejection)
                return
        count = read_reports(bytes(body), request_id.decode("ascii"))
        if count is None:
            self.counters.blocked["bad_request"] += 1
            await _send_canned(send, self.rejections["bad_request"])
            return
        self.counters.csp_reports += count
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.excluded is not None and self.excluded.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        self.counters.total += 1
        scope[SCOPE_KEY] = self
        host_raw = origin = request_id = None
        forwarded: list[bytes] | None = None
        protos: list[bytes] | None = None
        forwarded_name = self.forwarded_header
        proto_name = self.proto_header
        for name, value in scope["headers"]:
            if name == b"host":  # repeated: malformed, as for HTTP (RFC 9112 §3.2)
                host_raw = value if host_raw is None else b""
            elif name == b"origin":  # repeated: not one page's origin, so none allowed
                origin = value if origin is None else b""
            elif name == b"x-request-id":
                request_id = value
            elif name == forwarded_name:
                forwarded = [value] if forwarded is None else [*forwarded, value]
            elif name == proto_name:
                protos = [value] if protos is None else [*protos, value]
        trusted = (
            self.hosts.allow_any if host_raw is None else self.hosts.allows(parse_host(host_raw))
        )
        secure = scope.get("scheme") == "wss"
        if self.reads_proto:
            secure = self._forwarded_secure(scope, forwarded, protos, secure)
        bans = self.observer.bans
        if bans.active and bans.refuses(self._client(scope, forwarded)) is not None:
            reason = "banned"  # the blocklist comes first here too
        elif not trusted:
            reason = "invalid_host"
        elif self.https.enforced and not secure:
            reason = "https_required"  # ws:// under FORCE_HTTPS: refused, never redirected
        elif not self.ws_origins.allows(origin, host_raw):
            reason = "cors"  # cross-site websocket hijacking (B12)
        else:
            await self.app(scope, receive, send)
            return
        # Refuse before accept. The handshake must be received first (ASGI order).
        self.counters.blocked[reason] += 1
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            rejection = self.rejections[reason]
            if request_id is None or not _REQUEST_ID_RE.fullmatch(request_id):
                request_id = _new_request_id()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 403,
                    "headers": [
                        *rejection.headers,
                        (b"x-request-id", request_id),
                        *self.header_set.http,
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": rejection.body})
        else:
            await send({"type": "websocket.close", "code": 1008})

    # ------------------------------------------------------------------ answers

    async def _reject(
        self, send: Send, reason: str, https: bool, extra: list[Header], *, count: bool = True
    ) -> None:
        rejection: Rejection = self.rejections[reason]
        if isinstance(send, Exchange):
            send.reason = reason  # for the request's log line
        if count:
            if reason == "rate_limited":
                self.counters.rate_limited += 1
            else:
                self.counters.blocked[reason] += 1
        await self._respond(
            send, rejection.status, [*rejection.headers, *extra], rejection.body, https
        )

    async def _respond(
        self, send: Send, status: int, headers: list[Header], body: bytes, https: bool
    ) -> None:
        block = self.header_set.https if https else self.header_set.http
        headers = _merge(headers, block, (), self.headers.names, self.cors.enabled)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _send_canned(send: Send, rejection: Rejection) -> None:
    headers = list(rejection.headers)
    await send({"type": "http.response.start", "status": rejection.status, "headers": headers})
    await send({"type": "http.response.body", "body": rejection.body})


def _length(content_length: bytes | None) -> int | None:
    """A declared length already checked above, as an int (None when absent or odd)."""
    if content_length is None or not content_length.isdigit() or len(content_length) > 18:
        return None
    return int(content_length)


def _merge(
    app_headers: Any,
    block: tuple[Header, ...],
    extra: tuple[Header, ...] | list[Header],
    names: frozenset[bytes],
    vary_origin: bool,
) -> list[Header]:
    """The app's headers plus every asgisec header it did not set itself (set-if-absent).

    ``Vary`` is merged rather than added: ``Origin`` is appended to the app's own value so a
    cache never serves one origin's CORS answer to another (Starlette PR #3516).
    """
    headers = list(app_headers)
    if not headers:  # asgisec's own answers: nothing of the app's to keep
        headers = [*block, *extra]
        if vary_origin:
            headers.append(_VARY_ORIGIN)
        return headers
    present = {name.lower() for name, _ in headers}
    headers += [header for header in block if header[0] not in present]
    headers += [header for header in extra if header[0] not in present]
    if vary_origin:
        if b"vary" not in present:
            headers.append(_VARY_ORIGIN)
        else:
            vary_at = next(i for i, (name, _) in enumerate(headers) if name.lower() == b"vary")
            name, value = headers[vary_at]
            tokens = {token.strip().lower() for token in value.split(b",")}
            if b"origin" not in tokens and b"*" not in tokens:
                headers[vary_at] = (name, value + b", Origin")
    return headers


def secure(app: ASGIApp, config: SecurityConfig | None = None) -> SecurityMiddleware:
    """Wrap ``app`` with every asgisec policy; ``config=None`` reads the environment."""
    return SecurityMiddleware(app, config)
