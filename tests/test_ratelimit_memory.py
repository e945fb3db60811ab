"""Rate limits on the in-memory backend: the limit syntax, the rules, and the bucket arithmetic.

Every test drives an injected integer-microsecond clock; nothing sleeps. Cases: S1 (no window
edge lets twice the limit through), S6 (path parameters share their rule's bucket), S11
(Retry-After is the time remaining, rounded up, and honest), S13 (several limits on one request
are all enforced), S14 (a refused request consumes no other policy's quota), S17 (memory is
bounded by ``max_keys`` with LRU eviction), S19 (a cost that can never pass gets 429 without
Retry-After), S21 (``RateLimit``/``RateLimit-Policy`` semantics).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgisec import RateLimitConfig, SecurityConfig, SecurityMiddleware
from asgisec.ratelimit.backend import Decision
from asgisec.ratelimit.bucket import Bucket, step
from asgisec.ratelimit.limits import Limit, parse_limit, parse_limits, parse_rules
from asgisec.ratelimit.memory import MemoryBackend
from asgisec.ratelimit.rules import RuleSet, normalise_path
from tests.driver import Response, call, make_scope

US = 1_000_000


class Clock:
    """Integer microseconds, moved by the test."""

    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = round(seconds * US)


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def limited(
    clock: Clock, backend: Any = None, **rate_limit: Any
) -> tuple[SecurityMiddleware, MemoryBackend]:
    memory = MemoryBackend(max_keys=rate_limit.pop("max_keys", 100_000), clock=clock)
    config = SecurityConfig(rate_limit=RateLimitConfig(**rate_limit))
    return SecurityMiddleware(_ok, config, backend=backend or memory), memory


async def get(app: SecurityMiddleware, path: str = "/x", client: str = "198.51.100.1") -> Response:
    return await call(app, make_scope(path=path, client=(client, 50000)))


def bucket(limit: str, name: str = "default") -> Bucket:
    return Bucket.from_limit(name, parse_limit(limit))


# --------------------------------------------------------------------------- the limit syntax

LIMITS = [
    ("100/minute", Limit(100, 60), "per minute"),
    ("1/second", Limit(1, 1), "per second"),
    ("10/s", Limit(10, 1), "unit abbreviation"),
    ("3 per hour", Limit(3, 3600), "'per'"),
    ("7/day", Limit(7, 86400), "per day"),
    ("5/10seconds", Limit(5, 10), "multiple of seconds"),
    ("2/5minutes", Limit(2, 300), "multiple of minutes"),
    ("1/2days", Limit(1, 172800), "multiple of days"),
    ("5/Minute", Limit(5, 60), "case-insensitive"),
    (" 60 / minute ", Limit(60, 60), "spaces"),
    ("4/hours", Limit(4, 3600), "plural without a multiple"),
]

BAD_LIMITS = [
    ("abc", "words"),
    ("100", "no period"),
    ("/minute", "no amount"),
    ("0/minute", "zero amount"),
    ("5/0seconds", "zero period"),
    ("-1/minute", "negative"),
    ("1.5/minute", "fraction"),
    ("5/fortnight", "unknown unit"),
    ("5/ms", "milliseconds"),
    ("5/minute/x", "trailing junk"),
    ("5/minute,", "trailing comma"),
    ("10/second;1/hour", "semicolon"),
]


@pytest.mark.parametrize(("text", "limit"), [c[:2] for c in LIMITS], ids=[c[2] for c in LIMITS])
def test_limit_syntax(text: str, limit: Limit) -> None:
    assert parse_limit(text) == limit
    assert parse_limits(text) == (limit,)


@pytest.mark.parametrize("text", [c[0] for c in BAD_LIMITS], ids=[c[1] for c in BAD_LIMITS])
def test_bad_limit_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        parse_limits(text)


@pytest.mark.parametrize("text", ["none", "NONE", "off", "0", "", "  "])
def test_disabled(text: str) -> None:
    assert parse_limits(text) == ()


def test_several_limits() -> None:
    assert parse_limits("10/second, 1000/hour") == (Limit(10, 1), Limit(1000, 3600))


@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet="0123456789/ ,.-smhdayinuteocpr\u212a\u017f", max_size=25),
    )
)
def test_parse_limits_is_total(text: str) -> None:
    """Totality: Limits (amount and period at least 1) or ValueError, nothing else."""
    try:
        limits = parse_limits(text)
    except ValueError:
        return
    for limit in limits:
        assert isinstance(limit, Limit)
        assert limit.amount >= 1
        assert limit.period >= 1


@given(st.text(alphabet="/=;*,.0123456789abcminute ", max_size=40))
def test_parse_rules_is_total(text: str) -> None:
    try:
        rules = parse_rules(text)
    except ValueError:
        return
    for rule in rules:
        assert rule.pattern.startswith("/")
        assert rule.limits


# --------------------------------------------------------------------------- which buckets apply

MATCHES = [
    ("/api/calculate", ["default", "/api/calculate"], "RATE_LIMIT_<NAME> route"),
    ("/api/calculate/", ["default", "/api/calculate"], "trailing slash cannot dodge"),
    ("//api//calculate", ["default", "/api/calculate"], "repeated slashes cannot dodge"),
    ("/api/calculated", ["default"], "a longer name is another route"),
    ("/api/items/7", ["default", "/api/items/*"], "S6 one segment"),
    ("/api/items/7/parts", ["default"], "star is one segment only"),
    ("/api/items", ["default"], "star needs a segment"),
    ("/files", ["default", "/files/**"], "double star: the prefix itself"),
    ("/files/a/b/c", ["default", "/files/**"], "double star: any rest"),
    ("/filesystem", ["default"], "double star is segment-aligned"),
    ("/other", ["default"], "default everywhere"),
]


@pytest.mark.parametrize(("path", "names"), [c[:2] for c in MATCHES], ids=[c[2] for c in MATCHES])
def test_rule_matching(path: str, names: list[str]) -> None:
    rules = RuleSet(
        RateLimitConfig(
            rate_limit_routes={"calculate": "60/minute"},
            rate_limit_rules="/api/items/*=100/hour;/files/**=5/second",
        )
    )
    assert [b.name for b in rules.match(path)] == names


@pytest.mark.parametrize("path", ["/", "/a", "/a/b/c/"], ids=["root", "one segment", "deep"])
def test_root_double_star_matches_every_path(path: str) -> None:
    rules = RuleSet(RateLimitConfig(rate_limit_default="none", rate_limit_rules="/**=5/second"))
    assert [b.name for b in rules.match(path)] == ["/**"]


@pytest.mark.parametrize(
    ("path", "normal"),
    [("/", "/"), ("//", "/"), ("/a//b///", "/a/b"), ("/a/b", "/a/b")],
    ids=["root", "only slashes", "mixed", "already normal"],
)
def test_normalise_path(path: str, normal: str) -> None:
    assert normalise_path(path) == normal


def test_policy_header_names_every_bucket() -> None:
    rules = RuleSet(RateLimitConfig(rate_limit_rules="/x=1/second,2/hour"))
    assert rules.policy_header(rules.match("/x")) == (
        b"ratelimit-policy",
        b'"default";q=100;w=60, "/x@1s";q=1;w=1, "/x@3600s";q=2;w=3600',
    )


# --------------------------------------------------------------------------- the bucket


@given(
    amount=st.integers(1, 10),
    period=st.integers(1, 120),
    gaps=st.lists(st.integers(0, 30 * US), min_size=1, max_size=60),
)
def test_never_more_than_amount_plus_rate_times_interval(
    amount: int, period: int, gaps: list[int]
) -> None:
    """S1 as a property: in any interval Δt at most ``amount + amount·Δt/period`` pass."""
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    buckets = (bucket(f"{amount}/{period}seconds"),)
    admitted: list[int] = []
    for gap in gaps:
        clock.now += gap
        if backend.consume_now("peer", buckets).allowed:
            admitted.append(clock.now)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            count, span = j - i + 1, admitted[j] - start
            assert count * period * US <= amount * period * US + amount * span, (i, j)


@given(
    amount=st.integers(1, 10),
    period=st.integers(1, 120),
    gaps=st.lists(st.integers(0, 30 * US), min_size=1, max_size=40),
)
def test_remaining_is_exact(amount: int, period: int, gaps: list[int]) -> None:
    """S21: after an answer saying ``r`` remain, exactly ``r`` more pass at that instant."""
    clock = Clock()
    buckets = (bucket(f"{amount}/{period}seconds"),)
    backend = MemoryBackend(clock=clock)
    for gap in gaps:
        clock.now += gap
        backend.consume_now("peer", buckets)
    decision = backend.consume_now("peer", buckets)
    remaining = decision.results[0].remaining
    assert 0 <= remaining < amount
    if not decision.allowed:
        assert remaining == 0
    for _ in range(remaining):
        assert backend.consume_now("peer", buckets).allowed
    assert not backend.consume_now("peer", buckets).allowed


@given(
    amount=st.integers(1, 10),
    period=st.integers(1, 3600),
    cost=st.integers(1, 12),
    ahead=st.integers(0, 3600 * US),
    now=st.integers(0, 10**12),
)
def test_retry_is_honest(amount: int, period: int, cost: int, ahead: int, now: int) -> None:
    """S11/S19: refused with ``retry``: passes exactly ``retry`` later, not a µs sooner."""
    b = bucket(f"{amount}/{period}seconds")
    tat = now + min(ahead, b.tau_us)
    result = step(tat, now, b, cost)
    if result.allowed:
        assert result.retry_us == 0
        return
    assert result.tat_us == tat  # a refusal changes nothing
    if cost > amount:
        assert result.retry_us == -1
        return
    assert result.retry_us > 0
    assert step(tat, now + result.retry_us, b, cost).allowed
    assert not step(tat, now + result.retry_us - 1, b, cost).allowed


# --------------------------------------------------------------------------- S1


@pytest.mark.anyio
async def test_s1_no_burst_across_a_window_edge() -> None:
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="5/minute")
    statuses = []
    for moment in (59.5, 60.5):
        clock.at(moment)
        statuses += [(await get(app)).status for _ in range(5)]
    assert statuses == [200] * 5 + [429] * 5


# --------------------------------------------------------------------------- S6


@pytest.mark.anyio
@pytest.mark.parametrize(
    "paths",
    [
        ["/items/0", "/items/1", "/items/2", "/items/3", "/items/4"],
        ["/items/7", "/items/7/", "//items//7", "/items/7//", "/items/%2e"],
    ],
    ids=["S6 path parameters", "spellings of one path"],
)
async def test_s6_pattern_rule_is_one_bucket(paths: list[str]) -> None:
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="none", rate_limit_rules="/items/*=1/minute")
    statuses = [(await get(app, path)).status for path in paths]
    assert statuses == [200, 429, 429, 429, 429]


# --------------------------------------------------------------------------- S11


@pytest.mark.anyio
async def test_s11_retry_after_is_the_time_remaining() -> None:
    """2/minute is a token every 30 s: at t=5 the next one comes at t=30, so 25 s, not 60."""
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="2/minute")
    for moment, status in ((0, 200), (0.1, 200)):
        clock.at(moment)
        assert (await get(app)).status == status
    clock.at(5)
    refused = await get(app)
    assert refused.status == 429
    assert refused.header("retry-after") == "25"
    clock.at(5 + 24)
    assert (await get(app)).status == 429
    clock.at(5 + 25)
    assert (await get(app)).status == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("at", "retry_after"),
    [(5.5, "25"), (29.999_999, "1"), (29.0, "1")],
    ids=["fraction rounds up", "a microsecond rounds up to 1", "a whole second"],
)
async def test_s11_retry_after_is_whole_seconds_rounded_up(at: float, retry_after: str) -> None:
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="2/minute")
    await get(app)
    await get(app)
    clock.at(at)
    response = await get(app)
    assert response.status == 429
    assert response.header("retry-after") == retry_after
    clock.now += int(retry_after) * US
    assert (await get(app)).status == 200


@pytest.mark.anyio
async def test_no_retry_after_on_success() -> None:
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="2/minute", rate_limit_legacy_headers=True)
    response = await get(app)
    assert response.status == 200
    assert response.header("retry-after") is None
    reset = response.header("x-ratelimit-reset")
    assert reset is None or reset.isdigit()  # never a float epoch


# --------------------------------------------------------------------------- S13

MULTIPLE: list[tuple[dict[str, Any], list[tuple[float, str]], list[int], str]] = [
    (
        {"rate_limit_default": "none", "rate_limit_rules": "/x=1/second,2/hour"},
        [(0.0, "/x"), (1.1, "/x"), (2.2, "/x")],
        [200, 200, 429],
        "S13 two limits in one rule",
    ),
    (
        {"rate_limit_default": "5/minute", "rate_limit_routes": {"x": "3/minute"}},
        [(0.0, "/api/x")] * 4 + [(0.0, "/other")] * 3,
        [200, 200, 200, 429, 200, 200, 429],
        "default and route both apply",
    ),
    (
        {"rate_limit_default": "10/second,3/minute"},
        [(0.0, "/a"), (0.0, "/b"), (0.0, "/c"), (0.0, "/d"), (19.9, "/e"), (20.0, "/f")],
        [200, 200, 200, 429, 429, 200],
        "the stricter default limit holds over time",
    ),
    (
        {
            "rate_limit_default": "none",
            "rate_limit_routes": {"x": "4/minute"},
            "rate_limit_rules": "/api/*=2/minute",
        },
        [(0.0, "/api/x")] * 3 + [(0.0, "/api/y")],
        [200, 200, 429, 429],
        "route and pattern rule on one path",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rate_limit", "requests", "statuses"),
    [c[:3] for c in MULTIPLE],
    ids=[c[3] for c in MULTIPLE],
)
async def test_s13_every_limit_is_enforced(
    rate_limit: dict[str, Any], requests: list[tuple[float, str]], statuses: list[int]
) -> None:
    clock = Clock()
    app, _ = limited(clock, **rate_limit)
    seen = []
    for moment, path in requests:
        clock.at(moment)
        seen.append((await get(app, path)).status)
    assert seen == statuses


@pytest.mark.anyio
async def test_s13_clients_have_their_own_buckets() -> None:
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="3/minute")
    seen = [(await get(app, client=c)).status for c in ["198.51.100.1", "198.51.100.2"] * 4]
    assert seen == [200, 200, 200, 200, 200, 200, 429, 429]


# --------------------------------------------------------------------------- S14


@pytest.mark.anyio
async def test_s14_refused_requests_consume_no_other_quota() -> None:
    clock = Clock()
    app, _ = limited(
        clock,
        rate_limit_default="none",
        rate_limit_rules="/bar/*=10/minute;/bar/special=3/minute",
    )
    special = [(await get(app, "/bar/special")).status for _ in range(5)]
    assert special == [200, 200, 200, 429, 429]
    group = [(await get(app, "/bar/a")).status for _ in range(8)]
    assert group == [200] * 7 + [429]


def test_s14_backend_charges_all_or_none() -> None:
    clock = Clock()
    backend = MemoryBackend(clock=clock)
    group, special = bucket("10/minute", "group"), bucket("1/minute", "special")
    assert backend.consume_now("p", (group, special)).allowed
    for _ in range(5):
        assert not backend.consume_now("p", (group, special)).allowed
    assert backend.consume_now("p", (group,)).results[0].remaining == 8


# --------------------------------------------------------------------------- S17


def test_s17_memory_is_bounded_by_max_keys() -> None:
    backend = MemoryBackend(max_keys=100, clock=Clock())
    buckets = (bucket("100/second"),)
    for i in range(2000):
        backend.consume_now(f"10.0.{i // 256}.{i % 256}", buckets)
        assert len(backend) <= 100
    assert len(backend) == 100


def test_s17_least_recently_used_goes_first() -> None:
    """A client in constant use keeps its state while a flood of new keys passes through."""
    backend = MemoryBackend(max_keys=10, clock=Clock())
    buckets = (bucket("1000/minute"),)
    for i in range(100):
        backend.consume_now(f"cold-{i}", buckets)
        backend.consume_now("hot", buckets)
        assert len(backend) <= 10
    assert backend.consume_now("hot", buckets).results[0].remaining == 1000 - 101
    assert backend.consume_now("cold-0", buckets).results[0].remaining == 999  # evicted: fresh
    assert backend.consume_now("cold-99", buckets).results[0].remaining == 998  # still there


@pytest.mark.anyio
async def test_s17_max_keys_through_the_middleware() -> None:
    clock = Clock()
    app, memory = limited(clock, rate_limit_default="100/second", max_keys=50)
    for i in range(500):
        assert (await get(app, f"/rand/{i}", client=f"10.1.{i // 256}.{i % 256}")).status == 200
    assert len(memory) == 50


def test_s17_max_keys_from_configuration() -> None:
    config = SecurityConfig(rate_limit=RateLimitConfig(rate_limit_max_keys=7))
    middleware = SecurityMiddleware(_ok, config)
    assert isinstance(middleware.backend, MemoryBackend)
    assert middleware.backend.max_keys == 7


@pytest.mark.anyio
async def test_s17_ipv6_clients_share_their_64() -> None:
    clock = Clock()
    app, memory = limited(clock, rate_limit_default="3/minute")
    seen = [(await get(app, client=f"2001:db8:1:2::{i:x}")).status for i in range(1, 301)]
    assert seen == [200] * 3 + [429] * 297
    assert len(memory) == 1


# --------------------------------------------------------------------------- S19


@pytest.mark.parametrize(
    ("costs", "allowed", "retry"),
    [
        ([4, 2], [True, False], 12 * US),
        ([6], [False], -1),
        ([5], [True], 0),
    ],
    ids=["S19 4 then 2 of 5", "S19 6 of 5 never passes", "a full bucket at once"],
)
def test_s19_variable_cost(costs: list[int], allowed: list[bool], retry: int) -> None:
    backend = MemoryBackend(clock=Clock())
    buckets = (bucket("5/minute"),)
    decisions = [backend.consume_now("p", buckets, cost) for cost in costs]
    assert [d.allowed for d in decisions] == allowed
    assert decisions[-1].retry_after_us == retry


class Weighted:
    """A real memory backend charging every request ``cost`` tokens (weighted routes)."""

    def __init__(self, inner: MemoryBackend, cost: int) -> None:
        self.inner = inner
        self.cost = cost

    async def consume(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        return await self.inner.consume(identity, buckets, self.cost)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cost", "retry_after"),
    [(6, None), (3, "12")],
    ids=["S19 never satisfiable: no Retry-After", "satisfiable later: Retry-After"],
)
async def test_s19_retry_after_only_when_the_request_can_ever_pass(
    cost: int, retry_after: str | None
) -> None:
    clock = Clock()
    weighted = Weighted(MemoryBackend(clock=clock), cost)
    app, _ = limited(clock, backend=weighted, rate_limit_default="5/minute")
    response = await get(app)
    if cost <= 5:
        assert response.status == 200
        response = await get(app)
    assert response.status == 429
    assert response.header("retry-after") == retry_after


# --------------------------------------------------------------------------- S21

_ITEM = re.compile(r'^"(?P<name>[^"]+)"(?P<params>(?:;[a-z]+=\d+)+)$')


def _items(value: str | None) -> dict[str, dict[str, int]]:
    """Parse ``"name";k=1;j=2, ...`` (the structured-field lists of the IETF draft)."""
    assert value is not None
    parsed = {}
    for item in value.split(", "):
        match = _ITEM.match(item)
        assert match, f"not a structured-field item: {item!r}"
        params = dict(p.split("=") for p in match["params"].split(";")[1:])
        parsed[match["name"]] = {k: int(v) for k, v in params.items()}
    return parsed


@pytest.mark.anyio
async def test_s21_headers_never_promise_what_is_refused() -> None:
    """2/second, a request every 250 ms: r is 0 before each 429, t whole seconds, q=2;w=1."""
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="2/second")
    statuses = []
    previous_remaining = 0
    for i in range(12):
        clock.at(i * 0.25)
        response = await get(app)
        statuses.append(response.status)
        assert _items(response.header("ratelimit-policy")) == {"default": {"q": 2, "w": 1}}
        state = _items(response.header("ratelimit"))["default"]
        if response.status == 429:
            assert previous_remaining == 0, f"r>0 promised before the 429 at request {i}"
            assert state["r"] == 0
            assert response.header("retry-after") == "1"
        assert 0 <= state["r"] <= 2
        assert 1 <= state["t"] <= 1  # whole seconds, rounded up, never 0 while not full
        previous_remaining = state["r"]
    assert statuses == [200, 200, 200] + [429, 200] * 4 + [429]


@pytest.mark.anyio
async def test_s14_a_refusal_reports_the_other_buckets_uncharged() -> None:
    """A 429 charges no bucket, so its ``RateLimit`` says what is really left of each.

    The route's own limit refuses the 4th request; the default bucket was not charged for it,
    so it must still say r=2 (exactly 2 more pass elsewhere) and t=36 (3 tokens of 12 s), not
    r=1;t=48 as if the refused request had been paid for.
    """
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="5/minute", rate_limit_routes={"x": "3/minute"})
    assert [(await get(app, "/api/x")).status for _ in range(3)] == [200, 200, 200]
    refused = await get(app, "/api/x")
    assert refused.status == 429
    state = _items(refused.header("ratelimit"))
    assert state["default"] == {"r": 2, "t": 36}
    assert state["/api/x"] == {"r": 0, "t": 60}
    assert refused.header("retry-after") == "20"
    elsewhere = [(await get(app, "/other")).status for _ in range(3)]
    assert elsewhere == [200, 200, 429]


@pytest.mark.anyio
async def test_s14_legacy_headers_of_a_refusal_are_uncharged_too() -> None:
    clock = Clock()
    app, _ = limited(
        clock,
        rate_limit_default="2/minute",
        rate_limit_routes={"x": "1/minute"},
        rate_limit_legacy_headers=True,
    )
    assert (await get(app, "/api/x")).status == 200
    refused = await get(app, "/api/x")
    assert refused.status == 429
    assert _items(refused.header("ratelimit"))["default"] == {"r": 1, "t": 30}
    assert refused.header("x-ratelimit-remaining") == "0"  # the tightest: the route's own
    assert refused.header("x-ratelimit-limit") == "1"


@pytest.mark.anyio
async def test_ratelimit_headers_can_be_turned_off_but_retry_after_stays() -> None:
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="1/minute", rate_limit_headers=False)
    assert (await get(app)).header("ratelimit") is None
    response = await get(app)
    assert response.status == 429
    assert response.header("ratelimit") is None
    assert response.header("ratelimit-policy") is None
    assert response.header("retry-after") == "60"


@pytest.mark.anyio
async def test_rate_limited_refusal_is_counted_apart_from_blocks() -> None:
    clock = Clock()
    app, _ = limited(clock, rate_limit_default="1/minute")
    await get(app)
    response = await get(app)
    assert response.json()["error"] == "rate_limited"
    assert app.counters.rate_limited == 1
    assert app.counters.blocked_total == 0


@pytest.mark.anyio
async def test_default_none_sends_no_rate_limit_headers() -> None:
    app, memory = limited(Clock(), rate_limit_default="none")
    response = await get(app)
    assert response.header("ratelimit") is None
    assert response.header("ratelimit-policy") is None
    assert len(memory) == 0
