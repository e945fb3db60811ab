"""TLS checks against real TLS servers on loopback with trustme certificates (T1, T2).

In-process servers (``tests.tool_servers.tls_server``) for the protocol and certificate
probes, whose versions and ciphers each test chooses; ``asgisec serve --ssl-certfile`` (real
uvicorn) for the full HTTPS audit, behind a real plain-HTTP redirect.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from asgisec.tools.model import Result
from asgisec.tools.tls import (
    certificate_results,
    inspect_certificate,
    probe_protocol,
    probe_weak_ciphers,
    protocol_results,
)

from .servers import cli_env, free_port, run_cli, serving
from .tool_servers import tls_server

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def leaf(
    ca: trustme.CA,
    directory: Path,
    *names: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[str, str]:
    cert = ca.issue_cert(*(names or (HOST,)), not_before=not_before, not_after=not_after)
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


def results_by_id(results: Sequence[Result]) -> dict[str, str]:
    return {r.id: r.status for r in results}


# --------------------------------------------------------------------------- certificates


def test_valid_certificate_passes(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    certfile, keyfile = leaf(ca, tmp_path)
    with tls_server(certfile, keyfile) as server:
        info = inspect_certificate(HOST, server.port, cafile=ca_file)
    assert info.verified
    assert info.hostname_ok
    assert info.days_left is not None
    assert info.days_left > 30
    assert set(results_by_id(certificate_results(info)).values()) == {"pass"}


def test_certificate_expiring_in_10_days_fails(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    soon = datetime.now(UTC) + timedelta(days=10, hours=1)
    certfile, keyfile = leaf(ca, tmp_path, not_after=soon)
    with tls_server(certfile, keyfile) as server:
        info = inspect_certificate(HOST, server.port, cafile=ca_file)
    assert info.verified
    assert info.days_left == 10
    found = {r.id: r for r in certificate_results(info)}
    assert found["tls.cert-expiring"].status == "fail"
    assert "10 days" in found["tls.cert-expiring"].detail
    assert found["tls.cert-expired"].status == "pass"


def test_expired_certificate_is_critical(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    certfile, keyfile = leaf(ca, tmp_path, not_before=past - timedelta(days=30), not_after=past)
    with tls_server(certfile, keyfile) as server:
        info = inspect_certificate(HOST, server.port, cafile=ca_file)
    assert not info.verified
    assert info.expired is True
    found = {r.id: r for r in certificate_results(info)}
    assert found["tls.cert-expired"].status == "fail"
    assert found["tls.cert-expired"].severity == "critical"
    assert found["tls.cert-untrusted"].status == "pass"  # the chain is fine; it is expired


def test_wrong_hostname_fails_and_expiry_is_still_read(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    certfile, keyfile = leaf(ca, tmp_path, "wrong.example")
    with tls_server(certfile, keyfile) as server:
        info = inspect_certificate(HOST, server.port, cafile=ca_file)
    assert info.hostname_ok is False
    assert info.not_after is not None  # from the DER certificate (T2)
    found = results_by_id(certificate_results(info))
    assert found["tls.cert-hostname"] == "fail"
    assert found["tls.cert-untrusted"] == "pass"


def test_t2_expiry_is_parsed_from_der_when_the_chain_is_untrusted(
    ca: trustme.CA, tmp_path: Path
) -> None:
    soon = datetime.now(UTC) + timedelta(days=5, hours=1)
    certfile, keyfile = leaf(ca, tmp_path, not_after=soon)
    with tls_server(certfile, keyfile) as server:
        # The class of fault: unverified, the decoded certificate is empty.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection((HOST, server.port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname=HOST) as tls,
        ):
            assert tls.getpeercert() == {}
        info = inspect_certificate(HOST, server.port)  # no CA: the chain does not verify
    assert not info.verified
    assert info.days_left == 5
    found = results_by_id(certificate_results(info))
    assert found["tls.cert-untrusted"] == "fail"
    assert found["tls.cert-expiring"] == "fail"  # "no expiry info" is never reported as OK


def test_nothing_listening_is_inconclusive_never_pass() -> None:
    info = inspect_certificate(HOST, free_port(), timeout=2.0)
    assert not info.reachable
    assert set(results_by_id(certificate_results(info)).values()) == {"inconclusive"}


# --------------------------------------------------------------------------- protocols (T1)


def test_t1_tls10_only_server_fails(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = leaf(ca, tmp_path)
    with tls_server(
        certfile,
        keyfile,
        minimum=ssl.TLSVersion.TLSv1,
        maximum=ssl.TLSVersion.TLSv1,
        ciphers="DEFAULT:@SECLEVEL=0",
    ) as server:
        accepted = probe_protocol(HOST, server.port, ssl.TLSVersion.TLSv1)
        # The local library at its default security level cannot offer TLS 1.0 at all: that
        # is the client's limit, and must never read as "TLS 1.0 disabled".
        local_limit = probe_protocol(HOST, server.port, ssl.TLSVersion.TLSv1, ciphers=None)
        found = results_by_id(protocol_results(HOST, server.port))
    assert accepted.outcome == "accepted"
    assert "TLSv1" in accepted.detail
    assert local_limit.outcome == "inconclusive"
    assert "NO_CIPHERS_AVAILABLE" in local_limit.detail
    assert "local OpenSSL" in local_limit.detail
    assert found["tls.protocol-tls1.0"] == "fail"
    assert found["tls.protocol-tls1.1"] == "pass"  # a TLS 1.0-only server refuses TLS 1.1


def test_modern_server_refuses_old_protocols(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = leaf(ca, tmp_path)
    with tls_server(certfile, keyfile) as server:
        old = probe_protocol(HOST, server.port, ssl.TLSVersion.TLSv1)
        found = results_by_id(protocol_results(HOST, server.port))
    assert old.outcome == "refused"
    assert "PROTOCOL_VERSION" in old.detail
    assert found["tls.protocol-tls1.0"] == "pass"
    assert found["tls.protocol-tls1.1"] == "pass"
    assert found["tls.weak-ciphers"] in ("pass", "inconclusive")


def test_server_offering_a_null_cipher_fails(ca: trustme.CA, tmp_path: Path) -> None:
    certfile, keyfile = leaf(ca, tmp_path)
    with tls_server(
        certfile,
        keyfile,
        maximum=ssl.TLSVersion.TLSv1_2,
        ciphers="ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0",
    ) as server:
        probe = probe_weak_ciphers(HOST, server.port)
    assert probe.outcome == "accepted"
    assert "NULL" in probe.detail


# --------------------------------------------------------------------------- audit over HTTPS


@contextlib.contextmanager
def redirecting_to(target: str) -> Iterator[str]:
    """A real plain-HTTP server answering every GET with 301 to ``target`` + path."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("location", target.rstrip("/") + self.path)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((HOST, 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_https_audit_of_asgisec_scores_a_plus_in_full(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    certfile, keyfile = leaf(ca, tmp_path)
    port = free_port()
    args = ["serve", "tests.servers:app", "--port", str(port)]
    args += ["--ssl-certfile", certfile, "--ssl-keyfile", keyfile]
    verify = ssl.create_default_context(cafile=ca_file)
    env = cli_env(TRUSTED_HOSTS=HOST)
    with (
        serving(args, port=port, env=env, cwd=tmp_path, scheme="https", verify=verify) as served,
        redirecting_to(served.url) as http_url,
    ):
        done = run_cli(
            ["audit", served.url + "/", "--cacert", ca_file, "--http-url", http_url,
             "--format", "json"],
            env=cli_env(),
            cwd=tmp_path,
            timeout=60,
        )  # fmt: skip
    report = json.loads(done.stdout)
    tests = {t["name"]: t for t in report["scoring"]["tests"]}
    assert report["scoring"]["scope"] == "full"
    assert tests["strict-transport-security"]["result"] == (
        "hsts-implemented-max-age-at-least-six-months"
    )
    assert tests["strict-transport-security"]["scored"] is True
    assert tests["redirection"]["result"] == "redirection-to-https"
    assert (report["score"], report["grade"]) == (130, "A+")
    checks = {c["id"]: c["status"] for c in report["checks"]}
    for check_id in (
        "https.not-served",
        "https.redirect-missing",
        "https.redirect-status",
        "hsts.missing",
        "hsts.short-max-age",
        "tls.cert-expiring",
        "tls.cert-hostname",
        "tls.cert-untrusted",
        "tls.protocol-tls1.0",
        "tls.protocol-tls1.1",
    ):
        assert checks[check_id] == "pass", check_id
    assert checks["tls.weak-ciphers"] in ("pass", "inconclusive")
    assert done.returncode == 0, done.stdout


def test_https_audit_reports_a_wrong_hostname(ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    certfile, keyfile = leaf(ca, tmp_path, "wrong.example")
    with tls_server(certfile, keyfile) as server:
        done = run_cli(
            ["audit", server.url + "/", "--cacert", ca_file, "--format", "json"],
            env=cli_env(),
            cwd=tmp_path,
            timeout=60,
        )
    report = json.loads(done.stdout)
    ids = {f["id"] for f in report["findings"]}
    assert "tls.cert-hostname" in ids
    tests = {t["name"]: t["result"] for t in report["scoring"]["tests"]}
    assert tests["strict-transport-security"] == "hsts-invalid-cert"
    assert done.returncode == 1
