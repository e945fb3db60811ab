"""Run asgisec's command line as a real process, the way an operator does.

``serving(...)`` starts ``python -m asgisec ...`` on a free loopback port, waits (bounded)
until it answers HTTP, yields the base URL, then stops it (SIGTERM, then SIGKILL for the whole
process group) and keeps what it printed. ``run_cli(...)`` runs a command that is expected to
exit. ``app`` is a tiny raw ASGI app to serve when the demo is not the subject.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import msgspec

from asgisec.env import iter_options

__all__ = [
    "REPO_ROOT",
    "STARTUP_TIMEOUT",
    "Served",
    "ServerExited",
    "app",
    "cli_env",
    "free_port",
    "run_cli",
    "serving",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 20.0  # seconds: a cold interpreter, imports and uvicorn start-up, with margin
STOP_TIMEOUT = 10.0  # seconds for a graceful shutdown before SIGKILL

_ASGISEC_VARIABLES = frozenset(option.env for option in iter_options())


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_env(**overrides: str) -> dict[str, str]:
    """This process's environment minus any asgisec setting, plus ``overrides``.

    The repository root goes on ``PYTHONPATH`` so ``tests.servers:app`` imports from any
    working directory; output is unbuffered so it is complete even after SIGKILL.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _ASGISEC_VARIABLES
        and not key.startswith(("RATE_LIMIT_", "ASGISEC_"))
        and key not in ("TTY_COMPATIBLE", "FORCE_COLOR")
    }
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])]
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    timeout: float = STARTUP_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m asgisec ARGS`` to completion (bounded) and capture its output."""
    return subprocess.run(  # noqa: PLW1510 - callers assert on the exit status themselves
        [sys.executable, "-m", "asgisec", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class ServerExited(Exception):
    """The server process ended before it answered a request."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"exited with {returncode} before serving\n{stdout}\n{stderr}")


class Served:
    """A running server: its URL now; its exit status and output once the block has ended."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process
        self.returncode: int | None = None
        self.stdout = ""
        self.stderr = ""
        self._streams: tuple[IO[bytes], IO[bytes]] | None = None

    def output_so_far(self) -> tuple[str, str]:
        """``(stdout, stderr)`` printed up to now, while the server runs."""
        if self._streams is None:
            return self.stdout, self.stderr
        return _read(self._streams[0]), _read(self._streams[1])

    def wait_for_output(self, text: str, count: int = 1, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait (bounded) until ``text`` appears ``count`` times in stdout and stderr together."""
        deadline = time.monotonic() + timeout
        while sum(part.count(text) for part in self.output_so_far()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} x{count} not printed in {timeout} s")
            time.sleep(0.05)


@contextlib.contextmanager
def serving(
    args: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    scheme: str = "http",
    verify: ssl.SSLContext | bool = True,
    ready_path: str = "/health",
    timeout: float = STARTUP_TIMEOUT,
) -> Iterator[Served]:
    """Start ``python -m asgisec ARGS`` and yield once ``ready_path`` answers (any status).

    Raises :class:`ServerExited` if the process ends first, ``TimeoutError`` after
    ``timeout`` seconds. The process gets its own session so that a final SIGKILL also
    reaches uvicorn's worker processes.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "asgisec", *args],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        served = Served(f"{scheme}://127.0.0.1:{port}", process)
        served._streams = (out, err)
        try:
            _wait_until_ready(
                process, served.url + ready_path, verify=verify, timeout=timeout, out=out, err=err
            )
            yield served
        finally:
            served.returncode = _stop(process)
            served.stdout, served.stderr = _read(out), _read(err)
            served._streams = None


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    url: str,
    *,
    verify: ssl.SSLContext | bool,
    timeout: float,
    out: IO[bytes],
    err: IO[bytes],
) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=verify, timeout=2.0, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise ServerExited(process.returncode, _read(out), _read(err))
            try:
                client.get(url)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    _stop(process)
                    raise TimeoutError(
                        f"{url} did not answer in {timeout} s\n{_read(out)}\n{_read(err)}"
                    ) from None
                time.sleep(0.05)
            else:
                return


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the group we created: the server and workers
    return process.wait(timeout=STOP_TIMEOUT)


def _read(stream: IO[bytes]) -> str:
    # pread leaves the offset alone: the child shares it and is still appending.
    fd = stream.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode("utf-8", "replace")


# --------------------------------------------------------------------------- a tiny ASGI app

Message = MutableMapping[str, Any]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Raw ASGI: lifespan, and JSON naming the process and scheme on every HTTP path."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = msgspec.json.encode(
        {
            "status": "ok",
            "pid": os.getpid(),
            "scheme": scope["scheme"],
            "client": scope["client"][0] if scope.get("client") else None,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
