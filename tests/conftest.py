"""Shared fixtures. Real parts only: servers on loopback, real Redis, real clients."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.conftest_redis"]

# These machines are shared and noisy: a property is judged by its examples, never by how fast
# they were generated or run. HYPOTHESIS_PROFILE=fuzz raises the example counts (tox -e fuzz).
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "fuzz",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    max_examples=100_000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
