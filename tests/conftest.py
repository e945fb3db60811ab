"""Shared fixtures. Real parts only: servers on loopback, real Redis, real clients."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
