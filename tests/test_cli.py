"""The ``asgisec`` command, run as real processes: what an operator types and sees.

Every server here is ``python -m asgisec ...`` on a free loopback port, reached with httpx;
every failure is a real exit status and real stderr. The working directory is a fresh
``tmp_path`` so no stray ``.env`` leaks in.
"""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme

from asgisec.env import env_reference

from .servers import Served, ServerExited, cli_env, free_port, run_cli, serving

APP = "tests.servers:app"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


def _client(verify: ssl.SSLContext | bool = True) -> httpx.Client:
    return httpx.Client(verify=verify, timeout=5.0, trust_env=False)


def _assert_stopped_gracefully(served: Served, final_line: str = "Finished server process") -> None:
    """SIGTERM led to a graceful shutdown (uvicorn re-raises the signal once it is done)."""
    assert served.returncode in (0, -signal.SIGTERM), served.stderr
    assert final_line in served.stderr
    assert "Traceback" not in served.stderr


def _assert_one_clean_line(stderr: str) -> str:
    """asgisec's start-up failures are one line on stderr, never a traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("asgisec: "), stderr
    return lines[0]


# --------------------------------------------------------------------------- serving


def test_serve_wraps_the_app_and_prints_url_and_summary(tmp_path: Path) -> None:
    port = free_port()
    with serving(["serve", APP, "--port", str(port)], port=port, env=cli_env(), cwd=tmp_path) as s:
        with _client() as client:
            response = client.get(f"{s.url}/health", headers={"x-forwarded-for": "203.0.113.9"})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok"
        assert body["scheme"] == "http"
        # proxy_headers=False: uvicorn does not take the client address from X-Forwarded-For.
        assert body["client"] == "127.0.0.1"
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, name
        assert "content-security-policy" in response.headers
        assert "strict-transport-security" not in response.headers  # HSTS only over HTTPS
        assert response.headers.get_list("server") == []  # uvicorn's is off; the app sets none
        assert len(response.headers.get_list("date")) == 1
        assert response.headers["x-request-id"]
    _assert_stopped_gracefully(s)
    assert f"serving {APP} at http://127.0.0.1:{port} (1 process)" in s.stdout
    assert "RATE_LIMIT_DEFAULT" in s.stdout
    assert "100/minute" in s.stdout


def test_demo_answers_health_with_security_headers(tmp_path: Path) -> None:
    port = free_port()
    args = ["demo", "--port", str(port)]
    env = cli_env(TRUSTED_HOSTS="127.0.0.1,localhost")
    with serving(args, port=port, env=env, cwd=tmp_path) as s, _client() as client:
        response = client.get(f"{s.url}/health")
        evil = client.get(f"{s.url}/health", headers={"host": "evil.example"})
    assert evil.status_code == 400
    assert evil.headers["x-content-type-options"] == "nosniff"  # refusals are decorated too
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    security = response.json()["checks"]["security"]
    for key in (
        "status",
        "blocked_requests",
        "rate_limited_requests",
        "suspicious_requests",
        "security_headers_enabled",
        "trusted_hosts_configured",
    ):
        assert key in security
    assert security["security_headers_enabled"] is True
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert [v for v in response.headers.get_list("server") if "uvicorn" in v] == []
    assert len(response.headers.get_list("server")) <= 1
    _assert_stopped_gracefully(s)
    assert f"serving asgisec.demo:app at http://127.0.0.1:{port}" in s.stdout


def test_env_file_configures_the_served_middleware(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("TRUSTED_HOSTS=localhost\nX_FRAME_OPTIONS=SAMEORIGIN\n")
    port = free_port()
    args = ["serve", APP, "--port", str(port), "--env-file", str(env_file)]
    with serving(args, port=port, env=cli_env(), cwd=tmp_path) as s, _client() as client:
        refused = client.get(f"{s.url}/health")  # Host: 127.0.0.1:PORT is not trusted
        allowed = client.get(f"{s.url}/health", headers={"host": f"localhost:{port}"})
    assert refused.status_code == 400
    assert allowed.status_code == 200
    assert allowed.headers["x-frame-options"] == "SAMEORIGIN"
    assert "* TRUSTED_HOSTS" in s.stdout  # marked as changed from the default


def test_workers_serve_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    args = ["serve", APP, "--port", str(port), "--workers", "2"]
    with serving(args, port=port, env=cli_env(), cwd=tmp_path) as s:
        # Both workers ran their lifespan start-up (which one answers is the kernel's choice).
        s.wait_for_output("Application startup complete.", count=2)
        with _client() as client:
            responses = [client.get(f"{s.url}/health") for _ in range(5)]
        assert all(r.status_code == 200 for r in responses)
        assert all(r.headers["x-content-type-options"] == "nosniff" for r in responses)
        pids = {r.json()["pid"] for r in responses}
        assert s.process.pid not in pids  # the supervisor serves nothing itself
    _assert_stopped_gracefully(s, "Stopping parent process")
    assert s.stderr.count("Application shutdown complete.") == 2
    assert "(2 worker processes)" in s.stdout
    # memory:// in several workers: the middleware warns (in each worker).
    assert "several worker processes" in s.stderr


def test_app_from_working_directory_and_dotted_attribute(tmp_path: Path) -> None:
    (tmp_path / "mysite.py").write_text(
        "from asgisec import secure\nfrom tests.servers import app\n\nwrapped = secure(app)\n"
    )
    env = cli_env(TRUSTED_HOSTS="127.0.0.1")
    refused = run_cli(["serve", "mysite:wrapped"], env=env, cwd=tmp_path)
    assert refused.returncode == 2
    line = _assert_one_clean_line(refused.stderr)
    assert "already wrapped by asgisec" in line
    assert "asgisec serve mysite:wrapped.app" in line

    port = free_port()
    args = ["serve", "mysite:wrapped.app", "--port", str(port)]  # ./mysite.py, attr.sub
    with serving(args, port=port, env=env, cwd=tmp_path) as s, _client() as client:
        assert client.get(f"{s.url}/health").status_code == 200
    _assert_stopped_gracefully(s)


def test_https_with_certificate_and_hsts(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)

    port = free_port()
    args = ["serve", APP, "--port", str(port)]
    args += ["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)]
    with (
        serving(args, port=port, env=cli_env(), cwd=tmp_path, scheme="https", verify=context) as s,
        _client(context) as client,
    ):
        response = client.get(f"{s.url}/health")
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert response.headers["x-content-type-options"] == "nosniff"
    _assert_stopped_gracefully(s)
    assert f"at https://127.0.0.1:{port}" in s.stdout


def test_unusable_certificate_is_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "cert.pem"
    bogus.write_text("not a certificate\n")
    result = run_cli(["serve", APP, "--ssl-certfile", str(bogus)], env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "TLS certificate" in _assert_one_clean_line(result.stderr)
    only_key = run_cli(["serve", APP, "--ssl-keyfile", str(bogus)], env=cli_env(), cwd=tmp_path)
    assert only_key.returncode == 2
    assert "--ssl-keyfile needs --ssl-certfile" in _assert_one_clean_line(only_key.stderr)


# --------------------------------------------------------------------------- secrets


SECRET_URI = "redis://:pw@host:6379/0"
MASKED_URI = "redis://:****@host:6379/0"


def test_env_command_masks_the_storage_password(tmp_path: Path) -> None:
    result = run_cli(["env"], env=cli_env(RATE_LIMIT_STORAGE_URI=SECRET_URI), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert MASKED_URI in result.stdout
    assert "pw" not in result.stdout + result.stderr


def test_serve_never_prints_the_storage_password(tmp_path: Path) -> None:
    # Whether the Redis backend starts (the banner shows the URI) or start-up is refused
    # (one line on stderr), the password appears nowhere.
    port = free_port()
    env = cli_env(RATE_LIMIT_STORAGE_URI=SECRET_URI)
    refused: ServerExited | None = None
    try:
        with serving(["serve", APP, "--port", str(port)], port=port, env=env, cwd=tmp_path) as s:
            pass
        stdout, stderr = s.stdout, s.stderr
    except ServerExited as exited:
        refused = exited
        stdout, stderr = exited.stdout, exited.stderr
    if refused is None:
        assert MASKED_URI in stdout
    else:
        assert refused.returncode in (1, 2)  # a configuration (2) or storage (1) error
        line = _assert_one_clean_line(stderr)
        assert refused.returncode == 1 or MASKED_URI in line
    assert "pw" not in stdout + stderr


# --------------------------------------------------------------------------- refusing to start

BAD_CONFIGS = [
    pytest.param(
        {"ALLOWED_ORIGINS": "*", "ALLOW_CREDENTIALS": "true"},
        "ALLOWED_ORIGINS",
        "'*'",
        id="wildcard-origin-with-credentials",
    ),
    pytest.param({"RATE_LIMIT_DEFAULT": "abc"}, "RATE_LIMIT_DEFAULT", "'abc'", id="bad-limit"),
    pytest.param(
        {"TRUSTED_HOSTS": "example.com:8000"},
        "TRUSTED_HOSTS",
        "'example.com:8000'",
        id="host-with-port",
    ),
]


@pytest.mark.parametrize(("overrides", "variable", "value"), BAD_CONFIGS)
@pytest.mark.parametrize(
    "command", [["serve", APP], ["demo"], ["env"], ["config"]], ids=lambda c: c[0]
)
def test_config_error_exits_2_naming_the_variable(
    tmp_path: Path, command: list[str], overrides: dict[str, str], variable: str, value: str
) -> None:
    args = [*command, "--port", str(free_port())] if command[0] in ("serve", "demo") else command
    result = run_cli(args, env=cli_env(**overrides), cwd=tmp_path)
    assert result.returncode == 2
    line = _assert_one_clean_line(result.stderr)
    assert line.startswith(f"asgisec: configuration error: {variable}={value} is invalid: ")
    assert "expected" in line
    assert result.stdout == ""  # nothing was served, no banner


def test_config_error_from_dotenv_says_where(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RATE_LIMIT_DEFAULT=abc\n")
    result = run_cli(["serve", APP], env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2
    line = _assert_one_clean_line(result.stderr)
    assert "RATE_LIMIT_DEFAULT='abc'" in line
    assert line.endswith("(set in .env)")
    # The process environment wins over the file.
    fixed = run_cli(["env"], env=cli_env(RATE_LIMIT_DEFAULT="5/minute"), cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert "5/minute" in fixed.stdout
    assert "environment over .env" in fixed.stdout


def test_missing_env_file_exits_2(tmp_path: Path) -> None:
    result = run_cli(["serve", APP, "--env-file", "nope.env"], env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "nope.env" in _assert_one_clean_line(result.stderr)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_such_module_xyz:app", "no module named 'no_such_module_xyz'"),
        ("tests.servers:missing", "has no attribute 'missing'"),
        ("tests.servers:app.missing", "has no attribute 'app.missing'"),
        ("tests.servers", "must be written MODULE:APP"),
        ("tests.servers:__name__", "not an ASGI application"),
    ],
)
def test_bad_app_exits_2(tmp_path: Path, target: str, expected: str) -> None:
    result = run_cli(["serve", target], env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert expected in _assert_one_clean_line(result.stderr)


def test_app_with_missing_dependency_exits_2(tmp_path: Path) -> None:
    (tmp_path / "needy.py").write_text("import not_installed_dependency_xyz\n")
    result = run_cli(["serve", "needy:app"], env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2
    line = _assert_one_clean_line(result.stderr)
    assert "not_installed_dependency_xyz" in line
    assert "while importing 'needy'" in line


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nonsense"],
        ["serve"],
        ["serve", APP, "--port", "http"],
        ["serve", APP, "--port", "70000"],
        ["serve", APP, "--workers", "0"],
        ["demo", "--no-such-flag"],
    ],
    ids=str,
)
def test_bad_usage_exits_2(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(args, env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: asgisec" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- env, extras


def test_env_markdown_is_the_reference_table(tmp_path: Path) -> None:
    result = run_cli(["env", "--markdown"], env=cli_env(), cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == env_reference()


def test_env_on_a_terminal_uses_rich(tmp_path: Path) -> None:
    result = run_cli(["config"], env=cli_env(TTY_COMPATIBLE="1"), cwd=tmp_path)
    assert result.returncode == 0
    assert "\x1b[" in result.stdout  # styled by rich
    assert "HSTS_MAX_AGE" in result.stdout


def test_version(tmp_path: Path) -> None:
    result = run_cli(["--version"], env=cli_env(), cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("asgisec ")


def _without(module: str, argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a process where ``module`` cannot be imported (as if not installed)."""
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from asgisec.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    return subprocess.run(  # noqa: PLW1510 - the exit status is asserted below
        [sys.executable, "-c", code],
        env=cli_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_without_rich_the_summary_is_plain_text(tmp_path: Path) -> None:
    result = _without("rich", ["env"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert "RATE_LIMIT_DEFAULT" in result.stdout


def test_without_uvicorn_serving_says_what_to_install(tmp_path: Path) -> None:
    result = _without("uvicorn", ["serve", APP], tmp_path)
    assert result.returncode == 2
    assert 'pip install "asgisec[tools]"' in _assert_one_clean_line(result.stderr)
