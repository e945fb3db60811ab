"""The Redis backend and its failure policy, against real redis-server processes.

Most tests run twice: on a standalone server and on a 3-primary Redis Cluster. Faults are
real: a stopped server, a restarted one, a ``SIGSTOP``-ed one, a flushed script cache. Time
is injected where it matters (the Lua script takes an explicit ``now_us`` from tests, the
circuit breaker takes a clock), so no test sleeps for a bucket to refill.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterator,
    MutableMapping,
    Sequence,
)
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import redis
from hypothesis import given, settings

from asgisec import SecurityConfig, SecurityMiddleware
from asgisec.errors import BackendError, ConfigError
from asgisec.ratelimit.backend import Decision
from asgisec.ratelimit.bucket import Bucket, step
from asgisec.ratelimit.limits import Limit
from asgisec.ratelimit.memory import MemoryBackend
from asgisec.ratelimit.redis import (
    SCRIPT,
    SCRIPT_SHA,
    RedisBackend,
    decision_from_reply,
    redis_key,
    script_arguments,
)
from asgisec.ratelimit.resilient import ResilientBackend
from tests.redis_servers import RedisClusterServers, RedisSentinel, RedisServer, free_port

pytestmark = pytest.mark.timeout(60)

IP = "198.51.100.7"
US = 1_000_000
T0 = 1_800_000_000 * US  # an injected instant of the size Redis TIME gives (µs since 1970)
TIMEOUT = 0.05  # RATE_LIMIT_BACKEND_TIMEOUT's default
MARGIN = 0.05  # scheduling slack on a loaded CI machine: "under 100 ms" in the issue


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def bucket(amount: int, period: int, name: str = "default") -> Bucket:
    return Bucket.from_limit(name, Limit(amount=amount, period=period))


def admitted(decisions: Sequence[Decision]) -> int:
    return sum(decision.allowed for decision in decisions)


class Target:
    """One Redis deployment under test: its URL, its server processes, backends on it."""

    def __init__(self, url: str, servers: list[RedisServer]) -> None:
        self.url = url
        self.servers = servers
        self.backends: list[RedisBackend] = []

    def connect(self, timeout: float = 1.0) -> RedisBackend:
        """A backend with a connection pool of its own, as each worker process has.

        Behaviour tests allow a second per call: a cluster client's first call discovers the
        topology, and a loaded CI machine stalls; the timeout tests use the real 50 ms.
        """
        backend = RedisBackend.from_url(self.url, timeout=timeout)
        self.backends.append(backend)
        return backend

    def on_every_server(self, *command: Any) -> None:
        for server in self.servers:
            server.command(*command)


@pytest.fixture(params=["standalone", "cluster"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    """An empty standalone server, then an empty 3-primary cluster."""
    if request.param == "standalone":
        url: str = request.getfixturevalue("redis_url")
        servers = [request.getfixturevalue("redis_server")]
    else:
        url = request.getfixturevalue("redis_cluster_url")
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        servers = cluster.nodes
    deployment = Target(url, servers)
    try:
        yield deployment
    finally:
        for backend in deployment.backends:
            await backend.aclose()


@pytest.fixture
async def backend(target: Target) -> RedisBackend:
    return target.connect()


async def redis_now_us(backend: RedisBackend) -> int:
    seconds, micros = await backend.client.execute_command("TIME")
    return int(seconds) * US + int(micros)


# --------------------------------------------------------------------------- exactness


@pytest.mark.anyio
async def test_200_concurrent_requests_on_a_50_token_bucket_admit_exactly_50(
    backend: RedisBackend,
) -> None:
    limit = [bucket(50, 3600)]
    decisions = await asyncio.gather(*(backend.consume(IP, limit) for _ in range(200)))
    assert admitted(decisions) == 50
    for decision in decisions:
        if not decision.allowed:
            assert decision.results[0].remaining == 0
            assert 0 < decision.retry_after_us <= 72 * US  # one token: 3600 s / 50


@pytest.mark.anyio
async def test_four_workers_admit_exactly_the_limit_for_each_client(target: Target) -> None:
    """Four connection pools (four worker processes), eight clients spread over the
    cluster's slots, 30 concurrent requests per client against 10 tokens: exactly 10 each."""
    workers = [target.connect() for _ in range(4)]
    clients = [f"203.0.113.{i}" for i in range(8)]
    limit = [bucket(10, 60)]
    decisions = await asyncio.gather(
        *(workers[n % 4].consume(client, limit) for client in clients for n in range(30))
    )
    assert [admitted(decisions[i * 30 : (i + 1) * 30]) for i in range(8)] == [10] * 8


@pytest.mark.anyio
async def test_concurrent_decisions_share_one_pipeline(
    redis_server: RedisServer, redis_url: str
) -> None:
    """Calls of one event-loop tick go out as one pipelined round trip: 200 concurrent
    decisions open at most ``max_inflight`` connections (here: one)."""
    backend = RedisBackend.from_url(redis_url, timeout=1.0)
    try:
        await asyncio.gather(*(backend.consume(f"c{i}", [bucket(5, 60)]) for i in range(200)))
        info = redis_server.command("INFO", "clients")
        assert info["connected_clients"] - 1 <= 1  # minus the INFO command's own connection
    finally:
        await backend.aclose()


# --------------------------------------------------------------------------- several buckets


@pytest.mark.anyio
async def test_two_rules_in_one_call_are_all_or_nothing_without_crossslot(
    backend: RedisBackend,
) -> None:
    """S25: a 1/second and a 100/hour rule for one client, one script call, on a cluster too.
    A request the 1/second rule refuses charges the 100/hour rule nothing."""
    second, hour = bucket(1, 1, "burst"), bucket(100, 3600, "hourly")
    first = await backend.consume_at(IP, [second, hour], now_us=T0)
    assert first.allowed
    assert [r.remaining for r in first.results] == [0, 99]
    refused = await backend.consume_at(IP, [second, hour], now_us=T0 + US // 2)
    assert not refused.allowed
    assert refused.results[0].allowed is False
    assert refused.results[1].allowed is True
    assert refused.retry_after_us == US // 2
    later = await backend.consume_at(IP, [second, hour], now_us=T0 + US)
    assert later.allowed
    assert later.results[1].remaining == 98  # two admitted requests, not three


@pytest.mark.anyio
async def test_refused_requests_consume_no_other_policy(backend: RedisBackend) -> None:
    """S14: group 10/minute over /bar/*, plus 3/minute on /bar/special."""
    group, special = bucket(10, 60, "/bar/*"), bucket(3, 60, "/bar/special")
    specials = [(await backend.consume(IP, [group, special])).allowed for _ in range(5)]
    assert specials == [True, True, True, False, False]
    others = [(await backend.consume(IP, [group])).allowed for _ in range(8)]
    assert others == [True] * 7 + [False]


@pytest.mark.anyio
async def test_weighted_cost_counts_in_full_and_an_impossible_cost_never_passes(
    backend: RedisBackend,
) -> None:
    """S19: 5/minute; cost 4 then cost 2 is refused. Cost 6 can never pass: retry -1, and
    it charges nothing."""
    limit = [bucket(5, 60)]
    assert (await backend.consume(IP, limit, cost=4)).allowed
    assert not (await backend.consume(IP, limit, cost=2)).allowed
    never = await backend.consume("198.51.100.8", limit, cost=6)
    assert not never.allowed
    assert never.retry_after_us == -1
    assert never.results[0].retry_us == -1
    assert [(await backend.consume("198.51.100.8", limit)).allowed for _ in range(6)] == [
        *[True] * 5,
        False,
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("offset_us", "allowed", "retry_us"),
    [(0, False, 500_000), (499_999, False, 1), (500_000, True, 0)],
    ids=["at-once", "one-microsecond-early", "exactly-refilled"],
)
async def test_the_time_to_refill_boundary_is_exact(
    backend: RedisBackend, offset_us: int, allowed: bool, retry_us: int
) -> None:
    limit = [bucket(2, 1)]  # a token every 500 ms
    assert admitted([await backend.consume_at(IP, limit, now_us=T0) for _ in range(2)]) == 2
    decision = await backend.consume_at(IP, limit, now_us=T0 + offset_us)
    assert decision.allowed is allowed
    assert decision.retry_after_us == retry_us


# --------------------------------------------------------------------------- keys and TTLs


@pytest.mark.anyio
async def test_keys_are_versioned_hash_tagged_and_expire_when_the_bucket_is_full(
    backend: RedisBackend,
) -> None:
    limit = bucket(10, 60)
    await backend.consume(IP, [limit])
    key = f"asgisec:v1:{{{IP}}}:default|10/60"
    assert redis_key(IP, limit) == key
    assert await backend.client.execute_command("EXISTS", key) == 1
    ttl = await backend.client.execute_command("PTTL", key)
    assert 6_000 - 1_000 < ttl <= 6_000  # one token of 10/minute: full again in 6 s


@pytest.mark.anyio
async def test_the_ttl_is_the_time_to_refill_rounded_up_to_the_millisecond(
    backend: RedisBackend,
) -> None:
    limit = bucket(3, 1)  # interval 333 334 µs
    key = redis_key(IP, limit)
    await backend.consume_at(IP, [limit], now_us=T0)
    assert 334 - 200 < await backend.client.execute_command("PTTL", key) <= 334
    for _ in range(2):
        await backend.consume_at(IP, [limit], now_us=T0)
    assert 1_001 - 200 < await backend.client.execute_command("PTTL", key) <= 1_001


@pytest.mark.anyio
@pytest.mark.parametrize("identity", ["{evil}", "a}b{c", "%7B", "", "2001:db8::/64"])
async def test_any_identity_keeps_one_hash_tag_and_its_own_buckets(
    backend: RedisBackend, identity: str
) -> None:
    """Braces cannot end the hash tag early (two rules stay in one slot), and escaping is
    one-to-one: ``{`` and ``%7B`` are different clients."""
    limits = [bucket(1, 60, "a"), bucket(5, 60, "b")]
    assert (await backend.consume(identity, limits)).allowed
    assert not (await backend.consume(identity, limits)).allowed
    neighbour = "{" if identity == "%7B" else identity + "x"
    assert (await backend.consume(neighbour, limits)).allowed


# --------------------------------------------------------------------------- corrupt state


@pytest.mark.anyio
async def test_a_key_without_ttl_is_repaired_not_a_permanent_ban(backend: RedisBackend) -> None:
    """S8: a bucket stored without a TTL (an interrupted writer) would never expire. It is
    treated as corrupt: the request is decided on a full bucket and the key gets a TTL."""
    limit = bucket(5, 60)
    key = redis_key(IP, limit)
    far = await redis_now_us(backend) + 10 * 3600 * US  # 10 hours of debt
    await backend.client.execute_command("SET", key, far)
    assert (await backend.consume(IP, [limit])).allowed
    assert 0 < await backend.client.execute_command("PTTL", key) <= 12_000
    # The same debt *with* a TTL is legitimate state and is honoured.
    await backend.client.execute_command("SET", key, far, "PX", 60_000)
    assert not (await backend.consume(IP, [limit])).allowed


@pytest.mark.anyio
async def test_a_corrupt_key_is_deleted_when_another_rule_refuses(backend: RedisBackend) -> None:
    corrupt, spent = bucket(5, 60, "a"), bucket(1, 3600, "b")
    assert (await backend.consume(IP, [spent])).allowed
    await backend.client.execute_command("SET", redis_key(IP, corrupt), 10**16)
    assert not (await backend.consume(IP, [corrupt, spent])).allowed
    assert await backend.client.execute_command("EXISTS", redis_key(IP, corrupt)) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["not-a-number", "1.5", "hash"])
async def test_garbage_in_a_key_counts_as_a_full_bucket(backend: RedisBackend, kind: str) -> None:
    limit = bucket(2, 60)
    key = redis_key(IP, limit)
    if kind == "hash":
        await backend.client.execute_command("HSET", key, "f", "v")
    else:
        await backend.client.execute_command("SET", key, kind, "PX", 60_000)
    assert [(await backend.consume(IP, [limit])).allowed for _ in range(3)] == [True, True, False]
    assert await backend.client.execute_command("TYPE", key) in (b"string", "string")


# --------------------------------------------------------------------------- NOSCRIPT


@pytest.mark.anyio
async def test_script_flush_is_recovered_transparently(target: Target) -> None:
    """S9: after SCRIPT FLUSH (on every node) the next request is decided correctly."""
    backend = target.connect()
    limit = [bucket(3, 60)]
    assert (await backend.consume(IP, limit)).allowed
    target.on_every_server("SCRIPT", "FLUSH")
    assert [(await backend.consume(IP, limit)).allowed for _ in range(3)] == [True, True, False]


@pytest.mark.anyio
async def test_a_restarted_redis_is_used_again_without_a_failed_request(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    """S9 with a restart: data and script cache are gone, pooled sockets are dead; the very
    next request reconnects, reloads the script and is decided."""
    server = redis_server_factory()
    backend = RedisBackend.from_url(server.url, timeout=1.0)
    try:
        limit = [bucket(2, 60)]
        assert (await backend.consume(IP, limit)).allowed
        server.restart()
        await asyncio.sleep(0.01)  # let the event loop see the old sockets close
        assert [(await backend.consume(IP, limit)).allowed for _ in range(3)] == [
            True,
            True,
            False,
        ]
    finally:
        await backend.aclose()


def connected_clients(target: Target) -> int:
    """Client connections open on every server of ``target`` (each reading adds its own)."""
    total = 0
    for server in target.servers:
        total += int(server.command("INFO", "clients")["connected_clients"])
    return total


@pytest.mark.anyio
async def test_warm_up_connects_and_loads_the_script_before_the_first_request(
    target: Target,
) -> None:
    """A worker's first requests must not pay for the connect, redis-py's handshake and a
    cluster's topology discovery inside their 50 ms: on a busy machine that missed the
    timeout on a healthy Redis, so fail-open admitted past the shared limit (found by hand:
    ``--workers 2``, 40 concurrent curl, 15-20 of 10 admitted right after start)."""
    target.on_every_server("SCRIPT", "FLUSH")
    backend = target.connect(timeout=TIMEOUT)
    before = connected_clients(target)
    await backend.warm_up()
    warm = connected_clients(target)
    assert warm > before
    for server in target.servers:
        assert server.command("SCRIPT", "EXISTS", SCRIPT_SHA) == [1]

    limit = [bucket(5, 60)]
    assert (await backend.consume(IP, limit)).results[0].remaining == 4  # decided by Redis
    decisions = await asyncio.gather(*(backend.consume(f"c{i}", limit) for i in range(64)))
    assert all(decision.results[0].remaining == 4 for decision in decisions)
    assert connected_clients(target) == warm  # no request opened a connection


@pytest.mark.anyio
async def test_warm_up_of_an_unreachable_redis_is_left_to_the_failure_policy(
    redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down at start-up: the backend says so; the failure policy logs it once and
    starts anyway (the requests decide with the circuit as usual)."""
    server = redis_server_factory()
    backend = RedisBackend.from_url(server.url, timeout=TIMEOUT)
    limiter = ResilientBackend(backend, timeout_s=TIMEOUT)
    server.stop()
    try:
        with pytest.raises(BackendError):
            await backend.warm_up()
        await limiter.warm_up()
        assert [r.getMessage() for r in records(caplog, logging.WARNING)] == [
            "rate-limit storage not reachable at start-up "
            "(Redis: ConnectionError: Error 111 connecting to "
            f"127.0.0.1:{server.port}. Connect call failed ('127.0.0.1', {server.port}).)"
        ]
        assert not limiter.circuit_open
        assert limiter.bypassed == 0
        assert (await limiter.consume(IP, [bucket(5, 60)])).allowed  # fail-open
    finally:
        await limiter.aclose()


@pytest.mark.anyio
async def test_the_middleware_warms_the_backend_before_the_server_is_told_it_started(
    redis_server: RedisServer, redis_url: str
) -> None:
    """Through the ASGI lifespan: by the time ``lifespan.startup.complete`` reaches the
    server (which only then accepts requests), the script is loaded and connections open."""
    redis_server.command("SCRIPT", "FLUSH")
    environ = {"RATE_LIMIT_STORAGE_URI": redis_url}
    config = SecurityConfig.from_env(environ=environ, env_file=None)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        assert (await receive())["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    middleware = SecurityMiddleware(app, config)
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    seen: list[tuple[str, object]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: MutableMapping[str, Any]) -> None:
        seen.append((message["type"], redis_server.command("SCRIPT", "EXISTS", SCRIPT_SHA)))

    await middleware({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert seen == [("lifespan.startup.complete", [1]), ("lifespan.shutdown.complete", [1])]


# --------------------------------------------------------------------------- the Lua bucket
# The script and bucket.step() on the same (tat, now, bucket, cost) inputs: exactly equal.


@pytest.fixture(scope="module")
def lua(redis_server: RedisServer) -> Iterator[tuple[redis.Redis, Any]]:
    client = redis.Redis(port=redis_server.port, socket_timeout=5)
    try:
        yield client, client.register_script(SCRIPT)
    finally:
        client.close()


bucket_specs = st.tuples(
    st.integers(1, 10**6),  # amount
    st.integers(1, 10**6),  # period, seconds
    st.none() | st.integers(-(2 * 10**12), 2 * 10**12),  # stored TAT relative to now
)


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(bucket_specs, min_size=1, max_size=3),
    now=st.integers(0, 2**51),  # TIME in µs is ~1.8e15; 2**51 ≈ 2.25e15
    cost=st.integers(0, 2_000),
)
def test_lua_and_python_buckets_agree_on_every_input(
    lua: tuple[redis.Redis, Any],
    specs: list[tuple[int, int, int | None]],
    now: int,
    cost: int,
) -> None:
    client, script = lua
    buckets = [bucket(amount, period, f"b{i}") for i, (amount, period, _) in enumerate(specs)]
    tats = [None if off is None else max(0, now + off) for _, _, off in specs]
    keys, args = script_arguments("prop", buckets, cost, now_us=now)
    client.delete(*keys)
    for key, tat in zip(keys, tats, strict=True):
        if tat is not None:
            client.set(key, tat, px=10**9)

    reply = script(keys=keys, args=args)
    decision = decision_from_reply(reply, len(buckets))

    expected = [step(tat, now, b, cost) for tat, b in zip(tats, buckets, strict=True)]
    assert list(decision.results) == expected
    assert decision.allowed == all(r.allowed for r in expected)
    assert reply[1] == now
    for key, tat, result in zip(keys, tats, expected, strict=True):
        stored = client.get(key)
        if decision.allowed:  # every bucket charged, with a TTL until it is full again
            ttl_ms = max(1, -(-result.reset_us // 1000))
            pttl = client.pttl(key)
            if stored is None or pttl == -2:  # already expired, in real time: a short TTL
                assert ttl_ms < 1_000
                continue
            assert stored == str(result.tat_us).encode()
            assert ttl_ms - 1_000 < pttl <= ttl_ms
        else:  # nothing charged
            assert stored == (None if tat is None else str(tat).encode())


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 4 * US),  # time since the previous request
            st.integers(0, 4),  # cost
            st.sets(st.integers(0, 2), min_size=1),  # which rules apply
        ),
        max_size=30,
    )
)
def test_lua_and_memory_backends_agree_on_a_sequence(
    lua: tuple[redis.Redis, Any], steps: list[tuple[int, int, set[int]]]
) -> None:
    """The same (time, cost, rules) sequence through the Lua script and MemoryBackend.

    Every interval is at least 2 s, so no key's real TTL can run out during an example while
    the injected clock says the bucket still holds debt.
    """
    client, script = lua
    rules = [bucket(3, 10, "a"), bucket(5, 60, "b"), bucket(2, 4, "c")]
    client.delete(*(redis_key("seq", rule) for rule in rules))
    now = T0
    memory = MemoryBackend(clock=lambda: now)
    for delta, cost, chosen in steps:
        now += delta
        buckets = [rules[i] for i in sorted(chosen)]
        keys, args = script_arguments("seq", buckets, cost, now_us=now)
        lua_decision = decision_from_reply(script(keys=keys, args=args), len(buckets))
        memory_decision = memory.consume_now("seq", buckets, cost)
        assert lua_decision.allowed == memory_decision.allowed
        assert list(lua_decision.results) == list(memory_decision.results)
        assert lua_decision.retry_after_us == memory_decision.retry_after_us


# --------------------------------------------------------------------------- failures


@pytest.mark.anyio
async def test_a_stopped_redis_raises_backend_error_at_once(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    backend = RedisBackend.from_url(server.url, timeout=1.0)
    try:
        await backend.consume(IP, [bucket(5, 60)])
        server.stop()
        started = time.perf_counter()
        with pytest.raises(BackendError) as caught:
            await backend.consume(IP, [bucket(5, 60)])
        assert time.perf_counter() - started < TIMEOUT + MARGIN
        assert isinstance(caught.value.__cause__, redis.RedisError)
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_a_paused_redis_raises_backend_error_within_the_timeout(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    backend = RedisBackend.from_url(server.url, timeout=TIMEOUT)
    try:
        await backend.consume(IP, [bucket(5, 60)])
        server.pause()
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(BackendError):
                await backend.consume(IP, [bucket(5, 60)])
            assert time.perf_counter() - started < TIMEOUT + MARGIN
    finally:
        server.resume()
        await backend.aclose()


@pytest.mark.anyio
async def test_a_closed_backend_refuses_to_decide(redis_url: str) -> None:
    backend = RedisBackend.from_url(redis_url)
    await backend.aclose()
    with pytest.raises(BackendError):
        await backend.consume(IP, [bucket(5, 60)])


@pytest.mark.anyio
async def test_a_busy_event_loop_is_not_a_slow_redis(
    redis_server: RedisServer, redis_url: str
) -> None:
    """A saturated server's loop gets to Redis's reply late; Redis was not slow. The 50 ms
    timeout must not turn that into a failure (found over the wire: under 64 connections
    the circuit opened on a healthy Redis and every limit went per-process for 5 s)."""
    limiter = ResilientBackend(await connected(redis_server), timeout_s=TIMEOUT)

    async def hog() -> None:
        time.sleep(1.6 * TIMEOUT)  # noqa: ASYNC251 - the point: the loop is blocked, not Redis

    try:
        limits = [bucket(5, 60)]
        outcomes = await asyncio.gather(
            *(limiter.consume(f"c{i}", limits) for i in range(20)), hog()
        )
        decisions = [d for d in outcomes if isinstance(d, Decision)]
        assert len(decisions) == 20
        assert all(d.results and d.results[0].remaining == 4 for d in decisions)  # by Redis
        assert limiter.bypassed == 0
        assert not limiter.circuit_open
    finally:
        await limiter.aclose()


@pytest.mark.anyio
async def test_a_reply_already_received_at_the_deadline_is_not_a_timeout(
    redis_server: RedisServer, redis_url: str
) -> None:
    """The loop wakes after a stall (another process had the CPU) with Redis's reply in the
    socket and the call's deadline both due, in the same iteration. The deadline must not
    win: Redis answered in time (found over the wire: the pipeline finished 0.2 ms after its
    calls were failed, and fail-open admitted 14-20 of a shared limit of 10). The stall here
    is shorter than half a timeout, so only the reply itself can save the call."""
    backend = RedisBackend.from_url(redis_url, timeout=TIMEOUT)
    try:
        await backend.warm_up()
        identity = "198.51.100.200"
        limits = [bucket(5, 60)]
        key = redis_key(identity, limits[0])
        redis_server.command("DEL", key)
        loop = asyncio.get_running_loop()
        started = loop.time()
        call = asyncio.ensure_future(backend.consume(identity, limits))
        for _ in range(100):  # step the loop until the pipeline is sent and Redis ran it
            await asyncio.sleep(0)
            if redis_server.command("EXISTS", key):
                break
        else:
            pytest.fail("the call never reached Redis")
        # The reply is on its way; the loop stalls past the deadline, by less than half of it.
        time.sleep(max(0.0, started + 1.2 * TIMEOUT - loop.time()))  # noqa: ASYNC251
        decision = await call
        assert decision.results[0].remaining == 4  # Redis's decision, not a BackendError
    finally:
        await backend.aclose()


# --------------------------------------------------------------------------- the failure policy


class ManualClock:
    """The circuit breaker's clock, advanced by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def connected(server: RedisServer) -> RedisBackend:
    """A 50 ms backend whose connection is already open, so its first call is not a connect."""
    backend = RedisBackend.from_url(server.url, timeout=TIMEOUT)
    await backend.client.ping()
    return backend


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "asgisec.ratelimit" and r.levelno == level]


async def timed(limiter: ResilientBackend, limits: list[Bucket]) -> tuple[Decision, float]:
    started = time.perf_counter()
    decision = await limiter.consume(IP, limits)
    return decision, time.perf_counter() - started


def at_once(call: Coroutine[Any, Any, Decision]) -> Decision:
    """The decision of a call that never waits: it must finish at its first step.

    A proof without a stopwatch: a call that awaited Redis (or anything) would suspend here,
    whatever the machine's load.
    """
    try:
        call.send(None)
    except StopIteration as done:
        result: Decision = done.value
        return result
    call.close()
    raise AssertionError("the call waited")


async def probed(limiter: ResilientBackend) -> None:
    """Wait (bounded) until the background probe has ended, whichever way."""
    for _ in range(500):  # 5 s: a paused Redis fails the probe in about 1 s (socket timeout)
        if not limiter.probing:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the probe never ended")


@pytest.mark.anyio
async def test_fail_open_serves_every_request_while_redis_is_stopped_and_recovers(
    redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """S3 / the issue's "done when": Redis stopped → every request still served, fast; one
    warning for the incident; Redis back → decided by Redis again, one info line."""
    caplog.set_level(logging.INFO, "asgisec.ratelimit")
    server = redis_server_factory()
    clock = ManualClock()
    limiter = ResilientBackend(
        await connected(server), timeout_s=TIMEOUT, cooldown_s=5, clock=clock
    )
    limits = [bucket(100, 60)]
    try:
        assert (await limiter.consume(IP, limits)).results  # decided by Redis
        server.stop()
        for _ in range(20):
            decision, elapsed = await timed(limiter, limits)
            assert decision.allowed
            assert not decision.unavailable
            assert decision.results == ()  # no budget to report: no RateLimit header
            assert elapsed < TIMEOUT + MARGIN
        assert limiter.bypassed == 20
        assert limiter.circuit_open
        assert len(records(caplog, logging.WARNING)) == 1

        server.start()
        clock.now += 5  # the cool-down is over: the next request starts a probe of Redis
        assert at_once(limiter.consume(IP, limits)).allowed  # and does not wait for it
        await probed(limiter)
        assert not limiter.circuit_open
        decision = await limiter.consume(IP, limits)
        assert decision.allowed
        assert decision.results[0].remaining == 99
        assert len(records(caplog, logging.INFO)) == 1
        assert len(records(caplog, logging.WARNING)) == 1
    finally:
        await limiter.aclose()


@pytest.mark.anyio
async def test_a_paused_redis_costs_at_most_the_timeout_then_nothing_until_it_returns(
    redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """S15: a blackholed Redis (SIGSTOP: connections accepted, never answered). Each of the
    first ``failure_threshold`` requests waits the timeout; then the circuit is open and
    requests do not wait at all; after SIGCONT and the cool-down it closes by itself."""
    caplog.set_level(logging.INFO, "asgisec.ratelimit")
    server = redis_server_factory()
    clock = ManualClock()
    limiter = ResilientBackend(
        await connected(server),
        timeout_s=TIMEOUT,
        failure_threshold=3,
        cooldown_s=5,
        clock=clock,
    )
    limits = [bucket(100, 60)]
    try:
        assert (await limiter.consume(IP, limits)).results
        server.pause()
        for _ in range(3):
            decision, elapsed = await timed(limiter, limits)
            assert decision.allowed
            assert elapsed < TIMEOUT + MARGIN
        assert limiter.circuit_open
        for _ in range(10):
            assert at_once(limiter.consume(IP, limits)).allowed  # Redis is not called at all
        assert not limiter.probing

        # Half-open: the first request after the cool-down starts a probe beside it; neither
        # it nor the requests that come while the probe runs wait for it.
        clock.now += 5
        for _ in range(10):
            assert at_once(limiter.consume(IP, limits)).allowed
        assert limiter.probing
        await probed(limiter)
        assert limiter.circuit_open  # the probe failed: another cool-down, same incident

        server.resume()
        clock.now += 5
        assert at_once(limiter.consume(IP, limits)).allowed
        await probed(limiter)
        assert not limiter.circuit_open
        decision = await limiter.consume("198.51.100.99", limits)
        assert decision.results
        assert len(records(caplog, logging.WARNING)) == 1
        assert len(records(caplog, logging.INFO)) == 1
        assert limiter.incidents == 1
    finally:
        server.resume()
        await limiter.aclose()


@pytest.mark.anyio
async def test_recovery_is_not_held_to_one_request_s_timeout(
    redis_server_factory: Callable[..., RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    """Redis is back, but the probe must reconnect (the pooled sockets died with the old
    process), reload the script, and Redis is slow for a moment after its restart. A probe
    held to one request's 50 ms failed there and left every worker deciding locally for
    another cool-down, again and again under load (found by hand: bursts right after Redis
    returned admitted 19 and 20 of a shared 10). The probe runs beside the requests, bounded
    by the backend's own batch timeout; the requests meanwhile do not wait for it."""
    caplog.set_level(logging.INFO, "asgisec.ratelimit")
    server = redis_server_factory()
    clock = ManualClock()
    limiter = ResilientBackend(
        await connected(server), timeout_s=TIMEOUT, cooldown_s=5, clock=clock
    )
    limits = [bucket(100, 60)]
    try:
        server.stop()
        for _ in range(3):
            await limiter.consume(IP, limits)
        assert limiter.circuit_open

        server.start()
        server.command("CLIENT", "PAUSE", "150", "ALL")  # slow for a moment after its restart
        clock.now += 5  # the cool-down is over
        decision, elapsed = await timed(limiter, limits)
        assert decision.allowed
        assert elapsed < TIMEOUT + MARGIN
        await probed(limiter)  # 150 ms here
        assert not limiter.circuit_open  # recovered by this one probe, no other cool-down
        decision = await limiter.consume(IP, limits)
        assert decision.results[0].remaining == 99  # decided by Redis again
        assert len(records(caplog, logging.WARNING)) == 1
        assert len(records(caplog, logging.INFO)) == 1
    finally:
        await limiter.aclose()


@pytest.mark.anyio
async def test_fail_closed_answers_unavailable_with_a_retry_time(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    clock = ManualClock()
    limiter = ResilientBackend(
        await connected(server),
        fail_mode="closed",
        timeout_s=TIMEOUT,
        cooldown_s=30,
        clock=clock,
    )
    try:
        server.stop()
        for _ in range(5):
            decision, elapsed = await timed(limiter, [bucket(100, 60)])
            assert not decision.allowed
            assert decision.unavailable
            assert US <= decision.retry_after_us <= 30 * US
            assert elapsed < TIMEOUT + MARGIN
        assert limiter.bypassed == 5
    finally:
        await limiter.aclose()


@pytest.mark.anyio
async def test_fail_open_with_a_fallback_keeps_limiting_in_process(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory()
    limiter = ResilientBackend(await connected(server), timeout_s=TIMEOUT, fallback=MemoryBackend())
    try:
        server.stop()
        decisions = [await limiter.consume(IP, [bucket(2, 60)]) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert decisions[2].retry_after_us > 0
        assert not decisions[2].unavailable
    finally:
        await limiter.aclose()


class _FailsTogether:
    """A backend whose concurrent calls fail together, as one coalesced pipeline does."""

    async def consume(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        await asyncio.sleep(0)
        raise BackendError("connection reset")

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_calls_that_fail_together_are_one_failure() -> None:
    """Ten calls in flight that fail at once are one event (one broken round trip), not ten
    consecutive failures: the circuit opens after three failures in a row, one after another."""
    limiter = ResilientBackend(_FailsTogether(), failure_threshold=3)
    decisions = await asyncio.gather(*(limiter.consume(IP, [bucket(5, 60)]) for _ in range(10)))
    assert all(decision.allowed for decision in decisions)  # fail-open
    assert limiter.bypassed == 10
    assert not limiter.circuit_open
    await limiter.consume(IP, [bucket(5, 60)])
    assert not limiter.circuit_open
    await limiter.consume(IP, [bucket(5, 60)])
    assert limiter.circuit_open
    assert limiter.incidents == 1


class _Broken:
    """A backend with a bug: the policy must still answer (never a 500)."""

    async def consume(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        raise RuntimeError("bug")

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_the_failure_policy_never_raises() -> None:
    limiter = ResilientBackend(_Broken(), failure_threshold=1)
    assert (await limiter.consume(IP, [bucket(1, 1)])).allowed
    assert limiter.circuit_open
    assert limiter.bypassed == 1


# --------------------------------------------------------------------------- URLs


@pytest.mark.anyio
async def test_password_and_database_from_the_url(
    redis_server_factory: Callable[..., RedisServer],
) -> None:
    server = redis_server_factory("--requirepass", "s3cret")
    backend = RedisBackend.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/3", timeout=1.0)
    wrong = RedisBackend.from_url(f"redis://:wrong@127.0.0.1:{server.port}/3", timeout=1.0)
    try:
        assert (await backend.consume(IP, [bucket(5, 60)])).allowed
        with redis.Redis(port=server.port, password="s3cret", db=3) as check:
            assert check.exists(redis_key(IP, bucket(5, 60))) == 1
        with pytest.raises(BackendError):
            await wrong.consume(IP, [bucket(5, 60)])
    finally:
        await backend.aclose()
        await wrong.aclose()


@pytest.fixture
def tls_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.mark.anyio
async def test_rediss_speaks_tls(
    tls_certificate: tuple[Path, Path], redis_server_factory: Callable[..., RedisServer]
) -> None:
    cert, key = tls_certificate
    tls_port = free_port()
    redis_server_factory(
        *("--tls-port", str(tls_port), "--tls-cert-file", str(cert)),
        *("--tls-key-file", str(key), "--tls-ca-cert-file", str(cert)),
        *("--tls-auth-clients", "no"),
    )
    backend = RedisBackend.from_url(
        f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}", timeout=1.0
    )
    try:
        assert (await backend.consume(IP, [bucket(5, 60)])).allowed
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_sentinel_finds_the_primary(redis_sentinel: RedisSentinel) -> None:
    backend = RedisBackend.from_url(redis_sentinel.url, timeout=1.0)
    try:
        limit = [bucket(2, 60)]
        assert [(await backend.consume(IP, limit)).allowed for _ in range(3)] == [
            True,
            True,
            False,
        ]
    finally:
        await backend.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "memcached://127.0.0.1:11211",
        "redis://127.0.0.1:6379/not-a-db",
        "redis://127.0.0.1:99999/0",
        "redis+cluster://127.0.0.1:7000/0",
        "redis+cluster://127.0.0.1:port",
        "redis+cluster://127.0.0.1:7000?colour=blue",
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://:s3cret@127.0.0.1:26379/a/b/c",
    ],
)
def test_unusable_urls_are_config_errors_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisBackend.from_url(url)
    assert caught.value.variable == "RATE_LIMIT_STORAGE_URI"
    assert "s3cret" not in str(caught.value)


def test_without_redis_py_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "redis" or n.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigError) as caught:
        RedisBackend.from_url("redis://:s3cret@127.0.0.1:6379/0")
    assert 'pip install "asgisec[redis]"' in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert "****" in str(caught.value)


def test_the_failure_policy_does_not_import_redis() -> None:
    code = "import sys, asgisec.ratelimit.resilient; assert 'redis' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
