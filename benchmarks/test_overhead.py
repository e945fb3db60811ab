"""What asgisec costs per request, stage by stage, against the bare app and against Starlette.

Run with ``pytest benchmarks`` (timed) or ``pytest benchmarks --benchmark-disable`` (each case
once: a smoke check). ``python benchmarks/report.py`` runs it and writes docs/benchmarks.md.

Every case wraps the same :func:`~benchmarks.conftest.bare_app` and serves the same request
(``POST /api/calculate`` over HTTPS, 8 headers, an allowed ``Origin``). Each stage-alone
configuration turns the other stages off with the variables an operator would use, and each
case checks, before and after it is timed, that the answer is the one it claims to measure:
status 200, the headers its stage adds present exactly once, the headers of the other stages
absent, and (where the stage refuses things) that it does refuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from asgisec import SecurityConfig, SecurityMiddleware, secure

from . import peers
from .conftest import HOST, ORIGIN, RESPONSE_BODY, ASGIApp, Runner, bare_app, exchange, make_scope
from .stages import FULL_STAGES, OBSERVE_ON, STAGE_ON, STAGES_OFF

ALLOWED_HOSTS = (HOST, "www.example.com")

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "content-security-policy": None,
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cache-control": "no-store",
}
CORS_HEADERS = {"access-control-allow-origin": ORIGIN, "vary": "Origin"}
RATE_LIMIT_HEADERS = {"ratelimit-policy": None, "ratelimit": None}


def config(*stages: str) -> SecurityConfig:
    """Every stage off except ``stages`` (variable names of :data:`STAGE_ON` or
    :data:`OBSERVE_ON`)."""
    environ = dict(STAGES_OFF)
    for variable in stages:
        environ[variable] = {**STAGE_ON, **OBSERVE_ON}[variable]
    return SecurityConfig.from_env(environ, env_file=None)


def asgisec_app(*stages: str) -> Callable[[ASGIApp], ASGIApp]:
    def build(app: ASGIApp) -> ASGIApp:
        return SecurityMiddleware(app, config(*stages))

    return build


def asgisec_app_with_limit(limit: str) -> Callable[[ASGIApp], ASGIApp]:
    def build(app: ASGIApp) -> ASGIApp:
        environ = {**STAGES_OFF, "RATE_LIMIT_DEFAULT": limit}
        return SecurityMiddleware(app, SecurityConfig.from_env(environ, env_file=None))

    return build


def asgisec_full(app: ASGIApp) -> ASGIApp:
    return secure(app, config(*FULL_STAGES))


def asgisec_defaults(app: ASGIApp) -> ASGIApp:
    return secure(app, config(*FULL_STAGES, *OBSERVE_ON))


def starlette_trusted_host(app: ASGIApp) -> ASGIApp:
    return TrustedHostMiddleware(app, allowed_hosts=list(ALLOWED_HOSTS))


def starlette_cors(app: ASGIApp) -> ASGIApp:
    return CORSMiddleware(app, allow_origins=[ORIGIN])


def starlette_both(app: ASGIApp) -> ASGIApp:
    return starlette_trusted_host(starlette_cors(app))


def _bad_host(scope: dict[str, Any]) -> None:
    scope["headers"] = [
        (b"host", b"evil.example") if k == b"host" else (k, v) for k, v in scope["headers"]
    ]


def _too_large(scope: dict[str, Any]) -> None:
    scope["headers"] = [
        (k, b"2000000") if k == b"content-length" else (k, v) for k, v in scope["headers"]
    ]


@dataclass(frozen=True)
class Case:
    """One benchmark: how to wrap the bare app and what its answer must look like."""

    id: str
    label: str
    # baseline (the bare app), asgisec, starlette; report.py reads these from extra_info
    family: str
    build: Callable[[ASGIApp], ASGIApp]
    present: Mapping[str, str | None] = field(default_factory=dict)  # None: any value
    absent: frozenset[str] = frozenset()
    # A request the stage must refuse, and the status it refuses it with.
    probe: tuple[Callable[[dict[str, Any]], None], int] | None = None
    # The case whose median is subtracted to get this one's overhead (slowapi needs a router).
    baseline: str = "bare"


def _absent(*groups: Mapping[str, str | None]) -> frozenset[str]:
    return frozenset(name for group in groups for name in group)


# --------------------------------------------------------------------------- the peers
# (timed in the same run as asgisec: CASES holds them too; built in benchmarks/peers.py)

PEER_HEADERS = {name.lower(): value for name, value in peers.HEADERS.items()}
ANY_XFO = {"x-frame-options": None, "x-content-type-options": "nosniff"}

PEER_CASES = [
    Case(
        "starlette-router",
        "bare app as the route of a Starlette app (slowapi's baseline)",
        "baseline",
        peers.starlette_router,
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS),
    ),
    Case(
        "user-headers",
        "BaseHTTPMiddleware setting 6 security headers",
        "peer",
        peers.user_headers,
        present=PEER_HEADERS,
        absent=_absent(CORS_HEADERS),
    ),
    Case(
        "secure-headers",
        "secure `SecureASGIMiddleware` (default headers)",
        "peer",
        peers.secure_headers,
        present=ANY_XFO,
        absent=_absent(CORS_HEADERS),
    ),
    Case(
        "secweb-headers",
        "Secweb `SecWeb(app)` (default headers)",
        "peer",
        peers.secweb_headers,
        present=ANY_XFO,
        absent=_absent(CORS_HEADERS),
    ),
    Case(
        "slowapi-memory",
        "slowapi `SlowAPIASGIMiddleware`, memory storage",
        "peer",
        peers.slowapi_stack(),
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS),
        baseline="starlette-router",
    ),
    Case(
        "limits-memory",
        "limits async fixed window, memory storage (a minimal middleware)",
        "peer",
        peers.limits_middleware,
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS),
    ),
    Case(
        "typical-stack",
        "typical user stack: Starlette TrustedHost + CORS + BaseHTTPMiddleware headers",
        "peer",
        peers.typical_stack,
        present={**PEER_HEADERS, **CORS_HEADERS},
        probe=(_bad_host, 400),
    ),
    Case(
        "peer-full-typical-slowapi",
        "typical user stack + slowapi (memory)",
        "peer",
        peers.full_typical_slowapi(),
        present={**PEER_HEADERS, **CORS_HEADERS},
        probe=(_bad_host, 400),
        baseline="starlette-router",
    ),
    Case(
        "peer-full-secure-slowapi",
        "Starlette TrustedHost + CORS + secure + slowapi (memory)",
        "peer",
        peers.full_secure_slowapi(),
        present={**ANY_XFO, **CORS_HEADERS},
        probe=(_bad_host, 400),
        baseline="starlette-router",
    ),
    Case(
        "peer-full-secweb-limits",
        "Starlette TrustedHost + CORS + Secweb + limits (memory)",
        "peer",
        peers.full_secweb_limits(),
        present={**ANY_XFO, **CORS_HEADERS},
        probe=(_bad_host, 400),
    ),
]


CASES = [
    Case(
        "bare",
        "bare raw-ASGI app",
        "baseline",
        lambda app: app,
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS, RATE_LIMIT_HEADERS, {"x-request-id": None}),
    ),
    Case(
        "asgisec-shell",
        "asgisec, every stage off",
        "asgisec",
        asgisec_app(),
        present={"x-request-id": None},
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS, RATE_LIMIT_HEADERS),
    ),
    Case(
        "asgisec-hosts",
        "asgisec, trusted hosts only",
        "asgisec",
        asgisec_app("TRUSTED_HOSTS"),
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS, RATE_LIMIT_HEADERS),
        probe=(_bad_host, 400),
    ),
    Case(
        "asgisec-headers",
        "asgisec, security headers only",
        "asgisec",
        asgisec_app("ENABLE_SECURITY_HEADERS"),
        present=SECURITY_HEADERS,
        absent=_absent(CORS_HEADERS, RATE_LIMIT_HEADERS),
    ),
    Case(
        "asgisec-cors",
        "asgisec, CORS only",
        "asgisec",
        asgisec_app("ALLOWED_ORIGINS"),
        present=CORS_HEADERS,
        absent=_absent(SECURITY_HEADERS, RATE_LIMIT_HEADERS),
    ),
    Case(
        "asgisec-body",
        "asgisec, body limit only",
        "asgisec",
        asgisec_app("MAX_REQUEST_SIZE"),
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS, RATE_LIMIT_HEADERS),
        probe=(_too_large, 413),
    ),
    Case(
        "asgisec-ratelimit",
        "asgisec, memory rate limit only",
        "asgisec",
        asgisec_app("RATE_LIMIT_DEFAULT"),
        present=RATE_LIMIT_HEADERS,
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS),
    ),
    Case(
        "asgisec-guards",
        "asgisec, request timeout + concurrency cap only",
        "asgisec",
        asgisec_app("REQUEST_TIMEOUT", "MAX_CONCURRENT_REQUESTS"),
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS, RATE_LIMIT_HEADERS),
    ),
    Case(
        "asgisec-detection",
        "asgisec, suspicious-request detection only (request line, agent, JSON body)",
        "asgisec",
        asgisec_app("SUSPICIOUS_MODE"),
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS, RATE_LIMIT_HEADERS),
    ),
    Case(
        "asgisec-logging",
        "asgisec, request logs only (one JSON line per request to stderr)",
        "asgisec",
        asgisec_app("ENABLE_REQUEST_LOGGING"),
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS, RATE_LIMIT_HEADERS),
    ),
    Case(
        "asgisec-defaults",
        "asgisec `secure()` as shipped: the full stack + detection + request logs",
        "asgisec",
        asgisec_defaults,
        present={**SECURITY_HEADERS, **CORS_HEADERS, **RATE_LIMIT_HEADERS, "x-request-id": None},
        probe=(_bad_host, 400),
    ),
    Case(
        "asgisec-full",
        "asgisec `secure()`: hosts + headers + CORS + body + rate limit + guards",
        "asgisec",
        asgisec_full,
        present={**SECURITY_HEADERS, **CORS_HEADERS, **RATE_LIMIT_HEADERS, "x-request-id": None},
        probe=(_bad_host, 400),
    ),
    Case(
        "starlette-trustedhost",
        "Starlette TrustedHostMiddleware",
        "starlette",
        starlette_trusted_host,
        absent=_absent(SECURITY_HEADERS, CORS_HEADERS),
        probe=(_bad_host, 400),
    ),
    Case(
        "starlette-cors",
        "Starlette CORSMiddleware",
        "starlette",
        starlette_cors,
        present=CORS_HEADERS,
        absent=_absent(SECURITY_HEADERS),
    ),
    Case(
        "starlette-trustedhost-cors",
        "Starlette TrustedHostMiddleware + CORSMiddleware",
        "starlette",
        starlette_both,
        present=CORS_HEADERS,
        absent=_absent(SECURITY_HEADERS),
        probe=(_bad_host, 400),
    ),
    *PEER_CASES,
]


def check(case: Case, runner: Runner) -> None:
    """The answer is the one the case claims to measure (not an error path, not a refusal)."""
    response = runner.once()
    assert response.status == 200, (case.id, response.status, response.body)
    assert response.body == RESPONSE_BODY
    assert response.values("content-type") == ["application/json"]
    for name, expected in case.present.items():
        values = response.values(name)
        assert len(values) == 1, (case.id, name, values)
        if expected is not None:
            assert values[0] == expected, (case.id, name, values)
    assert not case.absent & response.names(), (case.id, case.absent & response.names())
    if case.probe is not None:
        alter, status = case.probe
        scope = make_scope()
        alter(scope)
        refused = runner.loop.run_until_complete(exchange(runner.app, scope))
        assert refused.status == status, (case.id, refused.status, refused.body)


@pytest.mark.benchmark(group="overhead")
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_overhead(benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, case: Case) -> None:
    runner = Runner(loop, case.build(bare_app))
    check(case, runner)
    benchmark.extra_info.update(
        case=case.id,
        label=case.label,
        family=case.family,
        baseline=case.baseline,
        batch=runner.batch,
    )
    benchmark(runner)
    check(case, runner)  # still the same answer after thousands of requests (e.g. never 429)


@pytest.mark.parametrize(
    "build",
    [
        peers.slowapi_stack(limit="2/minute"),
        lambda app: peers.limits_middleware(app, "2/minute"),
        asgisec_app_with_limit("2/minute"),
    ],
    ids=["slowapi", "limits", "asgisec"],
)
def test_rate_limiters_really_limit(
    loop: asyncio.AbstractEventLoop, build: Callable[[ASGIApp], ASGIApp]
) -> None:
    """The rate-limit cases time a limiter that is engaged (not exempt): a tight limit bites."""
    runner = Runner(loop, build(bare_app))
    assert [runner.once().status for _ in range(3)] == [200, 200, 429]
