"""Real servers for the operator-tool tests: uvicorn processes and in-process TLS servers.

``uvicorn_serving(app)`` runs ``python -m uvicorn MODULE:APP`` (not wrapped by asgisec) on a
free loopback port and stops it after the block. ``tls_server(...)`` is a threaded TLS
server on loopback that answers every request with a fixed HTTP response; its protocol
versions and ciphers are the test's choice (TLS 1.0 only, for case T1).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from .servers import STARTUP_TIMEOUT, STOP_TIMEOUT, cli_env, free_port

__all__ = ["TlsServer", "tls_server", "uvicorn_serving"]


@contextlib.contextmanager
def uvicorn_serving(
    app: str,
    *,
    cwd: str | Path,
    extra: tuple[str, ...] = ("--no-server-header",),
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Serve ``app`` with uvicorn; yields the base URL once it answers (bounded wait)."""
    port = free_port()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning",
             *extra],
            env=dict(env if env is not None else cli_env()),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            with httpx.Client(timeout=2.0, trust_env=False) as client:
                while True:
                    if process.poll() is not None:
                        out.seek(0)
                        raise RuntimeError(f"uvicorn exited: {out.read().decode()}")
                    try:
                        client.get(url + "/")
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{app} did not start") from None
                        time.sleep(0.05)
            yield url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    process.wait(timeout=STOP_TIMEOUT)


class TlsServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"https://127.0.0.1:{port}"


_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
    b"connection: close\r\n\r\n{}"
)


@contextlib.contextmanager
def tls_server(
    certfile: str,
    keyfile: str,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str | None = None,
) -> Iterator[TlsServer]:
    """A TLS server on loopback in a thread, for as long as the block runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1 is the point of T1
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = minimum
        context.maximum_version = maximum
        if ciphers:
            context.set_ciphers(ciphers)
    context.load_cert_chain(certfile, keyfile)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5.0)
            try:
                with (
                    context.wrap_socket(conn, server_side=True) as tls,
                    contextlib.suppress(OSError),
                ):
                    tls.recv(65536)
                    tls.sendall(_RESPONSE)
            except (ssl.SSLError, OSError):
                conn.close()  # a refused handshake is what several probes expect

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield TlsServer(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5.0)
        listener.close()
