"""Shared rate limits on Redis, over the wire: issue 3's "done when", as an operator runs it.

Every test serves the demo as a real ``python -m asgisec demo --workers 2`` process on a free
loopback port, against a real ``redis-server``, and talks to it with httpx. Fresh loopback
source addresses (``127.0.0.N``) give each phase of a test a client identity of its own, so no
test waits for a bucket to refill.

Which worker process answered a request is read from the kernel, not from the product: each
response's connection is found by its client port in ``/proc/net/tcp`` and its socket inode in
``/proc/<worker>/fd``. That is what makes "exact across two processes" a checked fact: the
counts below are exact *and* both workers took part, and the same burst against ``memory://``
admits exactly the sum of each worker's own limit instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgisec.bans import COUNTERS_KEY, SYNC_INTERVAL
from asgisec.ratelimit.redis import KEY_PREFIX, SCRIPT_SHA
from asgisec.ratelimit.resilient import COOLDOWN_S
from tests.redis_servers import RedisServer

from .servers import Served, cli_env, free_port, serving

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

LIMIT = 10  # RATE_LIMIT_TIMESOLVE=10/minute
BURST = 40  # concurrent requests, each on a connection of its own
WORKERS = 2
TIMESOLVE = {"after": "2026-06-21T00:00:00Z", "latitude": 51.48, "longitude": 0.0}
SERVED_WITHIN = 0.1  # seconds per request with Redis stopped: the "under 100 ms"
# What a client measures also holds its own TCP connect, httpx and the scheduling of a loaded
# machine; only a wait as long as a Redis connect timeout (1 s) would be asgisec's doing.
CLIENT_SANITY = 1.0
LOG_WAIT = 10.0  # seconds for the request log's writer thread to flush a line
ATTEMPTS = 5  # bursts until the kernel hands connections to both workers (nearly always the first)


class Reply:
    """One response and the worker process that sent it."""

    def __init__(self, response: httpx.Response, pid: int, elapsed: float) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.body: Any = response.json()
        self.pid = pid
        self.elapsed = elapsed
        self.request_id = response.headers["x-request-id"]


# --------------------------------------------------------------------------- /proc


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _owners_by_client_port(served: Served, server_port: int) -> dict[int, int]:
    """Client port → pid of the worker holding the server side of that connection."""
    by_inode: dict[int, int] = {}
    for pid in _descendants(served.process.pid) | {served.process.pid}:
        for inode in _socket_inodes(pid):
            by_inode[inode] = pid
    owners: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if int(local.rpartition(":")[2], 16) == server_port and inode in by_inode:
                owners[int(remote.rpartition(":")[2], 16)] = by_inode[inode]
    return owners


# --------------------------------------------------------------------------- clients


def _client(source: str, *, keepalive: bool = True) -> httpx.AsyncClient:
    """A client whose connections come from ``source`` (a loopback address: one identity)."""
    limits = httpx.Limits(
        max_connections=BURST, max_keepalive_connections=BURST if keepalive else 0
    )
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(local_address=source, limits=limits),
        timeout=10.0,
        trust_env=False,
    )


async def _timesolve(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.post(f"{url}/api/timesolve", json=TIMESOLVE)
    return response, time.perf_counter() - started


async def _burst(served: Served, port: int, source: str, count: int = BURST) -> list[Reply]:
    """``count`` concurrent ``POST /api/timesolve`` from ``source``, each with its worker."""
    async with _client(source) as client:
        outcomes = await asyncio.gather(*(_timesolve(client, served.url) for _ in range(count)))
        # Still inside the client: every connection is open (kept alive), so the kernel
        # still knows which worker holds its server side.
        owners = _owners_by_client_port(served, port)
        replies = []
        for response, elapsed in outcomes:
            client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
            replies.append(Reply(response, owners[client_port], elapsed))
        return replies


async def _burst_reaching_every_worker(
    served: Served, port: int, sources: Iterator[str]
) -> list[Reply]:
    """A burst (each attempt from a fresh identity) that every worker answered part of.

    Bursts, not single requests: a worker's accept loop takes every connection pending when
    it wakes, so lone connections in a row can all land on the worker that just went idle.
    """
    for _ in range(ATTEMPTS):
        replies = await _burst(served, port, next(sources))
        if len({reply.pid for reply in replies}) == WORKERS:
            return replies
    pytest.fail(f"the kernel gave every connection of {ATTEMPTS} bursts to one worker")


def _exact(replies: list[Reply]) -> bool:
    return Counter(reply.status for reply in replies) == {200: LIMIT, 429: BURST - LIMIT}


async def _sequential(served: Served, port: int, source: str, count: int) -> list[Reply]:
    """``count`` requests one after another, each on a new connection (so any worker)."""
    replies = []
    for _ in range(count):
        async with _client(source) as client:
            response, elapsed = await _timesolve(client, served.url)
            replies.append(Reply(response, _owner(served, port, response), elapsed))
    return replies


def _owner(served: Served, port: int, response: httpx.Response) -> int:
    """The worker that sent ``response``; its connection must still be open."""
    client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return _owners_by_client_port(served, port)[client_port]


def _sources() -> Iterator[str]:
    """Fresh loopback addresses, one per client identity (127.0.0.1 answers readiness)."""
    for n in range(2, 255):
        yield f"127.0.0.{n}"


async def _burst_on_both_workers(served: Served, port: int, sources: Iterator[str]) -> list[Reply]:
    """A burst that both workers took part in, each attempt from a fresh identity.

    An attempt that one worker answered alone must be just as exact, but proves less, so
    another burst follows; the first one both workers answered is returned.
    """
    for _ in range(ATTEMPTS):
        replies = await _burst(served, port, next(sources))
        if len({reply.pid for reply in replies}) == WORKERS:
            return replies
        _assert_exact(replies)  # one worker only: must still be exact, but proves less
    pytest.fail(f"the kernel gave every connection of {ATTEMPTS} bursts to one worker")


def _assert_exact(replies: list[Reply]) -> None:
    """Exactly ``LIMIT`` admitted; every refusal a 429 with a Retry-After in whole seconds."""
    statuses = Counter(reply.status for reply in replies)
    assert statuses == {200: LIMIT, 429: BURST - LIMIT}, statuses
    for reply in replies:
        if reply.status == 429:
            assert reply.body == {"error": "rate_limited", "message": "Too many requests."}
            retry = reply.headers["retry-after"]
            assert retry.isdigit()
            assert 1 <= int(retry) <= 60 // LIMIT  # one token of a 10/minute bucket: 6 s
        else:
            assert "retry-after" not in reply.headers
            assert reply.body["direction"] in ("rising", "setting")


def _served_seconds(served: Served, replies: list[Reply]) -> list[float]:
    """How long the server spent on each reply, from its own request log.

    Each request's JSON line (found by the ``X-Request-ID`` the reply carries) gives
    ``duration_ms``: from the moment the request reached asgisec to its last byte sent, the
    rate-limit decision and the app included. That is the time a stopped Redis could add;
    unlike a client's stopwatch, it leaves out the client's own TCP connect and scheduling.
    """
    wanted = {reply.request_id for reply in replies}
    deadline = time.monotonic() + LOG_WAIT
    while True:
        found: dict[str, float] = {}
        for line in served.output_so_far()[1].splitlines():
            if line.startswith("{") and '"request_id"' in line:
                entry = json.loads(line)
                if entry.get("request_id") in wanted:
                    found[entry["request_id"]] = entry["duration_ms"] / 1000
        if len(found) == len(wanted):
            return [found[reply.request_id] for reply in replies]
        if time.monotonic() > deadline:
            pytest.fail(f"{len(wanted) - len(found)} requests not in the request log")
        time.sleep(0.05)


def _assert_served_within(served: Served, replies: list[Reply]) -> None:
    """Every reply was served in under ``SERVED_WITHIN`` by the server's own clock."""
    slowest = max(_served_seconds(served, replies))
    assert slowest < SERVED_WITHIN, f"{slowest * 1000:.1f} ms in the server"
    slowest = max(reply.elapsed for reply in replies)
    assert slowest < CLIENT_SANITY, f"{slowest * 1000:.1f} ms at the client"


def _assert_no_traceback(served: Served) -> None:
    stdout, stderr = served.output_so_far()
    assert "Traceback" not in stdout + stderr
    assert " 500 " not in stdout + stderr  # uvicorn's access log names every status


# --------------------------------------------------------------------------- serving


@contextlib.contextmanager
def _demo(tmp_path: Path, storage: str, **settings: str) -> Iterator[tuple[Served, int]]:
    """``asgisec demo --workers 2`` with ``RATE_LIMIT_TIMESOLVE=10/minute`` on ``storage``."""
    port = free_port()
    env = cli_env(
        RATE_LIMIT_STORAGE_URI=storage, RATE_LIMIT_TIMESOLVE=f"{LIMIT}/minute", **settings
    )
    args = ["demo", "--port", str(port), "--workers", str(WORKERS)]
    with serving(args, port=port, env=env, cwd=tmp_path) as served:
        served.wait_for_output("Application startup complete", count=WORKERS)
        yield served, port
    _assert_no_traceback(served)


def _remaining(reply: Reply) -> int:
    """``r`` of the route's bucket in the ``RateLimit`` header."""
    for item in reply.headers["ratelimit"].split(","):
        name, _, params = item.strip().partition(";")
        if name == '"/api/timesolve"':
            return int(dict(p.split("=") for p in params.split(";"))["r"])
    raise AssertionError(f"no timesolve bucket in {reply.headers['ratelimit']!r}")


# --------------------------------------------------------------------------- exactness


@pytest.mark.anyio
async def test_two_workers_on_redis_admit_exactly_the_limit(
    tmp_path: Path, redis_server: RedisServer, redis_url: str
) -> None:
    """Done when: ``--workers 2`` on Redis, 40 concurrent ``POST /api/timesolve`` under
    ``RATE_LIMIT_TIMESOLVE=10/minute`` → exactly 10 x 2xx and 30 x 429 with Retry-After,
    both worker processes answering; the keys are ``asgisec:v1:`` with a TTL."""
    with _demo(tmp_path, redis_url) as (served, port):
        replies = await _burst_on_both_workers(served, port, _sources())
        _assert_exact(replies)

        # The fleet's counters reach Redis within a second (issue 5): wait for them, so the
        # key set below is the same however long the bursts took.
        deadline = time.monotonic() + 2 * SYNC_INTERVAL + LOG_WAIT
        while not redis_server.command("EXISTS", COUNTERS_KEY):
            assert time.monotonic() < deadline, "the fleet counters never reached Redis"
            await asyncio.sleep(0.05)
        keys = {
            key.decode(): redis_server.command("PTTL", key)
            for key in redis_server.command("KEYS", "*")
        }
        for key in keys:
            assert key.startswith(KEY_PREFIX), key
        # The counters are running totals, kept without a TTL on purpose; every other key
        # is a bucket, which lives as long as it needs to refill fully, never more.
        assert keys.pop(COUNTERS_KEY) == -1
        assert len(keys) >= 2, keys  # at least the last identity's default and route buckets
        for key, pttl in keys.items():
            assert 0 < pttl <= 60_000, (key, pttl)


@pytest.mark.anyio
async def test_two_workers_on_memory_each_admit_the_limit(tmp_path: Path) -> None:
    """The contrast: the same burst against ``memory://`` admits each worker's own limit, so
    more than 10 in all once both workers answer; what makes the Redis count exact is Redis."""
    sources = _sources()
    with _demo(tmp_path, "memory://") as (served, port):
        for _ in range(ATTEMPTS):
            replies = await _burst(served, port, next(sources))
            per_worker = Counter(reply.pid for reply in replies)
            admitted = Counter(reply.pid for reply in replies if reply.status == 200)
            for pid, answered in per_worker.items():
                assert admitted[pid] == min(LIMIT, answered)  # each worker exact on its own
            if len(per_worker) == WORKERS:
                break
        else:
            pytest.fail(f"the kernel gave every connection of {ATTEMPTS} bursts to one worker")
    assert sum(admitted.values()) > LIMIT
    # Each worker warned at start-up that memory:// buckets are per process.
    assert served.stderr.count("RATE_LIMIT_STORAGE_URI=memory:// with several worker") == WORKERS


# --------------------------------------------------------------------------- faults


@pytest.mark.anyio
async def test_after_script_flush_the_next_requests_are_decided_by_redis(
    tmp_path: Path, redis_server: RedisServer, redis_url: str
) -> None:
    """Done when: after ``SCRIPT FLUSH`` the next request is decided correctly: the bucket
    goes on where it was (not a fresh local one), in both workers, and the script is cached
    again; nothing is refused or admitted wrongly on the way."""
    sources = _sources()
    with _demo(tmp_path, redis_url) as (served, port):
        source = next(sources)
        before = await _sequential(served, port, source, 3)
        assert [reply.status for reply in before] == [200] * 3
        assert [_remaining(reply) for reply in before] == [9, 8, 7]

        redis_server.command("SCRIPT", "FLUSH")
        assert redis_server.command("SCRIPT", "EXISTS", SCRIPT_SHA) == [0]
        after = await _sequential(served, port, source, 1)
        assert after[0].status == 200
        assert _remaining(after[0]) == 6  # the same bucket, charged once more
        assert redis_server.command("SCRIPT", "EXISTS", SCRIPT_SHA) == [1]

        # Both workers meet NOSCRIPT at once: 40 concurrent requests right after a flush.
        redis_server.command("SCRIPT", "FLUSH")
        replies = await _burst_on_both_workers(served, port, sources)
        _assert_exact(replies)


@pytest.mark.anyio
async def test_fail_open_serves_every_request_fast_while_redis_is_stopped_then_recovers(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> None:
    """Done when: with Redis stopped every request is still served (fail-open) in under
    100 ms, and the same served process enforces the shared limit again when Redis returns.
    One warning per worker for the incident, not one per request; never a 500."""
    server = redis_server_factory()
    sources = _sources()
    with _demo(tmp_path, server.url) as (served, port):
        _assert_exact(await _burst(served, port, next(sources)))  # Redis decides

        server.stop()
        outage: list[Reply] = []
        for _ in range(3):  # three identities, ten requests each: within every local bucket
            outage += await _sequential(served, port, next(sources), LIMIT)
        assert [reply.status for reply in outage] == [200] * len(outage)
        _assert_served_within(served, outage)
        _, stderr = served.output_so_far()
        warnings = stderr.count("rate-limit storage unavailable")
        assert 1 <= warnings <= WORKERS, stderr  # one per worker whose circuit opened

        server.start()  # same port, empty: no bucket survived the outage
        restarted = time.monotonic()
        # Each worker probes Redis once its cool-down is over; no circuit opened later than
        # the restart, so all are over COOLDOWN_S after it.
        await asyncio.sleep(max(0.0, restarted + COOLDOWN_S + 0.5 - time.monotonic()))
        # A worker's first request after its cool-down starts the probe beside it (that
        # request is decided locally and does not wait); the probe reconnects, reloads the
        # script and closes the circuit. A burst both workers answer kicks both: it may be
        # decided partly by local buckets, but never with an error.
        kick = await _burst_reaching_every_worker(served, port, sources)
        assert {reply.status for reply in kick} <= {200, 429}
        # Then the shared limit again: a worker still deciding from its local bucket would
        # admit up to 10 on its own; exactly 10 of 40, from both workers, is one shared bucket.
        # The probes take milliseconds; a few more bursts allow for a loaded machine.
        for _ in range(ATTEMPTS):
            replies = await _burst_reaching_every_worker(served, port, sources)
            if _exact(replies):
                break
            await asyncio.sleep(0.5)
        _assert_exact(replies)
        assert server.command("DBSIZE") >= 2  # the restarted, empty Redis holds buckets again
        _, stderr = served.output_so_far()
        assert stderr.count("rate-limit storage unavailable") == warnings  # same incident


@pytest.mark.anyio
async def test_fail_closed_answers_503_with_retry_after_while_redis_is_stopped(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> None:
    """``RATE_LIMIT_FAIL_MODE=closed`` with Redis stopped: 503 + ``Retry-After`` on every
    limited request, never a 500 and never a 429 that would blame the client."""
    server = redis_server_factory()
    sources = _sources()
    with _demo(tmp_path, server.url, RATE_LIMIT_FAIL_MODE="closed") as (served, port):
        assert (await _sequential(served, port, next(sources), 1))[0].status == 200

        server.stop()
        replies = await _sequential(served, port, next(sources), 20)
        for reply in replies:
            assert reply.status == 503, reply.body
            assert reply.body == {
                "error": "unavailable",
                "message": "Service temporarily unavailable.",
            }
            retry = reply.headers["retry-after"]
            assert retry.isdigit()
            assert 1 <= int(retry) <= COOLDOWN_S
            assert reply.headers["x-content-type-options"] == "nosniff"  # decorated as any
        _assert_served_within(served, replies)
