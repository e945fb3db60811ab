"""Scaling curves: asgisec's cost per request as the configuration or the traffic grows.

Each curve turns on one stage (the others off, as in test_overhead.py) and grows one thing:

* ``hosts-exact``: 1 → 10,000 exact ``TRUSTED_HOSTS`` (a frozenset: flat);
* ``hosts-wildcard``: 1 → 10,000 ``*.domain`` patterns (a set of suffixes, probed once per dot
  of the request's host: flat in the number of patterns);
* ``cors-origins``: 1 → 1,000 ``ALLOWED_ORIGINS`` (a frozenset: flat);
* ``rate-rules``: 1 → 20 ``RATE_LIMIT_RULES`` that all match the request (one bucket each, in one
  backend call: linear in the rules that match, never in the rules configured);
* ``detection-query``: query strings of 100 B → 64 KiB through suspicious-request detection
  (benign parameters with quotes, commas and encoded characters, so that every value is decoded
  and matched rather than skipped as a plain word): linear in the bytes, and the rules are
  written so that no input makes a regex backtrack (tests/test_detection.py bounds the work per
  byte on adversarial inputs);
* ``memory-clients``: 10,000 → 1,000,000 distinct clients held by the memory backend
  (``RATE_LIMIT_MAX_KEYS`` raised to hold them all), each request from one of them in turn; the
  bytes each key costs are measured with tracemalloc, and a last case shows the bound: a million
  clients through the default ``RATE_LIMIT_MAX_KEYS`` leave 100,000 keys.

Every case checks its answer (status 200, the stage really engaged) before and after it is
timed. With ``--benchmark-disable`` (the smoke run) the client curve fills at most 10,000 keys so
the smoke run stays quick; the timed run fills the full size.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from asgisec import SecurityConfig, SecurityMiddleware
from asgisec.clients import rate_limit_identity
from asgisec.ratelimit.memory import MemoryBackend

from .conftest import BATCH, HOST, ORIGIN, RESPONSE_BODY, Runner, bare_app, exchange
from .conftest import _discard as discard
from .conftest import _receive as receive
from .stages import STAGES_OFF

SMOKE_MAX_CLIENTS = 10_000

# Patterns that all match /api/calculate; rules past the 11th reuse them with another limit
# (a different bucket: the key names the limit).
MATCHING_PATTERNS = (
    "/api/calculate",
    "/api/*",
    "/*/calculate",
    "/*/*",
    "/**",
    "/api/**",
    "/*/**",
    "/api/calculate/**",
    "/*/calculate/**",
    "/api/*/**",
    "/*/*/**",
)


def _hosts_exact(size: int) -> dict[str, str]:
    names = [f"host{i}.example.net" for i in range(size - 1)] + [HOST]
    return {"TRUSTED_HOSTS": ",".join(names)}


def _hosts_wildcard(size: int) -> dict[str, str]:
    patterns = [f"*.domain{i}.example.net" for i in range(size - 1)] + ["*.example.com"]
    return {"TRUSTED_HOSTS": ",".join(patterns)}


def _cors_origins(size: int) -> dict[str, str]:
    origins = [f"https://site{i}.example.net" for i in range(size - 1)] + [ORIGIN]
    return {"ALLOWED_ORIGINS": ",".join(origins)}


def _rate_rules(size: int) -> dict[str, str]:
    rules = [
        f"{MATCHING_PATTERNS[i % len(MATCHING_PATTERNS)]}={1_000_000 + i}/second"
        for i in range(size)
    ]
    return {"RATE_LIMIT_RULES": ";".join(rules)}


# Benign, but never a plain word: an apostrophe passes the SQL gate, "%2C" must be decoded.
QUERY_UNIT = "name=O%27Brien&note=it%27s+fine%2C+really&tags=red,blue&page=2&"
ATTACK_QUERY = b"file=..%252f..%252fetc%252fpasswd"


def _query(size: int) -> bytes:
    text = (QUERY_UNIT * (size // len(QUERY_UNIT) + 1))[:size]
    return text.rpartition("&")[0].encode("ascii")  # whole parameters only, about ``size`` bytes


def _detection(size: int) -> dict[str, str]:
    return {"SUSPICIOUS_MODE": "log", "SUSPICIOUS_BODY_LIMIT": "0"}


CURVES: dict[str, tuple[Any, tuple[int, ...], str]] = {
    "hosts-exact": (_hosts_exact, (1, 10, 100, 1_000, 10_000), "exact TRUSTED_HOSTS"),
    "hosts-wildcard": (_hosts_wildcard, (1, 10, 100, 1_000, 10_000), "*.domain TRUSTED_HOSTS"),
    "cors-origins": (_cors_origins, (1, 10, 100, 1_000), "ALLOWED_ORIGINS"),
    "rate-rules": (_rate_rules, (1, 2, 5, 10, 20), "RATE_LIMIT_RULES matching the request"),
    "detection-query": (
        _detection,
        (100, 1_024, 4_096, 16_384, 65_536),
        "bytes of query string scanned by detection",
    ),
}


def _config(environ: dict[str, str]) -> SecurityConfig:
    return SecurityConfig.from_env({**STAGES_OFF, **environ}, env_file=None)


@pytest.mark.benchmark(group="scaling")
@pytest.mark.parametrize(
    ("curve", "size"),
    [(curve, size) for curve, (_, sizes, _) in CURVES.items() for size in sizes],
    ids=[f"{curve}-{size}" for curve, (_, sizes, _) in CURVES.items() for size in sizes],
)
def test_scaling(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, curve: str, size: int
) -> None:
    build, _, label = CURVES[curve]
    app = SecurityMiddleware(bare_app, _config(build(size)))
    if curve == "detection-query":
        # Fewer requests per round as the query grows (a 64 KiB one is scanned in ms): the
        # rounds stay short enough for warm-up and 200 rounds within the test timeout.
        runner = Runner(loop, app, batch=max(1, BATCH * 1_000 // size))
        runner.scope["query_string"] = _query(size)
    else:
        runner = Runner(loop, app)

    def check() -> None:
        response = runner.once()
        assert response.status == 200, (curve, size, response.body)
        assert response.body == RESPONSE_BODY
        if curve == "cors-origins":
            assert response.values("access-control-allow-origin") == [ORIGIN]
        if curve == "rate-rules":
            [policy] = response.values("ratelimit-policy")
            assert policy.count(";q=") == size  # every rule matched: one bucket each
        if curve.startswith("hosts"):
            assert app.hosts.configured == size
        if curve == "detection-query":  # every value scanned, none flagged; an attack is
            assert app.counters.suspicious == 0
            probe = dict(
                runner.scope, query_string=runner.scope["query_string"] + b"&" + ATTACK_QUERY
            )
            before = app.counters.suspicious
            runner.loop.run_until_complete(exchange(app, probe))
            assert app.counters.suspicious == before + 1
            app.counters.suspicious = 0

    check()
    benchmark.extra_info.update(curve=curve, size=size, label=label, batch=runner.batch)
    benchmark(runner)
    check()


# --------------------------------------------------------------------------- many clients


class ClientsRunner(Runner):
    """:class:`Runner`, each request from the next of ``clients`` in turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: Any, clients: list[str]) -> None:
        super().__init__(loop, app)
        self.clients = [(address, 40000) for address in clients]
        self.next = 0

    async def _batch(self) -> None:
        app, scope, clients = self.app, self.scope, self.clients
        index = self.next
        for _ in range(self.batch):
            request = dict(scope)
            request["client"] = clients[index]
            index = index + 1 if index + 1 < len(clients) else 0
            await app(request, receive, discard)
        self.next = index


def _addresses(count: int) -> list[str]:
    # Distinct IPv4 clients in 10.0.0.0/8 (up to 2**24 of them).
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(count)]


def _fill(app: SecurityMiddleware, addresses: list[str]) -> float:
    """Give every address its bucket directly in the backend; returns bytes per key."""
    backend = app.backend
    assert isinstance(backend, MemoryBackend)
    buckets = app.rules.match("/api/calculate")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for address in addresses:
            backend.consume_now(rate_limit_identity(address), buckets)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / max(1, len(backend))


@pytest.mark.benchmark(group="scaling")
@pytest.mark.parametrize("size", [10_000, 100_000, 1_000_000], ids=lambda n: f"clients-{n}")
def test_memory_backend_clients(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop, size: int
) -> None:
    filled = min(size, SMOKE_MAX_CLIENTS) if benchmark.disabled else size
    environ = {"RATE_LIMIT_DEFAULT": "1000000/second", "RATE_LIMIT_MAX_KEYS": str(filled)}
    app = SecurityMiddleware(bare_app, _config(environ))
    addresses = _addresses(filled)
    bytes_per_key = _fill(app, addresses)
    assert len(app.backend) == filled  # type: ignore[arg-type]
    runner = ClientsRunner(loop, app, addresses)
    assert runner.once().status == 200
    benchmark.extra_info.update(
        curve="memory-clients",
        size=size,
        filled=filled,
        label="distinct clients in the memory backend",
        bytes_per_key=bytes_per_key,
        batch=runner.batch,
    )
    benchmark(runner)
    assert len(app.backend) == filled  # type: ignore[arg-type]  # nobody was added or lost


@pytest.mark.benchmark(group="scaling")
def test_memory_backend_is_bounded(
    benchmark: BenchmarkFixture, loop: asyncio.AbstractEventLoop
) -> None:
    """A million distinct clients through the default bound leave 100,000 keys, not a million;
    then every request is from a client the bound has evicted: an insert and an eviction each."""
    clients = SMOKE_MAX_CLIENTS * 2 if benchmark.disabled else 1_000_000
    environ = {"RATE_LIMIT_DEFAULT": "1000000/second"}
    if benchmark.disabled:
        environ["RATE_LIMIT_MAX_KEYS"] = str(SMOKE_MAX_CLIENTS)
    app = SecurityMiddleware(bare_app, _config(environ))
    bound = app.config.rate_limit.rate_limit_max_keys
    addresses = _addresses(clients)
    bytes_per_key = _fill(app, addresses)
    assert len(app.backend) == bound  # type: ignore[arg-type]
    runner = ClientsRunner(loop, app, addresses)  # from the first: long evicted
    assert runner.once().status == 200
    benchmark.extra_info.update(
        curve="memory-bound",
        size=clients,
        keys=bound,
        label="new client per request at the bound (insert + evict)",
        bytes_per_key=bytes_per_key,
        batch=runner.batch,
    )
    benchmark(runner)
    assert len(app.backend) == bound  # type: ignore[arg-type]
