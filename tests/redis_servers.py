"""Real ``redis-server`` processes on 127.0.0.1 for the tests: standalone, Cluster, Sentinel.

Each server runs in its own directory, persists nothing (``--save '' --appendonly no``) and is
killed when its fixture ends. Every wait is bounded. Fault tests stop, restart, pause
(``SIGSTOP``) and resume (``SIGCONT``) servers of their own, never the shared one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

__all__ = [
    "REDIS_SERVER",
    "RedisClusterServers",
    "RedisServer",
    "free_port",
    "ping",
]

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
HOST = "127.0.0.1"
START_TIMEOUT = 10.0  # a redis-server is up in ~10 ms; a loaded CI box gets plenty more


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis (or Sentinel) answers PING on ``port``."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))  # up, maybe with a password
    except OSError:
        return False


def _wait(predicate: Any, what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.01)


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        extra: tuple[str, ...] = (),
        config_file: Path | None = None,
    ) -> None:
        assert REDIS_SERVER is not None, "redis-server is not installed"
        self.directory = directory
        self.port = port or free_port()
        self.extra = extra
        self.config_file = config_file
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def argv(self) -> list[str]:
        assert REDIS_SERVER is not None
        head = [REDIS_SERVER] + ([str(self.config_file)] if self.config_file else [])
        return [
            *head,
            *("--port", str(self.port), "--bind", HOST, "--dir", str(self.directory)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            *self.extra,
        ]

    def start(self) -> None:
        """Start the process and wait until it answers PING."""
        assert self.process is None, "already running"
        log = (self.directory / "server.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        try:
            _wait(self._ready, f"redis-server on port {self.port} answering PING")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.directory / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server exited with {self.process.returncode}:\n{log}")
        return ping(self.port)

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 5 s) and reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        if self.paused:
            self.resume_process(process)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        """Stop, then start on the same port: the data and the script cache are gone."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections, but nothing is ever answered."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        self.resume_process(self.process)

    def resume_process(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGCONT)
        self.paused = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self, *args: Any) -> Any:
        """Run one command with a short-lived synchronous client."""
        with redis.Redis(host=HOST, port=self.port, socket_timeout=5) as client:
            return client.execute_command(*args)


class RedisClusterServers:
    """``size`` primaries (no replicas) joined by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = [
            RedisServer(
                directory / f"node{i}",
                extra=(
                    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    *("--cluster-port", str(free_port()), "--cluster-node-timeout", "5000"),
                ),
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{HOST}:{node.port}" for node in self.nodes[:2])

    def start(self) -> None:
        assert REDIS_CLI is not None, "redis-cli is not installed"
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                [
                    REDIS_CLI,
                    "--cluster",
                    "create",
                    *(f"{HOST}:{node.port}" for node in self.nodes),
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
            _wait(self._ok, "the cluster reporting cluster_state:ok on every node", 30)
        except BaseException:
            self.stop()
            raise

    def _ok(self) -> bool:
        for node in self.nodes:
            info = node.command("CLUSTER", "INFO")
            text = info.decode() if isinstance(info, bytes) else str(info)
            if (
                "cluster_state:ok" not in text
                or f"cluster_known_nodes:{len(self.nodes)}" not in text
            ):
                return False
        return True

    def flush(self) -> None:
        for node in self.nodes:
            node.command("FLUSHALL")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class RedisSentinel(RedisServer):
    """A Sentinel watching ``master`` as service ``service`` (quorum 1)."""

    def __init__(self, directory: Path, master: RedisServer, service: str = "mymaster") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
        config.write_text(
            f"sentinel monitor {service} {HOST} {master.port} 1\n"
            f"sentinel down-after-milliseconds {service} 5000\n"
        )
        super().__init__(directory, extra=("--sentinel",), config_file=config)
        self.service = service

    def argv(self) -> list[str]:
        assert REDIS_SERVER is not None
        return [
            REDIS_SERVER,
            str(self.config_file),
            *("--port", str(self.port), "--bind", HOST, "--dir", str(self.directory)),
            "--sentinel",
        ]

    @property
    def url(self) -> str:
        return f"redis+sentinel://{HOST}:{self.port}/{self.service}"
