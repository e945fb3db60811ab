"""Fixtures for real Redis servers (a pytest plugin: ``pytest_plugins = ["tests.conftest_redis"]``).

- ``redis_server`` (session): one standalone server; ``redis_url`` gives it to a test empty.
- ``redis_cluster`` (session): three primaries; ``redis_cluster_url`` gives it empty.
- ``redis_server_factory``: servers of a test's own, for stopping, restarting and pausing.
- ``redis_sentinel``: a Sentinel watching a server of the test's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.redis_servers import REDIS_SERVER, RedisClusterServers, RedisSentinel, RedisServer


def _require_redis() -> None:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/test installs it)")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    _require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, its data flushed (the script cache is kept, as in production)."""
    if redis_server.paused:
        redis_server.resume()
    if not redis_server.running:
        redis_server.restart()
    redis_server.command("FLUSHALL")
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    _require_redis()
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``make(*extra_args)`` starts a server owned by this test; all are stopped after it."""
    _require_redis()
    servers: list[RedisServer] = []

    def make(*extra: str) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}", extra=extra)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def redis_sentinel(
    tmp_path: Path, redis_server_factory: Callable[..., RedisServer]
) -> Iterator[RedisSentinel]:
    master = redis_server_factory()
    sentinel = RedisSentinel(tmp_path / "sentinel", master)
    sentinel.start()
    try:
        yield sentinel
    finally:
        sentinel.stop()
