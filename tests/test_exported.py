"""The public surface: what ``import asgisec`` exports, and what it does not drag in."""

from __future__ import annotations

import subprocess
import sys

import pytest

import asgisec

PUBLIC = [
    "AsgisecError",
    "BackendError",
    "ConfigError",
    "CorsConfig",
    "GuardsConfig",
    "HeadersConfig",
    "HostsConfig",
    "RateLimitConfig",
    "RequestConfig",
    "SecurityConfig",
    "SecurityMiddleware",
    "__version__",
    "secure",
    "security_health",
]


def test_all_is_pinned() -> None:
    """A name added to or removed from ``__all__`` is an API change: update this list on purpose."""
    assert sorted(asgisec.__all__) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_exists(name: str) -> None:
    assert hasattr(asgisec, name)


def test_public_callables_belong_to_asgisec() -> None:
    for name in PUBLIC:
        value = getattr(asgisec, name)
        if callable(value):
            assert value.__module__.startswith("asgisec."), name


def test_error_tree() -> None:
    assert issubclass(asgisec.ConfigError, asgisec.AsgisecError)
    assert issubclass(asgisec.BackendError, asgisec.AsgisecError)
    assert not issubclass(asgisec.ConfigError, ValueError)  # callers catch AsgisecError


def test_version_matches_the_distribution() -> None:
    from importlib.metadata import version

    assert asgisec.__version__ == version("asgisec")


OPTIONAL = ["starlette", "redis", "uvicorn", "httpx", "rich", "quart", "hypercorn"]


def test_import_pulls_in_no_optional_dependency() -> None:
    """The core needs msgspec only: the extras are imported lazily, where they are used."""
    code = (
        "import sys, asgisec\n"
        "from asgisec import SecurityConfig, secure\n"
        "async def app(scope, receive, send): pass\n"
        "secure(app, SecurityConfig())\n"
        f"print(','.join(m for m in {OPTIONAL!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported eagerly: {result.stdout.strip()}"
