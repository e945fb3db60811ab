"""Configuration: the environment variables operators know, their defaults, and their errors.

Every option is read from ``VARIABLE=value`` (process environment over ``.env``); a bad value
stops start-up with a :class:`ConfigError` naming the variable, its value and what is expected,
and nothing else ever escapes the parser (a hypothesis property holds it to that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgisec import (
    AsgisecError,
    ConfigError,
    CorsConfig,
    HeadersConfig,
    RateLimitConfig,
    RequestConfig,
    SecurityConfig,
    SecurityMiddleware,
)
from asgisec.config import mask_secret
from asgisec.env import iter_options, read_env_file, validate


def from_env(environ: dict[str, str]) -> SecurityConfig:
    return SecurityConfig.from_env(environ, env_file=None)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


# --------------------------------------------------------------------------- names and defaults

# The variables and defaults, as operators know them from the guide.
DEFAULTS = [
    ("TRUSTED_HOSTS", ""),
    ("ENABLE_SECURITY_HEADERS", "true"),
    ("HSTS_MAX_AGE", "31536000"),
    ("HSTS_INCLUDE_SUBDOMAINS", "true"),
    ("HSTS_PRELOAD", "false"),
    ("X_FRAME_OPTIONS", "DENY"),
    ("REFERRER_POLICY", "strict-origin-when-cross-origin"),
    ("ALLOWED_ORIGINS", ""),
    ("ALLOWED_METHODS", "GET,POST"),
    ("ALLOW_CREDENTIALS", "false"),
    ("CORS_MAX_AGE", "600"),
    ("MAX_REQUEST_SIZE", "1048576"),
    ("RATE_LIMIT_DEFAULT", "100/minute"),
    ("RATE_LIMIT_STORAGE_URI", "memory://"),
]

OTHER_VARIABLES = [
    "CSP_POLICY",
    "PERMISSIONS_POLICY",
    "CROSS_ORIGIN_OPENER_POLICY",
    "CROSS_ORIGIN_RESOURCE_POLICY",
    "ALLOWED_HEADERS",
    "RATE_LIMIT_<NAME>",
    "RATE_LIMIT_RULES",
]


@pytest.mark.parametrize(("variable", "default"), DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_documented_default(variable: str, default: str) -> None:
    assert dict(from_env({}).summary())[variable] == default


@pytest.mark.parametrize("variable", OTHER_VARIABLES)
def test_documented_variable_exists(variable: str) -> None:
    assert variable in {option.env for option in iter_options()}


def test_every_option_is_documented() -> None:
    for option in iter_options():
        assert option.description, f"{option.env} has no description"


def test_defaults_are_valid_and_stable() -> None:
    config = from_env({})
    assert validate(config) == config == SecurityConfig()


# --------------------------------------------------------------------------- parsing

PARSED: list[tuple[dict[str, str], str, str, Any, str]] = [
    ({"TRUSTED_HOSTS": "api.example, *.Example.com ,::1"}, "hosts", "trusted_hosts",
     ("api.example", "*.example.com", "[::1]"), "list, trimmed and normalised"),
    ({"TRUSTED_HOSTS": ""}, "hosts", "trusted_hosts", (), "empty list"),
    ({"ENABLE_SECURITY_HEADERS": "off"}, "headers", "enable_security_headers", False, "off"),
    ({"ENABLE_SECURITY_HEADERS": "No"}, "headers", "enable_security_headers", False, "No"),
    ({"HSTS_PRELOAD": "1"}, "headers", "hsts_preload", True, "1"),
    ({"HSTS_PRELOAD": " YES "}, "headers", "hsts_preload", True, "YES"),
    ({"HSTS_MAX_AGE": "0"}, "headers", "hsts_max_age", 0, "zero"),
    ({"HSTS_MAX_AGE": "63_072_000"}, "headers", "hsts_max_age", 63_072_000, "underscores"),
    ({"X_FRAME_OPTIONS": "sameorigin"}, "headers", "x_frame_options", "SAMEORIGIN", "XFO"),
    ({"X_FRAME_OPTIONS": ""}, "headers", "x_frame_options", "", "XFO disabled"),
    ({"CSP_POLICY": "default-src 'self'"}, "headers", "csp_policy", "default-src 'self'",
     "CSP"),
    ({"ALLOWED_ORIGINS": "https://App.Example:443,http://localhost:8080"}, "cors",
     "allowed_origins", ("https://app.example", "http://localhost:8080"), "origins"),
    ({"ALLOWED_METHODS": "get, put"}, "cors", "allowed_methods", ("GET", "PUT"), "methods"),
    ({"ALLOWED_HEADERS": "X-Token"}, "cors", "allowed_headers", ("x-token",), "headers"),
    ({"ALLOW_CREDENTIALS": "true"}, "cors", "allow_credentials", True, "credentials"),
    ({"MAX_REQUEST_SIZE": "0"}, "request", "max_request_size", 0, "size limit off"),
    ({"RATE_LIMIT_DEFAULT": "none"}, "rate_limit", "rate_limit_default", "none", "no default"),
    ({"RATE_LIMIT_CALCULATE": "60/minute", "RATE_LIMIT_TIMESOLVE": "30/minute"}, "rate_limit",
     "rate_limit_routes", {"calculate": "60/minute", "timesolve": "30/minute"},
     "RATE_LIMIT_<NAME> routes"),
    ({"RATE_LIMIT_RULES": "/api/search=10/minute;/api/items/*=100/hour"}, "rate_limit",
     "rate_limit_rules", "/api/search=10/minute;/api/items/*=100/hour", "rules"),
    ({"RATE_LIMIT_FAIL_MODE": "CLOSED"}, "rate_limit", "rate_limit_fail_mode", "closed",
     "literal, any case"),
    ({"RATE_LIMIT_BACKEND_TIMEOUT": "0.2"}, "rate_limit", "rate_limit_backend_timeout", 0.2,
     "float"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("environ", "section", "field", "expected"),
    [c[:4] for c in PARSED],
    ids=[c[4] for c in PARSED],
)
def test_parsed_value(environ: dict[str, str], section: str, field: str, expected: Any) -> None:
    config = validate(from_env(environ))
    assert getattr(getattr(config, section), field) == expected


# --------------------------------------------------------------------------- refusals

REFUSED = [
    ({"ALLOWED_ORIGINS": "*", "ALLOW_CREDENTIALS": "true"}, "ALLOWED_ORIGINS", "B4 star+creds"),
    ({"ALLOWED_ORIGINS": "https://a.example,*", "ALLOW_CREDENTIALS": "yes"}, "ALLOWED_ORIGINS",
     "B4 star among origins + creds"),
    ({"ALLOWED_ORIGINS": "https://app.example/"}, "ALLOWED_ORIGINS", "B10 trailing slash"),
    ({"RATE_LIMIT_DEFAULT": "abc"}, "RATE_LIMIT_DEFAULT", "limit syntax"),
    ({"RATE_LIMIT_DEFAULT": "0/minute"}, "RATE_LIMIT_DEFAULT", "zero limit"),
    ({"RATE_LIMIT_TIMESOLVE": "often"}, "RATE_LIMIT_TIMESOLVE", "route limit syntax"),
    ({"RATE_LIMIT_RULES": "/api/search"}, "RATE_LIMIT_RULES", "rule without a limit"),
    ({"RATE_LIMIT_RULES": "api/x=1/minute"}, "RATE_LIMIT_RULES", "relative pattern"),
    ({"RATE_LIMIT_RULES": "/api/x*=1/minute"}, "RATE_LIMIT_RULES", "partial-segment star"),
    ({"RATE_LIMIT_RULES": "/a/**/b=1/minute"}, "RATE_LIMIT_RULES", "double star not at end"),
    ({"TRUSTED_HOSTS": "example.com:8000"}, "TRUSTED_HOSTS", "B14 port in a host"),
    ({"TRUSTED_HOSTS": "https://example.com"}, "TRUSTED_HOSTS", "scheme in a host"),
    ({"HSTS_MAX_AGE": "-1"}, "HSTS_MAX_AGE", "negative"),
    ({"HSTS_MAX_AGE": "1 year"}, "HSTS_MAX_AGE", "not a number"),
    ({"HSTS_MAX_AGE": "9" * 5000}, "HSTS_MAX_AGE", "a number too long to convert"),
    ({"CORS_MAX_AGE": "1.5"}, "CORS_MAX_AGE", "not whole"),
    ({"MAX_REQUEST_SIZE": "1MB"}, "MAX_REQUEST_SIZE", "units are not parsed"),
    ({"ENABLE_SECURITY_HEADERS": "maybe"}, "ENABLE_SECURITY_HEADERS", "bool"),
    ({"X_FRAME_OPTIONS": "ALLOW-FROM https://a.example"}, "X_FRAME_OPTIONS", "obsolete XFO"),
    ({"REFERRER_POLICY": "always"}, "REFERRER_POLICY", "unknown referrer policy"),
    ({"CSP_POLICY": "default-src 'self'\r\nSet-Cookie: a=b"}, "CSP_POLICY", "header injection"),
    ({"PERMISSIONS_POLICY": "camera=(\u00e9)"}, "PERMISSIONS_POLICY", "non-ascii value"),
    ({"ALLOWED_METHODS": "GET POST"}, "ALLOWED_METHODS", "not a token"),
    ({"ALLOWED_HEADERS": "x-a:b"}, "ALLOWED_HEADERS", "header not a token"),
    ({"RATE_LIMIT_STORAGE_URI": "postgres://db"}, "RATE_LIMIT_STORAGE_URI", "unknown storage"),
    ({"RATE_LIMIT_MAX_KEYS": "0"}, "RATE_LIMIT_MAX_KEYS", "no keys"),
    ({"RATE_LIMIT_BACKEND_TIMEOUT": "nan"}, "RATE_LIMIT_BACKEND_TIMEOUT", "nan timeout"),
    ({"RATE_LIMIT_BACKEND_TIMEOUT": "inf"}, "RATE_LIMIT_BACKEND_TIMEOUT", "infinite timeout"),
    ({"RATE_LIMIT_IPV6_PREFIX": "129"}, "RATE_LIMIT_IPV6_PREFIX", "prefix too long"),
    ({"RATE_LIMIT_FAIL_MODE": "sometimes"}, "RATE_LIMIT_FAIL_MODE", "literal"),
    ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES", "bad CIDR"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("environ", "variable"), [c[:2] for c in REFUSED], ids=[c[2] for c in REFUSED]
)
def test_bad_value_names_the_variable(environ: dict[str, str], variable: str) -> None:
    """A bad value is a ConfigError naming the variable and the value, raised at start-up."""
    with pytest.raises(ConfigError) as info:
        validate(from_env(environ))
    error = info.value
    assert isinstance(error, AsgisecError)
    assert error.variable == variable
    assert str(error).startswith(f"{variable}=")
    assert "expected" in str(error)
    assert error.expected


def test_secret_is_masked_in_errors_and_summary() -> None:
    uri = "redis://:hunter2@db:6379/0"
    with pytest.raises(ConfigError) as info:
        from_env({"RATE_LIMIT_STORAGE_URI": "bogus" + uri})
    assert "hunter2" not in str(info.value)
    config = SecurityConfig(rate_limit=RateLimitConfig(rate_limit_storage_uri=uri))
    assert dict(config.summary())["RATE_LIMIT_STORAGE_URI"] == "redis://:****@db:6379/0"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("redis://:pw@host:6379", "redis://:****@host:6379"),
        ("redis://user:pw@host", "redis://user:****@host"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("memory://", "memory://"),
    ],
    ids=["password only", "user and password", "no credentials", "memory"],
)
def test_mask_secret(value: str, masked: str) -> None:
    assert mask_secret(value) == masked


# --------------------------------------------------------------------------- configs built in code

CODE_BUILT = [
    (lambda: SecurityConfig(headers=HeadersConfig(hsts_max_age=-1)), "HSTS_MAX_AGE"),
    (lambda: SecurityConfig(cors=CorsConfig(cors_max_age=-5)), "CORS_MAX_AGE"),
    (lambda: SecurityConfig(request=RequestConfig(max_request_size=-1)), "MAX_REQUEST_SIZE"),
    (
        lambda: SecurityConfig(rate_limit=RateLimitConfig(rate_limit_max_keys=0)),
        "RATE_LIMIT_MAX_KEYS",
    ),
]


@pytest.mark.parametrize(
    ("build", "variable"), CODE_BUILT, ids=[variable for _, variable in CODE_BUILT]
)
def test_code_built_config_is_validated_once_at_construction(build: Any, variable: str) -> None:
    """Struct constructors skip declared bounds; the middleware validates at the boundary."""
    with pytest.raises(ConfigError) as info:
        SecurityMiddleware(_app, build())
    assert info.value.variable == variable


@pytest.mark.parametrize(
    "build",
    [
        lambda: CorsConfig(allowed_origins=("*",), allow_credentials=True),
        lambda: CorsConfig(allowed_origins=("https://app.example/",)),
        lambda: HeadersConfig(x_frame_options="ALLOWALL"),
        lambda: RateLimitConfig(rate_limit_default="lots"),
    ],
    ids=["B4 star with credentials", "B10 trailing slash", "XFO", "limit"],
)
def test_cross_field_rules_apply_to_code_built_sections(build: Any) -> None:
    with pytest.raises(ConfigError):
        build()


def test_config_is_frozen_and_rejects_unknown_fields() -> None:
    config = SecurityConfig()
    with pytest.raises(AttributeError):
        config.hosts = config.hosts  # type: ignore[misc]
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"hosts": {"trusted_host": ["a.example"]}}, SecurityConfig)


def test_validate_refuses_other_objects() -> None:
    with pytest.raises(TypeError):
        validate({"hosts": {}})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- .env and prefix


def test_process_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "TRUSTED_HOSTS=file.example\nHSTS_MAX_AGE=60\nRATE_LIMIT_CALCULATE=5/minute\n"
    )
    config = SecurityConfig.from_env({"TRUSTED_HOSTS": "env.example"}, env_file=env_file)
    assert config.hosts.trusted_hosts == ("env.example",)
    assert config.headers.hsts_max_age == 60
    assert config.rate_limit.rate_limit_routes == {"calculate": "5/minute"}


def test_missing_env_file_is_fine(tmp_path: Path) -> None:
    config = SecurityConfig.from_env({}, env_file=tmp_path / "absent.env")
    assert config == SecurityConfig()


def test_env_file_syntax(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n"
        "\n"
        "export TRUSTED_HOSTS=api.example\n"
        "CSP_POLICY=\"default-src 'self'; img-src data:\"\n"
        "REFERRER_POLICY='no-referrer'\n"
        "HSTS_MAX_AGE=600  # ten minutes while testing\n"
        "CORS_MAX_AGE = 30\n"
        "not a line\n"
        "1BAD=x\n",
        encoding="utf-8",
    )
    assert read_env_file(env_file) == {
        "TRUSTED_HOSTS": "api.example",
        "CSP_POLICY": "default-src 'self'; img-src data:",
        "REFERRER_POLICY": "no-referrer",
        "HSTS_MAX_AGE": "600",
        "CORS_MAX_AGE": "30",
    }
    config = SecurityConfig.from_env({}, env_file=env_file)
    assert config.headers.csp_policy == "default-src 'self'; img-src data:"
    assert config.headers.hsts_max_age == 600


def test_prefix_namespaces_every_variable() -> None:
    environ = {
        "ASGISEC_TRUSTED_HOSTS": "api.example",
        "ASGISEC_RATE_LIMIT_CALCULATE": "60/minute",
        "TRUSTED_HOSTS": "ignored.example",
        "RATE_LIMIT_IGNORED": "abc",
    }
    config = SecurityConfig.from_env(environ, env_file=None, prefix="ASGISEC_")
    assert config.hosts.trusted_hosts == ("api.example",)
    assert config.rate_limit.rate_limit_routes == {"calculate": "60/minute"}


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_HOSTS", "os.example")
    assert SecurityConfig.from_env(env_file=None).hosts.trusted_hosts == ("os.example",)


# --------------------------------------------------------------------------- totality

VARIABLES = [
    *sorted(o.env for o in iter_options() if o.env != "RATE_LIMIT_<NAME>"),
    "RATE_LIMIT_CALCULATE",
]
values = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789_-+./:*, abcdefghmnorstuy", max_size=24),
    st.sampled_from(["", " ", "0", "-0", "true", "none", "nan", "1e999", "*", "9" * 30]),
)


@given(st.dictionaries(st.sampled_from(VARIABLES), values, max_size=4))
def test_configuration_is_total(environ: dict[str, str]) -> None:
    """Any environment yields a validated config or a ConfigError, never another exception."""
    error: ConfigError | None = None
    try:
        config = validate(from_env(environ))
    except ConfigError as caught:
        error = caught
    if error is not None:
        assert error.variable in {*VARIABLES, "configuration"}, error
    else:
        assert validate(config) == config  # validation is idempotent
