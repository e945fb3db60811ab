"""Shared fixtures. Real parts only: servers on loopback, real Redis, real clients."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.conftest_redis"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
