"""``asgisec check``: the guide's pre-deployment checklist (cases C1, C3), and no secret leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asgisec.tools.checklist import run_checks

from .servers import REPO_ROOT

CLEAN = {"TRUSTED_HOSTS": "api.example.com"}  # every other variable at its default


def ids(values: dict[str, str], **kwargs: int) -> set[str]:
    return {f.id for f in run_checks({**CLEAN, **values}, **kwargs)}


def check(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m asgisec check`` with a minimal environment (nothing of this machine's)."""
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "asgisec", "check", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --------------------------------------------------------------------------- Done when


def test_bad_env_file_exits_1_and_names_both(tmp_path: Path) -> None:
    bad = tmp_path / "bad.env"
    bad.write_text("ALLOWED_ORIGINS=*\nREDIS_PASSWORD=changeme\nTRUSTED_HOSTS=api.example.com\n")
    done = check("--env-file", str(bad), cwd=tmp_path)
    assert done.returncode == 1
    assert "security.E002" in done.stdout
    assert "ALLOWED_ORIGINS" in done.stdout
    assert "security.E001" in done.stdout
    assert "REDIS_PASSWORD" in done.stdout


def test_clean_env_exits_0(tmp_path: Path) -> None:
    good = tmp_path / "good.env"
    good.write_text(
        "TRUSTED_HOSTS=api.example.com\n"
        "ALLOWED_ORIGINS=https://app.example.com\n"
        "REDIS_PASSWORD=kJ8s-2Lq_Zp0vN4eR7tY\n"
        "RATE_LIMIT_STORAGE_URI=rediss://:kJ8s-2Lq_Zp0vN4eR7tY@cache.internal:6380/0\n"
        "DATABASE_URL=postgresql://app:Xk3-n8Qp-V2mz@db.internal:5432/app?sslmode=verify-full\n"
        "MAX_CONCURRENT_REQUESTS=100\n"
        "ENABLE_REQUEST_LOGGING=true\n"
        "LOG_SENSITIVE_DATA=false\n"
    )
    done = check("--env-file", str(good), cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "PASS: 0 error(s), 0 warning(s)" in done.stdout
    assert check("--env-file", str(good), "--strict", cwd=tmp_path).returncode == 0


def test_process_environment_wins_over_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.env"
    bad.write_text("ALLOWED_ORIGINS=*\nTRUSTED_HOSTS=api.example.com\nMAX_CONCURRENT_REQUESTS=1\n")
    fixed = check(
        "--env-file", str(bad), cwd=tmp_path, env={"ALLOWED_ORIGINS": "https://a.example"}
    )
    assert fixed.returncode == 0, fixed.stdout


def test_default_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ALLOWED_ORIGINS=*\n")
    done = check(cwd=tmp_path)
    assert done.returncode == 1
    assert "environment over .env" in done.stdout


def test_missing_env_file_is_usage(tmp_path: Path) -> None:
    done = check("--env-file", "nope.env", cwd=tmp_path)
    assert done.returncode == 2
    assert "nope.env" in done.stderr


# --------------------------------------------------------------------------- secrets


SECRETS = {
    "REDIS_PASSWORD": "Zq9#",  # weak: reported, never shown
    "API_TOKEN": "tok-3f9a7c1e55b0",
    "SECRET_KEY": "django-insecure-Pq7Wm3Xz",
    "DATABASE_URL": "postgresql://app:Db-Pa55w0rd-81c2@db.internal:5432/app",
    "RATE_LIMIT_STORAGE_URI": "redis://:Rd-Hunter2-77aa@cache.internal:6379/0",
    "CACHE_URL": "redis://:s3@cache2.internal:6379/0",
    # Not a valid origin, and an http:// one: both reported, the credentials never shown.
    "ALLOWED_ORIGINS": "http://admin:Or-Pa55-9d1e@app.example.com,http://u:Lo-Pa55-4c7b@localhost",
}


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secret_values_never_appear_in_any_output(tmp_path: Path, fmt: str) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    done = check("--env-file", str(env_file), "--format", fmt, cwd=tmp_path,
                 env={"ADMIN_PASSWORD": "admin", "X_FRAME_OPTIONS": "ALLOW-ALL-Zz91"})  # fmt: skip
    assert done.returncode == 1
    output = done.stdout + done.stderr
    for secret in [*SECRETS.values(), "Db-Pa55w0rd-81c2", "Rd-Hunter2-77aa", "Pq7Wm3Xz", ":s3@",
                   "Or-Pa55-9d1e", "Lo-Pa55-4c7b"]:  # fmt: skip
        assert secret not in output, secret
    for variable in ("REDIS_PASSWORD", "SECRET_KEY", "DATABASE_URL", "CACHE_URL", "ADMIN_PASSWORD"):
        assert variable in output, variable  # named, not shown
    if fmt == "json":
        report = json.loads(done.stdout)
        assert report["schema"] == "asgisec.check/1"
        assert report["passed"] is False
        found = {(f["id"], f["variable"]) for f in report["findings"]}
        assert ("security.E001", "REDIS_PASSWORD") in found
        assert ("security.E001", "CACHE_URL") in found  # the password inside the URL
        assert ("security.E001", "ADMIN_PASSWORD") in found
        assert ("security.E010", "SECRET_KEY") in found
        assert ("security.E007", "DATABASE_URL") in found
        assert ("security.E003", "ALLOWED_ORIGINS") in found
        assert ("security.W010", "ALLOWED_ORIGINS") in found
        assert ("security.E011", "X_FRAME_OPTIONS") in found
        assert report["errors"] == sum(f["level"] == "error" for f in report["findings"])


def test_origins_that_do_not_parse_are_findings_not_a_traceback(tmp_path: Path) -> None:
    env_file = tmp_path / "origins.env"
    env_file.write_text(
        "TRUSTED_HOSTS=api.example.com\n"
        "ALLOWED_ORIGINS=http://[::1,http://app.example.com:99999,http://[::1]:3000\n"
    )
    done = check("--env-file", str(env_file), "--format", "json", cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1
    messages = {(f["id"], f["message"]) for f in json.loads(done.stdout)["findings"]}
    assert ("security.E003", "ALLOWED_ORIGINS allows an http:// origin") in messages
    assert ("security.E003", "ALLOWED_ORIGINS allows http://app.example.com") in messages
    assert ("security.W010", "ALLOWED_ORIGINS allows http://[::1]:3000") in messages
    assert "security.E011" in {check_id for check_id, _ in messages}


# --------------------------------------------------------------------------- the checklist


@pytest.mark.parametrize(
    "key",
    [
        "django-insecure-abc",
        "k3Jd9-xQ2mZp7vL0sWb4nR8tYc6hF1gA5eU2iO9",  # 40 characters
        "a" * 60,  # long, but fewer than 5 distinct characters
    ],
    ids=["insecure-prefix", "40-chars", "repeated"],
)
def test_c1_weak_secret_key(key: str) -> None:
    assert "security.E010" in ids({"SECRET_KEY": key})


def test_c1_strong_secret_key_passes() -> None:
    key = "q8Zr-3Lp_V0mWn6sXc2Tb9Yk4Jd7Fh1Ga5Ue8Io2Rt6Ew0Qs3Az7Kx9Mj4Nb1Vc5"
    assert ids({"SECRET_KEY": key}) == set()


def test_c3_redis_urls() -> None:
    assert {"security.E006", "security.W006"} <= ids({"REDIS_URL": "redis://cache:6379/0"})
    authenticated = ids({"REDIS_URL": "rediss://:s3cr3t@cache:6380/0"})
    assert not authenticated & {"security.E006", "security.W005", "security.W006"}
    assert "security.E001" in authenticated  # the Redis rules pass; the password itself is weak
    assert ids({"REDIS_URL": "redis://localhost:6379"}) == {"security.W005"}
    assert "security.E006" not in ids(
        {"REDIS_URL": "rediss://cache:6380/0", "REDIS_PASSWORD": "Vq3-9dLx-Kp2m"}
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"ALLOWED_ORIGINS": "*"}, "security.E002"),
        ({"ALLOWED_ORIGINS": "http://app.example.com"}, "security.E003"),
        ({"ALLOWED_ORIGINS": "http://localhost:3000"}, "security.W010"),
        ({"TRUSTED_HOSTS": ""}, "security.E004"),
        ({"TRUSTED_HOSTS": "*"}, "security.E005"),
        ({"DATABASE_URL": "postgresql://u:Xk3-n8Qp-V2mz@db.example.com/app"}, "security.E007"),
        ({"DATABASE_URL": "postgresql://u:Xk3-n8Qp@db.example/a?sslmode=prefer"}, "security.E007"),
        ({"ENABLE_SECURITY_HEADERS": "false"}, "security.E008"),
        ({"LOG_SENSITIVE_DATA": "true"}, "security.E009"),
        ({"HSTS_MAX_AGE": "86400"}, "security.W001"),
        ({"HSTS_MAX_AGE": "0"}, "security.W001"),
        ({"WEB_CONCURRENCY": "4"}, "security.W002"),
        ({"MAX_REQUEST_SIZE": "0"}, "security.W003"),
        ({"MAX_CONCURRENT_REQUESTS": "0"}, "security.W004"),
        # Numbers as asgisec itself reads them (a sign, underscores, spaces): the same setting.
        ({"HSTS_MAX_AGE": "+86400"}, "security.W001"),
        ({"HSTS_MAX_AGE": " 86_400 "}, "security.W001"),
        ({"MAX_REQUEST_SIZE": "+0"}, "security.W003"),
        ({"MAX_CONCURRENT_REQUESTS": "+0"}, "security.W004"),
        ({"WEB_CONCURRENCY": "+4"}, "security.W002"),
        ({"RATE_LIMIT_DEFAULT": "none"}, "security.W007"),
        ({"ENABLE_REQUEST_LOGGING": "false"}, "security.W008"),
        ({"CSP_POLICY": ""}, "security.W009"),
        ({"X_FRAME_OPTIONS": "ALLOWALL"}, "security.E011"),
        ({"ADMIN_PASSWORD": ""}, "security.E001"),
        ({"POSTGRES_PASSWORD": "postgres"}, "security.E001"),
    ],
)  # fmt: skip
def test_checklist_items(values: dict[str, str], expected: str) -> None:
    assert expected in ids(values)


@pytest.mark.parametrize(
    "values",
    [
        {"DATABASE_URL": "postgresql://u:Xk3-n8Qp-V2mz@db.example.com/app?sslmode=require"},
        {"DATABASE_URL": "postgresql://u:Xk3-n8Qp-V2mz@localhost/app"},
        {"DATABASE_URL": "sqlite:///app.db"},
        {"WEB_CONCURRENCY": "4", "RATE_LIMIT_STORAGE_URI": "rediss://:Vq3-9dLx-Kp2m@r.internal:6380"},
        {"HSTS_MAX_AGE": "31536000", "ENABLE_SECURITY_HEADERS": "true"},
        {"ALLOWED_ORIGINS": "https://app.example.com,https://admin.example.com"},
        {"TRUSTED_HOSTS": "*.example.com"},
        {"PWD": "/srv/app", "OLDPWD": "/"},  # the shell's, not passwords
    ],
)  # fmt: skip
def test_checklist_passes(values: dict[str, str]) -> None:
    assert ids(values) == set()


def test_workers_option_and_strict(tmp_path: Path) -> None:
    assert "security.W002" in ids({}, workers=2)
    env_file = tmp_path / "w.env"
    env_file.write_text("TRUSTED_HOSTS=api.example.com\nMAX_CONCURRENT_REQUESTS=100\n")
    assert check("--env-file", str(env_file), "--workers", "3", cwd=tmp_path).returncode == 0
    strict = check("--env-file", str(env_file), "--workers", "3", "--strict", cwd=tmp_path)
    assert strict.returncode == 1
    assert "security.W002" in strict.stdout
